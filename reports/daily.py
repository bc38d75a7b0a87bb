"""The daily match report: what happened yesterday, for the staff's morning.

Sits at the end of the flow: it only reads the database (matches, notices and their
items, checks, crawl runs) and writes one self-contained HTML file (Jinja2; thumbnails
embedded as ``data:`` URIs, charts as inline SVG, no external asset, so it can be mailed
and archived) plus CSV files of the same rows. The HTML is also archived in the
``reports`` table for the review app. ``vigie report`` and the scheduler call
``build_report``; ``mail_report`` sends it to the staff list when SMTP is configured.

The day is a calendar day in the configured time zone (Europe/Paris by default).
Everything a pirate page wrote (page titles, URLs) is escaped by Jinja's autoescaping,
only http(s) URLs ever become links, and CSV cells that a spreadsheet would run as a
formula are neutralised.
"""

from __future__ import annotations

import base64
import csv
import re
import smtplib
import ssl
import statistics
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from db.auditchain import chain_head
from db.models import (
    Candidate,
    CandidateStatus,
    CounterNotice,
    CounterNoticeState,
    CrawlRun,
    Decision,
    Host,
    InboxMessage,
    ItemState,
    Match,
    MatchFrame,
    Notice,
    NoticeItem,
    NoticeStatus,
    ReplyKind,
    Report,
    ReviewState,
    Site,
    utcnow,
)
from db.rights import withheld_matches
from reports import charts
from foundation.config import Config
from foundation.errors import ConfigError, InvalidInput, ReportError
from foundation.schedules import late_reason
from foundation.timeutil import as_utc, local_today, zone

HISTORY_DAYS = 30
# Host.kind of a search engine: it gets delisting requests, never takedowns.
SEARCH_ENGINE = "search_engine"


# --------------------------------------------------------------------------- helpers


def default_day(config: Config, now: datetime | None = None) -> date:
    """Yesterday in the configured time zone."""
    return local_today(config, now) - timedelta(days=1)


