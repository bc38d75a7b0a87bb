"""Server-side sessions of the review app: a random token in the cookie, its hash in the DB.

A signed cookie (Starlette's ``SessionMiddleware``, used before) cannot be taken back: a
copy stays valid after logout, after the account is disabled, until it expires. Here the
cookie holds only a random token (256 bits); the ``web_sessions`` row it points to
(``db.models.WebSession``, found by the token's SHA-256) holds the user, the CSRF token
and the flash message, and the server decides whether it is still valid (OWASP ASVS 3.2,
3.3):

* a pre-login session is made only when a page needs a CSRF token (the login form);
* login rotates: the pre-login row is revoked and a new token issued (no fixation);
* logout revokes the row; disabling a user or changing a password revokes every row of
  that user in the same transaction (``webapp.accounts``);
* idle and absolute timeouts; expired and revoked rows are deleted at each login and at
  most every ``PURGE_EVERY`` by any request.

Hand-written rather than a library: starsessions (last release 2024) has no SQL store and
no "end every session of this user", fastapi-sessions and starlette-session are
unmaintained; what we need is this module. ``ServerSessions`` is a plain ASGI middleware
that loads the row before the app runs and, when the response starts, saves what changed
and sets the cookie; handlers reach the request's session with ``web_session(request)``
and start or end it with ``start``/``end`` inside their own transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.models import WebSession, utcnow

# A working day, then log in again (ASVS 3.3.2 asks for re-authentication within 12 h).
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# Idle: one hour covers reading a long review queue without a click; ASVS level 1 sets
# no figure (level 2 asks 30 min).
IDLE_TIMEOUT = timedelta(hours=1)
# A pre-login session only carries the login form's CSRF token.
ANONYMOUS_TIMEOUT = timedelta(hours=1)
# last_seen is written at most this often per session (not a write per request).
TOUCH_EVERY = timedelta(minutes=1)
# Expired and revoked rows are deleted at each login and at most this often otherwise.
PURGE_EVERY_S = 600.0
TOKEN_BYTES = 32  # 256 bits from secrets (ASVS 3.2.2 asks at least 64)

# The __Host- prefix makes the browser refuse the cookie unless it is Secure, has Path=/
# and no Domain, so no sibling subdomain or plain-http page can plant or shadow it. It
# needs TLS: on plain http (development, tests) the cookie is plain ``vigie_session``.
SECURE_COOKIE = "__Host-vigie_session"
PLAIN_COOKIE = "vigie_session"
SCOPE_KEY = "vigie.session"


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else PLAIN_COOKIE


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class SessionState:
    """The request's session as handlers see it; ``ServerSessions`` saves the changes."""

    id: int | None = None
    user_id: int | None = None
    csrf: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    presented: bool = False  # the request carried a session cookie (valid or not)
    new_token: str | None = None  # a new session to hand to the browser
    ended: bool = False  # logged out: clear the cookie
    dirty: bool = False  # csrf or data to save (or a pre-login row to create)
    touch: bool = False  # last_seen is due for an update

    def csrf_token(self) -> str:
        """This session's CSRF token; a pre-login session is made if there is none."""
        if not self.csrf:
            self.csrf = secrets.token_urlsafe(32)
            self.dirty = True
        return self.csrf

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(self.csrf and presented and secrets.compare_digest(self.csrf, str(presented)))

    def flash(self, message: str) -> None:
        self.data["flash"] = message
        self.dirty = True

    def pop_flash(self) -> str | None:
        message = self.data.pop("flash", None)
        if message is not None:
            self.dirty = True
        return message


class LazyToken:
    """The CSRF token as a template value: asked for only if a template prints it, so an
    anonymous error page does not start a session."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def __str__(self) -> str:
        return self.state.csrf_token()

    def __html__(self) -> str:
        return self.state.csrf_token()  # URL-safe base64: nothing to escape


def web_session(conn: HTTPConnection) -> SessionState:
    """The session of this request (set by ``ServerSessions``)."""
    return conn.scope[SCOPE_KEY]  # type: ignore[no-any-return]


def _valid(now: datetime) -> Any:
    return (WebSession.revoked_at.is_(None), WebSession.expires_at > now,
            WebSession.last_seen > now - IDLE_TIMEOUT)


def load(s: Session, token: str, now: datetime | None = None) -> WebSession | None:
    """The valid session row for this cookie token, or None."""
    now = now or utcnow()
    return s.scalar(select(WebSession).where(WebSession.token_hash == token_hash(token), *_valid(now)))


def _insert(s: Session, state: SessionState, user_id: int | None, now: datetime) -> None:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    lifetime = ABSOLUTE_TIMEOUT if user_id is not None else ANONYMOUS_TIMEOUT
    row = WebSession(token_hash=token_hash(token), user_id=user_id, created_at=now, last_seen=now,
                     expires_at=now + lifetime, csrf=state.csrf_token(), data=dict(state.data))
    s.add(row)
    s.flush()
    state.id, state.user_id, state.new_token, state.ended, state.dirty = row.id, user_id, token, False, False


def start(s: Session, state: SessionState, user_id: int, now: datetime | None = None) -> None:
    """Log ``user_id`` in on this request: the old session (if any) is revoked and a new
    token with a new CSRF token is issued. Runs in the caller's transaction."""
    now = now or utcnow()
    if state.id is not None:
        s.execute(update(WebSession).where(WebSession.id == state.id).values(revoked_at=now))
    purge(s, now)
    state.csrf, state.data = None, {}
    _insert(s, state, user_id, now)


