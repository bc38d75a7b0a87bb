"""Address checks for URLs found on hostile pages, before anything fetches them.

Every stage that fetches a URL it did not choose itself (the crawlers following links
and embeds, ``identify`` and ``verify`` fetching media) asks this module first: only
http(s), and a host whose every resolved address is public. Private, loopback,
link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254 included), CGNAT,
multicast, reserved and unspecified addresses are refused, IPv6 too, and IPv4 hidden
inside IPv6 (``::ffff:10.0.0.1``, 6to4, NAT64) is unwrapped first. ``allow_loopback``
lets the demo web and the tests, which live on 127.0.0.1, through; nothing else can.

Every connection goes to the address its check saw (``pin``): a second DNS lookup by
the fetcher could otherwise answer 127.0.0.1 or 169.254.169.254 (DNS rebinding). Media
is read the same way: ``MediaOpener`` is the I/O of FFmpeg for remote videos, so every
URL FFmpeg opens (the video, an HLS playlist, its segments and keys, each redirect hop)
is checked here and read over a connection to the checked address; FFmpeg itself opens
no network connection and resolves no name.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ipaddress
import re
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from foundation.errors import FetchError, UnsafeAddress

if TYPE_CHECKING:
    import http.client
    import ssl

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


def http_url(url: str) -> str:
    """``url``, stripped, if it is a well-formed http(s) URL with a host and no control
    character or space; ValueError saying why otherwise. No name is resolved: the shape
    check of URLs people type (offers, site start URLs, ``[web] public_base_url``)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as exc:  # "https://[::1": an unclosed IPv6 literal
        raise ValueError(f"not a URL ({exc}): {url[:200]!r}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    if any(ord(c) < 33 or c in "\x7f\x85\u2028\u2029" for c in url):
        raise ValueError(f"a URL holds no spaces or control characters: {url[:200]!r}")
    return url


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


# --- Media I/O for FFmpeg -----------------------------------------------------------
#
# FFmpeg's own HTTP client resolves a host name again when it connects, after our check
# (and hands a playlist's segment URLs to the same client unchecked). A forward proxy
# for FFmpeg (its http_proxy option) would pin plain HTTP, but HTTPS through a proxy
# needs FFmpeg's "httpproxy" protocol whitelisted, and the HLS demuxer accepts any
# protocol whose name starts with "http" for a segment: a playlist line
# ``httpproxy://10.0.0.1:6379/x`` would connect straight there. So FFmpeg gets no
# network at all: PyAV's ``io_open`` hands every URL it opens to ``MediaOpener``.

_REDIRECTS = (301, 302, 303, 307, 308)
_CONTENT_RANGE = re.compile(r"bytes\s+([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18}|\*)", re.IGNORECASE)
_LENGTH = re.compile(r"\s*([0-9]{1,18})\s*")
# A forward seek shorter than this reads through the open response instead of a new
# request (FFmpeg's own HTTP client does the same below its short_seek threshold).
SHORT_SEEK = 64 * 1024
MEDIA_USER_AGENT = "Vigie"

_LOOPBACK: contextvars.ContextVar[bool | None] = contextvars.ContextVar("vigie_media_loopback",
                                                                         default=None)


@contextlib.contextmanager
def media_loopback(allow: bool) -> Iterator[None]:
    """Whether remote media read in this context (and in sandbox children forked from
    it) may come from loopback: the caller's ``allow_loopback``, handed to the reader."""
    token = _LOOPBACK.set(allow)
    try:
        yield
    finally:
        _LOOPBACK.reset(token)


def media_loopback_setting() -> bool | None:
    """The ``media_loopback`` setting of this context (None: none), for handing it to a
    process that was not forked from it (``fingerprint.sandbox.run_in_worker``)."""
    return _LOOPBACK.get()


def media_loopback_allowed(url: str) -> bool:
    """Loopback policy for reading media from ``url`` and whatever it leads to.

    The caller's ``media_loopback`` setting if there is one; else loopback only when
    ``url`` names a loopback IP literally (a trusted caller reading a local test server;
    a literal cannot be rebound, and a hostile URL naming 127.0.0.1 was refused by the
    caller's check). A host *name* on loopback needs the explicit setting: a name is
    what a rebinding attacker controls."""
    explicit = _LOOPBACK.get()
    if explicit is not None:
        return explicit
    try:
        ip = ipaddress.ip_address((urlsplit(url).hostname or "").split("%", 1)[0])
    except ValueError:
        return False
    return _unwrap(ip).is_loopback


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA certificates takes tens of milliseconds: once per process.
    import ssl

    return ssl.create_default_context()


class MediaOpener:
    """``io_open`` for PyAV: opens each URL FFmpeg asks for as a ``RemoteFile``.

    One opener per opened container. It remembers the checked addresses of every host
    it met, so all requests to a host (range requests while seeking, HLS segments) go
    to the address checked first, and keeps idle keep-alive connections for reuse.
    ``request_size`` bounds each range request (seeking reads about that much, not the
    rest of the file); None streams from the position to the end."""

    def __init__(self, *, allow_loopback: bool, timeout: float = 20.0,
                 request_size: int | None = None, max_redirects: int = 5) -> None:
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self.request_size = request_size
        self.max_redirects = max_redirects
        self._addresses: dict[tuple[str, int | None], str] = {}
        self._idle: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}
        self.opened: list[str] = []

    def __call__(self, url: str, flags: int = 0, options: dict[str, str] | None = None) -> Any:
        if flags & 2:  # AVIO_FLAG_WRITE
            raise FetchError(f"refused to write to {url[:200]!r}")
        options = options or {}
        if url.startswith(("crypto+", "crypto:")):
            # HLS AES-128: FFmpeg's crypto protocol wraps the segment; decrypt here.
            try:
                key = bytes.fromhex(options.get("key", ""))
                iv = bytes.fromhex(options.get("iv", "") or "0" * 32)
            except ValueError:
                raise FetchError("HLS AES-128 key or IV is not hexadecimal") from None
            return _Decrypting(self.open(url[7:]), key, iv)
        return self.open(url)

    def open(self, url: str) -> RemoteFile:
        self.opened.append(url)
        return RemoteFile(self, url)

    def address(self, url: str) -> str:
        """The checked address to connect to for ``url`` (checked on first use)."""
        try:
            parts = urlsplit(url)
            key = ((parts.hostname or "").lower(), parts.port)
        except ValueError as exc:  # a playlist's "http://[::1/x" or ":99999"
            raise FetchError(f"malformed URL {url[:200]!r}: {exc}") from None
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            raise FetchError(f"refused URL scheme {parts.scheme!r} (only http and https): {url[:200]!r}")
        if key not in self._addresses:
            try:
                self._addresses[key] = check_url(url, allow_loopback=self.allow_loopback)[0]
            except UnsafeAddress as exc:
                raise FetchError(str(exc)) from None
        return self._addresses[key]

    def connection(self, url: str) -> tuple[tuple[str, str, int | None], http.client.HTTPConnection, bool]:
        """(pool key, connection, whether it was reused) for a request to ``url``."""
        address = self.address(url)
        parts = urlsplit(url)
        key = (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
        conn = self._idle.pop(key, None)
        if conn is not None:
            return key, conn, True
        import http.client  # here, not at start-up: config checks import this module too

        if key[0] == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                               timeout=self.timeout, context=_tls_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
        return key, pin(conn, address), False

    def release(self, key: tuple[str, str, int | None], conn: http.client.HTTPConnection) -> None:
        old = self._idle.pop(key, None)
        if old is not None:
            old.close()
        self._idle[key] = conn

    def close(self) -> None:
        for conn in self._idle.values():
            conn.close()
        self._idle.clear()

    # The container holds its opener until it is freed; idle connections go with it.
    __del__ = close


class RemoteFile:
    """A remote video as a seekable file for FFmpeg: HTTP range requests, each hop of a
    redirect checked, every connection to the checked address.

    The first request is made when it is opened, so a refused address, a dead link or
    an error status fails the open (as FFmpeg's own HTTP client did), and the size and
    whether the server takes range requests are known before FFmpeg asks."""

    def __init__(self, opener: MediaOpener, url: str) -> None:
        self.opener = opener
        self.url = url
        self.pos = 0
        self.size: int | None = None
        self.ranges = True
        self._resp: http.client.HTTPResponse | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._key: tuple[str, str, int | None] | None = None
        self._resp_pos = 0            # offset of the next byte the open response gives
        self._resp_end: int | None = None  # offset after its last byte, when known
        self._ranged = False
        self._request(0)
        self.ranges = self._resp is None or self._ranged

    # -- file protocol (what PyAV's PyIOFile calls) --

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.ranges

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            new = offset
        elif whence == 1:
            new = self.pos + offset
        elif whence == 2 and self.size is not None:
            new = self.size + offset
        else:
            raise OSError("size of remote file unknown")
        if new < 0:
            raise OSError(f"seek to a negative offset ({new})")
        self.pos = new
        return new

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        while True:
            if self.size is not None and self.pos >= self.size:
                return b""
            if not self._at_position():
                self._request(self.pos)
                if self._resp is None:
                    return b""
            assert self._resp is not None
            want = n if self._resp_end is None else min(n, self._resp_end - self._resp_pos)
            data = self._body(want) if want > 0 else b""
            if data:
                self._resp_pos += len(data)
                self.pos += len(data)
                return data
            # This response is done: a bounded range ended (ask for the next one) or the
            # server ended the body (the end of the file, or of what it will send).
            ended_range = self._resp_end is not None and self._resp_pos >= self._resp_end
            self._finish(reusable=ended_range)
            if not ended_range or not self.ranges:
                return b""

    def close(self) -> None:
        self._finish(reusable=False)

    # -- HTTP --

    def _at_position(self) -> bool:
        """Whether the open response continues at ``pos`` (reading through a short gap)."""
        if self._resp is None:
            return False
        gap = self.pos - self._resp_pos
        if gap == 0:
            return True
        if 0 < gap <= SHORT_SEEK and (self._resp_end is None or self.pos < self._resp_end):
            while gap > 0:
                chunk = self._body(min(gap, 65536))
                if not chunk:
                    return False
                gap -= len(chunk)
                self._resp_pos += len(chunk)
            return True
        return False

    def _body(self, n: int) -> bytes:
        """Up to ``n`` bytes of the open response; a broken body (a chunked one cut short)
        is an OSError, which ends decoding with the frames it gave (found by fuzzing)."""
        assert self._resp is not None
        import http.client

        try:
            return self._resp.read(n)
        except http.client.HTTPException as exc:
            raise OSError(f"broken response from {self.url[:200]}: {exc!r}"[:300]) from None

    def _finish(self, *, reusable: bool) -> None:
        resp, conn, key = self._resp, self._conn, self._key
        self._resp = self._conn = self._key = None
        if resp is not None and conn is not None and key is not None and reusable \
                and resp.isclosed() and not resp.will_close:
            self.opener.release(key, conn)
        elif conn is not None:
            conn.close()

    def _request(self, start: int) -> None:
        self._finish(reusable=False)
        step = self.opener.request_size
        end = ""
        if step:
            last = start + step if self.size is None else min(start + step, self.size)
            end = str(last - 1)
        url = self.url
        for _ in range(self.opener.max_redirects + 1):
            resp, conn, key = self._get(url, f"bytes={start}-{end}")
            location = resp.getheader("Location")
            if resp.status in _REDIRECTS and location:
                conn.close()
                try:
                    url = urljoin(url, location)
                except ValueError:  # "http://[:]/": no URL (found by fuzzing)
                    raise FetchError(f"bad redirect from {url[:200]}: {location[:200]!r}") from None
                continue
            self.url = url  # later range requests go straight to where it led
            self._conn, self._key, self._resp = conn, key, resp
            self._accept(resp, start)
            return
        raise FetchError(f"more than {self.opener.max_redirects} redirects from {self.url[:200]!r}")

    def _get(self, url: str, byte_range: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection,
                                                         tuple[str, str, int | None]]:
        self.opener.address(url)  # checked (and known to parse) before anything else
        parts = urlsplit(url)
        # Escaped as a browser would (a Location may carry raw UTF-8 or spaces), existing
        # escapes kept.
        path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     safe="/?&=%:@!$'()*+,;~-._")
        headers = {"Range": byte_range, "User-Agent": MEDIA_USER_AGENT, "Accept-Encoding": "identity"}
        import http.client

        while True:
            key, conn, reused = self.opener.connection(url)
            try:
                conn.request("GET", path, headers=headers)
                return conn.getresponse(), conn, key
            except (OSError, ValueError, http.client.HTTPException) as exc:
                conn.close()
                if reused:
                    continue  # the server closed an idle keep-alive connection: a new one
                raise FetchError(f"cannot fetch {url[:200]}: {exc or type(exc).__name__}") from None

    def _accept(self, resp: http.client.HTTPResponse, start: int) -> None:
        status = resp.status
        if status == 416:  # past the end
            self._finish(reusable=False)
            self.size = self.size if self.size is not None else start
            return
        if status not in (200, 206):
            self._finish(reusable=False)
            raise FetchError(f"HTTP {status} from {self.url[:200]}")
        self._ranged = status == 206
        length = resp.getheader("Content-Length")
        if status == 206:
            m = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
            first, last = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
            total = int(m.group(3)) if m and m.group(3) != "*" else None
            # Each range must give at least one byte where asked: a server answering an
            # empty or backward range would otherwise be asked again and again.
            if not m or first != start or last < first or (total is not None and last >= total):
                self._finish(reusable=False)
                raise FetchError(f"bad Content-Range from {self.url[:200]}")
            if total is not None:
                self.size = total
            self._resp_pos, self._resp_end = start, last + 1
            return
        # 200: the whole file from its start (the server ignored the range).
        self._ranged = (resp.getheader("Accept-Ranges") or "").lower() == "bytes" and start == 0
        self._resp_pos = 0
        m = _LENGTH.fullmatch(length or "")  # not isdigit(): "1²" is digits to it (found by fuzzing)
        self._resp_end = int(m.group(1)) if m else None
        if self._resp_end is not None:
            self.size = self._resp_end
        if start and not self._at_position_from_zero(start):
            self._finish(reusable=False)
            self.size = self.size if self.size is not None else start

    def _at_position_from_zero(self, start: int) -> bool:
        # A server without range support: read through to the position (as a browser would).
        assert self._resp is not None
        left = start
        while left > 0:
            chunk = self._body(min(left, 1 << 20))
            if not chunk:
                return False
            left -= len(chunk)
        self._resp_pos = start
        return True


class _Decrypting:
    """An HLS AES-128 segment (CBC, PKCS#7 padding), decrypted while it is read."""

    def __init__(self, inner: RemoteFile, key: bytes, iv: bytes) -> None:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(key) != 16 or len(iv) != 16:
            inner.close()
            raise FetchError("HLS AES-128 key or IV of the wrong length")
        self.inner = inner
        self._dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpad = padding.PKCS7(128).unpadder()
        self._out = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 1 << 20
        while len(self._out) < n and not self._done:
            chunk = self.inner.read(65536)
            if chunk:
                self._out += self._unpad.update(self._dec.update(chunk))
            else:
                self._out += self._unpad.update(self._dec.finalize()) + self._unpad.finalize()
                self._done = True
        out, self._out = self._out[:n], self._out[n:]
        return out

    def close(self) -> None:
        self.inner.close()
