"""Typed SQLAlchemy 2.0 models: every entity of the flow, from catalogue to takedown.

Each stage of the flow reads its input from these tables and writes its output back,
so any stage can run alone, on a schedule, or on many workers. Status columns are
``enum.Enum`` so the states a row can be in are named in one place.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from foundation.timeutil import utc_now as utcnow


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the value (readable in SQL), as a plain VARCHAR with a CHECK-free type so a
    # new state is an application change, not a PostgreSQL ALTER TYPE migration.
    return Enum(
        cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        create_constraint=False,
        length=32,
    )


# --------------------------------------------------------------------------- catalogue


class Title(Base):
    __tablename__ = "titles"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    year: Mapped[Optional[int]]
    rights_owner: Mapped[Optional[str]] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Public "watch legally" pages (webapp.public) show a title only once published and,
    # with a date, from that day on. New titles are unpublished: a film watched for leaks
    # before its release must not get a public page (``vigie catalog publish``).
    published: Mapped[bool] = mapped_column(default=False, server_default=false())
    publish_from: Mapped[Optional[date]] = mapped_column(Date)

    alt_titles: Mapped[list[AltTitle]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="AltTitle.id"
    )
    offers: Mapped[list[Offer]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="Offer.id"
    )
    references: Mapped[list[ReferenceVideo]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="ReferenceVideo.id"
    )
    rights: Mapped[list[TitleRights]] = relationship(
        back_populates="title", cascade="all, delete-orphan", order_by="TitleRights.id"
    )

    def all_names(self) -> list[str]:
        return [self.title, *(a.name for a in self.alt_titles)]


class AltTitle(Base):
    __tablename__ = "alt_titles"

    id: Mapped[int] = mapped_column(primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    language: Mapped[Optional[str]] = mapped_column(String(16))

    title: Mapped[Title] = relationship(back_populates="alt_titles")


class OfferKind(enum.Enum):
    VOD_RENTAL = "vod_rental"
    VOD_PURCHASE = "vod_purchase"
    SVOD = "svod"
    CINEMA = "cinema"
    OTHER = "other"


class Offer(Base):
    """A legitimate place to watch a title; every notice points the public to it."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    provider: Mapped[Optional[str]] = mapped_column(String(200))
    kind: Mapped[OfferKind] = mapped_column(_enum(OfferKind), default=OfferKind.VOD_RENTAL)
    # ISO 3166-1 alpha-2 codes, or "*" for worldwide.
    territory: Mapped[str] = mapped_column(String(200), default="*")
    # The release window: valid from this day to that one, inclusive (empty: open-ended).
    valid_from: Mapped[Optional[date]] = mapped_column(Date)
    valid_until: Mapped[Optional[date]] = mapped_column(Date)

    title: Mapped[Title] = relationship(back_populates="offers")


class AllowedReason(enum.Enum):
    """Why a reference video is allowed material: what staff registered with ``vigie
    catalog allow``. A copy explained only by allowed material gets no notice."""

    TRAILER = "trailer"              # a trailer, clip or making-of the studio published
    PROMO = "promo"                  # promotional material (a teaser, an interview, an ad)
    PUBLIC_DOMAIN = "public-domain"  # footage anyone may use (archives, newsreels)
    LOGO = "logo"                    # a producer's or distributor's logo, a licence card


