"""Web app account hardening (ASVS level 1): login throttling, common passwords, sessions.

Through the real app (Starlette's TestClient, SQLite and PostgreSQL): five wrong
passwords for one account lock that account, even with the right password, while other
accounts still log in; twenty failures from one address lock that address; the lock ends
with its window. Staff passwords among the 3,000 most common are refused, whatever
their case. Server-side sessions: login rotates the token, and a saved copy of a cookie
is refused at once after logout, after the user is disabled, after a password change,
and past the idle or absolute timeout.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from tests.figures import Figures
from tests.test_web import ADMIN, ANALYST, app, client, form_token, world  # noqa: F401
from foundation.errors import InvalidInput
from webapp.accounts import COMMON_PASSWORDS_REFUSED, LoginThrottle, common_passwords, create_user

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _post_login(client: Any, user: str, password: str) -> int:  # noqa: F811
    token = form_token(client.get("/login").text)
    r = client.post("/login", data={"csrf_token": token, "username": user, "password": password,
                                    "next": "/review"}, follow_redirects=False)
    return int(r.status_code)


def test_login_throttled_per_account_then_per_address(client: Any, figures: Figures) -> None:  # noqa: F811
    codes = [_post_login(client, ADMIN[0], f"wrong guess {i}") for i in range(5)]
    assert codes == [401] * 5
    locked = _post_login(client, ADMIN[0], ADMIN[1])      # right password, account locked
    other = _post_login(client, ANALYST[0], ANALYST[1])   # another account still logs in
    api = client.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert locked == 429 and api.status_code == 429 and "too many failed logins" in api.text
    assert other == 303
    # Failures spread over many names from one address lock the address.
    spread = [_post_login(client, f"nobody{i}", "wrong password") for i in range(20)]
    assert spread.count(401) >= 14 and spread[-1] == 429, spread
    after = _post_login(client, ANALYST[0], ANALYST[1])
    figures.record("web: logins refused after 5 failures per account / 20 per address",
                   f"account {locked}, API {api.status_code}, address {after}", "429, 429, 429",
                   (locked, api.status_code, after) == (429, 429, 429))
    assert after == 429


def test_throttle_window_moves_on(Session) -> None:  # type: ignore[no-untyped-def]
    from foundation.errors import LoginThrottled

    now = [100.0]
    t = LoginThrottle(Session, per_account=3, per_ip=10, window_s=60, clock=lambda: now[0])
    for i in range(3):
        now[0] = 100.0 + i
        t.reserve("alice", "1.2.3.4")
    now[0] = 103.0
    with pytest.raises(LoginThrottled) as locked:
        t.reserve("alice", "1.2.3.4")
    assert 0 < locked.value.wait_s <= 60
    with pytest.raises(LoginThrottled):
        t.reserve("ALICE", "5.6.7.8")                     # the account, from anywhere
    t.reserve("bob", "1.2.3.4")
    now[0] = 161.0                                        # window passed
    t.reserve("alice", "1.2.3.4")
    now[0] = 200.0
    t.reserve("bob", "9.9.9.9")
    t.succeeded(t.reserve("bob", "9.9.9.9"), "bob")
    t.reserve("bob", "9.9.9.9")


def test_common_passwords_refused(Session, figures: Figures) -> None:  # type: ignore[no-untyped-def]
    common = common_passwords()
    assert len(common) >= COMMON_PASSWORDS_REFUSED * 0.95  # a few differ only by case
    long_enough = sorted(p for p in common if len(p) >= 10)
    assert long_enough, "the list has common passwords of 10+ characters"
    refused = 0
    with Session.begin() as s:
        for i, pw in enumerate(long_enough[:20]):
            for variant in (pw, pw.upper()):
                with pytest.raises(InvalidInput, match="most common"):
                    create_user(s, f"user{i}{variant.isupper()}", variant)
                refused += 1
        create_user(s, "carol", "lighthouse keeper 1906")
    figures.record("web: common passwords (10+ chars, any case) refused at account creation",
                   f"{refused}/{refused}", "all", True)


# --------------------------------------------------------------------------- server-side sessions
# A session is a row in web_sessions (webapp.sessions): each test below saves a copy of a
# cookie the way a thief would, then replays it from another client after the event that
# must end it. Every replay must be refused at once (401 on the API, the login page for
# pages), not at the next expiry.


def _client(app: Any) -> Any:  # noqa: F811
    from fastapi.testclient import TestClient

    return TestClient(app)


def _replay(app: Any, value: str, path: str = "/api/session") -> int:  # noqa: F811
    """A stranger's client presenting only a copied cookie value."""
    with _client(app) as thief:
        return int(thief.get(path, headers={"cookie": f"vigie_session={value}"},
                             follow_redirects=False).status_code)


