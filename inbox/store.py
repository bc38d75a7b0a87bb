"""Storing each mail once, reading it, and applying what a sure reading means.

``ingest`` is called for every mail a source delivers (IMAP, maildir, mbox). It stores the
raw bytes first (``InboxMessage``), whatever happens next: the same bytes are stored once
(SHA-256), and so is a copy of a stored mail delivered again with other transport headers
(same Message-ID, sender and subject). Then the mail is parsed (``inbox.parse``), tied to
its notice (``inbox.thread``) and read (``inbox.classify``).

A reading at or above ``[inbox] min_confidence`` on a mail tied to a notice is applied:

* bounce: the notice becomes ``failed`` with the reason, the bounced address is marked
  bad on the host (``Host.settings["bad_contacts"]``: ``notices.hosts.resolve_contact``
  no longer uses it) and staff are shown the mail;
* counter-notice: a ``CounterNotice`` is opened on the URLs it names (or the notice's),
  with the DMCA put-back window; those URLs are never notified again automatically;
* redirect: the address is offered as the host's new contact, for staff to accept;
* refusal: kept for staff to close; acknowledgement (its ticket kept) and removal are
  filed on the notice's timeline (verification still decides, on evidence, whether the
  content is gone).

Anything else (no notice found, a low confidence, a mail too large or unreadable) waits
in the staff queue. Every change is in the audit log under the actor ``inbox``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.auditchain import audit as record_audit
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
from foundation.config import Config
from foundation.timeutil import as_utc, utc_now
from inbox.classify import Reading, classify
from inbox.parse import ParsedMail, parse_mail
from inbox.thread import find_notice, host_of_sender, urls_in
from notices.hosts import valid_email

ACTOR = "inbox"
# DMCA 512(g)(2)(C): the host puts the material back "not less than 10, nor more than 14,
# business days following receipt of the counter notice" unless told of a court action.
PUTBACK_BUSINESS_DAYS = (10, 14)


@dataclass
class IngestResult:
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    filed: int = 0
    for_staff: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.filed += other.filed
        self.for_staff += other.for_staff
        for k, v in other.by_kind.items():
            self.by_kind[k] = self.by_kind.get(k, 0) + v
        self.errors += other.errors


def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` working days (Monday to Friday; public holidays not counted)."""
    d = start
    while days > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d


def our_addresses(config: Config) -> list[str]:
    return [a for a in (valid_email(config.smtp.get("from")), valid_email(config.notifier.get("email"))) if a]


def _duplicate(session: Session, sha: str, mail: ParsedMail) -> InboxMessage | None:
    same = session.scalar(select(InboxMessage).where(InboxMessage.sha256 == sha))
    if same is not None or not mail.message_id:
        return same
    # The same mail delivered again (another Received: line): same id, sender and subject.
    # A hostile sender reusing someone else's Message-ID with another text is stored.
    return session.scalars(select(InboxMessage).where(
        InboxMessage.message_id == mail.message_id[:300], InboxMessage.from_addr == mail.from_addr,
        InboxMessage.subject == mail.subject)).first()


def ingest(session: Session, raw: bytes, config: Config, *, source: str, now: datetime | None = None,
           size: int | None = None, imap: tuple[str, int, int] | None = None) -> IngestResult:
    """Store ``raw`` once, read it, apply a sure reading (see the module docstring).

    ``size`` is the mail's real size when ``raw`` is only its header (too large to fetch)."""
    now = now or utc_now()
    result = IngestResult()
    max_bytes = int(config.get("inbox", "max_bytes"))
    truncated = size is not None and size > len(raw) or len(raw) > max_bytes
    kept = raw if len(raw) <= max_bytes else _header_only(raw, max_bytes)
    sha = hashlib.sha256(raw).hexdigest()
    mail = parse_mail(kept, max_bytes=max_bytes)
    if truncated:
        mail.problems.insert(0, f"larger than [inbox] max_bytes ({max_bytes:,} bytes): "
                                f"{size or len(raw):,} bytes, only the header kept")
    dup = _duplicate(session, sha, mail)
    if dup is not None:
        result.duplicates += 1
        if imap is not None and (dup.imap_folder, dup.imap_uidvalidity) in ((None, None), imap[:2]) \
                and (dup.imap_uid or 0) < imap[2]:
            # Moves the folder's high-water mark past the copy, so it is not fetched again.
            dup.imap_folder, dup.imap_uidvalidity, dup.imap_uid = imap
        return result
    msg = InboxMessage(
        sha256=sha, message_id=mail.message_id[:300] if mail.message_id else None, raw=kept,
        size=size or len(raw), truncated=truncated, source=source[:500], received_at=now,
        sent_at=mail.date, from_addr=(mail.from_addr or "")[:500] or None, subject=mail.subject[:500],
        text=mail.text, attachments=mail.attachments[:100],
        details={"problems": mail.problems[:20], "in_reply_to": mail.in_reply_to[:10],
                 "auto_submitted": mail.auto_submitted[:200],
                 **({"dsn": _dsn_json(mail)} if mail.dsn is not None else {})},
    )
    if imap is not None:
        msg.imap_folder, msg.imap_uidvalidity, msg.imap_uid = imap
    session.add(msg)
    session.flush()
    result.stored.append(msg.id)
    read(session, msg, mail, config, now=now)
    result.by_kind[msg.kind.value] = 1
    if msg.state is InboxState.STAFF:
        result.for_staff += 1
    else:
        result.filed += 1
    return result


