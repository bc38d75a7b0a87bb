"""Retention: evidence older than ``[evidence] keep_days`` goes, unless a case cites it.

An item is kept past its time while its candidate is part of an open case (a notice not
yet sent or settled, or a notified URL not yet taken down) or while a pinned case file
(``vigie evidence export --pin``) includes it. A purged item keeps its row (what it was,
its SHA-256, its manifest: the stamped manifests still prove what existed) with
``purged_at`` set; its file goes when no kept item shares it (a blob, a daily WARC
file). Every purge is written to the audit log (``db.auditchain``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.models import (AuditLog, EvidenceExport, EvidenceItem, ItemState, Match, Notice, NoticeItem,
                       NoticeStatus)
from evidence.store import EvidenceStore

# A notice in one of these states is still in progress: its evidence is needed.
OPEN_NOTICE = (NoticeStatus.DRAFT, NoticeStatus.AWAITING_APPROVAL, NoticeStatus.QUEUED,
               NoticeStatus.SENDING, NoticeStatus.IN_DOUBT)


@dataclass
class PurgeResult:
    purged: int = 0
    kept_for_cases: int = 0
    files_deleted: list[str] = field(default_factory=list)


def open_case_candidates(s: Session) -> set[int]:
    """Candidates an open case cites: an open notice, or a sent one not yet taken down."""
    rows = s.execute(
        select(Match.candidate_id).join(NoticeItem, NoticeItem.match_id == Match.id)
        .join(Notice, NoticeItem.notice_id == Notice.id)
        .where(or_(Notice.status.in_(OPEN_NOTICE),
                   (Notice.status == NoticeStatus.SENT) & (NoticeItem.state != ItemState.REMOVED))))
    return {r[0] for r in rows}


def pinned_items(s: Session) -> set[int]:
    out: set[int] = set()
    for ids in s.scalars(select(EvidenceExport.item_ids).where(EvidenceExport.pinned)):
        out.update(int(i) for i in ids or [])
    return out


def purge(s: Session, store: EvidenceStore, keep_days: int, now: datetime, actor: str = "evidence") -> PurgeResult:
    """Mark what retention allows as purged, in the caller's transaction; the files to
    delete are in ``files_deleted``: the caller deletes them (``delete_files``) once that
    transaction committed, so a failed commit leaves files, never kept rows without one."""
    result = PurgeResult()
    cutoff = now - timedelta(days=keep_days)
    old = list(s.scalars(select(EvidenceItem).where(EvidenceItem.purged_at.is_(None),
                                                    EvidenceItem.captured_at < cutoff)))
    if not old:
        return result
    cases, pinned = open_case_candidates(s), pinned_items(s)
    going = []
    for item in old:
        if item.id in pinned or (item.candidate_id is not None and item.candidate_id in cases):
            result.kept_for_cases += 1
        else:
            going.append(item)
    paths = {i.path for i in going}
    still_used: dict[str, int] = defaultdict(int)
    going_ids = {i.id for i in going}
    for item_id, path in s.execute(select(EvidenceItem.id, EvidenceItem.path).where(
            EvidenceItem.path.in_(paths), EvidenceItem.purged_at.is_(None))):
        if item_id not in going_ids:
            still_used[path] += 1
    for item in going:
        item.purged_at = now
    result.purged = len(going)
    result.files_deleted = sorted(p for p in paths if not still_used[p])
    s.add(AuditLog(actor=actor, action="evidence.purge", object_type="evidence", object_id=None,
                   before={"keep_days": keep_days, "older_than": cutoff.isoformat()},
                   after={"purged": result.purged, "kept_for_open_cases": result.kept_for_cases,
                          "items": sorted(going_ids)[:5000], "files": result.files_deleted[:5000]}))
    s.flush()
    return result


def delete_files(store: EvidenceStore, paths: list[str]) -> list[str]:
    """Delete purged files; the ones that could not be deleted (said, not raised)."""
    failed = []
    for rel in paths:
        try:
            store.path(rel).unlink(missing_ok=True)
        except OSError as exc:
            failed.append(f"{rel}: {exc.strerror}")
    return failed
