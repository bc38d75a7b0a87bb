"""Verification: did the notified content really go away? Escalate when it did not.

``verify`` re-fetches every URL of every sent first-level notice (fresh, no cache,
addresses checked) and records a Check row each time. Removed means HTTP 404/410/451;
or, for a host's own page of the video, every media URL of the page gone (404/410/451);
or the host's own known removal page: ``Host.removal_pattern``, a regular expression
staff set from a page the host really shows for removed content, matched against the
final URL (after redirects) and the page. Page text alone never counts otherwise: a
pirate's footer saying "copyright infringement notice", or a page that reads "this
video has been removed" while it still plays, must not close a takedown. A media URL
sent to the host storing the video is removed when it answers 404/410/451; a linking
site's page is removed only when the page itself goes (its duty is its page, which it
can point to the next upload at any time);
a 200 with the content still there is live; anything else (5xx, 403, no answer) is
recorded as inconclusive and changes nothing, since only positive evidence of removal
counts. Time-to-takedown is removed_at - the notice's sent_at.

An item still live after its deadline (``grace_hours``, per host) is escalated: first a
reminder to the host (threaded on the first notice), then a notice to the host's
upstream provider (``Host.settings["upstream_contact"]``) and a delisting request to
every registered search engine (hosts of kind ``search_engine``). Content that comes
back after removal is a re-upload: it is notified again at once.
Escalation notices go through the same outbox (``notices.dispatch``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Check, Host, ItemRole, ItemState, Notice, NoticeItem, NoticeStatus
from notices.build import counter_noticed_urls, make_notice, one_builder_at_a_time, partner_problem
from foundation.timeutil import utc_now
from notices.hosts import Contact, resolve_contact, valid_email
from notices.http import Response, fetch
from notices.regimes import DELISTING, language_for_host, regime_for_host
from notices.render import Target, is_media_url
from foundation.timeutil import as_utc
from foundation.config import Config
from foundation.errors import NoticeInvalid

Fetcher = Callable[[str], Response]

REMOVED_STATUSES = (404, 410, 451)
REMOVAL_PAGE_BYTES = 200_000


@dataclass
class VerifyResult:
    checked: int = 0
    removed: list[tuple[str, float]] = field(default_factory=list)   # (url, hours to takedown)
    live: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    reuploads: list[str] = field(default_factory=list)
    escalations: list[int] = field(default_factory=list)             # notice ids queued
    errors: list[str] = field(default_factory=list)


def removal_page(pattern: str | None) -> re.Pattern[str] | None:
    """The compiled removal-page pattern of a host; None when unset or not a valid
    regular expression (``check_removal_pattern`` refuses those when staff set it)."""
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.I)
    except re.error:
        return None


def classify(resp: Response, media: list[Response],
             removal: re.Pattern[str] | None = None) -> tuple[bool | None, str]:
    """(live?, why): True live, False removed, None inconclusive.

    Removed only on evidence a pirate cannot write into a page: the status, the media
    gone, or the host's own removal page (``removal``, set by staff)."""
    if resp.status in REMOVED_STATUSES:
        return False, f"HTTP {resp.status}"
    if resp.status is None:
        return None, resp.error or "no answer"
    if resp.status != 200:
        return None, f"HTTP {resp.status}"
    if removal is not None:
        # A removal page says so near its top; a bounded read also bounds what a staff
        # pattern with heavy backtracking can cost on a hostile page.
        text = resp.body[:REMOVAL_PAGE_BYTES].decode("utf-8", "replace")
        if removal.search(resp.url) or removal.search(text):
            return False, "the host's removal page (its removal_pattern matched)"
    if media and all(m.status in REMOVED_STATUSES for m in media):
        return False, "the page is up but its media is gone (" + \
            ", ".join(f"HTTP {m.status}" for m in media) + ")"
    return True, "HTTP 200, content still there"


def _items_to_check(session: Session) -> list[NoticeItem]:
    # The latest first-level item per match and URL (a match has one per party): older
    # ones were superseded by a re-upload notice.
    latest = (select(func.max(NoticeItem.id)).join(Notice, NoticeItem.notice_id == Notice.id)
              .where(Notice.kind == "notice", Notice.status == NoticeStatus.SENT)
              .group_by(NoticeItem.match_id, NoticeItem.url))
    return list(session.scalars(select(NoticeItem).where(NoticeItem.id.in_(latest))
                                .order_by(NoticeItem.id)))