def _header_only(raw: bytes, max_bytes: int) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep, 0, max_bytes)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw[: min(max_bytes, 64_000)]


def _dsn_json(mail: ParsedMail) -> dict[str, object]:
    assert mail.dsn is not None
    return {"reporting_mta": mail.dsn.reporting_mta, "original_message_id": mail.dsn.original_message_id,
            "recipients": [{"address": r.address, "action": r.action, "status": r.status,
                            "diagnostic": r.diagnostic} for r in mail.dsn.recipients[:20]]}


def read(session: Session, msg: InboxMessage, mail: ParsedMail, config: Config, *, now: datetime) -> None:
    """Thread, classify and (when sure) apply; sets ``msg``'s reading and state."""
    own = session.scalar(select(Notice).where(Notice.message_id == mail.message_id)) if mail.message_id else None
    if own is not None or (mail.from_addr and mail.from_addr in our_addresses(config) and not mail.dsn):
        # A copy of our own mail (a Bcc to the reply address, a mail client's "sent" rule):
        # kept, shown on the notice, never read as the host's answer.
        msg.notice_id = own.id if own is not None else None
        msg.host_id = own.host_id if own is not None else None
        msg.threaded_by = "own-message" if own is not None else None
        msg.kind, msg.confidence, msg.rule = ReplyKind.OTHER, 1.0, "our-own-mail"
        msg.state, msg.staff_reason = InboxState.CLOSED, None
        return
    notice, how = find_notice(session, mail)
    reading = classify(mail, ours=our_addresses(config))
    msg.notice_id = notice.id if notice else None
    msg.threaded_by = how
    msg.host_id = notice.host_id if notice else (h.id if (h := host_of_sender(session, mail.from_addr)) else None)
    _set_reading(msg, reading)
    problems = msg.details.get("problems") or []
    if msg.truncated:
        _to_staff(msg, problems[0] if problems else "too large: only the header was kept")
        return
    if notice is None:
        _to_staff(msg, "no notice found: no In-Reply-To or References of ours, no VIGIE reference, "
                       "no notified URL quoted")
        return
    if reading.confidence < float(config.get("inbox", "min_confidence")):
        _to_staff(msg, f"low confidence ({reading.confidence:.2f}, rule {reading.rule}): "
                       f"read as {reading.kind.value}, staff decide")
        return
    apply(session, msg, notice, reading, mail, now=now)


def _set_reading(msg: InboxMessage, reading: Reading) -> None:
    msg.kind = reading.kind
    msg.confidence = round(reading.confidence, 3)
    msg.rule = reading.rule[:200]
    msg.ticket = reading.ticket[:100] if reading.ticket else None
    msg.reason = reading.reason
    msg.redirect_to = reading.redirect_to
    if reading.regime:
        msg.details = {**msg.details, "regime": reading.regime,
                       "statements": {k: v for k, v in reading.statements.items() if k != "text"}}


def _to_staff(msg: InboxMessage, why: str) -> None:
    msg.state = InboxState.STAFF
    msg.staff_reason = why


def _audit(session: Session, action: str, object_type: str, object_id: int | None,
           before: dict[str, object] | None, after: dict[str, object] | None, actor: str = ACTOR) -> None:
    record_audit(session, actor, action, object_type, object_id, before, after)


