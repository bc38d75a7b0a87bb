"""Access control of every route, and the JSON API under schemathesis.

**Route × role matrix.** Every route of the review app (``app.routes``: a new route
without a line in ``ROUTES`` fails the test, and so does a line without a route) is
requested by six kinds of visitor: anonymous (with a pre-login session, so a valid CSRF
token cannot hide a missing login check), an analyst, an admin, a user disabled through
the admin page (their sessions were revoked), a user disabled behind the app's back by
SQL (their session row is still live: the per-request user check must refuse it), and a
logged-out session (a copy of the cookie kept after logout). Each served method gets the
role's CSRF token and a valid body, so only authentication and authorisation can refuse
it; the methods a path does not serve must get 405 from everyone. Outcomes: *allowed*
(anything but the refusals below; 404/409/422 are answers about the object, after the
access check), *login* (401 on the API, a redirect to the login page for pages),
*forbidden* (403), *method* (405). Never a 5xx.

**schemathesis** generates requests from the app's OpenAPI (in process, through its ASGI
loader) for every operation, with valid and invalid data, as an anonymous client and as a
logged-in analyst sending the CSRF header. No response may be a server error, and a
response whose status the schema declares must match the declared body.

schemathesis runs on SQLite and PostgreSQL (PostgreSQL refuses what SQLite forgives, such
as an id past 32 bits); the matrix on SQLite, and on both under ``make soak``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.figures import Figures, soak
from tests.test_web import ADMIN, ANALYST, app, form_token, world  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Who may use a route.
PUBLIC = "public"  # anyone
STAFF = "staff"  # any logged-in user
ADMIN_ONLY = "admin"  # logged-in administrators
LOGIN_FORM = "login form"  # anyone whose session holds a CSRF token (the login form's)
LOGOUT = "logout"  # anyone: ends the session if there is one

# (method, path template) -> (who may, sample path, body). A form body gets the role's CSRF
# token; a JSON body (or None on an API POST) the X-CSRF-Token header. "{...}" in a sample
# path is filled from the test's world.
ROUTES: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("GET", "/openapi.json"): (PUBLIC, "/openapi.json", None),
    ("HEAD", "/openapi.json"): (PUBLIC, "/openapi.json", None),
    ("GET", "/static"): (PUBLIC, "/static/app.css", None),
    ("HEAD", "/static"): (PUBLIC, "/static/app.css", None),
    ("GET", "/login"): (PUBLIC, "/login", None),
    ("POST", "/login"): (LOGIN_FORM, "/login", {"form": {"username": "mallet", "password": "mallet's password"}}),
    ("POST", "/logout"): (LOGOUT, "/logout", {"form": {}}),
    ("GET", "/"): (PUBLIC, "/", None),
    ("GET", "/review"): (STAFF, "/review", None),
    ("POST", "/review/{match_id}/confirm"): (STAFF, "/review/{review_formula}/confirm", {"form": {"note": "ok"}}),
    ("POST", "/review/{match_id}/reject"): (STAFF, "/review/{review_hostile}/reject", {"form": {"reason": "no"}}),
    ("GET", "/frames/{match_id}/{which}.jpg"): (STAFF, "/frames/{confirmed}/ref.jpg", None),
    ("GET", "/media/reference/{ref_id}"): (STAFF, "/media/reference/1", None),
    ("GET", "/screenshots/{match_id}.png"): (STAFF, "/screenshots/{confirmed}.png", None),
    ("GET", "/notices"): (STAFF, "/notices", None),
    ("GET", "/notices/{notice_id}"): (STAFF, "/notices/{n_held}", None),
    ("GET", "/notices/{notice_id}/html"): (STAFF, "/notices/{n_held}/html", None),
    ("GET", "/notices/{notice_id}/export.json"): (STAFF, "/notices/{n_held}/export.json", None),
    ("GET", "/notices/{notice_id}/export.txt"): (STAFF, "/notices/{n_held}/export.txt", None),
    ("POST", "/notices/{notice_id}/submitted"): (STAFF, "/notices/{n_held}/submitted", {"form": {"ticket_ref": "T-1"}}),
    ("POST", "/notices/{notice_id}/retry"): (STAFF, "/notices/{n_failed}/retry", {"form": {}}),
    ("POST", "/notices/{notice_id}/approve"): (STAFF, "/notices/{n_held}/approve", {"form": {}}),
    ("POST", "/notices/{notice_id}/discard"): (STAFF, "/notices/{n_failed}/discard", {"form": {"reason": "x"}}),
    ("GET", "/inbox"): (STAFF, "/inbox", None),
    ("GET", "/inbox/{message_id}"): (STAFF, "/inbox/1", None),
    ("GET", "/inbox/{message_id}/source.eml"): (STAFF, "/inbox/1/source.eml", None),
    ("POST", "/inbox/{message_id}/close"): (STAFF, "/inbox/1/close", {"form": {"note": "x"}}),
    ("POST", "/inbox/{message_id}/accept-contact"): (STAFF, "/inbox/1/accept-contact", {"form": {}}),
    ("POST", "/inbox/{message_id}/file"): (STAFF, "/inbox/1/file", {"form": {"notice_id": "1", "kind": "ack"}}),
    ("POST", "/counter-notices/{cn_id}/decide"): (STAFF, "/counter-notices/1/decide",
                                                  {"form": {"decision": "accepted"}}),
    ("GET", "/reports"): (STAFF, "/reports", None),
    ("GET", "/reports/{day}"): (STAFF, "/reports/2026-03-10", None),
    ("GET", "/titles"): (ADMIN_ONLY, "/titles", None),
    ("POST", "/titles/{title_id}/offers"): (ADMIN_ONLY, "/titles/{bunny}/offers",
                                            {"form": {"url": "https://svod.example/m", "kind": "svod"}}),
    ("POST", "/titles/{title_id}/publish"): (ADMIN_ONLY, "/titles/{bunny}/publish",
                                             {"form": {"published": "on", "publish_from": "2026-01-01"}}),
    ("POST", "/offers/{offer_id}/remove"): (ADMIN_ONLY, "/offers/{offer}/remove", {"form": {}}),
    ("GET", "/allowed"): (STAFF, "/allowed", None),
    ("POST", "/allowed/{ref_id}/remove"): (ADMIN_ONLY, "/allowed/{logo}/remove", {"form": {}}),
    ("GET", "/sites"): (ADMIN_ONLY, "/sites", None),
    ("POST", "/sites/{site_id}"): (ADMIN_ONLY, "/sites/{tubes}", {"form": {"schedule": "12h", "enabled": "on"}}),
    ("GET", "/hosts"): (ADMIN_ONLY, "/hosts", None),
    ("POST", "/hosts/{host_id}"): (ADMIN_ONLY, "/hosts/{vidhost}", {"form": {"channel": "email"}}),
    ("GET", "/users"): (ADMIN_ONLY, "/users", None),
    ("POST", "/users"): (ADMIN_ONLY, "/users", {"form": {"username": "newbie", "password": "a long new password"}}),
    ("POST", "/users/{user_id}/enable"): (ADMIN_ONLY, "/users/{target}/enable", {"form": {}}),
    ("POST", "/users/{user_id}/disable"): (ADMIN_ONLY, "/users/{target}/disable", {"form": {}}),
    ("POST", "/users/{user_id}/password"): (ADMIN_ONLY, "/users/{target}/password",
                                            {"form": {"password": "target's new password"}}),
    ("GET", "/account"): (STAFF, "/account", None),
    # A wrong current password: the route is reached (422) without ending the session.
    ("POST", "/account/password"): (STAFF, "/account/password",
                                    {"form": {"current": "not it", "password": "some new password"}}),
    ("GET", "/audit"): (ADMIN_ONLY, "/audit", None),
    ("GET", "/public"): (PUBLIC, "/public", None),
    ("GET", "/public/"): (PUBLIC, "/public/", None),
    ("GET", "/public/titles/{title_id}"): (PUBLIC, "/public/titles/{bunny}", None),
    ("GET", "/public/titles/{title_id}/poster.jpg"): (PUBLIC, "/public/titles/{bunny}/poster.jpg", None),
    ("GET", "/public/holders/{holder_id}/logo"): (PUBLIC, "/public/holders/1/logo", None),
    ("POST", "/api/login"): (PUBLIC, "/api/login", {"json": {"username": "mallet", "password": "mallet's password"}}),
    ("GET", "/api/session"): (STAFF, "/api/session", None),
    ("POST", "/api/logout"): (STAFF, "/api/logout", None),
    ("GET", "/api/matches"): (STAFF, "/api/matches?state=all", None),
    ("POST", "/api/matches/{match_id}/approve"): (STAFF, "/api/matches/{confirmed}/approve", {"json": {"note": "y"}}),
    ("POST", "/api/matches/{match_id}/reject"): (STAFF, "/api/matches/{old}/reject", {"json": {"reason": "n"}}),
    ("GET", "/api/notices"): (STAFF, "/api/notices", None),
    ("GET", "/api/notices/{notice_id}"): (STAFF, "/api/notices/{n_held}", None),
    ("POST", "/api/notices/{notice_id}/approve"): (STAFF, "/api/notices/{n_held}/approve", None),
    ("POST", "/api/notices/{notice_id}/discard"): (STAFF, "/api/notices/{n_failed}/discard", {"json": {}}),
    ("GET", "/api/titles"): (ADMIN_ONLY, "/api/titles", None),
    ("GET", "/api/allowed"): (STAFF, "/api/allowed", None),
    ("GET", "/api/sites"): (ADMIN_ONLY, "/api/sites", None),
    ("GET", "/api/hosts"): (ADMIN_ONLY, "/api/hosts", None),
    ("GET", "/api/reports"): (STAFF, "/api/reports", None),
    ("GET", "/api/inbox"): (STAFF, "/api/inbox", None),
    ("GET", "/api/notices/{notice_id}/timeline"): (STAFF, "/api/notices/{n_held}/timeline", None),
}
# These change the visitor's own session: run last for each role, then the role is
# set up again.
SESSION_CHANGING = {("POST", "/login"), ("POST", "/api/login"), ("POST", "/logout"), ("POST", "/api/logout")}
# The methods tried on every path (those it does not serve must get 405).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if soak() else ("GET", "POST", "PUT", "DELETE")
ROLES = ("anonymous", "logged out", "disabled", "disabled by SQL", "analyst", "admin")
LIVE = {"anonymous", "analyst", "admin", "disabled by SQL"}  # sessions whose row is valid


def route_table(app: Any) -> dict[tuple[str, str], set[str]]:  # noqa: F811
    """(method, path) of every route the app serves; a mount (static files) as its path."""
    from starlette.routing import Mount, Route

    served: dict[tuple[str, str], set[str]] = {}
    for r in app.routes:
        if isinstance(r, Mount):
            served[("GET", r.path)] = served[("HEAD", r.path)] = {"GET", "HEAD"}
        elif isinstance(r, Route):
            for m in r.methods or ():
                served[(m, r.path)] = set(r.methods or ())
        else:
            raise AssertionError(f"a route of a kind this test does not know: {r!r}")
    return served


def expected(who: str, role: str) -> str:
    if who == PUBLIC or who == LOGOUT:
        return "allowed"
    if who == LOGIN_FORM:
        return "allowed" if role in LIVE else "forbidden"  # no session, no CSRF token
    if role in ("analyst", "admin"):
        return "forbidden" if who == ADMIN_ONLY and role == "analyst" else "allowed"
    return "login"


def outcome(r: Any) -> str:
    if r.status_code >= 500:
        return f"server error {r.status_code}"
    if r.status_code == 405:
        return "method"
    if r.status_code == 401 or (r.status_code in (302, 303, 307)
                                and r.headers.get("location", "").startswith("/login?next=")):
        return "login"
    if r.status_code == 403:
        return "forbidden"
    if r.status_code == 429:
        return "throttled"
    return "allowed"


@dataclass
class Visitor:
    """One role's client: its cookie (sent by hand, so a dead copy stays in use) and token."""

    client: Any
    cookie: str | None
    csrf: str | None

    def request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        headers = {"cookie": f"vigie_session={self.cookie}"} if self.cookie else {}
        kwargs: dict[str, Any] = {}
        if body and "form" in body:
            kwargs["data"] = {**body["form"], "csrf_token": self.csrf or ""}
        else:
            if body and "json" in body:
                kwargs["json"] = body["json"]
            if self.csrf:
                headers["x-csrf-token"] = self.csrf
        self.client.cookies.clear()
        r = self.client.request(method, path, headers=headers, follow_redirects=False, **kwargs)
        if self.cookie and r.cookies.get("vigie_session") and r.cookies["vigie_session"] != self.cookie:
            self.cookie = r.cookies["vigie_session"]  # a rotation (login) followed, like a browser
        return r


