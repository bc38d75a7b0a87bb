"""SSRF canary for the browser resolver: hostile JavaScript never reaches inside.

The issue 8 canary (tests/test_hardening_net.py) extended to Chromium. A hostile page
tries every way out a script has: ``<img>``, ``fetch``, ``XMLHttpRequest``, an iframe,
``WebSocket``, ``EventSource``, ``sendBeacon``, preconnect and DNS prefetch hints, a
WebRTC TURN server, each both directly and through a redirect from its own server, and
a name whose second DNS answer is the canary (rebinding). Criterion: 0 hits on the
canary, while a control run that lets loopback through does reach it (so the attempts
are real).

Stand-ins, as in the media tests of issue 8: 127.0.0.1, where the hostile page's server
lives, plays a *public* address (``address_problem`` is told so for it only); the canary
listens on 127.0.0.2 and ::1, which stay loopback and must be refused, with
``allow_loopback`` off. The proxy runs in this process (the patch applies to it);
Chromium is a separate process whose only way out is that proxy.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from crawlers.browser import BrowserPool, Budget
from tests.test_crawl_browser import needs_chromium
from tests.test_hardening_net import Canary, _Redirector

pytestmark = [needs_chromium, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


class LoopbackCanary(Canary):
    """Issue 8's canary on ::1 and on 127.0.0.2 (the same port), so that 127.0.0.1 can
    stand in for a public address; 127.0.0.2 and ::1 stay loopback, to be refused."""

    def __init__(self) -> None:
        super().__init__(v4_port=-1)  # ::1 on a free port
        self.port = self.v6
        self._listen(socket.AF_INET, "127.0.0.2", self.port)


def hostile_page(c: int) -> str:
    """Every way out, direct and through the page server's own redirector ``/r?to=``."""
    targets = [f"http://127.0.0.2:{c}/", f"http://[::1]:{c}/", f"http://localhost:{c}/",
               f"http://rebind.test:{c}/", f"https://127.0.0.2:{c}/"]
    js = []
    for t in targets:
        hop = "/r?to=" + quote(t, safe="")
        for u in (t, hop):
            js.append(f"fetch('{u}', {{mode: 'no-cors'}}).catch(() => 0);")
            js.append(f"try {{ var x = new XMLHttpRequest(); x.open('GET', '{u}'); x.send(); }} catch (e) {{}}")
            js.append(f"try {{ new EventSource('{u}'); }} catch (e) {{}}")
            js.append(f"try {{ navigator.sendBeacon('{u}', 'x'); }} catch (e) {{}}")
            js.append(f"var i = new Image(); i.src = '{u}img';")
            js.append(f"var f = document.createElement('iframe'); f.src = '{u}'; document.body.appendChild(f);")
    for ws in (f"ws://127.0.0.2:{c}/", f"ws://[::1]:{c}/", f"ws://rebind.test:{c}/", f"wss://127.0.0.2:{c}/"):
        js.append(f"try {{ new WebSocket('{ws}'); }} catch (e) {{}}")
    js.append(f"try {{ var pc = new RTCPeerConnection({{iceServers: [{{urls: 'turn:127.0.0.2:{c}?transport=tcp', "
              f"username: 'u', credential: 'p'}}, {{urls: 'stun:127.0.0.2:{c}'}}]}}); pc.createDataChannel('d');"
              " pc.createOffer().then(o => pc.setLocalDescription(o)); } catch (e) {}")
    hints = "".join(f'<link rel="preconnect" href="http://127.0.0.2:{c}"><link rel="dns-prefetch" '
                    f'href="//rebind.test:{c}"><img src="http://127.0.0.2:{c}/tag">' for _ in range(1))
    return (f"<!doctype html><html><head>{hints}</head><body><h1>hostile</h1>"
            f'<script src="/ok.js"></script><script>{"".join(js)}</script></body></html>')


class _Hostile(_Redirector):
    """The hostile page and its own script; ``/r?to=URL`` redirects (issue 8's redirector)."""

    canary_port: ClassVar[int] = 0
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.seen.append(self.path)
        if parse_qs(urlsplit(self.path).query).get("to"):
            super().do_GET()
            return
        body = (b"window.ok = 1;" if self.path == "/ok.js"
                else hostile_page(self.canary_port).encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript" if self.path == "/ok.js" else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def canary() -> Iterator[LoopbackCanary]:
    c = LoopbackCanary()
    yield c
    c.close()


@pytest.fixture
def hostile(canary: LoopbackCanary) -> Iterator[str]:
    _Hostile.canary_port = canary.port
    _Hostile.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/film"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def stand_in_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 plays a public address; rebind.test answers it to the check and the
    canary (127.0.0.2) to any later, unchecked lookup."""
    from foundation import netsafe

    real_resolve, real_gai, real_problem = netsafe.resolve, socket.getaddrinfo, netsafe.address_problem
    monkeypatch.setattr(netsafe, "resolve", lambda host, port=None: (
        ["127.0.0.1"] if host == "rebind.test" else real_resolve(host, port)))
    monkeypatch.setattr(netsafe, "address_problem", lambda a, **kw: (
        None if str(a) == "127.0.0.1" else real_problem(a, **kw)))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real_gai(
        "127.0.0.2" if host == "rebind.test" else host, *a, **kw))


def test_hostile_page_in_the_browser_never_reaches_the_canary(canary: LoopbackCanary, hostile: str,
                                                               stand_in_public: None) -> None:
    budget = Budget(timeout_s=10, idle_s=2)
    before = canary.hits
    with BrowserPool(allow_loopback=False, budget=budget, screenshot=False) as pool:
        rendered = pool.render(hostile)
    time.sleep(0.5)
    hits = canary.hits - before
    # The page and its own script did load through the proxy: the policy let them through.
    assert "/film" in _Hostile.seen and "/ok.js" in _Hostile.seen, _Hostile.seen
    assert any(p.startswith("/r?to=") for p in _Hostile.seen)  # the redirects were asked for
    refused = {r["url"] for r in rendered.refused}
    assert any("127.0.0.2" in u for u in refused) and any("::1" in u for u in refused), refused
    assert hits == 0

    # Control: the rebinding name's unchecked second answer does lead to the canary.
    socket.create_connection(("rebind.test", canary.port), timeout=2).close()
    time.sleep(0.3)
    assert canary.hits == before + 1


def test_control_with_loopback_allowed_the_same_page_does_reach_the_canary(
        canary: LoopbackCanary, hostile: str) -> None:
    """Without the stand-in and with ``allow_loopback`` on (the demo's setting), the same
    page reaches the canary: the attempts above are real ones."""
    before = canary.hits
    with BrowserPool(allow_loopback=True, budget=Budget(timeout_s=8, idle_s=2), screenshot=False) as pool:
        pool.render(hostile)
    time.sleep(0.5)
    assert canary.hits > before
