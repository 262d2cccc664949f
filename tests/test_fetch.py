"""The downloader against local servers: SSRF refusals, redirects, token confinement, limits.

Everything runs on loopback. The "legitimate" origins listen on 127.0.0.2, which the fetchers
here are allowed to reach; the "attacker targets" listen on 127.0.0.1, which they are not, and
each refusal test checks the target never saw a request.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from ipaddress import IPv4Network
from typing import Any

import aiohappyeyeballs
import pytest

from bot.adapters import fetch as fetch_module
from bot.adapters.fetch import Fetcher
from bot.core.errors import FetchBlocked, FetchFailed, SlackFileNotAccessible
from tests.fakes.web import MapResolver, WebServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
TOKEN = "xoxb-test-token"
ALLOWED = (IPv4Network("127.0.0.2/32"),)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")

MakeFetcher = Callable[..., Awaitable[Fetcher]]


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def _server(host: str) -> AsyncIterator[WebServer]:
    server = WebServer(host)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def origin() -> AsyncIterator[WebServer]:
    """A legitimate origin (127.0.0.2), also the token origin where a test says so."""
    async for server in _server("127.0.0.2"):
        yield server


@pytest.fixture
async def other() -> AsyncIterator[WebServer]:
    """A second legitimate origin: same address, another port."""
    async for server in _server("127.0.0.2"):
        yield server


@pytest.fixture
async def target() -> AsyncIterator[WebServer]:
    """What an attacker wants reached: a server on 127.0.0.1, outside the allowed networks."""
    async for server in _server("127.0.0.1"):
        target = server
        target.add("/", b"internal secrets", content_type="text/plain")
        target.add("/secret", b"internal secrets", content_type="text/plain")
        yield target


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connect aiohttp attempts (the address lists it dials)."""
    attempts: list[Any] = []
    real = aiohappyeyeballs.start_connection

    async def recording(addr_infos: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append([info[4] for info in addr_infos])
        return await real(addr_infos, *args, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", recording)
    return attempts


@pytest.fixture
async def make_fetcher() -> AsyncIterator[MakeFetcher]:
    """Build entered Fetchers (closed at test end); defaults allow only 127.0.0.2."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Fetcher:
            settings: dict[str, Any] = {
                "token_origins": (),
                "trusted_origins": (),
                "allow_networks": ALLOWED,
                "max_bytes": 1_000_000,
                "timeout": 5.0,
            }
            settings.update(overrides)
            return await stack.enter_async_context(Fetcher(**settings))

        yield make


# --- plain downloads -------------------------------------------------------------------------


async def test_fetches_file_from_allowed_origin(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A file on an allowed origin comes back with its bytes, media type and final URL."""
    origin.add("/cat.png", PNG, content_type="image/png; charset=binary")
    fetcher = await make_fetcher()

    got = await fetcher.fetch(f"{origin.url}/cat.png")

    assert (got.data, got.content_type, got.url) == (PNG, "image/png", f"{origin.url}/cat.png")
    assert origin.hits_to("/cat.png")[0].headers["User-Agent"] == "modbot"


async def test_credentials_in_link_are_stripped(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """user:password@ is dropped: no Basic auth is sent and the result URL carries none."""
    origin.add("/img", PNG)
    fetcher = await make_fetcher()

    got = await fetcher.fetch(f"http://alice:hunter2@127.0.0.2:{origin.port}/img")

    assert "Authorization" not in origin.hits_to("/img")[0].headers
    assert got.url == f"{origin.url}/img"


async def test_legacy_numeric_spelling_of_allowed_address_is_canonicalised(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """http://2130706434/ (127.0.0.2 in decimal) is judged and fetched as 127.0.0.2."""
    origin.add("/img", PNG)
    fetcher = await make_fetcher()

    got = await fetcher.fetch(f"http://2130706434:{origin.port}/img")

    assert got.url == f"{origin.url}/img"


# --- SSRF refusals ---------------------------------------------------------------------------


async def test_metadata_address_refused_without_connecting(
    make_fetcher: MakeFetcher, connections: list[Any]
) -> None:
    """The cloud metadata address is refused before any socket is opened."""
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked) as caught:
        await fetcher.fetch("http://169.254.169.254/latest/meta-data/")

    assert caught.value.reason == "blocked address 169.254.169.254"
    assert caught.value.address == "169.254.169.254"
    assert connections == []


async def test_loopback_literal_refused_and_not_contacted(
    target: WebServer, make_fetcher: MakeFetcher, connections: list[Any]
) -> None:
    """http://127.0.0.1:PORT/ is refused and the server there never hears of it."""
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked, match=r"^blocked address 127\.0\.0\.1"):
        await fetcher.fetch(f"{target.url}/secret")

    assert target.hits == []
    assert connections == []


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[64:ff9b::127.0.0.1]", "64:ff9b::7f00:1"),
        ("[2002:7f00:1::]", "2002:7f00:1::"),
        ("[::]", "::"),
        ("0", "0.0.0.0"),
    ],
)
async def test_numeric_host_tricks_refused(
    host: str,
    address: str,
    target: WebServer,
    make_fetcher: MakeFetcher,
    connections: list[Any],
) -> None:
    """Odd spellings of loopback and unspecified addresses are refused without connecting."""
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked) as caught:
        await fetcher.fetch(f"http://{host}:{target.port}/secret")

    assert caught.value.address == address
    assert target.hits == []
    assert connections == []


