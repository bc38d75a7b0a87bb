"""The JSON API (schema at ``/openapi.json``): session, review, notices, catalogue, admin lists, reports."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from db.models import (
    Host,
    MatchFrame,
    Notice,
    NoticeStatus,
    Report,
    Role,
    Site,
)
from webapp import actions
from webapp.public import list_titles
from webapp.sessions import web_session
from webapp.tenancy import Scope, visible_allowed
from webapp.web import (
    API_ERRORS,
    NOT_FOUND,
    THROTTLED,
    AllowedOut,
    ApproveIn,
    DiscardIn,
    HostOut,
    LoginIn,
    MatchOut,
    NoticeOut,
    Problem,
    RejectIn,
    ReportOut,
    RowId,
    SessionOut,
    SiteOut,
    TitleOut,
    Web,
    allowed_out,
    match_out,
    notice_out,
    query_matches,
    title_out,
)


def router(web: Web) -> APIRouter:
    tx, local, need_user, api_csrf = web.tx, web.local, web.need_user, web.api_csrf
    _login, _start_session, _end_session = web.login, web.start_session, web.end_session
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ JSON API

    @router.post("/api/login", response_model=SessionOut, tags=["session"], responses=THROTTLED)
    def api_login(request: Request, body: LoginIn) -> SessionOut:
        """Log in; the session cookie is set and the CSRF token returned."""
        with tx() as s:
            user = _login(s, request, body.username, body.password)
            if user is None:
                raise Problem(401, "wrong user name or password")
            _start_session(s, request, user)
            return SessionOut(username=user.username, role=user.role.value,
                              csrf_token=web_session(request).csrf_token())

    @router.get("/api/session", response_model=SessionOut, tags=["session"])
    def api_session(request: Request) -> SessionOut:
        with tx() as s:
            user = need_user(request, s)
            return SessionOut(username=user.username, role=user.role.value,
                              csrf_token=web_session(request).csrf_token())

    @router.post("/api/logout", tags=["session"])
    def api_logout(request: Request) -> dict[str, bool]:
        """End this session on the server: the cookie, or any copy of it, is worthless."""
        with tx() as s:
            _end_session(s, request, need_user(request, s, csrf=api_csrf(request)))
        return {"ok": True}

    @router.get("/api/matches", response_model=list[MatchOut], tags=["review"])
    def api_matches(request: Request, state: str = "review", limit: int = 200) -> list[MatchOut]:
        """Matches by state: review (waiting for a human), approved, rejected, confirmed, all."""
        with tx() as s:
            user = need_user(request, s)
            return [match_out(m, f) for m, f in query_matches(s, state, max(1, min(limit, 1000)), Scope(user))]

    @router.post("/api/matches/{match_id}/approve", response_model=MatchOut, tags=["review"], responses=NOT_FOUND)
    def api_approve_match(request: Request, match_id: RowId, body: ApproveIn | None = None) -> MatchOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            m = actions.approve_match(s, match_id, user, body.note if body else None)
            return match_out(m, s.scalar(select(MatchFrame).where(MatchFrame.match_id == m.id)))

    @router.post("/api/matches/{match_id}/reject", response_model=MatchOut, tags=["review"], responses=NOT_FOUND)
    def api_reject_match(request: Request, match_id: RowId, body: RejectIn) -> MatchOut:
        """Reject with a reason: the candidate/title pair never comes back as a match."""
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            m = actions.reject_match(s, match_id, user, body.reason)
            return match_out(m, s.scalar(select(MatchFrame).where(MatchFrame.match_id == m.id)))

    @router.get("/api/notices", response_model=list[NoticeOut], tags=["notices"])
    def api_notices(request: Request, status: str = "awaiting_approval") -> list[NoticeOut]:
        try:
            st = NoticeStatus(status)
        except ValueError:
            raise Problem(422, f"unknown notice status {status!r}") from None
        with tx() as s:
            user = need_user(request, s)
            q = select(Notice).where(Notice.status == st)
            clause = Scope(user).notice_clause()
            if clause is not None:
                q = q.where(clause)
            rows = s.scalars(q.options(selectinload(Notice.host), selectinload(Notice.items))
                             .order_by(Notice.id).limit(500))
            return [notice_out(n) for n in rows]

    @router.get("/api/notices/{notice_id}", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_notice(request: Request, notice_id: RowId) -> NoticeOut:
        with tx() as s:
            user = need_user(request, s)
            return notice_out(Scope(user).notice(s, notice_id))

    @router.post("/api/notices/{notice_id}/approve", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_approve_notice(request: Request, notice_id: RowId) -> NoticeOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            return notice_out(actions.approve_notice(s, notice_id, user))

    @router.post("/api/notices/{notice_id}/discard", response_model=NoticeOut, tags=["notices"], responses=NOT_FOUND)
    def api_discard_notice(request: Request, notice_id: RowId, body: DiscardIn | None = None) -> NoticeOut:
        with tx() as s:
            user = need_user(request, s, csrf=api_csrf(request))
            return notice_out(actions.discard_notice(s, notice_id, user, body.reason if body else None))

    @router.get("/api/titles", response_model=list[TitleOut], tags=["admin"])
    def api_titles(request: Request) -> list[TitleOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [title_out(t) for t in list_titles(s)]

    @router.get("/api/allowed", response_model=list[AllowedOut], tags=["catalogue"])
    def api_allowed(request: Request) -> list[AllowedOut]:
        """Allowed material (trailers, promos, public-domain footage, logos): a copy of it
        alone gets no notice."""
        with tx() as s:
            user = need_user(request, s)
            return [allowed_out(r) for r in visible_allowed(s, Scope(user))]

    @router.get("/api/sites", response_model=list[SiteOut], tags=["admin"])
    def api_sites(request: Request) -> list[SiteOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [SiteOut(id=x.id, name=x.name, kind=x.kind.value, enabled=x.enabled, schedule=x.schedule,
                            start_urls=[str(u) for u in x.start_urls])
                    for x in s.scalars(select(Site).order_by(Site.name))]

    @router.get("/api/hosts", response_model=list[HostOut], tags=["admin"])
    def api_hosts(request: Request) -> list[HostOut]:
        with tx() as s:
            need_user(request, s, Role.ADMIN)
            return [HostOut(id=h.id, name=h.name, abuse_contact=h.abuse_contact, channel=h.channel.value,
                            licensed_partner=h.licensed_partner, needs_approval=h.needs_approval,
                            jurisdiction=h.jurisdiction, jurisdiction_source=h.jurisdiction_source,
                            language=h.language, removal_pattern=h.removal_pattern)
                    for h in s.scalars(select(Host).order_by(Host.name))]

    @router.get("/api/reports", response_model=list[ReportOut], tags=["reports"])
    def api_reports(request: Request) -> list[ReportOut]:
        with tx() as s:
            user = need_user(request, s)
            # A tenant's report of a day is made from its own rows when read (/reports/DAY):
            # the archived installation-wide figures are not its to see.
            own = Scope(user).sees_reports()
            return [ReportOut(day=r.day.isoformat(), generated_at=local(r.generated_at),
                              summary=r.summary if own else {}, url=f"/reports/{r.day.isoformat()}")
                    for r in s.scalars(select(Report).order_by(Report.day.desc()).limit(400))]

    return router
