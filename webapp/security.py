"""Security plumbing of the review app: response headers, CSRF tokens, who is logged in.

The staff browse pages that quote pirate sites, so the app assumes every string from a
crawled page is hostile. Jinja autoescaping handles the text; a strict
Content-Security-Policy makes sure that even a missed escape cannot load or run
anything: no script at all, images only from our origin (thumbnails) or ``data:``,
no frames except our own sandboxed notice preview. Sessions live on the server
(``webapp.sessions``: HttpOnly, SameSite=Lax, Secure and ``__Host-`` behind TLS); every
state-changing request carries the session's CSRF token (a hidden form field, or the
``X-CSRF-Token`` header for the JSON API).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vigie.web")

# Scripts only from our own static files (the copy buttons of a submission task).
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; media-src 'self'; "
       "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# The static public pages (`vigie report --public DIR`), served by any web server: the same
# policy as a <meta> element (frame-ancestors cannot be set there; no script either way).
STATIC_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'none'; "
              "base-uri 'none'")
# The archived daily report is self-contained and carries inline styles; it runs sandboxed.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; sandbox"
# A rendered notice, shown inside our notice page: no network, no script, no forms.
NOTICE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

# Served to anyone, the same to everyone: caches may keep them.
PUBLIC_PATHS = ("/static/", "/public")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SecurityHeaders:
    """Adds the CSP and friends to every response that does not set its own CSP, and
    ``Cache-Control: no-store`` to every response outside the public paths that does not
    set its own. It wraps the whole app (``webapp.app``), Starlette's 500 page included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        complete = False

        async def with_headers(message: Message) -> None:
            nonlocal complete
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.decode("latin-1").lower() for k, _ in headers}
                if "content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if "x-frame-options" not in names:
                    headers.append((b"x-frame-options", b"DENY"))
                for k, v in HEADERS.items():
                    if k not in names:
                        headers.append((k.encode(), v.encode()))
                if "cache-control" not in names and not scope.get("path", "").startswith(PUBLIC_PATHS):
                    # Pages behind the login (and the login form's CSRF token) stay out of
                    # every cache; a response that sets its own policy keeps it.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            if not complete:
                raise
            # The error page went out (with these headers); Starlette re-raises for the log,
            # and uvicorn would then drop the connection under the client's next request.
            log.exception("server error on %s %s", scope.get("method"), scope.get("path"))

