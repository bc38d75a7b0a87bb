"""What staff decide, as library functions: each one checks, changes and audits.

The review app's pages, its JSON API and any script call these and nothing else, so
every path writes the same ``audit_log`` row (who, what, when, state before and after).
Nothing here commits: the caller's unit of work does.

Review semantics other stages rely on:

* ``approve_match`` sets ``Match.review = APPROVED``: a notice may go out for it as if
  the machine had confirmed it. A match of allowed material (decision ``allowed``) is
  never approved.
* ``reject_match`` sets ``Match.review = REJECTED`` with the reason and keeps the row:
  the match stage never recreates or overwrites a rejected (candidate, title) pair, so
  the pair never comes back as a match, and no notice is ever built from it.
* ``approve_notice`` moves an AWAITING_APPROVAL notice to QUEUED for dispatch;
  ``discard_notice`` moves it to DISCARDED (kept, never sent). Both delegate to
  ``notices.build`` so the partner re-check and audit happen in one place.
* ``mark_submitted`` (a web-form or API host's submission task, submitted by hand with
  the host's ticket reference) and ``retry_notice`` (a failed notice or a draft, again)
  delegate to ``notices.workflow``; ``set_host`` changing a host's channel or contact
  rebuilds its pending notices there too.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from db.auditchain import audit as record_audit
from db.hosts import NOTICE_LANGUAGES
from db.models import (
    AuditLog,
    Decision,
    Host,
    Match,
    Notice,
    NoticeChannel,
    Offer,
    OfferKind,
    ReviewState,
    Site,
    Title,
    User,
    utcnow,
)
from foundation.config import Config
from foundation.errors import InvalidInput, NotFound
from foundation.schedules import check_schedule
from notices.hosts import check_contact, check_jurisdiction, check_removal_pattern
from webapp.tenancy import Scope

MAX_REASON = 2000


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    return value


def snapshot(obj: Any, fields: list[str]) -> dict[str, Any]:
    return {f: _plain(getattr(obj, f)) for f in fields}


def audit(
    session: Session, actor: str, action: str, object_type: str, object_id: int | None,
    before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> AuditLog:
    row = record_audit(session, actor, action, object_type, object_id, before, after)
    session.flush()
    return row


def _get(session: Session, cls: type, obj_id: int, what: str) -> Any:
    obj = session.get(cls, obj_id)
    if obj is None:
        raise NotFound(f"no {what} with id {obj_id}")
    return obj


# --------------------------------------------------------------------------- matches

_MATCH_FIELDS = ["review", "reviewer_id", "reviewed_at", "review_reason"]


def approve_match(session: Session, match_id: int, user: User, note: str | None = None) -> Match:
    """Confirm a match (a notice may go out for it). A match of allowed material cannot
    be confirmed: the material is allowed (remove it from allowed material, and the
    copies found to be only it are matched again)."""
    m: Match = Scope(user).match(session, match_id)
    if m.decision is Decision.ALLOWED:
        raise InvalidInput(f"match #{m.id} is allowed material ({(m.details or {}).get('allowed_reason')}): "
                           "nothing to confirm")
    before = snapshot(m, _MATCH_FIELDS)
    m.review = ReviewState.APPROVED
    m.reviewer_id, m.reviewed_at = user.id, utcnow()
    m.review_reason = (note or "").strip()[:MAX_REASON] or None
    session.flush()
    audit(session, user.username, "match.approve", "match", m.id, before, snapshot(m, _MATCH_FIELDS))
    return m


def reject_match(session: Session, match_id: int, user: User, reason: str) -> Match:
    """Reject a match with a reason; the (candidate, title) pair never comes back."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("a rejection needs a reason")
    m: Match = Scope(user).match(session, match_id)
    before = snapshot(m, _MATCH_FIELDS)
    m.review = ReviewState.REJECTED
    m.reviewer_id, m.reviewed_at = user.id, utcnow()
    m.review_reason = reason[:MAX_REASON]
    session.flush()
    audit(session, user.username, "match.reject", "match", m.id, before, snapshot(m, _MATCH_FIELDS))
    return m