def _login(client: Any, who: tuple[str, str]) -> str:  # noqa: F811
    """Log in through the form; the CSRF token of the new session."""
    token = form_token(client.get("/login").text)
    r = client.post("/login", data={"csrf_token": token, "username": who[0], "password": who[1]},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return form_token(client.get("/review").text)


def test_login_rotates_the_session(app: Any, Session, figures: Figures) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from db.models import WebSession
    from webapp.sessions import token_hash

    with _client(app) as c:
        login_page = c.get("/login")
        pre = c.cookies.get("vigie_session")
        assert pre, login_page.headers.get("set-cookie")
        # The attacker's planted pre-login session works as a session until login...
        assert _replay(app, pre, "/login") == 200
        token = form_token(login_page.text)
        r = c.post("/login", data={"csrf_token": token, "username": ANALYST[0], "password": ANALYST[1]},
                   follow_redirects=False)
        post = c.cookies.get("vigie_session")
        assert r.status_code == 303 and post and post != pre
        assert c.get("/api/session").status_code == 200
        # ...and is worth nothing after it (session fixation), nor is the old CSRF token.
        after = [_replay(app, pre), _replay(app, pre, "/review")]
        assert after == [401, 303]
        assert c.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 403
    with Session() as s:
        hashes = set(s.scalars(select(WebSession.token_hash)))
    # Only hashes are stored: the table cannot be replayed as cookies.
    assert token_hash(post) in hashes and post not in hashes and token_hash(pre) not in hashes
    figures.record("web sessions: pre-login cookie refused after login (fixation)", f"{after}", "[401, 303]",
                   after == [401, 303])


def test_cookie_copies_die_at_logout(app: Any, figures: Figures) -> None:  # noqa: F811
    refused = 0
    with _client(app) as c:  # the pages: the logout button
        token = _login(c, ANALYST)
        saved = c.cookies.get("vigie_session")
        assert _replay(app, saved) == 200
        r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        refused += (_replay(app, saved, "/api/matches") == 401) + (_replay(app, saved, "/review") == 303)
    with _client(app) as c:  # the JSON API
        r = c.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        saved, csrf = c.cookies.get("vigie_session"), r.json()["csrf_token"]
        assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).json() == {"ok": True}
        assert c.get("/api/matches").status_code == 401
        refused += (_replay(app, saved, "/api/matches") == 401) + (_replay(app, saved, "/api/titles") == 401)
        # A dead cookie is dropped from the browser.
        dead = c.get("/api/session", headers={"cookie": f"vigie_session={saved}"})
        assert "max-age=0" in dead.headers["set-cookie"].lower()
    figures.record("web sessions: copied cookies refused after logout (form, API)", f"{refused}/4", "all",
                   refused == 4)
    assert refused == 4


