"""Address checks for URLs found on hostile pages, before anything fetches them.

Every stage that fetches a URL it did not choose itself (the crawlers following links
and embeds, ``identify`` and ``verify`` fetching media) asks this module first: only
http(s), and a host whose every resolved address is public. Private, loopback,
link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254 included), CGNAT,
multicast, reserved and unspecified addresses are refused, IPv6 too, and IPv4 hidden
inside IPv6 (``::ffff:10.0.0.1``, 6to4, NAT64) is unwrapped first. ``allow_loopback``
lets the demo web and the tests, which live on 127.0.0.1, through; nothing else can.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from vigie.errors import UnsafeAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")

# Ranges that ``is_global`` does not already exclude on every Python we support, or that
# we want named for the message. 100.64.0.0/10 is carrier-grade NAT (RFC 6598).
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for, if it stands for one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        # IPv4-compatible (deprecated ::a.b.c.d), still honoured by some stacks.
        if int(ip) >> 32 == 0 and int(ip) > 1:
            return ipaddress.IPv4Address(int(ip))
    return ip


def address_problem(address: str | IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why this address must not be fetched, or None when it may be."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"not an IP address: {address!r}"
    ip = _unwrap(ip)
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved or not ip.is_global:
        return "reserved or non-global address"
    return None


def resolve(host: str, port: int | None = None) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeAddress(f"cannot resolve host {host!r}: {exc}") from None
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def check_url(url: str, *, allow_loopback: bool = False) -> list[str]:
    """Check that ``url`` is http(s) and its host resolves only to fetchable addresses.

    Returns the resolved addresses; raises ``UnsafeAddress`` naming the reason.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddress(f"malformed URL {url[:200]!r}: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeAddress(f"refused URL scheme {parts.scheme!r} (only http and https): {url[:200]!r}")
    host = parts.hostname
    if not host:
        raise UnsafeAddress(f"URL has no host: {url[:200]!r}")
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeAddress(f"host {host!r} resolves to no address")
    for addr in addresses:
        problem = address_problem(addr, allow_loopback=allow_loopback)
        if problem:
            raise UnsafeAddress(f"refused {url[:200]!r}: {host} is {addr}, a {problem}")
    return addresses


def pin(conn: Any, address: str) -> Any:
    """Make an ``http.client`` connection connect to ``address``, the one that was checked.

    The host name still goes in the Host header and in TLS (SNI and certificate checks),
    but no second DNS lookup can send the connection elsewhere (DNS rebinding).
    """
    def connect(addr: tuple[str, int], *args: Any, **kw: Any) -> socket.socket:
        return socket.create_connection((address, addr[1]), *args, **kw)

    conn._create_connection = connect
    return conn


def on_loopback(url: str) -> bool:
    """True when ``url``'s host resolves to loopback addresses only."""
    try:
        addresses = resolve(urlsplit(url).hostname or "")
    except (UnsafeAddress, ValueError):
        return False
    return bool(addresses) and all(_unwrap(ipaddress.ip_address(a)).is_loopback for a in addresses)


def follow_redirects(url: str, *, allow_loopback: bool = False, timeout: float = 20.0,
                     max_redirects: int = 5) -> str:
    """The URL ``url`` finally answers at, every hop checked by ``check_url`` first.

    For fetchers that cannot check redirect targets themselves (FFmpeg follows them on
    its own): walk the chain here with one-byte range requests, then hand the fetcher the
    final URL with its own redirects switched off. Raises ``UnsafeAddress`` for a refused
    hop or too many hops; any other answer (an error status included) ends the walk, and
    the fetcher reports it.
    """
    import http.client
    from urllib.parse import urljoin

    for _ in range(max_redirects + 1):
        addresses = check_url(url, allow_loopback=allow_loopback)
        parts = urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
        conn = pin(conn_cls(parts.hostname or "", parts.port, timeout=timeout), addresses[0])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"Range": "bytes=0-0", "User-Agent": "Vigie"})
            resp = conn.getresponse()
            location = resp.getheader("Location")
            status = resp.status
        except (OSError, http.client.HTTPException):
            return url  # the fetcher meets the same failure and reports it
        finally:
            conn.close()
        if status not in (301, 302, 303, 307, 308) or not location:
            return url
        url = urljoin(url, location)
    raise UnsafeAddress(f"more than {max_redirects} redirects from {url[:200]!r}")