# Access control does not depend on the database: PostgreSQL too under `make soak`.
@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"] if soak() else ["sqlite"], indirect=True)
def test_route_role_matrix(app: Any, world: dict[str, Any], Session, figures: Figures) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from fastapi.testclient import TestClient

    from db.models import Offer, User
    from webapp import sessions
    from webapp.accounts import create_user
    from webapp.sessions import SessionState

    served = route_table(app)
    missing = sorted(k for k in served if k not in ROUTES)
    stale = sorted(k for k in ROUTES if k not in served)
    assert not missing, f"routes with no expected access in ROUTES (add them): {missing}"
    assert not stale, f"ROUTES lines for routes the app no longer has: {stale}"

    with Session.begin() as s:
        for name in ("mallet", "dora", "erin", "target", "leaver"):
            create_user(s, name, f"{name}'s password")
        ids = {u.username: u.id for u in s.scalars(select(User))}
        offer = s.scalar(select(Offer.id).order_by(Offer.id))
    fill = {**world, "target": ids["target"], "offer": offer}

    with TestClient(app) as c:
        def logged_in(who: tuple[str, str]) -> Visitor:
            """Through the login form, as a browser does."""
            page = c.get("/login")
            r = c.post("/login", data={"csrf_token": form_token(page.text), "username": who[0],
                                       "password": who[1]}, follow_redirects=False)
            assert r.status_code == 303, r.text
            v = Visitor(c, c.cookies.get("vigie_session"), None)
            v.csrf = form_token(v.request("GET", "/review", None).text)
            return v

        def session_of(username: str) -> Visitor:
            """A new session for a user, made by the function the login calls (without
            argon2's deliberate slowness for every role reset)."""
            state = SessionState()
            with Session.begin() as s:
                sessions.start(s, state, ids[username])
            return Visitor(c, state.new_token, state.csrf)

        admin_ops = logged_in(ADMIN)

        def set_active(username: str, active: bool) -> None:
            action = "enable" if active else "disable"
            r = admin_ops.request("POST", f"/users/{ids[username]}/{action}", {"form": {}})
            assert r.status_code == 303, r.text

        def anonymous() -> Visitor:
            c.cookies.clear()
            page = c.get("/login")
            return Visitor(c, c.cookies.get("vigie_session"), form_token(page.text))

        def logged_out() -> Visitor:
            v = session_of("leaver")
            assert v.request("POST", "/logout", {"form": {}}).status_code == 303
            return v  # keeps the dead cookie and token

        def disabled() -> Visitor:
            set_active("erin", True)
            v = session_of("erin")
            set_active("erin", False)  # the admin page: erin's sessions are revoked
            return v

        def disabled_by_sql() -> Visitor:
            with Session.begin() as s:
                s.execute(update(User).where(User.id == ids["dora"]).values(active=True))
            v = session_of("dora")
            with Session.begin() as s:  # no revocation: the session row stays valid
                s.execute(update(User).where(User.id == ids["dora"]).values(active=False))
            return v

        live = {"analyst": logged_in(ANALYST), "admin": logged_in(ADMIN)}
        make: dict[str, Callable[[], Visitor]] = {
            "anonymous": anonymous, "logged out": logged_out, "disabled": disabled,
            "disabled by SQL": disabled_by_sql,
            "analyst": lambda: live.pop("analyst", None) or session_of("bob"),
            "admin": lambda: live.pop("admin", None) or session_of("alice")}
        cells = as_expected = server_errors = 0
        wrong: list[str] = []
        started = time.monotonic()
        order = sorted(ROUTES, key=lambda k: (k in SESSION_CHANGING, k[1], k[0]))
        paths = sorted({p for _, p in ROUTES})
        for role in ROLES:
            visitor = make[role]()
            for key in order:
                who, sample, body = ROUTES[key]
                url = sample.format(**fill)
                got = outcome(visitor.request(key[0], url, body))
                want = expected(who, role)
                cells += 1
                as_expected += got == want
                server_errors += got.startswith("server error")
                if got != want:
                    wrong.append(f"{role}: {key[0]} {url} -> {got}, expected {want}")
                if key in SESSION_CHANGING:
                    visitor = make[role]()
            # Methods a path does not serve: 405 for everyone, before any access check.
            for path in paths:
                sample = next(sample for (m, p), (_, sample, _) in ROUTES.items() if p == path)
                for method in METHODS:
                    if (method, path) in served:
                        continue
                    url = sample.format(**fill)
                    got = outcome(visitor.request(method, url, None))
                    cells += 1
                    as_expected += got == "method"
                    server_errors += got.startswith("server error")
                    if got != "method":
                        wrong.append(f"{role}: {method} {url} -> {got}, expected method")
    elapsed = time.monotonic() - started
    figures.record(f"web: route x role matrix, cells as expected ({len(ROUTES)} routes, {len(ROLES)} roles, "
                   f"{elapsed:.0f} s)", f"{as_expected}/{cells}", "all", as_expected == cells)
    figures.record("web: route x role matrix, server errors", server_errors, "0", server_errors == 0)
    assert wrong == [], "\n".join(wrong)


