"""The crawler process: one site, one Scrapy run, one fresh Twisted reactor.

Crawl stage. A Twisted reactor cannot be restarted inside a process, so every crawl
runs here, in a child started by ``crawlers.run``: the job comes as JSON on stdin,
progress goes out as JSON lines on stdout, candidates go to the database through the
pipeline, and at the end this process writes the counts and errors into its CrawlRun
row. If it dies before that, the parent records the death.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

from fingerprint.sandbox import die_with_parent
from foundation import __version__

PARENT_PID_ENV = "VIGIE_PARENT_PID"

DEFAULT_USER_AGENT = f"VigieBot/{__version__} (anti-piracy monitoring for film rights holders)"


def scrapy_settings(job: dict[str, Any]) -> dict[str, Any]:
    """Scrapy settings for one site: politeness and safety from the site's settings."""
    conf: dict[str, Any] = job["site"].get("settings") or {}
    delay = float(conf.get("download_delay", 1.0))
    concurrency = int(conf.get("concurrency", 2))
    maxsize = int(conf.get("max_size_bytes", 5 * 1024 * 1024))
    return {
        "BOT_NAME": "vigie",
        "USER_AGENT": conf.get("user_agent") or job.get("user_agent") or DEFAULT_USER_AGENT,
        "ROBOTSTXT_OBEY": bool(conf.get("obey_robots", True)),
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(30.0, delay * 4),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(concurrency),
        "CONCURRENT_REQUESTS": max(8, concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "DOWNLOAD_TIMEOUT": float(conf.get("timeout_s", 30)),
        "RETRY_ENABLED": True,
        "RETRY_TIMES": int(conf.get("retries", 2)),
        "DOWNLOAD_MAXSIZE": maxsize,
        "DOWNLOAD_WARNSIZE": maxsize // 2,
        "REDIRECT_MAX_TIMES": int(conf.get("max_redirects", 5)),
        "METAREFRESH_MAXDELAY": 10,
        "DEPTH_LIMIT": int(conf.get("depth_limit", 20)),
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": job.get("log_level", "ERROR"),
        "LOG_ENABLED": True,
        "DOWNLOADER_MIDDLEWARES": {"crawlers.middleware.NetSafeMiddleware": 50,
                                   "crawlers.middleware.BrowserMiddleware": 60},
        # Connect only to addresses that pass the same check (no DNS rebinding).
        "DNS_RESOLVER": "crawlers.middleware.SafeResolver",
        # The caller's own pipelines (the evidence file's) run before the database's.
        "ITEM_PIPELINES": {"crawlers.pipeline.DatabasePipeline": 300, **(job.get("pipelines") or {})},
        **{k: v for k, v in (job.get("settings") or {}).items() if k.startswith("VIGIE_")},
        "VIGIE_DB_URL": job["db_url"],
        "VIGIE_EVIDENCE_DIR": job.get("evidence_dir") or "",
        "VIGIE_ALLOW_LOOPBACK": bool(job.get("allow_loopback")),
    }


def catalogue_queries(db_url: str) -> list[str]:
    from sqlalchemy import select

    from db.models import AltTitle, Title
    from db.session import make_engine, sessionmaker_for

    engine = make_engine(db_url)
    try:
        with sessionmaker_for(engine)() as s:
            names = list(s.scalars(select(Title.title))) + list(s.scalars(select(AltTitle.name)))
    finally:
        engine.dispose()
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def run(job: dict[str, Any]) -> int:
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawlers.sitekinds import spider_for

    spider_cls = spider_for(job["site"]["kind"])
    process = CrawlerProcess(scrapy_settings(job), install_root_handler=True)
    crawler = process.create_crawler(spider_cls)

    def dropped(item: Any, response: Any, exception: BaseException, spider: Any) -> None:
        spider.record_error(str(item.get("page_url", "?")), f"item dropped: {exception}")

    def spider_error(failure: Any, response: Any, spider: Any) -> None:
        spider.record_error(response.url, f"{failure.type.__name__}: {failure.value}")

    def item_error(item: Any, response: Any, spider: Any, failure: Any) -> None:
        spider.record_error(str(item.get("page_url", "?")), f"storing failed: {failure.type.__name__}: {failure.value}")

    crawler.signals.connect(dropped, signal=signals.item_dropped)
    crawler.signals.connect(spider_error, signal=signals.spider_error)
    crawler.signals.connect(item_error, signal=signals.item_error)
    queries = catalogue_queries(job["db_url"]) if job["site"]["kind"] == "site_search" else []
    process.crawl(crawler, site=job["site"], queries=queries, progress=True)
    process.start()

    spider = crawler.spider
    stats = crawler.stats.get_stats() if crawler.stats else {}
    new = int(stats.get("vigie/candidates_new", 0))
    seen = int(stats.get("vigie/candidates_seen", 0))
    errors = getattr(spider, "error_count", 0)
    log = list(getattr(spider, "error_log", []))
    finish = stats.get("finish_reason", "finished")
    _finish_run(job, {
        # A rendered page is the same page seen again, by the browser: counted once.
        "pages": int(stats.get("response_received_count", 0)) - int(stats.get("vigie/browser_pages", 0)),
        "candidates_new": new,
        "candidates_seen": seen,
        "errors": errors,
        "error_log": log,
        "status": "ok" if errors == 0 and finish == "finished" else "completed_with_errors",
        "robots_skipped": list(getattr(spider, "robots_skipped", []))[:50],
    })
    return 0


def _finish_run(job: dict[str, Any], result: dict[str, Any]) -> None:
    from db.models import CrawlRun
    from db.session import make_engine, sessionmaker_for

    engine = make_engine(job["db_url"])
    try:
        with sessionmaker_for(engine).begin() as s:
            run = s.get(CrawlRun, job["run_id"])
            if run is None:
                return
            run.pages = result["pages"]
            run.candidates_new = result["candidates_new"]
            run.candidates_seen = result["candidates_seen"]
            run.errors = result["errors"]
            run.error_log = result["error_log"]
            run.status = result["status"]
            run.finished_at = datetime.now(timezone.utc)
    finally:
        engine.dispose()
    try:
        sys.stdout.write(json.dumps({"event": "done", **{k: v for k, v in result.items() if k != "error_log"}}) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass  # the parent is gone; the run row above already holds the result


def main() -> int:
    # A crawl whose scheduler was killed stops with it: the restarted scheduler crawls
    # the site again, and two crawls of one site at once would only compete.
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and parent.isdigit():
        die_with_parent(int(parent))
    job = json.loads(sys.stdin.read())
    return run(job)


if __name__ == "__main__":
    sys.exit(main())
