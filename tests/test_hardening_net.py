"""SSRF matrix against a canary listener: URLs from hostile pages never reach inside.

A canary TCP listener on loopback (IPv4 and IPv6) counts every connection. Every way of
writing an internal address (loopback names, hex/decimal/octal/short IPv4, IPv6,
IPv4-mapped IPv6, 0.0.0.0 and ``::`` which Linux connects to loopback, metadata,
RFC 1918, CGNAT) goes through each fetcher that takes a URL from a pirate page: the
address check itself, the verification fetcher (notices.http), the crawler middleware,
a real crawl, and the media path (``stages.identify.identify_source``, decoding in the
sandbox, behind the check ``identify``/``match`` do). Redirect hops come from a redirector on
loopback that the fetchers are allowed to reach (``allow_loopback``), pointing at forms
that stay refused even then. DNS rebinding (a check that sees a public address, a second
lookup that says loopback) against the crawler, the fetchers and FFmpeg's media reads,
and HLS playlists whose segments point inside. Criterion: 0 hits on the canary.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from scrapy import Request

from crawlers.middleware import NetSafeMiddleware, UnsafeRequest
from crawlers.run import crawl_site
from crawlers.sites import add_site
from db.session import make_engine, upgrade
from notices.http import fetch
from tests.figures import Figures
from foundation.errors import MediaError, UnsafeAddress
from fingerprint.index import HashIndex
from stages.identify import identify_source
from foundation.netsafe import check_url


class Canary:
    """Listeners on 127.0.0.1 and ::1 that count connections and answer nothing useful."""

    def __init__(self, v4_port: int = 0, v6_port: int = 0) -> None:
        self.hits = 0
        self._lock = threading.Lock()
        self.socks: list[socket.socket] = []
        self.v4 = self._listen(socket.AF_INET, "127.0.0.1", v4_port) if v4_port >= 0 else -1
        self.v6 = self._listen(socket.AF_INET6, "::1", v6_port)

    def _listen(self, family: int, host: str, port: int = 0) -> int:
        s = socket.socket(family)
        s.bind((host, port))
        s.listen(64)
        s.settimeout(0.2)
        self.socks.append(s)
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        return int(s.getsockname()[1])

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.hits += 1
            conn.close()

    def close(self) -> None:
        for s in self.socks:
            s.close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


# The media path as identify and the match stage take it (the sandbox worker, forked with
# the index); an empty catalogue: what is tested is what the decoder reaches.
_EMPTY: tuple[HashIndex, dict[int, int]] = (HashIndex.build([]), {})


def _media(url: str) -> None:
    identify_source(url, *_EMPTY)


def internal_urls(c: Canary) -> list[str]:
    """Every form of an internal address; the first ones lead to the canary if fetched."""
    p, p6 = c.v4, c.v6
    return [
        f"http://127.0.0.1:{p}/", f"http://localhost:{p}/", f"http://127.1:{p}/",
        f"http://0x7f000001:{p}/", f"http://2130706433:{p}/", f"http://017700000001:{p}/",
        f"http://0177.0.0.1:{p}/", f"http://0x7f.0.0.1:{p}/", f"http://127.0.0.1.:{p}/",
        f"http://0.0.0.0:{p}/", f"http://0:{p}/", f"https://127.0.0.1:{p}/",
        f"http://user@127.0.0.1:{p}/", f"http://[::1]:{p6}/", f"http://[::]:{p6}/",
        f"http://[::ffff:127.0.0.1]:{p}/", f"http://[0:0:0:0:0:ffff:7f00:1]:{p}/",
        "http://169.254.169.254/latest/meta-data/", "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/",
        "http://[::ffff:10.0.0.1]/", "http://[fe80::1]/", "http://0x0a000001/",
    ]


def refused_even_with_loopback(c: Canary) -> list[str]:
    """Internal forms that are not loopback: refused whatever ``allow_loopback`` says.
    0.0.0.0 and ``::`` connect to the canary on Linux if anything lets them through."""
    p, p6 = c.v4, c.v6
    return [f"http://0.0.0.0:{p}/", f"http://0:{p}/", f"http://[::]:{p6}/",
            "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/",
            "http://100.64.0.1/", "http://[::ffff:172.16.0.1]/"]


class _Redirector(http.server.BaseHTTPRequestHandler):
    """GET /r?to=URL answers 302 to URL; anything else a tiny page."""

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        to = parse_qs(urlsplit(self.path).query).get("to")
        if to:
            self.send_response(302)
            self.send_header("Location", to[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><body>nothing</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def redirector() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_ssrf_matrix_direct_and_redirected(canary: Canary, redirector: str, figures: Figures) -> None:
    before = canary.hits
    cells = 0
    passed: list[str] = []
    mw = NetSafeMiddleware(allow_loopback=False)
    for url in internal_urls(canary):
        cells += 3
        try:
            check_url(url)
            passed.append(f"check_url {url}")
        except UnsafeAddress:
            pass
        if fetch(url, timeout=2, allow_loopback=False).error is None:
            passed.append(f"fetch {url}")
        try:
            mw.process_request(Request(url))
            passed.append(f"middleware {url}")
        except UnsafeRequest:
            pass
    mw_loop = NetSafeMiddleware(allow_loopback=True)
    for url in refused_even_with_loopback(canary):
        hop = f"{redirector}/r?to={quote(url, safe='')}"
        cells += 4
        res = fetch(hop, timeout=2, allow_loopback=True)
        if not (res.error or "").startswith("refused"):
            passed.append(f"fetch via redirect {url}")
        try:
            # The redirect hop is a new request through the same middleware (Scrapy's
            # RedirectMiddleware re-schedules it); the crawl test below does it for real.
            mw_loop.process_request(Request(url))
            passed.append(f"middleware redirect hop {url}")
        except UnsafeRequest:
            pass
        try:
            check_url(url, allow_loopback=True)
            passed.append(f"check_url(allow_loopback) {url}")
        except UnsafeAddress:
            pass
        # Media: the caller checked the redirector URL; the hop is checked here.
        try:
            _media(hop)
            passed.append(f"media via redirect {url}")
        except (UnsafeAddress, MediaError):
            pass
    hits = canary.hits - before
    figures.record("SSRF: canary hits (direct and redirected, every fetcher)", hits, "0", hits == 0)
    figures.record("SSRF: matrix cells refused", f"{cells - len(passed)}/{cells}",
                   f"{cells}/{cells}", not passed)
    assert not passed, passed
    assert hits == 0


def test_ssrf_real_crawl_with_redirects_and_direct_urls(canary: Canary, redirector: str,
                                                        tmp_path: Path, figures: Figures) -> None:
    db_url = f"sqlite:///{tmp_path / 'ssrf.db'}"
    eng = make_engine(db_url)
    upgrade(eng)
    from db.session import sessionmaker_for

    Session = sessionmaker_for(eng)
    conf = {"download_delay": 0.0, "retries": 0, "timeout_s": 2.0, "obey_robots": False}
    hops = [f"{redirector}/r?to={quote(u, safe='')}" for u in refused_even_with_loopback(canary)]
    with Session.begin() as s:
        add_site(s, "hops", [f"{redirector}/", *hops], settings=conf)
        add_site(s, "direct", internal_urls(canary), settings=conf)
    before = canary.hits
    via_redirects = crawl_site(db_url, "hops", allow_loopback=True, timeout_s=120)
    direct = crawl_site(db_url, "direct", allow_loopback=False, timeout_s=120)
    eng.dispose()
    hits = canary.hits - before
    refused = [e for e in via_redirects.error_log + direct.error_log if "refused" in e["error"]
               or "loopback" in e["error"] or "address" in e["error"]]
    figures.record("SSRF: canary hits during real crawls", hits, "0", hits == 0)
    assert via_redirects.pages >= 1, via_redirects  # the redirector's own page was fetched
    assert direct.pages == 0, direct
    assert len(refused) >= len(hops), (via_redirects.error_log, direct.error_log)
    assert hits == 0


# A crawler child whose DNS "rebinds": the middleware's check sees a public address, the
# connection-time lookup answers 127.0.0.1 (the canary). Patched in that process only.
_REBIND = """
import json, socket, sys
import foundation.netsafe as netsafe
import crawlers.child as child
real_resolve, real_byname = netsafe.resolve, socket.gethostbyname
netsafe.resolve = lambda host, port=None: (["93.184.216.34"] if host == "rebind.test"
                                           else real_resolve(host, port))
