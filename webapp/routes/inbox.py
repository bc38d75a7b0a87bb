"""The hosts' replies: the staff queue, one mail, and staff's decisions on them.

Pages only (no JSON API yet). Every text shown comes from a hostile mail and is escaped
by the templates; HTML mail is shown as the text ``inbox.parse`` made of it, attachments
are listed (name, type, size, SHA-256) and never served. Every decision is a POST with
the session's CSRF token, open to any logged-in staff member, and audited
(``inbox.decide``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from db.models import CounterNotice, InboxMessage, ReplyKind
from foundation.errors import InvalidInput
from foundation.timeutil import utc_now
from inbox import decide
from inbox.views import open_counter_notices, putback_text, silent_hosts, staff_queue
from webapp.security import CSRF_FIELD
from webapp.web import API_ERRORS, Problem, RowId, Web


def router(web: Web) -> APIRouter:
    tx, need_user, read_form, render, back = web.tx, web.need_user, web.read_form, web.render, web.back
    router = APIRouter(responses=API_ERRORS)

    @router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            today = utc_now().date()
            cases = [(c, putback_text(c, today)) for c in open_counter_notices(s)]
            return render(request, "inbox.html", user, queue=staff_queue(s), cases=cases,
                          silent=silent_hosts(s)[:50])

    @router.get("/inbox/{message_id}", response_class=HTMLResponse, include_in_schema=False)
    def message_page(request: Request, message_id: RowId) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            m = s.get(InboxMessage, message_id)
            if m is None:
                raise Problem(404, f"no inbox message with id {message_id}")
            cases = [(c, putback_text(c, utc_now().date()))
                     for c in s.scalars(select(CounterNotice).where(CounterNotice.message_id == m.id))]
            return render(request, "inbox_message.html", user, m=m, cases=cases,
                          kinds=[k.value for k in ReplyKind])

    @router.post("/inbox/{message_id}/close", include_in_schema=False)
    async def close_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            decide.close_message(s, message_id, user.username, form.get("note"))
        return back(request, "/inbox", f"mail #{message_id} closed")

    @router.post("/inbox/{message_id}/accept-contact", include_in_schema=False)
    async def accept_contact_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            m = decide.accept_contact(s, message_id, user.username)
            addr = m.redirect_to
        return back(request, "/inbox", f"new contact {addr} accepted")

    @router.post("/inbox/{message_id}/file", include_in_schema=False)
    async def file_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            try:
                notice_id = int(form.get("notice_id", ""))
            except ValueError:
                raise InvalidInput("notice_id must be a notice number") from None
            if not 1 <= notice_id <= 2**31 - 1:
                raise InvalidInput("notice_id must be a notice number")
            decide.file_message(s, message_id, notice_id, form.get("kind", ""), user.username)
        return back(request, f"/inbox/{message_id}", f"mail #{message_id} filed under notice #{notice_id}")

    @router.post("/counter-notices/{cn_id}/decide", include_in_schema=False)
    async def decide_form(request: Request, cn_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            cn = decide.decide_counter_notice(s, cn_id, form.get("decision", ""), user.username, form.get("note"))
            state = cn.state.value
        return back(request, "/inbox", f"counter-notice #{cn_id}: {state.replace('_', ' ')} recorded")

    return router
