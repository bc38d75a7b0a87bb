"""Notices that wait for a human (held for approval, submission tasks, drafts, failed: list,
read, approve, discard, export, mark submitted, retry) and the daily reports' archive."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy import select

from db.models import (
    Notice,
    Report,
)
from notices.views import is_submission_task, pending_work
from notices.workflow import export_task, submission_fields
from inbox.views import timeline
from webapp import actions
from webapp.security import CSRF_FIELD, NOTICE_CSP, REPORT_CSP
from webapp.tenancy import Scope
from webapp.web import API_ERRORS, Problem, RowId, Web


def router(web: Web) -> APIRouter:
    tx, need_user, read_form, render = web.tx, web.need_user, web.read_form, web.render
    back, held_notices = web.back, web.held_notices
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ notices

    @router.get("/notices", response_class=HTMLResponse, include_in_schema=False)
    def notices_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            scope = Scope(user)
            work = pending_work(s)
            if not scope.everything:
                # A tenant's user sees only the notices about its own titles.
                visible = set(s.scalars(select(Notice.id).where(scope.notice_clause())))  # type: ignore[arg-type]
                work = {k: [n for n in v if n.id in visible] for k, v in work.items()}
            return render(request, "notices.html", user, notices=held_notices(s, scope), tasks=work["tasks"],
                          drafts=work["drafts"], failed=work["failed"])

    @router.get("/notices/{notice_id}", response_class=HTMLResponse, include_in_schema=False)
    def notice_page(request: Request, notice_id: RowId) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            n = Scope(user).notice(s, notice_id)
            task = submission_fields(n, web.config) if is_submission_task(n) else None
            return render(request, "notice.html", user, n=n, task=task, timeline=timeline(s, n))

    @router.get("/notices/{notice_id}/html", include_in_schema=False)
    def notice_html(request: Request, notice_id: RowId) -> Response:
        with tx() as s:
            user = need_user(request, s)
            n = Scope(user).notice(s, notice_id)
            if not n.body_html:
                raise Problem(404, "no HTML body for this notice")
            return HTMLResponse(n.body_html, headers={"content-security-policy": NOTICE_CSP,
                                                      "x-frame-options": "SAMEORIGIN"})

    @router.get("/notices/{notice_id}/export.json", include_in_schema=False)
    @router.get("/notices/{notice_id}/export.txt", include_in_schema=False)
    def notice_export(request: Request, notice_id: RowId) -> Response:
        fmt = "json" if request.url.path.endswith(".json") else "text"
        with tx() as s:
            n = Scope(need_user(request, s)).notice(s, notice_id)
            body = export_task(n, web.config, fmt)
        name = f"notice-{notice_id}-task.{'json' if fmt == 'json' else 'txt'}"
        headers = {"content-disposition": f'attachment; filename="{name}"'}
        if fmt == "json":
            return Response(body, media_type="application/json", headers=headers)
        return PlainTextResponse(body, headers=headers)

    @router.post("/notices/{notice_id}/submitted", include_in_schema=False)
    async def submitted_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            n = actions.mark_submitted(s, web.config, notice_id, user, form.get("ticket_ref", ""))
            msg = (f"notice #{notice_id} marked submitted (ticket {n.ticket_ref}): verification follows it"
                   if n.status.value == "sent" else f"notice #{notice_id} {n.status.value}: {n.last_error}")
        return back(request, f"/notices/{notice_id}", msg)

    @router.post("/notices/{notice_id}/retry", include_in_schema=False)
    async def retry_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            n = actions.retry_notice(s, web.config, notice_id, user)
            msg = (f"notice #{n.id} queued again" if n.id == notice_id
                   else f"notice #{notice_id} rebuilt as #{n.id} ({n.status.value})")
            target = n.id
        return back(request, f"/notices/{target}", msg)

    @router.post("/notices/{notice_id}/approve", include_in_schema=False)
    async def approve_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            actions.approve_notice(s, notice_id, user)
        return back(request, "/notices", f"notice #{notice_id} approved: queued for sending")

    @router.post("/notices/{notice_id}/discard", include_in_schema=False)
    async def discard_notice_form(request: Request, notice_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            actions.discard_notice(s, notice_id, user, form.get("reason"))
        return back(request, "/notices", f"notice #{notice_id} discarded")

    # ------------------------------------------------------------------ reports archive

    @router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            rows = list(s.scalars(select(Report).order_by(Report.day.desc()).limit(400)))
            if not Scope(user).sees_reports():
                # A tenant's report of a day is made from its own rows when read; the
                # archived (installation-wide) one is not shown, nor its figures.
                rows = [SimpleNamespace(day=r.day, generated_at=r.generated_at, summary={}) for r in rows]
            return render(request, "reports.html", user, reports=rows)

    @router.get("/reports/{day}", include_in_schema=False)
    def report_view(request: Request, day: str) -> Response:
        with tx() as s:
            user = need_user(request, s)
            try:
                d = date.fromisoformat(day)
            except ValueError:
                raise Problem(404, "no such report") from None
            row = s.scalar(select(Report).where(Report.day == d))
            if row is None:
                raise Problem(404, f"no report for {day}")
            scope = Scope(user)
            if scope.sees_reports():
                return HTMLResponse(row.html, headers={"content-security-policy": REPORT_CSP})
            from reports.daily import collect, render_html

            html = render_html(collect(s, web.config, d, titles=set(s.scalars(scope.titles()))))
            return HTMLResponse(html, headers={"content-security-policy": REPORT_CSP})

    return router