class ReferenceVideo(Base):
    """A catalogue video and its frame fingerprints.

    Hashes are stored compactly as one blob per reference (packed little-endian
    ``uint64`` hashes and ``float32`` timestamps), not one row per frame: a film has
    thousands of frames and the index loads them all at once anyway.

    A reference is either a film (``allowed_reason`` empty, it belongs to a title) or
    allowed material (a trailer, a logo, public-domain footage: ``allowed_reason`` says
    which; it may belong to a title or to none). ``flags`` holds one byte per stored
    frame (``fingerprint.index.FLAG_STATIC``, ``FLAG_SHARED``): frames that are not
    distinctive evidence. Empty for references made before flags existed: the index
    computes the static marks from the hashes then.
    """

    __tablename__ = "reference_videos"
    __table_args__ = (UniqueConstraint("sha256", "algorithm", name="uq_reference_sha_algo"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title_id: Mapped[Optional[int]] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[Optional[str]] = mapped_column(String(2000))
    duration_s: Mapped[float] = mapped_column(Float)
    fps: Mapped[float] = mapped_column(Float)
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(64))
    frame_count: Mapped[int]
    hashes: Mapped[bytes] = mapped_column(LargeBinary)
    times: Mapped[bytes] = mapped_column(LargeBinary)
    flags: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    allowed_reason: Mapped[Optional[AllowedReason]] = mapped_column(_enum(AllowedReason))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    title: Mapped[Optional[Title]] = relationship(back_populates="references")


# --------------------------------------------------------------------------- the web


class SiteKind(enum.Enum):
    LINK_SITE = "link_site"
    SITE_SEARCH = "site_search"
    SITEMAP = "sitemap"


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[SiteKind] = mapped_column(_enum(SiteKind), default=SiteKind.LINK_SITE)
    start_urls: Mapped[list[Any]] = mapped_column(default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A cron expression or an interval such as "6h"; None means "only on demand".
    schedule: Mapped[Optional[str]] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    candidates: Mapped[list[Candidate]] = relationship(back_populates="site")
    crawl_runs: Mapped[list[CrawlRun]] = relationship(back_populates="site")


class NoticeChannel(enum.Enum):
    EMAIL = "email"
    API = "api"
    WEBFORM = "webform"
    NONE = "none"

    @property
    def by_hand(self) -> bool:
        """Staff submit this host's notices themselves (a submission task,
        ``notices.workflow``): a web form, or an API nobody has wired a sender for."""
        return self in (NoticeChannel.API, NoticeChannel.WEBFORM)


class Host(Base):
    """Who hosts or links the content, and how to reach their abuse desk."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Registrable domains or glob patterns ("*.example.com").
    domain_patterns: Mapped[list[Any]] = mapped_column(default=list)
    abuse_contact: Mapped[Optional[str]] = mapped_column(String(500))
    channel: Mapped[NoticeChannel] = mapped_column(_enum(NoticeChannel), default=NoticeChannel.EMAIL)
    jurisdiction: Mapped[Optional[str]] = mapped_column(String(16))
    # Where the jurisdiction came from (db.hosts.JURISDICTION_SOURCES): staff, cctld,
    # language, default; empty for an unknown jurisdiction.
    jurisdiction_source: Mapped[Optional[str]] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    kind: Mapped[Optional[str]] = mapped_column(String(32))
    # A licensed partner is never notified, whatever a match says.
    licensed_partner: Mapped[bool] = mapped_column(default=False)
    needs_approval: Mapped[bool] = mapped_column(default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A regular expression matching this host's own "content removed" page (its URL or
    # its text), set by staff: the only page text verification accepts as a removal.
    removal_pattern: Mapped[Optional[str]] = mapped_column(String(500))

    candidates: Mapped[list[Candidate]] = relationship(back_populates="host")


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]]
    status: Mapped[str] = mapped_column(String(32), default="running")
    pages: Mapped[int] = mapped_column(default=0)
    candidates_new: Mapped[int] = mapped_column(default=0)
    candidates_seen: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    error_log: Mapped[list[Any]] = mapped_column(default=list)

    site: Mapped[Site] = relationship(back_populates="crawl_runs")


class CandidateStatus(enum.Enum):
    PENDING = "pending"          # waiting to be fingerprinted
    MATCHING = "matching"        # claimed by a worker
    MATCHED = "matched"          # at least one match stored
    NO_MATCH = "no_match"
    FAILED = "failed"            # could not be fetched or decoded; see error
    SKIPPED = "skipped"          # licensed partner or out of scope
    ALLOWED = "allowed"          # explained only by allowed material (a trailer, a logo): no notice
    NEEDS_BROWSER = "needs_browser"  # its player needs the browser resolver, and none ran


class Candidate(Base):
    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    canonical_url: Mapped[str] = mapped_column(String(2000), unique=True)
    page_url: Mapped[str] = mapped_column(String(2000))
    media_urls: Mapped[list[Any]] = mapped_column(default=list)
    site_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"), index=True)
    host_id: Mapped[Optional[int]] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"), index=True)
    title_text: Mapped[Optional[str]] = mapped_column(Text)
    guessed_title_id: Mapped[Optional[int]] = mapped_column(ForeignKey("titles.id", ondelete="SET NULL"))
    guess_score: Mapped[Optional[float]]
    # Evidence of the captured page: sha256 of the body, fetch time, status, headers, IP,
    # and where the compressed body is kept.
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[CandidateStatus] = mapped_column(
        _enum(CandidateStatus), default=CandidateStatus.PENDING, index=True
    )
    error: Mapped[Optional[str]] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Optional[Site]] = relationship(back_populates="candidates")
    host: Mapped[Optional[Host]] = relationship(back_populates="candidates")
    matches: Mapped[list[Match]] = relationship(back_populates="candidate", cascade="all, delete-orphan")


class Decision(enum.Enum):
    CONFIRMED = "confirmed"      # a notice may go out without a human
    REVIEW = "review"            # a human decides
    ALLOWED = "allowed"          # allowed material only (a trailer, a logo): never a notice


class ReviewState(enum.Enum):
    NONE = "none"
    APPROVED = "approved"
    REJECTED = "rejected"


class Match(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("candidate_id", "title_id", name="uq_match_candidate_title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    # Empty only for a match of allowed material that belongs to no title (a logo).
    title_id: Mapped[Optional[int]] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    reference_id: Mapped[Optional[int]] = mapped_column(ForeignKey("reference_videos.id", ondelete="SET NULL"))
    media_url: Mapped[Optional[str]] = mapped_column(String(2000))
    score: Mapped[float]
    matched_s: Mapped[float]
    offset_s: Mapped[float]
    speed: Mapped[float]
    cand_start_s: Mapped[float]
    cand_end_s: Mapped[float]
    ref_start_s: Mapped[float]
    ref_end_s: Mapped[float]
    decision: Mapped[Decision] = mapped_column(_enum(Decision))
    review: Mapped[ReviewState] = mapped_column(_enum(ReviewState), default=ReviewState.NONE)
    reviewer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[Optional[datetime]]
    review_reason: Mapped[Optional[str]] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    candidate: Mapped[Candidate] = relationship(back_populates="matches")
    title: Mapped[Optional[Title]] = relationship()
    reviewer: Mapped[Optional[User]] = relationship()


# --------------------------------------------------------------------------- notices


class NoticeStatus(enum.Enum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    QUEUED = "queued"
    SENDING = "sending"
    IN_DOUBT = "in_doubt"        # the connection dropped after DATA: resend with same Message-ID
    SENT = "sent"
    FAILED = "failed"
    DISCARDED = "discarded"


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    regime: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[Optional[str]] = mapped_column(String(500))
    subject: Mapped[Optional[str]] = mapped_column(String(500))
    body_text: Mapped[Optional[str]] = mapped_column(Text)
    body_html: Mapped[Optional[str]] = mapped_column(Text)
    acns_xml: Mapped[Optional[str]] = mapped_column(Text)
    xarf_json: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[NoticeStatus] = mapped_column(_enum(NoticeStatus), default=NoticeStatus.DRAFT, index=True)
    message_id: Mapped[Optional[str]] = mapped_column(String(300), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[Optional[datetime]]
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # notice | reminder | upstream | delisting (notices.escalate); the first is the
    # one whose items verification tracks, the others point back to it via parent_id.
    kind: Mapped[str] = mapped_column(String(32), default="notice", server_default="notice")
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"))
    # configured | security.txt | guess (RFC 2142 abuse@domain): how we got the recipient.
    recipient_source: Mapped[Optional[str]] = mapped_column(String(32))
    approved_at: Mapped[Optional[datetime]]
    # Outbox bookkeeping (notices.dispatch): not before this time (backoff, rate limit),
    # when a sender claimed it and which process (foundation.claimant), and when it
    # started DATA (after which a crash is in doubt).
    next_attempt_at: Mapped[Optional[datetime]]
    claimed_at: Mapped[Optional[datetime]]
    claimed_by: Mapped[Optional[str]] = mapped_column(String(300))
    data_started_at: Mapped[Optional[datetime]]
    # Submission tasks (web-form and API hosts, notices.workflow): the host's ticket
    # reference staff typed in when they marked the notice submitted by hand.
    ticket_ref: Mapped[Optional[str]] = mapped_column(String(200))
    submitted_by: Mapped[Optional[str]] = mapped_column(String(100))
    # Who notifies (``db.rights``): the rights holder, or the agent acting for it.
    notifier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("rights_holders.id", ondelete="SET NULL"),
                                                       index=True)

    host: Mapped[Host] = relationship()
    notifier: Mapped[Optional[RightsHolder]] = relationship()
    items: Mapped[list[NoticeItem]] = relationship(back_populates="notice", cascade="all, delete-orphan")


class ItemState(enum.Enum):
    NOTIFIED = "notified"
    REMOVED = "removed"
    LIVE = "live"
    ESCALATED = "escalated"


class ItemRole(enum.Enum):
    """What a notified URL is to the host it is sent to (notices.build): a takedown
    involves the host storing the video and every site whose page links to or embeds it."""

    HOSTING = "hosting"    # the host stores the video: the URL is its media URL (or its own page of it)
    LINKING = "linking"    # a page on this host links to or embeds a video stored by another host


class NoticeItem(Base):
    __tablename__ = "notice_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    role: Mapped[ItemRole] = mapped_column(_enum(ItemRole), default=ItemRole.HOSTING, server_default="hosting")
    state: Mapped[ItemState] = mapped_column(_enum(ItemState), default=ItemState.NOTIFIED)
    removed_at: Mapped[Optional[datetime]]
    # Verification (notices.verify): when the next escalation step is due if the URL is
    # still live, how far it has been escalated, and the last re-check.
    due_at: Mapped[Optional[datetime]]
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    last_checked_at: Mapped[Optional[datetime]]

    notice: Mapped[Notice] = relationship(back_populates="items")
    match: Mapped[Match] = relationship()
    checks: Mapped[list[Check]] = relationship(back_populates="item", cascade="all, delete-orphan")


class Check(Base):
    """One re-check of a notified URL: is the content still there?"""

    __tablename__ = "checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("notice_items.id", ondelete="CASCADE"), index=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[Optional[int]]
    live: Mapped[bool]
    detail: Mapped[Optional[str]] = mapped_column(Text)

    item: Mapped[NoticeItem] = relationship(back_populates="checks")


# --------------------------------------------------------------------------- people


class Role(enum.Enum):
    ANALYST = "analyst"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[Optional[str]] = mapped_column(String(300))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.ANALYST)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The rights holder or agent the user works for: they see only its titles and what
    # hangs on them (``db.rights.scope_titles``). Empty: the installation's own staff.
    org_id: Mapped[Optional[int]] = mapped_column(ForeignKey("rights_holders.id", ondelete="RESTRICT"),
                                                  index=True)


class LoginAttempt(Base):
    """One login attempt, written before the password is checked (``webapp.accounts.LoginThrottle``).

    In the database, not in the app process, so the limit holds across a restart and
    across several ``vigie serve`` processes. ``account`` is the SHA-256 of the lower-cased
    user name (any string a client sends fits, none is stored); a success empties it on the
    account's rows, which keep counting for their address. ``at`` is Unix time, compared
    the same way on SQLite and PostgreSQL."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_account_at", "account", "at"),
                      Index("ix_login_attempts_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[Optional[str]] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, index=True)


class WebSession(Base):
    """One session of the review app, kept on the server (``webapp.sessions``).

    The browser holds a random token; only its SHA-256 is stored, so a copy of this table
    cannot be replayed as cookies. A session is valid while ``revoked_at`` is empty, before
    ``expires_at`` (absolute timeout) and while ``last_seen`` is recent (idle timeout):
    logout, a disabled account or a changed password set ``revoked_at`` at once, which a
    signed cookie could never undo. ``user_id`` is empty before login (the login form's
    CSRF token lives in such a pre-login session)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[Optional[datetime]]
    csrf: Mapped[str] = mapped_column(String(64))
    # Small per-session data: the flash message shown on the next page.
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditLog(Base):
    """Who did what, when, with the state before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[Optional[int]]
    before: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    after: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    # Hash chain (db/auditchain.py): the previous row's hash and this row's own.
    prev_hash: Mapped[Optional[str]] = mapped_column(String(64))
    row_hash: Mapped[Optional[str]] = mapped_column(String(64))


# --------------------------------------------------------------------------- reports & review


class MatchFrame(Base):
    """Small JPEG thumbnails of the reference and the candidate at the matched timecodes.

    Kept in the database (a few kB each) so the daily report can embed them as
    ``data:`` URIs and the review app can serve them from our own origin: the staff's
    browser never loads anything from the pirate page. Written by
    ``reports.thumbs.capture_match_frames`` right after the match stage stores a Match.
    """

    __tablename__ = "match_frames"

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), unique=True, index=True
    )
    ref_t: Mapped[float] = mapped_column(Float)
    cand_t: Mapped[float] = mapped_column(Float)
    ref_jpeg: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    cand_jpeg: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    # Why a thumbnail is missing (a corrupt candidate, a reference file moved away).
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    match: Mapped[Match] = relationship()


