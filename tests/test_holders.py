"""Rights holders, agents and mandates, territories and release windows, end to end over
the notice builder (and the CLI): who notifies, for what, where, and what is withheld.

Each rule has its test: a title with no holder, or whose only mandate has expired, is never
notified and the reason is kept on the match; a host in a territory where the holder has
no rights gets nothing, and says why; the legal offer shown is the one open in the host's
territory on the notice's date; an agent groups its principals' works in one notice per
host, naming each holder and quoting each mandate; the migration turns ``rights_owner``
strings into holders with worldwide rights. Real SQLite (and PostgreSQL when configured).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from db.models import (
    Mandate,
    MandateTitle,
    Match,
    Notice,
    NoticeStatus,
    Offer,
    OfferKind,
    OrgKind,
    RightsHolder,
    Title,
    TitleRights,
)
from db.rights import Party, Withheld, covers, current_offers, notifier_for
from notices.build import approve_notice, queue_notices
from tests.test_notices_support import T0, add_host, add_match, make_config, smtp, web  # noqa: F401

DAY = T0.date()  # 2026-03-02


def holder(s: Any, name: str, *, agent: bool = False, **kw: Any) -> RightsHolder:
    h = RightsHolder(name=name, legal_name=kw.pop("legal_name", f"{name} SAS"),
                     kind=OrgKind.AGENT if agent else OrgKind.HOLDER, **kw)
    s.add(h)
    s.flush()
    return h


def title(s: Any, name: str, owner: RightsHolder | None, territory: str = "*",
          offers: list[Offer] | None = None) -> Title:
    t = Title(title=name, year=2024)
    if owner is not None:
        t.rights.append(TitleRights(holder=owner, territory=territory))
    for o in offers if offers is not None else [
            Offer(url=f"https://vod.example/{name.lower().replace(' ', '-')}", provider="vod")]:
        t.offers.append(o)
    s.add(t)
    s.flush()
    return t


def mandate(s: Any, agent: RightsHolder, principal: RightsHolder, start: date, end: date | None = None,
            titles: list[Title] | None = None) -> Mandate:
    m = Mandate(agent=agent, principal=principal, all_titles=not titles, valid_from=start, valid_until=end,
                document_sha256="d" * 64)
    s.add(m)
    s.flush()
    for t in titles or []:
        m.titles.append(MandateTitle(mandate_id=m.id, title_id=t.id))
    s.flush()
    return m


# --------------------------------------------------------------------------- rules, pure


def test_territory_fields() -> None:
    assert covers("*", "FR") and covers("*", None) and covers("", "US")
    assert covers("FR,BE", "be") and not covers("FR,BE", "US")
    # A host of unknown jurisdiction is covered only by worldwide rights.
    assert not covers("FR", None) and not covers("FR", "")


# --------------------------------------------------------------------------- who notifies


def test_title_without_holder_is_never_notified_and_says_why(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = title(s, "Orphan", None)
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        res = queue_notices(s, make_config(), now=T0)
        assert res.notices == [] and len(res.withheld) == 1
        assert "has no rights holder" in res.withheld[0]
        assert "has no rights holder" in m.details["withheld"]["videohost"]["reason"]
        assert s.scalar(select(Notice)) is None


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_expired_mandate_is_never_notified(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        a = holder(s, "films-a")
        agency = holder(s, "agence", agent=True)
        t = title(s, "Le Voyage", a)
        mandate(s, agency, a, date(2025, 1, 1), DAY - timedelta(days=1))
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        res = queue_notices(s, make_config(), now=T0)
        assert res.notices == []
        reason = m.details["withheld"]["videohost"]["reason"]
        assert f"expired on {DAY - timedelta(days=1)}" in reason and "agence" in reason
        # The holder does not take over silently either: once it gave a mandate, only a
        # valid one lets anyone notify.
        assert isinstance(notifier_for(s, t, "FR", DAY), Withheld)
        mid = m.id
    # Renewed: the next run notifies, through the agent, and the reason is cleared.
    with Session.begin() as s:
        a = s.scalar(select(RightsHolder).where(RightsHolder.name == "films-a"))
        agency = s.scalar(select(RightsHolder).where(RightsHolder.name == "agence"))
        mandate(s, agency, a, DAY, date(2026, 12, 31))
        res = queue_notices(s, make_config(), now=T0)
        assert len(res.notices) == 1 and res.withheld == []
        assert res.notices[0].notifier_id == agency.id
        assert "withheld" not in s.get(Match, mid).details


def test_mandate_expiring_while_a_notice_waits_refuses_it_at_approval(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        a = holder(s, "films-a")
        agency = holder(s, "agence", agent=True)
        t = title(s, "Le Voyage", a)
        m = mandate(s, agency, a, date(2025, 1, 1), date(2099, 1, 1))
        h = add_host(s, needs_approval=True)
        add_match(s, t, h, "https://videohost.example/v/1")
        (n,) = queue_notices(s, make_config(), now=T0).notices
        assert n.status is NoticeStatus.AWAITING_APPROVAL
        m.valid_until = date(2025, 6, 30)  # revoked early: the agent may no longer act
        approve_notice(s, n.id, actor="staff")
        assert n.status is NoticeStatus.DISCARDED and "expired on 2025-06-30" in (n.last_error or "")


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_host_in_a_territory_without_rights_gets_nothing_and_the_reason_is_shown(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        a = holder(s, "films-a")
        t = title(s, "Le Voyage", a, territory="FR,BE")
        fr = add_host(s, "tube-fr", jurisdiction="FR")
        us = add_host(s, "tube-us", jurisdiction="US", language="en")
        nowhere = add_host(s, "tube-unknown", jurisdiction=None, language="en")
        add_match(s, t, fr, "https://tube-fr.example/v/1")
        m_us = add_match(s, t, us, "https://tube-us.example/v/1")
        m_x = add_match(s, t, nowhere, "https://tube-unknown.example/v/1")
        res = queue_notices(s, make_config(), now=T0)
        assert [n.host.name for n in res.notices] == ["tube-fr"]
        assert "has rights in US (films-a: BE,FR)" in " ".join(res.withheld).replace("FR,BE", "BE,FR")
        assert "in US" in m_us.details["withheld"]["tube-us"]["reason"]
        assert "unknown jurisdiction" in m_x.details["withheld"]["tube-unknown"]["reason"]
        # Shown where staff look: `vigie status`, the daily report, the review page.
        from db.rights import withheld_matches
        from reports.daily import collect, render_html

        shown = {(w["match_id"], w["host"]) for w in withheld_matches(s)}
        assert shown == {(m_us.id, "tube-us"), (m_x.id, "tube-unknown")}
        html = render_html(collect(s, make_config(), DAY, now=T0))
        assert "Not notified: nobody may notify" in html and "has rights in US" in html


def test_offer_shown_is_the_one_open_in_the_hosts_territory_on_the_notice_date(Session) -> None:  # type: ignore[no-untyped-def]
    offers = [
        Offer(url="https://cinema.example/voyage", provider="cinema", kind=OfferKind.CINEMA, territory="FR",
              valid_from=date(2025, 10, 1), valid_until=date(2026, 2, 28)),          # window closed
        Offer(url="https://rent.example/voyage", provider="rent", kind=OfferKind.VOD_RENTAL, territory="FR",
              valid_from=date(2026, 3, 1), valid_until=date(2026, 9, 1)),            # open on DAY in FR
        Offer(url="https://svod.example/voyage", provider="svod", kind=OfferKind.SVOD, territory="FR",
              valid_from=date(2026, 9, 2)),                                           # not yet
        Offer(url="https://us-rent.example/voyage", provider="us", kind=OfferKind.VOD_RENTAL, territory="US"),
    ]
    with Session.begin() as s:
        t = title(s, "Le Voyage", holder(s, "films-a"), offers=offers)
        h = add_host(s, language="en")
        add_match(s, t, h, "https://videohost.example/v/1")
        (n,) = queue_notices(s, make_config(), now=T0).notices
        assert "https://rent.example/voyage" in n.body_text and "https://rent.example/voyage" in n.body_html
        for gone in ("cinema.example", "svod.example", "us-rent.example"):
            assert gone not in n.body_text and gone not in n.body_html, gone
        # Later the same title on another day: the subscription window is open.
        assert [o.url for o in current_offers(t, date(2026, 10, 1))["FR"]] == ["https://svod.example/voyage"]
        assert list(current_offers(t, DAY)) == ["FR", "US"]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_agent_groups_its_principals_works_in_one_notice_per_host(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        alpa = holder(s, "alpa", agent=True, legal_name="Association de lutte contre la piraterie",
                      address="5 rue de la Cinémathèque, Paris", email="notices@alpa.example",
                      signatory="M. Agent", phone="+33 1 00 00 00 00")
        a, b = holder(s, "films-a"), holder(s, "films-b")
        lone = holder(s, "lone", legal_name="Lone Productions", address="1 Lone Road", email="l@lone.example",
                      signatory="Ms Lone", phone="+1 555")
        ta, tb, tl = title(s, "Voyage A", a), title(s, "Voyage B", b), title(s, "Lone Film", lone)
        ma = mandate(s, alpa, a, date(2026, 1, 1))
        mb = mandate(s, alpa, b, date(2026, 1, 1), date(2026, 12, 31), titles=[tb])
        h = add_host(s, language="en")
        add_match(s, ta, h, "https://videohost.example/v/a")
        add_match(s, tb, h, "https://videohost.example/v/b")
        add_match(s, tl, h, "https://videohost.example/v/l")
        res = queue_notices(s, make_config(), now=T0)
        by = {n.notifier.name: n for n in res.notices}
        assert sorted(by) == ["alpa", "lone"] and len(res.notices) == 2
        agent_notice = by["alpa"]
        body = " ".join(agent_notice.body_text.split())
        assert "Association de lutte contre la piraterie" in body and "5 rue de la Cinémathèque" in body
        assert "rights owned by films-a SAS" in body and "rights owned by films-b SAS" in body
        assert "acting on behalf of the rights owners named above" in body
        assert f"films-a SAS: mandate no. {ma.id}, from 2026-01-01" in body
        assert f"films-b SAS: mandate no. {mb.id}, from 2026-01-01 until 2026-12-31" in body
        assert "d" * 64 in body and "M. Agent" in body
        assert sorted(i.url for i in agent_notice.items) == ["https://videohost.example/v/a",
                                                             "https://videohost.example/v/b"]
        lone_body = " ".join(by["lone"].body_text.split())
        assert "Lone Productions" in lone_body and "on behalf" not in lone_body and "Voyage A" not in lone_body
        # The notifier is on the notice, for the staff pages and the tenants' scope, and
        # the machine-readable copies name the agent as the complainant too.
        assert agent_notice.notifier_id == alpa.id
        assert "<Entity>Association de lutte contre la piraterie</Entity>" in agent_notice.acns_xml
        assert "notices@alpa.example" in agent_notice.acns_xml


def test_notifier_for_prefers_the_valid_mandate_and_the_first_holder_of_the_territory(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        a, us = holder(s, "films-a"), holder(s, "us-dist")
        agency = holder(s, "agence", agent=True)
        t = title(s, "Le Voyage", a, territory="FR")
        t.rights.append(TitleRights(holder=us, territory="US"))
        mandate(s, agency, a, date(2025, 1, 1), date(2025, 12, 31))
        current = mandate(s, agency, a, date(2026, 1, 1))
        s.flush()
        fr = notifier_for(s, t, "FR", DAY)
        assert isinstance(fr, Party) and fr.notifier.name == "agence" and fr.mandate is current
        got_us = notifier_for(s, t, "us", DAY)
        assert isinstance(got_us, Party) and got_us.notifier.name == "us-dist" and got_us.mandate is None


# --------------------------------------------------------------------------- migration


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_migration_makes_a_worldwide_holder_of_each_rights_owner(db_url: str) -> None:
    from db.session import make_engine, upgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0010_needs_browser")
        with engine.begin() as c:
            for i, owner in enumerate(["Blender Foundation", "Films du Nord", "Blender Foundation", None], 1):
                c.execute(text("INSERT INTO titles (id, title, rights_owner, created_at) "
                               "VALUES (:i, :t, :o, '2026-01-01')"), {"i": i, "t": f"T{i}", "o": owner})
        upgrade(engine)
        with engine.connect() as c:
            holders = dict(c.execute(text("SELECT name, id FROM rights_holders")).all())
            rights = sorted(c.execute(text("SELECT title_id, holder_id, territory FROM title_rights")).all())
        assert sorted(holders) == ["Blender Foundation", "Films du Nord"]
        assert rights == [(1, holders["Blender Foundation"], "*"), (2, holders["Films du Nord"], "*"),
                          (3, holders["Blender Foundation"], "*")]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- CLI


def test_cli_holders_mandates_and_catalog_add_with_offers(db_url: str, media: dict[str, str],
                                                          tmp_path: Path) -> None:
    from vigie.cli import cli

    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        r = runner.invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
        assert r.exit_code == code, r.output
        return r.output

    run("init")
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    assert "added holder" in run("holders", "add", "films-a", "--legal-name", "Films A SAS", "--country", "fr",
                                 "--address", "1 rue A, Paris", "--signatory", "Ana", "--email", "a@a.example",
                                 "--logo", str(logo))
    assert "added agent" in run("holders", "add", "alpa", "--agent", "--legal-name", "ALPA")
    assert "exists already" in run("holders", "add", "films-a", code=1)
    assert "neither PNG nor JPEG" in run("holders", "add", "x", "--logo", __file__, code=1)
    out = run("catalog", "add", media["film_b"], "--title", "Film B", "--holder", "films-a", "--rights", "FR,BE",
              "--offer", "https://rent.example/b", "--territory", "FR", "--from", "2026-03-01",
              "--until", "2026-09-01", "--kind", "rental",
              "--offer", "https://svod.example/b", "--territory", "FR,BE", "--from", "2026-09-02",
              "--until", "-", "--kind", "subscription", "--json")
    t = json.loads(out)
    assert t["rights"] == [{"holder": "films-a", "territory": "BE,FR"}]
    assert [(o["url"], o["territory"], o["kind"], o["from"], o["until"]) for o in t["offers"]] == [
        ("https://rent.example/b", "FR", "vod_rental", "2026-03-01", "2026-09-01"),
        ("https://svod.example/b", "BE,FR", "svod", "2026-09-02", None)]
    assert "--territory given 3 times for 2 --offer" in run(
        "catalog", "add", media["film_b"], "--title", "X", "--offer", "https://a.example/", "--offer",
        "https://b.example/", "--territory", "FR", "--territory", "BE", "--territory", "US", code=2)
    assert "not ISO 3166-1" in run("catalog", "add", media["film_a"], "--title", "Y", "--holder", "films-a",
                                   "--rights", "France", code=1)
    assert "no rights holder or agent 'nobody'" in run("catalog", "add", media["film_a"], "--title", "Y",
                                                        "--holder", "nobody", code=1)
    doc = tmp_path / "mandate.pdf"
    doc.write_bytes(b"%PDF-1.4 signed mandate")
    out = run("mandates", "add", "--agent", "alpa", "--for", "films-a", "--title", "Film B",
              "--from", "2026-01-01", "--until", "2026-12-31", "--document", str(doc))
    assert "alpa for films-a, 1 title(s), 2026-01-01 to 2026-12-31" in out
    assert "is not an agent" in run("mandates", "add", "--agent", "films-a", "--for", "alpa",
                                    "--from", "2026-01-01", code=1)
    (m,) = json.loads(run("mandates", "list", "--json"))
    assert m["document_sha256"] == hashlib.sha256(doc.read_bytes()).hexdigest()
    assert m["titles"] == [t["id"]] and m["document"] == "mandate.pdf"
    holders = {h["name"]: h for h in json.loads(run("holders", "list", "--json"))}
    assert holders["films-a"]["titles"] == [t["id"]] and holders["films-a"]["logo"] == "image/png"
    assert holders["films-a"]["country"] == "FR" and holders["alpa"]["kind"] == "agent"
    assert "films-a" in run("holders", "list") and "alpa for films-a" in run("mandates", "list")
    # A user of the agent: scoped to its principals' titles (tests/test_tenancy.py).
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "agent-user", "--holder", "alpa",
                            "--password-stdin"], input="a long password 1\n")
    assert r.exit_code == 0 and "for alpa" in r.output, r.output
    r = runner.invoke(cli, ["--db", db_url, "users", "add", "agent-boss", "--role", "admin", "--holder", "alpa",
                            "--password-stdin"], input="a long password 1\n")
    assert r.exit_code == 1 and "installation" in r.output


def test_catalog_add_with_rights_owner_makes_the_holder(Session, media: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from stages.catalog import add_title

    with Session.begin() as s:
        t = add_title(s, media["film_b"], title="Film B", rights_owner="Blender Foundation").title
        (r,) = t.rights
        assert r.holder.name == "Blender Foundation" and r.territory == "*" and t.rights_owner == "Blender Foundation"
        assert s.scalar(select(RightsHolder).where(RightsHolder.name == "Blender Foundation")) is r.holder


# --------------------------------------------------------------------------- public pages


def test_public_page_shows_current_offers_per_territory_and_the_holders_logo(engine, Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from foundation.config import Config
    from foundation.timeutil import local_today
    from webapp.app import create_app

    config = Config(notifier={"legal_name": "Vigie"})
    today = local_today(config)  # the page's day: the configured zone's, not UTC's
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
    with Session.begin() as s:
        a = holder(s, "films-a", legal_name="Films A SAS", logo=png, logo_type="image/png")
        t = title(s, "Le Voyage", a, offers=[
            Offer(url="https://rent-fr.example/v", provider="Rent FR", territory="FR",
                  valid_from=today - timedelta(days=10), valid_until=today + timedelta(days=10)),
            Offer(url="https://old-fr.example/v", provider="Old FR", territory="FR",
                  valid_until=today - timedelta(days=1)),
            Offer(url="https://soon-us.example/v", provider="Soon US", territory="US",
                  valid_from=today + timedelta(days=1)),
            Offer(url="https://world.example/v", provider="World", kind=OfferKind.SVOD),
            Offer(url="https://be-lu.example/v", provider="Benelux", territory="BE,LU"),
        ])
        t.published = True  # only a published title has a public page
        tid, hid = t.id, a.id
    app = create_app(engine, config, secret_key="k" * 48)
    with TestClient(app) as c:
        page = c.get(f"/public/titles/{tid}").text
        assert "a film of Films A SAS" in page and f'src="/public/holders/{hid}/logo"' in page
        assert page.index("worldwide") < page.index(">BE, LU<") < page.index(">FR<")
        assert "rent-fr.example" in page and "world.example" in page and "be-lu.example" in page
        assert "old-fr.example" not in page and "soon-us.example" not in page and ">US<" not in page
        logo = c.get(f"/public/holders/{hid}/logo")
        assert logo.status_code == 200 and logo.content == png and logo.headers["content-type"] == "image/png"
        assert c.get("/public/holders/999/logo").status_code == 404
        # Unpublished, its holder's logo is no longer public either.
        with Session.begin() as s:
            s.get(Title, tid).published = False
        assert c.get(f"/public/holders/{hid}/logo").status_code == 404
        with Session.begin() as s:
            s.get(Title, tid).published = True
    # The static export (vigie report --public DIR) carries the same, logo file included.
    from webapp.public import export_static

    out = tmp_path / "public"
    with Session() as s:
        export_static(s, Config(notifier={"legal_name": "Vigie"}), out)
    static = (out / f"title-{tid}.html").read_text()
    assert f'src="logo-{hid}.png"' in static and (out / f"logo-{hid}.png").read_bytes() == png
    assert "rent-fr.example" in static and "old-fr.example" not in static


def test_admin_adds_an_offer_with_territory_and_window(engine, Session) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from foundation.config import Config
    from tests.test_hardening_routes import Visitor
    from webapp import sessions
    from webapp.accounts import create_user
    from webapp.app import create_app
    from webapp.sessions import SessionState

    with Session.begin() as s:
        t = title(s, "Le Voyage", holder(s, "films-a"), offers=[])
        admin = create_user(s, "root", "a long password 1", "admin")
        tid, uid = t.id, admin.id
        state = SessionState()
        sessions.start(s, state, uid)
    app = create_app(engine, Config(notifier={"legal_name": "Vigie"}), secret_key="k" * 48)
    with TestClient(app) as c:
        v = Visitor(c, state.new_token, state.csrf)
        form = {"url": "https://rent.example/v", "kind": "vod_rental", "territory": "fr, be",
                "from": "2026-03-01", "until": "2026-09-01"}
        assert v.request("POST", f"/titles/{tid}/offers", {"form": form}).status_code == 303
        for bad, why in (({"territory": "France"}, "ISO 3166-1"), ({"until": "2026-01-01"}, "before it starts"),
                         ({"from": "tomorrow"}, "not a date")):
            r = v.request("POST", f"/titles/{tid}/offers", {"form": {**form, **bad}})
            assert r.status_code == 422 and why in r.text, (bad, r.status_code)
        page = v.request("GET", "/titles", None).text
        assert "films-a (*)" in page and "2026-03-01 to 2026-09-01" in page
        (out,) = v.request("GET", "/api/titles", None).json()
        assert out["rights"] == [{"holder": "films-a", "territory": "*"}]
        assert [(o["territory"], o["valid_from"], o["valid_until"]) for o in out["offers"]] == [
            ("BE,FR", "2026-03-01", "2026-09-01")]


def test_cli_grant_narrows_migrated_rights_and_catalog_offer_adds_windows(db_url: str, engine, Session) -> None:  # type: ignore[no-untyped-def]  # noqa: ARG001 - engine upgrades the schema
    from vigie.cli import cli

    with Session.begin() as s:
        title(s, "Le Voyage", holder(s, "films-a"), offers=[])
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        r = runner.invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
        assert r.exit_code == code, r.output
        return r.output

    assert "in BE,FR (1 earlier row(s) replaced)" in run("holders", "grant", "films-a", "Le Voyage",
                                                          "--territory", "fr,be", "--replace")
    assert "2 offer(s) added" in run("catalog", "offer", "Le Voyage", "--offer", "https://c.example/v",
                                     "--offer", "https://r.example/v", "--kind", "cinema", "--kind", "rental",
                                     "--territory", "FR", "--from", "2026-01-01", "--until", "2026-02-28",
                                     "--until", "-")
    assert "0 offer(s) added, 2 known already" in run(
        "catalog", "offer", "Le Voyage", "--offer", "https://c.example/v", "--offer", "https://r.example/v",
        "--territory", "FR", "--from", "2026-01-01", "--until", "2026-02-28", "--until", "-")
    with Session() as s:
        t = s.scalar(select(Title))
        assert [(r.holder.name, r.territory) for r in t.rights] == [("films-a", "BE,FR")]
        assert [(o.kind, o.valid_until) for o in t.offers] == [(OfferKind.CINEMA, date(2026, 2, 28)),
                                                               (OfferKind.VOD_RENTAL, None)]


def test_a_holder_without_contact_details_leaves_the_configured_notifier_as_complainant(Session) -> None:  # type: ignore[no-untyped-def]
    # A holder the migration made from a rights_owner name: the installation still signs,
    # as before holders existed; it never lends its signatory to someone else's name.
    with Session.begin() as s:
        t = title(s, "Le Voyage", holder(s, "Blender Foundation", legal_name="Blender Foundation"))
        h = add_host(s, language="en")
        add_match(s, t, h, "https://videohost.example/v/1")
        (n,) = queue_notices(s, make_config(), now=T0).notices
        body = " ".join(n.body_text.split())
        assert "rights owned by Blender Foundation" in body
        assert "Complainant: Films du Nord SAS 12 rue de la Paix" in body
        assert "for Films du Nord SAS" in body and "for Blender Foundation" not in body


def test_review_page_says_why_a_match_is_not_notified(engine, Session) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from foundation.config import Config
    from tests.test_hardening_routes import Visitor
    from webapp import sessions
    from webapp.accounts import create_user
    from webapp.app import create_app
    from webapp.sessions import SessionState

    with Session.begin() as s:
        a = holder(s, "films-a")
        t = title(s, "Le Voyage", a, territory="FR")
        us = add_host(s, "tube-us", jurisdiction="US", language="en")
        add_match(s, t, us, "https://tube-us.example/v/1")
        assert queue_notices(s, make_config(), now=T0).notices == []
        state = SessionState()
        sessions.start(s, state, create_user(s, "ana", "a long password 1").id)
    app = create_app(engine, Config(notifier={"legal_name": "Vigie"}), secret_key="k" * 48)
    with TestClient(app) as c:
        page = Visitor(c, state.new_token, state.csrf).request("GET", "/review?state=all", None).text
        assert "not notified to tube-us: no rights holder of title" in page and "has rights in US" in page


def test_admin_page_adds_a_user_of_a_holder(engine, Session) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from foundation.config import Config
    from tests.test_hardening_routes import Visitor
    from webapp import sessions
    from webapp.accounts import create_user
    from webapp.app import create_app
    from webapp.sessions import SessionState

    with Session.begin() as s:
        a = holder(s, "films-a")
        state = SessionState()
        sessions.start(s, state, create_user(s, "root", "a long password 1", "admin").id)
        hid = a.id
    app = create_app(engine, Config(notifier={"legal_name": "Vigie"}), secret_key="k" * 48)
    with TestClient(app) as c:
        v = Visitor(c, state.new_token, state.csrf)
        form = {"username": "ana", "password": "a long password 2", "role": "analyst", "holder": str(hid)}
        assert v.request("POST", "/users", {"form": form}).status_code == 303
        assert v.request("POST", "/users", {"form": {**form, "username": "boss", "role": "admin"}}).status_code == 422
        assert v.request("POST", "/users", {"form": {**form, "username": "x", "holder": "999"}}).status_code == 404
        assert "films-a" in v.request("GET", "/users", None).text
    with Session() as s:
        from db.models import User

        assert {u.username: u.org_id for u in s.scalars(select(User))} == {"root": None, "ana": hid}


def test_no_reminder_once_the_agents_mandate_has_expired(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from notices.dispatch import dispatch
    from notices.verify import verify

    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    with Session.begin() as s:
        a = holder(s, "films-a")
        agency = holder(s, "agence", agent=True, address="1 rue A", email="n@agence.example", signatory="A. Gent",
                        phone="+33 1")
        t = title(s, "Le Voyage", a)
        mandate(s, agency, a, date(2026, 1, 1), DAY + timedelta(days=1))
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"], settings={"grace_hours": 48})
        add_match(s, t, h, f"{base}/live")
        assert len(queue_notices(s, cfg, T0).notices) == 1
    assert len(dispatch(Session, cfg, now=T0).sent) == 1
    pages.set("/live", 200, "<video src='/media/live.mp4'></video>")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=49))  # past the grace, and past the mandate
        assert r.escalations == [] and [u.rsplit("/", 1)[1] for u in r.live] == ["live"]
        assert any(f"expired on {DAY + timedelta(days=1)}" in e for e in r.errors), r.errors
        assert s.scalar(select(func.count()).select_from(Notice)) == 1
    assert len(rec.received) == 1


def test_agents_notice_in_french_quotes_the_mandate(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        alpa = holder(s, "alpa", agent=True, legal_name="ALPA", address="5 rue du Cinéma, Paris",
                      email="n@alpa.example", signatory="L. Bernard", phone="+33 1")
        a = holder(s, "films-a", legal_name="Films A SAS")
        t = title(s, "Le Voyage", a)
        m = mandate(s, alpa, a, date(2026, 1, 1), date(2026, 12, 31))
        h = add_host(s, "tube-fr", jurisdiction="FR", language="fr")
        add_match(s, t, h, "https://tube-fr.example/v/1")
        (n,) = queue_notices(s, make_config(), now=T0).notices
        body = " ".join(n.body_text.split())
        assert "droits détenus par Films A SAS" in body and "Notifiant : ALPA" in body
        assert "agissant pour le compte des ayants droit nommés ci-dessus" in body
        assert f"Films A SAS : mandat n° {m.id}, du 2026-01-01 au 2026-12-31" in body
        assert f"mandat n° {m.id}" in n.body_html and "d" * 64 in n.body_html
