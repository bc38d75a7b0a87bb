"""The review web app (``vigie serve``): server-rendered pages and a JSON API.

Staff read the review queue (reference and candidate frames side by side), confirm or
reject matches, approve or discard held notices, see the allowed material (trailers,
logos: copies of it alone get no notice), and (admins) look after titles and offers,
allowed material, sites, hosts and users; the daily reports are archived here too. The pages and
the JSON API (schema at ``/openapi.json``) call the same library functions
(``webapp.actions``), which write the audit log. Public "where to watch legally" pages
live under ``/public`` without login.

Nothing a pirate page holds is ever loaded by the staff's browser: thumbnails are
served from our database, links to pirate pages are plain text or ``noreferrer``
anchors the analyst has to click, and the CSP (``webapp.security``) forbids anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload
from starlette.exceptions import HTTPException

from db.auditchain import verify_chain
from db.models import (
    AuditLog,
    Candidate,
    Decision,
    Host,
    Match,
    MatchFrame,
    Notice,
    NoticeStatus,
    OfferKind,
    ReferenceVideo,
    Report,
    ReviewState,
    Role,
    Site,
    Title,
    TitlePoster,
    User,
)
from db.session import sessionmaker_for
from foundation.timeutil import as_utc, zone
from reports.daily import hms, one_line, report_anchors, safe_url
from stages.catalog import list_allowed
from foundation.config import Config
from foundation.errors import Duplicate, LoginThrottled, NotFound, VigieError
from webapp import actions
from webapp import sessions
from webapp.accounts import LoginThrottle, authenticate, change_own_password, create_user, dummy_hash, \
    list_users, set_active, set_password
from webapp.public import brand, list_public_titles, offers_view, title_context
from webapp.security import CSRF_FIELD, CSRF_HEADER, NOTICE_CSP, REPORT_CSP, STATIC_CSP, SecurityHeaders
from webapp.sessions import LazyToken, ServerSessions, web_session

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


class OfferOut(BaseModel):
    id: int
    url: str
    provider: str | None
    kind: str
    territory: str


class TitleOut(BaseModel):
    id: int
    title: str
    year: int | None
    offers: list[OfferOut]


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
                     urls=[i.url for i in n.items],
                     created_at=as_utc(n.created_at).isoformat() if n.created_at else None)  # type: ignore[union-attr]


def title_out(t: Title) -> TitleOut:
    return TitleOut(id=t.id, title=t.title, year=t.year,
                    offers=[OfferOut(id=o.id, url=o.url, provider=o.provider, kind=o.kind.value,
                                     territory=o.territory) for o in t.offers])


MATCH_FILTERS = {
    "review": lambda q: q.where(Match.decision == Decision.REVIEW, Match.review == ReviewState.NONE),
    "approved": lambda q: q.where(Match.review == ReviewState.APPROVED),
    "rejected": lambda q: q.where(Match.review == ReviewState.REJECTED),
    "confirmed": lambda q: q.where(Match.decision == Decision.CONFIRMED, Match.review != ReviewState.REJECTED),
    # Copies explained only by allowed material (a trailer, a logo): shown, never notified.
    "allowed": lambda q: q.where(Match.decision == Decision.ALLOWED),
    "all": lambda q: q,
}


def query_matches(s: Session, state: str, limit: int = 200) -> list[tuple[Match, MatchFrame | None]]:
    if state not in MATCH_FILTERS:
        raise Problem(422, f"unknown match state {state!r} (known: {', '.join(MATCH_FILTERS)})")
    q = select(Match).options(selectinload(Match.candidate).selectinload(Candidate.site),
                              selectinload(Match.candidate).selectinload(Candidate.host),
                              selectinload(Match.title).selectinload(Title.offers))
    q = MATCH_FILTERS[state](q).order_by(Match.score.desc(), Match.id).limit(limit)
    rows = list(s.scalars(q))
    frames = {f.match_id: f for f in s.scalars(select(MatchFrame).where(MatchFrame.match_id.in_([m.id for m in rows])))} \
        if rows else {}
    return [(m, frames.get(m.id)) for m in rows]


# --------------------------------------------------------------------------- the app


def create_app(engine: Engine, config: Config, *, secret_key: str | None = None,
               secure_cookies: bool | None = None) -> FastAPI:
    """Build the app over ``engine``. Cookies are Secure (and named ``__Host-...``) when
    ``[web].secure_cookies`` says so, or by default when ``[web].public_base_url`` is https.

    ``secret_key`` is accepted for older callers and unused: sessions live in the database
    (``webapp.sessions``), nothing is signed."""
    del secret_key
    dummy_hash()  # made now: the first login of an unknown name costs what later ones do
    Sessions = sessionmaker_for(engine)
    if secure_cookies is None:
        secure_cookies = bool(config.web.get("secure_cookies",
                                             str(config.web.get("public_base_url", "")).startswith("https://")))
    env = template_env()
    tz = zone(config)

    app = FastAPI(title="Vigie review API", version="1", docs_url=None, redoc_url=None, responses=API_ERRORS,
                  description="Review matches, approve notices and manage the catalogue. "
                              "Log in with POST /api/login; send the session's csrf_token as "
                              "X-CSRF-Token on every POST.")
    # Order: the session must exist before handlers; headers wrap everything, Starlette's
    # own error middleware (the 500 page) included, so no response goes out without them.
    app.add_middleware(ServerSessions, sessions=Sessions, secure=secure_cookies)
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build_stack())  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

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
        if role is Role.ADMIN and user.role is not Role.ADMIN:
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

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        if exc.status == 303:
            return RedirectResponse(exc.message, status_code=303)
        if is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        with tx() as s:
            user = user_of(request, s)
        return render(request, "error.html", user, status=exc.status, message=exc.message, code=exc.status)

    @app.exception_handler(Exception)
    async def on_server_error(request: Request, exc: Exception) -> Response:
        # The usual error body, never a traceback; the exception is logged (by
        # webapp.security.SecurityHeaders, once this response is out).
        if is_api(request):
            return JSONResponse({"detail": "internal server error"}, status_code=500)
        return HTMLResponse(env.get_template("error.html").render(
            request=request, user=None, csrf="", csrf_field=CSRF_FIELD, flash=None,
            message="internal server error", code=500), status_code=500)

    @app.exception_handler(VigieError)
    async def on_domain_error(request: Request, exc: VigieError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Duplicate) else 422
        return await on_problem(request, Problem(status, one_line(str(exc), 500)))

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/review") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") and not next.startswith("//") else "/review")

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

    @app.post("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        form = await read_form(request)
        check_csrf(request, form.get(CSRF_FIELD))  # the pre-login session's token
        with tx() as s:
            user = _login(s, request, form.get("username", ""), form.get("password", ""))
            if user is None:
                return render(request, "login.html", status=401, error="wrong user name or password",
                              next=form.get("next", "/review"))
            _start_session(s, request, user)
        nxt = form.get("next", "/review")
        return RedirectResponse(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/review", 303)

    def _start_session(s: Session, request: Request, user: User) -> None:
        # A new token at login: the pre-login session is revoked, so a token planted
        # before login (fixation) is worth nothing after it.
        sessions.start(s, web_session(request), user.id)
        actions.audit(s, user.username, "user.login", "user", user.id, None, None)

    def _end_session(s: Session, request: Request, user: User | None) -> None:
        sessions.end(s, web_session(request))
        if user:
            actions.audit(s, user.username, "user.logout", "user", user.id, None, None)

    @app.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        form = await read_form(request)
        if web_session(request).id is not None:  # no session: nothing to end
            check_csrf(request, form.get(CSRF_FIELD))
            with tx() as s:
                _end_session(s, request, user_of(request, s))
        return RedirectResponse("/login", 303)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/review", 303)

    # ------------------------------------------------------------------ review

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, state: str = "review") -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            rows = query_matches(s, state)
            refs = {r.id: r for r in s.scalars(select(ReferenceVideo).where(
                ReferenceVideo.id.in_({m.reference_id for m, _ in rows if m.reference_id})))} if rows else {}
            cards = [{"m": m, "f": f, "ref": refs.get(m.reference_id or -1),
                      "page_link": safe_url(m.candidate.page_url), "allowed": allowed_reason(m),
                      # The page as the browser resolver rendered it (crawlers.browser).
                      "shot": bool(((m.candidate.evidence or {}).get("browser") or {}).get("screenshot")),
                      "offers": offers_view(m.title) if m.title else []} for m, f in rows]
            return render(request, "review.html", user, cards=cards, state=state, states=list(MATCH_FILTERS))

    @app.post("/review/{match_id}/confirm", include_in_schema=False)
    async def confirm_form(request: Request, match_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            m = actions.approve_match(s, match_id, user, form.get("note"))
            msg = f"match #{m.id} confirmed"
        return back(request, "/review", msg)

    @app.post("/review/{match_id}/reject", include_in_schema=False)
    async def reject_form(request: Request, match_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            m = actions.reject_match(s, match_id, user, form.get("reason", ""))
            msg = f"match #{m.id} rejected: this page will not come back as " + (
                m.title.title if m.title else "this material")
        return back(request, "/review", msg)

    @app.get("/frames/{match_id}/{which}.jpg", include_in_schema=False)
    def frame(request: Request, match_id: RowId, which: str) -> Response:
        with tx() as s:
            need_user(request, s)
            f = s.scalar(select(MatchFrame).where(MatchFrame.match_id == match_id))
            data = None if f is None else f.ref_jpeg if which == "ref" else f.cand_jpeg if which == "cand" else None
            if not data:
                raise Problem(404, "no such frame")
            return Response(data, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    @app.get("/screenshots/{match_id}.png", include_in_schema=False)
    def screenshot(request: Request, match_id: RowId) -> Response:
        from crawlers.evidence import load_blob

        with tx() as s:
            need_user(request, s)
            m = s.get(Match, match_id)
            ref = ((m.candidate.evidence or {}).get("browser") or {}).get("screenshot") if m else None
            try:
                data = load_blob(ref) if isinstance(ref, dict) else None
            except (OSError, ValueError):
                data = None
            if not data:
                raise Problem(404, "no screenshot")
            return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    @app.get("/media/reference/{ref_id}", include_in_schema=False)
    def reference_media(request: Request, ref_id: RowId) -> Response:
        # Our own master, played from the matched timecode (the candidate is never played
        # from the pirate site: that would load their content in the staff's browser).
        with tx() as s:
            need_user(request, s)
            ref = s.get(ReferenceVideo, ref_id)
            if ref is None or not ref.path or not Path(ref.path).is_file():
                raise Problem(404, "reference file not available")
            return FileResponse(ref.path, media_type="video/mp4")

    # ------------------------------------------------------------------ notices

    def held_notices(s: Session) -> list[Notice]:
        return list(s.scalars(select(Notice).where(Notice.status == NoticeStatus.AWAITING_APPROVAL)
                              .options(selectinload(Notice.host), selectinload(Notice.items))
                              .order_by(Notice.created_at, Notice.id)))

    @app.get("/notices", response_class=HTMLResponse, include_in_schema=False)
    def notices_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            return render(request, "notices.html", user, notices=held_notices(s))

    @app.get("/notices/{notice_id}", response_class=HTMLResponse, include_in_schema=False)
    def notice_page(request: Request, notice_id: RowId) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            n = s.get(Notice, notice_id)
            if n is None:
                raise Problem(404, f"no notice with id {notice_id}")
            return render(request, "notice.html", user, n=n)

    @app.get("/notices/{notice_id}/html", include_in_schema=False)
    def notice_html(request: Request, notice_id: RowId) -> Response:
        with tx() as s:
            need_user(request, s)
            n = s.get(Notice, notice_id)
            if n is None or not n.body_html:
                raise Problem(404, "no HTML body for this notice")
            return HTMLResponse(n.body_html, headers={"content-security-policy": NOTICE_CSP,
                                                      "x-frame-options": "SAMEORIGIN"})

    @app.post("/notices/{notice_id}/approve", include_in_schema=False)
    async def approve_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            actions.approve_notice(s, notice_id, user)
        return back(request, "/notices", f"notice #{notice_id} approved: queued for sending")

    @app.post("/notices/{notice_id}/discard", include_in_schema=False)
    async def discard_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            actions.discard_notice(s, notice_id, user, form.get("reason"))
        return back(request, "/notices", f"notice #{notice_id} discarded")

    # ------------------------------------------------------------------ reports archive

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            rows = list(s.scalars(select(Report).order_by(Report.day.desc()).limit(400)))
            return render(request, "reports.html", user, reports=rows)

    @app.get("/reports/{day}", include_in_schema=False)
    def report_view(request: Request, day: str) -> Response:
        with tx() as s:
            need_user(request, s)
            try:
                d = date.fromisoformat(day)
            except ValueError:
                raise Problem(404, "no such report") from None
            row = s.scalar(select(Report).where(Report.day == d))
            if row is None:
                raise Problem(404, f"no report for {day}")
            return HTMLResponse(row.html, headers={"content-security-policy": REPORT_CSP})

    # ------------------------------------------------------------------ admin pages

    @app.get("/titles", response_class=HTMLResponse, include_in_schema=False)
    def titles_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "titles.html", user, titles=list_public_titles(s),
                          kinds=[k.value for k in OfferKind])

    @app.post("/titles/{title_id}/offers", include_in_schema=False)
    async def add_offer_form(request: Request, title_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.add_offer(s, title_id, user, form.get("url", ""), form.get("provider"),
                              form.get("kind", "vod_rental"), form.get("territory", "*"))
        return back(request, "/titles", "offer added")

    @app.post("/offers/{offer_id}/remove", include_in_schema=False)
    async def remove_offer_form(request: Request, offer_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.remove_offer(s, offer_id, user)
        return back(request, "/titles", "offer removed")

    @app.get("/allowed", response_class=HTMLResponse, include_in_schema=False)
    def allowed_page(request: Request) -> HTMLResponse:
        # Every staff member sees what is allowed (it explains "allowed" in review);
        # removing it is for those who manage the catalogue.
        with tx() as s:
            user = need_user(request, s)
            return render(request, "allowed.html", user, rows=[allowed_out(r) for r in list_allowed(s)])

    @app.post("/allowed/{ref_id}/remove", include_in_schema=False)
    async def remove_allowed_form(request: Request, ref_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            requeued = actions.remove_allowed(s, ref_id, user)
        return back(request, "/allowed", f"allowed material #{ref_id} removed; "
                                         f"{requeued} copies of it will be matched again")

    @app.get("/sites", response_class=HTMLResponse, include_in_schema=False)
    def sites_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "sites.html", user, sites=list(s.scalars(select(Site).order_by(Site.name))))

    @app.post("/sites/{site_id}", include_in_schema=False)
    async def site_form(request: Request, site_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.set_site(s, site_id, user, enabled=form.get("enabled") == "on",
                             schedule=form.get("schedule", ""))
        return back(request, "/sites", "site saved")

    @app.get("/hosts", response_class=HTMLResponse, include_in_schema=False)
    def hosts_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "hosts.html", user, hosts=list(s.scalars(select(Host).order_by(Host.name))),
                          channels=["email", "api", "webform", "none"])

    @app.post("/hosts/{host_id}", include_in_schema=False)
    async def host_form(request: Request, host_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.set_host(s, host_id, user, abuse_contact=form.get("abuse_contact", ""),
                             channel=form.get("channel"), licensed_partner=form.get("licensed_partner") == "on",
                             needs_approval=form.get("needs_approval") == "on")
        return back(request, "/hosts", "host saved")

    @app.get("/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "users.html", user, users=list_users(s))

    @app.post("/users", include_in_schema=False)
    async def add_user_form(request: Request) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            new = create_user(s, form.get("username", "").strip(), form.get("password", ""),
                              form.get("role", "analyst"), email=form.get("email") or None, actor=user.username)
            msg = f"user {new.username} added"
        return back(request, "/users", msg)

    @app.post("/users/{user_id}/disable", include_in_schema=False)
    @app.post("/users/{user_id}/enable", include_in_schema=False)
    async def user_active_form(request: Request, user_id: RowId) -> Response:
        form = await read_form(request)
        active = request.url.path.endswith("/enable")
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            target = set_active(s, user_id, active, actor=user.username)
            msg = f"user {target.username} {'enabled' if active else 'disabled: their sessions have ended'}"
        return back(request, "/users", msg)

    @app.post("/users/{user_id}/password", include_in_schema=False)
    async def user_password_form(request: Request, user_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            target = set_password(s, user_id, form.get("password", ""), actor=user.username)
            if target.id == user.id:  # one's own sessions ended too: carry on in a new one
                sessions.start(s, web_session(request), user.id)
            msg = f"password of {target.username} changed: their sessions have ended"
        return back(request, "/users", msg)

    @app.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            return render(request, "account.html", user)

    @app.post("/account/password", include_in_schema=False)
    async def account_password_form(request: Request) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            change_own_password(s, user, form.get("current", ""), form.get("password", ""))
            # Every session of the user ended (another browser, a stolen cookie); this
            # browser goes on in a new one.
            sessions.start(s, web_session(request), user.id)
        return back(request, "/account", "password changed: your other sessions have ended")

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            rows = list(s.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(300)))
            return render(request, "audit.html", user, rows=rows,
                          chain_problems=verify_chain(s, report_anchors(s)))

    # ------------------------------------------------------------------ public pages

    @app.get("/public/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/public", response_class=HTMLResponse, include_in_schema=False)
    def public_index(request: Request) -> HTMLResponse:
        with tx() as s:
            titles = list_public_titles(s)
            html = env.get_template("public_index.html").render(
                titles=[(t, f"/public/titles/{t.id}", len(offers_view(t))) for t in titles],
                index_url="/public/", static=False, **brand(config))
        return HTMLResponse(html)

    @app.get("/public/titles/{title_id}", response_class=HTMLResponse, include_in_schema=False)
    def public_title(request: Request, title_id: RowId) -> HTMLResponse:
        with tx() as s:
            t = s.get(Title, title_id)
            if t is None:
                raise Problem(404, "no such title")
            ctx = title_context(s, config, t)
            html = env.get_template("public_title.html").render(
                poster_url=f"/public/titles/{t.id}/poster.jpg" if ctx["has_poster"] else None,
                index_url="/public/", static=False, **ctx)
        return HTMLResponse(html)

    @app.get("/public/titles/{title_id}/poster.jpg", include_in_schema=False)
    def public_poster(title_id: RowId) -> Response:
        with tx() as s:
            p = s.get(TitlePoster, title_id)
            if p is None:
                raise Problem(404, "no poster")
            return Response(p.jpeg, media_type="image/jpeg", headers={"cache-control": "public, max-age=86400"})

    # ------------------------------------------------------------------ JSON API

    @app.post("/api/login", response_model=SessionOut, tags=["session"], responses=THROTTLED)
    def api_login(request: Request, body: LoginIn) -> SessionOut:
        """Log in; the session cookie is set and the CSRF token returned."""
        with tx() as s:
            user = _login(s, request, body.username, body.password)
            if user is None:
                raise Problem(401, "wrong user name or password")
            _start_session(s, request, user)
            return SessionOut(username=user.username, role=user.role.value,
                              csrf_token=web_session(request).csrf_token())

    @app.get("/api/session", response_model=SessionOut, tags=["session"])
    def api_session(request: Request) -> SessionOut:
        with tx() as s:
            user = need_user(request, s)
            return SessionOut(username=user.username, role=user.role.value,
                              csrf_token=web_session(request).csrf_token())

    @app.post("/api/logout", tags=["session"])
    def api_logout(request: Request) -> dict[str, bool]:
        """End this session on the server: the cookie, or any copy of it, is worthless."""
        with tx() as s:
            _end_session(s, request, need_user(request, s, csrf=api_csrf(request)))
        return {"ok": True}

    @app.get("/api/matches", response_model=list[MatchOut], tags=["review"])
    def api_matches(request: Request, state: str = "review", limit: int = 200) -> list[MatchOut]:
        """Matches by state: review (waiting for a human), approved, rejected, confirmed, all."""
        with tx() as s:
            need_user(request, s)
            return [match_out(m, f) for m, f in query_matches(s, state, max(1, min(limit, 1000)))]

    @app.post("/api/matches/{match_id}/approve", response_model=MatchOut, tags=["review"], responses=NOT_FOUND)
    def api_approve_match(request: Request, match_id: RowId, body: ApproveIn | None = None) -> MatchOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            m = actions.approve_match(s, match_id, user, body.note if body else None)
            return match_out(m, s.scalar(select(MatchFrame).where(MatchFrame.match_id == m.id)))

    @app.post("/api/matches/{match_id}/reject", response_model=MatchOut, tags=["review"], responses=NOT_FOUND)
    def api_reject_match(request: Request, match_id: RowId, body: RejectIn) -> MatchOut:
        """Reject with a reason: the candidate/title pair never comes back as a match."""
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            m = actions.reject_match(s, match_id, user, body.reason)
            return match_out(m, s.scalar(select(MatchFrame).where(MatchFrame.match_id == m.id)))

    @app.get("/api/notices", response_model=list[NoticeOut], tags=["notices"])
    def api_notices(request: Request, status: str = "awaiting_approval") -> list[NoticeOut]:
        try:
            st = NoticeStatus(status)
        except ValueError:
            raise Problem(422, f"unknown notice status {status!r}") from None
        with tx() as s:
            need_user(request, s)
            rows = s.scalars(select(Notice).where(Notice.status == st).options(
                selectinload(Notice.host), selectinload(Notice.items)).order_by(Notice.id).limit(500))
            return [notice_out(n) for n in rows]

    @app.get("/api/notices/{notice_id}", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_notice(request: Request, notice_id: RowId) -> NoticeOut:
        with tx() as s:
            need_user(request, s)
            n = s.get(Notice, notice_id)
            if n is None:
                raise Problem(404, f"no notice with id {notice_id}")
            return notice_out(n)

    @app.post("/api/notices/{notice_id}/approve", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_approve_notice(request: Request, notice_id: RowId) -> NoticeOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            return notice_out(actions.approve_notice(s, notice_id, user))

    @app.post("/api/notices/{notice_id}/discard", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_discard_notice(request: Request, notice_id: RowId, body: DiscardIn | None = None) -> NoticeOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            return notice_out(actions.discard_notice(s, notice_id, user, body.reason if body else None))

    @app.get("/api/titles", response_model=list[TitleOut], tags=["admin"])
    def api_titles(request: Request) -> list[TitleOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [title_out(t) for t in list_public_titles(s)]

    @app.get("/api/allowed", response_model=list[AllowedOut], tags=["catalogue"])
    def api_allowed(request: Request) -> list[AllowedOut]:
        """Allowed material (trailers, promos, public-domain footage, logos): a copy of it
        alone gets no notice."""
        with tx() as s:
            need_user(request, s)
            return [allowed_out(r) for r in list_allowed(s)]

    @app.get("/api/sites", response_model=list[SiteOut], tags=["admin"])
    def api_sites(request: Request) -> list[SiteOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [SiteOut(id=x.id, name=x.name, kind=x.kind.value, enabled=x.enabled, schedule=x.schedule,
                            start_urls=[str(u) for u in x.start_urls])
                    for x in s.scalars(select(Site).order_by(Site.name))]

    @app.get("/api/hosts", response_model=list[HostOut], tags=["admin"])
    def api_hosts(request: Request) -> list[HostOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [HostOut(id=h.id, name=h.name, abuse_contact=h.abuse_contact, channel=h.channel.value,
                            licensed_partner=h.licensed_partner, needs_approval=h.needs_approval)
                    for h in s.scalars(select(Host).order_by(Host.name))]

    @app.get("/api/reports", response_model=list[ReportOut], tags=["reports"])
    def api_reports(request: Request) -> list[ReportOut]:
        with tx() as s:
            need_user(request, s)
            return [ReportOut(day=r.day.isoformat(), generated_at=local(r.generated_at), summary=r.summary,
                              url=f"/reports/{r.day.isoformat()}")
                    for r in s.scalars(select(Report).order_by(Report.day.desc()).limit(400))]

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        return await on_problem(request, Problem(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # One shape for every API error ({"detail": "..."}), and an error page for pages.
        # Pydantic's messages name the field and the rule, never the value sent.
        said = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                         for e in exc.errors()[:3])
        return await on_problem(request, Problem(422, one_line(said or "invalid request", 500)))

    return app


__all__ = ["create_app", "template_env"]