class TitlePoster(Base):
    """One still of a title, cut from our own reference, for its public "watch legally" page."""

    __tablename__ = "title_posters"

    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), primary_key=True)
    t_s: Mapped[float] = mapped_column(Float)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """One generated daily report, archived for the review app (the HTML is self-contained)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
    html: Mapped[str] = mapped_column(Text)
    # Paths of the files written (HTML and CSVs) and the headline figures.
    files: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mailed_to: Mapped[Optional[str]] = mapped_column(Text)


# --------------------------------------------------------------------------- operations


class JobRun(Base):
    """One run of a scheduled job (``scheduler``): what ran, how long, what it did.

    ``vigie status`` shows the last run of each job from here; the structured log line
    carries the same figures for log shippers."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "match", "notices", "verify", "report", "resync" or "crawl:<site name>".
    job: Mapped[str] = mapped_column(String(250))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]]
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | error
    duration_s: Mapped[Optional[float]] = mapped_column(Float)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[Optional[str]] = mapped_column(Text)
    pid: Mapped[Optional[int]]
    host: Mapped[Optional[str]] = mapped_column(String(255))


class SchedulerLock(Base):
    """Who runs the scheduler on this database (``stages.runlock``).

    On SQLite the row *is* the lock: taken by a conditional insert/update, kept alive by
    a heartbeat, taken over when the heartbeat is older than ``[schedule].lock_stale_after``.
    On PostgreSQL the lock is a session advisory lock (released by the server when the
    holder dies) and the row only says who holds it."""

    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int]
    host: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- evidence


