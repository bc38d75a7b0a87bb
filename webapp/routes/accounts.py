"""Log in and out (the HTML form; the API's login is in ``api``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from webapp.security import CSRF_FIELD
from webapp.sessions import web_session
from webapp.web import API_ERRORS, Web


def router(web: Web) -> APIRouter:
    tx, user_of, check_csrf, read_form = web.tx, web.user_of, web.check_csrf, web.read_form
    render, _login, _start_session, _end_session = web.render, web.login, web.start_session, web.end_session
    router = APIRouter(responses=API_ERRORS)

    # ------------------------------------------------------------------ login

    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/review") -> HTMLResponse:
        return render(request, "login.html", next=next if next.startswith("/") and not next.startswith("//") else "/review")

    @router.post("/login", include_in_schema=False)
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

    @router.post("/logout", include_in_schema=False)
    async def logout_form(request: Request) -> Response:
        form = await read_form(request)
        if web_session(request).id is not None:  # no session: nothing to end
            check_csrf(request, form.get(CSRF_FIELD))
            with tx() as s:
                _end_session(s, request, user_of(request, s))
        return RedirectResponse("/login", 303)

    @router.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/review", 303)

    return router
