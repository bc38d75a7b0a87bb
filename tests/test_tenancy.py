"""Staff scope over every route: a user of rights holder A never reads or changes B's data.

Two rights holders (A and B, a title each, with matches, frames, a screenshot, reference
media, allowed material and held notices) and an agent C holding a mandate from A. Each
tenant's user (an analyst of A, of B, of C) requests every route of the review app that
takes an id or lists data (``TENANT_ROUTES``; a route of ``ROUTES`` in
tests/test_hardening_routes.py that is neither here, nor administrators-only, nor in
``NO_TENANT_DATA`` with its reason, fails the test):

* with the other tenant's id: the answer must be the one for an id that does not exist
  (404), and nothing may change in the database (review states, notice statuses, offers,
  allowed material, the audit log);
* with its own id: anything but 403/404/5xx (the route was reached);
* a list: it shows its own rows and none of the other's;
* an administrators-only route: 403 (a tenant's user is never the installation's admin).

The installation's own analyst sees both tenants' rows. Real SQLite (and PostgreSQL when
configured) under a real ASGI client.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from db.models import (
    AllowedReason,
    AuditLog,
    Candidate,
    CandidateStatus,
    Decision,
    Host,
    Mandate,
    Match,
    MatchFrame,
    Notice,
    NoticeItem,
    NoticeStatus,
    Offer,
    OrgKind,
    ReferenceVideo,
    Report,
    RightsHolder,
    Role,
    Site,
    Title,
    TitleRights,
    User,
)
from foundation.config import Config
from tests.test_hardening_routes import ADMIN_ONLY, ROUTES, STAFF, Visitor
from tests.test_report import jpeg

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WHEN = datetime(2026, 3, 10, 9, 0, tzinfo=timezone.utc)

# (method, path template) -> (sample path with a tenant's ids, body). "{...}" is filled
# from one tenant's rows: its own for the "own" cells, the other's for the "other" ones.
TENANT_ROUTES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("POST", "/review/{match_id}/confirm"): ("/review/{review}/confirm", {"form": {"note": "ok"}}),
    ("POST", "/review/{match_id}/reject"): ("/review/{review2}/reject", {"form": {"reason": "no"}}),
    ("GET", "/frames/{match_id}/{which}.jpg"): ("/frames/{confirmed}/ref.jpg", None),
    ("GET", "/media/reference/{ref_id}"): ("/media/reference/{ref}", None),
    ("GET", "/screenshots/{match_id}.png"): ("/screenshots/{confirmed}.png", None),
    ("GET", "/notices/{notice_id}"): ("/notices/{held}", None),
    ("GET", "/notices/{notice_id}/html"): ("/notices/{held}/html", None),
    ("POST", "/notices/{notice_id}/approve"): ("/notices/{held}/approve", {"form": {}}),
    ("POST", "/notices/{notice_id}/discard"): ("/notices/{held2}/discard", {"form": {"reason": "x"}}),
    ("POST", "/api/matches/{match_id}/approve"): ("/api/matches/{confirmed}/approve", {"json": {"note": "y"}}),
    ("POST", "/api/matches/{match_id}/reject"): ("/api/matches/{review3}/reject", {"json": {"reason": "n"}}),
    ("GET", "/api/notices/{notice_id}"): ("/api/notices/{held3}", None),
    ("POST", "/api/notices/{notice_id}/approve"): ("/api/notices/{held3}/approve", None),
    ("POST", "/api/notices/{notice_id}/discard"): ("/api/notices/{held4}/discard", {"json": {}}),
    ("GET", "/notices/{notice_id}/export.json"): ("/notices/{held}/export.json", None),
    ("GET", "/notices/{notice_id}/export.txt"): ("/notices/{held}/export.txt", None),
    ("POST", "/notices/{notice_id}/submitted"): ("/notices/{held2}/submitted", {"form": {"ticket_ref": "T-1"}}),
    ("POST", "/notices/{notice_id}/retry"): ("/notices/{held2}/retry", {"form": {}}),
    ("GET", "/api/notices/{notice_id}/timeline"): ("/api/notices/{held}/timeline", None),
}
# The hosts' replies come to the installation's mailbox and may concern any tenant: only
# the installation's staff read them (a tenant's user gets 403, as for admin pages).
INSTALLATION_ONLY: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/inbox"): ("/inbox", None),
    ("GET", "/inbox/{message_id}"): ("/inbox/1", None),
    ("GET", "/inbox/{message_id}/source.eml"): ("/inbox/1/source.eml", None),
    ("POST", "/inbox/{message_id}/close"): ("/inbox/1/close", {"form": {"note": "x"}}),
    ("POST", "/inbox/{message_id}/accept-contact"): ("/inbox/1/accept-contact", {"form": {}}),
    ("POST", "/inbox/{message_id}/file"): ("/inbox/1/file", {"form": {"notice_id": "1", "kind": "ack"}}),
    ("POST", "/counter-notices/{cn_id}/decide"): ("/counter-notices/1/decide", {"form": {"decision": "accepted"}}),
    ("GET", "/api/inbox"): ("/api/inbox", None),
}
# Lists: (method, path template) -> sample path. Checked for the markers of each tenant.
TENANT_LISTS: dict[tuple[str, str], str] = {
    ("GET", "/review"): "/review?state=all",
    ("GET", "/api/matches"): "/api/matches?state=all",
    ("GET", "/notices"): "/notices",
    ("GET", "/api/notices"): "/api/notices?status=awaiting_approval",
    ("GET", "/allowed"): "/allowed",
    ("GET", "/api/allowed"): "/api/allowed",
    ("GET", "/reports"): "/reports",
    ("GET", "/api/reports"): "/api/reports",
    # The same address for everyone: the installation's report, or the tenant's own.
    ("GET", "/reports/{day}"): "/reports/2026-03-10",
}
# Staff routes that hold no tenant's data, and why.
NO_TENANT_DATA = {
    ("GET", "/account"): "the user's own account",
    ("POST", "/account/password"): "the user's own password",
    ("GET", "/api/session"): "the user's own session",
    ("POST", "/api/logout"): "the user's own session",
}


def _tenant(s: Any, key: str, holder: RightsHolder, tmp_path: Path, site: Site, host: Host) -> dict[str, Any]:
    """One tenant's title and everything that hangs on it; returns the ids by name."""
    from crawlers.evidence import store_blob
    from PIL import Image

    t = Title(title=f"Film of {key.upper()}", year=2020, rights_owner=holder.legal_name)
    t.rights.append(TitleRights(holder=holder, territory="*"))
    t.offers.append(Offer(url=f"https://vod-{key}.example/film", provider=f"vod-{key}"))
    s.add(t)
    s.flush()
    master = tmp_path / f"master-{key}.mp4"
    master.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)

    def ref(name: str, reason: AllowedReason | None, path: str | None) -> ReferenceVideo:
        r = ReferenceVideo(title=t, sha256=(key + name).ljust(64, "0"), path=path, duration_s=60.0, fps=24.0,
                           width=640, height=360, size_bytes=1, algorithm="test", frame_count=0, hashes=b"",
                           times=b"", allowed_reason=reason)
        s.add(r)
        return r

    film = ref("film", None, str(master))
    trailer = ref("trailer", AllowedReason.TRAILER, f"/masters/trailer-{key}.mp4")
    buf = io.BytesIO()
    Image.new("RGB", (32, 18), (10, 10, 10)).save(buf, "PNG")
    shot = store_blob(buf.getvalue(), str(tmp_path), ".png")
    ids: dict[str, Any] = {"title": t.id}
    matches: dict[str, Match] = {}
    for name, decision in (("confirmed", Decision.CONFIRMED), ("review", Decision.REVIEW),
                           ("review2", Decision.REVIEW), ("review3", Decision.REVIEW)):
        url = f"http://pirate-{key}.test/watch/{name}"
        c = Candidate(canonical_url=url, page_url=url, site=site, host=host, title_text=f"{key} {name}",
                      status=CandidateStatus.MATCHED, first_seen=WHEN, last_seen=WHEN,
                      evidence={"sha256": "a" * 64, "browser": {"screenshot": shot}})
        m = Match(candidate=c, title=t, reference_id=None, score=0.9, matched_s=300.0, offset_s=0.0, speed=1.0,
                  cand_start_s=0.0, cand_end_s=300.0, ref_start_s=0.0, ref_end_s=300.0, decision=decision,
                  created_at=WHEN, media_url=f"{url}/video.mp4")
        s.add(m)
        matches[name] = m
    s.flush()
    for m in matches.values():
        m.reference_id = film.id
    s.add(MatchFrame(match_id=matches["confirmed"].id, ref_t=10.0, cand_t=10.0, ref_jpeg=jpeg((200, 0, 0)),
                     cand_jpeg=jpeg((190, 0, 0))))
    for name in ("held", "held2", "held3", "held4"):
        n = Notice(host=host, regime="dsa", template="dsa.en", language="en", recipient="abuse@host.test",
                   status=NoticeStatus.AWAITING_APPROVAL, subject=f"Notice {key.upper()} {name}",
                   body_text="text", body_html=f"<p>notice {key} {name}</p>", created_at=WHEN,
                   notifier_id=holder.id)
        n.items.append(NoticeItem(match=matches["confirmed"], url=matches["confirmed"].candidate.page_url))
        s.add(n)
        s.flush()
        ids[name] = n.id
    ids.update({k: m.id for k, m in matches.items()}, ref=film.id, allowed=trailer.id)
    return ids


