"""The browser resolver: film pages whose player exists only once its script has run.

Crawl stage, inside the crawler child, after the static resolvers (``crawlers.resolvers``).
When a site's ``render`` setting asks for it (``always``, or ``auto`` when the static
resolvers found no media on a film page), the spider sends the film page here. Headless
Chromium loads it as a visitor would (with the ``Referer`` of the page that linked to
it), lets its scripts run, presses play (elements named like play or overlay, then the
largest visible video or player, then download buttons behind a countdown), in every
frame however deeply nested, and records the media the page actually requests: MP4 or
WebM files, HLS and DASH manifests, known by URL or by content type; for ``blob:`` and
MediaSource players, the manifest or the segments behind them. Those URLs go to the
candidate like the static resolvers' ones.

Why Playwright directly rather than ``scrapy-playwright``: the crawl already runs each
site in a child process of its own, and what the browser needs around it is not a
Scrapy download handler but a security envelope: Chromium launched as an unprivileged
user so that its sandbox stays on when Vigie runs as root, a per-page forward proxy
(``crawlers.browserproxy``) that is its only way out, per-page budgets, popups closed.
``scrapy-playwright`` would also take over every download of the crawl (handlers are
per scheme) and starts its browser in the crawl's own event loop. Here the browser lives
in a thread with its own asyncio loop (``BrowserPool``); the spider's downloader
middleware (``BrowserMiddleware``) hands it a page and awaits the result, and tests and
the bench can call ``BrowserPool.render`` directly.

Safety (hostile JavaScript): the sandbox stays on; every request (documents, scripts,
XHR/fetch, media, WebSockets, redirects) goes to the page's ``GuardProxy``, which
resolves once, checks with ``foundation.netsafe`` and connects to the checked address;
Chromium's own resolver maps every name to nothing, loopback is not bypassed, QUIC and
non-proxied WebRTC UDP are off; each page gets a fresh context (no profile, no cookies
kept), service workers blocked, downloads refused, no permission granted, popups closed.

Budgets per page: time, requests and bytes (``Budget``); a page over budget keeps the
media found before and says why; at most ``max_pages`` pages are open at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from crawlers.browserproxy import GuardProxy
from crawlers.resolvers import looks_like_media
from foundation.errors import CrawlError

RENDER_MODES = ("auto", "always", "never")
DEFAULT_RENDER = "auto"
# Two pages at once: each context of a real player page holds tens of MB, and the crawl
# shares the machine with the matcher.
DEFAULT_MAX_PAGES = 2
UNPRIVILEGED_USER = "nobody"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

MANIFEST_EXTENSIONS = (".m3u8", ".mpd")
SEGMENT_EXTENSIONS = (".ts", ".m4s", ".m4v", ".m4a", ".aac")
MANIFEST_TYPES = ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
                  "audio/x-mpegurl", "application/dash+xml")
SEGMENT_TYPES = ("video/mp2t", "video/iso.segment", "video/vnd.dlna.mpeg-tts")

# What a visitor clicks, in order: things named like play buttons and overlays, then the
# largest visible player, then download buttons (countdown pages show them late).
_CLICK_JS = """
(round) => {
  const named = /play|overlay|start|watch|lecture|player/i;
  const down = /download|t[ée]l[ée]charg/i;
  const vis = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return r.width > 4 && r.height > 4 && s.visibility !== 'hidden' && s.display !== 'none'
      && r.bottom > 0 && r.right > 0 ? r.width * r.height : 0; };
  const label = (e) => [e.id, e.className && e.className.baseVal !== undefined ? e.className.baseVal
      : e.className, e.getAttribute('aria-label'), e.getAttribute('title'),
      e.tagName === 'BUTTON' || e.tagName === 'A' ? e.textContent.slice(0, 60) : ''].join(' ');
  let pool = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.hasAttribute('data-vigie-clicked')) continue;
    const area = vis(e); if (!area) continue;
    const l = label(e);
    if (round === 0 && named.test(l)) pool.push([area, e]);
    else if (round === 1 && /^(VIDEO|IFRAME|OBJECT|EMBED|CANVAS)$/.test(e.tagName)) pool.push([area, e]);
    else if (round === 2 && down.test(l)) pool.push([area, e]);
  }
  pool.sort((a, b) => b[0] - a[0]);
  const picked = pool.slice(0, 3).map(([_, e], i) => {
    const mark = 'v' + round + '-' + i + '-' + Math.random().toString(36).slice(2);
    e.setAttribute('data-vigie-clicked', mark); return mark; });
  return picked;
}
"""


@dataclass(frozen=True)
class Budget:
    """What one page may cost. A page that goes over keeps what it found and says why."""

    timeout_s: float = 25.0
    max_requests: int = 300
    max_bytes: int = 40 * 1024 * 1024
    # With no media yet: give up when the page has been quiet this long after the last click.
    idle_s: float = 4.0

    @classmethod
    def from_settings(cls, conf: dict[str, Any]) -> Budget:
        d = cls()
        return cls(timeout_s=float(conf.get("render_timeout_s", d.timeout_s)),
                   max_requests=int(conf.get("render_max_requests", d.max_requests)),
                   max_bytes=int(conf.get("render_max_bytes", d.max_bytes)),
                   idle_s=float(conf.get("render_idle_s", d.idle_s)))


# Site settings of the browser resolver (checked by ``crawlers.sitekinds``).
RENDER_SETTINGS: dict[str, tuple[type, ...]] = {
    "render": (str,),
    "render_timeout_s": (int, float),
    "render_max_requests": (int,),
    "render_max_bytes": (int,),
    "render_idle_s": (int, float),
    "render_max_pages": (int,),
}


@dataclass
class Rendered:
    """What the browser saw on one page."""

    url: str
    final_url: str = ""
    media: list[dict[str, str]] = field(default_factory=list)   # {url, kind, frame, via}
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    over_budget: str | None = None
    error: str | None = None
    html: str = ""
    screenshot: bytes | None = None
    har: bytes | None = None            # gzip-compressed HAR of every request the page made
    clicks: int = 0
    popups_closed: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0

    @property
    def media_urls(self) -> list[str]:
        return [m["url"] for m in self.media]

    def summary(self) -> dict[str, Any]:
        """The JSON kept in the candidate's evidence (the screenshot is stored apart)."""
        return {"url": self.url, "final_url": self.final_url, "media": self.media,
                "requests": self.requests[:500], "requests_total": len(self.requests),
                "refused": self.refused[:100], "over_budget": self.over_budget, "error": self.error,
                "clicks": self.clicks, "popups_closed": self.popups_closed, "bytes": self.bytes, "elapsed_s": round(self.elapsed_s, 2)}


