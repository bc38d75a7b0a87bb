"""The job queue in the database: its schema, the pending candidates' jobs, depths.

Jobs are rows of procrastinate's ``procrastinate_jobs`` table, inserted in the caller's
transaction by ``db.jobqueue`` (``defer``, ``defer_match``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from db.models import Candidate, CandidateStatus
from db.jobqueue import defer_match
from db.session import normalise_url
from foundation.errors import ClusterError

# Queue names, one per stage; ``vigie worker --queues`` takes any subset.
QUEUES = ("crawl", "match", "notices", "verify", "inbox", "report", "evidence", "index", "maintenance")
# Key of the advisory lock that serialises schema application between workers starting
# at the same time (any constant; it only has to be the same in every process).
_SCHEMA_LOCK = 0x76696769


def require_postgres(db_url: str) -> str:
    """The libpq connection string of ``db_url``; ClusterError when it is not PostgreSQL."""
    url = make_url(normalise_url(db_url))
    if url.get_backend_name() != "postgresql":
        raise ClusterError(f"cluster mode needs PostgreSQL (this database is {url.get_backend_name()}); "
                           "use `vigie run` on one machine")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)






def apply_schema(engine: Engine) -> bool:
    """Create procrastinate's tables and functions in the database's current schema
    (the first of ``search_path``) unless they exist. True when they were created."""
    from procrastinate.schema import SchemaManager

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        if conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is not None:
            return False
        # Straight to the driver: the schema holds literal "%" that a parameterised
        # execute would read as placeholders.
        cur = conn.connection.cursor()
        cur.execute(SchemaManager.get_schema())
        cur.close()
    return True






def enqueue_pending(s: Session) -> int:
    """Queue a match job for each pending candidate that has none waiting or running."""
    busy = set(s.scalars(text("SELECT queueing_lock FROM procrastinate_jobs "
                              "WHERE task_name = 'vigie.match' AND status IN ('todo', 'doing')")))
    ids = [cid for cid in s.scalars(select(Candidate.id).where(Candidate.status == CandidateStatus.PENDING)
                                    .order_by(Candidate.id)) if f"match:{cid}" not in busy]
    return defer_match(s, ids)


@dataclass
class QueueDepth:
    queue: str
    todo: int = 0
    doing: int = 0
    stalled: int = 0
    failed: int = 0
    succeeded: int = 0


@dataclass
class ClusterStatus:
    queues: list[QueueDepth] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"queues": [q.__dict__ for q in self.queues], "workers": self.workers}


def cluster_status(s: Session, stalled_after_s: float) -> ClusterStatus:
    """Jobs per queue and state; ``stalled`` are running jobs whose worker is gone or
    silent for ``stalled_after_s`` (what ``retry_stalled`` would put back)."""
    if s.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None:
        raise ClusterError("the job queue's schema is missing: start a `vigie worker` once")
    depth = {q: QueueDepth(q) for q in QUEUES}
    for queue, status, n in s.execute(text(
            "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2")):
        d = depth.setdefault(queue, QueueDepth(queue))
        if hasattr(d, status):
            setattr(d, status, n)
    for queue, n in s.execute(text(
            "SELECT j.queue_name, count(*) FROM procrastinate_jobs j "
            "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id WHERE j.status = 'doing' "
            "AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => :s)) GROUP BY 1"),
            {"s": stalled_after_s}):
        depth[queue].stalled = n
    workers = [{"id": i, "last_heartbeat": hb.isoformat(), "silent_s": round(float(silent), 1)}
               for i, hb, silent in s.execute(text(
                   "SELECT id, last_heartbeat, extract(epoch FROM now() - last_heartbeat) "
                   "FROM procrastinate_workers ORDER BY id"))]
    return ClusterStatus(queues=list(depth.values()), workers=workers)
