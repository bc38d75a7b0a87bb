"""Admin pages: titles and offers, allowed material, sites, hosts, users, the staff's own account, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from db.auditchain import verify_chain
from db.hosts import NOTICE_LANGUAGES
from db.models import (
    AuditLog,
    Host,
    OfferKind,
    RightsHolder,
    Role,
    Site,
)
from foundation.errors import NotFound
from reports.daily import report_anchors
from webapp import actions, sessions
from webapp.accounts import change_own_password, create_user, list_users, set_active, set_password
from webapp.public import list_titles
from webapp.security import CSRF_FIELD
from webapp.sessions import web_session
from webapp.tenancy import Scope, visible_allowed
from webapp.web import API_ERRORS, RowId, Web, allowed_out


def router(web: Web) -> APIRouter:
    tx, need_user, read_form, render = web.tx, web.need_user, web.read_form, web.render
    back = web.back
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ admin pages

    @router.get("/titles", response_class=HTMLResponse, include_in_schema=False)
    def titles_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "titles.html", user, titles=list_titles(s),
                          kinds=[k.value for k in OfferKind])

    @router.post("/titles/{title_id}/offers", include_in_schema=False)
    async def add_offer_form(request: Request, title_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.add_offer(s, title_id, user, form.get("url", ""), form.get("provider"),
                              form.get("kind", "vod_rental"), form.get("territory", "*"),
                              form.get("from"), form.get("until"))
        return back(request, "/titles", "offer added")

    @router.post("/titles/{title_id}/publish", include_in_schema=False)
    async def publish_title_form(request: Request, title_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            t = actions.set_title_publication(s, title_id, user, form.get("published") == "on",
                                              form.get("publish_from"))
            msg = (f"title #{t.id} published" + (f" from {t.publish_from.isoformat()}" if t.publish_from else "")
                   if t.published else f"title #{t.id} unpublished: no public page")
        return back(request, "/titles", msg)

    @router.post("/offers/{offer_id}/remove", include_in_schema=False)
    async def remove_offer_form(request: Request, offer_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.remove_offer(s, offer_id, user)
        return back(request, "/titles", "offer removed")

    @router.get("/allowed", response_class=HTMLResponse, include_in_schema=False)
    def allowed_page(request: Request) -> HTMLResponse:
        # Every staff member sees what is allowed (it explains "allowed" in review);
        # removing it is for those who manage the catalogue.
        with tx() as s:
            user = need_user(request, s)
            return render(request, "allowed.html", user,
                          rows=[allowed_out(r) for r in visible_allowed(s, Scope(user))])

    @router.post("/allowed/{ref_id}/remove", include_in_schema=False)
    async def remove_allowed_form(request: Request, ref_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            requeued = actions.remove_allowed(s, ref_id, user)
        return back(request, "/allowed", f"allowed material #{ref_id} removed; "
                                         f"{requeued} copies of it will be matched again")

    @router.get("/sites", response_class=HTMLResponse, include_in_schema=False)
    def sites_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "sites.html", user, sites=list(s.scalars(select(Site).order_by(Site.name))))

    @router.post("/sites/{site_id}", include_in_schema=False)
    async def site_form(request: Request, site_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            actions.set_site(s, site_id, user, enabled=form.get("enabled") == "on",
                             schedule=form.get("schedule", ""))
        return back(request, "/sites", "site saved")

    @router.get("/hosts", response_class=HTMLResponse, include_in_schema=False)
    def hosts_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            return render(request, "hosts.html", user, hosts=list(s.scalars(select(Host).order_by(Host.name))),
                          channels=["email", "api", "webform", "none"],
                          languages=list(NOTICE_LANGUAGES))

    @router.post("/hosts/{host_id}", include_in_schema=False)
    async def host_form(request: Request, host_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            _, note = actions.set_host(
                s, host_id, user, abuse_contact=form.get("abuse_contact", ""),
                channel=form.get("channel"), licensed_partner=form.get("licensed_partner") == "on",
                needs_approval=form.get("needs_approval") == "on", jurisdiction=form.get("jurisdiction"),
                language=form.get("language"), removal_pattern=form.get("removal_pattern"), config=web.config)
        return back(request, "/hosts", "host saved" + (f"; {note}" if note else ""))

    @router.get("/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            orgs = {h.id: h.name for h in s.scalars(select(RightsHolder).order_by(RightsHolder.name))}
            return render(request, "users.html", user, users=list_users(s), orgs=orgs)

    @router.post("/users", include_in_schema=False)
    async def add_user_form(request: Request) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            org = form.get("holder", "").strip()
            if org and (not org.isdigit() or s.get(RightsHolder, int(org)) is None):
                raise NotFound(f"no rights holder or agent with id {org[:20]!r}")
            new = create_user(s, form.get("username", "").strip(), form.get("password", ""),
                              form.get("role", "analyst"), email=form.get("email") or None, actor=user.username,
                              org_id=int(org) if org else None)
            msg = f"user {new.username} added"
        return back(request, "/users", msg)

    @router.post("/users/{user_id}/disable", include_in_schema=False)
    @router.post("/users/{user_id}/enable", include_in_schema=False)
    async def user_active_form(request: Request, user_id: RowId) -> Response:
        form = await read_form(request)
        active = request.url.path.endswith("/enable")
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            target = set_active(s, user_id, active, actor=user.username)
            msg = f"user {target.username} {'enabled' if active else 'disabled: their sessions have ended'}"
        return back(request, "/users", msg)

    @router.post("/users/{user_id}/password", include_in_schema=False)
    async def user_password_form(request: Request, user_id: RowId) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, Role.ADMIN, csrf=form.get(CSRF_FIELD))
            target = set_password(s, user_id, form.get("password", ""), actor=user.username)
            if target.id == user.id:  # one's own sessions ended too: carry on in a new one
                sessions.start(s, web_session(request), user.id)
            msg = f"password of {target.username} changed: their sessions have ended"
        return back(request, "/users", msg)

    @router.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s)
            return render(request, "account.html", user)

    @router.post("/account/password", include_in_schema=False)
    async def account_password_form(request: Request) -> Response:
        form = await read_form(request)
        with tx() as s:
            user = need_user(request, s, csrf=form.get(CSRF_FIELD))
            change_own_password(s, user, form.get("current", ""), form.get("password", ""))
            # Every session of the user ended (another browser, a stolen cookie); this
            # browser goes on in a new one.
            sessions.start(s, web_session(request), user.id)
        return back(request, "/account", "password changed: your other sessions have ended")

    @router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request) -> HTMLResponse:
        with tx() as s:
            user = need_user(request, s, Role.ADMIN)
            rows = list(s.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(300)))
            return render(request, "audit.html", user, rows=rows,
                          chain_problems=verify_chain(s, report_anchors(s)))

    return router
