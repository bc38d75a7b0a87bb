"""The review web app (``vigie serve``): server-rendered pages and a JSON API.

Staff read the review queue (reference and candidate frames side by side), confirm or
reject matches, approve or discard held notices, read the hosts' replies (the inbox queue,
a notice's timeline) and decide on them, see the allowed material (trailers,
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

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from foundation.config import Config
from foundation.errors import Duplicate, NotFound, VigieError
from reports.daily import one_line
from webapp.accounts import dummy_hash
from webapp.routes import accounts, admin, api, inbox, notices, public, review
from webapp.security import CSRF_FIELD, SecurityHeaders
from webapp.sessions import ServerSessions
from webapp.web import API_ERRORS, STATIC, Problem, make_web

ROUTERS = (accounts, review, notices, inbox, admin, public, api)


def create_app(engine: Engine, config: Config, *, secret_key: str | None = None,
               secure_cookies: bool | None = None) -> FastAPI:
    """Build the app over ``engine``. Cookies are Secure (and named ``__Host-...``) when
    ``[web].secure_cookies`` says so, or by default when ``[web].public_base_url`` is https.

    ``secret_key`` is accepted for older callers and unused: sessions live in the database
    (``webapp.sessions``), nothing is signed."""
    del secret_key
    dummy_hash()  # made now: the first login of an unknown name costs what later ones do
    web = make_web(engine, config)
    Sessions, env = web.Sessions, web.env
    if secure_cookies is None:
        secure_cookies = bool(config.web.get("secure_cookies",
                                             str(config.web.get("public_base_url", "")).startswith("https://")))

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
    tx, user_of, is_api, render = web.tx, web.user_of, web.is_api, web.render
    for area in ROUTERS:
        # The routes themselves, not a nested router: the app serves one flat table (what
        # the route x role test walks, and what the OpenAPI schema describes).
        app.router.routes.extend(area.router(web).routes)

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
