"""Which notice a reply answers.

In order: the Message-IDs it names (``In-Reply-To``, ``References``, and for a bounce the
returned message's own Message-ID), then our reference ``VIGIE-XXXXXXXXXXXX`` (the
subject of every notice carries it, ``notices.build.make_notice``; it is the first 12 hex
digits of the notice's Message-ID) in the subject or the text, then the notified URLs the
mail quotes. A mail whose URLs are spread over several notices, or none, is not tied:
staff file it by hand. Nothing is guessed from the sender alone.
"""

from __future__ import annotations

import re
from collections import Counter

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from db.models import Host, Notice, NoticeItem
from inbox.parse import ParsedMail

REFERENCE = re.compile(r"\bVIGIE-([0-9A-F]{12})\b", re.I)
_URL = re.compile(r"https?://[^\s<>\"'\])}]{3,2000}", re.I)
MAX_URLS = 200


def reference_of(notice: Notice) -> str | None:
    """The ``VIGIE-...`` reference of a notice, as its subject shows it."""
    mid = notice.message_id or ""
    return "VIGIE-" + mid[7:19].upper() if mid.startswith("<vigie.") else None


def urls_in(text: str) -> list[str]:
    out: list[str] = []
    for m in _URL.finditer(text[:500_000]):
        url = m.group(0).rstrip(".,;:!?")
        if url not in out:
            out.append(url)
        if len(out) >= MAX_URLS:
            break
    return out


def find_notice(session: Session, mail: ParsedMail) -> tuple[Notice | None, str | None]:
    """(the notice ``mail`` answers, how it was found) or (None, None)."""
    ids = [*mail.in_reply_to, *mail.references, *mail.returned_ids]
    if ids:
        found = session.scalars(select(Notice).where(Notice.message_id.in_(ids[:200]))
                                .order_by(Notice.id.desc())).first()
        if found is not None:
            # The mail's own In-Reply-To first: a reply to a reminder belongs to the reminder.
            direct = next((n for mid in mail.in_reply_to
                           for n in [session.scalar(select(Notice).where(Notice.message_id == mid))] if n), None)
            how = "returned-message" if mail.dsn is not None or found.message_id in mail.returned_ids \
                and not mail.in_reply_to else "in-reply-to"
            return direct or found, how
    refs = {m.upper() for m in REFERENCE.findall(f"{mail.subject}\n{mail.text}\n{mail.returned_text}")}
    for ref in sorted(refs)[:20]:
        n = session.scalars(select(Notice).where(Notice.message_id.like(f"<vigie.{ref.lower()}%"))
                            .order_by(Notice.id)).first()
        if n is not None:
            return n, "reference"
    urls = urls_in(f"{mail.text}\n{mail.returned_text}")
    if urls:
        rows = session.execute(select(NoticeItem.notice_id, NoticeItem.url)
                               .where(NoticeItem.url.in_(urls))).all()
        if rows:
            per_notice = Counter(nid for nid, _ in rows)
            best = per_notice.most_common()
            top = [nid for nid, c in best if c == best[0][1]]
            notices = [session.get(Notice, nid) for nid in top]
            first_level = [n for n in notices if n is not None and n.kind == "notice"]
            # Several notices quoted equally: one first-level notice (the others are its
            # reminders and escalations) is still an answer; so is the one sent to the
            # sender's own domain (a page and its video on two hosts: both were notified).
            if len(first_level) > 1 and mail.from_addr:
                domain = mail.from_addr.rsplit("@", 1)[1]
                own = [n for n in first_level
                       if (n.recipient or "").lower().endswith("@" + domain)]
                first_level = own if len(own) == 1 else first_level
            if len(first_level) == 1:
                return first_level[0], "url"
            if len(notices) == 1 and notices[0] is not None:
                return notices[0], "url"
    return None, None


def host_of_sender(session: Session, sender: str | None) -> Host | None:
    """The host whose abuse contact is at the sender's domain (for "hosts that answer")."""
    if not sender or "@" not in sender:
        return None
    domain = sender.rsplit("@", 1)[1].lower()
    return session.scalars(select(Host).where(or_(func.lower(Host.abuse_contact) == sender.lower(),
                                                  func.lower(Host.abuse_contact).like(f"%@{domain}")))
                           .order_by(Host.id)).first()
