"""Properties of the payload and URL parsers under arbitrary input (Hypothesis).

bot/core/payloads.py reads whatever JSON Slack (or someone holding the signing secret) sends; it
must
never raise, and what it returns must be safe to fetch: http(s) only, capped, deduplicated. The
netguard properties here add to tests/test_netguard.py what it does not state: parse_host on
any text at all, and that every numeric, bracketed or credential-wrapped spelling of a blocked
address is still refused before any connection.
"""

from __future__ import annotations

import asyncio
import html
import time
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.fetch import Fetcher
from bot.core import payloads as extract
from bot.core.addresses import blocked_reason, parse_host
from bot.core.errors import FetchBlocked
from bot.core.model import ScanRequest
from bot.core.payloads import (
    MAX_FILES_PER_MESSAGE,
    MAX_LINKS_PER_MESSAGE,
    MAX_URL_LENGTH,
    CommandKind,
)

# --- strategies -----------------------------------------------------------------------------

# Keys the parsers look at, so generated objects often hit the interesting paths.
_KEYS = st.sampled_from(
    [
        "type",
        "subtype",
        "channel",
        "channel_id",
        "user",
        "user_id",
        "bot_id",
        "ts",
        "thread_ts",
        "text",
        "files",
        "file",
        "file_id",
        "id",
        "name",
        "mimetype",
        "filetype",
        "mode",
        "url",
        "url_private",
        "url_private_download",
        "blocks",
        "elements",
        "message",
        "message_ts",
        "trigger_id",
        "response_url",
        "team",
        "team_id",
    ]
)
# Pieces of Slack mrkdwn, links and hostile URL spellings, to build text from.
_MARKUP = st.sampled_from(
    [
        "<",
        ">",
        "|",
        "&amp;",
        "&lt;",
        "&gt;",
        "&#32;",
        "http://",
        "https://",
        "HTTPS://",
        "hTTp://",
        "file:///etc/passwd",
        "javascript:",
        "ftp://",
        "@",
        "#",
        "?",
        "a.png",
        "x",
        "127.0.0.1",
        "[::1]",
        "2130706433",
        "user:pass@",
        "<@U1>",
        " ",
        "\n",
        "\u202e",
        "\x00",
    ]
)
slack_text = st.one_of(st.text(max_size=200), st.lists(_MARKUP, max_size=40).map("".join))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    slack_text,
    st.sampled_from(["link", "rich_text", "file_share", "image/png", "C1", "F1", "1.5"]),
)
json_ish = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.one_of(_KEYS, st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=30,
)
json_objects = st.dictionaries(st.one_of(_KEYS, st.text(max_size=8)), json_ish, max_size=10)
link_nodes = st.fixed_dictionaries({"type": st.just("link"), "url": json_ish})
blocks = st.recursive(
    st.one_of(json_ish, link_nodes),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(_KEYS, st.text(max_size=5)), children, max_size=4),
    ),
    max_leaves=20,
)


def _is_http(url: object) -> bool:
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))


def _check_links(urls: list[str]) -> None:
    assert all(_is_http(url) for url in urls)
    assert all(len(url) <= MAX_URL_LENGTH for url in urls)
    assert len(urls) == len(set(urls))


def _check_requests(requests: list[ScanRequest]) -> None:
    """What any extractor hands the pipeline: fetchable links, capped, string ids.

    (Dedup keys may repeat, e.g. one file listed twice: the store takes each key once.)
    """
    links = [r for r in requests if r.image.file_id is None]
    files = [r for r in requests if r.image.file_id is not None]
    assert len(links) <= MAX_LINKS_PER_MESSAGE
    assert len(files) <= MAX_FILES_PER_MESSAGE
    _check_links([r.image.url for r in links])  # type: ignore[misc]
    for request in requests:
        assert isinstance(request.image.file_id, str | None)
        assert isinstance(request.image.url, str | None)
        assert isinstance(request.image.name, str | None)
        assert isinstance(request.origin.channel, str | None)
        assert isinstance(request.origin.user, str | None)


# --- extract: never raises, safe output ------------------------------------------------------


@given(slack_text)
def test_links_in_text_returns_only_unique_capped_http_links(text: str) -> None:
    """links_in_text never raises on any text; its links are http(s), ≤ 2048 chars, unique."""
    _check_links(extract.links_in_text(text))


@given(blocks)
def test_links_in_blocks_returns_only_unique_capped_http_links(value: Any) -> None:
    """links_in_blocks walks any JSON without raising; only string http(s) urls come out."""
    _check_links(extract.links_in_blocks(value))


@given(json_objects, st.one_of(st.none(), st.text(max_size=5)))
def test_message_event_never_raises(event: dict[str, Any], team: str | None) -> None:
    """from_message_event on any JSON object: no exception; safe, capped, unique requests."""
    _check_requests(extract.from_message_event(event, team))


