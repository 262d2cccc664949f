"""Pipeline hardening: Slack and AWS trouble never lose a flag, notes never starve alerts, slow
links never hold up uploads, a crashing scan is not retried forever, nothing stays pending."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from bot.adapters.database.scans import Store
from bot.core.model import ImageRef, Origin, ScanRequest, Trigger
from bot.settings import load_settings
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import ALERTS, FLAG_COLOR, GENERAL, POSTER, Bot, BotProcess, Stack, http_bot


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a few tenths of a second apart, for up to a minute (instead of up to an hour)."""
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("MODBOT_RETRY_LIMIT_SECONDS", "60")
    monkeypatch.setenv("MODBOT_SHUTDOWN_GRACE_SECONDS", "1")


async def _flagged_upload(stack: Stack, bot: Bot, name: str = "flag.png", n: int = 0) -> None:
    data = make_image(FLAG_COLOR, (200 + n, 150), "PNG")  # distinct bytes per n
    file = stack.upload(FLAG_COLOR, name=name, data=data)
    reply = await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    assert reply["status"] == 200


def _flag_alerts(stack: Stack) -> list[dict[str, object]]:
    return [a for a in stack.alerts() if str(a["text"]).startswith("Flagged")]


def _notes(stack: Stack) -> list[str]:
    return [str(a["text"]) for a in stack.alerts() if str(a["text"]).startswith("Could not scan")]


# -- Slack trouble while posting an alert -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "count", "headers"),
    [(503, 8, {}), (429, 12, {"Retry-After": "0"})],
    ids=["4+-503s", "9+-429s"],
)
async def test_slack_errors_beyond_sdk_retries_still_post_the_alert(
    stack: Stack, status: int, count: int, headers: dict[str, str]
) -> None:
    """chat.postMessage failing more often than slack_sdk retries (4 x 503, 9 x 429 per call):
    the flagged image is still alerted, not reported as "Could not scan … internal error"."""
    stack.slack.fail_next("chat.postMessage", status, headers=headers, count=count)
    async with http_bot(stack) as bot:
        await _flagged_upload(stack, bot)
        await bot.idle(within=60)
        assert await bot.runtime.store.status_counts() == {"done": 1}
    assert len(_flag_alerts(stack)) == 1
    assert _notes(stack) == []


