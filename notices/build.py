"""Building notices: confirmed matches → one validated notice per host per dispatch run.

``queue_notices`` is the stage function: it picks every match that may be notified
(decision confirmed and not rejected, or approved by staff) and not notified yet, and
turns each into the URLs its parties must remove: the media URL, sent to the host that
stores the video (``hosting``), and the page URL, sent to the site whose page links to
or embeds it (``linking``); one ``hosting`` page URL when both are the same host. A URL
already notified to its host is not notified again here (verification follows it up,
escalates it when due, and re-notifies a re-upload). It groups the URLs per host and
per notifier (at most ``max_urls_per_notice`` per notice): the rights holder, or the agent
acting for it under a mandate, who may group its principals' works in one notice
(``db.rights.notifier_for``; a title with no holder, no valid mandate or no rights in the
host's territory is withheld, the reason kept on the match), renders the regime's templates in the host's
language with the legitimate offers for the host's territory, validates every element
the regime requires, and queues the notice in the outbox (``notices.dispatch`` sends it). The dispatch window is the interval between two
runs of ``vigie notices send``; ``notices.dispatch`` also rate-limits per host.

A false notice is the worst bug: a match whose page or video is on a licensed partner, or
on the domain of one of the title's own offers, is refused on both sides, here and again
just before sending.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, text
from sqlalchemy.orm import Session, object_session, selectinload

from db.hosts import apply_default_jurisdiction, host_for, host_key, locate_host, matches_patterns
from db.models import (
    AuditLog,
    Candidate,
    CounterNotice,
    Decision,
    Host,
    InboxMessage,
    ItemRole,
    Match,
    Notice,
    NoticeItem,
    NoticeStatus,
    ReviewState,
    Title,
)
from db.rights import Party, Withheld, notifier_for
from notices import machine
from notices.hosts import Contact, remember_contact, resolve_contact
from notices.mail import clean_header_text, new_message_id
from notices.regimes import Regime, language_for_host, regime_for_host
from notices.render import Target, build_context, render
from foundation.config import Config
from foundation.errors import NoticeInvalid, NotFound
from foundation.timeutil import as_utc, utc_now

# Channels that can carry a notice without a human; see notices.channels.CHANNELS.
AUTOMATIC_CHANNELS = ("email",)

SUBJECTS = {
    ("notice", "en"): "{ref} {regime}: {n} infringing URL(s) on {host} - {titles}",
    ("notice", "fr"): "{ref} {regime} : {n} URL contrefaisante(s) sur {host} - {titles}",
    ("reminder", "en"): "{ref} REMINDER {regime}: {n} URL(s) still online on {host} - {titles}",
    ("reminder", "fr"): "{ref} RELANCE {regime} : {n} URL toujours en ligne sur {host} - {titles}",
    ("upstream", "en"): "{ref} {regime}: {n} URL(s) on {host}, a customer of yours - {titles}",
    ("upstream", "fr"): "{ref} {regime} : {n} URL sur {host}, votre client - {titles}",
    ("delisting", "en"): "{ref} Delisting request: {n} infringing URL(s) - {titles}",
    ("delisting", "fr"): "{ref} Demande de déréférencement : {n} URL contrefaisante(s) - {titles}",
}
REGIME_SHORT = {"dmca": "DMCA notice", "dsa": "DSA art. 16 notice", "delisting": "Delisting request"}


@dataclass
class QueueResult:
    notices: list[Notice] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)       # validation errors, named
    partners_skipped: int = 0
    flagged: list[str] = field(default_factory=list)       # queued for a human: no contact/channel
    counter_noticed: int = 0                               # URLs left out: a counter-notice names them
    withheld: list[str] = field(default_factory=list)      # nobody may notify: no holder, mandate, rights there



def notifiable_matches(session: Session) -> list[Match]:
    """Matches that may be notified and are not fully notified yet: confirmed (unless staff
    rejected it) or approved by staff, whose page URL or video is in no first-level notice.

    The video counts as notified once a ``hosting`` item carries its media URL, or the page
    URL when page and video are on one host (the page is then the host's own). The match's
    own items count whatever their URL: the crawler rewrites ``page_url`` when it meets the
    page again under another address (tracking parameters), and the match stage may pick
    another media URL, neither of which is a new infringement. A notice refused at approval
    or before sending does not count: its other URLs go into the next notice."""
    first_level = and_(NoticeItem.notice_id == Notice.id, Notice.kind == "notice", ~refused_notice())
    own = NoticeItem.match_id == Match.id
    page_notified = exists().where(first_level, or_(
        NoticeItem.url == Candidate.page_url,
        and_(own, or_(NoticeItem.role == ItemRole.LINKING, Match.media_url.is_(None),
                      NoticeItem.url != Match.media_url))))
    video_notified = exists().where(first_level, NoticeItem.role == ItemRole.HOSTING,
                                    or_(own, NoticeItem.url == Match.media_url, NoticeItem.url == Candidate.page_url))
    q = (
        select(Match)
        .join(Candidate, Match.candidate_id == Candidate.id)
        .where(or_(and_(Match.decision == Decision.CONFIRMED, Match.review != ReviewState.REJECTED),
                   Match.review == ReviewState.APPROVED))
        # Allowed material (a trailer the studio published) is never notified, whatever
        # its review says (webapp.actions refuses to approve it; this holds regardless).
        .where(Match.decision != Decision.ALLOWED)
        .where(~and_(page_notified, video_notified))
        .options(selectinload(Match.candidate).selectinload(Candidate.host),
                 selectinload(Match.title).selectinload(Title.offers))
        .order_by(Match.id)
    )
    return list(session.scalars(q))


def _partner_at(session: Session, url: str) -> Host | None:
    """A licensed partner whose domain patterns cover ``url``, whichever host is the most
    specific one: a partner registered on a row of its own for a domain that another row
    (an older registration, an automatic one) also covers is still a partner."""
    partners = session.scalars(select(Host).where(Host.licensed_partner.is_(True)).order_by(Host.id))
    return next((h for h in partners if matches_patterns(url, list(h.domain_patterns or []))), None)


def _sides(match: Match) -> list[str]:
    """The URLs a match involves: the page, and the video when it is elsewhere."""
    c = match.candidate
    media = match.media_url
    return [c.page_url] + ([media] if media and media != c.page_url else [])


def partner_problem(match: Match) -> str | None:
    """Why notifying this match would be a false notice, or None.

    Both sides are checked and either one refuses the whole match: a page on a partner's
    site is the partner's business, and a link site embedding a partner's player points to
    a licensed copy, so neither the page nor the video host is notified."""
    c = match.candidate
    if c.host is not None and c.host.licensed_partner:
        return f"{c.page_url} is on licensed partner {c.host.name!r}"
    session = object_session(match)
    for url in _sides(match):
        host = _partner_at(session, url) if session is not None else None
        if host is not None:
            return f"{url} is on licensed partner {host.name!r}"
        # Same registrable domain (or, for an IP address, same address and port) as one
        # of the title's own offers: our own shop, never a pirate.
        key = host_key(url)
        for o in match.title.offers:
            if key and key == host_key(o.url):
                return f"{url} is on the domain of the title's own offer {o.url}"
    return None


def counter_noticed_urls(session: Session) -> set[str]:
    """Every URL a counter-notice or a statement of reasons names (``inbox``), whatever
    staff decided: such a URL is never notified again automatically, only by a human."""
    out: set[str] = set()
    for urls in session.scalars(select(CounterNotice.urls)):
        out.update(u for u in urls or [] if isinstance(u, str))
    return out


# How ``last_error`` starts on a notice discarded by ``refusal`` (not by staff's own
# ``reject_notice``): its URLs that are still notifiable are notified again.
REFUSED = "refused"


def refused_notice() -> ColumnElement[bool]:
    """SQL: the notice was discarded by a refusal, so its items are not notified."""
    return and_(Notice.status == NoticeStatus.DISCARDED, Notice.last_error.like(f"{REFUSED} %"))


def refusal(notice: Notice, now: datetime | None = None) -> list[str]:
    """Why ``notice`` must not go out as built, checked at approval and just before sending:
    a side of a match on a licensed partner or the title's own shop, a match staff rejected
    since the notice was built, the host itself now a partner, or a title nobody may
    notify for any more (its mandate expired)."""
    problems = [p for it in notice.items if (p := partner_problem(it.match))]
    problems += [f"match {it.match_id} was rejected by staff" for it in notice.items
                 if it.match.review is ReviewState.REJECTED]
    if notice.host.licensed_partner:
        problems.append(f"host {notice.host.name!r} is a licensed partner")
    problems += _withheld_now(notice, now or utc_now())
    return problems


def _withheld_now(notice: Notice, now: datetime) -> list[str]:
    """Titles of ``notice`` nobody may notify for today (a mandate expired while the
    notice waited); a notice built before rights holders existed is left as it was."""
    session = object_session(notice)
    if session is None or notice.notifier_id is None:
        return []
    out, seen = [], set()
    for it in notice.items:
        m = it.match
        if m.title is None or m.title_id in seen:
            continue
        seen.add(m.title_id)
        got = notifier_for(session, m.title, notice.host.jurisdiction, as_utc(now).date())  # type: ignore[union-attr]
        if isinstance(got, Withheld):
            out.append(got.reason)
    return out


def _host_at(session: Session, url: str, cache: dict[str, Host]) -> Host:
    """The registered host covering ``url`` (most specific pattern), else a new one (so
    it is routed, gets a discovered or guessed contact, and shows up in `vigie hosts list`)."""
    key = host_key(url)
    if key not in cache:
        cache[key] = host_for(session, url)
    return cache[key]


def targets_for(session: Session, match: Match, cache: dict[str, Host] | None = None) -> list[tuple[Host, Target]]:
    """Who must remove what for one match: (host, target) pairs.

    The video host gets the media URL (``hosting``) and the linking site the page URL
    (``linking``); one ``hosting`` page URL when both are on the same host or the match
    has no media URL."""
    cache = {} if cache is None else cache
    c = match.candidate
    page_host = _host_at(session, c.page_url, cache)
    # Its ccTLD, else the page's language, locates the site when nothing better did (db.hosts).
    locate_host(page_host, c.page_url, (c.evidence or {}).get("language"))
    sides = _sides(match)
    out = [(page_host, Target.page(match))]
    if len(sides) == 2:
        video_host = _host_at(session, sides[1], cache)
        locate_host(video_host, sides[1])
        if video_host.id != page_host.id:
            out = [(video_host, Target(match, sides[1], ItemRole.HOSTING)),
                   (page_host, Target(match, c.page_url, ItemRole.LINKING))]
    if c.host is None:
        c.host = out[0][0]
    return out


def _already_notified(session: Session, host: Host, target: Target) -> bool:
    """The URL, or this match's item of the same role, is in a first-level notice to ``host``."""
    return session.scalar(select(exists().where(
        NoticeItem.notice_id == Notice.id, Notice.kind == "notice", Notice.host_id == host.id, ~refused_notice(),
        or_(NoticeItem.url == target.url,
            and_(NoticeItem.match_id == target.match.id, NoticeItem.role == target.role))))) or False


def _sender_domain_address(config: Config) -> str:
    from notices.hosts import valid_email

    return valid_email(config.smtp.get("from")) or valid_email(config.notifier.get("email")) \
        or "notices@vigie.invalid"


def make_notice(
    session: Session,
    config: Config,
    *,
    host: Host,
    matches: Sequence[Match] = (),
    targets: Sequence[Target] = (),
    kind: str,
    regime: Regime,
    language: str,
    contact: Contact,
    now: datetime,
    parent: Notice | None = None,
    first_sent: datetime | None = None,
    about_host: Host | None = None,
    needs_approval: bool | None = None,
    parties: dict[int, Party] | None = None,
) -> Notice:
    """Render, validate and add one notice (raises NoticeInvalid naming what is missing).

    ``host`` is whom the notice is addressed to (the row it hangs on); ``about_host``
    is the host the content is on when that differs (upstream and delisting notices).
    ``targets`` are its URLs; each of ``matches`` adds its page URL as the host's own.
    ``parties`` says who notifies for each title (``parties_for`` when not given): a
    title nobody may notify for in the host's territory, or two notifiers in one notice,
    refuse it.
    """
    targets = [*targets, *(Target.page(m) for m in matches)]
    if parties is None:
        parties = parties_for(session, host, [tg.match for tg in targets], now)
    parties = {tid: p for tid, p in parties.items() if tid in {tg.match.title_id for tg in targets}}
    notifiers = {p.notifier.id for p in parties.values()}
    if len(notifiers) > 1:
        raise NoticeInvalid(f"notice to {host.name!r} would have {len(notifiers)} notifiers: one per notice")
    message_id = new_message_id(_sender_domain_address(config))
    reference = "VIGIE-" + message_id[7:19].upper()
    subject_host = about_host or host
    recipient_label = contact.address or "(no contact)"
    ctx = build_context(
        regime=regime.name, regime_title=regime.title, kind=kind, language=language,
        host=subject_host, recipient_label=f"{host.name} <{recipient_label}>",
        notifier=config.notifier, targets=targets, reference=reference, date=now,
        first_sent=first_sent, parties=parties,
    )
    if parent is not None:
        # Earlier notices about these URLs (ACNS ``History``): the one this follows up.
        parent_ref = (parent.subject or "")[1:].split("]", 1)[0] if (parent.subject or "").startswith("[") else ""
        ctx["history"] = [{"id": parent_ref or f"notice {parent.id}",
                           "timestamp": parent.sent_at or first_sent or parent.created_at}]
    rendered = render(ctx)
    regime.validate(ctx, rendered.text)
    titles = ", ".join(w["title"] for w in ctx["works"])
    # Right after our reference, so a long subject cut at SUBJECT_MAX keeps it.
    ticket = host_ticket(session, parent) if parent is not None and kind == "reminder" else None
    subject = SUBJECTS[(kind, language)].format(
        ref=f"[{reference}]" + (f" (ticket {ticket})" if ticket else ""), regime=REGIME_SHORT[regime.name],
        n=ctx["url_count"], host=subject_host.name, titles=titles)

    if needs_approval is None:
        needs_approval = host.needs_approval
    status, error = NoticeStatus.QUEUED, None
    if host.channel.value not in AUTOMATIC_CHANNELS:
        status, error = NoticeStatus.DRAFT, (f"submission task: host {host.name!r} takes notices by "
                                             f"{host.channel.value}; submit it by hand, then mark it submitted")
    elif contact.address is None:
        status, error = NoticeStatus.DRAFT, f"host {host.name!r}: {contact.detail or 'no abuse contact'}"
    elif needs_approval:
        status = NoticeStatus.AWAITING_APPROVAL
    elif guess_needs_approval(config, contact.source, parent):
        status, error = NoticeStatus.AWAITING_APPROVAL, (
            f"guessed contact {contact.address} (RFC 2142, not confirmed by the host): "
            "check it, then approve")
    acns, xarf = machine_parts(ctx, contact)
    notice = Notice(
        host=host, regime=regime.name, template=f"{regime.name}.{language}", language=language,
        recipient=contact.address, recipient_source=contact.source, subject=clean_header_text(subject),
        body_text=rendered.text, body_html=rendered.html,
        acns_xml=acns, xarf_json=xarf, status=status, message_id=message_id,
        last_error=error, kind=kind, parent_id=parent.id if parent else None, created_at=now,
        notifier_id=next(iter(notifiers)) if notifiers else None,
    )
    for tg in targets:
        notice.items.append(NoticeItem(match=tg.match, url=tg.url, role=tg.role))
    session.add(notice)
    session.flush()
    return notice


def machine_parts(ctx: dict[str, Any], contact: Contact) -> tuple[str | None, str]:
    """The notice's ACNS XML (None when no URL has a known server address) and X-ARF
    reports, each validated against its schema: NoticeInvalid names what is wrong, so a
    document an abuse desk's parser would reject never goes out."""
    from fingerprint.matching import CONFIRM_MIN_SCORE

    acns = machine.acns_xml(ctx, service_provider_email=contact.address, match_threshold=CONFIRM_MIN_SCORE)
    problems = machine.check_acns(acns) if acns else []
    if problems:
        raise NoticeInvalid(f"ACNS document of the notice to {ctx['host']['name']!r} is invalid: "
                            + "; ".join(problems[:5]))
    return acns, machine.xarf_json(ctx)


def guess_needs_approval(config: Config, source: str | None, parent: Notice | None) -> bool:
    """A notice to a guessed abuse@domain address waits for staff, unless the config
    allows guesses or staff already approved the notice it follows up."""
    if source != "guess" or bool(config.get("notices", "allow_guessed_contacts")):
        return False
    return parent is None or parent.approved_at is None


def host_ticket(session: Session, notice: Notice) -> str | None:
    """The ticket number the host's desk gave ``notice`` (``inbox`` reads it from their
    acknowledgement), for a reminder's subject so their desk files it with the first. It
    comes from a hostile mail and goes into a header: kept only when plain ASCII letters,
    digits and dashes."""
    for ticket in session.scalars(select(InboxMessage.ticket).where(
            InboxMessage.notice_id == notice.id, InboxMessage.ticket.is_not(None)).order_by(InboxMessage.id.desc())):
        if ticket and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,40}", ticket):
            return ticket
    return None


