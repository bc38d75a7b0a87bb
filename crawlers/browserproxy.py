"""The browser's only way out: a loopback forward proxy that applies ``foundation.netsafe``.

Crawl stage, inside the crawler child, beside the browser resolver (``crawlers.browser``).
Chromium runs hostile JavaScript, so it is launched with this proxy as its proxy server
for every scheme (``--proxy-server``, loopback not bypassed), with its own DNS resolver
mapped to nothing (``--host-resolver-rules``): it never resolves a name or opens a
connection to the web itself. Every request reaches the proxy as ``CONNECT host:port``
(HTTPS, and WebSockets, which Chromium always tunnels) or as an absolute-URI request
(plain HTTP). The proxy resolves the host once, checks every address with
``foundation.netsafe`` (no loopback outside the demo and the tests, no private, link-local,
metadata or CGNAT address) and connects to the very address it checked, so a second DNS
answer cannot send the connection elsewhere (no rebinding window). Refusals are answered
``403`` and recorded.

Why hand-written: the proxies on PyPI are either interception proxies (mitmproxy: it
terminates TLS, a much larger attack surface and dependency than a CONNECT relay) or
not in our package index; what is needed here is a policy hook at connection time and
byte counting, about a hundred lines of asyncio.

Each proxy also counts the bytes it relays: one proxy per rendered page gives the page's
byte budget, and going over it closes every connection of that page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from foundation.errors import UnsafeAddress
from foundation.netsafe import check_url

MAX_HEAD = 64 * 1024
HEAD_TIMEOUT_S = 15.0


@dataclass
class ProxyLog:
    """What one proxy did: refused targets (with why), bytes relayed, over budget or not."""

    refused: list[dict[str, str]] = field(default_factory=list)
    bytes: int = 0
    over_budget: str | None = None


class GuardProxy:
    """A CONNECT and plain-HTTP forward proxy on 127.0.0.1 applying the address policy."""

    def __init__(self, *, allow_loopback: bool, max_bytes: int | None = None,
                 check: Callable[[str], list[str]] | None = None) -> None:
        self.allow_loopback = allow_loopback
        self.max_bytes = max_bytes
        self.log = ProxyLog()
        self._check = check or (lambda url: check_url(url, allow_loopback=self.allow_loopback))
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    # ------------------------------------------------------------------ per connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        if len(head) > MAX_HEAD:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = [ln for ln in lines[1:] if ln]
        if method.upper() == "CONNECT":
            host, _, port_s = target.rpartition(":")
            host = host.strip("[]")
            if not host or not port_s.isdigit():
                return await self._refuse(writer, target, "malformed CONNECT target")
            # The scheme only tells check_url which default port; the port is explicit.
            url = f"https://[{host}]:{port_s}/" if ":" in host else f"https://{host}:{port_s}/"
            address = await self._checked(url, writer)
            if address is None:
                return await self._refuse(writer, target, self.log.refused[-1]["why"])
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(address, int(port_s)), HEAD_TIMEOUT_S)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._relay(reader, writer, up_r, up_w)
            return
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            return await self._refuse(writer, target, "only absolute http:// URLs or CONNECT")
        address = await self._checked(target, writer)
        if address is None:
            return await self._refuse(writer, target, self.log.refused[-1]["why"])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [h for h in headers if not h.lower().startswith(("proxy-", "connection:", "keep-alive:",
                                                                "accept-encoding:"))]
        # Uncompressed where we can see it: the byte budget then counts what the browser
        # decodes (a compression bomb is its size); HTTPS stays as the server sends it.
        kept.append("Accept-Encoding: identity")
        # One request per upstream connection: Chromium may send its next request for
        # another host down the same proxy connection, which must be checked anew.
        out = f"{method} {path} {version}\r\n" + "".join(f"{h}\r\n" for h in kept) + "Connection: close\r\n\r\n"
        up_r, up_w = await asyncio.wait_for(asyncio.open_connection(address, parts.port or 80), HEAD_TIMEOUT_S)
        self._writers.add(up_w)
        try:
            up_w.write(out.encode("latin-1"))
            length = next((int(h.split(":", 1)[1]) for h in kept
                           if h.lower().startswith("content-length:") and h.split(":", 1)[1].strip().isdigit()), 0)
            if length:
                up_w.write(await reader.readexactly(length))
            await up_w.drain()
            await self._pump(up_r, writer)
        finally:
            self._writers.discard(up_w)
            up_w.close()

    async def _checked(self, url: str, writer: asyncio.StreamWriter) -> str | None:
        """The address to connect to for ``url``, or None (refusal recorded)."""
        try:
            # Resolving blocks: off the loop, so one slow name does not stall the page.
            return (await asyncio.to_thread(self._check, url))[0]
        except UnsafeAddress as exc:
            self.log.refused.append({"url": url[:300], "why": str(exc)[:300]})
            return None

    async def _refuse(self, writer: asyncio.StreamWriter, target: str, why: str) -> None:
        if not self.log.refused or self.log.refused[-1]["why"] != why:
            self.log.refused.append({"url": target[:300], "why": why[:300]})
        body = b"refused by Vigie's address policy\n"
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        with contextlib.suppress(OSError):
            await writer.drain()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
        self._writers.add(up_w)
        try:
            await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
        finally:
            self._writers.discard(up_w)
            up_w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                self.log.bytes += len(data)
                if self.max_bytes is not None and self.log.bytes > self.max_bytes:
                    self.log.over_budget = f"more than {self.max_bytes} bytes"
                    for w in list(self._writers):
                        w.close()
                    return
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()
