"""What every part of the review web app shares: the API models, the error type, the
template environment, and :class:`Web`, the helpers each router is built with (the
session in a transaction, the logged-in user and the role and CSRF checks, rendering,
the login throttle).

May import what ``webapp`` may (see its package docstring).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path as FastAPIPath
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from db.models import (
    Candidate,
    Decision,
    Match,
    MatchFrame,
    Notice,
    NoticeStatus,
    ReferenceVideo,
    ReviewState,
    Role,
    Title,
    User,
)
from db.session import sessionmaker_for
from foundation.config import Config
from foundation.errors import LoginThrottled
from foundation.timeutil import as_utc, zone
from reports.daily import hms, one_line, safe_url
from webapp import actions, sessions
from webapp.accounts import LoginThrottle, authenticate
from webapp.security import CSRF_FIELD, CSRF_HEADER, STATIC_CSP
from webapp.sessions import LazyToken, web_session
from webapp.tenancy import Scope

STATIC = Path(__file__).parent / "static"
# A row id in a URL: PostgreSQL's INTEGER range. Larger numbers are refused as invalid
# (422) before they reach the database, which would fail on them (schemathesis found it).
RowId = Annotated[int, FastAPIPath(ge=1, le=2**31 - 1)]
# need_user()'s default: a request that changes nothing needs no CSRF token.
READ_ONLY = object()


def template_env() -> Environment:
    env = Environment(loader=PackageLoader("webapp", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["hms"] = hms
    env.filters["one_line"] = one_line
    env.filters["safe_url"] = safe_url
    env.globals["STATIC_CSP"] = STATIC_CSP
    return env


class Problem(Exception):
    """An HTTP error shown as a page (or JSON under /api)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- API models


class ErrorOut(BaseModel):
    """Every error of the API, whatever its cause: one line saying what is wrong."""

    detail: str