socket.gethostbyname = lambda host: "127.0.0.1" if host == "rebind.test" else real_byname(host)
job = json.loads(sys.argv[1])
if job.pop("unsafe_resolver", False):
    settings = child.scrapy_settings
    child.scrapy_settings = lambda j: {**settings(j), "DNS_RESOLVER": "scrapy.resolver.CachingThreadedResolver"}
child.run(job)
"""


def _rebind_crawl(db_url: str, url: str, unsafe_resolver: bool) -> list[dict[str, str]]:
    import json
    import subprocess
    import sys

    from db.models import CrawlRun, Site

    eng = make_engine(db_url)
    from db.session import sessionmaker_for

    with sessionmaker_for(eng).begin() as s:
        site = s.query(Site).filter_by(name="rebind").one()
        run = CrawlRun(site_id=site.id, status="running", error_log=[])
        s.add(run)
        s.flush()
        job = {"db_url": db_url, "run_id": run.id, "allow_loopback": False, "log_level": "ERROR",
               "site": {"id": site.id, "name": site.name, "kind": site.kind.value,
                        "start_urls": [url], "settings": dict(site.settings)},
               "unsafe_resolver": unsafe_resolver}
        run_id = run.id
    proc = subprocess.run([sys.executable, "-c", _REBIND, json.dumps(job)], capture_output=True,
                          text=True, timeout=120, cwd=str(Path(__file__).resolve().parents[1]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    with sessionmaker_for(eng)() as s:
        log = list(s.get(CrawlRun, run_id).error_log)
    eng.dispose()
    return log


def test_ssrf_dns_rebinding_is_refused_at_connection_time(canary: Canary, tmp_path: Path,
                                                          figures: Figures) -> None:
    db_url = f"sqlite:///{tmp_path / 'rebind.db'}"
    eng = make_engine(db_url)
    upgrade(eng)
    from db.session import sessionmaker_for

    url = f"http://rebind.test:{canary.v4}/"
    with sessionmaker_for(eng).begin() as s:
        add_site(s, "rebind", [url], settings={"download_delay": 0.0, "retries": 0, "timeout_s": 2.0,
                                               "obey_robots": False})
    eng.dispose()
    before = canary.hits
    log = _rebind_crawl(db_url, url, unsafe_resolver=False)
    hits = canary.hits - before
    # Control: Scrapy's own resolver connects to whatever the second lookup says.
    control = _rebind_crawl(db_url, url, unsafe_resolver=True)
    control_hits = canary.hits - before - hits
    figures.record("SSRF: canary hits with DNS rebinding during a crawl", hits,
                   f"0 (Scrapy's own resolver: {control_hits})", hits == 0)
    assert control_hits >= 1, control  # the rebinding setup does reach the canary
    assert hits == 0
    # Twisted reports the refused lookup as one without results (the reason is logged).
    assert log and all("DNS lookup failed" in e["error"] and "rebind.test" in e["error"] for e in log), log


def test_ssrf_dns_rebinding_in_fetchers_connects_to_the_checked_address(
        canary: Canary, monkeypatch: pytest.MonkeyPatch, figures: Figures) -> None:
    """The check sees a public address; a second lookup would say 127.0.0.1 (the canary).
    The verification fetcher and the media reader connect to the checked one."""
    import foundation.netsafe as netsafe
    from foundation.errors import FetchError
    from foundation.netsafe import MediaOpener

    real_resolve, real_gai = netsafe.resolve, socket.getaddrinfo
    # 192.0.2.1 stands for the public answer (TEST-NET: nothing answers there); the check
    # is told it is public by treating it so for this test only.
    monkeypatch.setattr(netsafe, "resolve", lambda host, port=None: (
        ["192.0.2.1"] if host == "rebind.test" else real_resolve(host, port)))
    real_problem = netsafe.address_problem
    monkeypatch.setattr(netsafe, "address_problem", lambda a, **kw: (
        None if str(a) == "192.0.2.1" else real_problem(a, **kw)))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real_gai(
        "127.0.0.1" if host == "rebind.test" else host, *a, **kw))
    url = f"http://rebind.test:{canary.v4}/"
    before = canary.hits
    res = fetch(url, timeout=1, allow_loopback=False)
    assert res.status is None and res.error, res  # 192.0.2.1 does not answer
    with pytest.raises(FetchError, match="cannot fetch"):
        MediaOpener(allow_loopback=False, timeout=1)(url, 0, {})
    hits = canary.hits - before
    # Control: an unpinned connection does follow the second answer to the canary.
    socket.create_connection(("rebind.test", canary.v4), timeout=2).close()
    time.sleep(0.3)
    control = canary.hits - before - hits
    figures.record("SSRF: canary hits with DNS rebinding in verify/media fetchers", hits,
                   f"0 (unpinned: {control})", hits == 0)
    assert control == 1
    assert hits == 0


# --- Media: FFmpeg reads through netsafe.MediaOpener -------------------------------------
#
# Stand-ins: 127.0.0.1 plays a *public* address (the media server, a RangeServer, lives
# there; ``address_problem`` is told so for this address only), while ::1 stays what it
# is, loopback, refused. A rebinding trap listens on [::1] at the media server's port, so
# a connection that followed a second DNS answer (::1) instead of the checked one
# (127.0.0.1) lands in the trap. Patched in this process, and so in the sandbox children
# forked from it.

def _stand_in_public(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]],
                     lookups: dict[str, str]) -> None:
    """``netsafe.resolve`` (the checks) gives ``answers[host]`` in turn (the last one
    sticks); ``socket.getaddrinfo`` (any unchecked lookup, such as FFmpeg's or an
    unpinned connection's) gives ``lookups[host]``."""
    import foundation.netsafe as netsafe

    real_resolve, real_gai, real_problem = netsafe.resolve, socket.getaddrinfo, netsafe.address_problem

    def resolve(host: str, port: int | None = None) -> list[str]:
        if host in answers:
            seq = answers[host]
            return seq.pop(0) if len(seq) > 1 else seq[0]
        return real_resolve(host, port)

    monkeypatch.setattr(netsafe, "resolve", resolve)
    monkeypatch.setattr(netsafe, "address_problem", lambda a, **kw: (
        None if str(a) == "127.0.0.1" else real_problem(a, **kw)))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real_gai(
        lookups.get(host, host), *a, **kw))


