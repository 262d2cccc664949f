"""Which network addresses modbot may fetch from: the pure half of the SSRF guard (no I/O)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Ranges that are never "the public internet", each with the words a log line should use.
# Written out from the IANA special-purpose registries rather than taken from
# `ipaddress.is_private`/`is_global`, whose answers changed between Python patch releases.
# First match wins, so the broadcast address is named before the reserved block holding it.
_BLOCKED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(cidr), why)
    for cidr, why in (
        ("0.0.0.0/8", "unspecified / 'this network'"),  # Linux connects 0.0.0.0 to localhost
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),  # home of the cloud metadata service
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_BLOCKED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(cidr), why)
    for cidr, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),  # Teredo, benchmarking, ORCHID, ...
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

# Everything routable on the IPv6 internet lives in 2000::/3; the rest is reserved. The
# IPv4-mapped and NAT64 prefixes sit outside it, but are judged by their IPv4 before this.
_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")

_ASCII_SPACE = " \t\n\v\f\r"  # what C's isspace() ends an inet_aton() string at
_DEC_DIGITS = frozenset("0123456789")
_OCT_DIGITS = frozenset("01234567")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse a comma-separated CIDR list (as in MODBOT_ALLOW_PRIVATE_NETWORKS); empty -> ()."""
    networks: list[Network] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ValueError(f"not a network (CIDR) {entry!r}: {exc}") from None
    return tuple(networks)


def blocked_reason(address: Address, allow: Sequence[Network] = ()) -> str | None:
    """Say why `address` must not be fetched from, or None if it may (public, or in `allow`)."""
    if _in_any(address, allow):
        return None
    embedded = embedded_ipv4(address)
    if embedded is not None:
        why = blocked_reason(embedded, allow)
        return f"{why} (embedded in {address})" if why else None
    if isinstance(address, IPv4Address):
        return _table_reason(address, _BLOCKED_V4)
    reason = _table_reason(address, _BLOCKED_V6)
    if reason is None and address not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return reason


def embedded_ipv4(address: Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries and would reach (mapped, 6to4, NAT64), if any."""
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_host(host: str) -> Address | None:
    """The address a URL host names by itself, read as a C resolver would; None for a DNS name.

    Catches the numeric spellings that `inet_aton()` (and so `getaddrinfo()` and `connect()`)
    accepts but a dotted-quad check misses: `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`,
    `0x7f.1`. Like a browser, one trailing dot is allowed (`127.0.0.1.`). Bracketed and bare
    IPv6 literals are parsed too; a host with a colon that is not valid IPv6 gives None.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        return _parse_ipv6(host)
    value = _inet_aton(host)
    if value is None and host.endswith("."):
        value = _inet_aton(host[:-1])
    return None if value is None else IPv4Address(value)


def _in_any(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _table_reason(address: Address, table: Sequence[tuple[Network, str]]) -> str | None:
    for network, why in table:
        if address.version == network.version and address in network:
            return why
    return None


def _parse_ipv6(host: str) -> IPv6Address | None:
    # yarl keeps a zone id percent-encoded ("fe80::1%25eth0"); the zone does not change the
    # address, so it is dropped before parsing.
    bare = host.split("%", 1)[0]
    try:
        return IPv6Address(bare)
    except ValueError:
        return None


def _inet_aton(text: str) -> int | None:
    """Mirror glibc inet_aton(): 1-4 parts, each decimal, 0-octal or 0x-hex; None if invalid."""
    for index, char in enumerate(text):
        if char in _ASCII_SPACE:  # inet_aton stops at whitespace and ignores the rest
            text = text[:index]
            break
    parts = text.split(".")
    if len(parts) > 4:
        return None
    values = [_inet_aton_part(part) for part in parts]
    if any(value is None for value in values):
        return None
    return _pack_parts([value for value in values if value is not None])


def _inet_aton_part(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, _HEX_DIGITS
    elif part.startswith("0"):
        digits, base, allowed = part, 8, _OCT_DIGITS
    else:
        digits, base, allowed = part, 10, _DEC_DIGITS
    if not digits or not set(digits) <= allowed:
        return None
    return int(digits, base)


def _pack_parts(values: list[int]) -> int | None:
    """Pack a.b.c.d / a.b.c (c: 16 bits) / a.b (b: 24 bits) / a (32 bits) into one number."""
    *leading, last = values
    if any(value > 0xFF for value in leading):
        return None
    last_bits = 8 * (4 - len(leading))
    if last >= 1 << last_bits:
        return None
    packed = 0
    for value in leading:
        packed = packed << 8 | value
    return packed << last_bits | last