class EvidenceManifest(Base):
    """One day's list of captured evidence (the SHA-256 of each item), written by the
    evidence stage (``evidence.manifest``) and timestamped by an RFC 3161 authority:
    the token proves every item listed existed, unchanged, at the authority's time.
    A day's items captured after its manifest go into a further manifest of that day."""

    __tablename__ = "evidence_manifests"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))            # relative to [evidence] dir
    items: Mapped[int] = mapped_column(default=0)
    token: Mapped[Optional[bytes]] = mapped_column(LargeBinary)  # the DER TimeStampResp
    tsa_url: Mapped[Optional[str]] = mapped_column(String(2000))
    tsa_time: Mapped[Optional[datetime]]
    token_error: Mapped[Optional[str]] = mapped_column(Text)


class EvidenceItem(Base):
    """One kept piece of evidence: WARC records of a fetch (a link page, a player page, a
    media URL's headers, a verification fetch), a screenshot, the matched frames side by
    side, a fingerprint match record. The bytes are kept under ``[evidence] dir``, never
    overwritten: a content-addressed file (``path``) or a byte range of a daily WARC file
    (``path``, ``offset``, ``length``); ``sha256`` is over exactly those bytes. A re-crawl
    adds an item, it never replaces one."""

    __tablename__ = "evidence_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    captured_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    candidate_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL"), index=True)
    match_id: Mapped[Optional[int]] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"))
    check_id: Mapped[Optional[int]] = mapped_column(ForeignKey("checks.id", ondelete="SET NULL"))
    url: Mapped[Optional[str]] = mapped_column(String(2000))
    ip: Mapped[Optional[str]] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    path: Mapped[str] = mapped_column(String(500))
    offset: Mapped[Optional[int]] = mapped_column(BigInteger)
    length: Mapped[Optional[int]] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("evidence_manifests.id", ondelete="SET NULL"), index=True)
    purged_at: Mapped[Optional[datetime]]

    manifest: Mapped[Optional[EvidenceManifest]] = relationship()


