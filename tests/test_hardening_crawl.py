"""Crawler limits against a hostile server: bombs, endless bodies, slow-loris.

A raw-socket server on loopback answers with a gzip bomb, a deflate bomb, a brotli bomb
(each decompressing to far more than the limit), an endless chunked body, a slow-loris
body (one byte at a time, forever) and a server that never answers. A real crawl (the
crawler child process of ``crawlers.run``, with the site's ``max_size_bytes`` and
``timeout_s``) must end every one of them with an error naming the limit, and the
crawler's memory must stay bounded. The crawl runs inside a fresh Python process so that
its peak memory (``RUSAGE_CHILDREN``) is the crawler's alone.
"""

from __future__ import annotations

import gzip
import json
import socketserver
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers.sites import add_site
from db.session import make_engine, sessionmaker_for, upgrade
from tests.figures import Figures

MAX_SIZE = 1 << 20          # the site's max_size_bytes (DOWNLOAD_MAXSIZE)
TIMEOUT_S = 3.0             # the site's timeout_s (DOWNLOAD_TIMEOUT)
BOMB = 256 << 20            # what each bomb decompresses to
MEMORY_BOUND = 400 << 20    # the crawler process's peak RSS must stay below this


def _bombs() -> dict[str, tuple[str, bytes]]:
    zeros = bytes(BOMB)
    out = {"gzip": ("gzip", gzip.compress(zeros, compresslevel=9, mtime=0)),
           "deflate": ("deflate", zlib.compress(zeros, 9))}
    try:
        import brotli

        out["br"] = ("br", brotli.compress(zeros, quality=5))
    except ImportError:
        pass
    return out


class _Hostile(socketserver.BaseRequestHandler):
    bombs: dict[str, tuple[str, bytes]] = {}
    hits: dict[str, int] = {}

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(60)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            name = path.strip("/").split("?")[0]
            self.hits[name] = self.hits.get(name, 0) + 1
            if name in self.bombs:
                enc, body = self.bombs[name]
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: "
                             + enc.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + body)
            elif name == "chunked":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                piece = b"<p>" + b"x" * 65530 + b"</p>"
                chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                while True:  # forever, until the client hangs up
                    sock.sendall(chunk)
            elif name == "slowloris":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
                while True:
                    sock.sendall(b"x")
                    time.sleep(0.3)
            elif name == "silent":
                time.sleep(60)
            else:
                body = b"<html><body>ok</body></html>"
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        except OSError:
            return  # the crawler hung up: that is the point


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[str, dict[str, int], list[str]]]:
    _Hostile.bombs = _bombs()
    _Hostile.hits = {}
    srv = _Server(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    names = [*_Hostile.bombs, "chunked", "slowloris", "silent"]
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Hostile.hits, names
    srv.shutdown()
    srv.server_close()


_RUNNER = """
import json, resource, sys
from crawlers.run import crawl_site
res = crawl_site(sys.argv[1], sys.argv[2], allow_loopback=True, timeout_s=120)
print(json.dumps({"pages": res.pages, "errors": res.errors, "error_log": res.error_log,
                  "status": res.status,
                  "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def test_bombs_endless_and_slow_bodies_end_at_the_limits(hostile, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        figures: Figures) -> None:
    base, hits, names = hostile
    db_url = f"sqlite:///{tmp_path / 'limits.db'}"
    eng = make_engine(db_url)
    upgrade(eng)
    with sessionmaker_for(eng).begin() as s:
        add_site(s, "hostile", [f"{base}/ok", *[f"{base}/{n}" for n in names]],
                 settings={"download_delay": 0.0, "retries": 0, "timeout_s": TIMEOUT_S,
                           "max_size_bytes": MAX_SIZE, "obey_robots": False, "concurrency": 8})
    eng.dispose()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _RUNNER, db_url, "hostile"], capture_output=True,
                          text=True, timeout=180, cwd=str(Path(__file__).resolve().parents[1]))
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = {e["url"].rsplit("/", 1)[-1]: e["error"] for e in out["error_log"]}
    ended = []
    for n in names:
        err = errors.get(n, "")
        if n in ("slowloris", "silent"):
            ok = "timeout" in err.lower() or "took longer" in err.lower()
        else:
            ok = "download_maxsize" in err.lower() or f"size limit ({MAX_SIZE} bytes)" in err
        if ok:
            ended.append(n)
    peak = out["peak"]
    figures.record("crawl limits: hostile bodies ended at their limit",
                   f"{len(ended)}/{len(names)} ({', '.join(names)})", f"{len(names)}/{len(names)}",
                   len(ended) == len(names))
    figures.record("crawl limits: crawler peak memory (MiB)", f"{peak / 2**20:.0f}",
                   f"< {MEMORY_BOUND / 2**20:.0f} MiB with {BOMB / 2**20:.0f} MiB bombs",
                   peak < MEMORY_BOUND)
    figures.record("crawl limits: whole hostile crawl (s)", f"{elapsed:.1f}",
                   f"< 60 s (timeouts {TIMEOUT_S:.0f} s; a figure, not asserted)", elapsed < 60)
    assert all(hits.get(n) for n in names), hits  # every hostile answer was really requested
    assert out["pages"] >= 1, out  # the benign page got through
    assert sorted(ended) == sorted(names), errors
    assert peak < MEMORY_BOUND
