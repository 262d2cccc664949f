"""Download images without letting a link reach modbot's own network or see the bot token.

Three layers keep every connection on a public address (or an operator-allowed one):
`Fetcher` checks IP-literal hosts before connecting (aiohttp never resolves those), a wrapping
resolver hands aiohttp only vetted addresses for DNS names (so there is no second lookup to
rebind), and the connector checks the peer of every socket it returns, pooled ones included.
Redirects are followed by hand so each hop gets the same checks and its own token decision.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from yarl import URL

from bot.core.addresses import Network, blocked_reason, parse_host
from bot.core.errors import FetchBlocked, FetchFailed, SlackFileNotAccessible

log = logging.getLogger(__name__)

# (scheme, host, port): where a URL points, as the token and trust rules compare it (the web's
# "origin"; not core.model.Origin, where an image was posted)
Endpoint = tuple[str, str, int]

_SCHEMES = frozenset({"http", "https"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TRANSIENT_4XX = frozenset({408, 429})
_CHUNK = 64 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """The bytes a URL served, what the server said they are, and where they finally came from."""

    data: bytes
    content_type: str | None  # the bare media type ("image/png"), None if the server sent none
    url: str


class _AddressRefused(Exception):
    """Raised inside aiohttp (resolver, connector) when the only addresses left are blocked."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"{address}: {why}")
        self.address = address
        self.why = why


