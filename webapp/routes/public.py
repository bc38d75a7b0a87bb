"""Public "where to watch legally" pages, without login."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from db.models import (
    RightsHolder,
    Title,
    TitlePoster,
)
from foundation.timeutil import local_today
from webapp.public import brand, is_public, list_public_titles, offers_view, title_context
from webapp.web import API_ERRORS, Problem, RowId, Web


def router(web: Web) -> APIRouter:
    config, env, tx = web.config, web.env, web.tx
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ public pages

    @router.get("/public/", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/public", response_class=HTMLResponse, include_in_schema=False)
    def public_index(request: Request) -> HTMLResponse:
        with tx() as s:
            titles = list_public_titles(s, config)
            today = local_today(config)
            html = env.get_template("public_index.html").render(
                titles=[(t, f"/public/titles/{t.id}", len(offers_view(t, today))) for t in titles],
                index_url="/public/", static=False, **brand(config))
        return HTMLResponse(html)

    @router.get("/public/titles/{title_id}", response_class=HTMLResponse, include_in_schema=False)
    def public_title(request: Request, title_id: RowId) -> HTMLResponse:
        with tx() as s:
            t = s.get(Title, title_id)
            # An unpublished title (a film not released yet) has no public page at all.
            if t is None or not is_public(t, local_today(config)):
                raise Problem(404, "no such title")
            ctx = title_context(s, config, t)
            html = env.get_template("public_title.html").render(
                poster_url=f"/public/titles/{t.id}/poster.jpg" if ctx["has_poster"] else None,
                index_url="/public/", static=False, **ctx)
        return HTMLResponse(html)

    @router.get("/public/holders/{holder_id}/logo", include_in_schema=False)
    def public_logo(holder_id: RowId) -> Response:
        with tx() as s:
            h = s.get(RightsHolder, holder_id)
            if h is None or not h.logo or h.logo_type not in ("image/png", "image/jpeg"):
                raise Problem(404, "no logo")
            # Only the logo of a holder shown on a public page: the list of an agency's
            # clients, or a holder whose only film is not released, is nobody's business.
            today = local_today(config)
            if not any(is_public(r.title, today) for r in h.rights):
                raise Problem(404, "no logo")
            return Response(h.logo, media_type=h.logo_type, headers={"cache-control": "public, max-age=86400"})

    @router.get("/public/titles/{title_id}/poster.jpg", include_in_schema=False)
    def public_poster(title_id: RowId) -> Response:
        with tx() as s:
            p = s.get(TitlePoster, title_id)
            t = s.get(Title, title_id)
            if p is None or t is None or not is_public(t, local_today(config)):
                raise Problem(404, "no poster")
            return Response(p.jpeg, media_type="image/jpeg", headers={"cache-control": "public, max-age=86400"})

    return router
