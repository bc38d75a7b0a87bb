"""The hosts' replies: the staff queue, one mail, and staff's decisions on them.

Pages, and two read-only JSON views (``/api/inbox``, ``/api/notices/{id}/timeline``). Every text shown comes from a hostile mail and is escaped
by the templates; HTML mail is shown as the text ``inbox.parse`` made of it, attachments
are listed (name, type, size, SHA-256) and never served. Every decision is a POST with
the session's CSRF token, open to any logged-in staff member, and audited
(``inbox.decide``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import select

from db.models import CounterNotice, InboxMessage, ReplyKind, User
from foundation.errors import InvalidInput
from foundation.timeutil import as_utc, utc_now
from inbox import decide
from inbox.views import open_counter_notices, putback_text, silent_hosts, staff_queue, timeline
from webapp.security import CSRF_FIELD
from webapp.tenancy import Scope
from webapp.web import API_ERRORS, NOT_FOUND, Problem, RowId, Web


class InboxMailOut(BaseModel):
    id: int
    received_at: str | None
    sender: str | None
    subject: str | None
    kind: str
    confidence: float
    state: str
    notice_id: int | None
    threaded_by: str | None
    ticket: str | None
    reason: str | None
    redirect_to: str | None
    why: str | None


class CounterNoticeOut(BaseModel):
    id: int
    notice_id: int | None
    regime: str
    state: str
    received_at: str | None
    urls: list[str]
    putback_from: str | None
    putback_until: str | None
    window: str


class InboxOut(BaseModel):
    for_staff: list[InboxMailOut]
    counter_notices_open: list[CounterNoticeOut]


class TimelineEventOut(BaseModel):
    at: str | None
    direction: str                 # out (our notice) | in (the host's mail) | case (counter-notice)
    what: str
    notice_id: int | None
    inbox_message_id: int | None = None
    counter_notice_id: int | None = None
    subject: str | None = None
    detail: str | None = None


def _iso(dt: Any) -> str | None:
    dt = as_utc(dt)
    return dt.isoformat() if dt else None


def mail_out(m: InboxMessage) -> InboxMailOut:
    return InboxMailOut(id=m.id, received_at=_iso(m.received_at), sender=m.from_addr, subject=m.subject,
                        kind=m.kind.value, confidence=m.confidence, state=m.state.value, notice_id=m.notice_id,
                        threaded_by=m.threaded_by, ticket=m.ticket, reason=m.reason, redirect_to=m.redirect_to,
                        why=m.staff_reason)


def case_out(c: CounterNotice, today: Any) -> CounterNoticeOut:
    return CounterNoticeOut(id=c.id, notice_id=c.notice_id, regime=c.regime, state=c.state.value,
                            received_at=_iso(c.received_at), urls=[u for u in c.urls or [] if isinstance(u, str)],
                            putback_from=c.putback_from.isoformat() if c.putback_from else None,
                            putback_until=c.putback_until.isoformat() if c.putback_until else None,
                            window=putback_text(c, today))


def installation_staff(user: User) -> User:
    """The hosts' replies come to the installation's mailbox and may concern any rights
    holder's titles: only the installation's own staff (users of no organisation) read
    and act on them. A tenant's user sees its notices' threads on the notice pages."""
    if not Scope(user).everything:
        raise Problem(403, "the hosts' replies are read by the installation's staff")
    return user


def router(web: Web) -> APIRouter:
    tx, need_user, read_form, render, back = web.tx, web.need_user, web.read_form, web.render, web.back
    router = APIRouter(responses=API_ERRORS)

    @router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = installation_staff(need_user(request, s))
            today = utc_now().date()
            cases = [(c, putback_text(c, today)) for c in open_counter_notices(s)]
            return render(request, "inbox.html", user, queue=staff_queue(s), cases=cases,
                          silent=silent_hosts(s)[:50])

    @router.get("/inbox/{message_id}", response_class=HTMLResponse, include_in_schema=False)
    def message_page(request: Request, message_id: RowId) -> HTMLResponse:
        with tx() as s:
            user = installation_staff(need_user(request, s))
            m = s.get(InboxMessage, message_id)
            if m is None:
                raise Problem(404, f"no inbox message with id {message_id}")
            cases = [(c, putback_text(c, utc_now().date()))
                     for c in s.scalars(select(CounterNotice).where(CounterNotice.message_id == m.id))]
            return render(request, "inbox_message.html", user, m=m, cases=cases,
                          kinds=[k.value for k in ReplyKind])

    @router.get("/inbox/{message_id}/source.eml", include_in_schema=False)
    def message_source(request: Request, message_id: RowId) -> Response:
        """The mail as received, to hand on (a lawyer, the mail team): a download, never
        shown or opened by the browser (octet-stream, attachment, nosniff, sandboxed)."""
        with tx() as s:
            installation_staff(need_user(request, s))
            m = s.get(InboxMessage, message_id)
            if m is None:
                raise Problem(404, f"no inbox message with id {message_id}")
            return Response(m.raw, media_type="application/octet-stream", headers={
                "content-disposition": f'attachment; filename="vigie-inbox-{m.id}.eml"',
                "x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'"})

    @router.post("/inbox/{message_id}/close", include_in_schema=False)
    async def close_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = installation_staff(need_user(request, s, csrf=form.get(CSRF_FIELD)))
            decide.close_message(s, message_id, user.username, form.get("note"))
        return back(request, "/inbox", f"mail #{message_id} closed")

    @router.post("/inbox/{message_id}/accept-contact", include_in_schema=False)
    async def accept_contact_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = installation_staff(need_user(request, s, csrf=form.get(CSRF_FIELD)))
            m = decide.accept_contact(s, message_id, user.username)
            addr = m.redirect_to
        return back(request, "/inbox", f"new contact {addr} accepted")

    @router.post("/inbox/{message_id}/file", include_in_schema=False)
    async def file_form(request: Request, message_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = installation_staff(need_user(request, s, csrf=form.get(CSRF_FIELD)))
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
            user = installation_staff(need_user(request, s, csrf=form.get(CSRF_FIELD)))
            cn = decide.decide_counter_notice(s, cn_id, form.get("decision", ""), user.username, form.get("note"))
            state = cn.state.value
        return back(request, "/inbox", f"counter-notice #{cn_id}: {state.replace('_', ' ')} recorded")

    @router.get("/api/inbox", response_model=InboxOut, tags=["inbox"])
    def api_inbox(request: Request) -> InboxOut:
        """What waits for staff: unmatched or unsure mail, refusals, bounces, redirects, and
        the counter-notices not decided yet with their put-back windows."""
        with tx() as s:
            installation_staff(need_user(request, s))
            today = utc_now().date()
            return InboxOut(for_staff=[mail_out(m) for m in staff_queue(s)],
                            counter_notices_open=[case_out(c, today) for c in open_counter_notices(s)])

    @router.get("/api/notices/{notice_id}/timeline", response_model=list[TimelineEventOut], tags=["inbox"],
                responses=NOT_FOUND)
    def api_timeline(request: Request, notice_id: RowId) -> list[TimelineEventOut]:
        """Every mail both ways of a notice's thread, oldest first."""
        with tx() as s:
            # A tenant's user reads the thread of its own notices (404 for another's).
            n = Scope(need_user(request, s)).notice(s, notice_id)
            out = []
            for e in timeline(s, n):
                msg, cn = e.get("message"), e.get("counter_notice")
                out.append(TimelineEventOut(
                    at=_iso(e["at"]), direction=e["direction"], what=e["what"], notice_id=e.get("notice_id"),
                    inbox_message_id=msg.id if msg is not None else None,
                    counter_notice_id=cn.id if cn is not None else None,
                    subject=e.get("subject"), detail=e.get("detail") or None))
            return out

    return router
