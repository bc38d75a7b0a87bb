"""Every channel is a workflow: submission tasks, retries, and a host's channel changing.

A host whose channel is a web form or an API (``Host.channel``) has no automatic sender
(``notices.channels``): its notices are built like any other, validated, and held as
DRAFT *submission tasks*. Staff see them in the review app (and ``vigie status``, the
daily report) with every field prepared to paste into the host's form (the work, the
URLs, the statements, the legal offer) and an export (text, JSON); once they have
submitted it they mark it so with the host's ticket reference (``mark_submitted``), and
from then on it is a sent notice like an email one: ``notices.verify`` re-checks its
URLs, reminds the host (a new submission task threaded on it) and escalates.

Nothing stays stuck: a FAILED notice (a 5xx, too many attempts, no contact) or a DRAFT
can be retried (``retry_notice``: re-queued as it is, or rebuilt for the host as it is
now, the attempt counted and audited), and changing a host's channel rebuilds its
pending notices for the new channel (``requeue_host``).

Called by the review app (``webapp.actions``) and ``vigie notices task|submitted|retry``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.auditchain import audit as record_audit
from db.models import Host, Notice, NoticeStatus
from foundation.config import Config
from foundation.errors import InvalidInput, NotFound, NoticeInvalid
from foundation.timeutil import as_utc, utc_now
from notices.build import AUTOMATIC_CHANNELS, REFUSED, make_notice, refusal
from notices.hosts import Contact, resolve_contact
from notices.regimes import DELISTING, get_regime, language_for_host, regime_for_host
from notices.render import _ENV, Target, offers_for
from notices.views import is_submission_task

# Unsent notices a retry or a channel change may rebuild. SENDING and IN_DOUBT are the
# outbox's own (a sender holds them, or the host may already have the message).
PENDING = (NoticeStatus.DRAFT, NoticeStatus.QUEUED, NoticeStatus.AWAITING_APPROVAL, NoticeStatus.FAILED)
MAX_TICKET = 200


def _get(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    return notice


def _audit(session: Session, actor: str, action: str, notice: Notice, before: dict[str, Any],
           after: dict[str, Any]) -> None:
    record_audit(session, actor, action, "notice", notice.id, before, after)


# --------------------------------------------------------------------------- the task


def _statements(notice: Notice, notifier: Mapping[str, Any]) -> str:
    """The regime's sworn statements as the notice's own template words them (its
    ``legal`` block), so the pasted text is the one the regime check validated."""
    try:
        tpl = _ENV.get_template(f"{notice.regime}.{notice.language}.txt.j2")
        block = tpl.blocks.get("legal")
        if block is not None:
            return "".join(block(tpl.new_context({"notifier": dict(notifier)}))).strip()
    except Exception:  # noqa: BLE001 - a template needing more context: fall back to the full text
        pass
    return (notice.body_text or "").strip()


def submission_fields(notice: Notice, config: Config) -> dict[str, Any]:
    """The fields a host's web form asks for, prepared from the notice's own rows."""
    host = notice.host
    works: dict[int, dict[str, Any]] = {}
    urls: list[str] = []
    for it in notice.items:
        title = it.match.title
        if title is None:
            continue
        w = works.setdefault(title.id, {
            "title": title.title, "year": title.year, "rights_owner": title.rights_owner or "",
            "urls": [],
            "offers": [{"url": o.url, "provider": o.provider or "", "kind": o.kind.value}
                       for o in offers_for(title.offers, host.jurisdiction)],
        })
        w["urls"].append(it.url)
        urls.append(it.url)
    n = config.notifier
    subject = notice.subject or ""
    reference = subject[1:].split("]", 1)[0] if subject.startswith("[") and "]" in subject else f"notice #{notice.id}"
    return {
        "notice_id": notice.id, "reference": reference, "host": host.name, "channel": host.channel.value,
        "form_url": (host.settings or {}).get("form_url") or "", "regime": notice.regime,
        "language": notice.language, "kind": notice.kind, "subject": notice.subject or "",
        "complainant": {"name": n.get("legal_name") or "", "email": n.get("email") or "",
                        "address": n.get("address") or "", "phone": n.get("phone") or "",
                        "signature": n.get("signature") or ""},
        "works": list(works.values()),
        "infringing_urls": urls,
        "authorised_urls": list(dict.fromkeys(o["url"] for w in works.values() for o in w["offers"])),
        "statements": _statements(notice, n),
        "description": notice.body_text or "",
        "status": notice.status.value, "ticket_ref": notice.ticket_ref,
    }


def export_task(notice: Notice, config: Config, fmt: str = "json") -> str:
    """The submission task as JSON (for a script or an API client) or plain text (to
    keep with the case, or to paste field by field)."""
    fields = submission_fields(notice, config)
    if fmt == "json":
        return json.dumps(fields, ensure_ascii=False, indent=1)
    if fmt != "text":
        raise InvalidInput(f"unknown export format {fmt!r} (json or text)")
    c = fields["complainant"]
    lines = [f"Submission task for notice #{fields['notice_id']} {fields['reference']}",
             f"Host: {fields['host']} ({fields['channel']})"
             + (f"  form: {fields['form_url']}" if fields["form_url"] else ""),
             f"Regime: {fields['regime']} ({fields['language']})", "",
             "== Complainant", f"Name: {c['name']}", f"Email: {c['email']}", f"Address: {c['address']}",
             f"Phone: {c['phone']}", f"Signature: {c['signature']}", ""]
    for w in fields["works"]:
        year = f" ({w['year']})" if w["year"] else ""
        lines += [f"== Work: {w['title']}{year}", f"Rights owner: {w['rights_owner']}",
                  "Infringing URLs:", *w["urls"], "Authorised copies (legal offer):",
                  *(o["url"] for o in w["offers"]), ""]
    lines += ["== Statements", fields["statements"], "", "== Full notice text", fields["description"]]
    return "\n".join(lines).rstrip() + "\n"


def mark_submitted(session: Session, config: Config, notice_id: int, ticket_ref: str, *,
                   actor: str, now: datetime | None = None) -> Notice:
    """Staff submitted a task on the host's form: the notice counts as sent from now
    (verification, reminders and escalation follow), with the host's ticket reference.

    The partner and rejection checks run again first (``refusal``), as before any send."""
    now = now or utc_now()
    ticket = " ".join((ticket_ref or "").split())
    if not ticket:
        raise InvalidInput("the host's ticket reference is required (write 'none' if the form gave none)")
    if len(ticket) > MAX_TICKET:
        raise InvalidInput(f"a ticket reference is at most {MAX_TICKET} characters")
    notice = _get(session, notice_id)
    if not is_submission_task(notice):
        raise NoticeInvalid(f"notice {notice_id} is {notice.status.value} for a host on channel "
                            f"{notice.host.channel.value!r}: not a submission task")
    before = {"status": notice.status.value}
    problems = refusal(notice)
    if problems:
        notice.status = NoticeStatus.DISCARDED
        notice.last_error = f"{REFUSED} at submission: " + "; ".join(problems)
        _audit(session, actor, "notice.submit", notice, before, {"status": notice.status.value})
        session.flush()
        return notice
    notice.status = NoticeStatus.SENT
    notice.sent_at = now
    notice.ticket_ref = ticket
    notice.submitted_by = actor
    notice.last_error = None
    notice.attempts += 1
    if notice.kind == "notice":
        grace = float((notice.host.settings or {}).get("grace_hours", config.get("notices", "grace_hours")))
        for it in notice.items:
            if it.due_at is None:
                it.due_at = now + timedelta(hours=grace)
    _audit(session, actor, "notice.submit", notice, before,
           {"status": notice.status.value, "ticket_ref": ticket})
    session.flush()
    return notice


# --------------------------------------------------------------------------- retry and rebuild


def _contact(session: Session, notice: Notice, host: Host, targets: list[Target], config: Config) -> Contact:
    if notice.kind == "upstream":
        upstream = (host.settings or {}).get("upstream_contact")
        return Contact(str(upstream), "configured") if upstream else Contact(None, "none", "no upstream_contact")
    return resolve_contact(host, origin=targets[0].url if targets else None,
                           discover=bool(config.get("notices", "discover_contacts")),
                           timeout=float(config.get("notices", "http_timeout")),
                           allow_loopback=bool(config.get("notices", "allow_loopback")))


def rebuild(session: Session, config: Config, notice: Notice, *, actor: str, why: str,
            now: datetime | None = None) -> Notice:
    """A fresh notice for the same URLs, built for the host as it is now (channel,
    contact, jurisdiction); the old one is discarded, pointing to its successor. Raises
    NoticeInvalid when the new one cannot be built (the old one is left as it was)."""
    now = now or utc_now()
    host = notice.host
    targets = [Target(it.match, it.url, it.role) for it in notice.items]
    if not targets:
        raise NoticeInvalid(f"notice {notice.id} has no URL to rebuild")
    parent = session.get(Notice, notice.parent_id) if notice.parent_id else None
    regime = DELISTING if notice.kind == "delisting" else (
        regime_for_host(host) if notice.kind in ("notice", "reminder") else get_regime(notice.regime))
    language = notice.language if notice.kind in ("reminder", "upstream") else language_for_host(host)
    about = parent.host if parent is not None and notice.kind in ("upstream", "delisting") else None
    fresh = make_notice(session, config, host=host, targets=targets, kind=notice.kind, regime=regime,
                        language=language, contact=_contact(session, notice, host, targets, config), now=now,
                        parent=parent, first_sent=as_utc(parent.sent_at) if parent else None,
                        about_host=about)
    fresh.attempts = notice.attempts
    before = {"status": notice.status.value, "attempts": notice.attempts}
    notice.status = NoticeStatus.DISCARDED
    notice.last_error = f"superseded by notice #{fresh.id}: {why}"
    _audit(session, actor, "notice.rebuild", notice, before,
           {"status": notice.status.value, "successor": fresh.id, "successor_status": fresh.status.value,
            "why": why})
    session.flush()
    return fresh


def retry_notice(session: Session, config: Config, notice_id: int, *, actor: str,
                 now: datetime | None = None) -> Notice:
    """Failed is not final: a FAILED notice whose host still has an automatic channel
    and a recipient goes back to the outbox as it is (same Message-ID, since it never
    reached the host), due now; anything else (a draft, a failed notice whose host or
    contact changed) is rebuilt for the host as it is now. The attempts so far are kept
    and the retry is audited with them. Returns the notice that will go out."""
    now = now or utc_now()
    notice = _get(session, notice_id)
    if notice.status not in (NoticeStatus.FAILED, NoticeStatus.DRAFT):
        raise NoticeInvalid(f"notice {notice_id} is {notice.status.value}: only failed notices and drafts "
                            "are retried")
    host = notice.host
    automatic = host.channel.value in AUTOMATIC_CHANNELS
    if notice.status is NoticeStatus.FAILED and automatic and notice.recipient \
            and notice.recipient == _current_recipient(notice, host):
        before = {"status": notice.status.value, "attempts": notice.attempts, "last_error": notice.last_error}
        notice.status = NoticeStatus.QUEUED
        notice.next_attempt_at = now
        notice.claimed_at = None
        notice.last_error = f"retried by {actor} after attempt {notice.attempts}: {notice.last_error or ''}".strip()
        _audit(session, actor, "notice.retry", notice, before,
               {"status": notice.status.value, "attempts": notice.attempts})
        session.flush()
        return notice
    fresh = rebuild(session, config, notice, actor=actor, now=now,
                    why=f"retried by {actor} after attempt {notice.attempts}")
    _audit(session, actor, "notice.retry", fresh, {"rebuilt_from": notice.id, "attempts": notice.attempts},
           {"status": fresh.status.value, "attempts": fresh.attempts})
    return fresh


def _current_recipient(notice: Notice, host: Host) -> str | None:
    """Who the notice would go to now: a changed contact means a rebuild, not a resend."""
    if notice.kind == "upstream":
        return (host.settings or {}).get("upstream_contact")
    if notice.recipient_source == "configured" and notice.kind != "upstream":
        return host.abuse_contact or notice.recipient
    return notice.recipient


def requeue_host(session: Session, config: Config, host: Host, *, actor: str, why: str,
                 now: datetime | None = None) -> tuple[list[Notice], list[str]]:
    """Rebuild every pending notice of ``host`` (after its channel or contact changed):
    drafts become queued emails, queued emails become submission tasks, failed ones get
    another go. Returns (the new notices, the errors of those that could not be built)."""
    pending = list(session.scalars(select(Notice).where(Notice.host_id == host.id, Notice.status.in_(PENDING))
                                   .order_by(Notice.id)))
    out: list[Notice] = []
    errors: list[str] = []
    for notice in pending:
        try:
            out.append(rebuild(session, config, notice, actor=actor, why=why, now=now))
        except NoticeInvalid as exc:
            errors.append(f"notice {notice.id}: {exc}")
    return out, errors