class EvidenceExport(Base):
    """A case file made by ``vigie evidence export``: what it covered, its hash, and
    whether it is pinned (its items are then never purged: a case in court)."""

    __tablename__ = "evidence_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    scope: Mapped[str] = mapped_column(String(2000))
    path: Mapped[str] = mapped_column(String(2000))
    sha256: Mapped[str] = mapped_column(String(64))
    item_ids: Mapped[list[Any]] = mapped_column(default=list)
    pinned: Mapped[bool] = mapped_column(default=False)


# --------------------------------------------------------------------------- the hosts' replies


class ReplyKind(enum.Enum):
    """What a host's mail says about a notice (``inbox.classify``)."""

    ACK = "ack"                        # an automatic acknowledgement, often with a ticket number
    REMOVED = "removed"                # the host says it removed the content
    REFUSED = "refused"                # the host will not act (the reason is kept)
    REDIRECT = "redirect"              # "not our customer, write to X"
    BOUNCE = "bounce"                  # a delivery status notification: the address is dead
    COUNTER_NOTICE = "counter_notice"  # DMCA 512(g) counter-notice, DSA statement of reasons
    OTHER = "other"


class InboxState(enum.Enum):
    """Where a stored mail stands: read and applied by the rules, or waiting for staff."""

    FILED = "filed"          # tied to a notice, read with enough confidence, effects applied
    STAFF = "staff"          # unmatched, low confidence, or a decision only staff can make
    CLOSED = "closed"        # staff dealt with it