class BrowserUnavailable(CrawlError):
    """Raised by ``BrowserPool`` when no Chromium can be started (pages that needed it are
    stored as ``needs_browser`` with this message)."""


def media_kind(url: str, content_type: str = "", resource_type: str = "") -> str | None:
    """``manifest``, ``file`` or ``segment`` for a request that carries video, else None."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    ctype = content_type.split(";", 1)[0].strip().lower()
    if path.endswith(MANIFEST_EXTENSIONS) or ctype in MANIFEST_TYPES:
        return "manifest"
    if path.endswith(SEGMENT_EXTENSIONS) or ctype in SEGMENT_TYPES:
        return "segment"
    if looks_like_media(url) or ctype.startswith("video/") or resource_type == "media":
        return "file"
    return None


def find_chromium() -> str | None:
    """The Chromium to drive: ``$VIGIE_CHROMIUM`` (``none`` for no browser), else Debian's.

    None means "Playwright's own download, if the user ran ``playwright install``"."""
    env = os.environ.get("VIGIE_CHROMIUM")
    if env is not None:
        return env
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return None


def browser_problem() -> str | None:
    """Why no browser can run here (cheap: no browser started), or None when one may."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    path = find_chromium()
    if path is not None and path.lower() in ("none", "off", ""):
        return "the browser is turned off (VIGIE_CHROMIUM=none)"
    if path is not None and not os.access(path, os.X_OK):
        return f"no Chromium at {path}"
    return None


