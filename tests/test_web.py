"""The review web app over HTTP (Starlette's TestClient): login and cookies, CSRF,
roles, review and notice actions through pages and the JSON API, audit rows, escaping,
security headers, public pages. Real SQLite and PostgreSQL underneath."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import AuditLog, Match, Notice, NoticeStatus, ReviewState, Title, TitlePoster, User
from tests.test_report import DAY, build_world
from foundation.config import Config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN = ("alice", "correct horse battery")
ANALYST = ("bob", "analyst password 1")


@pytest.fixture
def world(Session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        w = build_world(s)
        add_allowed(s, w)
        return {k: getattr(v, "id", v) for k, v in w.items()}


# A file name as hostile as a page title: staff registered it, but it came from somewhere.
HOSTILE_FILE = "bbb_<img src=x onerror=alert(3)>.mp4"


def add_allowed(s: Any, w: dict[str, Any]) -> None:
    """Allowed material: the film's trailer and a logo of no title, and a copy that is the
    logo alone (an allowed match: shown in review, never notified)."""
    from db.models import AllowedReason, Candidate, CandidateStatus, Decision, ReferenceVideo

    def ref(sha: str, title: Any, reason: AllowedReason, path: str | None, duration: float) -> ReferenceVideo:
        r = ReferenceVideo(title=title, sha256=sha * 64, path=path, duration_s=duration, fps=24.0, width=640,
                           height=360, size_bytes=1, algorithm="test", frame_count=0, hashes=b"", times=b"",
                           allowed_reason=reason)
        s.add(r)
        return r

    w["trailer"] = ref("1", w["bunny"], AllowedReason.TRAILER, f"/masters/{HOSTILE_FILE}", 95.0)
    w["logo"] = ref("2", None, AllowedReason.LOGO, None, 4.0)
    c = Candidate(canonical_url="http://linkz.test/watch/9", page_url="http://linkz.test/watch/9",
                  site=w["links"], host=w["vidhost"], title_text="studio logo compilation",
                  status=CandidateStatus.ALLOWED)
    s.add(c)
    s.flush()
    w["allowed_match"] = Match(candidate=c, title=None, reference_id=w["logo"].id, score=0.9, matched_s=4.0,
                               offset_s=0.0, speed=1.0, cand_start_s=0.0, cand_end_s=4.0, ref_start_s=0.0,
                               ref_end_s=4.0, decision=Decision.ALLOWED, details={"allowed_reason": "logo"})
    s.add(w["allowed_match"])
    s.flush()


@pytest.fixture
def app(engine, world):  # type: ignore[no-untyped-def]
    from webapp.app import create_app

    return create_app(engine, Config(timezone="Europe/Paris", notifier={"legal_name": "Films du Phare"},
                                     web={"brand": "Phare Films"}), secret_key="k" * 48)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def form_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field in the form"
    return m.group(1)


def login_form(client: Any, who: tuple[str, str]) -> str:
    token = form_token(client.get("/login").text)
    r = client.post("/login", data={"csrf_token": token, "username": who[0], "password": who[1],
                                    "next": "/review"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review", r.text
    return form_token(client.get("/review").text)


def login_api(client: Any, who: tuple[str, str]) -> dict[str, str]:
    r = client.post("/api/login", json={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def test_login_cookie_flags_and_logout(client: Any) -> None:
    r = client.get("/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    token = form_token(client.get("/login").text)
    bad = client.post("/login", data={"csrf_token": token, "username": "alice", "password": "nope"})
    assert bad.status_code == 401 and "wrong user name or password" in bad.text
    r = client.post("/login", data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]},
                    follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("vigie_session=")  # plain http: no __Host- prefix (it needs Secure)
    assert cookie_flags(cookie) == {"path=/", "httponly", "samesite=lax"}
    page = client.get("/review")
    assert page.status_code == 200 and "alice (admin)" in page.text
    # The session got a fresh CSRF token at login (nothing from before login survives).
    assert form_token(page.text) != token
    out = client.post("/logout", data={"csrf_token": form_token(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/review", follow_redirects=False).status_code == 303
    assert client.get("/api/matches").status_code == 401


def cookie_flags(set_cookie: str) -> set[str]:
    """The attributes of a Set-Cookie value, lower case, without the name=value."""
    return {p.strip().lower() for p in set_cookie.split(";")[1:]}


def test_secure_cookie_behind_tls(engine, world) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from webapp.app import create_app

    app = create_app(engine, Config(web={"public_base_url": "https://vigie.example"}))
    with TestClient(app, base_url="https://testserver") as c:
        page = c.get("/login")  # the pre-login session, for the form's CSRF token
        pre = page.headers["set-cookie"]
        r = c.post("/login", data={"csrf_token": form_token(page.text), "username": ADMIN[0],
                                   "password": ADMIN[1]}, follow_redirects=False)
        assert r.status_code == 303 and c.get("/api/session").json()["username"] == ADMIN[0]
        api = c.post("/api/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert api.status_code == 200
    # __Host-: Secure, Path=/ and no Domain, or the browser refuses it.
    for cookie in (pre, r.headers["set-cookie"], api.headers["set-cookie"]):
        assert cookie.startswith("__Host-vigie_session="), cookie
        assert cookie_flags(cookie) == {"path=/", "httponly", "samesite=lax", "secure"}, cookie


def test_csrf_is_required_on_every_form_and_api_post(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    token = login_form(client, ANALYST)
    mid = world["review_hostile"]
    for data in ({}, {"csrf_token": "forged"}):
        r = client.post(f"/review/{mid}/reject", data={**data, "reason": "no"})
        assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/login", data={"username": "bob", "password": ANALYST[1]})
    assert r.status_code == 403
    assert client.post(f"/api/matches/{mid}/reject", json={"reason": "no"}).status_code == 403
    assert client.post(f"/api/matches/{mid}/reject", json={"reason": "no"},
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    with Session() as s:
        assert s.get(Match, mid).review is ReviewState.NONE
        assert s.scalar(select(AuditLog).where(AuditLog.action == "match.reject")) is None
    # With the token it works.
    r = client.post(f"/review/{mid}/reject", data={"csrf_token": token, "reason": "not the film"},
                    follow_redirects=False)
    assert r.status_code == 303


def test_roles_analyst_cannot_reach_admin(client: Any) -> None:
    login_form(client, ANALYST)
    for path in ("/titles", "/sites", "/hosts", "/users", "/audit"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "for administrators" in r.text
    for path in ("/api/titles", "/api/sites", "/api/hosts"):
        assert client.get(path).status_code == 403, path
    page = client.get("/review").text
    assert 'href="/users"' not in page and 'href="/titles"' not in page
    r = client.post("/users", data={"csrf_token": form_token(page), "username": "mallory",
                                    "password": "x" * 12, "role": "admin"})
    assert r.status_code == 403


def test_review_through_pages_and_audit(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    token = login_form(client, ANALYST)
    page = client.get("/review").text
    # Both waiting matches are there, side by side frames from our origin only.
    assert f'id="match-{world["review_hostile"]}"' in page and f'id="match-{world["review_formula"]}"' in page
    assert f'src="/frames/{world["review_hostile"]}/ref.jpg"' in page
    srcs = re.findall(r'\bsrc="([^"]*)"', page)
    assert srcs and all(s.startswith("/") for s in srcs), srcs
    # Hostile page title shown as text; a javascript: page URL never becomes a link.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Bcc: victim@example.org" in page
    assert 'href="javascript' not in page.lower()
    r = client.post(f"/review/{world['review_formula']}/confirm", data={"csrf_token": token, "note": "clear copy"})
    assert r.status_code == 200 and "confirmed" in r.text
    r = client.post(f"/review/{world['review_hostile']}/reject", data={"csrf_token": token, "reason": ""})
    assert r.status_code == 422 and "needs a reason" in r.text
    r = client.post(f"/review/{world['review_hostile']}/reject",
                    data={"csrf_token": token, "reason": "trailer, not the film"})
    assert r.status_code == 200 and "rejected" in r.text
    assert "Nothing here." in client.get("/review").text
    rejected = client.get("/review?state=rejected").text
    assert "trailer, not the film" in rejected and 'action="/review/' not in rejected
    with Session() as s:
        m = s.get(Match, world["review_hostile"])
        assert m.review is ReviewState.REJECTED and m.review_reason == "trailer, not the film"
        assert m.reviewer_id == world["analyst"] and m.reviewed_at is not None
        assert s.get(Match, world["review_formula"]).review is ReviewState.APPROVED
        rows = {a.action: a for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "match"))}
        assert rows["match.reject"].actor == "bob"
        assert rows["match.reject"].before["review"] == "none"
        assert rows["match.reject"].after["review"] == "rejected"
        assert rows["match.approve"].after["review_reason"] == "clear copy"


def test_frames_need_login_and_are_jpeg(client: Any, world: dict[str, Any]) -> None:
    url = f"/frames/{world['confirmed']}/ref.jpg"
    assert client.get(url, follow_redirects=False).status_code == 303
    login_form(client, ANALYST)
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert client.get(f"/frames/{world['review_hostile']}/cand.jpg").status_code == 404


def test_notices_read_approve_discard(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    login_form(client, ANALYST)
    nid = world["n_held"]
    listing = client.get("/notices").text
    assert f'id="notice-{nid}"' in listing
    page = client.get(f"/notices/{nid}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    # The rendered HTML is shown sandboxed, and it cannot load the tracker it carries.
    body = client.get(f"/notices/{nid}/html")
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "img-src" not in csp
    token = form_token(page.text)
    r = client.post(f"/notices/{nid}/approve", data={"csrf_token": token})
    assert r.status_code == 200 and "approved" in r.text
    again = client.post(f"/notices/{nid}/approve", data={"csrf_token": token})
    assert again.status_code == 422 and "not awaiting approval" in again.text
    with Session() as s:
        n = s.get(Notice, nid)
        assert n.status is NoticeStatus.QUEUED and n.approved_by_id == world["analyst"]
        a = s.scalar(select(AuditLog).where(AuditLog.action == "notice.approve"))
        assert a.before["status"] == "awaiting_approval" and a.after["status"] == "queued"
    # Discard through the API on another held notice.
    with Session.begin() as s:
        s.get(Notice, world["n_failed"]).status = NoticeStatus.AWAITING_APPROVAL
    h = login_api(client, ANALYST)
    r = client.post(f"/api/notices/{world['n_failed']}/discard", json={"reason": "host already removed it"},
                    headers=h)
    assert r.status_code == 200 and r.json()["status"] == "discarded"


def test_json_api_review_and_openapi(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/openapi.json").json()
    for path in ("/api/login", "/api/matches", "/api/matches/{match_id}/reject",
                 "/api/notices/{notice_id}/approve", "/api/reports"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 404  # no CDN-loaded docs UI
    h = login_api(client, ANALYST)
    queue = client.get("/api/matches").json()
    assert {m["id"] for m in queue} == {world["review_hostile"], world["review_formula"]}
    hostile = next(m for m in queue if m["id"] == world["review_hostile"])
    assert hostile["page_title"].startswith("<script>")  # JSON carries data as is
    assert hostile["frames"] == {"reference": f"/frames/{world['review_hostile']}/ref.jpg"}
    r = client.post(f"/api/matches/{world['review_hostile']}/reject", json={"reason": ""}, headers=h)
    assert r.status_code == 422
    r = client.post(f"/api/matches/{world['review_hostile']}/reject", json={"reason": "cam recording of another film"},
                    headers=h)
    assert r.status_code == 200 and r.json()["review"] == "rejected"
    r = client.post(f"/api/matches/{world['review_formula']}/approve", headers=h)
    assert r.status_code == 200 and r.json()["review"] == "approved"
    assert client.get("/api/matches").json() == []
    assert {m["id"] for m in client.get("/api/matches?state=rejected").json()} == {
        world["review_hostile"], world["rejected"]}
    assert client.post("/api/matches/99999/approve", headers=h).status_code == 404
    assert client.get("/api/matches?state=bogus").status_code == 422
    held = client.get("/api/notices").json()
    assert [n["id"] for n in held] == [world["n_held"]]
    r = client.post(f"/api/notices/{world['n_held']}/approve", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    with Session() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions[-4:] == ["user.login", "match.reject", "match.approve", "notice.approve"]


def test_admin_pages_actions(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    token = login_form(client, ADMIN)
    r = client.post(f"/titles/{world['bunny']}/offers",
                    data={"csrf_token": token, "url": "https://svod.example/bbb", "provider": "SVOD+",
                          "kind": "svod", "territory": "FR"})
    assert r.status_code == 200 and "offer added" in r.text and "https://svod.example/bbb" in r.text
    bad = client.post(f"/titles/{world['bunny']}/offers", data={"csrf_token": token, "url": "javascript:x"})
    assert bad.status_code == 422
    r = client.post(f"/hosts/{world['vidhost']}", data={"csrf_token": token, "abuse_contact": "dmca@vidhost.test",
                                                       "channel": "email", "needs_approval": "on"})
    assert r.status_code == 200
    r = client.post(f"/sites/{world['tubes']}", data={"csrf_token": token, "schedule": "12h"})
    assert r.status_code == 200
    r = client.post("/users", data={"csrf_token": token, "username": "carol", "password": "a long password",
                                    "role": "analyst"})
    assert r.status_code == 200 and "carol" in r.text
    dup = client.post("/users", data={"csrf_token": token, "username": "carol", "password": "a long password"})
    assert dup.status_code == 409
    audit = client.get("/audit").text
    for action in ("offer.add", "host.update", "site.update", "user.create"):
        assert action in audit
    with Session() as s:
        carol = s.scalar(select(User).where(User.username == "carol"))
        assert carol is not None and carol.password_hash.startswith("$argon2id$")
        a = s.scalar(select(AuditLog).where(AuditLog.action == "host.update"))
        assert a.before["needs_approval"] is False and a.after["needs_approval"] is True
        assert a.after["abuse_contact"] == "dmca@vidhost.test"


def test_security_headers_and_reports_archive(client: Any, Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from reports.daily import build_report

    with Session.begin() as s:
        build_report(s, Config(timezone="Europe/Paris"), DAY, tmp_path)
    login_form(client, ANALYST)
    r = client.get("/reports")
    csp = r.headers["content-security-policy"]
    # Scripts only from our own static files (the submission task's copy buttons): no inline
    # script, no other origin.
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and csp.count("script-src") == 1
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert 'href="/reports/2026-03-10"' in r.text
    rep = client.get("/reports/2026-03-10")
    assert rep.status_code == 200 and "Vigie daily report · 2026-03-10" in rep.text
    assert "sandbox" in rep.headers["content-security-policy"]
    assert client.get("/reports/2026-03-11").status_code == 404


def test_public_pages_and_static_export(client: Any, world: dict[str, Any], Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from webapp.public import export_static, title_url

    media = Path(__file__).resolve().parents[1] / "demoweb" / "demo_media" / "big_buck_bunny_excerpt.mp4"
    from db.models import ReferenceVideo

    with Session.begin() as s:
        s.add(ReferenceVideo(title_id=world["bunny"], sha256="0" * 64, path=str(media), duration_s=20.0, fps=24.0,
                             width=640, height=360, size_bytes=1, algorithm="test", frame_count=0,
                             hashes=b"", times=b""))
        # Public pages only for published titles (the rest: tests/test_workflow_web.py).
        for key in ("bunny", "calais"):
            s.get(Title, world[key]).published = True
    idx = client.get("/public/")  # no login
    assert idx.status_code == 200 and "Films by Films du Phare" in idx.text
    page = client.get(f"/public/titles/{world['bunny']}")
    assert "Where to watch Big Buck Bunny legally" in page.text and "Phare Films" in page.text
    assert "VOD Maison" in page.text and "https://vod.example/films/big-buck-bunny" in page.text
    assert "rent on demand" in page.text
    assert f'src="/public/titles/{world["bunny"]}/poster.jpg"' in page.text
    poster = client.get(f"/public/titles/{world['bunny']}/poster.jpg")
    assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
    assert 'src="/public/titles/' not in client.get(f"/public/titles/{world['calais']}").text
    cfg = Config(notifier={"legal_name": "Films du Phare"}, web={"public_base_url": "https://films.example/"})
    assert title_url(cfg, 3) == "https://films.example/public/titles/3"
    assert title_url(Config(), 3) is None
    with Session.begin() as s:
        files = export_static(s, cfg, tmp_path / "pub")
        assert s.get(TitlePoster, world["bunny"]) is not None
    names = sorted(p.name for p in files)
    assert "index.html" in names and f"title-{world['bunny']}.html" in names and f"poster-{world['bunny']}.jpg" in names
    html = (tmp_path / "pub" / f"title-{world['bunny']}.html").read_text()
    assert f'src="poster-{world["bunny"]}.jpg"' in html and 'href="index.html"' in html


def test_cli_users(db_url: str, engine: Any) -> None:  # noqa: ARG001 - engine upgrades the schema
    from click.testing import CliRunner

    from vigie.cli import cli

    runner = CliRunner()
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "dana", "--role", "admin", "--password-stdin"],
                      input="a very long password\n")
    assert r.exit_code == 0, r.output
    assert "added user dana (admin)" in r.output
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "dana", "--password-stdin"], input="another password\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "eve", "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "too short" in r.output
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "fay"], input="prompted password\nprompted password\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["--db", db_url, "users", "list"])
    assert r.exit_code == 0 and "dana" in r.output and "admin" in r.output and "fay" in r.output
    from webapp.accounts import authenticate
    from db.session import sessionmaker_for

    with sessionmaker_for(engine).begin() as s:
        assert authenticate(s, "dana", "a very long password") is not None
        assert authenticate(s, "dana", "wrong") is None
        assert authenticate(s, "nobody", "a very long password") is None

    # The engineer on call disables an account or resets its password from the CLI: the
    # user's live session in the web app ends at once.
    from fastapi.testclient import TestClient

    from foundation.config import Config
    from webapp.app import create_app

    with TestClient(create_app(engine, Config())) as web:
        login_api(web, ("fay", "prompted password"))
        assert web.get("/api/matches").status_code == 200
        r = runner.invoke(cli, ["--db", db_url, "users", "disable", "fay"])
        assert r.exit_code == 0 and "sessions have ended" in r.output, r.output
        assert web.get("/api/matches").status_code == 401
        assert web.post("/api/login", json={"username": "fay", "password": "prompted password"}).status_code == 401
        r = runner.invoke(cli, ["--db", db_url, "users", "enable", "fay"])
        assert r.exit_code == 0, r.output
        login_api(web, ("fay", "prompted password"))
        r = runner.invoke(cli, ["--db", db_url, "users", "password", "fay", "--password-stdin"],
                          input="a brand new password\n")
        assert r.exit_code == 0, r.output
        assert web.get("/api/matches").status_code == 401
        login_api(web, ("fay", "a brand new password"))
    r = runner.invoke(cli, ["--db", db_url, "users", "disable", "nobody"])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output


def test_approving_a_notice_to_a_licensed_partner_discards_it(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    from db.models import Host

    with Session.begin() as s:
        s.get(Host, world["locker"]).licensed_partner = True  # became a partner since the notice was held
    h = login_api(client, ANALYST)
    r = client.post(f"/api/notices/{world['n_held']}/approve", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    with Session() as s:
        assert "licensed partner" in (s.get(Notice, world["n_held"]).last_error or "")


def test_review_states_an_uncertain_offset(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    from db.models import Match

    # A still shot matches anywhere along it: the matcher's stated uncertainty is shown.
    with Session.begin() as s:
        s.get(Match, world["review_formula"]).details = {"offset_uncertainty_s": 6.5}
        s.get(Match, world["review_hostile"]).details = {"offset_uncertainty_s": 0.5}
    login_form(client, ANALYST)
    page = client.get("/review").text
    shown = re.findall(r'id="match-(\d+)".*?(?=id="match-|\Z)', page, re.S)
    assert len(shown) == 2
    blocks = dict(zip(shown, re.split(r'id="match-\d+"', page)[1:]))
    assert "(± 6 s)" in blocks[str(world["review_formula"])]  # rounded down by '%.0f' of 6.5
    assert "(± " not in blocks[str(world["review_hostile"])]


def test_allowed_material_pages(client: Any, world: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    # Any staff member sees the allowed material and its reason; only admins remove it.
    token = login_form(client, ANALYST)
    page = client.get("/allowed")
    assert page.status_code == 200 and 'href="/allowed"' in page.text
    row = re.search(rf'id="allowed-{world["trailer"]}".*?</tr>', page.text, re.S).group(0)
    assert "trailer" in row and "Big Buck Bunny" in row and "1:35" in row
    assert "<img src=x" not in page.text and "bbb_&lt;img src=x onerror=alert(3)&gt;.mp4" in page.text
    logo = re.search(rf'id="allowed-{world["logo"]}".*?</tr>', page.text, re.S).group(0)
    assert "logo" in logo and "no title" in logo
    assert 'action="/allowed/' not in page.text
    r = client.post(f"/allowed/{world['logo']}/remove", data={"csrf_token": token})
    assert r.status_code == 403
    api = client.get("/api/allowed").json()
    assert [(a["id"], a["reason"], a["title"], a["file"]) for a in api] == [
        (world["trailer"], "trailer", "Big Buck Bunny", HOSTILE_FILE), (world["logo"], "logo", None, None)]

    # Review shows the copy of the logo as allowed, with no confirm button; it cannot be approved.
    review = client.get("/review?state=allowed").text
    card = review.split(f'id="match-{world["allowed_match"]}"')[1]
    assert "allowed (logo)" in card and "no notice goes out" in card and "no title" in card
    assert f'action="/review/{world["allowed_match"]}/confirm"' not in review
    assert f'id="match-{world["allowed_match"]}"' not in client.get("/review").text  # not in the queue
    r = client.post(f"/review/{world['allowed_match']}/confirm", data={"csrf_token": token})
    assert r.status_code == 422 and "allowed material" in r.text
    h = {"X-CSRF-Token": client.get("/api/session").json()["csrf_token"]}
    assert client.post(f"/api/matches/{world['allowed_match']}/approve", headers=h).status_code == 422
    (m,) = [x for x in client.get("/api/matches?state=allowed").json()]
    assert (m["decision"], m["allowed_reason"], m["title_id"], m["title"]) == ("allowed", "logo", None, "")
    client.post("/logout", data={"csrf_token": form_token(client.get("/review").text)})

    # An admin removes the logo: audited, and the copy of it goes back to matching.
    token = login_form(client, ADMIN)
    page = client.get("/allowed").text
    assert f'action="/allowed/{world["logo"]}/remove"' in page
    assert client.post(f"/allowed/{world['logo']}/remove", data={}).status_code == 403  # no CSRF token
    r = client.post(f"/allowed/{world['logo']}/remove", data={"csrf_token": token})
    assert r.status_code == 200 and "removed" in r.text and "1 copies of it will be matched again" in r.text
    assert f'id="allowed-{world["logo"]}"' not in r.text and f'id="allowed-{world["trailer"]}"' in r.text
    assert client.post(f"/allowed/{world['logo']}/remove", data={"csrf_token": token}).status_code == 404
    with Session() as s:
        from db.models import Candidate, CandidateStatus

        a = s.scalar(select(AuditLog).where(AuditLog.action == "allowed.remove"))
        assert a.actor == "alice" and a.object_id == world["logo"] and a.before["reason"] == "logo"
        assert s.get(Match, world["allowed_match"]) is None
        assert s.scalar(select(Candidate).where(Candidate.canonical_url == "http://linkz.test/watch/9")).status \
            is CandidateStatus.PENDING
    assert "allowed.remove" in client.get("/audit").text


def test_screenshot_of_the_rendered_page_is_shown_beside_the_frames(
        client: Any, world: dict[str, Any], Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The browser resolver's screenshot (issue 15) is evidence: shown on the review card,
    served to staff only, and refused when the file no longer matches its SHA-256."""
    import io

    from PIL import Image

    from crawlers.evidence import store_blob

    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (20, 20, 20)).save(buf, "PNG")
    ref = store_blob(buf.getvalue(), str(tmp_path), ".png")
    mid = world["review_hostile"]
    with Session.begin() as s:
        cand = s.get(Match, mid).candidate
        cand.evidence = {**(cand.evidence or {}), "browser": {"screenshot": ref}}
    url = f"/screenshots/{mid}.png"
    assert client.get(url, follow_redirects=False).status_code == 303
    login_form(client, ANALYST)
    assert url in client.get("/review").text
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == buf.getvalue()
    assert client.get(f"/screenshots/{world['confirmed']}.png").status_code == 404
    Path(ref["path"]).write_bytes(b"\x89PNG tampered")
    assert client.get(url).status_code == 404