@given(
    st.fixed_dictionaries(
        {"type": st.just("message"), "channel": st.just("C1"), "ts": st.just("1.1")},
        optional={"text": json_ish, "files": json_ish, "blocks": blocks, "subtype": json_ish},
    )
)
def test_plausible_message_event_never_raises(event: dict[str, Any]) -> None:
    """A message with a channel and odd text/files/blocks/subtype values: never raises."""
    _check_requests(extract.from_message_event(event, "T1"))


@given(
    st.fixed_dictionaries(
        {"type": st.just("file_shared")},
        optional={
            "file_id": json_ish,
            "file": json_ish,
            "channel_id": json_ish,
            "user_id": json_ish,
        },
    )
)
def test_file_shared_event_never_raises(event: dict[str, Any]) -> None:
    """from_file_shared_event on any shape of file/file_id/channel_id: never raises."""
    _check_requests(extract.from_file_shared_event(event, "T1"))


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "text": json_ish,
            "channel_id": json_ish,
            "user_id": json_ish,
            "trigger_id": json_ish,
            "response_url": json_ish,
        },
    )
)
def test_parse_command_never_raises(command: dict[str, Any]) -> None:
    """/moderate with any field values: a Command; a scan is of one safe http(s) link."""
    parsed = extract.parse_command(command)
    if parsed.kind is CommandKind.SCAN:
        assert parsed.request is not None
        _check_links([parsed.request.image.url])  # type: ignore[list-item]
    else:
        assert parsed.request is None
    assert len(parsed.problem) <= len("not a link I can scan: ") + 200


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "message": json_ish,
            "channel": json_ish,
            "team": json_ish,
            "trigger_id": json_ish,
            "response_url": json_ish,
            "message_ts": json_ish,
        },
    )
)
def test_message_shortcut_never_raises(shortcut: dict[str, Any]) -> None:
    """The Moderate images shortcut with any payload shape: never raises; safe requests."""
    _check_requests(extract.from_message_shortcut(shortcut))


# --- extract: what is found ------------------------------------------------------------------

_host = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z0-9-]{1,8}){0,2}", fullmatch=True)
_path = st.from_regex(r"(/[A-Za-z0-9._~%!$'()*+,;=:@&-]{0,16}){0,3}", fullmatch=True)
urls = st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["http", "https"]), _host, _path)
_noise = st.text(alphabet=st.characters(blacklist_characters="<>&"), max_size=12)
_label = st.text(alphabet=st.characters(blacklist_characters="<>|&"), max_size=12)


@given(st.lists(st.tuples(_noise, urls, st.one_of(st.none(), _label)), max_size=15), _noise)
def test_markup_links_are_found_in_order_unescaped_and_once(
    parts: list[tuple[str, str, str | None]], tail: str
) -> None:
    """Every <url> / <url|label> Slack writes (with & escaped as &amp;) comes back unescaped,
    in order of first appearance, each once."""
    text = "".join(
        f"{noise}<{html.escape(url, quote=False)}{'' if label is None else '|' + label}>"
        for noise, url, label in parts
    )
    expected = list(dict.fromkeys(url for _, url, _ in parts))
    assert extract.links_in_text(text + tail) == expected


@given(st.lists(urls, min_size=0, max_size=40))
def test_message_links_are_capped_at_ten_in_order(links: list[str]) -> None:
    """A message with any number of links yields its first ten distinct ones."""
    text = " ".join(f"<{html.escape(url, quote=False)}>" for url in links)
    event = {"type": "message", "channel": "C1", "ts": "1.1", "text": text}
    found = [r.image.url for r in extract.from_message_event(event, "T1")]
    assert found == list(dict.fromkeys(links))[:MAX_LINKS_PER_MESSAGE]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<http://" * 5_000, id="unclosed-link-openers"),
        pytest.param("<http://x|" * 4_000, id="unclosed-labels"),
        pytest.param("<https://a.example/" * 2_000, id="unclosed-long-links"),
    ],
)
def test_link_extraction_is_linear_on_unclosed_markup(text: str) -> None:
    """40,000 characters of unclosed markup are scanned in well under a second (no quadratic
    backtracking: this runs before Slack's 3-second ack)."""
    started = time.monotonic()
    assert extract.links_in_text(text) == []
    assert extract.parse_command({"text": text}).kind is CommandKind.INVALID
    assert time.monotonic() - started < 0.25


# --- netguard.parse_host ---------------------------------------------------------------------


@given(st.text(max_size=60))
def test_parse_host_never_raises(host: str) -> None:
    """parse_host on any text at all: an address or None, never an exception."""
    assert isinstance(parse_host(host), IPv4Address | IPv6Address | None)