def party_for(session: Session, host: Host, match: Match, now: datetime,
              cache: dict[tuple[int, str | None], Party | Withheld] | None = None) -> Party | Withheld:
    """Who notifies ``host`` about the match's title on ``now``'s day, or why nobody may
    (``db.rights.notifier_for`` in the host's jurisdiction)."""
    assert match.title is not None  # notifiable matches have a title
    key = (match.title.id, (host.jurisdiction or "").upper() or None)
    if cache is not None and key in cache:
        return cache[key]
    got = notifier_for(session, match.title, host.jurisdiction, as_utc(now).date())  # type: ignore[union-attr]
    if cache is not None:
        cache[key] = got
    return got


def parties_for(session: Session, host: Host, matches: Sequence[Match], now: datetime) -> dict[int, Party]:
    """Who notifies for each title of ``matches``; NoticeInvalid when nobody may for one."""
    out: dict[int, Party] = {}
    for m in matches:
        if m.title_id is None or m.title_id in out:
            continue
        got = party_for(session, host, m, now)
        if isinstance(got, Withheld):
            raise NoticeInvalid(f"not sent to {host.name!r}: {got.reason}")
        out[m.title_id] = got
    return out


def record_withheld(match: Match, host: Host, reason: str, now: datetime) -> None:
    """Keep on the match why it is not notified to ``host`` (review, report and
    ``vigie status`` show it); written only when the reason changes."""
    details = dict(match.details or {})
    withheld = dict(details.get("withheld") or {})
    if (withheld.get(host.name) or {}).get("reason") == reason:
        return
    withheld[host.name] = {"reason": reason, "at": as_utc(now).isoformat()}  # type: ignore[union-attr]
    details["withheld"] = withheld
    match.details = details


