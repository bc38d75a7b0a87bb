"""Operations: recording scheduled job runs, the structured job log, and ``vigie status``.

Every job the scheduler (``scheduler.py``) runs goes through :func:`run_job`: a
``job_runs`` row is written before the work starts (so a job killed mid-way still shows
as ``running`` with its start time) and completed after, and one JSON line per run goes
to the ``vigie.jobs`` logger (stderr, and ``[schedule].log_file`` when set).
:func:`collect_status` reads those rows back with the queue sizes and what is overdue.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    Candidate,
    CandidateStatus,
    CrawlRun,
    Decision,
    JobRun,
    Match,
    Notice,
    NoticeStatus,
    ReviewState,
    Site,
)
from foundation.config import Config
from foundation.schedules import late_reason
from inbox.views import figures as inbox_figures
from inbox.views import open_counter_notices, putback_text
from stages.context import Counts
from foundation.timeutil import as_utc, utc_now, zone

job_log = logging.getLogger("vigie.jobs")



def setup_job_log(log_file: str | None = None) -> list[logging.Handler]:
    """Send job lines to stderr (and ``log_file``): the message alone, it is already JSON."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        from logging.handlers import WatchedFileHandler

        # Watched: logrotate may move the file away under a long-running scheduler.
        handlers.append(WatchedFileHandler(log_file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter("%(message)s"))
        job_log.addHandler(h)
    job_log.setLevel(logging.INFO)
    job_log.propagate = False
    return handlers


def log_event(event: str, **fields: Any) -> None:
    job_log.info(json.dumps({"ts": utc_now().isoformat(timespec="seconds"), "event": event, **fields},
                            default=str, ensure_ascii=False))


def run_job(Session: sessionmaker[Session], job: str, fn: Callable[[], Counts]) -> JobRun:
    """Run ``fn`` as job ``job``: record it in ``job_runs`` and log one line.

    An exception in ``fn`` is recorded and logged, not raised: one failing stage must not
    stop the scheduler (the next run tries again)."""
    with Session.begin() as s:
        row = JobRun(job=job, status="running", started_at=utc_now(), pid=os.getpid(),
                     host=socket.gethostname()[:255], counts={})
        s.add(row)
        s.flush()
        run_id = row.id
    t0 = time.monotonic()
    status, error, counts = "ok", None, {}
    try:
        counts = dict(fn() or {})
    except Exception as exc:  # noqa: BLE001 - recorded below; the scheduler goes on
        status, error = "error", " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]
    duration = round(time.monotonic() - t0, 3)
    with Session.begin() as s:
        done = s.get(JobRun, run_id)
        assert done is not None
        done.status, done.error, done.counts = status, error, counts
        done.finished_at, done.duration_s = utc_now(), duration
    log_event("job", job=job, status=status, duration_s=duration, counts=counts, error=error)
    return done


def close_interrupted(Session: sessionmaker[Session]) -> list[str]:
    """Mark ``interrupted`` the job runs a dead scheduler left ``running``; their job names.

    Only called holding the scheduler lock: every writer of ``job_runs`` holds it, so a
    run still ``running`` then belongs to a process that is gone."""
    with Session.begin() as s:
        rows = list(s.scalars(select(JobRun).where(JobRun.status == "running")))
        for row in rows:
            row.status, row.error = "interrupted", "the scheduler stopped before this run finished"
        return sorted({row.job for row in rows})


# --------------------------------------------------------------------------- status


@dataclass
class Status:
    scheduler: dict[str, Any] | None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    queues: dict[str, int] = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)
    # Notices a human must act on: submission tasks, drafts, approvals, failures.
    waiting: list[str] = field(default_factory=list)
    # Matches nobody may notify to a host, and why (notices.build.record_withheld).
    withheld: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def last_runs(s: Session) -> list[JobRun]:
    latest = select(func.max(JobRun.id)).group_by(JobRun.job)
    return list(s.scalars(select(JobRun).where(JobRun.id.in_(latest)).order_by(JobRun.job)))


def queue_sizes(s: Session) -> dict[str, int]:
    def count(q: Any) -> int:
        return int(s.scalar(q) or 0)

    cands = dict(s.execute(select(Candidate.status, func.count()).group_by(Candidate.status)).all())
    notices = dict(s.execute(select(Notice.status, func.count()).group_by(Notice.status)).all())
    return {
        "candidates_pending": cands.get(CandidateStatus.PENDING, 0),
        "candidates_matching": cands.get(CandidateStatus.MATCHING, 0),
        # Film pages whose player needs the browser resolver, crawled where none ran.
        "candidates_needs_browser": cands.get(CandidateStatus.NEEDS_BROWSER, 0),
        "matches_for_review": count(select(func.count()).select_from(Match).where(
            Match.decision == Decision.REVIEW, Match.review == ReviewState.NONE)),
        "notices_queued": notices.get(NoticeStatus.QUEUED, 0),
        "notices_awaiting_approval": notices.get(NoticeStatus.AWAITING_APPROVAL, 0),
        "notices_in_doubt": notices.get(NoticeStatus.IN_DOUBT, 0),
        "notices_failed": notices.get(NoticeStatus.FAILED, 0),
        # Drafts: submission tasks of web-form/API hosts, and notices with no contact.
        "notices_draft": notices.get(NoticeStatus.DRAFT, 0),
        # The hosts' replies (inbox): mail waiting for staff, counter-notices undecided.
        **inbox_figures(s),
    }