class InboxMessage(Base):
    """One mail received from a host, stored once with its raw bytes, whatever happens next.

    Stored once: the same bytes (``sha256``) are never stored twice, nor a copy of a stored
    mail delivered again with other transport headers (same Message-ID, sender and
    subject). ``raw`` is kept as received (at most ``[inbox] max_bytes``; a larger mail
    keeps its header only, ``truncated``). Everything else is read from it by
    ``inbox.parse`` and may be recomputed. ``imap_*`` say where an IMAP mail came from, so
    the next fetch starts after it."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_imap", "imap_folder", "imap_uidvalidity", "imap_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[Optional[str]] = mapped_column(String(300), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    truncated: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(500))
    imap_folder: Mapped[Optional[str]] = mapped_column(String(200))
    # IMAP's UIDs and UIDVALIDITY are unsigned 32-bit: past PostgreSQL's INTEGER.
    imap_uidvalidity: Mapped[Optional[int]] = mapped_column(BigInteger)
    imap_uid: Mapped[Optional[int]] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[Optional[datetime]]
    from_addr: Mapped[Optional[str]] = mapped_column(String(500))
    subject: Mapped[Optional[str]] = mapped_column(String(500))
    text: Mapped[Optional[str]] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    notice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"), index=True)
    host_id: Mapped[Optional[int]] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"), index=True)
    # in-reply-to | reference | url | staff: how it was tied to its notice.
    threaded_by: Mapped[Optional[str]] = mapped_column(String(32))
    kind: Mapped[ReplyKind] = mapped_column(_enum(ReplyKind), default=ReplyKind.OTHER, index=True)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    rule: Mapped[Optional[str]] = mapped_column(String(200))
    ticket: Mapped[Optional[str]] = mapped_column(String(100))
    reason: Mapped[Optional[str]] = mapped_column(Text)
    redirect_to: Mapped[Optional[str]] = mapped_column(String(500))
    state: Mapped[InboxState] = mapped_column(_enum(InboxState), default=InboxState.STAFF, index=True)
    # Why staff must look (unmatched, low confidence, a decision to make), what was done.
    staff_reason: Mapped[Optional[str]] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    handled_by: Mapped[Optional[str]] = mapped_column(String(100))
    handled_at: Mapped[Optional[datetime]]

    notice: Mapped[Optional[Notice]] = relationship()
    host: Mapped[Optional[Host]] = relationship()


class CounterNoticeState(enum.Enum):
    OPEN = "open"                  # staff have not decided yet
    ACCEPTED = "accepted"          # staff let it stand: the host may put the content back
    COURT_ACTION = "court_action"  # DMCA: a court action was filed, the host must keep it down
    COMPLAINT = "complaint"        # DSA art. 20: the notifier's complaint was lodged with the host


class CounterNotice(Base):
    """A counter-notice (DMCA 512(g)) or a host's statement of reasons (DSA art. 17), and
    staff's answer to it (accept; a court action filed; a DSA art. 20 complaint).

    ``urls`` are never notified again automatically (``notices.build``). Under the DMCA
    the host may put the content back 10 to 14 business days after it received the
    counter-notice unless told a court action was filed: ``putback_from`` and
    ``putback_until`` are that window, counted from ``received_at``."""

    __tablename__ = "counter_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inbox_messages.id", ondelete="SET NULL"),
                                                      index=True)
    notice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"), index=True)
    regime: Mapped[str] = mapped_column(String(16))        # dmca | dsa
    received_at: Mapped[datetime]
    urls: Mapped[list[Any]] = mapped_column(default=list)
    # What the uploader or the host states (512(g)(3) elements found, the DSA grounds).
    statements: Mapped[dict[str, Any]] = mapped_column(default=dict)
    putback_from: Mapped[Optional[date]] = mapped_column(Date)
    putback_until: Mapped[Optional[date]] = mapped_column(Date)
    state: Mapped[CounterNoticeState] = mapped_column(_enum(CounterNoticeState), default=CounterNoticeState.OPEN,
                                                      index=True)
    decided_by: Mapped[Optional[str]] = mapped_column(String(100))
    decided_at: Mapped[Optional[datetime]]
    decision_note: Mapped[Optional[str]] = mapped_column(Text)

    message: Mapped[Optional[InboxMessage]] = relationship()
    notice: Mapped[Optional[Notice]] = relationship()


# --------------------------------------------------------------------------- rights holders


class OrgKind(enum.Enum):
    """What an organisation is to the catalogue: it owns rights, or it acts for those who do."""

    HOLDER = "holder"    # a producer, a distributor, a studio: owns rights on titles
    AGENT = "agent"      # an association or an agency acting for holders under a mandate


class RightsHolder(Base):
    """An organisation that notifies: a rights holder, or an agent acting for holders.

    One table for both (``kind``), since an agent signs notices exactly as a holder does
    and a holder may also act for others. The contact details are the notice's
    complainant block; empty ones are filled from ``[notifier]`` (the installation, whose
    mailbox receives the replies), and a holder with none at all leaves ``[notifier]`` the
    complainant (``notices.render.notifier_block``). The logo is shown on the public pages, served from our
    own origin."""

    __tablename__ = "rights_holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[OrgKind] = mapped_column(_enum(OrgKind), default=OrgKind.HOLDER)
    legal_name: Mapped[str] = mapped_column(String(300))
    address: Mapped[Optional[str]] = mapped_column(Text)
    signatory: Mapped[Optional[str]] = mapped_column(String(300))
    email: Mapped[Optional[str]] = mapped_column(String(300))
    phone: Mapped[Optional[str]] = mapped_column(String(100))
    # ISO 3166-1 alpha-2 of its seat.
    country: Mapped[Optional[str]] = mapped_column(String(2))
    logo: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    logo_type: Mapped[Optional[str]] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    rights: Mapped[list[TitleRights]] = relationship(back_populates="holder", cascade="all, delete-orphan")


class TitleRights(Base):
    """A holder's rights on a title, for some territories and possibly for a while.

    A notice to a host whose territory no rights row covers is not sent: the holder has
    nothing to enforce there."""

    __tablename__ = "title_rights"

    id: Mapped[int] = mapped_column(primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id", ondelete="CASCADE"), index=True)
    # ISO 3166-1 alpha-2 codes separated by commas, or "*" for worldwide.
    territory: Mapped[str] = mapped_column(String(200), default="*")
    valid_from: Mapped[Optional[date]] = mapped_column(Date)
    valid_until: Mapped[Optional[date]] = mapped_column(Date)

    title: Mapped[Title] = relationship(back_populates="rights")
    holder: Mapped[RightsHolder] = relationship(back_populates="rights")


class MandateTitle(Base):
    """One title a mandate covers (a mandate for all its principal's titles has none)."""

    __tablename__ = "mandate_titles"

    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandates.id", ondelete="CASCADE"), primary_key=True)
    title_id: Mapped[int] = mapped_column(ForeignKey("titles.id", ondelete="CASCADE"), primary_key=True)


class Mandate(Base):
    """An agent's recorded authority to notify for a rights holder.

    The notice names it (id, dates, the SHA-256 of the signed document) so a host can
    ask for the document and check it is the one we hold. Once a holder has given a
    mandate, its titles are notified by the agent; when every mandate covering a title
    has expired, the title is not notified at all (nobody may act for it)."""

    __tablename__ = "mandates"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id", ondelete="CASCADE"), index=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id", ondelete="CASCADE"), index=True)
    all_titles: Mapped[bool] = mapped_column(default=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[Optional[date]] = mapped_column(Date)
    document_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    document_name: Mapped[Optional[str]] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    agent: Mapped[RightsHolder] = relationship(foreign_keys=[agent_id])
    principal: Mapped[RightsHolder] = relationship(foreign_keys=[principal_id])
    titles: Mapped[list[MandateTitle]] = relationship(cascade="all, delete-orphan")


# The audit log's hash chain hooks into every Session (after the models it uses).
import db.auditchain  # noqa: E402,F401