async def test_permanent_slack_error_on_the_alert_is_reported_at_once(stack: Stack) -> None:
    """chat.postMessage answering channel_not_found is not retried: the scan fails at once
    with Slack's error named in the note (here the note itself gets through)."""
    stack.slack.fail_next("chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})
    async with http_bot(stack) as bot:
        await _flagged_upload(stack, bot)
        await bot.idle(within=10)
        assert await bot.runtime.store.status_counts() == {"failed": 1}
    assert len(stack.slack.calls_to("chat.postMessage")) == 2  # the alert once, then the note
    [note] = _notes(stack)
    assert note.startswith("Could not scan `flag.png` posted by <@U0POSTER>")
    assert "channel_not_found" in note


async def test_slack_outage_keeps_the_scan_until_the_alert_is_posted(stack: Stack) -> None:
    """Every Web API connection dropped for a while: the scan stays pending and is retried with
    backoff; once Slack is back the alert is posted once and nothing is reported as failed."""
    async with http_bot(stack) as bot:
        stack.slack.start_outage(drop_connections=True)
        await _flagged_upload(stack, bot)
        # The post failed beyond slack_sdk's own retries, and the scan was retried (it first
        # looks in the channel's history for an alert that may have got through).
        await stack.slack.wait_for(
            lambda: (
                len(stack.slack.calls_to("chat.postMessage")) >= 4
                and len(stack.slack.calls_to("conversations.history")) >= 1
            ),
            timeout=30,
        )
        assert await bot.runtime.store.status_counts() == {"pending": 1}
        stack.slack.end_outage()
        await bot.idle(within=30)
        assert await bot.runtime.store.status_counts() == {"done": 1}
    assert len(_flag_alerts(stack)) == 1
    assert _notes(stack) == []


async def test_note_that_cannot_be_posted_is_retried_not_left_pending(stack: Stack) -> None:
    """Slack answering 503 to every call when a dead link's note is due: the note is retried
    until Slack is back; the scan ends `failed` with its note posted, never stuck pending."""
    async with http_bot(stack) as bot:
        stack.slack.start_outage()
        url = f"{stack.web.url}/gone.png"
        await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{url}>"))
        await stack.slack.wait_for(
            lambda: len(stack.slack.calls_to("chat.postMessage")) >= 8, timeout=30
        )
        stack.slack.end_outage()
        await bot.idle(within=30)
        assert await bot.runtime.store.status_counts() == {"failed": 1}
    [note] = _notes(stack)
    assert "/gone.png" in note
    assert "HTTP 404" in note


async def test_dead_link_flood_never_starves_flag_alerts(stack: Stack) -> None:
    """Slack's per-channel limit (about 1 post/s, 429 beyond a short burst) and messages full
    of dead .png links posted with real flagged uploads: every flag is alerted, every scan ends
    done or failed, and the dead links cost a few summarised notes, not one post each."""
    stack.slack.rate_limit("chat.postMessage", per_second=1.0, burst=3)
    dead = [f"{stack.web.url}/dead-{m}-{n}.png" for m in range(4) for n in range(10)]
    async with http_bot(stack) as bot:
        for m in range(4):
            text = " ".join(f"<{url}>" for url in dead[m * 10 : m * 10 + 10])
            await bot.event(payloads.message_event(GENERAL, POSTER, text=text))
            await _flagged_upload(stack, bot, name=f"flag-{m}.png", n=m)
        await bot.idle(within=60)
        assert await bot.runtime.store.status_counts() == {"done": 4, "failed": 40}
    assert len(_flag_alerts(stack)) == 4
    notes = _notes(stack)
    assert 1 <= len(notes) <= 4
    named = sum(1 for url in dead if any(f"{url}>" in note for note in notes))
    counted = sum(int(n) for note in notes for n in re.findall(r"… and (\d+) more", note))
    assert named + counted == len(dead)
    summaries = [note for note in notes if re.match(r"Could not scan \d+ images:", note)]
    assert summaries  # the flood really was summarised


# -- Rekognition outages ------------------------------------------------------------------------


async def test_rekognition_outage_longer_than_the_old_budget_still_alerts(stack: Stack) -> None:
    """Rekognition answering 500 to every call, for more calls than the old 5 x 8 attempts:
    the scan keeps being retried, and once Rekognition is back the flag is alerted."""
    stack.aws.set_fault_rate(1.0, ("InternalServerError",))
    async with http_bot(stack) as bot:
        await _flagged_upload(stack, bot)
        await stack.slack.wait_for(lambda: len(stack.aws.calls) > 45, timeout=30)
        assert await bot.runtime.store.status_counts() == {"pending": 1}
        stack.aws.set_fault_rate(0.0)
        await bot.idle(within=30)
        assert await bot.runtime.store.status_counts() == {"done": 1}
    assert len(_flag_alerts(stack)) == 1
    assert _notes(stack) == []


async def test_rekognition_outage_past_the_retry_limit_is_reported(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage that outlasts MODBOT_RETRY_LIMIT_SECONDS is then reported, with the reason."""
    monkeypatch.setenv("MODBOT_RETRY_LIMIT_SECONDS", "1")
    stack.aws.set_fault_rate(1.0, ("InternalServerError",))
    async with http_bot(stack) as bot:
        await _flagged_upload(stack, bot)
        await bot.idle(within=30)
        assert await bot.runtime.store.status_counts() == {"failed": 1}
    [note] = _notes(stack)
    assert note.startswith("Could not scan `flag.png` posted by <@U0POSTER>")
    assert "Rekognition had an internal error" in note


# -- Slow links ---------------------------------------------------------------------------------


async def test_never_answering_links_do_not_hold_up_an_upload(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty links that never answer (more than all workers of the default setup), posted
    before a real upload: the upload's alert comes at once, long before the links' download
    deadline (MODBOT_LINK_TIMEOUT_SECONDS, 15 s)."""
    monkeypatch.setenv("MODBOT_REKOGNITION_TPS", "5")  # the default: 14 scan workers
    for n in range(30):
        stack.web.stall(f"/slow-{n}.png")
    async with http_bot(stack) as bot:
        for m in range(3):  # at most 10 links are taken from one message
            text = " ".join(f"<{stack.web.url}/slow-{m * 10 + n}.png>" for n in range(10))
            await bot.event(payloads.message_event(GENERAL, POSTER, text=text))
        await stack.slack.wait_for(lambda: len(stack.web.hits) >= 1, timeout=5)
        started = time.monotonic()
        await _flagged_upload(stack, bot)
        await stack.slack.wait_for(lambda: len(_flag_alerts(stack)) == 1, timeout=10)
        assert time.monotonic() - started < 5


async def test_link_that_times_out_is_not_retried(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link that never answers within its deadline is fetched once, then reported."""
    monkeypatch.setenv("MODBOT_LINK_TIMEOUT_SECONDS", "0.5")
    stack.web.stall("/never.png")
    async with http_bot(stack) as bot:
        await bot.event(
            payloads.message_event(GENERAL, POSTER, text=f"<{stack.web.url}/never.png>")
        )
        await bot.idle(within=20)
        assert await bot.runtime.store.status_counts() == {"failed": 1}
    assert len(stack.web.hits_to("/never.png")) == 1
    [note] = _notes(stack)
    assert "download timed out after 0.5 s" in note


# -- Crashes, bugs and forgotten scans ----------------------------------------------------------


def _upload_request(stack: Stack, name: str) -> ScanRequest:
    file = stack.upload(FLAG_COLOR, name=name)
    return ScanRequest(
        image=ImageRef(url=file["url_private_download"], file_id=file["id"], name=name),
        origin=Origin(Trigger.UPLOAD, channel=GENERAL, user=POSTER, message_ts="1.000001"),
        dedup_key=f"file:{file['id']}",
    )


async def test_scan_that_crashed_the_process_three_times_is_reported_not_retried(
    stack: Stack,
) -> None:
    """A pending scan started three times without ever ending (each start took the process
    down) is reported as Could not scan at the next start, and not scanned a fourth time."""
    store = Store.from_url(load_settings().sqlalchemy_url)
    await store.upgrade()
    [scan_id] = await store.accept([_upload_request(stack, "crasher.png")])
    for _ in range(3):  # counted before the work: what three crashed runs leave behind
        assert await store.begin_run(scan_id) is not None
    await store.close()
    async with http_bot(stack) as bot:
        await bot.idle()
        assert await bot.runtime.store.status_counts() == {"failed": 1}
    assert stack.rekognition_calls() == 0
    [note] = _notes(stack)
    assert note.startswith("Could not scan `crasher.png` posted by <@U0POSTER>")
    assert "modbot stopped 3 times while scanning it" in note


async def test_crash_loop_reports_only_the_scan_that_was_running_each_time(
    stack: Stack,
) -> None:
    """A real process killed three times: first with two scans in flight, then each time while
    resumed scans run one at a time. Only the scan that was running at every kill is reported
    as having stopped modbot three times; the other is scanned and alerted."""
    stack.aws.set_latency(5)  # long enough to kill the process during the Rekognition call
    bot = BotProcess(stack)
    await bot.start()
    for n, name in enumerate(("first.png", "second.png")):
        data = make_image(FLAG_COLOR, (200 + n, 150), "PNG")
        file = stack.upload(FLAG_COLOR, name=name, data=data)
        assert await bot.event(payloads.message_event(GENERAL, POSTER, files=[file])) == 200
    await stack.slack.wait_for(lambda: len(stack.aws.calls) >= 2, timeout=20)
    await bot.kill()
    for calls in (3, 4):  # resumed one at a time: the oldest runs (and is killed) alone
        bot = BotProcess(stack)
        await bot.start()
        await stack.slack.wait_for(lambda calls=calls: len(stack.aws.calls) >= calls, timeout=20)
        await bot.kill()
    stack.aws.set_latency(0)
    bot = BotProcess(stack)
    await bot.start()
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= 2, timeout=20)
    assert await bot.terminate() == 0
    [note] = _notes(stack)
    assert note.startswith("Could not scan `first.png` posted by <@U0POSTER>")
    assert "modbot stopped 3 times while scanning it" in note
    [alert] = _flag_alerts(stack)
    assert "second.png" in str(alert["blocks"])


async def test_pending_scan_nobody_works_on_is_picked_up_by_the_sweep(stack: Stack) -> None:
    """A scan recorded as pending but queued nowhere (as after a lost retry) is found by the
    periodic sweep and carried to its alert without a restart."""
    async with http_bot(stack) as bot:
        await bot.runtime.store.accept([_upload_request(stack, "forgotten.png")])
        await stack.slack.wait_for(lambda: len(_flag_alerts(stack)) == 1, timeout=10)
        await bot.idle()
        assert await bot.runtime.store.status_counts() == {"done": 1}


async def test_unexpected_error_is_retried_then_the_flag_is_alerted(stack: Stack) -> None:
    """A bug (an unexpected exception) in one run does not lose the flag: the scan is retried
    and alerted."""
    async with http_bot(stack) as bot:
        store = bot.runtime.store
        original = store.save_detection
        raised = []

        async def flaky(*args: object, **kwargs: object) -> None:
            if not raised:
                raised.append(True)
                raise RuntimeError("a bug")
            await original(*args, **kwargs)  # type: ignore[arg-type]

        store.save_detection = flaky  # type: ignore[method-assign]
        await _flagged_upload(stack, bot)
        await bot.idle(within=20)
        assert await store.status_counts() == {"done": 1}
    assert raised
    assert len(_flag_alerts(stack)) == 1


async def test_persistent_bug_is_reported_after_a_few_tries(stack: Stack) -> None:
    """An unexpected exception every time: retried a bounded number of times, then reported."""
    async with http_bot(stack) as bot:
        store = bot.runtime.store
        calls = []

        async def broken(*_args: object, **_kwargs: object) -> None:
            calls.append(True)
            raise RuntimeError("a bug")

        store.save_detection = broken  # type: ignore[method-assign]
        await _flagged_upload(stack, bot)
        await bot.idle(within=20)
        assert await store.status_counts() == {"failed": 1}
    assert len(calls) == 4  # the first run and three retries
    [note] = _notes(stack)
    assert "internal error" in note


# -- Finding an alert after a crash in a busy channel -------------------------------------------


async def test_crash_recovery_finds_the_alert_behind_more_than_200_messages(
    stack: Stack, tmp_path: Path
) -> None:
    """The alert reached Slack, then the bot stopped before saving it, then 250 other messages
    were posted to the alerts channel: the restart pages through the history from the alert
    intent's time and finds it; no second alert."""
    saving = asyncio.Event()
    async with http_bot(stack) as bot:

        async def stuck(*_args: object) -> None:
            saving.set()
            await asyncio.Event().wait()  # the process "dies" here

        bot.runtime.store.complete_alert = stuck  # type: ignore[method-assign]
        await _flagged_upload(stack, bot)
        await asyncio.wait_for(saving.wait(), 10)
        await bot.runtime.pipeline.stop(grace=0.1)
    for n in range(250):
        stack.slack.post_message(ALERTS, f"chatter {n}")
    async with http_bot(stack) as bot:
        await bot.idle()
        assert await bot.runtime.store.status_counts() == {"done": 1}
    assert len(_flag_alerts(stack)) == 1
    pages = stack.slack.calls_to("conversations.history")
    assert len(pages) >= 2
    assert all(float(call.params["oldest"]) > 0 for call in pages)
