"""``vigie bench --only browser``: the browser resolver's figures on the demo world.

Entry point (bench), over the crawl stage. Three figures (issue 15): film pages resolved
per minute with the browser (the scripted players of ``demoweb.players``, rendered
``render_max_pages`` at a time, as a crawl does), the peak memory one browser context
adds (the PSS of Chromium's processes while pages are open, over the browser's idle
memory, per open page), and the share of the demo world's film pages for which ``auto`` needed
the browser (a real crawl of the link site and of the players' site, counted from the
stored candidates). Skipped with the reason when no browser can start.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _tree_rss_mb(root: int) -> float:
    """Memory of every process descended from ``root`` (Playwright's driver and Chromium's
    browser, GPU, network and renderer processes), in MB: proportional set sizes where the
    kernel gives them (shared libraries counted once across processes), else RSS."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(name)] = int(fields[1])
            rss[int(name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    seen = set()
    while stack:
        pid = stack.pop()
        for child, parent in parents.items():
            if parent == pid and child not in seen:
                seen.add(child)
                pss = _pss_kb(child)
                total += pss * 1024 if pss is not None else rss.get(child, 0)
                stack.append(child)
    return total / (1024 * 1024)


def bench_browser(echo: Callable[[str], None] = print) -> dict[str, Any]:
    from crawlers.browser import DEFAULT_MAX_PAGES, BrowserPool, Budget, browser_problem
    from demoweb.world import DemoWeb

    problem = browser_problem()
    if problem:
        return {"skipped": f"no browser: {problem}"}
    web = DemoWeb({})
    try:
        pages = [p["page_url"] for p in web.planted_players()]
        with BrowserPool(allow_loopback=True, max_pages=DEFAULT_MAX_PAGES, screenshot=True) as pool:
            warm = pool.render(pages[0], budget=Budget(timeout_s=15))  # starts Chromium
            if warm.error and not warm.media:
                return {"skipped": f"browser failed: {warm.error}"}
            idle = _tree_rss_mb(os.getpid())
            peak = [idle]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            echo(f"browser: rendering {len(pages)} scripted player pages, {DEFAULT_MAX_PAGES} at a time...")
            t0 = time.perf_counter()
            results = [f.result() for f in [pool.submit(u, budget=Budget(timeout_s=15)) for u in pages]]
            elapsed = time.perf_counter() - t0
            done.set()
            sampler.join()
        found = sum(1 for r in results if r.media)
        out: dict[str, Any] = {
            "pages": len(pages), "pages_with_media": found,
            "pages_per_minute": round(len(pages) / elapsed * 60, 1),
            "max_pages_open": DEFAULT_MAX_PAGES, "peak_pages_open": pool.peak_open,
            "browser_idle_mb": round(idle, 1),
            "peak_mb_per_context": round((peak[0] - idle) / max(1, pool.peak_open), 1),
        }
        echo("browser: how often auto needs the browser on the demo world (a real crawl)...")
        out.update(_auto_share(web))
        return out
    finally:
        web.stop()


def _auto_share(web: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from crawlers.run import crawl_site
    from crawlers.sites import add_site
    from db.models import Candidate
    from db.session import make_engine, sessionmaker_for, upgrade

    with tempfile.TemporaryDirectory(prefix="vigie-bench-browser-") as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(db_url)
        try:
            upgrade(engine)
            Session = sessionmaker_for(engine)
            with Session.begin() as s:
                for site in [web.sites()[0], web.player_site("auto")]:
                    add_site(s, site["name"], site["start_urls"], kind=site["kind"], settings=site["settings"])
                names = [web.sites()[0]["name"], web.player_site()["name"]]
            for name in names:
                crawl_site(db_url, name, allow_loopback=True, timeout_s=600)
            with Session() as s:
                cands = list(s.scalars(select(Candidate)))
                rendered = sum(1 for c in cands if (c.evidence or {}).get("browser"))
                found_by_browser = sum(1 for c in cands if ((c.evidence or {}).get("browser") or {}).get("media"))
        finally:
            engine.dispose()
    return {"film_pages": len(cands), "auto_rendered": rendered,
            "auto_share": round(rendered / len(cands), 3) if cands else None,
            "auto_rendered_with_media": found_by_browser}