@dataclass(frozen=True)
class _Policy:
    """The address rules shared by the resolver and the connector."""

    allow: tuple[Network, ...]
    trusted: frozenset[Endpoint]

    def trusts_host(self, host: str, port: int) -> bool:
        # The resolver sees no scheme; a trusted host:port is the operator's server either way.
        return any((host, port) == (t_host, t_port) for _, t_host, t_port in self.trusted)

    def refusal(self, address_text: str) -> str | None:
        try:
            address = ip_address(address_text.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            return "not an IP address"
        return blocked_reason(address, self.allow)


class _VettedResolver(AbstractResolver):
    """Resolve names, then hand aiohttp only the addresses the policy allows."""

    def __init__(self, inner: AbstractResolver, policy: _Policy, *, owns_inner: bool) -> None:
        self._inner = inner
        self._policy = policy
        self._owns_inner = owns_inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.trusts_host(host, port):
            return results
        allowed = [result for result in results if self._policy.refusal(result["host"]) is None]
        if allowed:
            return allowed
        first = results[0]["host"] if results else host
        raise _AddressRefused(first, self._policy.refusal(first) or "no address")

    async def close(self) -> None:
        if self._owns_inner:  # an injected resolver belongs to whoever injected it
            await self._inner.close()


class _VettedConnector(aiohttp.TCPConnector):
    """A connector that refuses any socket whose peer the policy does not allow."""

    def __init__(self, *, policy: _Policy, resolver: AbstractResolver) -> None:
        super().__init__(resolver=resolver)
        self._policy = policy

    # The `timeout` parameter is aiohttp's signature, which this overrides.
    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        if _endpoint(req.url) in self._policy.trusted:
            return conn
        peer = conn.transport.get_extra_info("peername") if conn.transport else None
        why = self._policy.refusal(str(peer[0])) if peer else "no peer address"
        if why is not None:
            conn.close()
            raise _AddressRefused(str(peer[0]) if peer else "unknown", why)
        return conn


class Fetcher:
    """Fetch http(s) URLs safely; one aiohttp session, opened with `async with`."""

    def __init__(
        self,
        *,
        token_origins: Sequence[str],
        trusted_origins: Sequence[str],
        allow_networks: Sequence[Network],
        max_bytes: int,
        timeout: float = 30.0,
        max_redirects: int = 3,
        resolver: AbstractResolver | None = None,
        user_agent: str = "modbot",
    ) -> None:
        self._token_origins = frozenset(_parse_endpoint(text) for text in token_origins)
        self._policy = _Policy(
            allow=tuple(allow_networks),
            trusted=frozenset(_parse_endpoint(text) for text in trusted_origins),
        )
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._max_redirects = max_redirects
        self._resolver = resolver
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        # ThreadedResolver wants the running loop, so the session is built here, not in __init__.
        inner = self._resolver or aiohttp.ThreadedResolver()
        resolver = _VettedResolver(inner, self._policy, owns_inner=self._resolver is None)
        self._session = aiohttp.ClientSession(
            connector=_VettedConnector(policy=self._policy, resolver=resolver),
            cookie_jar=aiohttp.DummyCookieJar(),  # no state carried from one link to the next
            headers={hdrs.USER_AGENT: self._user_agent},
            timeout=aiohttp.ClientTimeout(total=None),  # one clock: the per-fetch asyncio.timeout
            trust_env=False,  # an env proxy would connect for us, bypassing every check here
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self, url: str, *, token: str | None = None, deadline: float | None = None
    ) -> Fetched:
        """GET `url`, following up to max_redirects redirects; the token goes to token origins only.

        `deadline` (default: the fetcher's timeout) bounds for the whole download: every
        redirect, the connection, and reading the body.
        Raises FetchBlocked (refused target), SlackFileNotAccessible (Slack sent a web page) or
        FetchFailed (HTTP error, timeout, too large, network trouble).
        """
        start = _http_url(url, None)
        shown = str(start)  # errors name the link as posted, minus any credentials
        deadline = self._timeout if deadline is None else deadline
        try:
            async with asyncio.timeout(deadline):
                return await self._follow(start, shown, token)
        except TimeoutError:
            reason = f"download timed out after {deadline:g} s"
            raise FetchFailed(shown, reason, transient=True, unreachable=True) from None

    async def _follow(self, start: URL, shown: str, token: str | None) -> Fetched:
        hop = start
        for _ in range(self._max_redirects + 1):
            hop = self._vet(hop, shown)
            if _endpoint(hop) not in self._token_origins:
                # A server outside Slack chooses every later hop: if it redirects back to a
                # Slack origin it must not get the bot's token attached to a URL it picked.
                token = None
            try:
                outcome = await self._get(hop, start, shown, token)
            except _AddressRefused as refused:
                log.info("refused %s: %s is %s", shown, refused.address, refused.why)
                raise FetchBlocked(shown, address=refused.address) from None
            except aiohttp.ClientError as exc:
                raise _network_failure(shown, hop, exc) from exc
            if isinstance(outcome, Fetched):
                return outcome
            hop = outcome
        raise FetchBlocked(shown, why=f"too many redirects (more than {self._max_redirects})")

    def _vet(self, hop: URL, shown: str) -> URL:
        """Refuse an IP-literal host that is not allowed; aiohttp connects to those unresolved."""
        if _endpoint(hop) in self._policy.trusted:
            return hop
        host = hop.raw_host or ""
        address = parse_host(host)
        if address is None:
            if ":" in host:
                raise FetchBlocked(shown, why=f"malformed IPv6 address {host}")
            return hop  # a DNS name: _VettedResolver judges what it resolves to
        why = blocked_reason(address, self._policy.allow)
        if why is not None:
            log.info("refused %s: %s is %s", shown, address, why)
            raise FetchBlocked(shown, address=str(address))
        # Connect to the address we judged, spelled canonically as a browser would: aiohttp
        # rejects legacy spellings of public addresses such as http://134744072/.
        if address.version == 4 and host != str(address):
            return hop.with_host(str(address))
        return hop

    async def _get(self, hop: URL, start: URL, shown: str, token: str | None) -> Fetched | URL:
        """One request: the next hop's URL for a redirect, else the downloaded file."""
        if self._session is None:
            raise RuntimeError("use Fetcher inside 'async with'")
        headers = {}
        if token and _endpoint(hop) in self._token_origins:
            headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        async with self._session.get(hop, headers=headers, allow_redirects=False) as resp:
            if resp.status in _REDIRECTS:
                return _redirect_target(resp, hop, shown)
            _raise_for_status(resp, hop, shown)
            content_type = resp.content_type if hdrs.CONTENT_TYPE in resp.headers else None
            # Slack answers a token without files:read with its login page, sometimes after a
            # redirect to the workspace's own origin; that is a setup problem, not a bad image.
            from_slack = {_endpoint(hop), _endpoint(start)} & self._token_origins
            if content_type == "text/html" and from_slack:
                raise SlackFileNotAccessible(shown)
            data = await self._read_capped(resp, shown)
            return Fetched(data=data, content_type=content_type, url=str(hop))

    async def _read_capped(self, resp: aiohttp.ClientResponse, shown: str) -> bytes:
        too_large = FetchFailed(
            shown, f"file too large to download (over {_size_words(self._max_bytes)})"
        )
        if resp.content_length is not None and resp.content_length > self._max_bytes:
            resp.close()
            raise too_large
        body = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                resp.close()  # drop the connection rather than drain an endless body
                raise too_large
        return bytes(body)


def _parse_endpoint(text: str) -> Endpoint:
    url = URL(text)
    if url.scheme not in _SCHEMES or not url.raw_host:
        raise ValueError(f"not an http(s) origin: {text!r}")
    return _endpoint(url)


def _endpoint(url: URL) -> Endpoint:
    return (url.scheme, url.raw_host or "", url.port or 0)


def _http_url(text: str, shown: str | None) -> URL:
    """Parse a link or Location: http(s) only, with any user:password@ removed.

    `shown` names the link in errors; None means this is the link itself.
    """
    try:
        url = _without_credentials(URL(text))
    except (ValueError, TypeError):
        raise FetchBlocked(shown or "(unreadable link)", why="not a valid link") from None
    if url.scheme not in _SCHEMES:
        raise FetchBlocked(shown or str(url), why="only http and https links are scanned")
    if not url.raw_host:
        raise FetchBlocked(shown or str(url), why="not a valid link")
    return url


def _without_credentials(url: URL) -> URL:
    # Credentials in a link are stripped, not refused: the host after the "@" is what is
    # checked and connected to, so `https://files.slack.com@evil.example/` neither gets the
    # token nor reaches a private address, the image can still be scanned, and no password
    # is sent onwards as Basic auth or echoed back in alerts and logs.
    if url.raw_user is None and url.raw_password is None:
        return url
    return url.with_user(None)


def _redirect_target(resp: aiohttp.ClientResponse, hop: URL, shown: str) -> URL:
    location = resp.headers.get(hdrs.LOCATION)
    if not location:
        raise FetchFailed(
            shown, f"HTTP {resp.status} from {hop.host_port_subcomponent} without a Location"
        )
    try:
        target = hop.join(URL(location))
    except (ValueError, TypeError):
        raise FetchFailed(shown, f"bad redirect from {hop.host_port_subcomponent}") from None
    return _http_url(str(target), shown)


def _raise_for_status(resp: aiohttp.ClientResponse, hop: URL, shown: str) -> None:
    if resp.status < 300:
        return
    transient = resp.status >= 500 or resp.status in _TRANSIENT_4XX
    raise FetchFailed(
        shown, f"HTTP {resp.status} from {hop.host_port_subcomponent}", transient=transient
    )


def _network_failure(shown: str, hop: URL, exc: aiohttp.ClientError) -> FetchFailed:
    where = hop.host_port_subcomponent
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        # A name that does not exist will not start existing on retry; a DNS hiccup might.
        transient = getattr(exc.os_error, "errno", None) == socket.EAI_AGAIN
        return FetchFailed(shown, f"could not resolve {hop.host}", transient=transient)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return FetchFailed(shown, f"could not connect to {where}", transient=True, unreachable=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchFailed(shown, "not a valid link")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return FetchFailed(shown, f"connection to {where} broke off", transient=True)
    return FetchFailed(
        shown, f"download from {where} failed ({type(exc).__name__})", transient=True
    )


def _size_words(size: int) -> str:
    if size >= _MIB:
        return f"{round(size / _MIB, 1):g} MB"
    return f"{size} bytes"
