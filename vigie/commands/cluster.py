"""``vigie worker`` and ``vigie enqueue``: cluster mode's verbs (PostgreSQL only).

A worker runs the jobs of some or all queues (``cluster.queue.QUEUES``); ``enqueue``
queues a stage's work by hand; ``vigie worker --status`` prints queue depths, running and
stalled jobs per queue, and the workers' heartbeats.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from vigie.cli import State, pass_state
from foundation.errors import ClusterError

STAGES = ("crawl", "match", "notices", "verify", "inbox", "report", "evidence", "index", "tick", "retry-stalled")


def _queues(values: tuple[str, ...]) -> list[str] | None:
    from cluster.queue import QUEUES

    queues = [q.strip() for v in values for q in v.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)} (known: {', '.join(QUEUES)})")
    return queues or None


@click.command("worker")
@click.option("--queues", "-q", multiple=True, metavar="Q[,Q]",
              help="Queues to work on (default: all): crawl, match, notices, verify, inbox, report, evidence, "
                   "index, maintenance.")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Jobs run at once by this worker.")
@click.option("--name", help="Worker name in the logs.")
@click.option("--status", "show_status", is_flag=True, help="Print queue depths and workers, then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --status: one JSON object.")
@pass_state
def worker(state: State, queues: tuple[str, ...], concurrency: int, name: str | None,
           show_status: bool, as_json: bool) -> None:
    """Run a cluster worker (PostgreSQL): jobs of every stage, periodic tasks included."""
    from cluster.queue import require_postgres

    try:
        require_postgres(state.db_url or "")
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    if show_status:
        _status(state, as_json)
        return
    from cluster.app import run_worker
    from stages.ops import setup_job_log

    setup_job_log()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        run_worker(state.db_url or "", state.config, queues=_queues(queues), concurrency=concurrency, name=name)
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None


def _status(state: State, as_json: bool) -> None:
    from cluster.queue import cluster_status

    try:
        with state.session() as s:
            st = cluster_status(s, float(state.config.get("cluster", "stalled_after_s")))
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(st.as_json()))
        return
    click.echo(f"{'queue':<12} {'todo':>6} {'doing':>6} {'stalled':>8} {'failed':>7} {'done':>7}")
    for q in st.queues:
        click.echo(f"{q.queue:<12} {q.todo:>6} {q.doing:>6} {q.stalled:>8} {q.failed:>7} {q.succeeded:>7}")
    click.echo(f"workers: {len(st.workers)}")
    for w in st.workers:
        click.echo(f"  worker {w['id']}: last heartbeat {w['silent_s']:.0f} s ago")


def cluster_depths(state: State) -> dict[str, Any] | None:
    """Cluster mode's queue depths for ``vigie status``; None on SQLite or when no worker
    ever created the job queue."""
    from cluster.queue import cluster_status, require_postgres
    from db.session import resolve_url

    try:
        require_postgres(resolve_url(state.db_url))
        # Procrastinate (cluster.app) only on PostgreSQL, where there can be a queue.

        with state.session() as s:
            return cluster_status(s, float(state.config.get("cluster", "stalled_after_s"))).as_json()
    except ClusterError:
        return None


@click.command("enqueue")
@click.argument("stage", type=click.Choice(STAGES))
@click.argument("args", nargs=-1)
@pass_state
def enqueue(state: State, stage: str, args: tuple[str, ...]) -> None:
    """Queue a stage's work by hand: crawl SITE..., match [CANDIDATE_ID...] (default:
    every pending candidate), notices, verify, inbox, report, evidence, index, tick;
    retry-stalled runs at once."""
    from cluster.app import build_app, defer_crawl, retry_stalled_jobs
    from cluster.queue import apply_schema, enqueue_pending, require_postgres
    from db.jobqueue import defer, defer_match

    try:
        require_postgres(state.db_url or "")
        if stage == "crawl" and not args:
            raise ClusterError("enqueue crawl needs one or more site names")
        ids = []
        if stage == "match":
            try:
                ids = [int(a) for a in args]
            except ValueError:
                raise ClusterError("enqueue match takes candidate ids (integers)") from None
        elif args and stage != "crawl":
            raise ClusterError(f"enqueue {stage} takes no arguments")
        if stage == "retry-stalled":
            import asyncio

            app, rt = build_app(state.db_url or "", state.config)

            async def go() -> list[int]:
                async with app.open_async():
                    return await retry_stalled_jobs(app, float(state.config.get("cluster", "stalled_after_s")))

            click.echo(f"retried {len(asyncio.run(go()))} stalled job(s)")
            rt.engine.dispose()
            return
        with state.session() as s:
            assert s.bind is not None
            apply_schema(s.bind.engine)  # type: ignore[union-attr]
        with state.session() as s:
            if stage == "crawl":
                from sqlalchemy import select

                from db.models import Site

                unknown = sorted(set(args) - set(s.scalars(select(Site.name).where(Site.name.in_(args)))))
                if unknown:
                    raise ClusterError(f"unknown site(s): {', '.join(unknown)}")
                n = sum(defer_crawl(s, site) for site in args)
            elif stage == "match":
                n = defer_match(s, ids) if ids else enqueue_pending(s)
            else:
                queue = {"tick": "maintenance"}.get(stage, stage)
                n = int(defer(s, f"vigie.{stage}", queue, {}, queueing_lock=f"vigie.{stage}"))
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"queued {n} {stage} job(s)")


COMMANDS: list[click.Command] = [worker, enqueue]
