"""The HMA client against the fake HMA over real HTTP: the answers it reads, the header it
sends, what it retries, and the circuit breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.adapters.hma import HmaClient, HmaConfig, parse_lookup
from bot.core.pdq import PartnerMatch
from tests.fakes.hma import FakeHma

PDQ = "5a" * 32


@pytest.fixture
async def hma() -> AsyncIterator[FakeHma]:
    fake = FakeHma()
    fake.add_bank("BANK_A")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_both_of_hmas_lookup_shapes_are_read() -> None:
    """Today's object of bank -> matches (distance as a string), and the older list of names."""
    body = {
        "BANK_A": [{"bank_content_id": 1, "distance": "12"}, {"bank_content_id": 2, "distance": 4}],
        "BANK_B": [{"bank_content_id": 3, "distance": "0"}],
    }
    assert parse_lookup(body, ("BANK_A",)) == PartnerMatch("BANK_A", 4)
    assert parse_lookup(body, ("BANK_C",)) is None
    assert parse_lookup(["BANK_B", "BANK_A"], ("BANK_A",)) == PartnerMatch("BANK_A", None)
    assert parse_lookup({}, ("BANK_A",)) is None


@pytest.mark.parametrize(
    "body",
    [
        "<html>",
        7,
        [1, 2],
        {"BANK_A": "x"},
        {"BANK_A": [{"id": 1}]},
        {"BANK_A": [{"distance": "?"}]},
    ],
)
def test_garbage_is_refused(body: object) -> None:
    with pytest.raises(ValueError, match=r"lookup answer|match in bank|number of bits"):
        parse_lookup(body, ("BANK_A",))


async def test_lookup_sends_the_token_and_finds_the_bank(
    hma: FakeHma, session: aiohttp.ClientSession
) -> None:
    """Bearer token in Authorization; a hash 3 bits away matches."""
    hma.required_header = ("Authorization", "Bearer t0ken")
    hma.bank_signal("BANK_A", f"{int(PDQ, 16) ^ 0b1011:064x}")
    client = HmaClient(session, HmaConfig(hma.url, banks=("BANK_A",), token="t0ken"))
    assert await client.lookup(PDQ) == PartnerMatch("BANK_A", 3)
    assert client.counts["matches"] == 1


async def test_a_custom_header_carries_the_token_as_is(
    hma: FakeHma, session: aiohttp.ClientSession
) -> None:
    hma.required_header = ("X-Api-Key", "k3y")
    config = HmaConfig(hma.url, banks=("BANK_A",), token="k3y", auth_header="X-Api-Key")
    client = HmaClient(session, config)
    assert await client.lookup(PDQ) is None
    assert client.counts["lookups"] == 1
    assert client.counts["failures"] == 0


async def test_5xx_is_retried_once_4xx_never(hma: FakeHma, session: aiohttp.ClientSession) -> None:
    """A 500 gets one more try within the deadline; a 401 (wrong token) none."""
    client = HmaClient(session, HmaConfig(hma.url, banks=("BANK_A",)))
    hma.fail_with = 500
    assert await client.lookup(PDQ) is None
    assert len(hma.calls) == 2
    hma.fail_with = None
    hma.required_header = ("Authorization", "Bearer right")
    assert await client.lookup(PDQ) is None
    assert len(hma.calls) == 3
    assert client.counts["failures"] == 2


async def test_the_breaker_skips_hma_then_tries_again(
    hma: FakeHma, session: aiohttp.ClientSession
) -> None:
    """Three failures: skipped without a request until the cooldown ends; a success closes it."""
    clock = Clock()
    config = HmaConfig(hma.url, banks=("BANK_A",), retries=0, breaker_cooldown=30)
    client = HmaClient(session, config, clock=clock)
    hma.garbage = True
    for _ in range(3):
        assert await client.lookup(PDQ) is None
    assert len(hma.calls) == 3
    assert await client.lookup(PDQ) is None
    assert len(hma.calls) == 3
    assert client.counts["skipped"] == 1
    hma.garbage = False
    clock.now = 31
    assert await client.lookup(PDQ) is None  # the trial: answered, no match
    assert len(hma.calls) == 4
    assert not client.breaker.open


async def test_a_slow_hma_costs_at_most_the_deadline(
    hma: FakeHma, session: aiohttp.ClientSession
) -> None:
    hma.delay = 3.0
    client = HmaClient(session, HmaConfig(hma.url, banks=("BANK_A",), timeout=0.3))
    assert await client.lookup(PDQ) is None
    assert client.counts["failures"] == 1


async def test_push_adds_to_the_bank_and_an_unknown_bank_fails(
    hma: FakeHma, session: aiohttp.ClientSession
) -> None:
    client = HmaClient(session, HmaConfig(hma.url, push_bank="BANK_A"))
    assert await client.push(PDQ)
    assert [pdq for _, pdq in hma.banks["BANK_A"]] == [PDQ]
    missing = HmaClient(session, HmaConfig(hma.url, push_bank="NO_SUCH_BANK"))
    assert not await missing.push(PDQ)
    assert missing.counts["push_failures"] == 1