# --------------------------------------------------------------------------- notices
# One path for notice decisions: the notices package's own functions, which re-check
# licensed partners at approval time and write the audit row.


def approve_notice(session: Session, notice_id: int, user: User) -> Notice:
    """Release a notice held for a human: it is queued for dispatch (or discarded if it
    turns out to concern a licensed partner)."""
    from notices.build import approve_notice as approve

    Scope(user).notice(session, notice_id)
    return approve(session, notice_id, user_id=user.id, actor=user.username)


def discard_notice(session: Session, notice_id: int, user: User, reason: str | None = None) -> Notice:
    """Drop a held notice: it is kept as DISCARDED and never sent."""
    from notices.build import reject_notice

    Scope(user).notice(session, notice_id)
    return reject_notice(session, notice_id, actor=user.username, reason=(reason or "").strip()[:MAX_REASON])


def mark_submitted(session: Session, config: Config, notice_id: int, user: User, ticket_ref: str) -> Notice:
    """A submission task submitted on the host's form: sent from now, verified from now."""
    from notices.workflow import mark_submitted as submitted

    Scope(user).notice(session, notice_id)
    return submitted(session, config, notice_id, ticket_ref, actor=user.username)


def retry_notice(session: Session, config: Config, notice_id: int, user: User) -> Notice:
    """A failed notice or a draft, again (re-queued, or rebuilt for the host as it is now)."""
    from notices.workflow import retry_notice as retry

    Scope(user).notice(session, notice_id)
    return retry(session, config, notice_id, actor=user.username)


# --------------------------------------------------------------------------- admin: catalogue, sites, hosts

_OFFER_FIELDS = ["title_id", "url", "provider", "kind", "territory", "valid_from", "valid_until"]


def _day(value: str | None, what: str) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what}: not a date (YYYY-MM-DD): {value[:40]!r}") from None


def add_offer(session: Session, title_id: int, user: User, url: str, provider: str | None,
              kind: str = "vod_rental", territory: str = "*", valid_from: str | None = None,
              valid_until: str | None = None) -> Offer:
    from stages.catalog import validate_offer_url
    from stages.holders import territory as check_territory

    title: Title = _get(session, Title, title_id, "title")
    if not Scope(user).sees_title(session, title.id):
        raise NotFound(f"no title with id {title_id}")
    try:
        okind = OfferKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown offer kind {kind!r}") from None
    start, end = _day(valid_from, "from"), _day(valid_until, "until")
    if start and end and end < start:
        raise InvalidInput(f"the offer ends ({end}) before it starts ({start})")
    offer = Offer(title_id=title.id, url=validate_offer_url(url.strip()),
                  provider=(provider or "").strip() or None, kind=okind,
                  territory=check_territory((territory or "*").strip() or "*"), valid_from=start, valid_until=end)
    session.add(offer)
    session.flush()
    audit(session, user.username, "offer.add", "offer", offer.id, None, snapshot(offer, _OFFER_FIELDS))
    return offer


def remove_offer(session: Session, offer_id: int, user: User) -> None:
    offer: Offer = _get(session, Offer, offer_id, "offer")
    if not Scope(user).sees_title(session, offer.title_id):
        raise NotFound(f"no offer with id {offer_id}")
    before = snapshot(offer, _OFFER_FIELDS)
    session.delete(offer)
    session.flush()
    audit(session, user.username, "offer.remove", "offer", offer_id, before, None)


def remove_allowed(session: Session, ref_id: int, user: User) -> int:
    """Remove allowed material (audit-logged by the catalogue); returns how many copies
    found to be only it go back to matching."""
    from stages.catalog import remove_allowed as remove

    if not Scope(user).everything and Scope(user).reference(session, ref_id) is None:
        raise NotFound(f"no allowed material with id {ref_id}")
    return remove(session, ref_id, actor=user.username)