@given(_host)
def test_names_starting_with_a_letter_are_dns_names(host: str) -> None:
    """A host starting with a letter is never read as a numeric address (it goes to DNS)."""
    assert parse_host(host) is None


_BLOCKED_V4 = [
    IPv4Network(cidr)
    for cidr in (
        *("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"),
        *("172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"),
    )
]
blocked_v4 = st.sampled_from(_BLOCKED_V4).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(IPv4Address)
)


def _radix(value: int, style: str) -> str:
    return {"dec": str(value), "oct": f"0{value:o}", "hex": f"0x{value:x}", "HEX": f"0X{value:X}"}[
        style
    ]


@st.composite
def numeric_spellings(draw: st.DrawFn, address: IPv4Address) -> str:
    """Any spelling inet_aton reads as `address`: 1-4 parts, each in its own radix."""
    octets = address.packed
    parts = draw(st.integers(1, 4))
    head = list(octets[: parts - 1])
    tail = int.from_bytes(octets[parts - 1 :], "big")
    styles = st.sampled_from(["dec", "oct", "hex", "HEX"])
    text = ".".join(_radix(value, draw(styles)) for value in [*head, tail])
    return text + draw(st.sampled_from(["", "."]))


@given(blocked_v4.flatmap(lambda a: st.tuples(st.just(a), numeric_spellings(a))))
def test_every_numeric_spelling_of_a_blocked_address_is_blocked(
    case: tuple[IPv4Address, str],
) -> None:
    """Decimal, octal, hex, short forms and a trailing dot all name the same blocked address."""
    address, spelling = case
    assert parse_host(spelling) == address
    assert blocked_reason(parse_host(spelling), ()) is not None  # type: ignore[arg-type]


_BLOCKED_V6_SAMPLES = st.sampled_from(
    [IPv6Address(a) for a in ("::1", "::", "fd00::1", "fc00::", "fe80::1", "ff02::1", "fec0::1")]
)


@given(
    st.one_of(
        _BLOCKED_V6_SAMPLES,
        blocked_v4.map(lambda v4: IPv6Address(f"::ffff:{v4}")),
        blocked_v4.map(lambda v4: IPv6Address(int(IPv6Address("64:ff9b::")) | int(v4))),
    ),
    st.sampled_from(["compressed", "exploded", "upper", "zone", "dotted"]),
)
def test_every_ipv6_spelling_of_a_blocked_address_is_blocked(
    address: IPv6Address, style: str
) -> None:
    """Compressed, exploded, upper-case, zone-id and dotted-tail IPv6 literals in brackets all
    parse to the same blocked address."""
    text = {
        "compressed": address.compressed,
        "exploded": address.exploded,
        "upper": address.compressed.upper(),
        "zone": f"{address.compressed}%25eth0",
        "dotted": (
            f"{address.exploded[:30]}{IPv4Address(int(address) & 0xFFFFFFFF)}"
        ),  # last 32 bits as a.b.c.d
    }[style]
    assert parse_host(f"[{text}]") == address
    assert blocked_reason(address, ()) is not None


# --- the fetcher's reading of hostile URLs ---------------------------------------------------

_userinfo = st.one_of(
    st.none(),
    st.from_regex(
        r"[A-Za-z0-9._~!$'()*+,;=-]{1,12}(:[A-Za-z0-9._~!$'()*+,;=-]{1,12})?", fullmatch=True
    ),
    st.sampled_from(["127.0.0.2", "files.slack.com", "8.8.8.8:80"]),
)


async def _fetch_refusal(url: str) -> FetchBlocked:
    async with Fetcher(
        token_origins=("https://files.slack.com",),
        trusted_origins=("https://slack.com",),
        allow_networks=(),
        max_bytes=1000,
        timeout=2.0,
    ) as fetcher:
        with pytest.raises(FetchBlocked) as refused:
            await fetcher.fetch(url)
    return refused.value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocked_v4.flatmap(lambda a: st.tuples(st.just(a), numeric_spellings(a))),
    _userinfo,
    st.sampled_from(["http", "https", "HTTP"]),
)
def test_fetcher_refuses_any_spelling_of_a_blocked_address_before_connecting(
    case: tuple[IPv4Address, str], userinfo: str | None, scheme: str
) -> None:
    """http(s)://[userinfo@]<numeric spelling>:9/ is refused naming the canonical address, and
    the refusal never repeats the credentials."""
    address, spelling = case
    credentials = f"{userinfo}@" if userinfo else ""
    refusal = asyncio.run(_fetch_refusal(f"{scheme}://{credentials}{spelling}:9/x.png"))
    assert refusal.reason == f"blocked address {address}"
    assert "@" not in refusal.url  # the link is named without its credentials
    assert refusal.url.endswith(":9/x.png")
