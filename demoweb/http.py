"""A small threaded HTTP server on loopback for the demo web, with byte ranges.

Each demo site is one ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, whose
handler asks a ``route`` function for a ``Reply``. Files are served with single-range
``Range: bytes=`` support (206/416), as video players and the fingerprinting stage use
it. Every request is logged (path, User-Agent) so tests can check what a crawler did
and did not fetch.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None          # serve this file (with Range support) instead of body
    delay_s: float = 0.0             # wait before answering (a slow page)


Route = Callable[[str, str, dict[str, str]], Reply]


@dataclass
class Logged:
    method: str
    path: str
    user_agent: str
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        # The players' source APIs: the body is not needed, only read so the connection
        # stays usable.
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= 65536:
            self.rfile.read(int(length))
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        try:
            reply = self.server.route(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        except Exception as exc:  # noqa: BLE001 - a bug in a page must not kill the site
            reply = Reply(500, f"demo web error: {exc}".encode(), "text/plain")
        if reply.delay_s:
            time.sleep(reply.delay_s)
        self.server.log.append(Logged(self.command, self.path, self.headers.get("User-Agent", ""), reply.status))
        if reply.file is not None:
            self._file(reply, head)
            return
        self._send(reply.status, reply.body, reply.content_type, reply.headers, head)

    def _connection_header(self) -> None:
        # A client that asked for "Connection: close" (FFmpeg does) is told the
        # connection closes; without it an HTTP/1.1 client assumes keep-alive, reuses
        # the closed socket for its next range request and reads end-of-file.
        if self.close_connection:
            self.send_header("Connection", "close")

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str], head: bool) -> None:
        try:
            self.send_response(status)
            self._connection_header()
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a size limit, a timeout): its business

    def _file(self, reply: Reply, head: bool) -> None:
        assert reply.file is not None
        size = os.path.getsize(reply.file)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                self._send(416, b"", reply.content_type, {"Content-Range": f"bytes */{size}"}, head)
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # a suffix range: the last N bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                self._send(416, b"", reply.content_type, {"Content-Range": f"bytes */{size}"}, head)
                return
            status = 206
        headers = {"Accept-Ranges": "bytes", **reply.headers}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        try:
            self.send_response(status)
            self._connection_header()
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(end - start + 1))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if head:
                return
            with open(reply.file, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(65536, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.log: list[Logged] = []

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        # Crawlers hang up on purpose (size limits, timeouts): not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Site:
    """One demo site: a server on a free loopback port, running in a background thread."""

    def __init__(self, route: Route) -> None:
        self.server = _Server(route)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True, name=f"demoweb-{self.port}")
        self.thread.start()

    @property
    def log(self) -> list[Logged]:
        return self.server.log

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
