"""HMA as a partner (PRODUCT §11): a match in a named bank flags without Rekognition, confirmed
violations are pushed, and an HMA that fails, talks garbage or hangs never stops a scan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.hma import HmaClient
from bot.adapters.images.pdq import hash_prepared
from bot.adapters.images.prepare import prepare_image
from tests.fakes import slack_payloads as payloads
from tests.fakes.hma import FakeHma
from tests.fakes.images import mean_color
from tests.fakes.scenes import jpeg, scene
from tests.harness import ALERTS, GENERAL, POSTER, Bot, Stack, started_stack, until

TOKEN = "hma-proxy-token"


@pytest.fixture
async def hma() -> AsyncIterator[FakeHma]:
    fake = FakeHma(required_header=("Authorization", f"Bearer {TOKEN}"))
    fake.add_bank("PARTNER_BANK")
    fake.add_bank("OTHER_BANK")
    fake.add_bank("MODBOT_CONFIRMED")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hma: FakeHma
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_BANK_REFRESH_SECONDS", "0.1")
    monkeypatch.setenv("MODBOT_HMA_URL", hma.url)
    monkeypatch.setenv("MODBOT_HMA_BANKS", "PARTNER_BANK")
    monkeypatch.setenv("MODBOT_HMA_PUSH_BANK", "MODBOT_CONFIRMED")
    monkeypatch.setenv("MODBOT_HMA_TOKEN", TOKEN)
    monkeypatch.setenv("MODBOT_HMA_TIMEOUT_SECONDS", "0.5")
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


def _client(bot: Bot) -> HmaClient:
    near = bot.runtime.near
    assert near is not None
    assert isinstance(near.partner, HmaClient)
    return near.partner


def _pdq(data: bytes) -> str:
    return hash_prepared(prepare_image(data)).pdq


async def _post(stack: Stack, bot: Bot, data: bytes, name: str) -> None:
    file = stack.upload((0, 0, 0), data=data, name=name, mimetype="image/jpeg")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()


def _script_review(stack: Stack, data: bytes) -> None:
    colour = tuple(round(c) for c in mean_color(data))
    stack.aws.script(colour, {"Exposed Female Nipple": 72.4})  # type: ignore[arg-type]


async def test_a_match_in_a_named_bank_flags_without_rekognition(
    stack: Stack, bot: Bot, hma: FakeHma
) -> None:
    """The alert names the bank and the distance; the token reached HMA; no detector call."""
    data = jpeg(scene(11))
    hma.bank_signal("PARTNER_BANK", _pdq(jpeg(scene(11), 60)))  # HMA's copy: another encoding
    await _post(stack, bot, data, "banked.jpg")

    assert stack.rekognition_calls() == 0
    [alert] = stack.alerts()
    assert alert["text"].startswith("Flagged: match in HMA bank PARTNER_BANK")
    text = str(alert["blocks"])
    assert "Match in HMA bank `PARTNER_BANK`" in text
    assert "of 256 bits" in text
    [lookup] = [call for call in hma.calls if call.path == "/m/lookup"]
    assert lookup.query == {"signal_type": "pdq", "signal": _pdq(data)}
    assert lookup.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_match_in_a_bank_not_named_is_ignored(stack: Stack, bot: Bot, hma: FakeHma) -> None:
    """Only MODBOT_HMA_BANKS count: a match elsewhere leaves the scan to Rekognition."""
    data = jpeg(scene(11))
    hma.bank_signal("OTHER_BANK", _pdq(data))
    await _post(stack, bot, data, "elsewhere.jpg")
    assert stack.rekognition_calls() == 1
    assert _client(bot).counts["lookups"] == 1
    assert _client(bot).counts["matches"] == 0


async def test_confirmed_violations_are_pushed_to_the_push_bank(
    stack: Stack, bot: Bot, hma: FakeHma
) -> None:
    """A violation verdict's hash is added with POST /c/bank/MODBOT_CONFIRMED/signal."""
    data = jpeg(scene(12))
    _script_review(stack, data)
    await _post(stack, bot, data, "reviewed.jpg")
    [alert] = stack.alerts()
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    scan_id = actions["elements"][0]["value"]
    body = payloads.block_action(
        "modbot_review_violation",
        scan_id,
        "U0MOD",
        ALERTS,
        alert["ts"],
        stack.slack.response_url("v"),
    )
    assert (await bot.interaction(body))["status"] == 200

    async def pushed() -> bool:
        return bool(hma.banks["MODBOT_CONFIRMED"])

    await until(pushed, "the push to HMA")
    [(_, pdq)] = hma.banks["MODBOT_CONFIRMED"]
    assert pdq == _pdq(data)
    [push] = [call for call in hma.calls if call.method == "POST"]
    assert push.path == "/c/bank/MODBOT_CONFIRMED/signal"
    assert push.body == {"pdq": pdq}


@pytest.mark.parametrize("fault", ["500", "garbage", "slow"])
async def test_an_hma_outage_never_stops_or_slows_scanning(
    stack: Stack, bot: Bot, hma: FakeHma, fault: str
) -> None:
    """HMA answering 500s, HTML or nothing in time: every image is scanned as if HMA were not
    configured; after three failures HMA is skipped (circuit breaker) instead of waited on."""
    if fault == "500":
        hma.fail_with = 500
    elif fault == "garbage":
        hma.garbage = True
    else:
        hma.delay = 5.0
    data = [jpeg(scene(seed)) for seed in (20, 21, 22, 23, 24)]
    hma.bank_signal("PARTNER_BANK", _pdq(data[0]))  # would match, were HMA well
    started = time.monotonic()
    for number, image in enumerate(data):
        await _post(stack, bot, image, f"image{number}.jpg")
    elapsed = time.monotonic() - started

    assert stack.rekognition_calls() == 5  # every image scanned by the detector
    counts = _client(bot).counts
    assert counts["failures"] == 3
    assert counts["skipped"] == 2  # the breaker is open: no more waiting on HMA
    # Three lookups cost at most their 0.5 s deadline each; the rest none.
    assert elapsed < 5 * 1.5 + 3 * 0.5