async def test_malformed_ipv6_host_refused(make_fetcher: MakeFetcher) -> None:
    """A bracketed host that is not valid IPv6 is refused rather than handed to connect()."""
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked, match="malformed IPv6"):
        await fetcher.fetch("http://[1:2]/x")


async def test_redirect_to_loopback_refused(
    origin: WebServer, target: WebServer, make_fetcher: MakeFetcher
) -> None:
    """An allowed origin redirecting to 127.0.0.1 is refused at that hop; the target is not hit."""
    origin.redirect("/r", f"{target.url}/secret")
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked) as caught:
        await fetcher.fetch(f"{origin.url}/r")

    assert caught.value.address == "127.0.0.1"
    assert caught.value.url == f"{origin.url}/r"
    assert len(origin.hits_to("/r")) == 1
    assert target.hits == []


async def test_dns_name_resolving_to_loopback_refused(
    target: WebServer, make_fetcher: MakeFetcher, connections: list[Any]
) -> None:
    """A name that resolves to 127.0.0.1 is refused before connecting."""
    resolver = MapResolver({"evil.test": ["127.0.0.1"]})
    fetcher = await make_fetcher(resolver=resolver)

    with pytest.raises(FetchBlocked, match=r"^blocked address 127\.0\.0\.1"):
        await fetcher.fetch(f"http://evil.test:{target.port}/secret")

    assert resolver.asked == ["evil.test"]
    assert target.hits == []
    assert connections == []


async def test_dns_name_resolving_to_allowed_address_fetched(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A name resolving into the allowed networks is fetched, with its own Host header."""
    origin.add("/img", PNG)
    fetcher = await make_fetcher(resolver=MapResolver({"images.test": ["127.0.0.2"]}))

    got = await fetcher.fetch(f"http://images.test:{origin.port}/img")

    assert got.data == PNG
    assert origin.hits_to("/img")[0].headers["Host"] == f"images.test:{origin.port}"


async def test_dns_answer_mixing_blocked_and_allowed_uses_only_allowed(
    origin: WebServer, make_fetcher: MakeFetcher, connections: list[Any]
) -> None:
    """Blocked addresses are dropped from a DNS answer; only the allowed one is dialled."""
    origin.add("/img", PNG)
    resolver = MapResolver({"mixed.test": ["127.0.0.1", "10.0.0.1", "127.0.0.2"]})
    fetcher = await make_fetcher(resolver=resolver)

    got = await fetcher.fetch(f"http://mixed.test:{origin.port}/img")

    assert got.data == PNG
    assert connections == [[("127.0.0.2", origin.port)]]


async def test_peer_check_catches_what_the_resolver_let_through(
    target: WebServer,
    make_fetcher: MakeFetcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If name vetting were bypassed, the connected socket's peer is still checked before any
    request is sent."""

    async def unvetted(self: Any, host: str, port: int = 0, family: Any = 0) -> Any:
        return await self._inner.resolve(host, port, family)

    monkeypatch.setattr(fetch_module._VettedResolver, "resolve", unvetted)
    fetcher = await make_fetcher(resolver=MapResolver({"evil.test": ["127.0.0.1"]}))

    with pytest.raises(FetchBlocked, match=r"^blocked address 127\.0\.0\.1"):
        await fetcher.fetch(f"http://evil.test:{target.port}/secret")

    assert target.hits == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.2/x", "gopher://127.0.0.2:70/_x", "data:,hi"]
)
async def test_non_http_schemes_refused(url: str, make_fetcher: MakeFetcher) -> None:
    """Only http and https links are fetched."""
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked, match=r"^only http and https links are scanned"):
        await fetcher.fetch(url)