def _identify(tmp_path: Path, url: str, index: object) -> dict[str, object]:
    from db.session import sessionmaker_for
    from stages.identify import identify

    eng = make_engine(f"sqlite:///{tmp_path / 'identify.db'}")
    upgrade(eng)
    try:
        with sessionmaker_for(eng)() as s:
            return identify(s, url, index=index, allow_loopback=False)  # type: ignore[arg-type]
    finally:
        eng.dispose()


@pytest.fixture(scope="module")
def copy_index(media: dict[str, str]) -> tuple[object, dict[int, int]]:
    from fingerprint.extract import fingerprint_reference, index_entries
    from fingerprint.index import HashIndex

    return HashIndex.build(index_entries(1, fingerprint_reference(media["film_a"]))), {1: 1}


def test_media_dns_rebinding_connects_to_the_checked_address(
        media: dict[str, str], copy_index: tuple[object, dict[int, int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, figures: Figures) -> None:
    """Every check of rebind.test says 127.0.0.1 (public here); any other lookup says ::1,
    where the trap listens. identify reads the video from the checked address."""
    import shutil

    from demoweb.rangeserver import RangeServer

    shutil.copy(media["copy_a"], tmp_path / "c.mp4")
    with RangeServer(str(tmp_path)) as srv:
        trap = Canary(v4_port=-1, v6_port=srv.port)
        try:
            _stand_in_public(monkeypatch, {"rebind.test": [["127.0.0.1"]]}, {"rebind.test": "::1"})
            out = _identify(tmp_path, f"http://rebind.test:{srv.port}/c.mp4", copy_index)
            hits = trap.hits
            # Control: a connection that looks the name up again lands in the trap.
            socket.create_connection(("rebind.test", srv.port), timeout=2).close()
            time.sleep(0.3)
            control = trap.hits - hits
        finally:
            trap.close()
        served = srv.bytes_sent
    matches = out["matches"]
    figures.record("SSRF: trap hits with DNS rebinding while FFmpeg reads media", hits,
                   f"0 (a second lookup: {control})", hits == 0)
    assert control == 1
    assert hits == 0
    assert served > 0
    assert matches and matches[0]["decision"] == "confirmed", out  # type: ignore[index]


def test_media_dns_rebinding_between_check_and_read_is_refused(
        media: dict[str, str], copy_index: tuple[object, dict[int, int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """identify's check of rebind.test sees 127.0.0.1 (public here); every later lookup,
    the reader's own check included, says ::1. The reader refuses ::1: a clear error, no
    byte fetched, nothing in the trap."""
    import shutil

    from demoweb.rangeserver import RangeServer

    shutil.copy(media["copy_a"], tmp_path / "c.mp4")
    with RangeServer(str(tmp_path)) as srv:
        trap = Canary(v4_port=-1, v6_port=srv.port)
        try:
            _stand_in_public(monkeypatch, {"rebind.test": [["127.0.0.1"], ["::1"]]},
                             {"rebind.test": "::1"})
            with pytest.raises(MediaError, match=r"refused .*::1, a loopback address"):
                _identify(tmp_path, f"http://rebind.test:{srv.port}/c.mp4", copy_index)
            time.sleep(0.2)
            hits = trap.hits
        finally:
            trap.close()
        assert srv.bytes_sent == 0
    assert hits == 0


def _playlist(segment: str) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{segment}\n#EXT-X-ENDLIST\n"


def test_hls_segments_are_checked_hop_by_hop(canary: Canary, redirector: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             figures: Figures) -> None:
    """A playlist on a public host (pirate.test, 127.0.0.1 standing in) whose segment
    points inside: directly, through a redirect, or through FFmpeg's httpproxy protocol
    (which a forward-proxy design would have had to allow). Each is refused; control:
    FFmpeg's own HTTP client, as it was configured before (plus httpproxy), reaches the
    canary with the same playlists."""
    import av

    from foundation.netsafe import media_loopback
    from demoweb.rangeserver import RangeServer

    p, p6 = canary.v4, canary.v6
    segments = [
        f"http://[::1]:{p6}/a.ts", f"http://0.0.0.0:{p}/b.ts", f"http://[::]:{p6}/c.ts",
        f"http://[::ffff:127.0.0.1]:{p}/d.ts", f"httpproxy://127.0.0.1:{p}/e.ts",
        f"{redirector}/r?to={quote(f'http://[::1]:{p6}/f.ts', safe='')}",
    ]
    for i, seg in enumerate(segments):
        (tmp_path / f"p{i}.m3u8").write_text(_playlist(seg))
    errors: list[str] = []
    with RangeServer(str(tmp_path)) as srv:
        _stand_in_public(monkeypatch, {"pirate.test": [["127.0.0.1"]]}, {})
        before = canary.hits
        with media_loopback(False):
            for i in range(len(segments)):
                with pytest.raises(MediaError) as err:
                    _media(f"http://pirate.test:{srv.port}/p{i}.m3u8")
                errors.append(str(err.value))
        time.sleep(0.3)
        hits = canary.hits - before
        # Control: FFmpeg's own client (the playlist URL by IP: FFmpeg's lookups are its own).
        for i in range(len(segments)):
            try:
                av.open(srv.url(f"p{i}.m3u8"), timeout=(3.0, 3.0), options={
                    "protocol_whitelist": "http,https,tcp,tls,crypto,hls,httpproxy",
                    "max_redirects": "0"}).close()
            except (av.error.FFmpegError, OSError):
                pass
        time.sleep(0.3)
        control = canary.hits - before - hits
    figures.record("SSRF: canary hits from HLS segments pointing inside", hits,
                   f"0 (FFmpeg's own HTTP client: {control})", hits == 0)
    assert hits == 0
    assert control >= len(segments) - 1, control  # all but the redirect (max_redirects 0)
    refused = [e for e in errors if "refused" in e]
    assert len(refused) == len(segments), errors


def test_hls_and_aes128_hls_read_through_the_opener(media: dict[str, str], tmp_path: Path) -> None:
    """What FFmpeg did itself still works through the opener: an HLS playlist with relative
    segments, and the same segments encrypted with AES-128 (key fetched, checked too)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from demoweb.media import to_hls
    from fingerprint.extract import fingerprint_query
    from demoweb.rangeserver import RangeServer

    plain = tmp_path / "plain"
    to_hls(media["copy_a"], str(plain), segment_s=4)
    enc = tmp_path / "enc"
    enc.mkdir()
    key, iv = bytes(range(16)), bytes(range(16, 32))
    (enc / "k.bin").write_bytes(key)
    lines = []
    for line in (plain / "index.m3u8").read_text().splitlines():
        if line.endswith(".ts"):
            pad = padding.PKCS7(128).padder()
            data = pad.update((plain / line).read_bytes()) + pad.finalize()
            cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            (enc / line).write_bytes(cipher.update(data) + cipher.finalize())
        if line.startswith("#EXTINF") and not any(x.startswith("#EXT-X-KEY") for x in lines):
            lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="k.bin",IV=0x{iv.hex()}')
        lines.append(line)
    (enc / "index.m3u8").write_text("\n".join(lines) + "\n")
    n_segments = sum(1 for x in lines if x.endswith(".ts"))
    with RangeServer(str(tmp_path)) as srv:
        for name in ("plain", "enc"):
            fp = fingerprint_query(srv.url(f"{name}/index.m3u8"), mode="dense")
            assert len(fp) >= 20 and abs(fp.info.duration_s - 30) < 2, (name, len(fp), fp.info)
        fetched = {r.split("?")[0] for r in srv.requests}
    assert "/enc/k.bin" in fetched
    assert sum(1 for r in fetched if r.startswith("/enc/seg")) == n_segments


@pytest.mark.parametrize("keep_alive", [False, True])
def test_media_reader_is_byte_exact_under_random_seeks(media: dict[str, str], tmp_path: Path,
                                                       keep_alive: bool) -> None:
    """The reader FFmpeg now seeks through returns exactly the file's bytes for any
    sequence of seeks and reads, in both request modes (bounded range requests for
    seeking, open-ended for whole reads), with HTTP/1.0 and keep-alive servers; every
    request after the first goes to the checked address without a new check."""
    import random
    import shutil

    from foundation.netsafe import MediaOpener
    from demoweb.rangeserver import RangeServer

    shutil.copy(media["copy_a"], tmp_path / "v.mp4")
    data = (tmp_path / "v.mp4").read_bytes()
    rng = random.Random(7)
    with RangeServer(str(tmp_path)) as srv:
        if keep_alive:
            handler = srv.httpd.RequestHandlerClass
            handler.protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK cost 40 ms per response on a kept-alive connection.
            handler.disable_nagle_algorithm = True
        for request_size in (4096, None):
            opener = MediaOpener(allow_loopback=True, request_size=request_size)
            f = opener(srv.url("v.mp4"), 0, {})
            assert f.seekable() and f.size == len(data)
            for _ in range(150):
                op = rng.random()
                if op < 0.3:
                    f.seek(rng.randrange(0, len(data) + 10))
                elif op < 0.4:
                    f.seek(rng.randrange(0, 70_000), 1)
                elif op < 0.45:
                    f.seek(-rng.randrange(1, 5000), 2)
                pos, n = f.tell(), rng.choice([1, 100, 4096, 32768, 200_000])
                got = f.read(n)  # a short read (at the end of one range request) is fine
                assert got == data[pos:pos + len(got)] and f.tell() == pos + len(got), (request_size, pos, n)
                assert got or pos >= len(data), (request_size, pos, n)
            f.seek(0)
            whole = b"".join(iter(lambda: f.read(65536), b""))
            assert whole == data
            f.close()
            opener.close()
        requests = len(srv.requests)
    assert requests > 10
