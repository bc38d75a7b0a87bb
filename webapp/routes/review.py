"""The review queue: matches side by side, confirm or reject, frames, screenshots, reference media."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select

from db.models import (
    MatchFrame,
    ReferenceVideo,
)
from foundation.timeutil import local_today
from reports.daily import safe_url
from webapp import actions
from webapp.public import offers_view
from webapp.security import CSRF_FIELD
from webapp.tenancy import Scope
from webapp.web import API_ERRORS, MATCH_FILTERS, Problem, RowId, Web, allowed_reason, query_matches


def router(web: Web) -> APIRouter:
    tx, need_user, read_form, render = web.tx, web.need_user, web.read_form, web.render
    back = web.back
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ review

    @router.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, state: str = "review") -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            rows = query_matches(s, state, scope=Scope(user))
            today = local_today(web.config)
            refs = {r.id: r for r in s.scalars(select(ReferenceVideo).where(
                ReferenceVideo.id.in_({m.reference_id for m, _ in rows if m.reference_id})))} if rows else {}
            cards = [{"m": m, "f": f, "ref": refs.get(m.reference_id or -1),
                      "page_link": safe_url(m.candidate.page_url), "allowed": allowed_reason(m),
                      # The page as the browser resolver rendered it (crawlers.browser).
                      "shot": bool(((m.candidate.evidence or {}).get("browser") or {}).get("screenshot")),
                      "offers": offers_view(m.title, today) if m.title else [],
                      # Why it is not notified to a host (no holder, mandate expired, no rights there).
                      "withheld": (m.details or {}).get("withheld") or {}} for m, f in rows]
            return render(request, "review.html", user, cards=cards, state=state, states=list(MATCH_FILTERS))

    @router.post("/review/{match_id}/confirm", include_in_schema=False)
    async def confirm_form(request: Request, match_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            m = actions.approve_match(s, match_id, user, form.get("note"))
            msg = f"match #{m.id} confirmed"
        return back(request, "/review", msg)

    @router.post("/review/{match_id}/reject", include_in_schema=False)
    async def reject_form(request: Request, match_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            m = actions.reject_match(s, match_id, user, form.get("reason", ""))
            msg = f"match #{m.id} rejected: this page will not come back as " + (
                m.title.title if m.title else "this material")
        return back(request, "/review", msg)

    @router.get("/frames/{match_id}/{which}.jpg", include_in_schema=False)
    def frame(request: Request, match_id: RowId, which: str) -> Response:
        with tx() as s:
            user = need_user(request, s)
            Scope(user).match(s, match_id)
            f = s.scalar(select(MatchFrame).where(MatchFrame.match_id == match_id))
            data = None if f is None else f.ref_jpeg if which == "ref" else f.cand_jpeg if which == "cand" else None
            if not data:
                raise Problem(404, "no such frame")
            return Response(data, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    @router.get("/screenshots/{match_id}.png", include_in_schema=False)
    def screenshot(request: Request, match_id: RowId) -> Response:
        from crawlers.evidence import load_blob

        with tx() as s:
            user = need_user(request, s)
            m = Scope(user).match(s, match_id)
            ref = ((m.candidate.evidence or {}).get("browser") or {}).get("screenshot") if m else None
            try:
                data = load_blob(ref) if isinstance(ref, dict) else None
            except (OSError, ValueError):
                data = None
            if not data:
                raise Problem(404, "no screenshot")
            return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    @router.get("/media/reference/{ref_id}", include_in_schema=False)
    def reference_media(request: Request, ref_id: RowId) -> Response:
        # Our own master, played from the matched timecode (the candidate is never played
        # from the pirate site: that would load their content in the staff's browser).
        with tx() as s:
            user = need_user(request, s)
            ref = Scope(user).reference(s, ref_id)
            if ref is None or not ref.path or not Path(ref.path).is_file():
                raise Problem(404, "reference file not available")
            return FileResponse(ref.path, media_type="video/mp4")

    return router
