"""The review app in a real browser: Debian's headless Chromium driven by Playwright.

The app runs under uvicorn in a background thread on a free loopback port. The tests log
in, confirm one match and reject another, approve a held notice, open the daily report,
check that an analyst cannot reach admin pages and that a hostile page title is shown as
text; every request the browser makes is recorded to prove that nothing but our own
origin (and data: thumbnails) is ever loaded. Screenshots of the main pages are taken
every run (into a temporary directory); set ``VIGIE_SCREENSHOTS=docs/screenshots`` to
refresh the ones the README shows.

Skipped with a reason when Chromium or Playwright is missing (``.ci/run`` installs
Chromium; never ``playwright install``).
"""

from __future__ import annotations

import os
import tempfile
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import AuditLog, Match, Notice, NoticeStatus, ReviewState
from tests.test_report import DAY, build_world
from tests.test_web import add_allowed
from foundation.config import Config

CHROMIUM = os.environ.get("VIGIE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("VIGIE_SCREENSHOTS") or tempfile.mkdtemp(prefix="vigie-shots-"))

if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = [pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    pw = playwright_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - a broken install is a skip with its reason
        pw.stop()
        pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
    yield b
    b.close()
    pw.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tracker() -> Iterator[list[str]]:
    """A "pirate" server on another origin that records every hit: it must get none."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/gif")
            self.end_headers()
            self.wfile.write(b"GIF89a")

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    hits.insert(0, f"http://127.0.0.1:{srv.server_address[1]}")  # the base, popped by users
    try:
        yield hits
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def served(engine, Session, tmp_path: Path, tracker: list[str]) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    import uvicorn

    from reports.daily import build_report
    from webapp.app import create_app

    config = Config(timezone="Europe/Paris", notifier={"legal_name": "Films du Phare"})
    pirate = tracker.pop(0)
    with Session.begin() as s:
        w = build_world(s)
        add_allowed(s, w)
        # The held notice quotes the pirate page's markup: a pixel, a stylesheet, a frame.
        w["n_held"].body_html += (f'<img src="{pirate}/pixel.gif"><link rel="stylesheet" href="{pirate}/x.css">'
                                  f'<iframe src="{pirate}/frame"></iframe><p style="background:url({pirate}/bg.png)">x</p>')
        w["confirmed"].candidate.page_url = f"{pirate}/watch/1"
        world = {k: getattr(v, "id", v) for k, v in w.items()}
    with Session.begin() as s:
        build_report(s, config, DAY, tmp_path / "reports")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine, config, secret_key="b" * 48), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "world": world, "tracker_hits": tracker}
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def page(browser: Any, served: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.requests = []  # every URL the browser asked for
    pg.on("request", lambda req: pg.requests.append(req.url))
    pg.failed = {}
    pg.on("requestfailed", lambda req: pg.failed.__setitem__(req.url, req.failure))
    pg.dialogs = []  # an alert() would mean a script ran
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page: Any, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/review")
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/review")


def only_our_origin(page: Any, served: dict[str, Any]) -> None:
    base = served["base"]
    # A request the CSP refused never leaves the browser (Playwright still reports it).
    foreign = [u for u in page.requests
               if not (u.startswith(base + "/") or u.startswith("data:")) and page.failed.get(u) != "csp"]
    assert served["tracker_hits"] == [], f"the pirate server was hit: {served['tracker_hits']}"
    assert foreign == [], f"the browser loaded foreign URLs: {foreign} {page.failed}"


def test_review_day_in_the_browser(page: Any, served: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    base, w = served["base"], served["world"]
    page.goto(f"{base}/login")
    shot(page, "login")
    login(page, base, "bob", "analyst password 1")
    assert page.title() == "Review · Vigie"

    # The hostile page title is text on the page, and no script ran.
    hostile = page.locator(f"#match-{w['review_hostile']} .page-title q")
    assert hostile.inner_text() == "<script>alert(1)</script> Bcc: victim@example.org"
    # Thumbnails come from our origin and are really decoded images.
    ref_img = page.locator(f"#match-{w['review_hostile']} img").first
    assert ref_img.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "review")

    card = page.locator(f"#match-{w['review_formula']}")
    card.locator("input[name=note]").fill("same scene, same cut")
    card.locator("button.ok").click()
    page.wait_for_load_state()
    assert f"match #{w['review_formula']} confirmed" in page.locator(".flash").inner_text()

    card = page.locator(f"#match-{w['review_hostile']}")
    card.locator("input[name=reason]").fill("a trailer, not the film")
    card.locator("button.no").click()
    page.wait_for_load_state()
    assert f"match #{w['review_hostile']} rejected" in page.locator(".flash").inner_text()
    assert page.locator("#empty").inner_text() == "Nothing here."

    # A held notice: read it (its HTML preview cannot fetch its tracker), approve it.
    page.click("text=Notices")
    page.click(f"#notice-{w['n_held']} >> text=read")
    assert "<script>alert(1)</script>" in page.locator("#body-text").inner_text()
    page.wait_for_timeout(200)
    shot(page, "notice")
    # The page grew (timeline, machine-readable parts) and its sandboxed preview may still
    # shift it: bring the button into view first, and wait for the navigation it starts.
    approve = page.locator("text=Approve and send")
    approve.scroll_into_view_if_needed()
    with page.expect_navigation():
        approve.click()
    assert f"notice #{w['n_held']} approved" in page.locator(".flash").inner_text()

    # The daily report, from the archive.
    page.click("text=Reports")
    page.click("text=2026-03-10")
    page.wait_for_load_state()
    assert page.title() == "Vigie daily report 2026-03-10"
    assert page.locator(f"#match-{w['confirmed']} img").count() == 2
    assert page.locator(f"#match-{w['confirmed']} img").first.evaluate("img => img.naturalWidth > 0")
    assert "<script>alert(1)</script>" in page.locator("#review").evaluate("h => h.parentElement.innerText")
    shot(page, "report")

    # An analyst cannot reach admin pages.
    for path in ("/users", "/titles", "/hosts"):
        resp = page.goto(f"{base}{path}")
        assert resp.status == 403
        assert "for administrators" in page.locator("#problem").inner_text()

    assert page.dialogs == []
    only_our_origin(page, served)

    with Session() as s:
        assert s.get(Match, w["review_formula"]).review is ReviewState.APPROVED
        rejected = s.get(Match, w["review_hostile"])
        assert rejected.review is ReviewState.REJECTED and rejected.review_reason == "a trailer, not the film"
        assert s.get(Notice, w["n_held"]).status is NoticeStatus.QUEUED
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.actor == "bob").order_by(AuditLog.id))]
    assert actions == ["user.login", "match.approve", "match.reject", "notice.approve"]


def test_admin_pages_and_public_page_in_the_browser(page: Any, served: dict[str, Any]) -> None:
    base, w = served["base"], served["world"]
    login(page, base, "alice", "correct horse battery")
    page.click("text=Titles")
    card = page.locator(f"#title-{w['bunny']}")
    card.locator("input[name=url]").fill("https://svod.example/bunny")
    card.locator("input[name=provider]").fill("SVOD+ <b>bold</b>")
    card.locator("button", has_text="Add offer").click()
    page.wait_for_load_state()
    assert "offer added" in page.locator(".flash").inner_text()
    assert page.locator(f"#title-{w['bunny']} td", has_text="SVOD+ <b>bold</b>").count() == 1
    shot(page, "titles")
    page.click("text=Audit")
    assert page.locator("td", has_text="offer.add").count() == 1
    # Unpublished (new titles are): no public page until the admin publishes it.
    assert page.request.get(f"{base}/public/titles/{w['bunny']}").status == 404
    page.click("text=Titles")
    card = page.locator(f"#title-{w['bunny']}")
    card.locator("input[name=published]").check()
    card.locator("button", has_text="Save publication").click()
    page.wait_for_load_state()
    assert "published" in page.locator(".flash").inner_text()
    page.goto(f"{base}/public/titles/{w['bunny']}")
    assert page.title() == "Where to watch Big Buck Bunny legally"
    assert page.locator(".offer", has_text="https://svod.example/bunny").count() == 1
    shot(page, "public_title")
    # Allowed material, listed with its reason; the admin removes the logo.
    page.goto(f"{base}/allowed")
    assert page.locator(f"#allowed-{w['trailer']}", has_text="trailer").count() == 1
    page.locator(f"#allowed-{w['logo']} button", has_text="Remove").click()
    page.wait_for_load_state()
    assert "removed" in page.locator(".flash").inner_text()
    assert page.locator(f"#allowed-{w['logo']}").count() == 0
    # The session cookie as the browser keeps it: HttpOnly (no script reads it), Lax.
    saved = [c for c in page.context.cookies() if c["name"] == "vigie_session"]
    assert len(saved) == 1 and saved[0]["httpOnly"] and saved[0]["sameSite"] == "Lax", saved
    assert saved[0]["path"] == "/" and saved[0]["expires"] == -1  # gone with the browser
    assert "vigie_session" not in page.evaluate("document.cookie")
    # Logging out ends the session, on the server: a copy of the cookie in another
    # browser context works before, and is sent back to the login page after.
    thief = page.context.browser.new_context()
    try:
        thief.add_cookies(saved)
        other = thief.new_page()
        other.goto(f"{base}/hosts")
        assert other.url == f"{base}/hosts" and other.title() == "Hosts · Vigie"
        page.goto(f"{base}/review")
        page.click("#logout")
        page.wait_for_url(f"{base}/login")
        page.goto(f"{base}/hosts")
        assert "/login" in page.url
        other.goto(f"{base}/hosts")
        assert "/login" in other.url
    finally:
        thief.close()
    assert page.dialogs == []
    only_our_origin(page, served)


def test_submission_task_copy_buttons_run_under_the_csp(page: Any, served: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    """The copy buttons' script (our own static file, the only script the CSP lets in)
    runs: a click copies the field (or selects it where the clipboard is refused)."""
    from db.models import NoticeChannel

    base, w = served["base"], served["world"]
    with Session.begin() as s:
        n = s.get(Notice, w["n_held"])
        n.status = NoticeStatus.DRAFT
        n.host.channel = NoticeChannel.WEBFORM
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    login(page, base, "alice", "correct horse battery")
    page.goto(f"{base}/notices/{w['n_held']}")
    assert page.locator("#task").count() == 1
    button = page.locator("button[data-copy=f-description]")
    button.click()
    page.wait_for_function("document.querySelector('button[data-copy=f-description]').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Madame, Monsieur" in copied
    assert page.dialogs == []
    shot(page, "submission_task")
