"""APScheduler wiring of every stage: what ``vigie run`` runs, and when.

Each job is a few lines around the library function the CLI verb calls, run through
``stages.ops.run_job`` (a ``job_runs`` row and one JSON log line per run):

* ``crawl:<site>``: ``crawlers.run.crawl_site`` on the site's own ``schedule`` (an
  interval such as ``"6h"`` or a five-field cron expression, in the configured zone);
* ``resync``: re-reads the sites so added, changed, disabled or deleted sites are
  picked up without a restart;
* ``match``: ``stages.match.match_pending`` (``[schedule].match_every``);
* ``notices``: ``notices.build.queue_notices`` then ``notices.dispatch.dispatch``
  (``dispatch_every``);
* ``verify``: ``notices.verify.verify`` (``verify_every``, hourly by default);
* ``report``: ``reports.daily.build_report`` (and mail it when configured) every day at
  ``report_at``, local time.

Every job has ``coalesce=True`` (runs missed while the process was busy or down collapse
into one) and ``max_instances=1``. Long stages work in batches and look at ``stop``
between them, so a shutdown waits for the item in hand, never for a whole backlog.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CrawlRun, Site
from foundation.config import Config
from foundation.errors import SchedulerError
from stages.ops import Counts, log_event, run_job
from foundation.schedules import parse_interval, parse_schedule

DEFAULTS: dict[str, str] = {
    "match_every": "5m",
    "dispatch_every": "5m",
    "verify_every": "1h",
    "resync_every": "1m",
    "report_at": "07:00",
    "lock_stale_after": "2m",
}
# Items per batch of the match and dispatch stages: how long a shutdown may wait.
BATCH = 20
STAGES = ("match", "notices", "verify", "report")


def schedule_setting(config: Config, key: str) -> str | int | float:
    return config.schedule.get(key, DEFAULTS[key])  # type: ignore[no-any-return]


def seconds(config: Config, key: str) -> float:
    return parse_interval(schedule_setting(config, key))


def job_intervals(config: Config) -> dict[str, float]:
    """Seconds between runs of each periodic stage job (for ``vigie status``)."""
    return {"match": seconds(config, "match_every"), "notices": seconds(config, "dispatch_every"),
            "verify": seconds(config, "verify_every"), "resync": seconds(config, "resync_every")}


def site_trigger(schedule: str, tz: Any) -> BaseTrigger:
    """The trigger of a site's ``schedule``: an interval ("6h") or a crontab line."""
    try:
        return parse_schedule(schedule).trigger(tz)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise SchedulerError(str(exc)) from None


@dataclass
class Jobs:
    """The job functions, bound to one database and configuration."""

    db_url: str
    Session: sessionmaker[Session]
    config: Config
    stop: threading.Event = field(default_factory=threading.Event)
    # Sites whose crawl a dead scheduler left unfinished: crawled again at once, whatever
    # their crawl runs say (an orphaned crawler may have closed its run without storing).
    recrawl: set[str] = field(default_factory=set)

    @property
    def tz(self) -> Any:
        from reports.daily import zone

        return zone(self.config)

    def run(self, job: str, fn: Callable[[], Counts]) -> None:
        run_job(self.Session, job, fn)

    # ----------------------------------------------------------------- the stages

    def crawl(self, site: str) -> Counts:
        from crawlers.run import DEFAULT_TIMEOUT_S, crawl_site

        conf = self.config.crawl
        r = crawl_site(self.db_url, site, evidence_dir=conf.get("evidence_dir"),
                       allow_loopback=bool(conf.get("allow_loopback", False)),
                       user_agent=conf.get("user_agent"),
                       timeout_s=float(conf.get("timeout_s", DEFAULT_TIMEOUT_S)))
        if r.status == "failed":
            raise SchedulerError(f"crawl of {site} failed: {r.error_log[-1]['error'] if r.error_log else ''}")
        return {"run_id": r.run_id, "status": r.status, "pages": r.pages, "new": r.candidates_new,
                "seen": r.candidates_seen, "errors": r.errors}

    def match(self) -> Counts:
        from stages.match import match_pending

        loopback = bool(getattr(self.config, "match", {}).get("allow_loopback", False))
        counted = ("candidates", "confirmed", "review", "allowed", "no_match", "failed", "retry")
        total: Counts = {**dict.fromkeys(counted, 0), "errors": 0}
        while not self.stop.is_set():
            st = match_pending(self.Session, limit=BATCH, allow_loopback=loopback)
            for k in counted:
                total[k] += getattr(st, k)
            total["errors"] += len(st.errors)
            if st.candidates < BATCH:
                break
        return total

    def notices(self) -> Counts:
        from notices.build import queue_notices
        from notices.dispatch import dispatch

        with self.Session.begin() as s:
            q = queue_notices(s, self.config)
            total: Counts = {"queued": len(q.notices), "flagged": len(q.flagged), "refused": len(q.refused),
                             "sent": 0, "retry": 0, "in_doubt": 0, "failed": 0, "discarded": 0, "held": 0}
        while not self.stop.is_set():
            r = dispatch(self.Session, self.config, limit=BATCH)
            for k in ("sent", "retry", "in_doubt", "failed", "discarded", "held"):
                total[k] += len(getattr(r, k))
            done = sum(len(getattr(r, k)) for k in ("sent", "retry", "in_doubt", "failed", "discarded",
                                                      "held", "rate_limited"))
            if done < BATCH:
                break
        return total

    def verify(self) -> Counts:
        from notices.verify import verify

        with self.Session.begin() as s:
            r = verify(s, self.config)
            return {"checked": r.checked, "removed": len(r.removed), "live": len(r.live),
                    "inconclusive": len(r.inconclusive), "reuploads": len(r.reuploads)}

    def report(self) -> Counts:
        from reports.daily import build_report, mail_configured, mail_report

        with self.Session.begin() as s:
            out = build_report(s, self.config)
            mailed = mail_report(self.config, out, s) if mail_configured(self.config) else []
            return {"day": out.day.isoformat(), "html": str(out.html), "mailed": len(mailed)}

    # ----------------------------------------------------------------- sites

    def sites(self) -> dict[str, tuple[str, datetime | None]]:
        """Enabled sites with a schedule: name -> (schedule, start of the last finished crawl).

        A run never finished was cut short (its scheduler was killed): it does not count,
        so the site is crawled again at once rather than an interval later."""
        with self.Session() as s:
            last = dict(s.execute(select(CrawlRun.site_id, func.max(CrawlRun.started_at))
                                  .where(CrawlRun.finished_at.is_not(None))
                                  .group_by(CrawlRun.site_id)).all())
            return {site.name: (site.schedule or "", last.get(site.id))
                    for site in s.scalars(select(Site).where(Site.enabled, Site.schedule.is_not(None)))}


