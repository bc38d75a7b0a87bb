"""What waits for a human among the notices: read-only queries, no rendering.

Kept apart from ``notices.workflow`` (which builds and renders notices, and so loads
the templates) so that ``vigie status`` and the review app's lists read the queue
without paying for what they do not use.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Notice, NoticeStatus


def is_submission_task(notice: Notice) -> bool:
    """A notice staff must submit by hand: a draft for a host without automatic sender."""
    return notice.status is NoticeStatus.DRAFT and notice.host.channel.by_hand


def pending_work(session: Session) -> dict[str, list[Notice]]:
    """What waits for a human, by kind: submission tasks, drafts without a contact,
    notices awaiting approval, failed notices (``vigie status``, the review app)."""
    rows = list(session.scalars(select(Notice).where(Notice.status.in_(
        (NoticeStatus.DRAFT, NoticeStatus.AWAITING_APPROVAL, NoticeStatus.FAILED))).order_by(Notice.id)))
    out: dict[str, list[Notice]] = {"tasks": [], "drafts": [], "awaiting": [], "failed": []}
    for n in rows:
        if n.status is NoticeStatus.DRAFT:
            out["tasks" if is_submission_task(n) else "drafts"].append(n)
        elif n.status is NoticeStatus.AWAITING_APPROVAL:
            out["awaiting"].append(n)
        else:
            out["failed"].append(n)
    return out