class _Recorder:
    """Requests and media of one page, and its request budget."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.count = 0
        self.over: str | None = None
        self.media: dict[str, dict[str, str]] = {}
        self.log: list[dict[str, Any]] = []
        self._entries: dict[Any, dict[str, Any]] = {}
        self.last_activity = time.monotonic()
        self.last_media = 0.0

    def add_media(self, url: str, kind: str, frame: str, via: str) -> None:
        if not url.lower().startswith(("http://", "https://")) or url in self.media:
            return
        self.media[url] = {"url": url, "kind": kind, "frame": frame, "via": via}
        self.last_media = time.monotonic()

    def chosen(self) -> list[dict[str, str]]:
        """Manifests and files; segments only when nothing else was seen (the manifest of
        a MediaSource player may come from a script's memory)."""
        main = [m for m in self.media.values() if m["kind"] != "segment"]
        return main or [m for m in self.media.values() if m["kind"] == "segment"][:3]

    async def route(self, route: Any) -> None:
        req = route.request
        self.count += 1
        self.last_activity = time.monotonic()
        entry = {"url": req.url[:2000], "method": req.method, "type": req.resource_type}
        self._entries[req] = entry
        if len(self.log) < 2000:
            self.log.append(entry)
        try:
            if self.count > self.budget.max_requests:
                self.over = self.over or f"more than {self.budget.max_requests} requests"
                entry["action"] = "aborted: over budget"
                await route.abort()
                return
            kind = media_kind(req.url, resource_type=req.resource_type)
            if kind in ("file", "segment"):
                # Recorded, not downloaded: the match stage fetches the video itself, checked.
                self.add_media(req.url, kind, _frame_url(req), "request")
                entry["action"] = "recorded media, not downloaded"
                await route.abort()
                return
            if kind == "manifest":
                self.add_media(req.url, kind, _frame_url(req), "request")
            await route.continue_()
        except Exception:  # noqa: BLE001 - the page was closed under the request (budget, end)
            entry.setdefault("action", "page closed")

    def on_response(self, response: Any) -> None:
        self.last_activity = time.monotonic()
        ctype = response.headers.get("content-type", "")
        entry = self._entries.get(response.request)
        if entry is not None:
            entry["status"] = response.status
            entry["content_type"] = ctype[:200]
        kind = media_kind(response.url, ctype)
        if kind:
            self.add_media(response.url, kind, _frame_url(response.request), "response")


def _frame_url(request: Any) -> str:
    try:
        return str(request.frame.url)[:2000]
    except Exception:  # noqa: BLE001 - a worker's request has no frame
        return ""


class BrowserPool:
    """One headless Chromium in a thread of its own, rendering at most ``max_pages`` at once.

    Started lazily on the first page (a crawl that never needs the browser never starts
    one); a launch failure is remembered and every later page gets the same
    ``BrowserUnavailable``."""

    def __init__(self, *, allow_loopback: bool = False, budget: Budget | None = None,
                 max_pages: int = DEFAULT_MAX_PAGES, user_agent: str | None = None,
                 screenshot: bool = True) -> None:
        self.allow_loopback = allow_loopback
        self.budget = budget or Budget()
        self.max_pages = max(1, max_pages)
        self.user_agent = user_agent
        self.screenshot = screenshot
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vigie-browser", daemon=True)
        self._thread.start()
        self._browser: Any = None
        self._pw: Any = None
        self._proxy: GuardProxy | None = None
        self._failed: str | None = None
        self._tmp: str | None = None
        self._sem: asyncio.Semaphore | None = None
        self._lock: asyncio.Lock | None = None
        self.pages = 0
        self.open_now = 0
        self.peak_open = 0       # the most pages open at once: never above max_pages
        self.sandbox = ""

    # ------------------------------------------------------------------ public

    def submit(self, url: str, referer: str | None = None, budget: Budget | None = None
               ) -> concurrent.futures.Future[Rendered]:
        return asyncio.run_coroutine_threadsafe(self._render(url, referer, budget or self.budget), self._loop)

    def render(self, url: str, referer: str | None = None, budget: Budget | None = None) -> Rendered:
        return self.submit(url, referer, budget).result()

    def sandbox_report(self) -> str:
        """What Chromium itself says of its sandbox (``chrome://sandbox``), for tests and
        operators: "You are adequately sandboxed." when it is on."""
        async def read() -> str:
            browser = await self._ensure()
            ctx = await browser.new_context()
            try:
                page = await ctx.new_page()
                await page.goto("chrome://sandbox")
                return str(await page.inner_text("body"))
            finally:
                await ctx.close()

        return asyncio.run_coroutine_threadsafe(read(), self._loop).result(timeout=60)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._kill_browser()  # even when the polite shutdown above timed out
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BrowserPool:  # noqa: PYI034 - the project's style (DemoWeb)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ browser

    async def _ensure(self) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._sem = asyncio.Semaphore(self.max_pages)
        async with self._lock:
            if self._failed:
                raise BrowserUnavailable(self._failed)
            if self._browser is not None:
                return self._browser
            problem = browser_problem()
            if problem:
                self._failed = f"no browser: {problem}"
                raise BrowserUnavailable(self._failed)
            try:
                self._browser = await self._launch()
            except Exception as exc:  # noqa: BLE001 - any launch failure means no browser
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self._failed = f"no browser: Chromium does not start: {first[:300]}"
                raise BrowserUnavailable(self._failed) from None
            return self._browser

    async def _launch(self) -> Any:
        from playwright.async_api import async_playwright

        self._tmp = tempfile.mkdtemp(prefix="vigie-browser-")
        # A proxy for anything outside the per-page contexts: the same policy.
        self._proxy = GuardProxy(allow_loopback=self.allow_loopback)
        await self._proxy.start()
        self._pw = await async_playwright().start()
        try:
            # No system Chromium: Playwright's own download (`playwright install chromium`).
            chromium = find_chromium() or self._pw.chromium.executable_path
            executable = self._launcher(chromium)
            self.sandbox = f"on (Chromium runs as {UNPRIVILEGED_USER})" if os.geteuid() == 0 else "on"
            return await self._pw.chromium.launch(
                executable_path=executable, headless=True, chromium_sandbox=True,
                proxy={"server": self._proxy.url, "bypass": "<-loopback>"},
                args=chromium_args(), downloads_path=os.path.join(self._tmp, "no-downloads"),
                handle_sigint=False, handle_sigterm=False, handle_sighup=False, timeout=30_000)
        except BaseException:
            await self._pw.stop()
            self._pw = None
            raise

    def _launcher(self, chromium: str) -> str:
        """A script Playwright starts instead of Chromium (``crawlers.chromium_user``): a
        process group of its own that dies with the driver, and ``nobody`` instead of root
        so that the sandbox does not need ``--no-sandbox``."""
        assert self._tmp is not None
        if not os.access(chromium, os.X_OK):
            raise BrowserUnavailable(f"no browser: no Chromium at {chromium} (apt-get install chromium, "
                                     "or `playwright install chromium`)")
        os.chmod(self._tmp, 0o755)
        script = os.path.join(self._tmp, "chromium")
        helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chromium_user.py")
        user = UNPRIVILEGED_USER if os.geteuid() == 0 else "-"
        with open(script, "w", encoding="utf-8") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" -I "{helper}" "{self._pidfile}" {user} '
                    f'"{chromium}" "$@"\n')
        os.chmod(script, 0o755)
        return script

    @property
    def _pidfile(self) -> str:
        return os.path.join(self._tmp or "", "chromium.pid")

    def _kill_browser(self) -> None:
        """Kill what is left of Chromium's process group (a renderer stuck in a hostile
        script can outlive a polite close)."""
        try:
            with open(self._pidfile, encoding="ascii") as f:
                pid = int(f.read().strip())
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), 15)
        self._kill_browser()
        with contextlib.suppress(Exception):
            if self._pw is not None:
                await asyncio.wait_for(self._pw.stop(), 15)
        if self._proxy is not None:
            await self._proxy.close()

    # ------------------------------------------------------------------ one page

    async def _render(self, url: str, referer: str | None, budget: Budget) -> Rendered:
        browser = await self._ensure()
        assert self._sem is not None
        async with self._sem:
            self.open_now += 1
            self.peak_open = max(self.peak_open, self.open_now)
            try:
                return await self._render_page(browser, url, referer, budget)
            finally:
                self.open_now -= 1

    async def _render_page(self, browser: Any, url: str, referer: str | None, budget: Budget) -> Rendered:
        started = time.monotonic()
        out = Rendered(url=url)
        rec = _Recorder(budget)
        proxy = GuardProxy(allow_loopback=self.allow_loopback, max_bytes=budget.max_bytes)
        await proxy.start()
        self.pages += 1
        har_path = os.path.join(self._tmp or tempfile.gettempdir(), f"page-{self.pages}.har")
        ctx = await browser.new_context(
            # The HAR of the page (requests, responses, timings; bodies left out) is evidence.
            record_har_path=har_path, record_har_content="omit",
            proxy={"server": proxy.url, "bypass": "<-loopback>"}, service_workers="block",
            accept_downloads=False, user_agent=self.user_agent, viewport={"width": 1280, "height": 720},
            java_script_enabled=True, ignore_https_errors=False, permissions=[])
        try:
            page = await ctx.new_page()

            def popup(p: Any) -> None:
                if p is not page:
                    out.popups_closed += 1
                    asyncio.ensure_future(p.close())

            ctx.on("page", popup)
            ctx.on("response", rec.on_response)
            await ctx.route("**/*", rec.route)
            try:
                await asyncio.wait_for(self._drive(page, url, referer, rec, proxy, out), budget.timeout_s)
            except TimeoutError:
                if not rec.media:
                    out.over_budget = f"no media within the {budget.timeout_s:g} s time budget"
            except Exception as exc:  # noqa: BLE001 - a hostile page may break the browser in any way
                out.error = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            out.over_budget = out.over_budget or rec.over or proxy.log.over_budget
            if proxy.log.over_budget:
                out.over_budget = f"page received {proxy.log.over_budget}"
            if out.over_budget or out.error:
                # Cut the page off the network before looking at it: a request storm must
                # not keep the browser busy while the evidence is taken.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ctx.set_offline(True), 5)
                    await asyncio.wait_for(ctx.unroute_all(behavior="ignoreErrors"), 5)
            with contextlib.suppress(Exception):
                out.final_url = page.url
                out.html = await asyncio.wait_for(page.content(), 5)
            with contextlib.suppress(Exception):
                await self._dom_media(page, rec)
            if self.screenshot:
                with contextlib.suppress(Exception):
                    out.screenshot = await page.screenshot(type="png", timeout=5000)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctx.close(), 10)  # writes the HAR
            await proxy.close()
            with contextlib.suppress(OSError), open(har_path, "rb") as f:  # noqa: ASYNC230 - a small local file
                out.har = gzip.compress(f.read(), mtime=0)
            with contextlib.suppress(OSError):
                os.unlink(har_path)
        out.media = rec.chosen()
        out.requests = rec.log
        out.refused = proxy.log.refused
        out.bytes = proxy.log.bytes
        out.elapsed_s = time.monotonic() - started
        return out

    async def _drive(self, page: Any, url: str, referer: str | None, rec: _Recorder,
                     proxy: GuardProxy, out: Rendered) -> None:
        try:
            # The page's time budget (the caller's wait_for) ends a slow load, not goto's own
            # timeout: a slow page is over budget, not an error.
            await page.goto(url, referer=referer, wait_until="domcontentloaded",
                            timeout=(rec.budget.timeout_s + 30) * 1000)
        except Exception:
            if not rec.media:
                raise  # the page did not load; a page that did show media keeps it
        rnd = 0
        quiet_since = time.monotonic()
        while True:
            await asyncio.sleep(0.3)
            now = time.monotonic()
            if rec.over or proxy.log.over_budget:
                return
            if rec.media and now - rec.last_media > 1.0:
                return  # found, and the page has had a moment to show the rest
            if now - rec.last_activity < 0.8:
                continue  # still loading: let it
            if rnd < 3:
                out.clicks += await self._press(page, rnd)
                rnd += 1
                quiet_since = time.monotonic()
                continue
            if now - rec.last_activity > rec.budget.idle_s:
                return  # quiet for long after every kind of click: nothing to find
            if now - quiet_since > 1.5:
                # Countdown pages show their button late: look again, from the start.
                rnd = 0

    async def _press(self, page: Any, rnd: int) -> int:
        clicks = 0
        for frame in list(page.frames):
            try:
                marks = await asyncio.wait_for(frame.evaluate(_CLICK_JS, rnd), 3)
            except Exception:  # noqa: BLE001 - a frame that went away, a hostile page
                continue
            for mark in marks or []:
                with contextlib.suppress(Exception):
                    await frame.locator(f'[data-vigie-clicked="{mark}"]').click(
                        force=True, timeout=1500, no_wait_after=True)
                    clicks += 1
        return clicks

    async def _dom_media(self, page: Any, rec: _Recorder) -> None:
        """Media the rendered DOM of each frame shows (a ``<video src>`` set by a script
        that the page did not load yet), by the static resolvers."""
        from parsel import Selector

        from crawlers.resolvers import resolve_page

        for frame in list(page.frames):
            with contextlib.suppress(Exception):
                html = await asyncio.wait_for(frame.content(), 3)
                media, _ = resolve_page(Selector(text=html, type="html"), frame.url)
                for m in media:
                    rec.add_media(m, media_kind(m) or "file", frame.url, "dom")


async def _cancel_pending() -> None:
    """End the tasks Playwright left running (route handlers of a request storm) before
    the pool's loop stops."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def chromium_args() -> list[str]:
    """Chromium's switches: no way out but the proxy, nothing kept, nothing shown."""
    return [
        # Chromium never resolves a name itself (the proxy does, checked); DNS prefetch
        # and preconnect find nothing. The proxy is an IP literal.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-quic",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--mute-audio",
        "--disable-breakpad",
        "--disable-features=DnsOverHttps,MediaRouter,DialMediaRouteProvider,Translate",
        "--autoplay-policy=no-user-gesture-required",
        # A script that allocates without end crashes its own renderer (the page's error)
        # instead of taking the machine's memory.
        "--js-flags=--max-old-space-size=512",
        "--password-store=basic",
        "--use-mock-keychain",
    ]