def apply(session: Session, msg: InboxMessage, notice: Notice, reading: Reading, mail: ParsedMail | None,
          *, now: datetime, actor: str = ACTOR) -> None:
    """What a reading means for the notice, its host and the staff queue."""
    msg.state = InboxState.FILED
    msg.staff_reason = None
    kind = reading.kind
    if kind is ReplyKind.BOUNCE:
        addresses = [a for a in (reading.statements.get("recipients") or []) if isinstance(a, str)]
        bad = addresses or ([notice.recipient] if notice.recipient else [])
        mark_bad_contacts(session, notice.host, bad, reading.reason or "bounced", msg.id, now, actor)
        if notice.status in (NoticeStatus.SENT, NoticeStatus.IN_DOUBT, NoticeStatus.QUEUED):
            before = notice.status.value
            notice.status = NoticeStatus.FAILED
            notice.last_error = f"bounced ({reading.reason or 'delivery failed'}): inbox message #{msg.id}"[:2000]
            notice.next_attempt_at = None
            _audit(session, "notice.bounced", "notice", notice.id, {"status": before},
                   {"status": "failed", "inbox_message": msg.id})
        _to_staff(msg, f"bounce: {', '.join(bad) or 'the recipient'} marked bad on host "
                       f"{notice.host.name!r}; notice #{notice.id} failed. Set a new contact and resend.")
    elif kind is ReplyKind.COUNTER_NOTICE:
        cn = open_counter_notice(session, msg, notice, reading, mail, now=now)
        _to_staff(msg, f"counter-notice #{cn.id} ({cn.regime}): staff decide"
                       + (f"; put-back window {cn.putback_from} to {cn.putback_until}" if cn.putback_from else ""))
    elif kind is ReplyKind.REDIRECT:
        if reading.redirect_to:
            host = notice.host
            host.settings = {**(host.settings or {}), "suggested_contact": {
                "address": reading.redirect_to, "inbox_message": msg.id, "at": now.isoformat()}}
            _to_staff(msg, f"the host says to write to {reading.redirect_to}: accept it as the new contact "
                           f"of {host.name!r}?")
        else:
            _to_staff(msg, "the host points elsewhere without an address: read it")
    elif kind is ReplyKind.REFUSED:
        _to_staff(msg, f"refused: {reading.reason or 'see the mail'}; close it when dealt with")
    elif kind is ReplyKind.OTHER and reading.rule == "nothing-matched":
        _to_staff(msg, "nothing recognised in it: read it")


def mark_bad_contacts(session: Session, host: Host, addresses: list[str], reason: str, message_id: int,
                      now: datetime, actor: str = ACTOR) -> None:
    bad = dict((host.settings or {}).get("bad_contacts") or {})
    for addr in addresses:
        bad[addr.lower()] = {"reason": reason[:300], "inbox_message": message_id, "at": now.isoformat()}
    host.settings = {**(host.settings or {}), "bad_contacts": bad}
    _audit(session, "host.contact_bounced", "host", host.id, None, {"bad_contacts": sorted(bad)}, actor)


def _received(mail: ParsedMail | None, now: datetime) -> datetime:
    """When the host got the counter-notice: the mail's Date when plausible, else now."""
    sent = as_utc(mail.date) if mail is not None else None
    if sent is not None and now - timedelta(days=30) <= sent <= now + timedelta(minutes=10):
        return sent
    return now


def open_counter_notice(session: Session, msg: InboxMessage, notice: Notice, reading: Reading,
                        mail: ParsedMail | None, *, now: datetime) -> CounterNotice:
    notified = [it.url for it in notice.items]
    quoted = urls_in(f"{msg.text or ''}\n{mail.returned_text if mail else ''}")
    urls = [u for u in notified if u in quoted] or notified
    received = _received(mail, now)
    regime = reading.regime or ("dsa" if notice.regime == "dsa" else "dmca")
    cn = CounterNotice(message_id=msg.id, notice_id=notice.id, regime=regime, received_at=received, urls=urls,
                       statements={k: v for k, v in reading.statements.items()},
                       state=CounterNoticeState.OPEN)
    if regime == "dmca":
        day = received.date()
        cn.putback_from = add_business_days(day, PUTBACK_BUSINESS_DAYS[0])
        cn.putback_until = add_business_days(day, PUTBACK_BUSINESS_DAYS[1])
    session.add(cn)
    session.flush()
    _audit(session, "counter_notice.open", "counter_notice", cn.id, None,
           {"notice": notice.id, "regime": regime, "urls": urls})
    return cn