def verify(session: Session, config: Config, *, now: datetime | None = None,
           fetcher: Fetcher | None = None) -> VerifyResult:
    """Re-check notified URLs, record each check, escalate overdue ones (stage function).

    Verification queues notices too (re-uploads, escalations), so it takes the notice
    builders' turn (``one_builder_at_a_time``) before reading anything: a second
    verifier, or a builder, waits and then reads what this one committed, and no URL is
    notified twice."""
    now = now or utc_now()
    one_builder_at_a_time(session)
    timeout = float(config.get("notices", "http_timeout"))
    loopback = bool(config.get("notices", "allow_loopback"))
    get: Fetcher = fetcher or (lambda url: fetch(url, timeout=timeout, allow_loopback=loopback))
    result = VerifyResult()
    overdue: dict[tuple[int, int], list[NoticeItem]] = defaultdict(list)
    reupload: dict[int, list[Target]] = defaultdict(list)
    # A counter-noticed URL is checked, never re-notified or escalated automatically.
    contested = counter_noticed_urls(session)

    for item in _items_to_check(session):
        cand = item.match.candidate
        resp = get(item.url)
        # Only a host's own page of the video is judged by its media too: a media URL is
        # judged by its own answer, and a linking page by the page alone.
        own_page = item.role is ItemRole.HOSTING and not is_media_url(item.match, item.url)
        media = [get(u) for u in (cand.media_urls or []) if isinstance(u, str) and u != item.url] \
            if resp.status == 200 and own_page else []
        live, why = classify(resp, media, removal_page(item.notice.host.removal_pattern))
        session.add(Check(item=item, checked_at=now, http_status=resp.status,
                          live=bool(live) if live is not None else True,
                          detail=why if live is not None else f"inconclusive: {why}"))
        item.last_checked_at = now
        result.checked += 1
        if live is None:
            result.inconclusive.append(item.url)
            continue
        if not live:
            if item.state is not ItemState.REMOVED:
                item.state = ItemState.REMOVED
                item.removed_at = now
                sent = as_utc(item.notice.sent_at) or now
                result.removed.append((item.url, (now - sent).total_seconds() / 3600))
            continue
        result.live.append(item.url)
        if item.state is ItemState.REMOVED:
            # Back after removal: a re-upload, notified again at once.
            item.state = ItemState.LIVE
            result.reuploads.append(item.url)
            if item.url not in contested:
                reupload[item.notice.host_id].append(Target(item.match, item.url, item.role))
            continue
        if item.state is ItemState.NOTIFIED:
            item.state = ItemState.LIVE
        if item.url in contested:
            continue
        if item.due_at is not None and as_utc(item.due_at) <= now and item.escalation_level < 2:  # type: ignore[operator]
            overdue[(item.notice_id, item.escalation_level)].append(item)

    for host_id, targets in reupload.items():
        host = session.get(Host, host_id)
        assert host is not None
        _queue(session, config, result, host=host, targets=targets, kind="notice", now=now,
               regime=regime_for_host(host), language=language_for_host(host),
               contact=_contact(host, targets, config))

    for (notice_id, level), items in overdue.items():
        parent = session.get(Notice, notice_id)
        assert parent is not None
        _escalate(session, config, result, parent, level, items, now)
    session.flush()
    return result


def _contact(host: Host, targets: list[Target], config: Config) -> Contact:
    return resolve_contact(host, origin=targets[0].url,
                           discover=bool(config.get("notices", "discover_contacts")),
                           timeout=float(config.get("notices", "http_timeout")),
                           allow_loopback=bool(config.get("notices", "allow_loopback")))


def _queue(session: Session, config: Config, result: VerifyResult, **kw: object) -> Notice | None:
    try:
        n = make_notice(session, config, **kw)  # type: ignore[arg-type]
    except NoticeInvalid as exc:
        result.errors.append(str(exc))
        return None
    result.escalations.append(n.id)
    return n


def _escalate(session: Session, config: Config, result: VerifyResult, parent: Notice, level: int,
              items: list[NoticeItem], now: datetime) -> None:
    host = parent.host
    targets = [Target(it.match, it.url, it.role) for it in items if partner_problem(it.match) is None]
    if not targets:
        return
    grace = float((host.settings or {}).get("grace_hours", config.get("notices", "grace_hours")))
    first_sent = as_utc(parent.sent_at)
    regime = regime_for_host(host)
    if level == 0:
        contact = Contact(parent.recipient, parent.recipient_source or "configured")
        # Staff set a new contact since (the host said "write to X"): the reminder goes there.
        current = valid_email(host.abuse_contact)
        if current and current != parent.recipient:
            contact = Contact(current, "configured")
        _queue(session, config, result, host=host, targets=targets, kind="reminder", regime=regime,
               language=parent.language, contact=contact, now=now, parent=parent,
               first_sent=first_sent)
        for it in items:
            it.escalation_level = 1
            it.due_at = now + timedelta(hours=grace)
        return
    upstream = (host.settings or {}).get("upstream_contact")
    if upstream:
        _queue(session, config, result, host=host, targets=targets, kind="upstream", regime=regime,
               language=parent.language, contact=Contact(str(upstream), "configured"), now=now,
               parent=parent, first_sent=first_sent)
    else:
        result.errors.append(f"host {host.name!r} has no upstream_contact: upstream step skipped")
    engines = session.scalars(select(Host).where(Host.kind == "search_engine",
                                                 Host.licensed_partner.is_(False))).all()
    for engine in engines:
        _queue(session, config, result, host=engine, targets=targets, kind="delisting",
               regime=DELISTING, language=language_for_host(engine),
               contact=_contact(engine, targets, config) if engine.abuse_contact is None
               else Contact(engine.abuse_contact, "configured"),
               now=now, parent=parent, first_sent=first_sent, about_host=host)
    for it in items:
        it.escalation_level = 2
        it.state = ItemState.ESCALATED
        it.due_at = None
