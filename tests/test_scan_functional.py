"""The whole bot, over signed HTTP: from a Slack image to an alert with the breakdown."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    ALERTS,
    CLEAN_COLOR,
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REPO_ROOT,
    REVIEW_COLOR,
    Bot,
    Stack,
    http_bot,
)


def _upload_event(stack: Stack, color: tuple[int, int, int], **kw: object) -> dict:
    file = stack.upload(color, **kw)  # type: ignore[arg-type]
    return payloads.message_event(GENERAL, POSTER, text="look", files=[file])


def _no_token_left_slack(stack: Stack) -> None:
    """The bot token reached no host but Slack's own origin."""
    for server in (stack.web, stack.target):
        for hit in server.hits:
            assert "Authorization" not in hit.headers, hit.path


async def test_upload_in_review_band_gives_one_alert_with_tree_breakdown(
    stack: Stack, bot: Bot
) -> None:
    """A review-band upload: one alert in the alerts channel, path `L1 › L2 › L3` and 72.4%."""
    response = await bot.event(_upload_event(stack, REVIEW_COLOR))
    assert response["status"] == 200
    await bot.idle()
    [alert] = stack.alerts()
    assert alert["text"].startswith("Needs review: Exposed Female Nipple 72.4%")
    body = str(alert["blocks"])
    assert "Explicit › Explicit Nudity › Exposed Female Nipple" in body
    assert "72.4%" in body
    assert stack.rekognition_calls() == 1
    [download] = stack.slack.file_requests
    assert download.authorization == "Bearer xoxb-test-token"  # Slack's own origin only


async def test_flagged_upload_names_every_label_and_the_decision(stack: Stack, bot: Bot) -> None:
    """A flag: header says Flagged, every returned label name appears, 97.3% rounded."""
    await bot.event(_upload_event(stack, FLAG_COLOR))
    await bot.idle()
    [alert] = stack.alerts()
    body = str(alert["blocks"])
    assert alert["text"].startswith("Flagged: Exposed Male Genitalia 97.3%")
    for name in ("Explicit", "Explicit Nudity", "Exposed Male Genitalia", "Violence", "Weapons"):
        assert name in body
    assert "Model 7.0" in body


async def test_clean_image_produces_no_alert(stack: Stack, bot: Bot) -> None:
    """An image with no moderation labels is allowed silently."""
    await bot.event(_upload_event(stack, CLEAN_COLOR))
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert stack.slack.messages.get(ALERTS, []) == []


async def test_redelivered_event_produces_nothing_new(stack: Stack, bot: Bot) -> None:
    """The same event again with X-Slack-Retry-Num: 200, no second call, no second alert."""
    event = _upload_event(stack, REVIEW_COLOR)
    await bot.event(event)
    await bot.idle()
    again = await bot.event(event, retry=1)
    assert again["status"] == 200
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert len(stack.alerts()) == 1


async def test_one_file_through_two_events_is_scanned_once(stack: Stack, bot: Bot) -> None:
    """file_shared and the file_share message for one upload make one scan and one alert."""
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.file_shared_event(file["id"], GENERAL, POSTER))
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert len(stack.alerts()) == 1


async def test_repost_of_same_bytes_reuses_the_result(stack: Stack, bot: Bot) -> None:
    """The same image in a new message: no new Rekognition call; the alert says seen before."""
    data = make_image(REVIEW_COLOR, (300, 300), "PNG")
    for name in ("first.png", "again.png"):
        file = stack.upload(REVIEW_COLOR, name=name, data=data)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
    assert stack.rekognition_calls() == 1
    first, second = stack.alerts()
    first_link = f"https://fake.slack.com/archives/{ALERTS}/p{first['ts'].replace('.', '')}"
    assert "Seen before" in str(second["blocks"])
    assert f"<{first_link}|earlier alert>" in str(second["blocks"])
    assert "Seen before" not in str(first["blocks"])