def clear_withheld(match: Match, host: Host) -> None:
    details = dict(match.details or {})
    withheld = dict(details.get("withheld") or {})
    if host.name in withheld:
        del withheld[host.name]
        details["withheld"] = withheld
        if not withheld:
            del details["withheld"]
        match.details = details


# Any constant: the advisory lock key of notice building on PostgreSQL.
_BUILD_LOCK_KEY = 0x56494742  # "VIGB"


def one_builder_at_a_time(session: Session) -> None:
    """Wait for any other transaction building notices, then hold the turn until commit.

    Two builders at once (``vigie notices send`` by hand while the scheduler runs one,
    several workers) would both read a match as not notified and both queue a notice for
    it. On PostgreSQL a transaction-level advisory lock; on SQLite a write that changes
    nothing takes the database's write lock before the first read, so the next builder
    waits (busy timeout) and then reads what this one committed."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BUILD_LOCK_KEY})
    else:
        conn.execute(text("UPDATE notices SET id = id WHERE 1 = 0"))


def queue_notices(session: Session, config: Config, now: datetime | None = None) -> QueueResult:
    """Queue a notice per host and notifier for every URL of the notifiable matches that
    someone may notify (the stage function); the others are withheld, the reason kept.

    Builders take turns (``one_builder_at_a_time``): the caller's transaction holds the
    turn until it ends, so commit soon after."""
    now = now or utc_now()
    one_builder_at_a_time(session)
    result = QueueResult()
    # One notice per host and notifier: a holder's own, or an agent's for all its principals.
    per_host: dict[tuple[int, int], list[Target]] = defaultdict(list)
    group_parties: dict[tuple[int, int], dict[int, Party]] = defaultdict(dict)
    hosts: dict[int, Host] = {}
    cache: dict[str, Host] = {}
    who: dict[tuple[int, str | None], Party | Withheld] = {}
    taken: set[tuple[int, str]] = set()
    contested = counter_noticed_urls(session)
    for m in notifiable_matches(session):
        if partner_problem(m):
            result.partners_skipped += 1
            continue
        pairs = targets_for(session, m, cache)
        if any(host.licensed_partner for host, _ in pairs):
            result.partners_skipped += 1
            continue
        for host, target in pairs:
            # One item per URL and host: two pages embedding the same video name it once,
            # and a URL already notified is verification's to follow up, not ours.
            if (host.id, target.url) in taken or _already_notified(session, host, target):
                continue
            if target.url in contested:
                result.counter_noticed += 1
                continue
            # The host's jurisdiction decides whose rights apply there (and the regime).
            apply_default_jurisdiction(host, config.get("notices", "default_jurisdiction"))
            party = party_for(session, host, m, now, who)
            if isinstance(party, Withheld):
                # A false notice is the worst bug: no holder, an expired mandate or no
                # rights in the host's territory, and nobody may ask for a takedown.
                record_withheld(m, host, party.reason, now)
                result.withheld.append(f"{target.url} to {host.name}: {party.reason}")
                continue
            clear_withheld(m, host)
            taken.add((host.id, target.url))
            hosts[host.id] = host
            group = (host.id, party.notifier.id)
            per_host[group].append(target)
            assert m.title_id is not None
            group_parties[group][m.title_id] = party

    size = max(1, int(config.get("notices", "max_urls_per_notice")))
    contacts: dict[int, Contact] = {}  # one look-up per host, whoever notifies it
    for group, targets in per_host.items():
        host = hosts[group[0]]
        regime = regime_for_host(host)
        language = language_for_host(host)
        if host.id not in contacts:
            contacts[host.id] = resolve_contact(
                host, origin=targets[0].url,
                discover=bool(config.get("notices", "discover_contacts")),
                timeout=float(config.get("notices", "http_timeout")),
                allow_loopback=bool(config.get("notices", "allow_loopback")))
        contact = contacts[host.id]
        remember_contact(host, contact)
        targets.sort(key=lambda tg: (tg.match.title_id, tg.match.id))
        for i in range(0, len(targets), size):
            try:
                n = make_notice(session, config, host=host, targets=targets[i:i + size],
                                kind="notice", regime=regime, language=language,
                                contact=contact, now=now, parties=group_parties[group])
            except NoticeInvalid as exc:
                result.refused.append(str(exc))
                continue
            result.notices.append(n)
            if n.status is NoticeStatus.DRAFT or (n.status is NoticeStatus.AWAITING_APPROVAL and n.last_error):
                # A submission task, no contact, or a guessed contact to check.
                result.flagged.append(f"notice {n.id}: {n.last_error}")
    return result


def _audit(session: Session, actor: str, action: str, notice: Notice, before: str) -> None:
    session.add(AuditLog(actor=actor, action=action, object_type="notice", object_id=notice.id,
                         before={"status": before}, after={"status": notice.status.value}))


def approve_notice(session: Session, notice_id: int, *, user_id: int | None = None,
                   actor: str = "staff", now: datetime | None = None) -> Notice:
    """Staff approval of a notice waiting for it: it joins the outbox (QUEUED).

    Re-checks licensed partners and staff's match rejections (``refusal``): such a
    notice is discarded instead, and its other URLs go into the next notice built.
    Called by the review web app and by ``vigie notices approve``.
    """
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    if notice.status is not NoticeStatus.AWAITING_APPROVAL:
        raise NoticeInvalid(f"notice {notice_id} is {notice.status.value}, not awaiting approval")
    before = notice.status.value
    problems = refusal(notice, now)
    if problems:
        notice.status = NoticeStatus.DISCARDED
        notice.last_error = f"{REFUSED} at approval: " + "; ".join(problems)
    else:
        notice.status = NoticeStatus.QUEUED
        notice.approved_by_id = user_id
        notice.approved_at = now or utc_now()
    _audit(session, actor, "notice.approve", notice, before)
    session.flush()
    return notice


def reject_notice(session: Session, notice_id: int, *, actor: str = "staff", reason: str = "") -> Notice:
    """Staff refusal: the notice is discarded (kept, never sent)."""
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(f"no notice {notice_id}")
    if notice.status not in (NoticeStatus.AWAITING_APPROVAL, NoticeStatus.DRAFT, NoticeStatus.QUEUED,
                             NoticeStatus.FAILED):
        raise NoticeInvalid(f"notice {notice_id} is {notice.status.value}: too late to reject")
    before = notice.status.value
    notice.status = NoticeStatus.DISCARDED
    notice.last_error = f"rejected by {actor}" + (f": {reason}" if reason else "")
    _audit(session, actor, "notice.reject", notice, before)
    session.flush()
    return notice