def test_expected_outcomes_cover_the_roles() -> None:
    # The table's meaning, spelled out for one route of each kind.
    assert [expected(STAFF, r) for r in ROLES] == ["login"] * 4 + ["allowed"] * 2
    assert [expected(ADMIN_ONLY, r) for r in ROLES] == ["login"] * 4 + ["forbidden", "allowed"]
    assert [expected(LOGIN_FORM, r) for r in ROLES] == [
        "allowed", "forbidden", "forbidden", "allowed", "allowed", "allowed"]
    assert {expected(PUBLIC, r) for r in ROLES} == {expected(LOGOUT, r) for r in ROLES} == {"allowed"}


# --------------------------------------------------------------------------- schemathesis
# Examples per operation, identity and generation mode (valid and invalid data): about
# 15 s per database in CI; ten times more under `make soak`.
SCHEMATHESIS_EXAMPLES = 150 if soak() else 12


def test_schemathesis_openapi(app: Any, world: dict[str, Any], Session, figures: Figures) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from db.models import User
    from webapp import sessions
    from webapp.sessions import SessionState

    with Session() as s:
        bob = s.scalar(select(User.id).where(User.username == ANALYST[0]))

    def analyst_session() -> dict[str, str]:
        """A fresh analyst session (as /api/login makes), sent as cookie and CSRF header."""
        state = SessionState()
        with Session.begin() as s:
            sessions.start(s, state, bob)
        return {"cookie": f"vigie_session={state.new_token}", "x-csrf-token": str(state.csrf)}

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
    cases = 0
    failures: list[str] = []
    statuses: dict[int, int] = {}
    started = time.monotonic()
    for identity in ("anonymous", "analyst"):
        shared = analyst_session() if identity == "analyst" else {}
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, database=None,
                          derandomize=not soak(), phases=[Phase.explicit, Phase.generate, Phase.shrink],
                          suppress_health_check=list(HealthCheck))
                @given(case=op.as_strategy(generation_mode=mode))
                def run(case: Any) -> None:
                    nonlocal cases
                    # Logging out ends the session it is sent with: give it its own.
                    headers = analyst_session() if identity == "analyst" and op.path == "/api/logout" else shared
                    response = case.call(headers=headers)
                    cases += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    case.validate_response(response, checks=checks, headers=headers)

                try:
                    run()
                except Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body).
                    assert mode is GenerationMode.NEGATIVE, op.label
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
                    failures.append(f"{identity}, {mode.value} data: {op.label}: {exc}")
    elapsed = time.monotonic() - started
    server_errors = sum(n for code, n in statuses.items() if code >= 500)
    figures.record(f"web: schemathesis, {len(operations)} operations x anonymous/analyst x valid/invalid data, "
                   f"cases ({elapsed:.0f} s)", cases, f">= {len(operations) * 4}", cases >= len(operations) * 4)
    figures.record("web: schemathesis, server errors", server_errors, "0", server_errors == 0)
    figures.record("web: schemathesis, operations failing a check (5xx, status, schema, content type)",
                   len(failures), "0", not failures)
    assert not failures, "\n\n".join(failures)
    assert len(operations) >= 14 and cases >= len(operations) * 4
    assert server_errors == 0, statuses
    # The analyst got past the login (not only 401s): the cases reached the handlers.
    assert statuses.get(200, 0) > 0, statuses
