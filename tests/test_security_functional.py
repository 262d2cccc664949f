"""Security checks on the running bot (issue 4 item 5, PRODUCT.md §8 "Secure by default").

Signatures are verified before any work; tokens and the signing secret never reach the logs;
only allowed reviewers decide; ephemeral answers reach only whoever asked; and the bot token
never leaves Slack's own origin, whatever links and redirects say.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import logs
from bot.settings import load_settings
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.fakes.web import MapResolver
from tests.harness import (
    ALERTS,
    CLEAN_COLOR,
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    SIGNING_SECRET,
    Bot,
    Stack,
    http_bot,
    socket_bot,
    started_stack,
)

BOT_TOKEN = "xoxb-test-token"  # what started_stack and FakeSlack use
APP_TOKEN = "xapp-1-test"  # what socket_bot and FakeSlack use
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
SHORTCUT = "modbot_moderate_message"
VIOLATION = "modbot_review_violation"
# A non-integer X-Slack-Request-Timestamp would make Bolt's verifier raise (a 500, slack.md
# §0.13); bot/app.py refuses such requests with 401 before they reach Bolt.
NON_INTEGER_TIMESTAMP_STATUS = 401
OK = "modbot_review_ok"


async def _post(bot: Bot, raw: str, headers: dict[str, str]) -> tuple[int, str]:
    """POST raw bytes to /slack/events with exactly these headers (nothing signed for us)."""
    url: str = bot.url  # type: ignore[attr-defined]
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw.encode(), headers=headers) as response,
    ):
        return response.status, await response.text()


def _scan_id(alert: dict[str, Any]) -> str:
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    return str(actions["elements"][0]["value"])


async def _click(
    stack: Stack, bot: Bot, alert: dict[str, Any], action: str, user: str, *, value: str = ""
) -> list[dict[str, Any]]:
    """A button click on `alert` (value: its scan id unless given); the ephemeral answers."""
    key = f"click-{len(stack.slack.responses)}-{user}"
    body = payloads.block_action(
        action, value or _scan_id(alert), user, ALERTS, alert["ts"], stack.slack.response_url(key)
    )
    response = await bot.interaction(body)
    assert response["status"] == 200
    return stack.slack.responses_by_key.get(key, [])


def _verdicts(stack: Stack, alert: dict[str, Any]) -> list[str]:
    return [m["text"] for m in stack.thread(alert) if m["text"].startswith("Verdict:")]


# ------------------------------------------------------------------------------ 1. signatures


def _work_requests(stack: Stack) -> list[tuple[str, str]]:
    """An event, a command and an interaction (raw body, Content-Type), each of which makes
    the bot download, scan and answer when it is accepted."""
    stack.web.add("/cmd.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
    upload = stack.upload(REVIEW_COLOR, name="upload.png")
    shared = stack.upload(CLEAN_COLOR, name="shortcut.png")
    message = payloads.message_event(GENERAL, POSTER, files=[shared])["event"]
    command = payloads.slash_command(
        f"{stack.web.url}/cmd.png", GENERAL, POSTER, stack.slack.response_url("cmd")
    )
    shortcut = payloads.message_shortcut(
        SHORTCUT, message, GENERAL, "U0INVOKER", stack.slack.response_url("shortcut")
    )
    return [
        payloads.http_body("events", payloads.message_event(GENERAL, POSTER, files=[upload])),
        payloads.http_body("commands", command),
        payloads.http_body("interactive", shortcut),
    ]


def _signed(body: str, *, secret: str = SIGNING_SECRET, age: int = 0) -> dict[str, str]:
    return payloads.signed_headers(secret, body, int(time.time()) - age)


def _signed_with_timestamp(body: str, timestamp: str) -> dict[str, str]:
    """A correct HMAC with the real secret over whatever timestamp text is given."""
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def _only(header: str) -> Callable[[str], dict[str, str]]:
    return lambda body: {header: _signed(body)[header]}


BAD_SIGNING: dict[str, Callable[[str], dict[str, str]]] = {
    "signed_with_another_secret": lambda body: _signed(body, secret="not-the-signing-secret"),
    "no_signing_headers": lambda body: {},
    "timestamp_without_signature": _only("X-Slack-Request-Timestamp"),
    "signature_without_timestamp": _only("X-Slack-Signature"),
    "empty_signature": lambda body: {**_signed(body), "X-Slack-Signature": ""},
    "v1_instead_of_v0": lambda body: {
        **_signed(body),
        "X-Slack-Signature": _signed(body)["X-Slack-Signature"].replace("v0=", "v1=", 1),
    },
    "timestamp_301_s_old": lambda body: _signed(body, age=301),
    "timestamp_a_day_old": lambda body: _signed(body, age=86_400),
    "timestamp_305_s_in_the_future": lambda body: _signed(body, age=-305),
    "signature_over_a_different_body": lambda body: _signed(body.replace(POSTER, "U0OTHER")),
    "stale_timestamp_with_leading_space": lambda body: _signed_with_timestamp(
        body, f" {int(time.time()) - 400}"
    ),
}


async def _nothing_done(stack: Stack, bot: Bot, startup_calls: list[str]) -> None:
    """No scan row or audit entry, no download, no Rekognition call, no Slack call or answer."""
    await bot.idle()
    assert await bot.runtime.store.status_counts() == {}
    assert await bot.runtime.store.audit_log() == []
    assert stack.rekognition_calls() == 0
    assert stack.slack.file_requests == []
    assert stack.web.hits == []
    assert [call.method for call in stack.slack.calls] == startup_calls
    assert stack.slack.responses == []
    assert dict(stack.slack.messages) == {}


@pytest.mark.parametrize("signing", list(BAD_SIGNING))
async def test_bad_missing_stale_or_mismatched_signature_gets_401_and_no_work(
    stack: Stack, bot: Bot, signing: str
) -> None:
    """Each bad signing variant: 401 for an event, a command and a shortcut, and no work at all."""
    startup = [call.method for call in stack.slack.calls]
    for body, content_type in _work_requests(stack):
        headers = {"Content-Type": content_type, **BAD_SIGNING[signing](body)}
        status, text = await _post(bot, body, headers)
        assert (status, text) == (401, '{"error": "invalid request"}'), body[:80]
    await _nothing_done(stack, bot, startup)


@pytest.mark.parametrize(
    "timestamp",
    ["1700000000.5", "now-with-milliseconds", "abc", ""],
    ids=["fraction", "now_as_float", "letters", "empty"],
)
async def test_non_integer_timestamp_gets_401_and_no_work(
    stack: Stack, bot: Bot, timestamp: str
) -> None:
    """A valid HMAC over a non-integer timestamp: 401 (not Bolt's 500), and no work."""
    if timestamp == "now-with-milliseconds":
        timestamp = f"{time.time():.3f}"  # within the window if it were parsed as a float
    startup = [call.method for call in stack.slack.calls]
    for body, content_type in _work_requests(stack):
        headers = {"Content-Type": content_type, **_signed_with_timestamp(body, timestamp)}
        status, _ = await _post(bot, body, headers)
        assert status == NON_INTEGER_TIMESTAMP_STATUS, body[:80]
    await _nothing_done(stack, bot, startup)


async def test_correctly_signed_requests_do_the_work_the_refused_ones_did_not(
    stack: Stack, bot: Bot
) -> None:
    """Control: the same requests correctly signed (one 290 s old) give an alert and two answers."""
    for age, (body, content_type) in zip((290, 0, 0), _work_requests(stack), strict=True):
        status, _ = await _post(bot, body, {"Content-Type": content_type, **_signed(body, age=age)})
        assert status == 200
    await bot.idle()
    assert await bot.runtime.store.status_counts() == {"done": 3}
    assert stack.rekognition_calls() == 3
    [alert] = [a for a in stack.alerts() if a["text"].startswith("Needs review")]  # the upload
    assert alert["text"] == f"Needs review: Exposed Female Nipple 72.4% in <#{GENERAL}>"
    [command_answer] = stack.slack.responses_by_key["cmd"]
    assert command_answer["text"].startswith("Flagged")
    [shortcut_answer] = stack.slack.responses_by_key["shortcut"]
    assert shortcut_answer["text"].startswith("Allowed")


def _url_verification() -> str:
    return payloads.http_body(
        "events",
        {"token": "legacy", "challenge": "chal-3eZbrw1aBm2rZgRN", "type": "url_verification"},
    )[0]


async def test_unsigned_url_verification_is_refused(stack: Stack, bot: Bot) -> None:
    """Slack's url_verification handshake without a signature: 401, challenge not echoed."""
    body = _url_verification()
    status, text = await _post(bot, body, {"Content-Type": "application/json"})
    assert status == 401
    assert "chal-3eZbrw1aBm2rZgRN" not in text


async def test_signed_url_verification_gets_its_challenge(stack: Stack, bot: Bot) -> None:
    """A correctly signed url_verification is answered 200 with the challenge."""
    body = _url_verification()
    status, text = await _post(bot, body, {"Content-Type": "application/json", **_signed(body)})
    assert (status, text) == (200, '{"challenge": "chal-3eZbrw1aBm2rZgRN"}')


# ------------------------------------------------------------------------------ 2. logs


class _Recorder(logging.Handler):
    """Keeps every record it is handed, and the text a formatter makes of it."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(formatter or logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@contextmanager
def _every_logger_at_debug() -> Iterator[None]:
    """Root at DEBUG and every logger made to pass everything up to it (sqlalchemy, for one,
    sets itself to WARNING on import); all restored afterwards."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved: dict[str, tuple[int, bool, bool]] = {}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            saved[name] = (logger.level, logger.propagate, logger.disabled)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for name, (level, propagate, disabled) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


@contextmanager
def _configured_logging(secrets: list[str]) -> Iterator[_Recorder]:
    """Logging exactly as `modbot serve` sets it up (bot.logs.configure with the settings'
    secrets), at DEBUG, its stream kept in memory; the recorder sits behind it on the root."""
    with _every_logger_at_debug():
        logs.configure(level=logging.DEBUG, secrets=secrets)
        root = logging.getLogger()
        [configured] = root.handlers
        stream = io.StringIO()
        assert isinstance(configured, logging.StreamHandler)
        configured.setStream(stream)
        recorder = _Recorder(configured.formatter)
        root.addHandler(recorder)
        yield recorder
        recorder.lines.append(stream.getvalue())  # the formatted output, tracebacks included


def _serve_secrets() -> list[str]:
    """The secrets `modbot serve` hands to logs.configure (bot/__main__.py, _serve)."""
    settings = load_settings()
    optional = (settings.slack_signing_secret, settings.slack_app_token)
    return [settings.slack_bot_token.get_secret_value()] + [
        secret.get_secret_value() for secret in optional if secret
    ]


async def _full_flow(stack: Stack, bot: Bot, *, http: bool, pasted_token: bool = False) -> None:
    """Upload -> alert (after a Slack 429) -> vote -> verdict; /moderate; Could not scan twice;
    over HTTP also a badly signed and a non-integer-timestamp request. With `pasted_token`,
    someone also posts a blocked link that carries the bot token, which the bot then logs."""
    stack.slack.fail_next("chat.postMessage", 429, headers={"Retry-After": "0"})
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    [alert] = stack.alerts()
    await _click(stack, bot, alert, VIOLATION, "U0MOD")
    await stack.slack.wait_for(lambda: bool(_verdicts(stack, alert)))
    stack.web.add("/pic.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
    await bot.command(f"{stack.web.url}/pic.png", key="scan")
    await bot.command("http://169.254.169.254/latest/meta-data/", key="metadata")
    broken = stack.upload(REVIEW_COLOR, name="broken.png", data=b"not a picture at all")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[broken]))
    if pasted_token:
        leaky = f"<http://169.254.169.254/latest/?t={BOT_TOKEN}>"
        await bot.event(payloads.message_event(GENERAL, POSTER, text=leaky))
    if http:
        body, content_type = payloads.http_body("events", payloads.message_event(GENERAL, POSTER))
        forged = {"Content-Type": content_type, **_signed(body, secret="wrong-secret-123456")}
        assert (await _post(bot, body, forged))[0] == 401
        odd = {"Content-Type": content_type, **_signed_with_timestamp(body, "12.5")}
        assert (await _post(bot, body, odd))[0] == NON_INTEGER_TIMESTAMP_STATUS
    await bot.idle()
    assert len(stack.slack.calls_to("chat.postMessage")) >= 4  # the 429 was retried
    assert stack.slack.responses_by_key["scan"][0]["text"].startswith("Flagged")
    assert stack.slack.responses_by_key["metadata"][0]["text"].startswith("Could not scan")
    assert any(m["text"].startswith("Could not scan") for m in stack.alerts())