def end(s: Session, state: SessionState, now: datetime | None = None) -> None:
    """Log out: the session row is revoked (a copy of the cookie is worth nothing now)."""
    if state.id is not None:
        s.execute(update(WebSession).where(WebSession.id == state.id).values(revoked_at=now or utcnow()))
    state.id = state.user_id = state.csrf = state.new_token = None
    state.data, state.ended, state.dirty = {}, True, False


def revoke_user(s: Session, user_id: int, now: datetime | None = None) -> int:
    """End every live session of a user (disabled, password changed); how many."""
    result = s.execute(update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
                       .values(revoked_at=now or utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge(s: Session, now: datetime | None = None) -> int:
    """Delete revoked and expired rows; how many."""
    now = now or utcnow()
    result = s.execute(delete(WebSession).where(or_(
        WebSession.revoked_at.is_not(None), WebSession.expires_at <= now,
        WebSession.last_seen <= now - IDLE_TIMEOUT)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class ServerSessions:
    """ASGI middleware: the request's session in, the changes and the cookie out."""

    def __init__(self, app: ASGIApp, sessions: sessionmaker[Session], secure: bool) -> None:
        self.app, self.sessions, self.secure = app, sessions, secure
        self.cookie = cookie_name(secure)
        self._purged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = self._token(scope)
        state = await to_thread.run_sync(self._load, token)
        scope[SCOPE_KEY] = state

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await to_thread.run_sync(self._save, state)
                if cookie:
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _token(self, scope: Scope) -> str | None:
        # Starlette's parser reads cookies as browsers send them (http.cookies gives up on
        # the whole header at the first cookie it dislikes).
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                token = cookie_parser(value.decode("latin-1")).get(self.cookie)
                if token:
                    return token
        return None

    def _load(self, token: str | None) -> SessionState:
        state = SessionState(presented=token is not None)
        now = utcnow()
        with self.sessions.begin() as s:
            if time.monotonic() - self._purged_at > PURGE_EVERY_S:
                self._purged_at = time.monotonic()
                purge(s, now)
            row = load(s, token, now) if token else None
            if row is not None:
                state.id, state.user_id, state.csrf = row.id, row.user_id, row.csrf
                state.data = dict(row.data or {})
                last = row.last_seen if row.last_seen.tzinfo else row.last_seen.replace(tzinfo=now.tzinfo)
                state.touch = now - last > TOUCH_EVERY
        return state

    def _save(self, state: SessionState) -> str | None:
        """Write what changed; the Set-Cookie value to send, if any."""
        if state.ended:
            return self._set_cookie("", clear=True)
        now = utcnow()
        if state.id is None and state.dirty:
            with self.sessions.begin() as s:
                _insert(s, state, None, now)
        elif state.id is not None and (state.dirty or state.touch):
            with self.sessions.begin() as s:
                # Never resurrect a row revoked meanwhile (logout elsewhere, user disabled).
                s.execute(update(WebSession).where(WebSession.id == state.id, WebSession.revoked_at.is_(None))
                          .values(csrf=state.csrf, data=state.data, last_seen=now))
        if state.new_token:
            return self._set_cookie(state.new_token)
        if state.presented and state.id is None:
            return self._set_cookie("", clear=True)  # a dead cookie: drop it
        return None

    def _set_cookie(self, value: str, clear: bool = False) -> str:
        # No Max-Age: the cookie ends with the browser; the server's row decides validity.
        # SameSite=Lax, not Strict: a link to /review from the mailed daily report must
        # arrive logged in; every state change is a POST with a CSRF token anyway.
        parts = [f"{self.cookie}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if clear:
            parts.append("Max-Age=0")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


__all__ = ["ABSOLUTE_TIMEOUT", "IDLE_TIMEOUT", "LazyToken", "ServerSessions", "SessionState", "cookie_name",
           "end", "load", "purge", "revoke_user", "start", "token_hash", "web_session"]
