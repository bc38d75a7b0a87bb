"""Web app account hardening (ASVS level 1): login throttling and common passwords.

Through the real app (Starlette's TestClient, SQLite and PostgreSQL): five wrong
passwords for one account lock that account, even with the right password, while other
accounts still log in; twenty failures from one address lock that address; the lock ends
with its window. Staff passwords among the 3,000 most common are refused, whatever
their case.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.figures import Figures
from tests.test_web import ADMIN, ANALYST, app, client, form_token, world  # noqa: F401
from vigie.errors import InvalidInput
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


def test_throttle_window_moves_on() -> None:
    t = LoginThrottle(per_account=3, per_ip=10, window_s=60)
    for i in range(3):
        assert t.wait_s("alice", "1.2.3.4", 100.0 + i) == 0
        t.failed("alice", "1.2.3.4", 100.0 + i)
    assert 0 < t.wait_s("alice", "1.2.3.4", 103.0) <= 60
    assert t.wait_s("ALICE", "5.6.7.8", 103.0) > 0          # the account, from anywhere
    assert t.wait_s("bob", "1.2.3.4", 103.0) == 0
    assert t.wait_s("alice", "1.2.3.4", 161.0) == 0          # window passed
    t.failed("bob", "9.9.9.9", 200.0)
    t.succeeded("bob")
    assert t.wait_s("bob", "9.9.9.9", 200.0) == 0


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