def _leaks(lines: list[str], records: list[logging.LogRecord]) -> list[str]:
    """Every place a secret shows up: in a record's message or in the formatted output."""
    found = [
        f"{record.name}: {record.getMessage()[:200]}"
        for record in records
        for secret in SECRETS
        if secret in record.getMessage()
    ]
    found += [line[:200] for line in lines for secret in SECRETS if secret in line]
    return found


def _run_bot(
    stack: Stack, transport: str, monkeypatch: pytest.MonkeyPatch
) -> AbstractAsyncContextManager[Bot]:
    if transport == "http":
        return http_bot(stack)
    return socket_bot(stack, monkeypatch)


@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_tokens_and_secret_never_reach_the_configured_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Logging as `modbot serve` sets it up, DEBUG everywhere: no token or secret in a full run."""
    async with started_stack(tmp_path, monkeypatch) as stack:
        if transport == "socket":
            monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
        with _configured_logging(_serve_secrets()) as recorder:
            async with _run_bot(stack, transport, monkeypatch) as bot:
                await _full_flow(stack, bot, http=transport == "http", pasted_token=True)
    names = {record.name.split(".")[0] for record in recorder.records}
    assert {"bot", "slack_sdk", "slack_bolt", "botocore"} <= names  # really everything
    assert any(
        r.levelno == logging.DEBUG and r.name.startswith("slack_sdk") for r in recorder.records
    )
    assert _leaks(recorder.lines, recorder.records) == []
    # The pasted token was logged (fetch refusal, Slack request body) and masked there.
    assert any("169.254.169.254/latest/?t=***" in line for line in recorder.lines)


@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_no_library_logs_a_secret_even_without_the_redact_filter(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    """Plain caplog at DEBUG, no Redact filter: no library logs a token or secret on its own."""
    # slack_sdk writes '(redacted)' for the Authorization header itself.
    async with started_stack(tmp_path, monkeypatch) as stack:
        if transport == "socket":
            monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
        with _every_logger_at_debug():
            caplog.set_level(logging.DEBUG)
            async with _run_bot(stack, transport, monkeypatch) as bot:
                await _full_flow(stack, bot, http=transport == "http")
            assert _leaks(caplog.text.splitlines(), caplog.records) == []
    assert any("'Authorization': '(redacted)'" in r.getMessage() for r in caplog.records)
    assert {"bot", "slack_sdk", "slack_bolt", "botocore"} <= {
        record.name.split(".")[0] for record in caplog.records
    }


# ------------------------------------------------------------------------------ 3. reviewers


@pytest.fixture
async def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """Reviewers: U0MOD1 directly and U0MOD2 through the user group S0MODS; quorum 1."""
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1,S0MODS")
    async with started_stack(tmp_path, monkeypatch) as stack:
        stack.slack.add_usergroup("S0MODS", ["U0MOD2"])
        stack.slack.add_usergroup("S0OTHERS", ["U0STRANGER"])
        yield stack


async def _open_review(
    stack: Stack, bot: Bot, name: str = "photo.png", size: tuple[int, int] = (320, 240)
) -> dict[str, Any]:
    file = stack.upload(REVIEW_COLOR, name=name, size=size)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    return stack.alerts()[-1]


async def _decisions(bot: Bot) -> list[tuple[str, str | None]]:
    """Votes and verdicts in the audit log, as (action, actor)."""
    rows = await bot.runtime.store.audit_log()
    return [(row["action"], row["actor"]) for row in rows if row["action"] in ("vote", "verdict")]


# Identities that must not count: strangers, a member of another group, the group's own id,
# the reviewer's id in another case or with a space, nobody at all, the bot itself.
IMPOSTORS = ["U0STRANGER", "S0MODS", "u0mod1", "U0MOD1 ", "", "U0BOT", "W0MOD1"]


async def test_clicks_from_others_never_decide_however_many(guarded: Stack) -> None:
    """56 clicks from non-reviewers: all refused, nothing recorded, the review stays open."""
    async with http_bot(guarded) as bot:
        alert = await _open_review(guarded, bot)
        calls_before = [call.method for call in guarded.slack.calls]
        for round_ in range(8):
            for user in IMPOSTORS:
                action = VIOLATION if round_ % 2 else OK
                [refusal] = await _click(guarded, bot, alert, action, user)
                assert refusal["response_type"] == "ephemeral"
                assert "not recorded" in refusal["text"]
        assert await _decisions(bot) == []
        assert _verdicts(guarded, alert) == []
        assert any(block["type"] == "actions" for block in guarded.alerts()[0]["blocks"])
        new_calls = [call.method for call in guarded.slack.calls][len(calls_before) :]
        assert "chat.update" not in new_calls
        assert "chat.postMessage" not in new_calls
        review = await bot.runtime.store.audit_log()
        assert [row["action"] for row in review].count("review_started") == 1


async def test_user_group_member_decides_and_later_clicks_change_nothing(guarded: Stack) -> None:
    """A user-group member decides; later clicks from anyone, many times, change nothing."""
    async with http_bot(guarded) as bot:
        alert = await _open_review(guarded, bot)
        scan = _scan_id(alert)  # the verdict removes the buttons that carry it
        assert await _click(guarded, bot, alert, OK, "U0MOD2") == []  # decided: no ephemeral
        await guarded.slack.wait_for(lambda: bool(_verdicts(guarded, alert)))
        await guarded.slack.wait_for(lambda: "verdict: no violation" in guarded.alerts()[0]["text"])
        decided = await _decisions(bot)
        assert decided == [("vote", "U0MOD2"), ("verdict", "U0MOD2")]
        updates = len(guarded.slack.calls_to("chat.update"))
        for _ in range(5):
            [late] = await _click(guarded, bot, alert, VIOLATION, "U0MOD1", value=scan)
            assert "already decided" in late["text"]
            [refused] = await _click(guarded, bot, alert, VIOLATION, "U0STRANGER", value=scan)
            assert "not recorded" in refused["text"]
        await bot.idle()
        assert await _decisions(bot) == decided
        [verdict] = _verdicts(guarded, alert)
        assert verdict.startswith("Verdict: no violation")
        assert "<@U0MOD2>" in verdict
        assert len(guarded.slack.calls_to("chat.update")) == updates


async def test_direct_reviewer_decides(guarded: Stack) -> None:
    """A user listed by id in MODBOT_REVIEWERS decides; the verdict names them."""
    async with http_bot(guarded) as bot:
        alert = await _open_review(guarded, bot)
        await _click(guarded, bot, alert, VIOLATION, "U0MOD1")
        await guarded.slack.wait_for(lambda: bool(_verdicts(guarded, alert)))
        [verdict] = _verdicts(guarded, alert)
        assert verdict.startswith("Verdict: violation (Exposed Female Nipple)")
        assert "<@U0MOD1>" in verdict


@pytest.mark.parametrize(
    "forged",
    ["0" * 32, "not-a-scan", "' OR '1'='1", "%", "x" * 5000, "clean-scan", "decided-scan"],
    ids=["unknown_hex", "unknown_word", "sql_quote", "sql_wildcard", "huge", "clean", "decided"],
)
async def test_forged_vote_for_unknown_or_decided_scan_changes_nothing(
    guarded: Stack, forged: str
) -> None:
    """A reviewer's click naming a scan with no open review: 'already decided', nothing changes."""
    async with http_bot(guarded) as bot:
        open_alert = await _open_review(guarded, bot, "open.png")
        if forged == "clean-scan":
            clean = guarded.upload(CLEAN_COLOR, name="clean.png")
            await bot.event(payloads.message_event(GENERAL, POSTER, files=[clean]))
            await bot.idle()
            rows = await bot.runtime.store.audit_log()
            forged = next(r["scan_id"] for r in rows if r["detail"].get("decision") == "allow")
        elif forged == "decided-scan":
            decided = await _open_review(guarded, bot, "decided.png", size=(300, 200))
            forged = _scan_id(decided)
            await _click(guarded, bot, decided, OK, "U0MOD1")
            await guarded.slack.wait_for(lambda: bool(_verdicts(guarded, decided)))
        before = await bot.runtime.store.audit_log()
        calls_before = len(guarded.slack.calls)
        for user in ("U0MOD1", "U0MOD2"):
            [answer] = await _click(guarded, bot, open_alert, VIOLATION, user, value=forged)
            assert answer["response_type"] == "ephemeral"
            assert "already decided" in answer["text"]
        await bot.idle()
        assert await bot.runtime.store.audit_log() == before
        new = {call.method for call in guarded.slack.calls[calls_before:]}
        assert new <= {"auth.test", "usergroups.users.list"}
        assert any(block["type"] == "actions" for block in guarded.alerts()[0]["blocks"])
        assert _verdicts(guarded, open_alert) == []