def test_disabling_a_user_ends_their_sessions_at_once(app: Any, world: dict[str, Any], Session,  # type: ignore[no-untyped-def]  # noqa: F811
                                                     figures: Figures) -> None:
    from db.models import AuditLog, User

    with _client(app) as bob1, _client(app) as bob2, _client(app) as alice:
        _login(bob1, ANALYST)
        bob2.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]})
        copies = [bob1.cookies.get("vigie_session"), bob2.cookies.get("vigie_session")]
        assert [_replay(app, v) for v in copies] == [200, 200]
        admin_token = _login(alice, ADMIN)
        r = alice.post(f"/users/{world['analyst']}/disable", data={"csrf_token": admin_token})
        assert r.status_code == 200 and "bob disabled" in r.text
        replays = [_replay(app, v) for v in copies] + [bob1.get("/api/matches").status_code,
                                                       bob2.get("/api/matches").status_code]
        assert bob1.get("/review", follow_redirects=False).status_code == 303
        # A disabled user cannot log back in; enabled again, they can.
        assert bob1.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]}).status_code == 401
        # An admin cannot disable themselves (the last admin locking everyone out).
        r = alice.post(f"/users/{world['admin']}/disable", data={"csrf_token": admin_token})
        assert r.status_code == 422 and "your own account" in r.text
        alice.post(f"/users/{world['analyst']}/enable", data={"csrf_token": admin_token})
        assert bob1.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]}).status_code == 200
        assert [_replay(app, v) for v in copies] == [401, 401]  # re-enabling revives nothing
    with Session() as s:
        row = s.scalar(select(AuditLog).where(AuditLog.action == "user.disable"))
        assert row.actor == "alice" and row.after == {"active": False, "sessions_ended": 2}
        assert s.get(User, world["analyst"]).active
    figures.record("web sessions: live sessions of a disabled user refused at once", f"{replays.count(401)}/4",
                   "all", replays == [401] * 4)
    assert replays == [401] * 4


def test_a_password_change_ends_the_other_sessions(app: Any, world: dict[str, Any], Session,  # type: ignore[no-untyped-def]  # noqa: F811
                                                  figures: Figures) -> None:
    from db.models import AuditLog

    new_pw, newer_pw = "a fresh analyst secret", "yet another analyst secret"
    with _client(app) as laptop, _client(app) as phone, _client(app) as alice:
        token = _login(laptop, ANALYST)
        _login(phone, ANALYST)
        laptop_before, phone_cookie = laptop.cookies.get("vigie_session"), phone.cookies.get("vigie_session")
        r = laptop.post("/account/password", data={"csrf_token": token, "current": "wrong", "password": new_pw})
        assert r.status_code == 422 and "current password is wrong" in r.text
        r = laptop.post("/account/password", data={"csrf_token": token, "current": ANALYST[1],
                                                   "password": "password1"})
        assert r.status_code == 422  # the policy applies to changes too
        r = laptop.post("/account/password", data={"csrf_token": token, "current": ANALYST[1], "password": new_pw})
        assert r.status_code == 200 and "password changed" in r.text
        # This browser goes on in a new session; the phone and any copy are out.
        assert laptop.get("/api/session").status_code == 200
        assert laptop.cookies.get("vigie_session") != laptop_before
        own = [_replay(app, phone_cookie), phone.get("/api/matches").status_code, _replay(app, laptop_before)]
        assert phone.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]}).status_code == 401
        # An administrator's reset does the same.
        _login(phone, (ANALYST[0], new_pw))
        admin_token = _login(alice, ADMIN)
        r = alice.post(f"/users/{world['analyst']}/password", data={"csrf_token": admin_token, "password": newer_pw})
        assert r.status_code == 200 and "password of bob changed" in r.text
        reset = [phone.get("/api/matches").status_code, laptop.get("/api/matches").status_code]
        assert alice.get("/api/titles").status_code == 200
        assert phone.post("/api/login", json={"username": ANALYST[0], "password": newer_pw}).status_code == 200
    with Session() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == "user.password").order_by(AuditLog.id)))
        assert [(a.actor, a.after["sessions_ended"]) for a in rows] == [("bob", 2), ("alice", 2)]
        assert "hash" not in str([a.after for a in rows])
    replays = own + reset
    figures.record("web sessions: other sessions refused after a password change (own, admin reset)",
                   f"{replays.count(401)}/5", "all", replays == [401] * 5)
    assert replays == [401] * 5


