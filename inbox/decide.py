"""What staff decide about the hosts' replies, as library functions: check, change, audit.

Called by the review web app (``webapp.routes.inbox``) and usable from any script; the
caller's unit of work commits. Each writes an ``audit_log`` row with the staff member.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
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
from foundation.errors import InvalidInput, NotFound
from foundation.timeutil import utc_now
from inbox.classify import Reading
from inbox.parse import parse_mail
from inbox.store import _audit, apply
from notices.build import REFUSED
from notices.hosts import check_contact

MAX_NOTE = 2000
# What staff may record on a counter-notice, per regime.
DECISIONS = {
    "dmca": (CounterNoticeState.ACCEPTED, CounterNoticeState.COURT_ACTION),
    "dsa": (CounterNoticeState.ACCEPTED, CounterNoticeState.COMPLAINT),
}


def _message(session: Session, message_id: int) -> InboxMessage:
    msg = session.get(InboxMessage, message_id)
    if msg is None:
        raise NotFound(f"no inbox message with id {message_id}")
    return msg


def _note(note: str | None) -> str:
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"the note is longer than {MAX_NOTE} characters")
    return note


def close_message(session: Session, message_id: int, actor: str, note: str | None = None,
                  now: datetime | None = None) -> InboxMessage:
    """Staff dealt with the mail (a refusal answered or accepted, a bounce handled, noise)."""
    msg = _message(session, message_id)
    before = msg.state.value
    msg.state = InboxState.CLOSED
    msg.handled_by, msg.handled_at = actor, now or utc_now()
    msg.details = {**(msg.details or {}), "staff_note": _note(note)}
    _audit(session, "inbox.close", "inbox_message", msg.id, {"state": before},
           {"state": "closed", "note": _note(note)}, actor)
    session.flush()
    return msg


def accept_contact(session: Session, message_id: int, actor: str, now: datetime | None = None) -> InboxMessage:
    """The address a host pointed to ("write to X") becomes its abuse contact."""
    msg = _message(session, message_id)
    if msg.kind is not ReplyKind.REDIRECT or not msg.redirect_to:
        raise InvalidInput(f"inbox message {message_id} offers no new contact")
    host = msg.notice.host if msg.notice is not None else msg.host
    if host is None:
        raise InvalidInput(f"inbox message {message_id} is tied to no host: file it under a notice first")
    addr = check_contact(msg.redirect_to, "new contact")
    before = {"abuse_contact": host.abuse_contact}
    host.abuse_contact = addr
    settings = dict(host.settings or {})
    settings.pop("suggested_contact", None)
    bad = dict(settings.get("bad_contacts") or {})
    bad.pop((addr or "").lower(), None)
    settings["bad_contacts"] = bad
    host.settings = settings
    _audit(session, "host.contact_accepted", "host", host.id, before,
           {"abuse_contact": addr, "inbox_message": msg.id}, actor)
    resent = rebuild_bounced(session, host, addr or "", actor)
    note = f"new contact {addr} accepted" + (f"; notice(s) {', '.join(map(str, resent))} rebuilt for it"
                                             if resent else "")
    return close_message(session, message_id, actor, note, now)


def rebuild_bounced(session: Session, host: Host, addr: str, actor: str) -> list[int]:
    """The host's notices that failed on a bounce never reached anyone: with a new contact
    they are marked refused (``notices.build.REFUSED``), so their URLs go into the next
    notice built, to the new address (``vigie notices send``, or the scheduler)."""
    done = []
    for n in session.scalars(select(Notice).where(Notice.host_id == host.id, Notice.kind == "notice",
                                                  Notice.status == NoticeStatus.FAILED,
                                                  Notice.last_error.like("bounced %"))):
        n.status = NoticeStatus.DISCARDED
        n.last_error = f"{REFUSED} after a bounce ({n.last_error[:300]}): its URLs go into the next notice, to {addr}"
        _audit(session, "notice.rebuild_after_bounce", "notice", n.id, {"status": "failed"},
               {"status": "discarded", "new_contact": addr}, actor)
        done.append(n.id)
    return done


def decide_counter_notice(session: Session, cn_id: int, decision: str, actor: str, note: str | None = None,
                          now: datetime | None = None) -> CounterNotice:
    """Staff's answer: accepted, a court action filed (DMCA), a complaint lodged (DSA art. 20)."""
    cn = session.get(CounterNotice, cn_id)
    if cn is None:
        raise NotFound(f"no counter-notice with id {cn_id}")
    try:
        state = CounterNoticeState(decision)
    except ValueError:
        state = None
    allowed = DECISIONS.get(cn.regime, DECISIONS["dmca"])
    if state not in allowed:
        raise InvalidInput(f"a {cn.regime} counter-notice is decided with one of: "
                           f"{', '.join(s.value for s in allowed)}")
    if cn.state is not CounterNoticeState.OPEN:
        raise InvalidInput(f"counter-notice {cn_id} was already decided ({cn.state.value})")
    cn.state = state
    cn.decided_by, cn.decided_at, cn.decision_note = actor, now or utc_now(), _note(note)
    _audit(session, "counter_notice.decide", "counter_notice", cn.id, {"state": "open"},
           {"state": state.value, "note": cn.decision_note}, actor)
    if cn.message_id is not None:
        msg = session.get(InboxMessage, cn.message_id)
        if msg is not None and msg.state is not InboxState.CLOSED:
            close_message(session, msg.id, actor, f"counter-notice {state.value}", now)
    session.flush()
    return cn


def file_message(session: Session, message_id: int, notice_id: int, kind: str, actor: str,
                 now: datetime | None = None) -> InboxMessage:
    """Staff tie a mail to a notice and say what it is; the reading is applied as if sure."""
    msg = _message(session, message_id)
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice with id {notice_id}")
    try:
        reply_kind = ReplyKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown kind {kind!r} (known: {', '.join(k.value for k in ReplyKind)})") from None
    now = now or utc_now()
    mail = parse_mail(msg.raw)
    statements = dict((msg.details or {}).get("statements") or {})
    if reply_kind is ReplyKind.BOUNCE:
        statements["recipients"] = [r["address"] for r in ((msg.details or {}).get("dsn") or {})
                                    .get("recipients", []) if r.get("address")]
    reading = Reading(reply_kind, 1.0, "staff", ticket=msg.ticket, reason=msg.reason,
                      redirect_to=msg.redirect_to, regime=(msg.details or {}).get("regime"),
                      statements=statements)
    before = {"notice": msg.notice_id, "kind": msg.kind.value}
    msg.notice_id, msg.host_id, msg.threaded_by = notice.id, notice.host_id, "staff"
    msg.kind, msg.confidence, msg.rule = reply_kind, 1.0, "staff"
    apply(session, msg, notice, reading, mail, now=now, actor=actor)
    msg.handled_by, msg.handled_at = actor, now
    _audit(session, "inbox.file", "inbox_message", msg.id, before, {"notice": notice.id, "kind": kind}, actor)
    session.flush()
    return msg