# ------------------------------------------------------------------------------ 4. ephemeral


def _posted_outside_alerts(stack: Stack) -> list[tuple[str, str]]:
    """(method, channel) of every Slack call that would show something outside the alerts
    channel: a message in any other channel, or an ephemeral to anyone."""
    shown = []
    for call in stack.slack.calls:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            channel = str(call.params.get("channel"))
            if call.method == "chat.postEphemeral" or channel != ALERTS:
                shown.append((call.method, channel))
    return shown


async def test_moderate_answers_go_only_to_each_callers_response_url(
    stack: Stack, bot: Bot
) -> None:
    """Three concurrent /moderate callers: each answer reaches only that caller's response_url."""
    stack.web.add("/flag.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
    stack.web.add("/clean.png", make_image(CLEAN_COLOR, (200, 200), "PNG"))
    asks = {
        "U0ALICE": f"{stack.web.url}/flag.png",
        "U0BOB": f"{stack.web.url}/clean.png",
        "U0CAROL": "http://169.254.169.254/latest/meta-data/",
    }
    for user, url in asks.items():
        ack = await bot.command(url, user=user, key=user)
        assert ack["status"] == 200
        assert '"response_type": "ephemeral"' in ack["body"]
    await bot.idle()
    assert set(stack.slack.responses_by_key) == set(asks)
    answers = {user: stack.slack.responses_by_key[user] for user in asks}
    assert all(len(replies) == 1 for replies in answers.values())
    assert all(replies[0]["response_type"] == "ephemeral" for replies in answers.values())
    assert all(replies[0]["replace_original"] is False for replies in answers.values())
    assert answers["U0ALICE"][0]["text"].startswith("Flagged")
    assert "flag.png" in str(answers["U0ALICE"][0])
    assert answers["U0BOB"][0]["text"].startswith("Allowed")
    assert "flag.png" not in str(answers["U0BOB"][0])
    assert answers["U0CAROL"][0]["text"].startswith("Could not scan")
    assert "blocked address 169.254.169.254" in answers["U0CAROL"][0]["text"]
    assert GENERAL not in stack.slack.messages
    assert stack.slack.ephemerals == []
    assert _posted_outside_alerts(stack) == []


async def test_message_shortcut_answers_the_invoker_not_the_poster(stack: Stack, bot: Bot) -> None:
    """The shortcut on someone else's message answers the invoker's response_url, nobody else."""
    file = stack.upload(FLAG_COLOR, name="theirs.png")
    message = payloads.message_event(GENERAL, POSTER, files=[file])["event"]
    url = stack.slack.response_url("invoker")
    response = await bot.interaction(
        payloads.message_shortcut(SHORTCUT, message, GENERAL, "U0INVOKER", url)
    )
    assert response["status"] == 200
    await bot.idle()
    assert set(stack.slack.responses_by_key) == {"invoker"}
    [answer] = stack.slack.responses_by_key["invoker"]
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Flagged")
    assert GENERAL not in stack.slack.messages
    assert stack.slack.ephemerals == []
    assert _posted_outside_alerts(stack) == []


async def test_message_shortcut_on_a_message_without_images_tells_only_the_invoker(
    stack: Stack, bot: Bot
) -> None:
    """The shortcut on a text-only message: 'no images' goes to the invoker's response_url only."""
    message = payloads.message_event(GENERAL, POSTER, text="just words")["event"]
    url = stack.slack.response_url("invoker")
    await bot.interaction(payloads.message_shortcut(SHORTCUT, message, GENERAL, "U0INVOKER", url))
    await stack.slack.wait_for(lambda: bool(stack.slack.responses))
    await bot.idle()
    assert set(stack.slack.responses_by_key) == {"invoker"}
    [answer] = stack.slack.responses_by_key["invoker"]
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "That message has no images or image links to scan."
    assert dict(stack.slack.messages) == {}
    assert stack.slack.ephemerals == []


# ------------------------------------------------------------------------------ 5. token origin


def _authorization_seen(stack: Stack) -> dict[str, list[str]]:
    """Every Authorization header each server received, by server."""
    return {
        "web": [h.headers["Authorization"] for h in stack.web.hits if "Authorization" in h.headers],
        "target": [
            h.headers["Authorization"] for h in stack.target.hits if "Authorization" in h.headers
        ],
    }


def _with_url(file: dict[str, Any], url: str) -> dict[str, Any]:
    return {**file, "url_private": url, "url_private_download": url}


async def test_slack_file_redirected_to_another_origin_is_fetched_there_without_token(
    stack: Stack, bot: Bot
) -> None:
    """A Slack file 302ing to the image server: Slack gets the token, the image server does not."""
    data = make_image(REVIEW_COLOR, (200, 200), "PNG")
    stack.web.add("/moved.png", data)
    file = stack.upload(REVIEW_COLOR, name="moved.png", data=data)
    stack.slack.redirect_file(file["id"], f"{stack.web.url}/moved.png")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    assert [r.authorization for r in stack.slack.file_requests] == [f"Bearer {BOT_TOKEN}"]
    assert len(stack.web.hits_to("/moved.png")) == 1
    assert _authorization_seen(stack) == {"web": [], "target": []}
    [alert] = stack.alerts()
    assert alert["text"].startswith("Needs review")


async def test_redirect_back_from_another_origin_to_a_slack_file_carries_no_token(
    stack: Stack, bot: Bot
) -> None:
    """Slack -> image server -> another Slack file: the token is not re-attached for that file."""
    # Otherwise any server a file redirects to could make the bot read any private file.
    private = stack.upload(FLAG_COLOR, name="private.png", channel="G0SECRET")
    posted = stack.upload(REVIEW_COLOR, name="posted.png")
    stack.slack.redirect_file(posted["id"], f"{stack.web.url}/bounce")
    stack.web.redirect("/bounce", private["url_private_download"])
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[posted]))
    await bot.idle()
    assert _authorization_seen(stack) == {"web": [], "target": []}
    by_file = {r.file_id: r.authorization for r in stack.slack.file_requests}
    assert by_file == {posted["id"]: f"Bearer {BOT_TOKEN}", private["id"]: None}
    assert stack.rekognition_calls() == 0  # the private file's bytes were never obtained
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")