def test_expired_sessions_refused_and_purged(app: Any, Session, figures: Figures) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from sqlalchemy import func, update

    from db.models import WebSession, utcnow
    from webapp.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, token_hash

    cookies = []
    for _ in range(3):
        with _client(app) as c:
            c.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]})
            cookies.append(c.cookies.get("vigie_session"))
    absolute, idle, fresh = cookies
    now = utcnow()
    with Session.begin() as s:
        # Past the absolute timeout (while recently active), and idle too long.
        s.execute(update(WebSession).where(WebSession.token_hash == token_hash(absolute))
                  .values(created_at=now - ABSOLUTE_TIMEOUT, expires_at=now - timedelta(seconds=1)))
        s.execute(update(WebSession).where(WebSession.token_hash == token_hash(idle))
                  .values(last_seen=now - IDLE_TIMEOUT - timedelta(seconds=1)))
    codes = [_replay(app, absolute), _replay(app, idle), _replay(app, fresh)]
    assert codes == [401, 401, 200]
    # An active session's last_seen moves on, so only idleness ends it.
    with Session.begin() as s:
        s.execute(update(WebSession).where(WebSession.token_hash == token_hash(fresh))
                  .values(last_seen=now - IDLE_TIMEOUT + timedelta(minutes=2)))
    assert _replay(app, fresh) == 200
    with Session() as s:
        seen = s.scalar(select(WebSession.last_seen).where(WebSession.token_hash == token_hash(fresh)))
        assert (seen if seen.tzinfo else seen.replace(tzinfo=timezone.utc)) > now - timedelta(seconds=5)
    # The next login purges the dead rows.
    with _client(app) as c:
        c.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    with Session() as s:
        left = {h for h in s.scalars(select(WebSession.token_hash))}
        assert token_hash(absolute) not in left and token_hash(idle) not in left and token_hash(fresh) in left
        assert s.scalar(select(func.count()).select_from(WebSession).where(WebSession.revoked_at.is_not(None))) == 0
    figures.record("web sessions: expired sessions refused (absolute, idle) and purged", "2/2", "all",
                   codes[:2] == [401, 401])


def test_csrf_token_belongs_to_its_session(app: Any, world: dict[str, Any]) -> None:  # noqa: F811
    with _client(app) as a, _client(app) as b:
        token_a = _login(a, ANALYST)
        token_b = _login(b, ANALYST)
        assert token_a != token_b
        mid = world["review_hostile"]
        r = b.post(f"/review/{mid}/reject", data={"csrf_token": token_a, "reason": "x"})
        assert r.status_code == 403 and "CSRF" in r.text
        # The login form itself needs the pre-login session's token.
        with _client(app) as anon:
            r = anon.post("/login", data={"csrf_token": token_a, "username": ANALYST[0], "password": ANALYST[1]})
            assert r.status_code == 403


def test_session_cookie_read_among_other_cookies(app: Any) -> None:  # noqa: F811
    # Other cookies on the domain (analytics, a malformed one) do not hide the session.
    with _client(app) as c:
        c.post("/api/login", json={"username": ANALYST[0], "password": ANALYST[1]})
        token = c.cookies.get("vigie_session")
    with _client(app) as other:
        for header in (f'junk="unterminated; vigie_session={token}; x',
                       f"a=1; vigie_session={token}", f"vigie_session={token}; __Host-vigie_session=forged"):
            assert other.get("/api/session", headers={"cookie": header}).status_code == 200, header
        assert other.get("/api/session", headers={"cookie": "vigie_session=" + "A" * 43}).status_code == 401
