"""Operations verbs: ``vigie run`` (the scheduler), ``vigie status``, ``vigie config check``.

``run`` holds the database's scheduler lock (``stages.runlock``) for its whole life,
frees candidates a dead matcher left claimed, then runs ``scheduler.build``'s jobs on an
APScheduler ``BackgroundScheduler`` until SIGTERM/SIGINT, when it stops taking new runs,
waits for the ones in progress (``shutdown(wait=True)``) and releases the lock.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType
from typing import Any

import click

from vigie.cli import State, pass_state
from foundation.errors import SchedulerError


@click.command("run")
@click.option("--once", is_flag=True,
              help="Run every stage once in flow order (crawl, match, notices, verify, report) and exit.")
@pass_state
def run(state: State, once: bool) -> None:
    """The scheduler: every stage on its schedule, until SIGTERM or Ctrl-C."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler import Jobs, build, run_once, seconds
    from stages.context import Context
    from stages.match import release_claims
    from stages.ops import close_interrupted, job_log, log_event, setup_job_log
    from stages.runlock import RunLock, describe

    config = state.config
    lost = threading.Event()
    ctx: Context | None = None

    def on_lost() -> None:
        lost.set()
        stop.set()

    # Handlers first: a SIGTERM that arrives while starting up still means a clean stop.
    stop = threading.Event()
    previous = {sig: signal.signal(sig, _stopper(stop)) for sig in (signal.SIGTERM, signal.SIGINT)}
    handlers = setup_job_log(config.get("schedule", "log_file"))
    failed: list[str] = []
    try:
        ctx = Context.open(state.db_url, config)
        ctx.stop = stop
        lock = RunLock(ctx.engine, stale_after_s=seconds(config, "lock_stale_after"), on_lost=on_lost)
        lock.acquire()
        try:
            interrupted = close_interrupted(ctx.Session)
            log_event("started", pid=os.getpid(), mode="once" if once else "scheduler",
                      released_claims=release_claims(ctx.Session), interrupted=interrupted,
                      took_over=describe(lock.took_over) if lock.took_over else None)
            jobs = Jobs(ctx, recrawl={j.split(":", 1)[1] for j in interrupted if j.startswith("crawl:")})
            if once:
                failed = run_once(jobs)
            elif not stop.is_set():
                sched = BackgroundScheduler(timezone=jobs.tz)
                build(sched, jobs)
                sched.start()
                while not stop.wait(1.0):
                    pass
                log_event("stopping", pid=os.getpid())
                sched.shutdown(wait=True)
        finally:
            lock.release()
        log_event("stopped", pid=os.getpid())
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if ctx is not None:
            ctx.close()
        for h in handlers:
            job_log.removeHandler(h)
            h.close()
    if lost.is_set():
        raise SchedulerError("the scheduler lock was lost (taken over by another process, or its "
                             "database connection dropped); stopped")
    if once and stop.is_set():
        raise SchedulerError("stopped by a signal before every stage ran")
    if once and failed:
        raise SchedulerError(f"{len(failed)} job(s) failed: " + "; ".join(failed))


def _stopper(stop: threading.Event) -> Any:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return handler


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Last run of each job, queue sizes, anything overdue, and the notices waiting for
    staff (submission tasks of web-form/API hosts, drafts, approvals, failed notices)."""
    from stages.ops import collect_status
    from stages.table import job_intervals, seconds

    with state.session() as s:
        st = collect_status(s, state.config, stale_after_s=seconds(state.config, "lock_stale_after"),
                            intervals=job_intervals(state.config))
    from vigie.commands.cluster import cluster_depths

    cluster = cluster_depths(state)  # cluster mode's job queues; None without them
    if as_json:
        click.echo(json.dumps({**st.as_json(), **({"cluster": cluster} if cluster else {})}, ensure_ascii=False))
        return
    sch = st.scheduler
    if sch is None:
        click.echo("scheduler: not running")
    else:
        state_word = "STALE" if sch["stale"] else "running"
        click.echo(f"scheduler: {state_word}, pid {sch['pid']} on {sch['host']} since {sch['since']}, "
                   f"heartbeat {sch['heartbeat_s_ago']:.0f} s ago")
    click.echo("jobs:" if st.jobs else "jobs: none has run yet")
    for j in st.jobs:
        figures = " ".join(f"{k}={v}" for k, v in (j["counts"] or {}).items())
        dur = f"{j['duration_s']:.1f} s" if j["duration_s"] is not None else "-"
        click.echo(f"  {j['job']:<24} {j['status']:<7} {j['started_at']}  {dur:>8}  {figures}")
        if j["error"]:
            click.echo(f"  {'':<24} error: {j['error']}")
    click.echo("queues: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in st.queues.items()))
    click.echo("overdue:" if st.overdue else "overdue: nothing")
    for line in st.overdue:
        click.echo(f"  {line}")
    click.echo("waiting for staff:" if st.waiting else "waiting for staff: nothing")
    for line in st.waiting:
        click.echo(f"  {line}")
    if st.withheld:
        click.echo("not notified (nobody may notify; fix the rights or the mandate):")
    for w in st.withheld:
        click.echo(f"  match {w['match_id']} to {w['host']}: {w['reason']}")
    for q in (cluster or {}).get("queues", []):
        click.echo(f"job queue {q['queue']}: todo {q['todo']}, doing {q['doing']}, stalled {q['stalled']}, "
                   f"failed {q['failed']}")


@click.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@pass_state
def config_check(state: State, file: str | None) -> None:
    """Validate FILE (default: --config, else ./vigie.toml): keys, types and values."""
    from foundation.config import DEFAULT_FILE, load_config

    path = file or state.config.path or DEFAULT_FILE
    load_config(path)  # explicit: a missing file is an error here; every key's type and range
    click.echo(f"{path}: ok")


COMMANDS: list[click.Command] = [run, status, config_group]
