"""Notices as files for other systems: the search engines' daily bulk delisting CSV (one
row per URL with the work described and its authorised example), Lumen's submission JSON,
the ``vigie notices export`` command and the notices stage writing the day's files."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from db.models import Notice, NoticeStatus
from notices.build import make_notice
from notices.exports import DELISTING_COLUMNS, lumen_notice, write_delisting
from notices.hosts import Contact
from notices.regimes import DELISTING, DMCA
from notices.render import Target
from stages.context import Context
from stages.table import run_stage
from tests.test_notices_support import (  # noqa: F401
    NOTIFIER, T0, add_host, add_match, add_title, machine_documents_valid, make_config, write_config_file,
)
from vigie.cli import cli

PIRATE = "https://free-moviez.example/film/le-voyage"


def _delisting(s, engine, pirate, matches, *, now=T0, status=None):  # type: ignore[no-untyped-def]
    """A delisting request as verification queues it: to the engine, about the pirate host."""
    n = make_notice(s, make_config(), host=engine, targets=[Target.page(m) for m in matches], kind="delisting",
                    regime=DELISTING, language=engine.language,
                    contact=Contact(engine.abuse_contact, "configured"), now=now, about_host=pirate)
    if status is not None:
        n.status = status
    return n


def _world(s):  # type: ignore[no-untyped-def]
    t = add_title(s)
    pirate = add_host(s, "free-moviez", kind="link_site", jurisdiction="FR")
    google = add_host(s, "google", kind="search_engine", jurisdiction="US", language="en",
                      abuse_contact="removals@google.example")
    bing = add_host(s, "bing", kind="search_engine", jurisdiction="FR", language="fr",
                    abuse_contact="removals@bing.example")
    m1 = add_match(s, t, pirate, PIRATE)
    m2 = add_match(s, t, pirate, PIRATE + "-hd")
    return t, pirate, google, bing, m1, m2


def _rows(path):  # type: ignore[no-untyped-def]
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_delisting_file_per_engine_per_day_one_row_per_url(Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t, pirate, google, bing, m1, m2 = _world(s)
        evil = add_title(s, "=HYPERLINK(\"http://evil.example\")", offers=[("https://vod.example/x", "*")])
        m3 = add_match(s, evil, pirate, PIRATE + "-evil")
        _delisting(s, google, pirate, [m1, m2])
        _delisting(s, google, pirate, [m2, m3], now=T0 + timedelta(hours=2))   # m2 again: one row
        _delisting(s, bing, pirate, [m1])
        _delisting(s, bing, pirate, [m2], status=NoticeStatus.AWAITING_APPROVAL)  # not approved: left out
        _delisting(s, google, pirate, [m1], now=T0 + timedelta(days=1))          # another day
        out = write_delisting(s, NOTIFIER, tmp_path, T0.date())
    assert sorted(p.name for p in out.files) == ["delisting-bing-2026-03-02.csv", "delisting-google-2026-03-02.csv"]
    assert out.rows == 4 and out.engines == ["bing", "google"]
    google_rows = _rows(tmp_path / "delisting-google-2026-03-02.csv")
    assert list(google_rows[0]) == list(DELISTING_COLUMNS)
    assert [r["infringing_url"] for r in google_rows] == [PIRATE, PIRATE + "-hd", PIRATE + "-evil"]
    first = google_rows[0]
    assert first["work_description"].startswith('The film "Le Voyage" (2024), whose rights are owned by Films du Nord SAS')
    # The authorised example for the engine's territory (US), the legitimate offer.
    assert first["authorized_example_url"] == "https://us-stream.example/the-journey"
    assert (first["work_title"], first["work_year"], first["rights_owner"]) == ("Le Voyage", "2024", "Films du Nord SAS")
    assert first["notice_reference"].startswith("VIGIE-") and first["found_at"] == "2026-03-02T06:00:00Z"
    assert (first["match_score"], first["matched_seconds"]) == ("0.97", "412.0")
    # A pirate-chosen title never becomes a spreadsheet formula.
    assert google_rows[2]["work_title"] == "'=HYPERLINK(\"http://evil.example\")"
    (bing_row,) = _rows(tmp_path / "delisting-bing-2026-03-02.csv")
    assert bing_row["infringing_url"] == PIRATE
    assert bing_row["authorized_example_url"] == "https://vod.filmsdunord.example/le-voyage"  # FR offer
    # Written again later the same day: replaced whole, same rows.
    with Session() as s:
        again = write_delisting(s, NOTIFIER, tmp_path, T0.date(), engines=["google"])
    assert [p.name for p in again.files] == ["delisting-google-2026-03-02.csv"] and again.rows == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_lumen_json_has_works_urls_and_roles(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t, pirate, google, bing, m1, m2 = _world(s)
        n = make_notice(s, make_config(), host=pirate, matches=[m1, m2], kind="notice", regime=DMCA,
                        language="fr", contact=Contact("abuse@free-moviez.example", "configured"), now=T0)
        n.status, n.sent_at = NoticeStatus.SENT, T0 + timedelta(minutes=5)
        doc = lumen_notice(n, NOTIFIER)["notice"]
    assert doc["type"] == "DMCA" and doc["title"].startswith("DMCA 17 U.S.C. 512(c)(3) to free-moviez: Le Voyage (2024)")
    assert doc["date_sent"] == "2026-03-02" and doc["language"] == "fr" and doc["jurisdiction_list"] == "FR"
    (work,) = doc["works_attributes"]
    assert work["kind"] == "movie" and work["description"] == "Le Voyage (2024)"
    assert work["copyrighted_urls_attributes"] == [{"url": "https://vod.filmsdunord.example/le-voyage"}]
    assert work["infringing_urls_attributes"] == [{"url": PIRATE}, {"url": PIRATE + "-hd"}]
    roles = {r["name"]: r["entity_attributes"] for r in doc["entity_notice_roles_attributes"]}
    assert set(roles) == {"recipient", "sender", "principal"}
    assert roles["recipient"] == {"name": "free-moviez", "kind": "organization", "country_code": "FR"}
    assert roles["sender"]["name"] == "Films du Nord SAS" and roles["sender"]["email"] == NOTIFIER["email"]
    assert roles["principal"]["name"] == "Films du Nord SAS"
    # What Lumen publishes carries no phone number or street address.
    flat = json.dumps(doc)
    assert NOTIFIER["phone"] not in flat and "rue de la Paix" not in flat


def test_cli_export_lumen_and_delisting(Session, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config_file(tmp_path / "vigie.toml", 1)
    with Session.begin() as s:
        t, pirate, google, bing, m1, m2 = _world(s)
        _delisting(s, google, pirate, [m1, m2])
        sent = make_notice(s, make_config(), host=pirate, matches=[m1], kind="notice", regime=DMCA, language="en",
                           contact=Contact("abuse@free-moviez.example", "configured"), now=T0)
        sent.status, sent.sent_at = NoticeStatus.SENT, T0
        make_notice(s, make_config(), host=pirate, matches=[m2], kind="notice", regime=DMCA, language="en",
                    contact=Contact("abuse@free-moviez.example", "configured"), now=T0)  # queued, not sent
        sent_id = sent.id

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg), "notices", "export", *args])

    out_dir = tmp_path / "export"
    r = run("--lumen", "--delisting", "--day", "2026-03-02", "--out", str(out_dir), "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [p.rsplit("/", 1)[1] for p in got["lumen"]] == [f"lumen-{sent_id}.json"]
    assert [p.rsplit("/", 1)[1] for p in got["delisting"]] == ["delisting-google-2026-03-02.csv"]
    assert got["delisting_rows"] == 2
    lumen = json.loads((out_dir / f"lumen-{sent_id}.json").read_text())
    assert lumen["notice"]["works_attributes"][0]["infringing_urls_attributes"] == [{"url": PIRATE}]
    r = run("--out", str(out_dir))
    assert r.exit_code == 2 and "--lumen, --delisting" in r.output
    r = run("--delisting", "--engine", "altavista", "--out", str(out_dir))
    assert r.exit_code == 1 and "no search-engine host named altavista" in r.output
    r = run("--delisting", "--day", "2026-03-05", "--out", str(out_dir))
    assert r.exit_code == 0 and "wrote 0 file(s), 0 URL(s)" in r.output


def test_notices_stage_writes_the_days_delisting_files(Session, engine, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t, pirate, google, bing, m1, m2 = _world(s)
        _delisting(s, google, pirate, [m1])
        # Only the delisting requests: nothing else for the stage to send.
        for n in s.scalars(select(Notice)):
            n.status = NoticeStatus.DRAFT
    cfg = make_config(delisting_dir=str(tmp_path / "delist"))
    with Context.open(db_url, cfg) as ctx:
        ctx.at = T0 + timedelta(hours=1)
        counts = run_stage("notices", ctx)
    assert counts["delisting_files"] == 1
    (row,) = _rows(tmp_path / "delist" / "delisting-google-2026-03-02.csv")
    assert row["infringing_url"] == PIRATE
    # Not configured: nothing written.
    with Context.open(db_url, make_config()) as ctx:
        ctx.at = T0 + timedelta(hours=1)
        assert "delisting_files" not in run_stage("notices", ctx)