# Days a report can be made for: the history window before the day and the day after
# it must be dates too (0001-01-01 and 9999-12-31 once overflowed).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def parse_day(text: str) -> date:
    try:
        return check_day(date.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInput(f"bad date {text!r}: use YYYY-MM-DD") from None


def check_day(day: date) -> date:
    """``day`` if a report can be made for it; InvalidInput otherwise."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(f"no report for {day.isoformat()}: a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC (a DST day has 23 or 25 hours)."""
    start = datetime.combine(day, time(), tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(timezone.utc)
    return start, end


def safe_url(url: str | None) -> str | None:
    """The URL if it may become a link (http/https, no control characters), else None."""
    if not url or not re.match(r"^https?://[^\s\x00-\x1f\x7f]+$", url, re.IGNORECASE):
        return None
    return url


def one_line(text: str | None, limit: int = 300) -> str:
    """Hostile text on one line: control and format characters (CR, LF, NUL, the bidi
    overrides and isolates such as U+202E, zero-width ones) and line separators become
    spaces, as in a notice's mail subject (``notices.mail.clean_header_text``): a page
    title cannot reorder what staff read around it."""
    cleaned = " ".join("".join(" " if unicodedata.category(ch) in _NOT_TEXT else ch for ch in text or "").split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


# Cc/Cf/Zl/Zp: control, format (bidi overrides, zero-width), line and paragraph separators.
_NOT_TEXT = frozenset(("Cc", "Cf", "Zl", "Zp"))


def hms(seconds: float | None) -> str:
    """A timecode, H:MM:SS."""
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def data_uri(jpeg: bytes | None) -> str | None:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii") if jpeg else None


def csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ (or a tab/CR) is a formula to Excel and LibreOffice:
    # a hostile page title must not run in an analyst's spreadsheet (OWASP CSV injection).
    if isinstance(value, str):
        value = one_line(value, 2000)
        if value[:1] in ("=", "+", "-", "@"):
            return "'" + value
    return value


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------- data


@dataclass
class MatchRow:
    id: int
    title_id: int
    title: str
    page_title: str
    site: str
    host: str
    page_url: str
    page_link: str | None
    media_url: str
    score: float
    matched_s: float
    decision: str
    review: str
    reason: str
    cand_t: float | None
    ref_t: float | None
    ref_thumb: str | None
    cand_thumb: str | None
    offers: list[tuple[str, str]]
    found_at: str
    reupload: bool = False

    def csv(self, section: str) -> dict[str, Any]:
        return {
            "section": section, "match_id": self.id, "found_at": self.found_at,
            "title_id": self.title_id, "title": self.title, "score": round(self.score, 3),
            "matched_s": round(self.matched_s, 1), "decision": self.decision, "review": self.review,
            "site": self.site, "host": self.host, "page_url": self.page_url,
            "media_url": self.media_url, "page_title": self.page_title,
            "candidate_t": None if self.cand_t is None else round(self.cand_t, 1),
            "reference_t": None if self.ref_t is None else round(self.ref_t, 1),
            "offers": " ".join(u for _, u in self.offers), "reupload": int(self.reupload),
        }


@dataclass
class HostStat:
    host: str
    notified: int = 0
    removed: int = 0
    live: int = 0
    overdue: int = 0
    escalated: int = 0
    ttd_hours: list[float] = field(default_factory=list)

    @property
    def compliance(self) -> float | None:
        return self.removed / self.notified if self.notified else None

    @property
    def median_ttd(self) -> float | None:
        return _median(self.ttd_hours)


@dataclass
class ReportData:
    day: date
    timezone: str
    generated_at: str
    headline: dict[str, int | str]
    new_matches: list[MatchRow]
    by_title: list[tuple[str, int]]
    by_site: list[tuple[str, int]]
    by_host: list[tuple[str, int]]
    review_queue: list[MatchRow]
    notices_sent: list[dict[str, Any]]
    notices_awaiting: list[dict[str, Any]]
    notices_failed: list[dict[str, Any]]
    # Notices a human must send: submission tasks (web-form/API hosts) and other drafts.
    notices_tasks: list[dict[str, Any]]
    notices_drafts: list[dict[str, Any]]
    takedowns: list[dict[str, Any]]
    # Delisting requests per search engine (last 30 days): never counted as takedowns.
    search_engines: list[dict[str, Any]]
    hosts: list[HostStat]
    reuploads: list[MatchRow]
    repeat_infringers: list[dict[str, Any]]
    top_sites: list[dict[str, Any]]
    crawl_runs: list[dict[str, Any]]
    late_sites: list[dict[str, Any]]
    chart_daily: charts.Chart
    chart_hosts: charts.Chart | None
    # The audit chain's head (row id, hash) when the report was made: printed in the report
    # and mailed, it anchors the log outside the database (db.auditchain).
    audit_head: tuple[int, str] | None = None
    # The hosts' replies (inbox/): received this day by kind, hosts that never answered a
    # notice sent before the day, counter-notices staff have not decided.
    replies: dict[str, int] = field(default_factory=dict)
    silent_hosts: list[dict[str, Any]] = field(default_factory=list)
    counter_notices: list[dict[str, Any]] = field(default_factory=list)
    # Confirmed matches nobody may notify to a host, and why (db.rights.withheld_matches).
    withheld: list[dict[str, Any]] = field(default_factory=list)


def _confirmed(m: Match) -> bool:
    if m.review is ReviewState.REJECTED or m.decision is Decision.ALLOWED:
        return False
    return m.review is ReviewState.APPROVED or m.decision is Decision.CONFIRMED


def _match_row(m: Match, frame: MatchFrame | None, tz: ZoneInfo) -> MatchRow:
    c: Candidate = m.candidate
    created = as_utc(m.created_at)
    return MatchRow(
        id=m.id, title_id=m.title_id, title=one_line(m.title.title), page_title=one_line(c.title_text),
        site=one_line(c.site.name) if c.site else "", host=one_line(c.host.name) if c.host else "",
        page_url=c.page_url, page_link=safe_url(c.page_url), media_url=m.media_url or "",
        score=m.score, matched_s=m.matched_s, decision=m.decision.value, review=m.review.value,
        reason=one_line(m.review_reason),
        cand_t=frame.cand_t if frame else None, ref_t=frame.ref_t if frame else None,
        ref_thumb=data_uri(frame.ref_jpeg) if frame else None,
        cand_thumb=data_uri(frame.cand_jpeg) if frame else None,
        offers=[(one_line(o.provider) or "offer", o.url) for o in m.title.offers if safe_url(o.url)],
        found_at=created.astimezone(tz).strftime("%Y-%m-%d %H:%M") if created else "",
    )


def _match_query():  # type: ignore[no-untyped-def]
    return select(Match).options(
        selectinload(Match.candidate).selectinload(Candidate.site),
        selectinload(Match.candidate).selectinload(Candidate.host),
        selectinload(Match.title),
    )


def _frames(session: Session, ids: list[int]) -> dict[int, MatchFrame]:
    if not ids:
        return {}
    return {f.match_id: f for f in session.scalars(select(MatchFrame).where(MatchFrame.match_id.in_(ids)))}


def _notice_row(n: Notice, tz: ZoneInfo) -> dict[str, Any]:
    def local(dt: datetime | None) -> str:
        dt = as_utc(dt)
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else ""

    return {
        "notice_id": n.id, "host": one_line(n.host.name), "status": n.status.value,
        "kind": getattr(n, "kind", "notice"), "regime": n.regime, "recipient": one_line(n.recipient),
        "urls": len(n.items), "created_at": local(n.created_at), "sent_at": local(n.sent_at),
        "attempts": n.attempts, "error": one_line(n.last_error),
    }




def takedown_items(session: Session, end: datetime) -> list[NoticeItem]:
    """One item per infringing URL: the latest item of a sent first-level notice (kind
    ``notice``; a re-upload's new notice supersedes the old one) to a host that is not a
    search engine."""
    latest = (select(func.max(NoticeItem.id)).join(Notice, NoticeItem.notice_id == Notice.id)
              .join(Host, Notice.host_id == Host.id)
              .where(Notice.kind == "notice", Notice.sent_at.is_not(None), Notice.sent_at < end,
                     or_(Host.kind.is_(None), Host.kind != SEARCH_ENGINE))
              .group_by(NoticeItem.url))
    return list(session.scalars(
        select(NoticeItem).where(NoticeItem.id.in_(latest)).order_by(NoticeItem.id)
        .options(selectinload(NoticeItem.notice).selectinload(Notice.host),
                 selectinload(NoticeItem.match).selectinload(Match.candidate))))


def search_engine_rows(session: Session, start: datetime, end: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per search engine: delisting requests and the distinct URLs they asked to delist
    (sent in the window), what waits, the last one sent. Not takedowns: an engine hosts
    nothing, it only stops pointing to it."""
    rows = []
    engines = session.scalars(select(Host).where(Host.kind == SEARCH_ENGINE).order_by(Host.name))
    for engine in engines:
        notices = list(session.scalars(select(Notice).where(Notice.host_id == engine.id, Notice.created_at < end)
                                       .options(selectinload(Notice.items))))
        sent = [n for n in notices if n.sent_at is not None and start <= as_utc(n.sent_at) < end]  # type: ignore[operator]
        pending = [n for n in notices if n.status in (NoticeStatus.QUEUED, NoticeStatus.AWAITING_APPROVAL,
                                                      NoticeStatus.DRAFT, NoticeStatus.FAILED,
                                                      NoticeStatus.IN_DOUBT)]
        if not sent and not pending:
            continue
        last = max((as_utc(n.sent_at) for n in sent), default=None)  # type: ignore[type-var]
        rows.append({"engine": one_line(engine.name), "requests_sent": len(sent),
                     "urls_requested": len({it.url for n in sent for it in n.items}),
                     "pending": len(pending),
                     "last_sent": last.astimezone(tz).strftime("%Y-%m-%d %H:%M") if last else ""})
    return rows


def collect(session: Session, config: Config, day: date, *, now: datetime | None = None,
            titles: set[int] | None = None) -> ReportData:
    """Gather every section of the report for ``day`` (a local calendar day).

    ``titles``: a rights holder's or an agent's report (``webapp.tenancy``): only the
    matches, notices and takedowns of those titles; the installation's crawl health and
    audit head are left out."""
    tz = zone(config)
    start, end = day_bounds(day, tz)
    hist_start, _ = day_bounds(day - timedelta(days=HISTORY_DAYS - 1), tz)
    grace = timedelta(hours=float(config.get("notices", "grace_hours")))

    # Matches of the last 30 days (for the charts and repeat infringers); the day's are a subset.
    recent = list(session.scalars(_match_query().where(Match.created_at >= hist_start, Match.created_at < end)
                                  .order_by(Match.created_at, Match.id)))
    todays = [m for m in recent if as_utc(m.created_at) >= start]  # type: ignore[operator]
    new_confirmed = [m for m in todays if _confirmed(m)]
    queue = list(session.scalars(_match_query().where(Match.decision == Decision.REVIEW,
                                                      Match.review == ReviewState.NONE,
                                                      Match.created_at < end)
                                 .order_by(Match.score.desc(), Match.id)))
    if titles is not None:
        recent = [m for m in recent if m.title_id in titles]
        todays = [m for m in todays if m.title_id in titles]
        new_confirmed = [m for m in new_confirmed if m.title_id in titles]
        queue = [m for m in queue if m.title_id in titles]
    frames = _frames(session, [m.id for m in new_confirmed] + [m.id for m in queue])

    # Items of notices sent before the end of the day (takedowns are tracked on them): a
    # takedown is one infringing URL, tracked on its latest first-level notice. Reminders,
    # upstream notices and delisting requests point back at those URLs, they are not more
    # takedowns; search engines host nothing and get their own section.
    items = takedown_items(session, end)
    if titles is not None:
        items = [it for it in items if it.match.title_id in titles]
    removed_before: dict[tuple[int, int | None], datetime] = {}
    for it in items:
        ra = as_utc(it.removed_at)
        if it.state is ItemState.REMOVED and ra is not None and ra < start:
            key = (it.match.title_id, it.match.candidate.site_id)
            removed_before[key] = min(ra, removed_before.get(key, ra))

    new_rows: list[MatchRow] = []
    for m in new_confirmed:
        row = _match_row(m, frames.get(m.id), tz)
        row.reupload = (m.title_id, m.candidate.site_id) in removed_before
        new_rows.append(row)
    queue_rows = [_match_row(m, frames.get(m.id), tz) for m in queue]

    def counts(key: str) -> list[tuple[str, int]]:
        return Counter(getattr(r, key) or "(unknown)" for r in new_rows).most_common()

    # Notices.
    sent = list(session.scalars(select(Notice).where(Notice.sent_at >= start, Notice.sent_at < end)
                                .options(selectinload(Notice.host), selectinload(Notice.items))
                                .order_by(Notice.sent_at, Notice.id)))
    awaiting = list(session.scalars(select(Notice).where(Notice.status == NoticeStatus.AWAITING_APPROVAL)
                                    .options(selectinload(Notice.host), selectinload(Notice.items))
                                    .order_by(Notice.created_at, Notice.id)))
    failed = list(session.scalars(select(Notice).where(Notice.status == NoticeStatus.FAILED,
                                                       Notice.created_at >= hist_start)
                                  .options(selectinload(Notice.host), selectinload(Notice.items))
                                  .order_by(Notice.created_at, Notice.id)))
    drafts = list(session.scalars(select(Notice).where(Notice.status == NoticeStatus.DRAFT, Notice.created_at < end)
                                  .options(selectinload(Notice.host), selectinload(Notice.items))
                                  .order_by(Notice.created_at, Notice.id)))
    if titles is not None:
        def mine(n: Notice) -> bool:
            return bool(n.items) and all(it.match.title_id in titles for it in n.items)

        sent, awaiting, failed, drafts = ([n for n in ns if mine(n)] for ns in (sent, awaiting, failed, drafts))
    tasks = [n for n in drafts if n.host.channel.by_hand]
    drafts = [n for n in drafts if not n.host.channel.by_hand]
    # Search engines and the hosts' replies are the installation's, as its crawl health.
    engines = search_engine_rows(session, hist_start, end, tz) if titles is None else []

    # Takedowns, per item and per host (compliance over the last 30 days of notices).
    takedowns: list[dict[str, Any]] = []
    hosts: dict[str, HostStat] = {}
    for it in items:
        n = it.notice
        sent_at = as_utc(n.sent_at)
        assert sent_at is not None
        removed_at = as_utc(it.removed_at)
        due = as_utc(getattr(it, "due_at", None)) or sent_at + grace
        removed = it.state is ItemState.REMOVED and removed_at is not None and removed_at < end
        escalated = it.state is ItemState.ESCALATED or getattr(it, "escalation_level", 0) > 0
        overdue = not removed and due < end
        status = ("removed" if removed else "escalated" if escalated else "overdue" if overdue
                  else "live" if it.state is ItemState.LIVE else "notified")
        removed_today = removed and removed_at >= start  # type: ignore[operator]
        if removed_today or not removed:
            takedowns.append({
                "item_id": it.id, "notice_id": n.id, "host": one_line(n.host.name), "url": it.url,
                "link": safe_url(it.url), "status": status,
                "sent_at": sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "due_at": due.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "removed_at": removed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if removed else "",
                "hours_to_takedown": round((removed_at - sent_at).total_seconds() / 3600, 1) if removed else "",
            })
        if sent_at >= hist_start:
            hs = hosts.setdefault(n.host.name, HostStat(one_line(n.host.name)))
            hs.notified += 1
            hs.removed += removed
            hs.live += (not removed)
            hs.overdue += overdue and not escalated
            hs.escalated += escalated and not removed
            if removed:
                hs.ttd_hours.append((removed_at - sent_at).total_seconds() / 3600)  # type: ignore[operator]
    takedowns.sort(key=lambda r: (["removed", "escalated", "overdue", "live", "notified"].index(r["status"]),
                                  r["host"], r["item_id"]))
    host_stats = sorted(hosts.values(), key=lambda h: (-(h.notified), h.host))

    # Repeat infringers: sites and hosts with confirmed matches on two or more days.
    days_by: dict[tuple[str, str], set[date]] = defaultdict(set)
    count_by: Counter[tuple[str, str]] = Counter()
    for m in recent:
        if not _confirmed(m):
            continue
        d = as_utc(m.created_at).astimezone(tz).date()  # type: ignore[union-attr]
        for kind, obj in (("site", m.candidate.site), ("host", m.candidate.host)):
            if obj is not None:
                days_by[(kind, obj.name)].add(d)
                count_by[(kind, obj.name)] += 1
    repeat = [{"kind": k, "name": one_line(n), "days": len(ds), "matches": count_by[(k, n)]}
              for (k, n), ds in days_by.items() if len(ds) >= 2]
    repeat.sort(key=lambda r: (-r["days"], -r["matches"], r["kind"], r["name"]))

    site_today = Counter(r.site for r in new_rows)
    top_sites = [{"site": one_line(name), "matches_30d": c, "matches_day": site_today.get(one_line(name), 0)}
                 for (kind, name), c in count_by.most_common() if kind == "site"][:10]

    # Crawl health.
    runs = list(session.scalars(select(CrawlRun).where(CrawlRun.started_at >= start, CrawlRun.started_at < end)
                                .options(selectinload(CrawlRun.site)).order_by(CrawlRun.started_at)))
    run_rows = [{
        "run_id": r.id, "site": one_line(r.site.name), "status": r.status,
        "started_at": as_utc(r.started_at).astimezone(tz).strftime("%H:%M"),  # type: ignore[union-attr]
        "minutes": round((as_utc(r.finished_at) - as_utc(r.started_at)).total_seconds() / 60, 1)  # type: ignore[operator]
        if r.finished_at else "",
        "pages": r.pages, "candidates_new": r.candidates_new, "errors": r.errors,
        "first_error": one_line(str(r.error_log[0]) if r.error_log else "", 200),
    } for r in runs]
    late = []
    # Crawl health is the installation's, not a rights holder's.
    sites = session.scalars(select(Site).where(Site.enabled.is_(True), Site.schedule.is_not(None))
                            .order_by(Site.name)) if titles is None else []
    if titles is not None:
        run_rows = []
    for site in sites:
        last = as_utc(session.scalar(select(CrawlRun.started_at).where(CrawlRun.site_id == site.id,
                                                                       CrawlRun.started_at < end)
                                     .order_by(CrawlRun.started_at.desc()).limit(1)))
        why = late_reason(site.schedule or "", last, end, tz)
        if why:
            late.append({"site": one_line(site.name), "schedule": site.schedule, "why": why})

    # Charts: 30 days of confirmed matches and takedowns.
    days = [day - timedelta(days=HISTORY_DAYS - 1 - i) for i in range(HISTORY_DAYS)]
    per_day_matches = Counter(as_utc(m.created_at).astimezone(tz).date() for m in recent if _confirmed(m))  # type: ignore[union-attr]
    per_day_removed = Counter(as_utc(it.removed_at).astimezone(tz).date() for it in items  # type: ignore[union-attr]
                              if it.state is ItemState.REMOVED and it.removed_at is not None)
    chart_daily = charts.daily_bars(
        [d.isoformat() for d in days],
        [("confirmed matches", [per_day_matches.get(d, 0) for d in days]),
         ("takedowns", [per_day_removed.get(d, 0) for d in days])],
        title=f"Matches and takedowns per day, last {HISTORY_DAYS} days")
    rated = [(h.host, h.compliance) for h in host_stats if h.compliance is not None]
    chart_hosts = charts.host_bars(rated[:15], title="Compliance per host (share of notified URLs removed)") \
        if rated else None

    # The hosts' replies may concern any tenant's titles: the installation's report only.
    replies, silent, cases = _replies(session, start, end, tz) if titles is None else ({}, [], [])

    headline: dict[str, int | str] = {
        "new confirmed matches": len(new_rows),
        "waiting for review": len(queue_rows),
        "rejected by staff": sum(1 for m in todays if m.review is ReviewState.REJECTED),
        "notices sent": len(sent),
        "notices awaiting approval": len(awaiting),
        "notices failed": len(failed),
        "submission tasks to do": len(tasks),
        "takedowns": sum(1 for t in takedowns if t["status"] == "removed"),
        "overdue or escalated": sum(1 for t in takedowns if t["status"] in ("overdue", "escalated")),
        "re-uploads": sum(r.reupload for r in new_rows),
        "replies from hosts": sum(replies.values()),
        "counter-notices open": len(cases),
        "crawl runs": len(run_rows),
        "crawl errors": sum(r["errors"] for r in run_rows),
        # Film pages whose player needs the browser resolver, crawled where none ran: a
        # state, not a day's event (they wait until a crawl with a browser finds them).
        "pages needing a browser": int(session.scalar(select(func.count()).select_from(Candidate).where(
            Candidate.status == CandidateStatus.NEEDS_BROWSER)) or 0),
    }
    if titles is not None:
        del headline["pages needing a browser"]  # the installation's crawl, like crawl health
    return ReportData(
        day=day, timezone=str(tz), generated_at=(now or utcnow()).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z"),
        withheld=[w for w in withheld_matches(session) if titles is None or w["title_id"] in titles],
        headline=headline, new_matches=new_rows, by_title=counts("title"), by_site=counts("site"),
        by_host=counts("host"), review_queue=queue_rows,
        notices_sent=[_notice_row(n, tz) for n in sent],
        notices_awaiting=[_notice_row(n, tz) for n in awaiting],
        notices_failed=[_notice_row(n, tz) for n in failed],
        notices_tasks=[_notice_row(n, tz) for n in tasks],
        notices_drafts=[_notice_row(n, tz) for n in drafts],
        search_engines=engines,
        takedowns=takedowns, hosts=host_stats, reuploads=[r for r in new_rows if r.reupload],
        repeat_infringers=repeat, top_sites=top_sites, crawl_runs=run_rows, late_sites=late,
        chart_daily=chart_daily, chart_hosts=chart_hosts,
        audit_head=chain_head(session) if titles is None else None,
        replies=replies, silent_hosts=silent, counter_notices=cases,
    )


def _replies(session: Session, start: datetime, end: datetime,
             tz: ZoneInfo) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
    """The hosts' replies of the day by kind, the hosts that never answered a notice sent
    before the day, and the open counter-notices with their DMCA put-back windows."""
    received = dict(session.execute(
        select(InboxMessage.kind, func.count()).where(InboxMessage.received_at >= start,
                                                      InboxMessage.received_at < end)
        .group_by(InboxMessage.kind)).all())
    replies = {k.value: int(received.get(k, 0)) for k in ReplyKind}
    answered = select(InboxMessage.host_id).where(InboxMessage.host_id.is_not(None))
    silent = [{"host": one_line(name), "notices": int(n),
               "first_sent": as_utc(first).astimezone(tz).strftime("%Y-%m-%d")}  # type: ignore[union-attr]
              for name, n, first in session.execute(
                  select(Host.name, func.count(Notice.id), func.min(Notice.sent_at))
                  .join(Notice, Notice.host_id == Host.id)
                  .where(Notice.sent_at.is_not(None), Notice.sent_at < start, Host.id.not_in(answered))
                  .group_by(Host.name).order_by(func.count(Notice.id).desc(), Host.name))]
    today = end.astimezone(tz).date()
    cases = []
    for cn in session.scalars(select(CounterNotice).where(CounterNotice.state == CounterNoticeState.OPEN)
                              .order_by(CounterNotice.putback_from, CounterNotice.id)):
        window = ""
        if cn.putback_from is not None:
            window = f"{cn.putback_from.isoformat()} to {cn.putback_until.isoformat() if cn.putback_until else '?'}"
            if today >= cn.putback_from:
                window += " (begun: decide now)"
        cases.append({"id": cn.id, "notice_id": cn.notice_id, "regime": cn.regime,
                      "received": as_utc(cn.received_at).astimezone(tz).strftime("%Y-%m-%d"),  # type: ignore[union-attr]
                      "urls": " ".join(one_line(u, 300) for u in cn.urls or []), "window": window})
    return replies, silent, cases


# --------------------------------------------------------------------------- rendering


def _env() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["hms"] = hms
    env.filters["pct"] = lambda v: "–" if v is None else f"{v:.0%}"
    env.filters["hours"] = lambda v: "–" if v is None else f"{v:.1f} h"
    return env


def render_html(data: ReportData) -> str:
    return _env().get_template("daily.html").render(r=data, Markup=Markup)


def csv_rows(data: ReportData) -> dict[str, list[dict[str, Any]]]:
    hosts = [{"host": h.host, "notified": h.notified, "removed": h.removed, "still_live": h.live,
              "overdue": h.overdue, "escalated": h.escalated,
              "compliance": "" if h.compliance is None else round(h.compliance, 3),
              "median_hours_to_takedown": "" if h.median_ttd is None else round(h.median_ttd, 1)}
             for h in data.hosts]
    return {
        "matches": [r.csv("new") for r in data.new_matches],
        "review": [r.csv("review") for r in data.review_queue],
        "notices": ([{"section": "sent", **n} for n in data.notices_sent]
                    + [{"section": "awaiting_approval", **n} for n in data.notices_awaiting]
                    + [{"section": "failed", **n} for n in data.notices_failed]
                    + [{"section": "submission_task", **n} for n in data.notices_tasks]
                    + [{"section": "draft", **n} for n in data.notices_drafts]),
        "search_engines": data.search_engines,
        "takedowns": [{k: v for k, v in t.items() if k != "link"} for t in data.takedowns],
        "hosts": hosts,
        "sites": data.top_sites,
        "crawl_runs": data.crawl_runs,
    }


def _write_csv(path: Path, rows: list[dict[str, Any]], header: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for row in rows:
            w.writerow({k: csv_cell(v) for k, v in row.items()})


_HEADERS: dict[str, list[str]] = {
    "matches": ["section", "match_id", "found_at", "title_id", "title", "score", "matched_s", "decision",
                "review", "site", "host", "page_url", "media_url", "page_title", "candidate_t",
                "reference_t", "offers", "reupload"],
    "notices": ["section", "notice_id", "host", "status", "kind", "regime", "recipient", "urls",
                "created_at", "sent_at", "attempts", "error"],
    "takedowns": ["item_id", "notice_id", "host", "url", "status", "sent_at", "due_at", "removed_at",
                  "hours_to_takedown"],
    "hosts": ["host", "notified", "removed", "still_live", "overdue", "escalated", "compliance",
              "median_hours_to_takedown"],
    "sites": ["site", "matches_30d", "matches_day"],
    "search_engines": ["engine", "requests_sent", "urls_requested", "pending", "last_sent"],
    "crawl_runs": ["run_id", "site", "status", "started_at", "minutes", "pages", "candidates_new", "errors",
                   "first_error"],
}
_HEADERS["review"] = _HEADERS["matches"]


@dataclass
class ReportOutput:
    """What ``build_report`` wrote: the HTML file, one CSV per section, the archive row."""

    day: date
    html: Path
    csv: dict[str, Path]
    summary: dict[str, int | str]
    report_id: int
    audit_head: str | None = None  # "ROW_ID:SHA256" of the audit chain's head

    @property
    def paths(self) -> list[Path]:
        return [self.html, *self.csv.values()]


def build_report(session: Session, config: Config, day: date | None = None,
                 out_dir: str | Path | None = None, *, now: datetime | None = None) -> ReportOutput:
    """Write the daily report for ``day`` (default: yesterday in the configured zone).

    Files go to ``out_dir`` (default ``[report].out_dir``, else ``./reports``) as
    ``vigie-report-YYYY-MM-DD.html`` and ``vigie-report-YYYY-MM-DD-<section>.csv``;
    the HTML is archived in the ``reports`` table (replacing that day's earlier run).
    """
    day = check_day(day or default_day(config, now))
    out = Path(out_dir or config.get("report", "out_dir"))
    data = collect(session, config, day, now=now)
    html = render_html(data)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stem = f"vigie-report-{day.isoformat()}"
        html_path = out / f"{stem}.html"
        html_path.write_text(html, encoding="utf-8")
        csv_paths: dict[str, Path] = {}
        for name, rows in csv_rows(data).items():
            p = out / f"{stem}-{name}.csv"
            _write_csv(p, rows, _HEADERS[name])
            csv_paths[name] = p
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    summary = {k: v for k, v in data.headline.items()}
    row = session.scalar(select(Report).where(Report.day == day))
    if row is None:
        row = Report(day=day, html=html)
        session.add(row)
    row.html, row.generated_at = html, utcnow()
    row.files = [str(p) for p in [html_path, *csv_paths.values()]]
    head = f"{data.audit_head[0]}:{data.audit_head[1]}" if data.audit_head else None
    # The archive keeps the head too: the Audit page checks every archived one still holds.
    row.summary = {**summary, AUDIT_HEAD: head} if head else summary
    session.flush()
    return ReportOutput(day=day, html=html_path, csv=csv_paths, summary=summary, report_id=row.id,
                        audit_head=head)


AUDIT_HEAD = "audit_head"


def report_anchors(session: Session) -> list[tuple[int, str, str]]:
    """The audit heads recorded by the archived reports, for ``db.auditchain.verify_chain``."""
    out = []
    for day, summary in session.execute(select(Report.day, Report.summary)):
        head = (summary or {}).get(AUDIT_HEAD)
        if isinstance(head, str) and ":" in head and head.split(":", 1)[0].isdigit():
            row_id, digest = head.split(":", 1)
            out.append((int(row_id), digest, f"the report of {day.isoformat()}"))
    return out


# --------------------------------------------------------------------------- mail


def staff_list(config: Config) -> list[str]:
    staff = config.report.get("staff") or []
    bad = [a for a in staff if not isinstance(a, str) or not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+", a)]
    if bad:
        raise ConfigError(f"report.staff: not mail addresses: {', '.join(map(str, bad))}")
    return list(staff)


def mail_configured(config: Config) -> bool:
    return bool(config.smtp.get("host")) and bool(config.report.get("staff"))


def mail_report(config: Config, output: ReportOutput, session: Session | None = None) -> list[str]:
    """Mail the report (HTML body, CSVs attached) to ``[report].staff`` through ``[smtp]``.

    Returns the recipients. The subject holds only the date and our own figures: no
    text from a crawled page reaches a mail header.
    """
    to = staff_list(config)
    if not to or not config.smtp.get("host"):
        raise ReportError("mailing the report needs [smtp].host and [report].staff in the config")
    smtp = config.smtp
    sender = smtp.get("from") or config.notifier.get("email") or f"vigie@{smtp['host']}"
    msg = EmailMessage()
    msg["Subject"] = (f"Vigie daily report {output.day.isoformat()}: "
                      f"{output.summary.get('new confirmed matches', 0)} new matches, "
                      f"{output.summary.get('waiting for review', 0)} to review")
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    lines = [f"Vigie daily report for {output.day.isoformat()}", ""]
    lines += [f"{k}: {v}" for k, v in output.summary.items()]
    if output.audit_head:
        lines += ["", f"Audit log head: {output.audit_head} (keep this mail: it shows later whether "
                      "audit rows were cut)"]
    lines += ["", "The full report is the HTML part of this message; the rows are attached as CSV."]
    msg.set_content("\n".join(lines))
    msg.add_alternative(output.html.read_text(encoding="utf-8"), subtype="html")
    for name, p in output.csv.items():
        msg.add_attachment(p.read_bytes(), maintype="text", subtype="csv", filename=p.name)
    port = int(smtp.get("port", 25))
    timeout = float(smtp.get("timeout", 30))
    try:
        if smtp.get("ssl"):
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp["host"], port, timeout=timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp["host"], port, timeout=timeout)
        with client:
            if smtp.get("starttls") and not smtp.get("ssl"):
                client.starttls(context=ssl.create_default_context())
            if smtp.get("username"):
                client.login(smtp["username"], smtp.get("password") or "")
            client.send_message(msg, from_addr=sender, to_addrs=to)
    except (OSError, smtplib.SMTPException) as exc:
        raise ReportError(f"cannot mail the report via {smtp['host']}:{port}: {exc}") from None
    if session is not None:
        row = session.get(Report, output.report_id)
        if row is not None:
            row.mailed_to = ", ".join(to)
            session.flush()
    return to
