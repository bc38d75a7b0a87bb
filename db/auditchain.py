"""Hash chain over the audit log: a changed or deleted audit row is detected.

Every ``AuditLog`` row stores the hash of the row before it (``prev_hash``) and its own
(``row_hash`` = SHA-256 over ``prev_hash`` and the row's fields), set when it is flushed,
whoever adds it (the web app's ``webapp.actions.audit``, ``notices.build``). Rows are
chained in id order; on PostgreSQL a transaction-level advisory lock makes concurrent
writers take turns, SQLite serialises writers itself. ``verify_chain`` walks the log and
names every row whose hash or link does not hold. Rows written before the chain existed
(no hash) may only come first.

Cutting rows off the end leaves a valid (shorter) chain: the table alone cannot show it.
So the chain's head (``chain_head``: the last row's id and hash) is anchored outside it:
every daily report prints it (the mailed copy and the files are out of the database's
reach) and its archive row keeps it; ``verify_chain`` checks each anchor it is given
still holds. A cut made after the last report, or one made together with editing the
archived reports, is found only against a copy kept elsewhere (the mailed report).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from db.models import AuditLog

# Any constant: the advisory lock key of the audit chain on PostgreSQL.
_PG_LOCK_KEY = 0x56494741  # "VIGA"


def audit(session: Session, actor: str, action: str, object_type: str, object_id: int | None,
          before: dict[str, Any] | None, after: dict[str, Any] | None) -> AuditLog:
    """Add one audit-log row: who did what to which object, its state before and after.
    The row joins the hash chain when the session flushes (``_chain_new_rows``)."""
    row = AuditLog(actor=actor, action=action, object_type=object_type, object_id=object_id,
                   before=before, after=after)
    session.add(row)
    return row


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


def chain_head(session: Session) -> tuple[int, str] | None:
    """The id and hash of the chain's last row (None before any): what a report anchors."""
    row = session.execute(select(AuditLog.id, AuditLog.row_hash).where(AuditLog.row_hash.is_not(None))
                          .order_by(AuditLog.id.desc()).limit(1)).first()
    return (int(row[0]), str(row[1])) if row else None


def verify_chain(session: Session, anchors: Iterable[tuple[int, str, str]] = ()) -> list[str]:
    """Problems found in the audit chain, one line per broken row ([] when intact).

    ``anchors`` are heads recorded earlier, each (row id, hash, where it was recorded): a
    row that is gone or changed there means the log was cut or rewritten after it."""
    problems: list[str] = []
    for row_id, digest, where in anchors:
        now = session.get(AuditLog, row_id)
        if now is None or now.row_hash != digest:
            problems.append(f"audit row {row_id}, the head recorded in {where}, is "
                            f"{'gone' if now is None else 'changed'}: rows were cut from the end "
                            "of the log or rewritten")
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