@pytest.fixture
def tenants(Session, tmp_path: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from webapp.accounts import create_user

    with Session.begin() as s:
        site = Site(name="links", start_urls=["http://links.test/"])
        host = Host(name="host", domain_patterns=["host.test"], abuse_contact="abuse@host.test")
        a = RightsHolder(name="films-a", legal_name="Films A SAS")
        b = RightsHolder(name="films-b", legal_name="Films B SARL")
        c = RightsHolder(name="agence-c", legal_name="Agence C", kind=OrgKind.AGENT)
        s.add_all([site, host, a, b, c])
        s.flush()
        s.add(Mandate(agent=c, principal=a, all_titles=True, valid_from=date(2026, 1, 1)))
        w = {"a": _tenant(s, "a", a, tmp_path, site, host), "b": _tenant(s, "b", b, tmp_path, site, host)}
        s.add(Report(day=date(2026, 3, 10), html="<p>installation report: Film of A, Film of B</p>",
                     summary={"matches": 8}))
        users = {"ua": create_user(s, "ua", "password of a user", org_id=a.id),
                 "ub": create_user(s, "ub", "password of b user", org_id=b.id),
                 "uc": create_user(s, "uc", "password of c user", org_id=c.id),
                 "staff": create_user(s, "staff", "installation analyst")}
        w["users"] = {k: u.id for k, u in users.items()}
    return w


@pytest.fixture
def tenant_app(engine):  # type: ignore[no-untyped-def]
    from webapp.app import create_app

    return create_app(engine, Config(notifier={"legal_name": "Vigie installation"}), secret_key="k" * 48)


def _state(Session: Any) -> dict[str, Any]:  # noqa: N803 - the fixture's name
    """What a request that changes something would change."""
    with Session() as s:
        return {
            "reviews": sorted((m.id, m.review.value) for m in s.scalars(select(Match))),
            "notices": sorted((n.id, n.status.value) for n in s.scalars(select(Notice))),
            "offers": s.scalar(select(func.count()).select_from(Offer)),
            "allowed": s.scalar(select(func.count()).select_from(ReferenceVideo)),
            "audit": s.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.action.not_in(["user.login", "user.logout"]))),
        }


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_tenant_matrix(tenant_app: Any, tenants: dict[str, Any], Session) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.test_hardening_routes import route_table
    from webapp import sessions
    from webapp.sessions import SessionState

    # Every staff route is covered: by id, as a list, administrators only, or exempt.
    staff_routes = {k for k, (who, _, _) in ROUTES.items() if who in (STAFF, ADMIN_ONLY)}
    admin_routes = {k for k, (who, _, _) in ROUTES.items() if who == ADMIN_ONLY}
    covered = set(TENANT_ROUTES) | set(TENANT_LISTS) | set(NO_TENANT_DATA) | admin_routes | set(INSTALLATION_ONLY)
    assert staff_routes - covered == set(), "routes with no tenant check (add them to TENANT_ROUTES/LISTS)"
    assert (set(TENANT_ROUTES) | set(TENANT_LISTS)) - set(route_table(tenant_app)) == set(), "stale lines"

    # (user, own tenant's ids, the other tenant's ids): C acts for A under its mandate.
    who = {"ua": ("a", "b"), "uc": ("a", "b"), "ub": ("b", "a")}
    missing = {k: 2**31 - 7 for k in tenants["a"]}
    wrong: list[str] = []
    cells = 0
    with TestClient(tenant_app) as c:
        def visitor(name: str) -> Visitor:
            state = SessionState()
            with Session.begin() as s:
                sessions.start(s, state, tenants["users"][name])
            return Visitor(c, state.new_token, state.csrf)

        # Phase 1: the other tenant's ids; nothing may change.
        before = _state(Session)
        for user, (_, other) in who.items():
            v = visitor(user)
            for (method, _), (sample, body) in TENANT_ROUTES.items():
                r = v.request(method, sample.format(**tenants[other]), body)
                nothing = v.request(method, sample.format(**missing), body)
                cells += 1
                if r.status_code != 404 or nothing.status_code != 404:
                    wrong.append(f"{user}: {method} {sample.format(**tenants[other])} -> {r.status_code} "
                                 f"(an id that does not exist: {nothing.status_code}), expected 404")
            for key in sorted(admin_routes):
                sample = ROUTES[key][1]
                fill = {"bunny": tenants[other]["title"], "offer": 1, "logo": tenants[other]["allowed"],
                        "tubes": 1, "vidhost": 1, "target": tenants["users"]["staff"]}
                r = v.request(key[0], sample.format(**fill), ROUTES[key][2])
                cells += 1
                if r.status_code != 403:
                    wrong.append(f"{user}: {key[0]} {sample} -> {r.status_code}, expected 403 (administrators)")
            for (method, _), (sample, body) in INSTALLATION_ONLY.items():
                r = v.request(method, sample, body)
                cells += 1
                if r.status_code != 403:
                    wrong.append(f"{user}: {method} {sample} -> {r.status_code}, expected 403 (installation staff)")
        after = _state(Session)
        cells += 1
        if after != before:
            wrong.append(f"the other tenant's requests changed the database: {before} -> {after}")

        # Lists: own rows, none of the other's.
        for user, (own, other) in [*who.items(), ("staff", ("a", "b"))]:
            v = visitor(user)
            for (method, _), sample in TENANT_LISTS.items():
                text = v.request(method, sample, None).text
                if sample.startswith("/reports/") and user == "staff":  # the archived one, as it was made
                    cells += 1
                    if "installation report" not in text:
                        wrong.append(f"staff: {sample} is not the installation's report")
                    continue
                for marker_of, must in ((own, True), (other, user == "staff")):
                    for marker in _markers(sample, marker_of, tenants[marker_of]):
                        cells += 1
                        if (marker in text) != must:
                            wrong.append(f"{user}: {sample} {'lacks' if must else 'shows'} {marker!r}")
                cells += 1
                if "installation report" in text and user != "staff":
                    wrong.append(f"{user}: {sample} shows the installation's report")
                if sample.endswith("reports") and "2026-03-10" not in text:
                    wrong.append(f"{user}: {sample} lists no report day")
                if '"matches": 8' in text.replace("\n", "").replace(" ", "").replace('":', '": ') \
                        and user != "staff":
                    wrong.append(f"{user}: {sample} shows the installation's figures")

        # Phase 2: own ids: reached (never 403/404/5xx).
        for user, (own, _) in who.items():
            v = visitor(user)
            for key, (sample, body) in TENANT_ROUTES.items():
                r = v.request(key[0], sample.format(**tenants[own]), body)
                cells += 1
                if r.status_code in (403, 404) or r.status_code >= 500:
                    wrong.append(f"{user}: {key[0]} {sample.format(**tenants[own])} -> {r.status_code}: "
                                 f"{r.text[:200]}")
    assert wrong == [], f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong)
    assert cells > 150


def _markers(sample: str, key: str, ids: dict[str, Any]) -> list[str]:
    """Text each list shows for tenant ``key``'s rows."""
    if "matches" in sample or sample.startswith("/review"):
        return [f"http://pirate-{key}.test/watch/review"]
    if sample == "/notices":
        return [f'id="notice-{ids["held"]}"', f"films-{key}"]
    if "notices" in sample:
        return [f"Notice {key.upper()} held"]
    if "allowed" in sample:
        return [f"Film of {key.upper()}"]
    if sample.startswith("/reports/"):
        return [f"http://pirate-{key}.test/watch/review"]
    return []


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_tenants_user_is_never_an_administrator(Session) -> None:  # type: ignore[no-untyped-def]
    from foundation.errors import InvalidInput
    from webapp.accounts import create_user

    with Session.begin() as s:
        h = RightsHolder(name="h", legal_name="H")
        s.add(h)
        s.flush()
        with pytest.raises(InvalidInput, match="installation"):
            create_user(s, "boss", "a long password 1", Role.ADMIN, org_id=h.id)
        assert s.scalar(select(User).where(User.username == "boss")) is None