async def test_redirect_to_file_scheme_refused(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A redirect to file:// is refused like a link to it."""
    origin.redirect("/r", "file:///etc/passwd")
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked, match=r"^only http and https links are scanned"):
        await fetcher.fetch(f"{origin.url}/r")


async def test_env_proxy_is_ignored(
    origin: WebServer, other: WebServer, make_fetcher: MakeFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY in the environment is not used: a proxy would connect on our behalf."""
    origin.add("/img", PNG)
    monkeypatch.setenv("HTTP_PROXY", other.url)
    monkeypatch.setenv("http_proxy", other.url)
    fetcher = await make_fetcher()

    await fetcher.fetch(f"{origin.url}/img")

    assert other.hits == []
    assert len(origin.hits_to("/img")) == 1


# --- trusted origin --------------------------------------------------------------------------


async def test_trusted_origin_skips_address_check(
    target: WebServer, make_fetcher: MakeFetcher
) -> None:
    """The operator's SLACK_API_URL origin is reachable even on a blocked address."""
    fetcher = await make_fetcher(trusted_origins=[target.url])

    got = await fetcher.fetch(f"{target.url}/secret")

    assert got.data == b"internal secrets"


async def test_redirect_away_from_trusted_origin_is_checked(
    target: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A redirect from the trusted origin to another blocked origin is refused."""
    async for inner in _server("127.0.0.1"):
        inner.add("/secret", b"deeper secrets")
        target.redirect("/r", f"{inner.url}/secret")
        fetcher = await make_fetcher(trusted_origins=[target.url])

        with pytest.raises(FetchBlocked, match=r"^blocked address 127\.0\.0\.1"):
            await fetcher.fetch(f"{target.url}/r")

        assert inner.hits == []


# --- redirects -------------------------------------------------------------------------------


def _chain(server: WebServer, length: int) -> None:
    """/r1 -> /r2 -> ... -> /r{length} -> /img: `length` redirects before the file."""
    for step in range(1, length + 1):
        following = f"/r{step + 1}" if step < length else "/img"
        server.redirect(f"/r{step}", following, status=301 if step % 2 else 307)
    server.add("/img", PNG)


async def test_three_redirects_are_followed(origin: WebServer, make_fetcher: MakeFetcher) -> None:
    """Up to max_redirects (3) hops are followed and the final URL is reported."""
    _chain(origin, 3)
    fetcher = await make_fetcher()

    got = await fetcher.fetch(f"{origin.url}/r1")

    assert (got.data, got.url) == (PNG, f"{origin.url}/img")


async def test_more_than_three_redirects_refused(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A fourth redirect is refused and its target never requested."""
    _chain(origin, 4)
    fetcher = await make_fetcher()

    with pytest.raises(FetchBlocked, match=r"^too many redirects \(more than 3\)"):
        await fetcher.fetch(f"{origin.url}/r1")

    assert origin.hits_to("/img") == []


async def test_redirect_without_location_fails(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A 302 with no Location is a plain failure, not a crash."""
    origin.add("/r", b"", status=302)
    fetcher = await make_fetcher()

    with pytest.raises(FetchFailed, match=r"^HTTP 302 from 127\.0\.0\.2:[0-9]+ without a Location"):
        await fetcher.fetch(f"{origin.url}/r")


# --- the bot token ---------------------------------------------------------------------------


async def test_token_sent_to_token_origin(origin: WebServer, make_fetcher: MakeFetcher) -> None:
    """A Slack file URL gets Authorization: Bearer <token>."""
    origin.add("/files/cat.png", PNG)
    fetcher = await make_fetcher(token_origins=[origin.url])

    await fetcher.fetch(f"{origin.url}/files/cat.png", token=TOKEN)

    assert origin.hits_to("/files/cat.png")[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_token_not_sent_to_other_origin(
    origin: WebServer, other: WebServer, make_fetcher: MakeFetcher
) -> None:
    """Even when the caller passes the token, a non-Slack origin never receives it."""
    other.add("/img", PNG)
    fetcher = await make_fetcher(token_origins=[origin.url])

    await fetcher.fetch(f"{other.url}/img", token=TOKEN)

    assert "Authorization" not in other.hits_to("/img")[0].headers


async def test_token_not_sent_across_redirect_to_other_origin(
    origin: WebServer, other: WebServer, make_fetcher: MakeFetcher
) -> None:
    """Slack's origin redirecting elsewhere: the next hop is fetched without the token."""
    origin.redirect("/files/cat.png", f"{other.url}/cdn/cat.png")
    other.add("/cdn/cat.png", PNG)
    fetcher = await make_fetcher(token_origins=[origin.url])

    got = await fetcher.fetch(f"{origin.url}/files/cat.png", token=TOKEN)

    assert got.data == PNG
    assert origin.hits_to("/files/cat.png")[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in other.hits_to("/cdn/cat.png")[0].headers


async def test_token_kept_on_same_origin_redirect(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A redirect within Slack's origin keeps the token."""
    origin.redirect("/files/cat.png", "/download/cat.png")
    origin.add("/download/cat.png", PNG)
    fetcher = await make_fetcher(token_origins=[origin.url])

    await fetcher.fetch(f"{origin.url}/files/cat.png", token=TOKEN)

    assert [hit.headers.get("Authorization") for hit in origin.hits] == [f"Bearer {TOKEN}"] * 2


async def test_same_host_other_scheme_is_another_origin(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """Origins compare scheme, host and port: https on the same host:port gets no token."""
    origin.add("/img", PNG)
    fetcher = await make_fetcher(token_origins=[f"https://127.0.0.2:{origin.port}"])

    await fetcher.fetch(f"{origin.url}/img", token=TOKEN)

    assert "Authorization" not in origin.hits_to("/img")[0].headers


async def test_same_host_other_port_is_another_origin(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """The port is part of the endpoint compared: the same host on another port gets no token."""
    origin.add("/img", PNG)
    fetcher = await make_fetcher(token_origins=[f"http://127.0.0.2:{origin.port + 1}"])

    await fetcher.fetch(f"{origin.url}/img", token=TOKEN)

    assert "Authorization" not in origin.hits_to("/img")[0].headers


# --- Slack's HTML answer ---------------------------------------------------------------------


async def test_html_from_token_origin_is_slack_file_not_accessible(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """Slack's login page instead of the file means a missing files:read scope, not a bad image."""
    origin.html("/files/cat.png")
    fetcher = await make_fetcher(token_origins=[origin.url])

    with pytest.raises(SlackFileNotAccessible, match="files:read"):
        await fetcher.fetch(f"{origin.url}/files/cat.png", token=TOKEN)


async def test_html_after_redirect_from_token_origin_is_slack_file_not_accessible(
    origin: WebServer, other: WebServer, make_fetcher: MakeFetcher
) -> None:
    """Slack bouncing a file download to a login page on another origin is the same problem."""
    origin.redirect("/files/cat.png", f"{other.url}/signin")
    other.html("/signin")
    fetcher = await make_fetcher(token_origins=[origin.url])

    with pytest.raises(SlackFileNotAccessible):
        await fetcher.fetch(f"{origin.url}/files/cat.png", token=TOKEN)


async def test_html_from_other_origin_is_returned(
    other: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A web page from an ordinary link comes back as-is; content sniffing happens elsewhere."""
    other.html("/page")
    fetcher = await make_fetcher(token_origins=["https://files.slack.com"])

    got = await fetcher.fetch(f"{other.url}/page")

    assert got.content_type == "text/html"
    assert got.data.startswith(b"<html>")


# --- limits and failures ---------------------------------------------------------------------


async def test_content_length_over_cap_fails_before_reading(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A declared size over the cap fails at once (the body here never arrives)."""
    origin.stall("/huge", after_headers=True, declared_length=10 * 1024**3)
    fetcher = await make_fetcher(max_bytes=2 * 1024 * 1024)

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(f"{origin.url}/huge")

    assert caught.value.reason == "file too large to download (over 2 MB)"
    assert not caught.value.transient


async def test_streaming_past_cap_aborts(origin: WebServer, make_fetcher: MakeFetcher) -> None:
    """A body without Content-Length is cut off once it passes the cap."""
    origin.endless("/stream")
    fetcher = await make_fetcher(max_bytes=100_000)

    with pytest.raises(FetchFailed, match=r"^file too large to download \(over 100000 bytes\)"):
        await fetcher.fetch(f"{origin.url}/stream")


async def test_body_exactly_at_cap_is_accepted(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """The cap is inclusive: max_bytes bytes are fine."""
    origin.add("/exact", b"x" * 1000)
    fetcher = await make_fetcher(max_bytes=1000)

    got = await fetcher.fetch(f"{origin.url}/exact")

    assert len(got.data) == 1000


@pytest.mark.parametrize("after_headers", [False, True])
async def test_total_timeout(
    after_headers: bool, origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A server that stalls (before or during the body) fails after the total timeout, transient."""
    origin.stall("/slow", after_headers=after_headers)
    fetcher = await make_fetcher(timeout=0.2)

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(f"{origin.url}/slow")

    assert caught.value.reason == "download timed out after 0.2 s"
    assert caught.value.transient


@pytest.mark.parametrize(
    ("status", "transient"), [(404, False), (403, False), (429, True), (500, True), (503, True)]
)
async def test_http_errors_fail_with_plain_reason(
    status: int, transient: bool, origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """HTTP errors name the status and host; 5xx and 429 are worth retrying."""
    origin.add("/x", b"nope", content_type="text/plain", status=status)
    fetcher = await make_fetcher()

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(f"{origin.url}/x")

    assert caught.value.reason == f"HTTP {status} from 127.0.0.2:{origin.port}"
    assert caught.value.transient is transient


async def test_connection_refused_is_transient(make_fetcher: MakeFetcher) -> None:
    """Nobody listening is a transient connection failure."""
    async for gone in _server("127.0.0.2"):
        url = f"{gone.url}/img"
    fetcher = await make_fetcher()

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(url)

    assert caught.value.reason.startswith("could not connect to 127.0.0.2:")
    assert caught.value.transient


async def test_truncated_body_is_transient(origin: WebServer, make_fetcher: MakeFetcher) -> None:
    """A server hanging up mid-body is a transient failure, not a short file."""
    origin.truncated("/cut")
    fetcher = await make_fetcher()

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(f"{origin.url}/cut")

    assert caught.value.reason == f"connection to 127.0.0.2:{origin.port} broke off"
    assert caught.value.transient


async def test_unparseable_redirect_fails(origin: WebServer, make_fetcher: MakeFetcher) -> None:
    """A Location that is not a URL is a plain failure naming the redirecting host."""
    origin.redirect("/r", "http://[oops/")
    fetcher = await make_fetcher()

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch(f"{origin.url}/r")

    assert caught.value.reason == f"bad redirect from 127.0.0.2:{origin.port}"


async def test_unknown_name_fails_without_retry(make_fetcher: MakeFetcher) -> None:
    """A name that does not resolve is a plain, non-transient failure."""
    fetcher = await make_fetcher(resolver=MapResolver({}))

    with pytest.raises(FetchFailed) as caught:
        await fetcher.fetch("http://nowhere.test/img")

    assert caught.value.reason == "could not resolve nowhere.test"
    assert not caught.value.transient


def test_origins_must_be_http_urls() -> None:
    """A token origin without a scheme is a configuration mistake, caught at construction."""
    with pytest.raises(ValueError, match=r"files\.slack\.com"):
        Fetcher(
            token_origins=["files.slack.com"], trusted_origins=[], allow_networks=[], max_bytes=1
        )


async def test_fetch_outside_context_is_an_error() -> None:
    """Using a Fetcher before `async with` fails loudly rather than opening a stray session."""
    fetcher = Fetcher(token_origins=[], trusted_origins=[], allow_networks=ALLOWED, max_bytes=1)

    with pytest.raises(RuntimeError, match="async with"):
        await fetcher.fetch("http://127.0.0.2/img")


async def test_per_call_deadline_and_unreachable_flag(
    origin: WebServer, make_fetcher: MakeFetcher
) -> None:
    """A per-call deadline overrides the fetcher's; a timeout and a refused connection are
    marked unreachable (not worth another wait for a link), a truncated body is not."""
    origin.stall("/slow")
    origin.truncated("/cut")
    async for gone in _server("127.0.0.2"):
        refused_url = f"{gone.url}/img"
    fetcher = await make_fetcher(timeout=30)

    with pytest.raises(FetchFailed) as timed_out:
        await fetcher.fetch(f"{origin.url}/slow", deadline=0.2)
    with pytest.raises(FetchFailed) as refused:
        await fetcher.fetch(refused_url)
    with pytest.raises(FetchFailed) as cut:
        await fetcher.fetch(f"{origin.url}/cut")

    assert timed_out.value.reason == "download timed out after 0.2 s"
    assert timed_out.value.unreachable
    assert refused.value.unreachable
    assert not cut.value.unreachable
    assert cut.value.transient