WAITING_LABELS = {"tasks": "submission task: submit by hand, then `vigie notices submitted ID --ticket REF`",
                  "drafts": "draft: `vigie notices retry ID` once the host has a contact",
                  "awaiting": "awaiting approval: `vigie notices approve ID`",
                  "failed": "failed: `vigie notices retry ID`"}


def waiting_notices(s: Session, limit: int = 50) -> list[str]:
    """One line per notice a human must act on, oldest first within each kind."""
    from notices.views import pending_work

    lines = []
    for kind, rows in pending_work(s).items():
        for n in rows[:limit]:
            why = f" ({n.last_error})" if n.last_error and kind in ("drafts", "failed") else ""
            lines.append(f"notice {n.id} {n.kind} to {n.host.name}, {len(n.items)} URL(s): "
                         f"{WAITING_LABELS[kind]}{why}")
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more {kind}")
    return lines


def overdue_sites(s: Session, config: Config, now: datetime) -> list[str]:
    """Enabled sites with a schedule whose last crawl is older than twice that schedule."""

    last = dict(s.execute(select(CrawlRun.site_id, func.max(CrawlRun.started_at))
                          .group_by(CrawlRun.site_id)).all())
    out = []
    for site in s.scalars(select(Site).where(Site.enabled, Site.schedule.is_not(None)).order_by(Site.name)):
        why = late_reason(site.schedule or "", as_utc(last.get(site.id)), now, zone(config))
        if why:
            out.append(f"site {site.name}: {why}")
    return out


def counter_notices_due(s: Session, now: datetime) -> list[str]:
    """Open DMCA counter-notices whose put-back window has begun: staff must decide (a
    court action filed, or accepted) before the host puts the content back."""
    today = now.date()
    return [f"counter-notice {cn.id} (notice {cn.notice_id}): undecided, {putback_text(cn, today)}"
            for cn in open_counter_notices(s) if cn.putback_from is not None and cn.putback_from <= today]


def collect_status(s: Session, config: Config, *, stale_after_s: float, now: datetime | None = None,
                   intervals: dict[str, float] | None = None) -> Status:
    """What ``vigie status`` shows. ``intervals`` (job -> seconds between runs) lets it say
    which of a running scheduler's periodic jobs has not run for twice its interval."""
    from db.models import SchedulerLock
    from db.rights import withheld_matches
    from stages.runlock import LOCK_NAME, is_stale

    now = now or utc_now()
    lock = s.get(SchedulerLock, LOCK_NAME)
    sched = None
    if lock is not None:
        beat = as_utc(lock.heartbeat_at)
        sched = {"pid": lock.pid, "host": lock.host, "since": as_utc(lock.acquired_at).isoformat(),  # type: ignore[union-attr]
                 "heartbeat_s_ago": round((now - beat).total_seconds(), 1),  # type: ignore[operator]
                 "stale": is_stale(lock, stale_after_s, now)}
    jobs = [{"job": r.job, "status": r.status, "started_at": as_utc(r.started_at).isoformat(),  # type: ignore[union-attr]
             "duration_s": r.duration_s, "counts": r.counts, "error": r.error} for r in last_runs(s)]
    overdue = overdue_sites(s, config, now) + counter_notices_due(s, now)
    if sched is None:
        overdue.insert(0, "scheduler: not running (start it with `vigie run`)")
    elif sched["stale"]:
        overdue.insert(0, f"scheduler: pid {lock.pid} on {lock.host} stopped sending heartbeats "  # type: ignore[union-attr]
                          f"{sched['heartbeat_s_ago']:.0f} s ago")
    elif lock is not None:
        last = {r.job: r for r in last_runs(s)}
        for job, every in sorted((intervals or {}).items()):
            run = last.get(job)
            if run is not None and run.status == "running":
                continue  # a long run in progress is not a missed one
            since = max(filter(None, [as_utc(lock.acquired_at), as_utc(run.started_at) if run else None]))
            if (now - since).total_seconds() > 2 * every:
                overdue.append(f"job {job}: no run for {(now - since).total_seconds() / 60:.0f} min, "
                               f"scheduled every {every / 60:g} min")
    return Status(scheduler=sched, jobs=jobs, queues=queue_sizes(s), overdue=overdue, waiting=waiting_notices(s),
                  withheld=withheld_matches(s))
