"""The procrastinate App of cluster mode: one task per stage, periodic tasks, workers.

Every task body runs a stage of ``stages.table``, as the CLI and ``vigie run`` do (through
``stages.ops.run_job``, so a job run appears in ``job_runs`` and ``vigie status`` as it
does on one machine); the match task matches one candidate (``cluster.matcher``). Periodic tasks are
deduplicated by procrastinate in the database: however many workers run, a tick is
deferred once, and the schedule goes on as long as any worker is up. Each periodic task
also carries a ``queueing_lock``, so a stage slower than its period never piles up.

``build_app`` binds the tasks to one database and configuration; worker processes and
``vigie enqueue`` build the same App, so task names always agree.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import partial
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector
from sqlalchemy.orm import Session, sessionmaker

from cluster.matcher import IndexHolder, match_one, rss_mb
from cluster.queue import apply_schema, enqueue_pending, require_postgres
from db.jobqueue import defer
from foundation.config import Config
from foundation.errors import ClusterError
from foundation.schedules import is_due, parse_interval
from stages.context import Context, Counts
from stages.ops import log_event, run_job
from stages.table import run_stage

log = logging.getLogger(__name__)

# Finished jobs are kept this long (for `vigie worker --status` and post-mortems).
KEEP_JOBS_H = 7 * 24
def interval_cron(seconds: float) -> str:
    """A cron line (croniter's six fields, seconds last when needed) firing every
    ``seconds``, rounded to what cron can express (a divisor of the minute, hour or day)."""
    s = max(1, round(seconds))
    if s < 60:
        step = next(d for d in range(s, 61) if 60 % d == 0)
        return f"* * * * * */{step}"
    m = max(1, round(s / 60))
    if m < 60:
        step = next(d for d in range(m, 61) if 60 % d == 0)
        return f"*/{step} * * * *"
    h = max(1, round(m / 60))
    if h < 24:
        step = next(d for d in range(h, 25) if 24 % d == 0)
        return f"0 */{step} * * *"
    return "0 0 * * *"


def _due(schedule: str, last: datetime | None, now: datetime) -> bool:
    """Whether a site with this ``schedule`` is due for a crawl (a schedule that cannot be
    read is logged, and that site skipped: the others go on)."""
    try:
        return is_due(schedule, last, now)
    except ValueError as exc:
        log_event("schedule_error", schedule=schedule, error=str(exc))
        return False


def defer_crawl(s: Session, site: str) -> bool:
    """Queue a crawl of ``site``; no-op when one is already waiting. The ``lock`` keeps
    two crawls of one site from running at once, whichever worker holds them."""
    return defer(s, "vigie.crawl", "crawl", {"site": site}, lock=f"site:{site}", queueing_lock=f"crawl:{site}")


def schedule_crawls(jobs: Any, now: datetime | None = None) -> list[str]:
    """Queue a crawl of every enabled site whose schedule says it is due."""
    now = now or datetime.now(timezone.utc)
    queued = []
    with jobs.ctx.Session.begin() as s:
        for name, (schedule, last) in sorted(jobs.sites().items()):
            if _due(schedule, last, now) and defer_crawl(s, name):
                queued.append(name)
    return queued


async def retry_stalled_jobs(app: App, stalled_after_s: float) -> list[int]:
    """Put back to ``todo`` the running jobs whose worker died or went silent."""
    ids = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        await app.job_manager.retry_job(job)
        assert job.id is not None
        ids.append(job.id)
    if ids:
        log_event("retry_stalled", jobs=ids)
    return ids


class Runtime:
    """What the tasks of one process share: the stages' context, the matcher index."""

    def __init__(self, db_url: str, config: Config) -> None:
        from scheduler import Jobs

        self.ctx = Context.open(db_url, config, check=False)
        self.engine = self.ctx.engine
        self.Session: sessionmaker[Session] = self.ctx.Session
        self.jobs = Jobs(self.ctx)
        self.config = config
        self.holder = IndexHolder(config.get("match", "index_dir"))

    def staged(self, job: str, name: str, **args: Any) -> Counts:
        row = run_job(self.Session, job, partial(run_stage, name, self.ctx, **args))
        if row.status != "ok":
            # Recorded in job_runs by run_job; failing the job too shows it in the queue.
            raise ClusterError(f"{job}: {row.error}")
        return dict(row.counts or {})


def build_app(db_url: str, config: Config) -> tuple[App, Runtime]:
    """The App with every task bound to this database; refuses a non-PostgreSQL one."""
    conninfo = require_postgres(db_url)
    rt = Runtime(db_url, config)
    app = App(connector=PsycopgConnector(conninfo=conninfo, min_size=1, max_size=4))
    loopback = bool(config.get("match", "allow_loopback"))
    stalled_after = float(config.get("cluster", "stalled_after_s"))

    @app.task(name="vigie.crawl", queue="crawl")
    def crawl(site: str) -> Counts:
        return rt.staged(f"crawl:{site}", "crawl", sites=[site])

    @app.task(name="vigie.match", queue="match")
    def match(candidate_id: int) -> str:
        version, index = rt.holder.current(rt.Session)
        outcome = match_one(rt.Session, candidate_id, index, allow_loopback=loopback,
                            evidence_dir=config.get("evidence", "dir"))
        log_event("match", candidate=candidate_id, outcome=outcome, index=version, rss_mb=round(rss_mb(), 1))
        return outcome

    def periodic(cron: str, name: str) -> Any:
        return app.periodic(cron=cron, periodic_id=name, queueing_lock=name)

    from stages.table import seconds

    @periodic(interval_cron(seconds(config, "dispatch_every")), "vigie.notices")
    @app.task(name="vigie.notices", queue="notices", lock="notices")
    def notices(timestamp: int | None = None) -> Counts:
        return rt.staged("notices", "notices")

    @periodic(interval_cron(seconds(config, "verify_every")), "vigie.verify")
    @app.task(name="vigie.verify", queue="verify", lock="verify")
    def verify(timestamp: int | None = None) -> Counts:
        return rt.staged("verify", "verify")

    @periodic(interval_cron(seconds(config, "evidence_every")), "vigie.evidence")
    @app.task(name="vigie.evidence", queue="evidence", lock="evidence")
    def evidence(timestamp: int | None = None) -> Counts:
        return rt.staged("evidence", "evidence")
    @periodic(interval_cron(seconds(config, "inbox_every")), "vigie.inbox")
    @app.task(name="vigie.inbox", queue="inbox", lock="inbox")
    def inbox(timestamp: int | None = None) -> Counts:
        return rt.staged("inbox", "inbox")

    hour, minute = (int(x) for x in str(config.get("schedule", "report_at")).split(":"))

    # Cron in UTC here (procrastinate's periodic tasks have no time zone).
    @periodic(f"{minute} {hour} * * *", "vigie.report")
    @app.task(name="vigie.report", queue="report", lock="report")
    def report(timestamp: int | None = None) -> Counts:
        return rt.staged("report", "report")

    tick = interval_cron(parse_interval(config.get("cluster", "tick_every")))

    @periodic(tick, "vigie.index")
    @app.task(name="vigie.index", queue="index", lock="index")
    def index(timestamp: int | None = None) -> Counts:
        """Write the index of the current catalogue version to the shared cache, so
        matchers map it instead of each building it (no-op without match.index_dir)."""
        if not rt.holder.cache_dir:
            return {"built": 0}
        version, _ = IndexHolder(rt.holder.cache_dir, writer=True).current(rt.Session)
        return {"built": 1, "version": version}

    @periodic(tick, "vigie.tick")
    @app.task(name="vigie.tick", queue="maintenance")
    def tick_task(timestamp: int | None = None) -> Counts:
        with rt.Session.begin() as s:
            matches = enqueue_pending(s)
        crawls = schedule_crawls(rt.jobs)
        return {"match_jobs": matches, "crawl_jobs": len(crawls)}

    @periodic(tick, "vigie.retry_stalled")
    @app.task(name="vigie.retry_stalled", queue="maintenance", pass_context=True)
    async def retry_stalled(context: JobContext, timestamp: int | None = None) -> list[int]:
        assert context.app is not None
        return await retry_stalled_jobs(context.app, stalled_after)

    @periodic("17 3 * * *", "vigie.cleanup")
    @app.task(name="vigie.cleanup", queue="maintenance", pass_context=True)
    async def cleanup(context: JobContext, timestamp: int | None = None) -> None:
        """Delete jobs that succeeded more than a week ago (failed ones stay for a look)."""
        assert context.app is not None
        await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_JOBS_H)

    return app, rt


def run_worker(db_url: str, config: Config, *, queues: list[str] | None, concurrency: int,
               name: str | None = None) -> None:
    """Run one worker until SIGINT/SIGTERM (procrastinate lets running jobs finish)."""
    app, rt = build_app(db_url, config)
    if apply_schema(rt.engine):
        log_event("cluster_schema", status="created")
    log_event("worker", status="started", queues=queues or "all", concurrency=concurrency,
              rss_mb=round(rss_mb(), 1))
    try:
        app.run_worker(queues=queues, concurrency=concurrency, name=name,
                       update_heartbeat_interval=float(config.get("cluster", "heartbeat_s")),
                       stalled_worker_timeout=float(config.get("cluster", "stalled_after_s")),
                       fetch_job_polling_interval=2.0)
    finally:
        rt.engine.dispose()
        log_event("worker", status="stopped", index_swaps=rt.holder.swaps, rss_mb=round(rss_mb(), 1))
