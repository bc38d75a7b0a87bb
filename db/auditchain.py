"""Hash chain over the audit log: a changed or deleted audit row is detected.

Every ``AuditLog`` row stores the hash of the row before it (``prev_hash``) and its own
(``row_hash`` = SHA-256 over ``prev_hash`` and the row's fields), set when it is flushed,
whoever adds it (the web app's ``webapp.actions.audit``, ``notices.build``). Rows are
chained in id order; on PostgreSQL a transaction-level advisory lock makes concurrent
writers take turns, SQLite serialises writers itself. ``verify_chain`` walks the log and
names every row whose hash or link does not hold. Rows written before the chain existed
(no hash) may only come first. Cutting rows off the end is not detectable from the table
alone: keep the last hash somewhere else (the daily report) for that.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from db.models import AuditLog

# Any constant: the advisory lock key of the audit chain on PostgreSQL.
_PG_LOCK_KEY = 0x56494741  # "VIGA"


def _at(dt: datetime | None) -> str:
    if dt is None:
        return ""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.isoformat(timespec="microseconds")


def row_hash(prev_hash: str, row: AuditLog) -> str:
    fields: dict[str, Any] = {
        "at": _at(row.at), "actor": row.actor, "action": row.action, "object_type": row.object_type,
        "object_id": row.object_id, "before": row.before, "after": row.after,
    }
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}\n{blob}".encode()).hexdigest()


@event.listens_for(Session, "before_flush")
def _chain_new_rows(session: Session, flush_context: Any, instances: Any) -> None:
    new = [o for o in session.new if isinstance(o, AuditLog)]
    if not new:
        return
    # Inserted in the order they were added: chain them in that order.
    new.sort(key=lambda o: o._sa_instance_state.insert_order)  # type: ignore[attr-defined]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    prev = conn.execute(select(AuditLog.row_hash).where(AuditLog.row_hash.is_not(None))
                        .order_by(AuditLog.id.desc()).limit(1)).scalar() or ""
    for row in new:
        if row.at is None:
            row.at = datetime.now(timezone.utc)  # set here, since the hash covers it
        row.prev_hash = prev
        row.row_hash = prev = row_hash(prev, row)


def verify_chain(session: Session) -> list[str]:
    """Problems found in the audit chain, one line per broken row ([] when intact)."""
    problems: list[str] = []
    prev: str | None = None
    for row in session.scalars(select(AuditLog).order_by(AuditLog.id)):
        if row.row_hash is None:
            if prev is not None:
                problems.append(f"audit row {row.id}: no hash after the chain started (inserted by hand?)")
            continue
        if prev is not None and row.prev_hash != prev:
            problems.append(f"audit row {row.id}: does not follow the row before it (a row was deleted "
                            "or inserted)")
        if row_hash(row.prev_hash or "", row) != row.row_hash:
            problems.append(f"audit row {row.id}: contents changed since it was written")
        prev = row.row_hash
    return problems
