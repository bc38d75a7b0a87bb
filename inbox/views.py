"""What staff are shown of the replies: a notice's timeline, the queue, the figures.

Read-only queries used by the web app, ``vigie status`` (through ``stages.ops``) and
``vigie inbox list``. Every text here comes from a hostile mail: callers escape it (the
web app's templates autoescape; the CLI prints it on one line).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    CounterNotice,
    CounterNoticeState,
    Host,
    InboxMessage,
    InboxState,
    Notice,
    NoticeStatus,
    ReplyKind,
)
from foundation.timeutil import as_utc


def thread_of(session: Session, notice: Notice) -> list[Notice]:
    """The notice and every notice sent after it about it (reminders, upstream, delisting)."""
    root = notice
    seen = {root.id}
    while root.parent_id and root.parent_id not in seen:
        parent = session.get(Notice, root.parent_id)
        if parent is None:
            break
        seen.add(parent.id)
        root = parent
    out = [root]
    frontier = [root.id]
    while frontier:
        children = list(session.scalars(select(Notice).where(Notice.parent_id.in_(frontier)).order_by(Notice.id)))
        children = [c for c in children if c.id not in seen]
        seen.update(c.id for c in children)
        out += children
        frontier = [c.id for c in children]
    return out


def timeline(session: Session, notice: Notice) -> list[dict[str, Any]]:
    """Every mail both ways of a notice's thread, oldest first: our notices (out) and the
    host's replies (in, with their reading), and the counter-notices opened."""
    notices = thread_of(session, notice)
    ids = [n.id for n in notices]
    events: list[dict[str, Any]] = []
    for n in notices:
        events.append({"at": as_utc(n.sent_at or n.created_at), "direction": "out", "notice_id": n.id,
                       "sent": n.sent_at is not None, "what": f"{n.kind} {n.status.value}", "to": n.recipient, "subject": n.subject,
                       "detail": n.last_error})
    for m in session.scalars(select(InboxMessage).where(InboxMessage.notice_id.in_(ids)).order_by(InboxMessage.id)):
        events.append({"at": as_utc(m.received_at), "direction": "in", "message": m, "notice_id": m.notice_id,
                       "what": "copy of our own mail" if m.rule == "our-own-mail" else m.kind.value,
                       "from": m.from_addr, "subject": m.subject,
                       "detail": m.reason, "confidence": m.confidence, "ticket": m.ticket,
                       "state": m.state.value, "threaded_by": m.threaded_by})
    for cn in session.scalars(select(CounterNotice).where(CounterNotice.notice_id.in_(ids)).order_by(CounterNotice.id)):
        events.append({"at": as_utc(cn.received_at), "direction": "case", "counter_notice": cn,
                       "notice_id": cn.notice_id, "what": f"counter-notice ({cn.regime}) {cn.state.value}",
                       "detail": putback_text(cn)})
    events.sort(key=lambda e: (e["at"] is None, e["at"] or datetime.min, e["direction"] != "out"))
    return events


def putback_text(cn: CounterNotice, today: date | None = None) -> str:
    if cn.regime != "dmca" or cn.putback_from is None:
        return ""
    text = f"put-back window {cn.putback_from.isoformat()} to {cn.putback_until.isoformat() if cn.putback_until else '?'}"
    if today is not None and cn.state is CounterNoticeState.OPEN:
        if today > (cn.putback_until or cn.putback_from):
            text += " (passed)"
        elif today >= cn.putback_from:
            text += " (open now)"
        else:
            text += f" (in {(cn.putback_from - today).days} days)"
    return text


def staff_queue(session: Session, limit: int = 500) -> list[InboxMessage]:
    return list(session.scalars(select(InboxMessage).where(InboxMessage.state == InboxState.STAFF)
                                .order_by(InboxMessage.received_at, InboxMessage.id).limit(limit)))


def open_counter_notices(session: Session) -> list[CounterNotice]:
    return list(session.scalars(select(CounterNotice).where(CounterNotice.state == CounterNoticeState.OPEN)
                                .order_by(CounterNotice.putback_from, CounterNotice.id)))


def replies_by_kind(session: Session, start: datetime | None = None, end: datetime | None = None) -> dict[str, int]:
    q = select(InboxMessage.kind, func.count()).group_by(InboxMessage.kind)
    if start is not None:
        q = q.where(InboxMessage.received_at >= start)
    if end is not None:
        q = q.where(InboxMessage.received_at < end)
    rows = dict(session.execute(q).all())
    return {k.value: int(rows.get(k, 0)) for k in ReplyKind}


def silent_hosts(session: Session, before: datetime | None = None) -> list[dict[str, Any]]:
    """Hosts sent notices (before ``before``) from whom no reply of any kind ever came."""
    # Every stored reply carries its host (its notice's, else the sender's domain's).
    answered = select(InboxMessage.host_id).where(InboxMessage.host_id.is_not(None))
    q = (select(Host.name, func.count(Notice.id), func.min(Notice.sent_at))
         .join(Notice, Notice.host_id == Host.id)
         .where(Notice.status == NoticeStatus.SENT, Notice.sent_at.is_not(None), Host.id.not_in(answered))
         .group_by(Host.name).order_by(func.count(Notice.id).desc(), Host.name))
    if before is not None:
        q = q.where(Notice.sent_at < before)
    return [{"host": name, "notices": int(n), "first_sent": as_utc(first)} for name, n, first in session.execute(q)]


def figures(session: Session) -> dict[str, int]:
    """The counts ``vigie status`` shows."""
    return {
        "inbox_for_staff": int(session.scalar(select(func.count()).select_from(InboxMessage)
                                              .where(InboxMessage.state == InboxState.STAFF)) or 0),
        "counter_notices_open": int(session.scalar(select(func.count()).select_from(CounterNotice)
                                                   .where(CounterNotice.state == CounterNoticeState.OPEN)) or 0),
        "hosts_never_answered": len(silent_hosts(session)),
    }
