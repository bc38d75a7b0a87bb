"""Jobs into cluster mode's queue, from inside a transaction of ours.

The queue is procrastinate's ``procrastinate_jobs`` table (``cluster/`` runs it). A job
is inserted through the caller's SQLAlchemy session, so it is stored in the same
transaction as the row it is about (a rolled-back candidate leaves no job behind), and
duplicates are refused by procrastinate's own ``queueing_lock`` unique index (``ON
CONFLICT DO NOTHING``: a second enqueue of a job already waiting is a no-op). Here in
``db`` so that the crawl's pipeline can queue a match job with each candidate it stores
without depending on the cluster package.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session


def has_schema(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is not None


def queue_in_use(engine: Engine) -> bool:
    """Whether this database runs cluster mode (PostgreSQL with the job queue's schema):
    then the crawlers queue a match job with each pending candidate they store."""
    return engine.dialect.name == "postgresql" and has_schema(engine)


def defer(s: Session, task: str, queue: str, args: dict[str, Any], *, lock: str | None = None,
          queueing_lock: str | None = None) -> bool:
    """Queue one job in the session's transaction; False when an identical job (same
    ``queueing_lock``) is already waiting."""
    res = s.execute(
        text("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, args) "
             "VALUES (:q, :t, :l, :ql, CAST(:a AS jsonb)) ON CONFLICT DO NOTHING"),
        {"q": queue, "t": task, "l": lock, "ql": queueing_lock, "a": json.dumps(args)},
    )
    return bool(res.rowcount)


def defer_match(s: Session, candidate_ids: list[int]) -> int:
    """Queue a match job per candidate (the crawler's pipeline may call this in the
    transaction that stores the candidates); how many were queued."""
    return sum(defer(s, "vigie.match", "match", {"candidate_id": cid}, queueing_lock=f"match:{cid}")
               for cid in candidate_ids)
