"""Where qac itself may connect for the model (web_fetch), and how: public addresses only
unless the user's config allows a private host or network, and connections pinned to the
addresses checked, every read bounded by a total deadline.

Standard library only; imports nothing of qac, so every caller can sit above it.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import ssl
import time
from http.client import HTTPConnection, HTTPSConnection
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

IPAddress = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

READ_TIMEOUT = 15.0
"""Seconds one socket operation may wait, however much of the total deadline is left."""
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
"""Cloud instance metadata services (AWS, GCP, Azure, AWS IPv6, Alibaba Cloud, Oracle): the
classic target of server-side request forgery, named apart so the refusal says so."""

_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "reserved ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared address space)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved (benchmarking)"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "reserved (local-use NAT64)"),
    ("100::/64", "reserved (discard-only)"),
    ("2001:2::/48", "reserved (benchmarking)"),
    ("2001:10::/28", "reserved (ORCHID)"),
    ("2001:20::/28", "reserved (ORCHIDv2)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "reserved (segment routing)"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private (site-local)"),
    ("ff00::/8", "multicast"),
)
REFUSED_NETWORKS: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in _REFUSED
)

_MAPPED = IPv6Network("::ffff:0:0/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")


class AddressRefusedError(Exception):
    """A host resolved to an address that may not be reached; the message says which and why."""


def check_address(ip: IPAddress | str, allowed: tuple[str, ...] = ()) -> str | None:
    """Why connecting to `ip` is refused, or None. `allowed` holds IPs, CIDRs or host names
    (a name allows every address it resolves to) that the user let through."""
    address = _bare(ipaddress.ip_address(ip) if isinstance(ip, str) else ip)
    reason = _refusal(address)
    if reason is None or _is_allowed(address, allowed):
        return None
    return reason


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order; raises OSError when it does
    not resolve."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        text = str(sockaddr[0])
        if len(sockaddr) == 4 and sockaddr[3]:  # an IPv6 scope (fe80::1%eth0)
            text = f"{text.split('%')[0]}%{sockaddr[3]}"
        address = ipaddress.ip_address(text)
        if address not in found:
            found.append(address)
    return found


def resolve_checked(host: str, port: int, allowed: tuple[str, ...] = ()) -> list[IPAddress]:
    """The addresses of `host`, all of them permitted; a host with ANY refused address is
    refused as a whole, so a rebinding or split-horizon name cannot offer a good one first."""
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no addresses")
    for address in addresses:
        reason = check_address(address, allowed)
        if reason is not None:
            named = "" if host == str(address) else f"{host} resolves to "
            raise AddressRefusedError(f"{named}{address} is not public: {reason}")
    return addresses


def _refusal(address: IPAddress) -> str | None:
    if address in METADATA:
        return "cloud metadata"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = _refusal(embedded)
        return None if inner is None else f"{inner} (embedded in {address})"
    for network, why in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return why
    if not address.is_global:
        return "reserved (not globally routable)"
    return None


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, translated, compatible, NAT64, 6to4,
    Teredo), since a connection to it may reach that IPv4 host."""
    if isinstance(address, IPv4Address):
        return None
    bare = IPv6Address(int(address))  # without a scope id, so network tests work
    if bare in _MAPPED or bare in _TRANSLATED or bare in _NAT64:
        return IPv4Address(int(bare) & 0xFFFFFFFF)
    if bare in _COMPATIBLE and int(bare) > 1:
        return IPv4Address(int(bare))
    if bare.sixtofour is not None:
        return bare.sixtofour
    if bare.teredo is not None:
        server, client = bare.teredo
        return client if _refusal(client) is not None else server
    return None


def _is_allowed(address: IPAddress, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return False
    candidates = [address]
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        candidates.append(embedded)
    for network in allowed_networks(allowed):
        if any(a.version == network.version and a in network for a in candidates):
            return True
    return False


def _bare(address: IPAddress) -> IPAddress:
    """The address without an IPv6 scope id (fe80::1%eth0), which network tests ignore."""
    return IPv6Address(int(address)) if isinstance(address, IPv6Address) else address


def allowed_networks(allowed: tuple[str, ...]) -> list[Network]:
    """The networks the user's entries stand for; a host name stands for each address it
    resolves to now, and a name that does not resolve allows nothing."""
    networks: list[Network] = []
    for entry in allowed:
        text = entry.strip().strip("[]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for *_, sockaddr in infos:
            bare = str(sockaddr[0]).split("%")[0]
            networks.append(ipaddress.ip_network(bare))
    return networks


def _time_left(deadline: float) -> float:
    """How long the next socket operation may wait: the per-read limit, or less when the
    fetch's whole time limit is nearer; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the time limit ran out")
    return min(left, READ_TIMEOUT)


class _DeadlineSocket(socket.socket):
    """A TCP socket whose every read also respects the fetch's total deadline, so a server
    that drips a byte at a time cannot hold qac past it."""

    deadline = math.inf

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """The same for TLS (the handshake is bounded by the timeout set before it)."""

    deadline = math.inf

    def recv_into(self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(_time_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


def _connect(addresses: list[IPAddress], port: int, deadline: float) -> socket.socket:
    """A connection to the first checked address that answers; never a fresh DNS lookup."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline = deadline
        try:
            sock.settimeout(_time_left(deadline))
            sock.connect((str(address), port))
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


class PinnedHTTPConnection(HTTPConnection):
    """Plain HTTP to addresses already checked, so the name is never resolved again (DNS
    rebinding); the Host header still names the host. `deadline` is a time.monotonic()."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress], deadline: float) -> None:
        super().__init__(host, port, timeout=READ_TIMEOUT)
        self.addresses = addresses
        self.deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.deadline)


class PinnedHTTPSConnection(HTTPSConnection):
    """TLS to addresses already checked; SNI and the certificate check (the default context,
    verification on) use the real host name."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress], deadline: float) -> None:
        self.tls = ssl.create_default_context()
        self.tls.sslsocket_class = _DeadlineSSLSocket
        super().__init__(host, port, timeout=READ_TIMEOUT, context=self.tls)
        self.addresses = addresses
        self.deadline = deadline

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port, self.deadline)
        try:
            sock.settimeout(_time_left(self.deadline))
            wrapped = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        if isinstance(wrapped, _DeadlineSSLSocket):
            wrapped.deadline = self.deadline
        self.sock = wrapped