JOB_OPTIONS: dict[str, Any] = {"coalesce": True, "max_instances": 1}


def _add(scheduler: BaseScheduler, jobs: Jobs, job_id: str, fn: Callable[[], Counts], trigger: BaseTrigger,
         grace_s: float, **kw: Any) -> None:
    scheduler.add_job(jobs.run, trigger, args=(job_id, fn), id=job_id, name=job_id, replace_existing=True,
                      misfire_grace_time=max(1, int(grace_s)), **JOB_OPTIONS, **kw)


def resync_sites(scheduler: BaseScheduler, jobs: Jobs, known: dict[str, str]) -> Counts:
    """Add, re-time or remove ``crawl:<site>`` jobs to match the sites table.

    ``known`` (site -> schedule) is what the scheduler holds now; updated in place. A site
    whose schedule cannot be read is reported and left unscheduled; the others go on."""
    now = datetime.now(timezone.utc)
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
            due = (last.replace(tzinfo=last.tzinfo or timezone.utc) + trigger.interval) if last else now
            first = now if name in jobs.recrawl else max(now, due)
        elif name in jobs.recrawl:
            first = now
        jobs.recrawl.discard(name)
        grace = trigger.interval.total_seconds() / 2 if isinstance(trigger, IntervalTrigger) else 3600
        kw = {"next_run_time": first} if first is not None else {}
        _add(scheduler, jobs, f"crawl:{name}", partial(jobs.crawl, name), trigger, grace, **kw)
        added += name not in known
        changed += name in known
        known[name] = schedule
    if bad:
        raise SchedulerError("; ".join(bad))
    return {"sites": len(known), "added": added, "changed": changed, "removed": removed}


def build(scheduler: BaseScheduler, jobs: Jobs) -> None:
    """Put every job on ``scheduler``; the stage jobs run once right at start-up."""
    config = jobs.config
    now = datetime.now(timezone.utc)
    known: dict[str, str] = {}
    resync = seconds(config, "resync_every")
    _add(scheduler, jobs, "resync", lambda: resync_sites(scheduler, jobs, known),
         IntervalTrigger(seconds=resync), resync, next_run_time=now)
    for job_id, key, fn in (("match", "match_every", jobs.match),
                            ("notices", "dispatch_every", jobs.notices),
                            ("verify", "verify_every", jobs.verify)):
        every = seconds(config, key)
        # Staggered a little so the first cycle runs in flow order.
        start = now + timedelta(seconds=1 + STAGES.index(job_id))
        _add(scheduler, jobs, job_id, fn, IntervalTrigger(seconds=every), every / 2, next_run_time=start)
    hour, minute = (int(x) for x in str(schedule_setting(config, "report_at")).split(":"))
    _add(scheduler, jobs, "report", jobs.report, CronTrigger(hour=hour, minute=minute, timezone=jobs.tz),
         6 * 3600)


def run_once(jobs: Jobs) -> list[str]:
    """Every stage once, in flow order (``vigie run --once``): every enabled site's crawl,
    match, notices, verify, report. Returns the jobs that failed."""
    with jobs.Session() as s:
        sites = list(s.scalars(select(Site.name).where(Site.enabled).order_by(Site.name)))
    steps: list[tuple[str, Callable[[], Counts]]] = [(f"crawl:{n}", partial(jobs.crawl, n)) for n in sites]
    steps += [("match", jobs.match), ("notices", jobs.notices), ("verify", jobs.verify), ("report", jobs.report)]
    failed = []
    for job_id, fn in steps:
        if jobs.stop.is_set():
            log_event("stopping", reason="signal", skipped=job_id)
            break
        row = run_job(jobs.Session, job_id, fn)
        if row.status != "ok":
            failed.append(f"{job_id}: {row.error}")
    return failed
