"""The address policy: which addresses are refused, what counts as an IP literal, CIDR lists.

The blocked ranges below are written out again from the IANA special-purpose registries, on
purpose: they are the test's own statement of the rule, not a copy of the module's table.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bot.core.addresses import blocked_reason, embedded_ipv4, parse_host, parse_networks

BLOCKED_V4 = [
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
BLOCKED_V6 = [
    IPv6Network(cidr)
    for cidr in (
        "::/8",  # unspecified, loopback, IPv4-compatible, ...
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]
# Prefixes whose addresses are judged by the IPv4 address they carry.
MAPPED = IPv6Network("::ffff:0:0/96")
NAT64 = IPv6Network("64:ff9b::/96")
SIX_TO_FOUR = IPv6Network("2002::/16")
GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")


def _addresses_in(
    network: IPv4Network | IPv6Network,
) -> st.SearchStrategy[IPv4Address | IPv6Address]:
    kind: type[IPv4Address | IPv6Address] = IPv4Address if network.version == 4 else IPv6Address
    first, last = int(network.network_address), int(network.broadcast_address)
    return st.integers(first, last).map(kind)


v6_addresses = st.integers(0, 2**128 - 1).map(IPv6Address)
# Octet by octet, so Hypothesis's taste for 0 and 2**32-1 does not land in blocked ranges.
public_v4 = (
    st.tuples(st.integers(1, 223), *[st.integers(0, 255)] * 3)
    .map(lambda octets: IPv4Address(".".join(map(str, octets))))
    .filter(lambda address: not any(address in net for net in BLOCKED_V4))
)
blocked_v4 = st.sampled_from(BLOCKED_V4).flatmap(_addresses_in)
blocked_v6 = st.sampled_from(BLOCKED_V6).flatmap(_addresses_in)


def _embed(kind: str, v4: IPv4Address) -> IPv6Address:
    if kind == "mapped":
        return IPv6Address(f"::ffff:{v4}")
    if kind == "nat64":
        return IPv6Address(int(NAT64.network_address) | int(v4))
    return IPv6Address(int(SIX_TO_FOUR.network_address) | int(v4) << 80)


# --- blocked_reason: tables ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "carrier-grade NAT"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("0.0.0.0", "unspecified / 'this network'"),
        ("192.0.0.170", "IETF protocol assignments"),
        ("198.19.0.1", "benchmarking"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::1", "unique local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("2001::1", "IETF protocol assignments"),  # Teredo
        ("::7f00:1", "reserved"),  # deprecated IPv4-compatible form
        ("::ffff:127.0.0.1", "loopback (embedded in ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "link-local (embedded in ::ffff:a9fe:a9fe)"),
        ("64:ff9b::a9fe:a9fe", "link-local (embedded in 64:ff9b::a9fe:a9fe)"),
        ("2002:0a00:0001::", "private (embedded in 2002:a00:1::)"),
    ],
)
def test_blocked_addresses_name_their_range(address: str, reason: str) -> None:
    """Each special-purpose range is refused with words saying which it is."""
    assert blocked_reason(ip_address(address), ()) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.32.0.1",  # just above 172.16/12
        "2606:4700:4700::1111",
        "2a00:1450:4001:81c::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_allowed(address: str) -> None:
    """Public unicast addresses, and IPv6 forms carrying a public IPv4, are allowed."""
    assert blocked_reason(ip_address(address), ()) is None


def test_allow_list_exempts_ranges() -> None:
    """MODBOT_ALLOW_PRIVATE_NETWORKS exempts exactly the listed ranges, mapped forms included."""
    allow = parse_networks("127.0.0.2/32, fd00::/8")

    assert blocked_reason(ip_address("127.0.0.2"), allow) is None
    assert blocked_reason(ip_address("::ffff:127.0.0.2"), allow) is None
    assert blocked_reason(ip_address("fd12::1"), allow) is None
    assert blocked_reason(ip_address("127.0.0.1"), allow) == "loopback"
    assert blocked_reason(ip_address("fe80::1"), allow) == "link-local"


# --- blocked_reason: properties --------------------------------------------------------------


@given(blocked_v4)
def test_every_address_in_a_blocked_v4_range_is_blocked(address: IPv4Address) -> None:
    """No address inside a special-purpose IPv4 range gets through."""
    assert blocked_reason(address, ()) is not None


@given(blocked_v6)
def test_every_address_in_a_blocked_v6_range_is_blocked(address: IPv6Address) -> None:
    """No address inside a special-purpose IPv6 range gets through."""
    assume(address not in MAPPED)  # ::ffff:0:0/96 sits inside ::/8 but is judged by its IPv4
    assert blocked_reason(address, ()) is not None


@given(st.sampled_from(["mapped", "nat64", "6to4"]), blocked_v4)
def test_ipv6_forms_of_blocked_v4_are_blocked(kind: str, v4: IPv4Address) -> None:
    """IPv4-mapped, NAT64 and 6to4 addresses are refused when the IPv4 inside is."""
    address = _embed(kind, v4)
    assert embedded_ipv4(address) == v4
    assert blocked_reason(address, ()) is not None


@given(public_v4)
def test_every_public_v4_is_allowed(address: IPv4Address) -> None:
    """Any IPv4 address outside the blocked ranges is allowed, and Python agrees it is global."""
    assert blocked_reason(address, ()) is None
    assert address.is_global


@given(st.sampled_from(["mapped", "nat64", "6to4"]), public_v4)
def test_ipv6_forms_of_public_v4_are_allowed(kind: str, v4: IPv4Address) -> None:
    """A public IPv4 address stays reachable through its IPv6 forms."""
    assert blocked_reason(_embed(kind, v4), ()) is None


@given(v6_addresses)
def test_public_v6_allowed_and_the_rest_blocked(address: IPv6Address) -> None:
    """Global unicast outside the special ranges is allowed; everything outside 2000::/3 that
    carries no IPv4 is refused."""
    assume(address not in MAPPED and address not in NAT64 and address not in SIX_TO_FOUR)
    special = any(address in net for net in BLOCKED_V6) or address not in GLOBAL_UNICAST_V6
    assert (blocked_reason(address, ()) is not None) is special


@given(st.one_of(blocked_v4, blocked_v6))
def test_allow_list_exempts_every_address_in_it(address: IPv4Address | IPv6Address) -> None:
    """An address inside an allowed network is never refused."""
    allow = (ip_network(address),)
    assert blocked_reason(address, allow) is None


# --- parse_host ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),  # one trailing dot, as browsers read it
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("example.com", None),
        ("files.slack.com", None),
        ("127.0.0.1.example", None),
        ("0x7g.1", None),
        ("08.0.0.1", None),  # 0-prefixed means octal, and 8 is not an octal digit
        ("256.0.0.1", None),
        ("1.2.3.4.5", None),
        ("4294967296", None),
        ("127..1", None),
        ("[1:2]", None),
        ("", None),
    ],
)
def test_parse_host(host: str, expected: str | None) -> None:
    """Numeric spellings a C resolver accepts are read as addresses; DNS names give None."""
    assert parse_host(host) == (ip_address(expected) if expected else None)


def _inet_aton(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


# Parts built the way inet_aton reads them: decimal, 0-octal or 0x-hex, of any size.
_numeric_part = st.one_of(
    st.integers(0, 2**33).map(str),
    st.integers(0, 2**33).map(lambda n: f"0{n:o}"),
    st.integers(0, 2**33).map(lambda n: f"0x{n:x}"),
    st.integers(0, 2**33).map(lambda n: f"0X{n:X}"),
)
numeric_hosts = st.lists(_numeric_part, min_size=1, max_size=5).map(".".join)
garbled_hosts = st.text(alphabet="0123456789abcdefxX. \t", max_size=20)


@given(st.one_of(numeric_hosts, garbled_hosts))
def test_parse_host_agrees_with_inet_aton(host: str) -> None:
    """Whatever inet_aton accepts, parse_host reads the same; anything else it reads is the
    same string with one trailing dot more than inet_aton allows."""
    assert ":" not in host
    expected = _inet_aton(host)
    got = parse_host(host)
    if expected is not None:
        assert got == expected
    elif got is not None:
        assert host.endswith(".")
        assert _inet_aton(host[:-1]) == got


# --- parse_networks --------------------------------------------------------------------------


def test_parse_networks_reads_a_cidr_list() -> None:
    """A comma-separated list, spaces and empty entries tolerated, bare addresses as /32."""
    assert parse_networks(" 10.0.0.0/8, ,127.0.0.2,fd00::/8 ") == (
        IPv4Network("10.0.0.0/8"),
        IPv4Network("127.0.0.2/32"),
        IPv6Network("fd00::/8"),
    )
    assert parse_networks("") == ()


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-a-net", "10.0.0.1/8"])
def test_parse_networks_names_the_bad_entry(bad: str) -> None:
    """A malformed entry (or one with host bits set) is refused, by name."""
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        parse_networks(f"127.0.0.0/8,{bad}")
