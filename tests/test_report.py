"""The daily report against real databases: sections, CSV rows, escaping, mail, CLI.

``build_world`` makes a small but complete day (matches confirmed, waiting, rejected;
notices sent, held, failed; takedowns removed, overdue; crawl runs) that the web app
tests reuse.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import select

from db.models import (
    Candidate,
    CrawlRun,
    Decision,
    Host,
    ItemState,
    Match,
    MatchFrame,
    Notice,
    NoticeItem,
    NoticeStatus,
    Offer,
    Report,
    ReviewState,
    Role,
    Site,
    Title,
)
from reports.daily import build_report, csv_cell, day_bounds, default_day, mail_report, safe_url
from foundation.config import Config

DAY = date(2026, 3, 10)
HOSTILE = "<script>alert(1)</script>\r\nBcc: victim@example.org"
PARIS = "Europe/Paris"


def at(d: date, hh: int, mm: int = 0) -> datetime:
    """A UTC instant for a Paris wall-clock time (CET, UTC+1, in March before DST)."""
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=timezone.utc) - timedelta(hours=1)


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _match(c: Candidate, t: Title, when: datetime, decision: Decision, score: float, **kw: Any) -> Match:
    return Match(candidate=c, title=t, score=score, matched_s=300.0, offset_s=100.0, speed=1.0,
                 cand_start_s=10.0, cand_end_s=310.0, ref_start_s=110.0, ref_end_s=410.0,
                 decision=decision, created_at=when, media_url=f"{c.page_url}/video.mp4", **kw)


def build_world(session: Any, day: date = DAY) -> dict[str, Any]:
    """One day of activity around ``day``; returns the rows by name."""
    from webapp.accounts import create_user

    w: dict[str, Any] = {}
    bunny = Title(title="Big Buck Bunny", year=2008, rights_owner="Blender Foundation")
    bunny.offers.append(Offer(url="https://vod.example/films/big-buck-bunny", provider="VOD Maison"))
    calais = Title(title="Calais 1906", year=1906)
    calais.offers.append(Offer(url="https://vod.example/films/calais", provider="Cinémathèque VOD"))
    links = Site(name="linkz", start_urls=["http://linkz.test/"], schedule="6h")
    tubes = Site(name="tubez", start_urls=["http://tubez.test/"], schedule="1d")
    vidhost = Host(name="vidhost", domain_patterns=["vidhost.test"], abuse_contact="abuse@vidhost.test")
    locker = Host(name="lockerz", domain_patterns=["lockerz.test"], abuse_contact="abuse@lockerz.test",
                  needs_approval=True)
    session.add_all([bunny, calais, links, tubes, vidhost, locker])
    session.flush()

    def cand(n: int, site: Site, host: Host, title_text: str, url: str | None = None) -> Candidate:
        c = Candidate(canonical_url=f"http://{site.name}.test/watch/{n}",
                      page_url=url or f"http://{site.name}.test/watch/{n}", site=site, host=host,
                      title_text=title_text, first_seen=at(day, 8), last_seen=at(day, 8))
        session.add(c)
        return c

    c_new = cand(1, links, vidhost, "Big Buck Bunny FULL MOVIE hd")
    c_hostile = cand(2, links, vidhost, HOSTILE)
    c_formula = cand(3, tubes, locker, "=HYPERLINK(\"http://evil.test\",\"click\")", url="javascript:alert(2)")
    c_rejected = cand(4, tubes, locker, "Bunny trailer reaction")
    c_old = cand(5, links, vidhost, "Big Buck Bunny (old upload)")
    c_live = cand(6, tubes, locker, "Calais 1906 restored")
    session.flush()

    w["confirmed"] = _match(c_new, bunny, at(day, 9, 30), Decision.CONFIRMED, 0.97)
    w["review_hostile"] = _match(c_hostile, bunny, at(day, 10), Decision.REVIEW, 0.71)
    w["review_formula"] = _match(c_formula, calais, at(day, 11), Decision.REVIEW, 0.64)
    w["rejected"] = _match(c_rejected, bunny, at(day, 12), Decision.REVIEW, 0.55,
                           review=ReviewState.REJECTED, review_reason="a reaction video, fair use")
    w["old"] = _match(c_old, bunny, at(day - timedelta(days=4), 9), Decision.CONFIRMED, 0.95)
    w["live"] = _match(c_live, calais, at(day - timedelta(days=6), 9), Decision.CONFIRMED, 0.93)
    session.add_all([w[k] for k in ("confirmed", "review_hostile", "review_formula", "rejected", "old", "live")])
    session.flush()
    session.add_all([
        MatchFrame(match_id=w["confirmed"].id, ref_t=260.0, cand_t=160.0,
                   ref_jpeg=jpeg((200, 30, 30)), cand_jpeg=jpeg((190, 40, 30))),
        MatchFrame(match_id=w["review_hostile"].id, ref_t=260.0, cand_t=160.0,
                   ref_jpeg=jpeg((30, 30, 200)), cand_jpeg=None, error="candidate: cannot decode"),
    ])

    # The old copy was notified and taken down two days before: today's is a re-upload.
    n_old = Notice(host=vidhost, regime="dmca", template="dmca_en", language="en",
                   recipient="abuse@vidhost.test", status=NoticeStatus.SENT,
                   created_at=at(day - timedelta(days=4), 10), sent_at=at(day - timedelta(days=4), 10))
    n_old.items.append(NoticeItem(match=w["old"], url=c_old.page_url, state=ItemState.REMOVED,
                                  removed_at=at(day - timedelta(days=3), 16)))
    n_today = Notice(host=vidhost, regime="dmca", template="dmca_en", language="en",
                     recipient="abuse@vidhost.test", status=NoticeStatus.SENT,
                     created_at=at(day, 9, 40), sent_at=at(day, 9, 45))
    n_today.items.append(NoticeItem(match=w["confirmed"], url=c_new.page_url, state=ItemState.REMOVED,
                                    removed_at=at(day, 15, 45)))
    n_overdue = Notice(host=locker, regime="lcen", template="lcen_fr", language="fr",
                       recipient="abuse@lockerz.test", status=NoticeStatus.SENT,
                       created_at=at(day - timedelta(days=6), 10), sent_at=at(day - timedelta(days=6), 10))
    n_overdue.items.append(NoticeItem(match=w["live"], url=c_live.page_url, state=ItemState.LIVE))
    n_held = Notice(host=locker, regime="lcen", template="lcen_fr", language="fr",
                    recipient="abuse@lockerz.test", status=NoticeStatus.AWAITING_APPROVAL,
                    subject="Notification LCEN", created_at=at(day, 11),
                    body_text=f"Madame, Monsieur,\nLa page « {HOSTILE} » reproduit notre film.",
                    body_html=f"<p>La page <b>{HOSTILE}</b></p><img src=\"http://tracker.test/p.gif\">")
    n_failed = Notice(host=vidhost, regime="dmca", template="dmca_en", language="en",
                      recipient="abuse@vidhost.test", status=NoticeStatus.FAILED, attempts=6,
                      last_error="550 mailbox unavailable", created_at=at(day, 8))
    session.add_all([n_old, n_today, n_overdue, n_held, n_failed])
    w.update(n_old=n_old, n_today=n_today, n_overdue=n_overdue, n_held=n_held, n_failed=n_failed)

    session.add(CrawlRun(site=links, started_at=at(day, 6), finished_at=at(day, 6, 20), status="finished",
                         pages=42, candidates_new=3, errors=1, error_log=["HTTP 500 on http://linkz.test/p/7"]))
    session.add(CrawlRun(site=links, started_at=at(day, 12), finished_at=at(day, 12, 15), status="finished",
                         pages=40, candidates_new=0, errors=0))
    w["admin"] = create_user(session, "alice", "correct horse battery", Role.ADMIN)
    w["analyst"] = create_user(session, "bob", "analyst password 1", Role.ANALYST)
    w.update(bunny=bunny, calais=calais, links=links, tubes=tubes, vidhost=vidhost, locker=locker)
    session.flush()
    return w


def _config(**kw: Any) -> Config:
    return Config(timezone=PARIS, **kw)


def _read_csv(p: Path) -> list[dict[str, str]]:
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_day_bounds_and_default_day() -> None:
    cfg = _config()
    # 23:30 UTC on the 10th is already the 11th in Paris: yesterday there is the 10th.
    assert default_day(cfg, datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc)) == DAY
    assert default_day(cfg, datetime(2026, 3, 10, 22, 30, tzinfo=timezone.utc)) == date(2026, 3, 9)
    start, end = day_bounds(date(2026, 3, 29), ZoneInfo(PARIS))
    assert end - start == timedelta(hours=23)  # the spring DST change


def test_safe_url_and_csv_cell() -> None:
    assert safe_url("https://a.test/x?y=1") == "https://a.test/x?y=1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "http://a.test/\r\nx", "", None):
        assert safe_url(bad) is None
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("a\r\nb") == "a b"
    assert csv_cell(3) == 3


def test_report_sections_csv_and_escaping(Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        w = build_world(s)
        ids = {k: w[k].id for k in ("confirmed", "review_hostile", "review_formula", "rejected", "old")}
    with Session.begin() as s:
        out = build_report(s, _config(), DAY, tmp_path / "out")
    html = out.html.read_text(encoding="utf-8")
    assert out.html.name == "vigie-report-2026-03-10.html"
    assert "Vigie daily report · 2026-03-10" in html

    # Headline figures.
    assert out.summary["new confirmed matches"] == 1
    assert out.summary["waiting for review"] == 2
    assert out.summary["rejected by staff"] == 1
    assert out.summary["notices sent"] == 1
    assert out.summary["notices awaiting approval"] == 1
    assert out.summary["notices failed"] == 1
    assert out.summary["takedowns"] == 1
    assert out.summary["overdue or escalated"] == 1
    assert out.summary["re-uploads"] == 1
    assert out.summary["crawl runs"] == 2 and out.summary["crawl errors"] == 1

    # The confirmed match, side by side, with offers and page link.
    card = html[html.index(f'id="match-{ids["confirmed"]}"'):]
    card = card[: card.index('<div class="card"', 10) if '<div class="card"' in card[10:] else len(card)]
    assert card.count('src="data:image/jpeg;base64,') == 2
    assert 'href="https://vod.example/films/big-buck-bunny"' in card
    assert 'href="http://linkz.test/watch/1"' in card and "re-upload" in card
    # The waiting ones, the rejected one nowhere in the queue.
    assert f'id="match-{ids["review_hostile"]}"' in html and f'id="match-{ids["review_formula"]}"' in html
    assert f'id="match-{ids["rejected"]}"' not in html
    assert "no candidate frame" in html

    # Hostile page text: escaped, on one line, never a link.
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Bcc: victim@example.org" in html
    assert "\r" not in html
    assert "javascript:" not in html.replace("javascript:alert(2)</div>", "")
    assert not re.search(r"""href\s*=\s*["']?\s*javascript""", html, re.I)
    # Self-contained: nothing loads from anywhere; links are plain anchors.
    assert not re.search(r"<(link|script|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"""\bsrc\s*=\s*(?!["']?data:)""", html, re.I)
    assert not re.search(r"url\(", html, re.I)
    for tag in re.findall(r"<[^>]*\bhref\s*=[^>]*>", html, re.I):
        assert tag.lower().startswith("<a "), tag
    assert "Content-Security-Policy" in html and "<svg" in html

    # Takedowns, compliance, crawl health.
    assert 'href="http://tubez.test/watch/6"' in html and '<span class="tag overdue">overdue</span>' in html
    assert "tubez" in html and "never crawled" in html
    assert "HTTP 500 on http://linkz.test/p/7" in html

    # CSV rows are the same rows.
    rows = _read_csv(out.csv["matches"])
    assert [int(r["match_id"]) for r in rows] == [ids["confirmed"]]
    assert rows[0]["title"] == "Big Buck Bunny" and rows[0]["reupload"] == "1"
    review = {int(r["match_id"]): r for r in _read_csv(out.csv["review"])}
    assert set(review) == {ids["review_hostile"], ids["review_formula"]}
    assert review[ids["review_hostile"]]["page_title"] == "<script>alert(1)</script> Bcc: victim@example.org"
    assert review[ids["review_formula"]]["page_title"].startswith("'=HYPERLINK")
    notices = _read_csv(out.csv["notices"])
    assert sorted(r["section"] for r in notices) == ["awaiting_approval", "failed", "sent"]
    assert [r["urls"] for r in notices if r["section"] == "sent"] == ["1"]
    assert "method" not in html and "0x7f" not in html
    takedowns = {r["status"]: r for r in _read_csv(out.csv["takedowns"])}
    assert set(takedowns) == {"removed", "overdue"}
    assert takedowns["removed"]["hours_to_takedown"] == "6.0"
    hosts = {r["host"]: r for r in _read_csv(out.csv["hosts"])}
    assert hosts["vidhost"]["compliance"] == "1.0" and hosts["vidhost"]["notified"] == "2"
    assert hosts["lockerz"]["compliance"] == "0.0" and hosts["lockerz"]["overdue"] == "1"
    assert float(hosts["vidhost"]["median_hours_to_takedown"]) == pytest.approx((30 + 6) / 2)
    runs = _read_csv(out.csv["crawl_runs"])
    assert [r["pages"] for r in runs] == ["42", "40"]
    sites = {r["site"]: r for r in _read_csv(out.csv["sites"])}
    assert sites["linkz"]["matches_day"] == "1" and sites["linkz"]["matches_30d"] == "2"

    with Session() as s:
        archived = s.scalar(select(Report).where(Report.day == DAY))
        assert archived is not None and archived.html == html
        assert archived.summary["new confirmed matches"] == 1


def test_report_again_replaces_the_archive_and_empty_day(Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        out = build_report(s, _config(), DAY, tmp_path)
    assert out.summary["new confirmed matches"] == 0
    html = out.html.read_text(encoding="utf-8")
    assert "No new confirmed match this day." in html and "Nothing waits for review." in html
    with Session.begin() as s:
        build_world(s)
    with Session.begin() as s:
        out2 = build_report(s, _config(), DAY, tmp_path)
    with Session() as s:
        rows = list(s.scalars(select(Report)))
    assert len(rows) == 1 and rows[0].summary["new confirmed matches"] == 1
    assert out2.html == out.html


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_report_mailed_to_staff(Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiosmtpd.controller import Controller

    class Recorder:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.envelopes.append(envelope)
            return "250 OK"

    handler = Recorder()
    port = _free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        with Session.begin() as s:
            build_world(s)
        cfg = _config(smtp={"host": "127.0.0.1", "port": port, "from": "vigie@producer.test"},
                      report={"staff": ["analyst@producer.test", "boss@producer.test"]})
        with Session.begin() as s:
            out = build_report(s, cfg, DAY, tmp_path)
            to = mail_report(cfg, out, s)
    finally:
        ctl.stop()
    assert to == ["analyst@producer.test", "boss@producer.test"]
    assert len(handler.envelopes) == 1
    env = handler.envelopes[0]
    assert sorted(env.rcpt_tos) == sorted(to)
    import email
    from email import policy

    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["Subject"] == "Vigie daily report 2026-03-10: 1 new matches, 2 to review"
    assert "victim" not in str(msg["Subject"]) and "Bcc" not in msg
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None and "&lt;script&gt;" in html_part.get_content()
    names = sorted(p.get_filename() for p in msg.iter_attachments())
    assert "vigie-report-2026-03-10-matches.csv" in names and len(names) == 8  # search_engines.csv too
    with Session() as s:
        assert s.scalar(select(Report.mailed_to)) == "analyst@producer.test, boss@producer.test"


def test_cli_report(db_url: str, engine: Any, tmp_path: Path) -> None:  # noqa: ARG001 - engine upgrades
    from click.testing import CliRunner

    from db.session import sessionmaker_for
    from vigie.cli import cli

    with sessionmaker_for(engine).begin() as s:
        build_world(s)
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", db_url, "report", "--date", "2026-03-10", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "vigie-report-2026-03-10.html" in res.output
    assert "1 new confirmed matches" in res.output
    assert (tmp_path / "vigie-report-2026-03-10-takedowns.csv").exists()
    bad = runner.invoke(cli, ["--db", db_url, "report", "--date", "10/03/2026", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "bad date" in bad.output


def test_capture_match_frames_from_real_media(Session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    media = Path(__file__).resolve().parents[1] / "demoweb" / "demo_media"
    ref = str(media / "big_buck_bunny_excerpt.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xde\xad" * 500)
    from reports.thumbs import capture_match_frames

    with Session.begin() as s:
        w = build_world(s)
        m = w["confirmed"]
        m.cand_start_s, m.cand_end_s, m.offset_s, m.ref_start_s, m.ref_end_s = 2.0, 8.0, 1.0, 3.0, 9.0
        good = capture_match_frames(s, m, ref, ref)
        assert good.error is None and good.cand_t == pytest.approx(5.0) and good.ref_t == pytest.approx(6.0)
        for data in (good.ref_jpeg, good.cand_jpeg):
            assert data is not None
            img = Image.open(io.BytesIO(data))
            assert img.format == "JPEG" and img.size[0] == 240
        # Different instants of the same film give different pictures.
        assert good.ref_jpeg != good.cand_jpeg
        bad = capture_match_frames(s, w["review_formula"], ref, str(broken))
        assert bad.ref_jpeg is not None and bad.cand_jpeg is None
        assert bad.error and bad.error.startswith("candidate:")
        # Capturing again replaces, never duplicates.
        again = capture_match_frames(s, m, ref, ref)
        assert again.id == good.id
        missing = capture_match_frames(s, w["old"], str(tmp_path / "gone.mp4"), ref)
        assert missing.ref_jpeg is None and "reference: no such file" in (missing.error or "")
