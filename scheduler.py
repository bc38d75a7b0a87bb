"""APScheduler wiring of every stage: what ``vigie run`` runs, and when.

Every job runs a stage of ``stages.table`` through ``stages.ops.run_job`` (a ``job_runs``
row and one JSON log line per run):

* ``crawl:<site>``: the crawl stage for one site, on the site's own ``schedule`` (an
  interval such as ``"6h"`` or a five-field cron expression, in the configured zone);
* ``resync``: re-reads the sites so added, changed, disabled or deleted sites are
  picked up without a restart (``[schedule] resync_every``);
* ``match``, ``notices``, ``inbox``, ``verify``: each on its ``[schedule]`` key (the stage
  table's ``every``: ``match_every``, ``dispatch_every``, ``inbox_every``, ``verify_every``);
* ``report``: every day at ``report_at``, local time.

Every job has ``coalesce=True`` (runs missed while the process was busy or down collapse
into one) and ``max_instances=1``. Long stages look at the context's ``stop`` between
items, so a shutdown waits for the item in hand, never for a whole backlog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from db.models import Site
from foundation.errors import SchedulerError
from foundation.schedules import next_due, parse_schedule
from foundation.timeutil import utc_now, zone
from stages.context import Context, Counts
from stages.ops import log_event, run_job
from stages.table import FLOW, STAGES, run_stage, seconds


def site_trigger(schedule: str, tz: Any) -> BaseTrigger:
    """The trigger of a site's ``schedule``: an interval ("6h") or a crontab line."""
    try:
        return parse_schedule(schedule).trigger(tz)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise SchedulerError(str(exc)) from None


@dataclass
class Jobs:
    """The scheduler's state: the stages' context, and the sites whose crawl a dead
    scheduler left unfinished (crawled again at once, whatever their crawl runs say: an
    orphaned crawler may have closed its run without storing)."""

    ctx: Context
    recrawl: set[str] = field(default_factory=set)

    @property
    def tz(self) -> Any:
        return zone(self.ctx.config)

    def job(self, name: str, **args: Any) -> Callable[[], Counts]:
        return partial(run_stage, name, self.ctx, **args)

    def crawl(self, site: str) -> Callable[[], Counts]:
        return self.job("crawl", sites=[site])

    def run(self, job: str, fn: Callable[[], Counts]) -> None:
        run_job(self.ctx.Session, job, fn)

    def sites(self) -> dict[str, tuple[str, datetime | None]]:
        from crawlers.sites import scheduled_sites

        with self.ctx.Session() as s:
            return scheduled_sites(s)


JOB_OPTIONS: dict[str, Any] = {"coalesce": True, "max_instances": 1}


def _add(scheduler: BaseScheduler, jobs: Jobs, job_id: str, fn: Callable[[], Counts], trigger: BaseTrigger,
         grace_s: float, **kw: Any) -> None:
    scheduler.add_job(jobs.run, trigger, args=(job_id, fn), id=job_id, name=job_id, replace_existing=True,
                      misfire_grace_time=max(1, int(grace_s)), **JOB_OPTIONS, **kw)


def resync_sites(scheduler: BaseScheduler, jobs: Jobs, known: dict[str, str]) -> Counts:
    """Add, re-time or remove ``crawl:<site>`` jobs to match the sites table.

    ``known`` (site -> schedule) is what the scheduler holds now; updated in place. A site
    whose schedule cannot be read is reported and left unscheduled; the others go on."""
    now = utc_now()
    current = jobs.sites()
    added = changed = removed = 0
    bad = []
    for name in set(known) - set(current):
        scheduler.remove_job(f"crawl:{name}")
        del known[name]
        removed += 1
    for name, (schedule, last) in sorted(current.items()):
        if known.get(name) == schedule:
            continue
        try:
            trigger = site_trigger(schedule, jobs.tz)
        except Exception as exc:  # noqa: BLE001 - one site's schedule never stops the others
            bad.append(f"site {name}: {exc}")
            log_event("schedule_error", site=name, schedule=schedule, error=str(exc))
            if name in known:
                scheduler.remove_job(f"crawl:{name}")
                del known[name]
            continue
        first = None
        if isinstance(trigger, IntervalTrigger):
            # Resume the site's rhythm from its last crawl: a restart must neither re-crawl
            # every site at once nor push a crawl that is due back by a whole interval.
            due = next_due(schedule, last, jobs.tz) or now
            first = now if name in jobs.recrawl else max(now, due)
        elif name in jobs.recrawl:
            first = now
        jobs.recrawl.discard(name)
        grace = trigger.interval.total_seconds() / 2 if isinstance(trigger, IntervalTrigger) else 3600
        kw = {"next_run_time": first} if first is not None else {}
        _add(scheduler, jobs, f"crawl:{name}", jobs.crawl(name), trigger, grace, **kw)
        added += name not in known
        changed += name in known
        known[name] = schedule
    if bad:
        raise SchedulerError("; ".join(bad))
    return Counts(sites=len(known), added=added, changed=changed, removed=removed)


def build(scheduler: BaseScheduler, jobs: Jobs) -> None:
    """Put every job on ``scheduler``; the periodic stages run once right at start-up."""
    config = jobs.ctx.config
    now = datetime.now(timezone.utc)
    known: dict[str, str] = {}
    resync = seconds(config, "resync_every")
    _add(scheduler, jobs, "resync", lambda: resync_sites(scheduler, jobs, known),
         IntervalTrigger(seconds=resync), resync, next_run_time=now)
    for name, stage in STAGES.items():
        if stage.every is None:
            continue  # the crawl: one job per site, kept by resync_sites
        if stage.every.endswith("_every"):
            every = seconds(config, stage.every)
            # Staggered a little so the first cycle runs in flow order.
            start = now + timedelta(seconds=FLOW.index(name))
            _add(scheduler, jobs, name, jobs.job(name), IntervalTrigger(seconds=every), every / 2,
                 next_run_time=start)
        else:
            hour, minute = (int(x) for x in str(config.get("schedule", stage.every)).split(":"))
            _add(scheduler, jobs, name, jobs.job(name), CronTrigger(hour=hour, minute=minute, timezone=jobs.tz),
                 6 * 3600)


def run_once(jobs: Jobs) -> list[str]:
    """Every stage once, in flow order (``vigie run --once``): every enabled site's crawl,
    then the others. Returns the jobs that failed."""
    with jobs.ctx.Session() as s:
        sites = list(s.scalars(select(Site.name).where(Site.enabled).order_by(Site.name)))
    steps: list[tuple[str, Callable[[], Counts]]] = [(f"crawl:{n}", jobs.crawl(n)) for n in sites]
    steps += [(name, jobs.job(name)) for name in FLOW if name != "crawl"]
    failed = []
    for job_id, fn in steps:
        if jobs.ctx.stop.is_set():
            log_event("stopping", reason="signal", skipped=job_id)
            break
        row = run_job(jobs.ctx.Session, job_id, fn)
        if row.status != "ok":
            failed.append(f"{job_id}: {row.error}")
    return failed
