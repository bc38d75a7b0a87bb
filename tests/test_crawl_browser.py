"""The browser resolver (issue 15): scripted players of the demo web, with and without Chromium.

Real parts: the demo web on loopback, the crawler child process, Debian's Chromium driven
by Playwright (as an unprivileged user when the tests run as root, sandbox on). Tests
that need the browser skip with a reason when Chromium or Playwright is missing; the
``needs_browser`` tests turn the browser off (``VIGIE_CHROMIUM=none``) and run anywhere.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select

from crawlers.browser import BrowserPool, Budget, find_chromium, media_kind
from crawlers.evidence import load_blob
from crawlers.run import crawl_site
from crawlers.sites import add_site
from db.models import Candidate, CandidateStatus, CrawlRun, Title
from demoweb.players import PLAYERS
from demoweb.world import DemoWeb
from foundation.errors import InvalidInput

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]
# The crawl's storage is tested on both databases in test_crawl.py; SQLite is enough here.
on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _chromium_problem() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the browser tests need the playwright package"
    path = find_chromium()
    if not path or not os.access(path, os.X_OK):
        return f"the browser tests need Chromium ({path or '/usr/bin/chromium'}; apt-get install chromium)"
    return None


needs_chromium = pytest.mark.skipif(_chromium_problem() is not None, reason=_chromium_problem() or "")


@pytest.fixture(scope="module")
def web() -> Iterator[DemoWeb]:
    # No media files needed: the browser records media URLs, it does not download them.
    w = DemoWeb({})
    yield w
    w.stop()


@pytest.fixture
def player_site(Session, web: DemoWeb):  # type: ignore[no-untyped-def]
    def make(render: str = "auto", **extra: object) -> str:
        site = web.player_site(render)
        with Session.begin() as s:
            if s.scalar(select(Title).where(Title.title == "Big Buck Bunny")) is None:
                s.add(Title(title="Big Buck Bunny", year=2008))
            add_site(s, site["name"], site["start_urls"], kind=site["kind"],
                     settings={**site["settings"], **extra}, replace=True)
        return site["name"]
    return make


def result_day():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


def _candidates(Session) -> dict[str, Candidate]:  # type: ignore[no-untyped-def]
    with Session() as s:
        return {c.page_url: c for c in s.scalars(select(Candidate))}


@on_sqlite
def test_render_setting_is_validated(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        with pytest.raises(InvalidInput, match="render"):
            add_site(s, "x", ["http://example.org/"], settings={"render": "sometimes"})
        with pytest.raises(InvalidInput, match="render_max_pages"):
            add_site(s, "y", ["http://example.org/"], settings={"render_max_pages": 0})
        with pytest.raises(InvalidInput, match="render_timeout_s"):
            add_site(s, "z", ["http://example.org/"], settings={"render_timeout_s": "10"})
        add_site(s, "ok", ["http://example.org/"], settings={"render": "always", "render_max_bytes": 10**7})


def test_media_kind_by_url_and_content_type() -> None:
    assert media_kind("http://h/x/index.m3u8?t=1") == "manifest"
    assert media_kind("http://h/api/stream", "application/vnd.apple.mpegurl") == "manifest"
    assert media_kind("http://h/manifest", "application/dash+xml; charset=utf-8") == "manifest"
    assert media_kind("http://h/seg-1.ts") == "segment"
    assert media_kind("http://h/s", "video/mp2t") == "segment"
    assert media_kind("http://h/v.webm") == "file"
    assert media_kind("http://h/get?id=3", "video/mp4") == "file"
    assert media_kind("http://h/get?id=3", "", "media") == "file"
    assert media_kind("http://h/app.js", "text/javascript", "script") is None


@on_sqlite
def test_without_a_browser_scripted_players_are_stored_as_needs_browser(
        Session, db_url: str, web: DemoWeb, player_site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VIGIE_CHROMIUM", "none")
    name = player_site("auto")
    result = crawl_site(db_url, name, allow_loopback=True, timeout_s=120)
    assert result.status == "ok", result.error_log
    cands = _candidates(Session)
    for p in web.planted_players():
        c = cands[p["page_url"]]
        assert c.status == CandidateStatus.NEEDS_BROWSER, (p["slug"], c.status, c.error)
        assert c.media_urls == []
        assert "needs the browser resolver" in (c.error or "") and "VIGIE_CHROMIUM=none" in c.error
        assert c.evidence["needs_browser"]
    # Counted where staff look: `vigie status` and the daily report.
    from reports.daily import collect
    from foundation.config import Config
    from stages.ops import queue_sizes

    with Session() as s:
        assert queue_sizes(s)["candidates_needs_browser"] == len(PLAYERS)
        data = collect(s, Config(), result_day())
        assert data.headline["pages needing a browser"] == len(PLAYERS)
    # render = "never": no browser is asked for; the earlier verdict stands until one runs.
    name = player_site("never")
    crawl_site(db_url, name, allow_loopback=True, timeout_s=120)
    assert all(c.status == CandidateStatus.NEEDS_BROWSER for c in _candidates(Session).values())


@on_sqlite
@needs_chromium
def test_browser_finds_every_scripted_player(Session, db_url: str, web: DemoWeb, player_site,
                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = player_site("auto")
    events: list[dict] = []
    result = crawl_site(db_url, name, allow_loopback=True, evidence_dir=str(tmp_path / "ev"),
                        progress=events.append, timeout_s=300)
    assert result.status == "ok", result.error_log
    # Two robots.txt, the listing, the film pages, the nested player's two frames: a page
    # the browser rendered again is not counted twice.
    assert result.pages == 2 + 1 + len(PLAYERS) + 2
    cands = _candidates(Session)
    missed = []
    for p in web.planted_players():
        c = cands[p["page_url"]]
        if c.media_urls[:1] != p["media_urls"] or c.status != CandidateStatus.PENDING:
            missed.append((p["kind"], c.media_urls, c.status, c.error))
            continue
        browser = c.evidence["browser"]
        assert browser["media"][0]["url"] == p["media_urls"][0]
        assert browser["requests"] and browser["requests"][0]["type"] == "document"
        shot = browser["screenshot"]
        assert Path(shot["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot["size"] > 1000
        har = json.loads(gzip.decompress(load_blob(browser["har"])))
        har_urls = [e["request"]["url"] for e in har["log"]["entries"]]
        assert p["page_url"] in har_urls, har_urls
    assert not missed, missed
    assert sum(1 for e in events if e["event"] == "rendered") == len(PLAYERS)
    with Session() as s:
        run = s.scalars(select(CrawlRun)).one()
        assert run.errors == 0


@on_sqlite
@needs_chromium
def test_a_needs_browser_candidate_goes_to_matching_once_a_browser_finds_its_media(
        Session, db_url: str, web: DemoWeb, player_site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    name = player_site("auto", film_link_pattern=r"/lecteur/bbb-base64")
    monkeypatch.setenv("VIGIE_CHROMIUM", "none")
    crawl_site(db_url, name, allow_loopback=True, timeout_s=120)
    (c,) = _candidates(Session).values()
    assert c.status == CandidateStatus.NEEDS_BROWSER
    monkeypatch.delenv("VIGIE_CHROMIUM")
    crawl_site(db_url, name, allow_loopback=True, timeout_s=120)
    (c,) = _candidates(Session).values()
    assert c.status == CandidateStatus.PENDING and c.media_urls == [f"{web.host.base}/v/bbb1.mp4"], c.error


@needs_chromium
def test_page_over_budget_says_why_and_keeps_going(web: DemoWeb) -> None:
    pages = [f"{web.links.base}/lecteur/{slug}" for slug in ("bbb-api", "bbb-nested", "bbb-countdown")]
    with BrowserPool(allow_loopback=True, max_pages=2) as pool:
        requests = pool.render(pages[0], budget=Budget(timeout_s=10, max_requests=1))
        assert requests.over_budget == "more than 1 requests" and requests.media == []
        size = pool.render(pages[1], budget=Budget(timeout_s=10, max_bytes=200))
        assert size.over_budget and "bytes" in size.over_budget
        slow = pool.render(pages[2], budget=Budget(timeout_s=1.0))
        assert slow.over_budget == "no media within the 1 s time budget"
        # The same pool renders the next page normally.
        ok = pool.render(pages[0], budget=Budget(timeout_s=10))
        assert ok.media_urls == [f"{web.host.base}/v/bbb2.mp4"] and ok.over_budget is None


@needs_chromium
def test_at_most_max_pages_are_open_at_once(web: DemoWeb) -> None:
    pages = [p["page_url"] for p in web.planted_players()][:5]
    with BrowserPool(allow_loopback=True, max_pages=2, screenshot=False) as pool:
        futures = [pool.submit(u, budget=Budget(timeout_s=10)) for u in pages]
        results = [f.result() for f in futures]
        assert pool.peak_open == 2 and pool.pages == len(pages)
        assert "on" in pool.sandbox  # never --no-sandbox
    assert all(r.media for r in results), [(r.url, r.over_budget, r.error) for r in results]


@needs_chromium
def test_chromium_sandbox_is_on_and_popups_are_closed(web: DemoWeb) -> None:
    with BrowserPool(allow_loopback=True, screenshot=False) as pool:
        report = pool.sandbox_report()
        assert "adequately sandboxed" in report, report
        # The click-to-play overlay opens an advertising popup on its first click.
        overlay = pool.render(f"{web.links.base}/lecteur/bbb-overlay", budget=Budget(timeout_s=10))
        assert overlay.popups_closed >= 1 and overlay.media_urls == [f"{web.host.base}/v/bbb4.mp4"]


class _Abusive(http.server.BaseHTTPRequestHandler):
    """Pages that never yield: a busy loop, an endless stream of requests, a dialog storm."""

    PAGES: ClassVar[dict[str, bytes]] = {
        "/busy": b"<h1>busy</h1><script>setTimeout(() => { for (;;) {} }, 50)</script>",
        "/storm": b"<h1>storm</h1><script>let i = 0; setInterval(() => { for (let k = 0; k < 20; k++) "
                  b"fetch('/x' + (i++)).catch(() => 0) }, 10)</script>",
        "/dialogs": b"<h1>dialogs</h1><script>for (let i = 0; i < 50; i++) { alert(i); confirm(i) }"
                    b"</script><video src='/v/after-dialogs.mp4' autoplay muted></video>",
        "/hog": b"<h1>hog</h1><script>const a = []; for (;;) a.push(new Array(1e6).fill(Math.random()))"
                b"</script>",
    }

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = self.PAGES.get(self.path, b"nothing")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@needs_chromium
def test_abusive_pages_end_at_their_budget_and_the_pool_goes_on(web: DemoWeb) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Abusive)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    try:
        with BrowserPool(allow_loopback=True, screenshot=True) as pool:
            t0 = time.monotonic()
            busy = pool.render(f"{base}/busy", budget=Budget(timeout_s=3))
            assert busy.over_budget == "no media within the 3 s time budget"
            storm = pool.render(f"{base}/storm", budget=Budget(timeout_s=10, max_requests=50))
            assert storm.over_budget == "more than 50 requests"
            dialogs = pool.render(f"{base}/dialogs", budget=Budget(timeout_s=10))
            assert dialogs.media_urls == [f"{base}/v/after-dialogs.mp4"], dialogs.summary()
            # A guard against a page that outlives its budget by minutes, not a speed test:
            # budgets plus evidence timeouts (a busy page's screenshot waits for its loop),
            # 46 s alone, and once 184 s in a fresh-clone CI run with both cores loaded.
            assert time.monotonic() - t0 < 300
            ok = pool.render(f"{web.links.base}/lecteur/bbb-packed", budget=Budget(timeout_s=10))
            assert ok.media_urls == [f"{web.host.base}/v/bbb3.mp4"]
    finally:
        srv.shutdown()
        srv.server_close()


@on_sqlite
@needs_chromium
def test_a_crawl_records_a_page_over_budget_and_goes_on(Session, db_url: str, web: DemoWeb, player_site) -> None:  # type: ignore[no-untyped-def]
    name = player_site("auto", film_link_pattern=r"/lecteur/bbb-(api|packed)", render_max_requests=1)
    result = crawl_site(db_url, name, allow_loopback=True, timeout_s=120)
    assert result.status == "ok", result.error_log
    cands = _candidates(Session)
    assert len(cands) == 2
    for c in cands.values():
        assert "browser: over budget: more than 1 requests" in c.evidence["problems"], c.evidence["problems"]
        assert c.evidence["browser"]["over_budget"] == "more than 1 requests"


@needs_chromium
def test_a_memory_bomb_crashes_only_its_own_page(web: DemoWeb) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Abusive)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with BrowserPool(allow_loopback=True, screenshot=False) as pool:
            bomb = pool.render(f"http://127.0.0.1:{srv.server_port}/hog", budget=Budget(timeout_s=20))
            assert bomb.media == [] and (bomb.error or bomb.over_budget), bomb.summary()
            ok = pool.render(f"{web.links.base}/lecteur/bbb-base64", budget=Budget(timeout_s=10))
            assert ok.media_urls == [f"{web.host.base}/v/bbb1.mp4"]
    finally:
        srv.shutdown()
        srv.server_close()