def _errors(*described: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": text} for code, text in described}


# Declared on every operation (so a client, and schemathesis, know the error shape);
# FastAPI's own list-shaped 422 is replaced by ours (see on_invalid_request).
API_ERRORS = _errors((400, "malformed request body"), (401, "not logged in"), (403, "CSRF token missing or wrong, or administrators only"),
                     (422, "invalid input, or not allowed in the object's state"))
NOT_FOUND = _errors((404, "no such object"))
THROTTLED = _errors((429, "too many failed logins: wait and try again"))


def _unicode(value: str) -> str:
    # JSON may carry lone surrogates (\ud800): no database stores them, argon2 cannot
    # encode them, no user has one.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL refuses NUL in text; no user name holds one
        raise ValueError("must not hold a NUL character")
    return value


UserName = Annotated[str, Field(max_length=200), AfterValidator(_unicode), AfterValidator(_no_nul)]
Password = Annotated[str, Field(max_length=1000), AfterValidator(_unicode)]


class LoginIn(BaseModel):
    username: UserName
    password: Password


class SessionOut(BaseModel):
    username: str
    role: str
    csrf_token: str


class MatchOut(BaseModel):
    id: int
    # Empty for a match of allowed material that belongs to no title (a logo).
    title_id: int | None
    title: str
    score: float
    matched_s: float
    decision: str
    review: str
    review_reason: str | None
    candidate_id: int
    page_url: str
    page_title: str
    site: str | None
    host: str | None
    cand_t: float | None
    ref_t: float | None
    frames: dict[str, str]
    # For decision "allowed": why the material is allowed (trailer, promo, public-domain, logo).
    allowed_reason: str | None = None


class AllowedOut(BaseModel):
    id: int
    reason: str
    title_id: int | None
    title: str | None
    duration_s: float
    hashes: int
    file: str | None


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ApproveIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class DiscardIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class NoticeOut(BaseModel):
    id: int
    host: str
    status: str
    regime: str
    language: str
    recipient: str | None
    subject: str | None
    body_text: str | None
    urls: list[str]
    created_at: str | None
    kind: str = "notice"
    # The host's ticket reference of a submission task marked submitted.
    ticket_ref: str | None = None
    # The rights holder or agent it comes from (empty on notices built before holders).
    notifier: str | None = None


class OfferOut(BaseModel):
    id: int
    url: str
    provider: str | None
    kind: str
    territory: str
    # The release window (inclusive; empty: open-ended).
    valid_from: str | None = None
    valid_until: str | None = None


class RightsOut(BaseModel):
    holder: str
    territory: str


class TitleOut(BaseModel):
    id: int
    title: str
    year: int | None
    offers: list[OfferOut]
    # Its public page: published, from this day on (YYYY-MM-DD) when set.
    published: bool = False
    publish_from: str | None = None
    rights: list[RightsOut] = []


class SiteOut(BaseModel):
    id: int
    name: str
    kind: str
    enabled: bool
    schedule: str | None
    start_urls: list[str]


class HostOut(BaseModel):
    id: int
    name: str
    abuse_contact: str | None
    channel: str
    licensed_partner: bool
    needs_approval: bool
    jurisdiction: str | None = None
    # staff | cctld | language | default, or None when unknown (db.hosts).
    jurisdiction_source: str | None = None
    language: str = "en"
    removal_pattern: str | None = None


class ReportOut(BaseModel):
    day: str
    generated_at: str
    summary: dict[str, Any]
    url: str


# --------------------------------------------------------------------------- views of rows


def match_out(m: Match, frame: MatchFrame | None) -> MatchOut:
    c: Candidate = m.candidate
    frames = {}
    if frame is not None and frame.ref_jpeg:
        frames["reference"] = f"/frames/{m.id}/ref.jpg"
    if frame is not None and frame.cand_jpeg:
        frames["candidate"] = f"/frames/{m.id}/cand.jpg"
    return MatchOut(id=m.id, title_id=m.title_id, title=m.title.title if m.title else "", score=m.score,
                    matched_s=m.matched_s, decision=m.decision.value, review=m.review.value,
                    review_reason=m.review_reason, candidate_id=c.id, page_url=c.page_url,
                    page_title=c.title_text or "", site=c.site.name if c.site else None,
                    host=c.host.name if c.host else None, cand_t=frame.cand_t if frame else None,
                    ref_t=frame.ref_t if frame else None, frames=frames,
                    allowed_reason=allowed_reason(m))


def allowed_reason(m: Match) -> str | None:
    """Why the material of an allowed match is allowed, as the match stage recorded it."""
    if m.decision is not Decision.ALLOWED:
        return None
    return str((m.details or {}).get("allowed_reason") or "allowed")


def allowed_out(r: ReferenceVideo) -> AllowedOut:
    assert r.allowed_reason is not None
    return AllowedOut(id=r.id, reason=r.allowed_reason.value, title_id=r.title_id,
                      title=r.title.title if r.title else None, duration_s=round(r.duration_s, 3),
                      hashes=r.frame_count, file=Path(r.path).name if r.path else None)


def notice_out(n: Notice) -> NoticeOut:
    return NoticeOut(id=n.id, host=n.host.name, status=n.status.value, regime=n.regime, language=n.language,
                     recipient=n.recipient, subject=n.subject, body_text=n.body_text,
                     urls=[i.url for i in n.items], kind=n.kind, ticket_ref=n.ticket_ref,
                     notifier=n.notifier.name if n.notifier else None,
                     created_at=as_utc(n.created_at).isoformat() if n.created_at else None)  # type: ignore[union-attr]


def title_out(t: Title) -> TitleOut:
    return TitleOut(id=t.id, title=t.title, year=t.year, published=bool(t.published),
                    publish_from=t.publish_from.isoformat() if t.publish_from else None,
                    offers=[OfferOut(id=o.id, url=o.url, provider=o.provider, kind=o.kind.value,
                                     territory=o.territory,
                                     valid_from=o.valid_from.isoformat() if o.valid_from else None,
                                     valid_until=o.valid_until.isoformat() if o.valid_until else None)
                            for o in t.offers],
                    rights=[RightsOut(holder=r.holder.name, territory=r.territory) for r in t.rights])


MATCH_FILTERS = {
    "review": lambda q: q.where(Match.decision == Decision.REVIEW, Match.review == ReviewState.NONE),
    "approved": lambda q: q.where(Match.review == ReviewState.APPROVED),
    "rejected": lambda q: q.where(Match.review == ReviewState.REJECTED),
    "confirmed": lambda q: q.where(Match.decision == Decision.CONFIRMED, Match.review != ReviewState.REJECTED),
    # Copies explained only by allowed material (a trailer, a logo): shown, never notified.
    "allowed": lambda q: q.where(Match.decision == Decision.ALLOWED),
    "all": lambda q: q,
}


def query_matches(s: Session, state: str, limit: int = 200,
                  scope: Scope | None = None) -> list[tuple[Match, MatchFrame | None]]:
    """Matches in ``state``, best first, of the titles ``scope`` sees (all when None)."""
    if state not in MATCH_FILTERS:
        raise Problem(422, f"unknown match state {state!r} (known: {', '.join(MATCH_FILTERS)})")
    q = select(Match)
    clause = scope.match_clause() if scope is not None else None
    if clause is not None:
        q = q.where(clause)
    q = q.options(selectinload(Match.candidate).selectinload(Candidate.site),
                              selectinload(Match.candidate).selectinload(Candidate.host),
                              selectinload(Match.title).selectinload(Title.offers))
    q = MATCH_FILTERS[state](q).order_by(Match.score.desc(), Match.id).limit(limit)
    rows = list(s.scalars(q))
    frames = {f.match_id: f for f in s.scalars(select(MatchFrame).where(MatchFrame.match_id.in_([m.id for m in rows])))} \
        if rows else {}
    return [(m, frames.get(m.id)) for m in rows]


# --------------------------------------------------------------------------- the app


@dataclass
class Web:
    """The helpers every router of one app uses, bound to its database and config."""

    config: Config
    engine: Engine
    Sessions: Any
    env: Environment
    tz: Any
    throttle: Any
    tx: Any
    local: Any
    user_of: Any
    is_api: Any
    need_user: Any
    check_csrf: Any
    read_form: Any
    api_csrf: Any
    render: Any
    back: Any
    login: Any
    start_session: Any
    end_session: Any
    held_notices: Any


def make_web(engine: Engine, config: Config) -> Web:
    Sessions = sessionmaker_for(engine)
    env = template_env()
    tz = zone(config)

    @contextmanager
    def tx() -> Iterator[Session]:
        with Sessions.begin() as s:
            yield s

    def local(dt: Any) -> str:
        dt = as_utc(dt)
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else ""

    env.filters["local"] = local

    def user_of(request: Request, s: Session) -> User | None:
        uid = web_session(request).user_id
        if uid is None:
            return None
        user = s.get(User, uid)
        # Disabling a user revokes their sessions (webapp.accounts); this check also holds
        # when the flag was changed behind the app's back (SQL, an older tool).
        if user is None or not user.active:
            return None
        return user

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def need_user(request: Request, s: Session, role: Role | None = None, *,
                  csrf: object = READ_ONLY) -> User:
        """The logged-in user, else 401 (API) or a redirect to the login page; then, for a
        state change (``csrf`` is the token presented, or None when there was none), the
        session's CSRF token (403); then the role (403). Logged-in first, so a stale
        session hears "log in again" and not "CSRF"."""
        user = user_of(request, s)
        if user is None:
            if is_api(request):
                raise Problem(401, "not logged in")
            raise Problem(303, "/login?next=" + quote(request.url.path))
        if csrf is not READ_ONLY:
            check_csrf(request, csrf)
        # A tenant's user is never the installation's administrator (webapp.accounts
        # refuses to make one); this holds whatever the row says.
        if role is Role.ADMIN and (user.role is not Role.ADMIN or user.org_id is not None):
            raise Problem(403, "this page is for administrators")
        return user

    def check_csrf(request: Request, presented: Any) -> None:
        if not web_session(request).csrf_ok(presented if isinstance(presented, str) else None):
            hint = "send the X-CSRF-Token header" if is_api(request) else "reload the page and try again"
            raise Problem(403, f"CSRF token missing or wrong: {hint}")

    async def read_form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def api_csrf(request: Request) -> str | None:
        return request.headers.get(CSRF_HEADER)

    def render(request: Request, name: str, user: User | None = None, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        ws = web_session(request)
        html = env.get_template(name).render(
            request=request, user=user, csrf=LazyToken(ws), csrf_field=CSRF_FIELD,
            flash=ws.pop_flash(), **ctx)
        return HTMLResponse(html, status_code=status)

    def back(request: Request, url: str, message: str) -> RedirectResponse:
        web_session(request).flash(message)
        return RedirectResponse(url, status_code=303)

    throttle = LoginThrottle(Sessions)

    def _login(s: Any, request: Request, username: str, password: str) -> User | None:
        """authenticate() behind the per-account and per-address throttle: the attempt is
        reserved (in the database) before the password is checked."""
        ip = request.client.host if request.client else "?"
        try:
            attempt = throttle.reserve(username, ip)
        except LoginThrottled as exc:
            raise Problem(429, str(exc)) from None
        user = authenticate(s, username, password)
        if user is not None:
            throttle.succeeded(attempt, username)
        return user

    def _start_session(s: Session, request: Request, user: User) -> None:
        # A new token at login: the pre-login session is revoked, so a token planted
        # before login (fixation) is worth nothing after it.
        sessions.start(s, web_session(request), user.id)
        actions.audit(s, user.username, "user.login", "user", user.id, None, None)

    def _end_session(s: Session, request: Request, user: User | None) -> None:
        sessions.end(s, web_session(request))
        if user:
            actions.audit(s, user.username, "user.logout", "user", user.id, None, None)

    def held_notices(s: Session, scope: Scope | None = None) -> list[Notice]:
        q = select(Notice).where(Notice.status == NoticeStatus.AWAITING_APPROVAL)
        clause = scope.notice_clause() if scope is not None else None
        if clause is not None:
            q = q.where(clause)
        return list(s.scalars(q.options(selectinload(Notice.host), selectinload(Notice.items))
                              .order_by(Notice.created_at, Notice.id)))

    return Web(config=config, engine=engine, Sessions=Sessions, env=env, tz=tz, throttle=throttle,
               tx=tx, local=local, user_of=user_of, is_api=is_api, need_user=need_user, check_csrf=check_csrf, read_form=read_form, api_csrf=api_csrf, render=render, back=back, login=_login, start_session=_start_session, end_session=_end_session, held_notices=held_notices)