async def test_redirect_from_another_origin_cannot_make_the_bot_call_the_web_api(
    stack: Stack, bot: Bot
) -> None:
    """Slack -> image server -> SLACK_API_URL/chat.postMessage?...: no Web API call as the bot."""
    posted = stack.upload(REVIEW_COLOR, name="posted.png")
    forged_call = f"{stack.slack.api_url}chat.postMessage?channel={ALERTS}&text=pwned"
    stack.slack.redirect_file(posted["id"], f"{stack.web.url}/bounce")
    stack.web.redirect("/bounce", forged_call)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[posted]))
    await bot.idle()
    assert _authorization_seen(stack) == {"web": [], "target": []}
    forged = [
        c for c in stack.slack.calls_to("chat.postMessage") if c.params.get("text") == "pwned"
    ]
    assert [m for m in stack.slack.messages.get(ALERTS, []) if m["text"] == "pwned"] == []
    assert [c.authorization for c in forged] == [None] * len(forged)


async def test_link_redirecting_to_a_slack_file_is_fetched_without_token(
    stack: Stack, bot: Bot
) -> None:
    """/moderate on a link 302ing to a private Slack file: Slack is asked without the token."""
    private = stack.upload(FLAG_COLOR, name="private.png", channel="G0SECRET")
    stack.web.redirect("/innocent.png", private["url_private_download"])
    await bot.command(f"{stack.web.url}/innocent.png", key="asker")
    await bot.idle()
    assert [(r.file_id, r.authorization) for r in stack.slack.file_requests] == [
        (private["id"], None)
    ]
    assert _authorization_seen(stack) == {"web": [], "target": []}
    [answer] = stack.slack.responses_by_key["asker"]
    assert answer["text"].startswith("Could not scan")
    assert stack.rekognition_calls() == 0