async def test_moderate_command_gets_an_ephemeral_breakdown(stack: Stack, bot: Bot) -> None:
    """/moderate <url>: immediate ephemeral ack, then the breakdown via response_url."""
    stack.web.add("/pic.png", make_image(REVIEW_COLOR, (200, 200), "PNG"))
    response = await bot.command(f"{stack.web.url}/pic.png", key="mod1")
    assert response["status"] == 200
    assert "Scanning" in response["body"]
    await bot.idle()
    [answer] = stack.slack.responses_by_key["mod1"]
    assert answer["response_type"] == "ephemeral"
    assert "Exposed Female Nipple" in str(answer["blocks"])
    assert "72.4%" in str(answer["blocks"])
    _no_token_left_slack(stack)


async def test_moderate_clean_image_still_answers_the_caller(stack: Stack, bot: Bot) -> None:
    """A clean /moderate scan posts nothing in channels but answers the caller: Allowed."""
    stack.web.add("/ok.png", make_image(CLEAN_COLOR, (200, 200), "PNG"))
    await bot.command(f"{stack.web.url}/ok.png", key="ok")
    await bot.idle()
    [answer] = stack.slack.responses_by_key["ok"]
    assert answer["text"].startswith("Allowed")
    assert stack.slack.messages.get(ALERTS, []) == []


async def test_moderate_help_and_policy(stack: Stack, bot: Bot) -> None:
    """/moderate help prints usage; /moderate policy prints the thresholds in force."""
    help_reply = await bot.command("help")
    assert "/moderate" in help_reply["body"]
    policy_reply = await bot.command("policy")
    assert "Review at 50% or more, flag at 90% or more" in policy_reply["body"]


async def test_metadata_address_link_is_refused_with_a_message(stack: Stack, bot: Bot) -> None:
    """A link to the cloud metadata address: a Could not scan note, no scan, no fetch."""
    event = payloads.message_event(
        GENERAL, POSTER, text="<http://169.254.169.254/latest/meta-data/>"
    )
    await bot.event(event)
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "blocked address 169.254.169.254" in note["text"]
    assert stack.rekognition_calls() == 0


async def test_redirect_to_loopback_is_refused_and_target_never_contacted(
    stack: Stack, bot: Bot
) -> None:
    """An allowed host redirecting to 127.0.0.1: refused with a message; the target gets nothing."""
    stack.target.add("/secret.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
    stack.web.redirect("/go.png", f"{stack.target.url}/secret.png")
    await bot.command(f"{stack.web.url}/go.png", key="redir")
    await bot.idle()
    [answer] = stack.slack.responses_by_key["redir"]
    assert answer["text"].startswith("Could not scan")
    assert "blocked address 127.0.0.1" in answer["text"]
    assert stack.target.hits == []
    assert stack.rekognition_calls() == 0


async def test_file_claiming_to_be_an_image_but_not_one_is_reported(stack: Stack, bot: Bot) -> None:
    """A .png that is really text: a visible Could not scan note naming the file and poster."""
    file = stack.upload(REVIEW_COLOR, name="fake.png", data=b"hello, I am not a picture")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "not an image" in note["text"]
    assert "fake.png" in note["text"]
    assert POSTER in note["text"]


async def test_rekognition_errors_are_visible_and_throttling_is_retried(
    stack: Stack, bot: Bot
) -> None:
    """InvalidImageFormatException is reported; two throttles are retried into one alert."""
    stack.aws.fail_next("InvalidImageFormatException")
    await bot.event(_upload_event(stack, REVIEW_COLOR, name="a.png"))
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "Rekognition could not read the image format" in note["text"]
    [failed] = [r for r in await bot.runtime.store.audit_log() if r["action"] == "scan_failed"]
    assert failed["detail"]["error"] == "Rekognition could not read the image format"
    stack.aws.fail_next("ThrottlingException", count=2)
    await bot.event(_upload_event(stack, FLAG_COLOR, name="b.png"))
    await bot.idle()
    note, alert = stack.alerts()
    assert alert["text"].startswith("Flagged")
    assert [c.error for c in stack.aws.calls[1:]] == [
        "ThrottlingException",
        "ThrottlingException",
        None,
    ]


async def test_web_page_links_are_ignored_quietly(stack: Stack, bot: Bot) -> None:
    """A link to an HTML page is not an image: no scan and no note."""
    stack.web.html("/article")
    await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{stack.web.url}/article>"))
    await bot.idle()
    assert stack.rekognition_calls() == 0
    assert stack.slack.messages.get(ALERTS, []) == []


async def test_healthz_reports_the_store(stack: Stack, bot: Bot) -> None:
    """GET /healthz answers 200 with a small JSON body when the database is reachable."""
    import aiohttp

    url = bot.url.replace("/slack/events", "/healthz")  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        body = await response.json()
    assert body["ok"] is True
    assert body["store"] == "ok"


async def test_bad_signature_is_refused_and_nothing_is_done(stack: Stack, bot: Bot) -> None:
    """A request signed with another secret gets 401 and is not scanned."""
    import aiohttp

    raw, content_type = payloads.http_body("events", _upload_event(stack, REVIEW_COLOR))
    headers = {**payloads.signed_headers("wrong-secret", raw), "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            bot.url,
            data=raw.encode(),
            headers=headers,  # type: ignore[attr-defined]
        ) as response,
    ):
        assert response.status == 401
    await bot.idle()
    assert stack.rekognition_calls() == 0