def set_title_publication(session: Session, title_id: int, user: User, published: bool,
                          publish_from: str | None = None) -> Title:
    """Publish a title's public page (from a date, given as YYYY-MM-DD) or unpublish it."""
    from datetime import date

    from stages.catalog import set_published

    when = None
    if published and (publish_from or "").strip():
        try:
            when = date.fromisoformat(publish_from.strip())  # type: ignore[union-attr]
        except ValueError:
            raise InvalidInput(f"publication date must be YYYY-MM-DD, not {publish_from!r}") from None
    return set_published(session, title_id, published, when, actor=user.username)


_SITE_FIELDS = ["name", "enabled", "schedule"]


def set_site(session: Session, site_id: int, user: User, *, enabled: bool | None = None,
             schedule: str | None = None) -> Site:
    site: Site = _get(session, Site, site_id, "site")
    before = snapshot(site, _SITE_FIELDS)
    if enabled is not None:
        site.enabled = enabled
    if schedule is not None:
        site.schedule = check_schedule(schedule)
    session.flush()
    audit(session, user.username, "site.update", "site", site.id, before, snapshot(site, _SITE_FIELDS))
    return site


_HOST_FIELDS = ["name", "abuse_contact", "channel", "licensed_partner", "needs_approval",
                "jurisdiction", "jurisdiction_source", "language", "removal_pattern"]


def set_host(session: Session, host_id: int, user: User, *, abuse_contact: str | None = None,
             channel: str | None = None, licensed_partner: bool | None = None,
             needs_approval: bool | None = None, jurisdiction: str | None = None,
             language: str | None = None, removal_pattern: str | None = None,
             config: Config | None = None) -> tuple[Host, str]:
    """Edit a host. Empty jurisdiction means unknown (guessed again later); a changed
    channel or contact rebuilds the host's pending notices for it (given ``config``).
    Returns the host and what happened to its pending notices (empty when nothing)."""
    host: Host = _get(session, Host, host_id, "host")
    before = snapshot(host, _HOST_FIELDS)
    if abuse_contact is not None:
        # The same check as `vigie hosts add`: a CR/LF here would reach a mail header.
        host.abuse_contact = check_contact(abuse_contact, allow_empty=True)
    if jurisdiction is not None:
        if jurisdiction.strip():
            code = check_jurisdiction(jurisdiction)
            if code != host.jurisdiction or host.jurisdiction_source != "staff":
                host.jurisdiction, host.jurisdiction_source = code, "staff"
        else:
            host.jurisdiction, host.jurisdiction_source = None, None
    if language is not None and language.strip():
        if language.strip().lower() not in NOTICE_LANGUAGES:
            raise InvalidInput(f"notice language must be one of {', '.join(NOTICE_LANGUAGES)}")
        host.language = language.strip().lower()
    if removal_pattern is not None:
        host.removal_pattern = check_removal_pattern(removal_pattern)
    if channel is not None:
        try:
            host.channel = NoticeChannel(channel)
        except ValueError:
            raise InvalidInput(f"unknown channel {channel!r}") from None
    if licensed_partner is not None:
        host.licensed_partner = licensed_partner
    if needs_approval is not None:
        host.needs_approval = needs_approval
    session.flush()
    after = snapshot(host, _HOST_FIELDS)
    audit(session, user.username, "host.update", "host", host.id, before, after)
    if config is not None and (before["channel"] != after["channel"] or before["abuse_contact"] != after["abuse_contact"]):
        from notices.workflow import requeue_host

        why = "host edited by " + user.username + (
            f": channel {before['channel']} -> {after['channel']}" if before["channel"] != after["channel"]
            else ": abuse contact changed")
        fresh, errors = requeue_host(session, config, host, actor=user.username, why=why)
        note = f"{len(fresh)} pending notice(s) rebuilt for it" if fresh else ""
        if errors:
            note += ("; " if note else "") + "not rebuilt: " + "; ".join(errors)
        return host, note
    return host, ""