@pytest.mark.parametrize("via", ["command", "message_link"])
async def test_slack_file_url_posted_as_a_link_is_fetched_without_token(
    stack: Stack, bot: Bot, via: str
) -> None:
    """A private Slack file URL pasted as a link (chat, /moderate) is fetched without the token."""
    private = stack.upload(FLAG_COLOR, name="private.png", channel="G0SECRET")
    url = private["url_private_download"]
    if via == "command":
        await bot.command(url, key="asker")
    else:
        await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{url}>"))
    await bot.idle()
    assert [r.authorization for r in stack.slack.file_requests] == [None]
    assert stack.rekognition_calls() == 0


# File URLs that look like Slack's but are another origin ({web}: the image server's port,
# {slack}: the fake Slack's host:port, which is SLACK_API_URL's origin).
LOOKALIKES = {
    "slack_files_host_over_http_on_another_port": "http://files.slack.com:{web}/x.png",
    "slack_files_host_as_subdomain": "http://files.slack.com.attacker.test:{web}/x.png",
    "slack_api_host_as_subdomain": "http://slack.com.attacker.test:{web}/x.png",
    "slack_path_on_another_host": "http://attacker.test:{web}/files-pri/T0TEST-F1/x.png",
    "userinfo_slack_files_host": "http://files.slack.com@127.0.0.2:{web}/x.png",
    "userinfo_slack_api_origin": "http://{slack}@127.0.0.2:{web}/x.png",
    "userinfo_with_password": "http://files.slack.com:443@127.0.0.2:{web}/x.png",
}