async def test_auth_test_is_called_once_at_start(stack: Stack, bot: Bot) -> None:
    """auth.test runs once when the bot starts, not again from a burst of concurrent events."""
    events = [_upload_event(stack, CLEAN_COLOR, name=f"c{n}.png") for n in range(10)]
    replies = await asyncio.gather(*(bot.event(event) for event in events))
    assert {reply["status"] for reply in replies} == {200}
    await bot.idle()
    assert len(stack.slack.calls_to("auth.test")) == 1


async def test_auth_test_failing_at_start_is_asked_again_once_by_the_first_requests(
    stack: Stack,
) -> None:
    """Slack cannot answer auth.test at start: the bot starts anyway, and the first burst of
    events asks once more between them, then scans as usual."""
    stack.slack.fail_next("auth.test", 200, {"ok": False, "error": "fatal_error"})
    async with http_bot(stack) as bot:
        assert len(stack.slack.calls_to("auth.test")) == 1
        events = [_upload_event(stack, REVIEW_COLOR, name=f"r{n}.png") for n in range(5)]
        replies = await asyncio.gather(*(bot.event(event) for event in events))
        assert {reply["status"] for reply in replies} == {200}
        await bot.idle()
        assert len(stack.slack.calls_to("auth.test")) == 2
        assert len(stack.alerts()) == 5


async def test_the_bots_own_upload_is_not_scanned(stack: Stack, bot: Bot) -> None:
    """An image event from the bot's own user (as auth.test names it) is dropped by Bolt."""
    file = stack.upload(REVIEW_COLOR)
    own = payloads.message_event(GENERAL, stack.slack.bot_user, text="mine", files=[file])
    assert (await bot.event(own))["status"] == 200
    await bot.event(_upload_event(stack, CLEAN_COLOR))  # scanned, so the first had its turn
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert stack.alerts() == []


async def test_token_slack_refuses_stops_the_start_with_one_line(stack: Stack) -> None:
    """A bot token Slack answers invalid_auth to: `modbot serve` exits 2 saying so."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SLACK_BOT_TOKEN": "xoxb-revoked-one"}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--http",
        "--port",
        "0",
        env=env,
        cwd=stack.tmp,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(60):
        _, stderr = await child.communicate()
    assert child.returncode == 2
    lines = stderr.decode().splitlines()
    assert "modbot: SLACK_BOT_TOKEN: Slack refused it (invalid_auth)" in lines
    assert "Traceback" not in stderr.decode()
