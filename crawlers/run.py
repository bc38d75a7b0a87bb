"""Run crawls: the library entry point of the crawl stage (CLI, scheduler and demo call it).

``crawl(db_url, [names])`` crawls each enabled site in turn; ``crawl_site`` crawls one.
Each crawl is a child process (``crawlers.child``) because Scrapy's Twisted reactor
cannot be restarted in a long-lived process. The parent writes the CrawlRun row first
(so a crawl that dies still leaves a trace), streams the child's progress lines to a
callback, enforces a time limit, and marks the run failed if the child did not finish
it. The child writes candidates itself, one transaction per page, which is why these
functions take a database URL rather than a caller's Session: a crawl is many units of
work in another process, not one transaction.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from crawlers.child import PARENT_PID_ENV
from crawlers.sites import get_site
from db.models import CrawlRun, Site
from foundation.config import SCHEMA
from foundation.errors import CrawlError, NotFound

Progress = Callable[[dict[str, Any]], None]
# A crawl that runs longer than this is killed and recorded as failed ([crawl] timeout_s).
DEFAULT_TIMEOUT_S = float(SCHEMA["crawl"]["timeout_s"].default)


@dataclass
class CrawlResult:
    site: str
    run_id: int
    status: str
    pages: int = 0
    candidates_new: int = 0
    candidates_seen: int = 0
    errors: int = 0
    error_log: list[dict[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def crawl(db_url: str, site_names: list[str] | None = None, *, stop: threading.Event | None = None,
          **kw: Any) -> list[CrawlResult]:
    """Crawl the named sites (all enabled sites when none are named), one after another;
    when ``stop`` is set, the sites not yet started wait for the next run."""
    from db.session import make_engine, sessionmaker_for

    engine = make_engine(db_url)
    try:
        with sessionmaker_for(engine)() as s:
            if site_names:
                names = [get_site(s, n).name for n in site_names]
            else:
                names = list(s.scalars(select(Site.name).where(Site.enabled).order_by(Site.name)))
    finally:
        engine.dispose()
    return [crawl_site(db_url, name, **kw) for name in names if not (stop is not None and stop.is_set())]


def crawl_site(db_url: str, site_name: str, *, evidence_dir: str | None = None,
               allow_loopback: bool = False, user_agent: str | None = None,
               progress: Progress | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
               log_level: str = "ERROR", pipelines: dict[str, int] | None = None,
               settings: dict[str, Any] | None = None) -> CrawlResult:
    """Crawl one site in a child process; returns the counts its CrawlRun row holds.

    ``pipelines`` (dotted path -> order, below 300 to run before the database pipeline)
    and ``settings`` (``VIGIE_*`` Scrapy settings) let the caller add its own item
    pipelines: the crawl stage adds the evidence file's this way."""
    from db.session import make_engine, sessionmaker_for

    # nan once made every crawl fail at once (threading.Timer(nan) fires at once).
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise CrawlError(f"crawl timeout must be a positive number of seconds, not {timeout_s!r}")
    engine = make_engine(db_url)
    Session = sessionmaker_for(engine)
    started = time.monotonic()
    try:
        with Session.begin() as s:
            site = get_site(s, site_name)
            run = CrawlRun(site_id=site.id, status="running", error_log=[])
            s.add(run)
            s.flush()
            run_id = run.id
            job = {
                "db_url": engine.url.render_as_string(hide_password=False),
                "run_id": run_id,
                "site": {"id": site.id, "name": site.name, "kind": site.kind.value,
                         "start_urls": list(site.start_urls), "settings": dict(site.settings)},
                "evidence_dir": os.path.abspath(evidence_dir) if evidence_dir else None,
                "allow_loopback": allow_loopback,
                "user_agent": user_agent,
                "log_level": log_level,
                "pipelines": dict(pipelines or {}),
                "settings": dict(settings or {}),
            }
        rc, stderr_tail, timed_out = _run_child(job, progress, timeout_s)
        with Session.begin() as s:
            run = s.get(CrawlRun, run_id)
            if run is None:
                raise NotFound(f"crawl run {run_id} vanished")
            if rc != 0 or run.status == "running":
                why = (f"crawler process killed after {timeout_s:.0f} s" if timed_out
                       else f"crawler process exited with status {rc}")
                if stderr_tail:
                    why += f": {stderr_tail}"
                run.status = "failed"
                run.errors += 1
                run.error_log = [*run.error_log, {"url": ", ".join(job["site"]["start_urls"])[:2000], "error": why}]
                run.finished_at = datetime.now(timezone.utc)
            return CrawlResult(site=site_name, run_id=run_id, status=run.status, pages=run.pages,
                               candidates_new=run.candidates_new, candidates_seen=run.candidates_seen,
                               errors=run.errors, error_log=list(run.error_log),
                               elapsed_s=round(time.monotonic() - started, 2))
    finally:
        engine.dispose()


def _run_child(job: dict[str, Any], progress: Progress | None, timeout_s: float) -> tuple[int, str, bool]:
    """Run ``crawlers.child`` on ``job``; (exit status, last stderr line, timed out)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crawlers.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, text=True, encoding="utf-8", errors="replace", env=_child_env(),
            )
        except OSError as exc:
            raise CrawlError(f"cannot start the crawler process: {exc}") from None
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            # The child may die (or be killed by the timer) before it reads its job: its
            # exit status says why, below; a broken pipe here once ended `vigie crawl`
            # with exit 1 and nothing said (click's quiet EPIPE exit).
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(json.dumps(job))
                proc.stdin.flush()
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            for line in proc.stdout:
                if progress is None or not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                progress(event)
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        lines = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
    return rc, (lines[-1][:500] if lines else ""), timed_out.is_set()


def _child_env() -> dict[str, str]:
    # The child must import ``crawlers`` and ``db`` from where this process did, even when
    # run from a checkout that is not installed; the working directory stays the same so
    # relative SQLite paths and evidence directories mean the same thing.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env[PARENT_PID_ENV] = str(os.getpid())
    return env