@pytest.mark.parametrize("case", LOOKALIKES)
async def test_slack_looking_file_url_on_another_origin_gets_no_token(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """A file URL that only looks like Slack's (name, path, user-info) is fetched with no token."""
    names = {
        "files.slack.com": ["127.0.0.2"],
        "files.slack.com.attacker.test": ["127.0.0.2"],
        "slack.com.attacker.test": ["127.0.0.2"],
        "attacker.test": ["127.0.0.2"],
    }
    monkeypatch.setattr(aiohttp, "ThreadedResolver", lambda: MapResolver(names))
    slack = stack.slack.url.removeprefix("http://")
    url = LOOKALIKES[case].format(web=stack.web.port, slack=slack)
    path = url.split(str(stack.web.port), 1)[1]
    stack.web.add(path, make_image(REVIEW_COLOR, (200, 200), "PNG"))
    file = _with_url(stack.upload(REVIEW_COLOR, name="x.png"), url)
    async with http_bot(stack) as bot:
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
    [hit] = stack.web.hits
    assert hit.path == path
    assert "Authorization" not in hit.headers
    assert stack.slack.file_requests == []
    assert _authorization_seen(stack) == {"web": [], "target": []}
    [alert] = stack.alerts()
    assert alert["text"].startswith("Needs review")


async def test_https_userinfo_trick_connects_to_the_host_after_the_at_sign_without_token(
    stack: Stack, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """https://files.slack.com@127.0.0.2:PORT/x.png: the bot contacts 127.0.0.2, with no token."""
    # TLS then fails against the plain-HTTP image server; no server ever sees a token.
    caplog.set_level(logging.INFO, logger="bot.orchestration.pipeline")
    url = f"https://files.slack.com@127.0.0.2:{stack.web.port}/x.png"
    file = _with_url(stack.upload(REVIEW_COLOR, name="x.png"), url)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    # The failure is transient (retried for ~30 s), so wait for the first attempt's log line.
    tried = f"could not connect to 127.0.0.2:{stack.web.port}"
    await stack.slack.wait_for(lambda: any(tried in r.getMessage() for r in caplog.records))
    assert _authorization_seen(stack) == {"web": [], "target": []}
    assert stack.slack.file_requests == []
    assert stack.rekognition_calls() == 0


async def test_slack_api_host_under_another_name_is_not_contacted(stack: Stack, bot: Bot) -> None:
    """The fake Slack named `localhost` instead of 127.0.0.1: no token, and refused as loopback."""
    port = stack.slack.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/files-pri/T0TEST-F0FAKE0001/x.png"
    file = _with_url(stack.upload(REVIEW_COLOR, name="x.png"), url)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    assert stack.slack.file_requests == []
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "blocked address 127.0.0.1" in note["text"]
