"""The notice lifecycle as a workflow (issue 16), against real servers on loopback.

* Verification a pirate cannot fool with a sentence: a real HTTP server answers the
  re-checks; only a status, dead media or the host's own removal page count.
* Jurisdiction of hosts met on first sight (ccTLD, page language, configured default),
  the regime it picks; guessed contacts held for staff; expired security.txt ignored.
* Submission tasks for web-form hosts (fields, export, marked submitted, then verified
  and reminded like an email notice); failed notices retried through a real SMTP server
  (aiosmtpd); a host's channel change rebuilding its pending notices.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.hosts import cctld_country, host_for, language_country, note_page_language
from db.models import AuditLog, Host, ItemState, Notice, NoticeChannel, NoticeItem, NoticeStatus
from notices.build import approve_notice, queue_notices
from notices.dispatch import dispatch
from notices.hosts import parse_security_txt, resolve_contact
from notices.regimes import regime_for_host
from notices.verify import verify
from notices.views import pending_work
from notices.workflow import (
    export_task,
    mark_submitted,
    requeue_host,
    retry_notice,
    submission_fields,
)
from foundation.errors import InvalidInput, NoticeInvalid
from tests.test_notices_support import T0, add_host, add_match, add_title, make_config, smtp, web  # noqa: F401

# --------------------------------------------------------------------------- verification


def _sent_notice(Session, cfg, base: str, pages: dict[str, list[str]], **host_kw):  # type: ignore[no-untyped-def]
    """One sent notice to host "tube" (on 127.0.0.1) for each page path -> its media URLs."""
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"], **host_kw)
        for path, media in pages.items():
            add_match(s, t, h, f"{base}{path}", media=[f"{base}{m}" for m in media])
        queue_notices(s, cfg, T0)
    assert len(dispatch(Session, cfg, now=T0).sent) == 1


def test_verification_needs_evidence_a_pirate_cannot_write(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    _sent_notice(Session, cfg, base, {
        "/footer": ["/m/footer.mp4"], "/gone": [], "/media-dead": ["/m/d1.mp4", "/m/d2.mp4"],
        "/one-alive": ["/m/a1.mp4", "/m/a2.mp4"], "/removal-page": [],
    }, removal_pattern=r"/content-removed\?id=\d+$")
    footer = ("<video src='/m/footer.mp4'></video><footer>DMCA: send any copyright infringement notice "
              "to dmca@pirate.example. This video has been removed? No.</footer>")
    pages.set("/footer", 200, footer)
    pages.set("/m/footer.mp4", 200, "video bytes")
    pages.set("/gone", 410, "gone")
    pages.set("/media-dead", 200, "<video src='/m/d1.mp4'></video><video src='/m/d2.mp4'></video>")
    # /m/d1.mp4 and /m/d2.mp4 are 404.
    pages.set("/one-alive", 200, "<video src='/m/a1.mp4'></video>")
    pages.set("/m/a2.mp4", 200, "still here")
    # The host's own page for removed content; its removal pattern (a URL pattern at first)
    # does not match it yet.
    pages.set("/removal-page", 200, "<h1>Ce contenu a été retiré</h1>")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=2))
        removed = sorted(u.rsplit("/", 1)[1] for u, _ in r.removed)
        live = sorted(u.rsplit("/", 1)[1] for u in r.live)
    # Words are no evidence on their own: the footer's "copyright infringement notice" and
    # "has been removed", and the removal page's "retiré" before staff recorded it.
    assert removed == ["gone", "media-dead"]
    assert live == ["footer", "one-alive", "removal-page"]
    with Session.begin() as s:
        host = s.scalar(select(Host).where(Host.name == "tube"))
        host.removal_pattern = r"<h1>Ce contenu a été retiré</h1>"
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=3))
        assert [u.rsplit("/", 1)[1] for u, _ in r.removed] == ["removal-page"]
        states = {i.url.rsplit("/", 1)[1]: i.state for i in s.scalars(select(NoticeItem))}
    assert states == {"footer": ItemState.LIVE, "gone": ItemState.REMOVED, "media-dead": ItemState.REMOVED,
                      "one-alive": ItemState.LIVE, "removal-page": ItemState.REMOVED}


def test_removal_pattern_is_checked_when_set(Session) -> None:  # type: ignore[no-untyped-def]
    from notices.hosts import add_host as register

    with Session.begin() as s:
        with pytest.raises(InvalidInput, match="not a regular expression"):
            register(s, "h1", removal_pattern="(unclosed")
        with pytest.raises(InvalidInput, match="every page"):
            register(s, "h2", removal_pattern=".*")
        h, _ = register(s, "h3", removal_pattern=r"  video-removed  ")
        assert h.removal_pattern == "video-removed"


# --------------------------------------------------------------------------- jurisdiction


def test_jurisdiction_of_a_host_met_on_first_sight(Session) -> None:  # type: ignore[no-untyped-def]
    assert cctld_country("https://films.streaming-pirate.fr/x") == "FR"
    assert cctld_country("https://a.example.co.uk/") == "GB"
    assert cctld_country("https://pirate.com/x") is None
    assert cctld_country("https://pirate.io/x") is None       # a ccTLD sold as a generic name
    assert cctld_country("http://127.0.0.1:8080/x") is None
    assert language_country("de") == "DE" and language_country("fr-CA") == "CA"
    assert language_country("en") is None and language_country("es") is None
    with Session.begin() as s:
        fr = host_for(s, "https://films.streaming-pirate.fr/x")
        assert (fr.jurisdiction, fr.jurisdiction_source, fr.language) == ("FR", "cctld", "fr")
        assert regime_for_host(fr).name == "dsa"
        com = host_for(s, "https://pirate.com/x")
        assert com.jurisdiction is None and regime_for_host(com).name == "dmca"
        # A page in German locates a .com site; a ccTLD is not overridden by a page language.
        assert note_page_language(com, "de-DE")
        assert (com.jurisdiction, com.jurisdiction_source) == ("DE", "language")
        assert regime_for_host(com).name == "dsa"
        assert not note_page_language(fr, "de")
        assert fr.jurisdiction == "FR"
        # Staff's word is final.
        com.jurisdiction, com.jurisdiction_source = "US", "staff"
        assert not note_page_language(com, "fr")
        assert com.jurisdiction == "US"


def test_default_jurisdiction_and_page_language_when_notices_are_built(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(default_jurisdiction="FR")
    with Session.begin() as s:
        t = add_title(s)
        m1 = add_match(s, t, None, "https://nowhere-links.com/film")
        m2 = add_match(s, t, None, "https://deutsch-links.net/film")
        m2.candidate.evidence = {**m2.candidate.evidence, "language": "de"}
        add_host(s, "nowhere", domain_patterns=["nowhere-links.com"], jurisdiction=None, language="en")
        add_host(s, "deutsch", domain_patterns=["deutsch-links.net"], jurisdiction=None, language="en")
        res = queue_notices(s, cfg, T0)
        by_host = {n.host.name: n for n in res.notices}
        assert by_host["nowhere"].host.jurisdiction_source == "default" and by_host["nowhere"].regime == "dsa"
        assert by_host["deutsch"].host.jurisdiction == "DE"
        assert by_host["deutsch"].host.jurisdiction_source == "language"
        assert m1.id and m2.id


# --------------------------------------------------------------------------- contacts


def test_a_guessed_contact_waits_for_staff_unless_allowed(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        add_match(s, t, None, "https://guess-me.example/film")
        (n,) = queue_notices(s, make_config(), T0).notices
        assert (n.recipient, n.recipient_source) == ("abuse@guess-me.example", "guess")
        assert n.status is NoticeStatus.AWAITING_APPROVAL and "guessed contact" in n.last_error
        approve_notice(s, n.id, actor="claire")
        assert n.status is NoticeStatus.QUEUED
    with Session.begin() as s:
        t = add_title(s, "Other")
        add_match(s, t, None, "https://guess-too.example/film")
        (n,) = queue_notices(s, make_config(allow_guessed_contacts=True), T0).notices
        assert n.recipient_source == "guess" and n.status is NoticeStatus.QUEUED


def test_a_guessed_contact_queued_earlier_is_held_before_sending(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    with Session.begin() as s:
        t = add_title(s)
        add_match(s, t, None, "https://guess-me.example/film")
        (n,) = queue_notices(s, make_config(port, allow_guessed_contacts=True), T0).notices
        nid = n.id
    r = dispatch(Session, make_config(port), now=T0)
    assert r.held == [nid] and r.sent == [] and rec.received == []


def test_security_txt_past_its_expiry_is_not_used(Session, web) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    body = "Contact: mailto:security@tube.example\nExpires: {}\n"
    assert parse_security_txt(body.format("2020-01-01T00:00:00Z"), now=T0) is None
    assert parse_security_txt(body.format("2027-01-01T00:00:00Z"), now=T0) == "security@tube.example"
    with Session.begin() as s:
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"], abuse_contact=None)
        pages.set("/.well-known/security.txt", 200, body.format("2020-01-01T00:00:00Z"))
        c = resolve_contact(h, origin=f"{base}/film", discover=True, timeout=3, allow_loopback=True, now=T0)
        assert c.address is None and c.source == "none"  # an IP host: no abuse@ guess either
        pages.set("/.well-known/security.txt", 200, body.format("2026-03-03T00:00:00Z"))
        c = resolve_contact(h, origin=f"{base}/film", discover=True, timeout=3, allow_loopback=True, now=T0)
        assert (c.address, c.source) == ("security@tube.example", "security.txt")
        from notices.hosts import remember_contact

        remember_contact(h, c)
        # Remembered until the file's expiry, read again after it (now expired: not used).
        pages.set("/.well-known/security.txt", 200, body.format("2026-03-03T00:00:00Z"))
        hits = len(pages.hits)
        assert resolve_contact(h, origin=f"{base}/film", discover=True, timeout=3, allow_loopback=True,
                               now=T0).address == "security@tube.example"
        assert len(pages.hits) == hits
        later = resolve_contact(h, origin=f"{base}/film", discover=True, timeout=3, allow_loopback=True,
                                now=T0 + timedelta(days=2))
        assert later.address is None and len(pages.hits) == hits + 1


# --------------------------------------------------------------------------- submission tasks


def test_web_form_host_gets_a_submission_task_verified_and_reminded(Session, web) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    cfg = make_config()
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"], channel=NoticeChannel.WEBFORM,
                     settings={"form_url": "https://tube.example/report-abuse", "grace_hours": 24})
        add_match(s, t, h, f"{base}/film")
        (n,) = queue_notices(s, cfg, T0).notices
        assert n.status is NoticeStatus.DRAFT and n.last_error.startswith("submission task")
        nid = n.id
        assert [x.id for x in pending_work(s)["tasks"]] == [nid]
        f = submission_fields(n, cfg)
        assert f["infringing_urls"] == [f"{base}/film"]
        assert f["form_url"] == "https://tube.example/report-abuse"
        assert f["works"][0]["title"] == "Le Voyage"
        assert "https://vod.filmsdunord.example/le-voyage" in f["authorised_urls"]
        assert "https://us-stream.example/the-journey" not in f["authorised_urls"]  # FR host: FR offers
        assert "de bonne foi" in f["statements"]
        assert f["complainant"]["email"] == "rights@filmsdunord.example"
        assert json.loads(export_task(n, cfg, "json"))["notice_id"] == nid
        text = export_task(n, cfg, "text")
        assert f"{base}/film" in text and "Authorised copies" in text and "de bonne foi" in text
        with pytest.raises(InvalidInput):
            mark_submitted(s, cfg, nid, "  ", actor="claire")
    # Nothing sends a task by itself.
    r = dispatch(Session, cfg, now=T0)
    assert r.sent == [] and r.failed == []
    with Session.begin() as s:
        n = mark_submitted(s, cfg, nid, "TUBE-4711", actor="claire", now=T0 + timedelta(hours=1))
        assert n.status is NoticeStatus.SENT and n.ticket_ref == "TUBE-4711" and n.submitted_by == "claire"
        assert n.items[0].due_at is not None
        audit = s.scalar(select(AuditLog).where(AuditLog.action == "notice.submit"))
        assert audit.actor == "claire" and audit.after["ticket_ref"] == "TUBE-4711"
        with pytest.raises(NoticeInvalid):
            mark_submitted(s, cfg, nid, "again", actor="claire")
    pages.set("/film", 200, "<video src='/v.mp4'></video>")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=2))
        assert r.live == [f"{base}/film"] and r.escalations == []
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=26))
        (rid,) = r.escalations
        reminder = s.get(Notice, rid)
        # The reminder is a submission task too, threaded on the submitted notice.
        assert reminder.kind == "reminder" and reminder.parent_id == nid
        assert reminder.status is NoticeStatus.DRAFT and reminder.last_error.startswith("submission task")
    pages.set("/film", 410, "gone")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=27))
        assert [u for u, _ in r.removed] == [f"{base}/film"]


def test_failed_notice_is_retried_and_sent(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port)
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube")
        add_match(s, t, h, "https://tube.example/v/1")
        (n,) = queue_notices(s, cfg, T0).notices
        nid = n.id
    rec.replies["RCPT"] = ["550 5.1.1 mailbox unavailable"]
    r = dispatch(Session, cfg, now=T0)
    assert r.failed == [nid]
    with Session.begin() as s:
        assert [x.id for x in pending_work(s)["failed"]] == [nid]
        again = retry_notice(s, cfg, nid, actor="claire", now=T0 + timedelta(minutes=5))
        assert again.id == nid and again.status is NoticeStatus.QUEUED and again.attempts == 1
        audit = s.scalar(select(AuditLog).where(AuditLog.action == "notice.retry"))
        assert audit.actor == "claire" and audit.before["attempts"] == 1
    r = dispatch(Session, cfg, now=T0 + timedelta(minutes=5))
    assert r.sent == [nid] and len(rec.received) == 1
    with Session.begin() as s:
        n = s.get(Notice, nid)
        assert n.status is NoticeStatus.SENT and n.attempts == 2
        with pytest.raises(NoticeInvalid, match="only failed"):
            retry_notice(s, cfg, nid, actor="claire")


def test_a_channel_change_rebuilds_pending_notices(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port)
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", channel=NoticeChannel.WEBFORM)
        add_match(s, t, h, "https://tube.example/v/1")
        add_match(s, t, h, "https://tube.example/v/2")
        (n,) = queue_notices(s, cfg, T0).notices
        assert n.status is NoticeStatus.DRAFT
        old = n.id
        h.channel = NoticeChannel.EMAIL
        fresh, errors = requeue_host(s, cfg, h, actor="claire", why="channel webform -> email")
        assert errors == [] and len(fresh) == 1
        assert fresh[0].status is NoticeStatus.QUEUED and fresh[0].recipient == "abuse@tube.example"
        assert sorted(i.url for i in fresh[0].items) == ["https://tube.example/v/1", "https://tube.example/v/2"]
        assert s.get(Notice, old).status is NoticeStatus.DISCARDED
        assert f"superseded by notice #{fresh[0].id}" in s.get(Notice, old).last_error
        # Its URLs are notified (by the new notice): the next build adds nothing.
        assert queue_notices(s, cfg, T0).notices == []
    r = dispatch(Session, cfg, now=T0)
    assert len(r.sent) == 1 and rec.received[0].rcpts == ["abuse@tube.example"]


def test_a_draft_without_contact_is_retried_once_staff_set_one(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config()
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"], abuse_contact=None)
        add_match(s, t, h, "http://127.0.0.1:9/film")
        (n,) = queue_notices(s, cfg, T0).notices
        assert n.status is NoticeStatus.DRAFT and [x.id for x in pending_work(s)["drafts"]] == [n.id]
        h.abuse_contact = "abuse@tube.example"
        fresh = retry_notice(s, cfg, n.id, actor="claire")
        assert fresh.id != n.id and fresh.status is NoticeStatus.QUEUED
        assert fresh.recipient == "abuse@tube.example"


# --------------------------------------------------------------------------- the CLI


def test_cli_task_submitted_retry_status_and_host_edit(Session, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from tests.test_notices_support import write_config_file
    from vigie.cli import cli

    cfg_file = write_config_file(tmp_path / "vigie.toml", 1, discover_contacts=False, allow_loopback=True)

    def vigie(*args: str) -> str:
        res = CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg_file), *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    with Session.begin() as s:
        t = add_title(s)
        form = add_host(s, "formtube", channel=NoticeChannel.WEBFORM)
        mail = add_host(s, "mailtube", channel=NoticeChannel.WEBFORM)
        add_match(s, t, form, "https://formtube.example/v/1")
        add_match(s, t, mail, "https://mailtube.example/v/2")
        ids = {n.host.name: n.id for n in queue_notices(s, make_config(), T0).notices}
    status = json.loads(vigie("status", "--json"))
    assert status["queues"]["notices_draft"] == 2
    assert any(f"notice {ids['formtube']} notice to formtube" in w and "submission task" in w
               for w in status["waiting"])
    assert "waiting for staff:" in vigie("status") and "submission task" in vigie("status")
    text = vigie("notices", "task", str(ids["formtube"]))
    assert "https://formtube.example/v/1" in text and "Authorised copies" in text
    assert json.loads(vigie("notices", "task", str(ids["formtube"]), "--json"))["host"] == "formtube"
    out = vigie("notices", "submitted", str(ids["formtube"]), "--ticket", "FT-1")
    assert "sent (ticket FT-1)" in out
    listed = {n["id"]: n for n in json.loads(vigie("notices", "list", "--json"))}
    assert listed[ids["formtube"]]["ticket_ref"] == "FT-1"
    # mailtube moves to email: its task is rebuilt as a queued mail.
    out = json.loads(vigie("hosts", "add", "mailtube", "--channel", "email", "--jurisdiction", "us", "--json"))
    assert out["jurisdiction_source"] == "staff" and [r["status"] for r in out["rebuilt"]] == ["queued"]
    assert "(staff)" in vigie("hosts", "list")
    with Session() as s:
        assert s.get(Notice, ids["mailtube"]).status is NoticeStatus.DISCARDED
    waiting = json.loads(vigie("status", "--json"))["waiting"]
    assert not any("submission task" in w for w in waiting)
    res = CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg_file), "notices", "retry",
                                   str(ids["formtube"])])
    assert res.exit_code == 1 and "only failed notices and drafts" in res.output


# --------------------------------------------------------------------------- the daily report


def test_report_counts_each_infringing_url_once_and_engines_apart(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]
    from foundation.config import Config
    from notices.hosts import add_host as register
    from reports.daily import collect

    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"],
                     settings={"grace_hours": 24, "upstream_contact": "abuse@upstream.example"})
        add_match(s, t, h, f"{base}/a")
        add_match(s, t, h, f"{base}/b")
        register(s, "search", kind="search_engine", contact="removals@search.example")
        queue_notices(s, cfg, T0)
    dispatch(Session, cfg, now=T0)
    pages.set("/a", 200, "<video src='/a.mp4'></video>")
    pages.set("/b", 200, "<video src='/b.mp4'></video>")
    for hours in (25, 50):  # a reminder, then upstream and delisting
        now = T0 + timedelta(hours=hours)
        with Session.begin() as s:
            verify(s, cfg, now=now)
        dispatch(Session, cfg, now=now)
    assert len(rec.received) == 4  # notice, reminder, upstream, delisting
    with Session() as s:
        kinds = sorted(n.kind for n in s.scalars(select(Notice)))
        assert kinds == ["delisting", "notice", "reminder", "upstream"]
        data = collect(s, Config(timezone="UTC", notices={"grace_hours": 24}), (T0 + timedelta(hours=50)).date())
    assert sorted(r["url"] for r in data.takedowns) == [f"{base}/a", f"{base}/b"]
    assert [hs.host for hs in data.hosts] == ["tube"] and data.hosts[0].notified == 2
    assert data.search_engines == [{"engine": "search", "requests_sent": 1, "urls_requested": 2, "pending": 0,
                                    "last_sent": (T0 + timedelta(hours=50)).strftime("%Y-%m-%d %H:%M")}]
    from reports.daily import csv_rows, render_html

    html = render_html(data)
    hosts_part = html[html.index("Compliance per host"):html.index('id="search-engines"')]
    engines_part = html[html.index('id="search-engines"'):html.index('id="repeat"')]
    assert "<td>tube</td>" in hosts_part and "<td>search</td>" not in hosts_part
    assert "<td>search</td>" in engines_part
    assert len(csv_rows(data)["takedowns"]) == 2


def test_hosts_registered_before_guessing_are_located_when_notified(Session) -> None:  # type: ignore[no-untyped-def]
    # A host auto-registered by an older version (no jurisdiction, no source) is located by
    # its ccTLD when its notice is built, and the ccTLD outranks the page's language.
    with Session.begin() as s:
        t = add_title(s)
        old = Host(name="vieux-liens.fr", domain_patterns=["vieux-liens.fr"], settings={})
        s.add(old)
        m = add_match(s, t, None, "https://vieux-liens.fr/film")
        m.candidate.evidence = {**m.candidate.evidence, "language": "de"}
        (n,) = queue_notices(s, make_config(allow_guessed_contacts=True), T0).notices
        assert (old.jurisdiction, old.jurisdiction_source, old.language) == ("FR", "cctld", "fr")
        assert (n.regime, n.language) == ("dsa", "fr")


def test_page_language_is_read_from_html_lang_then_content_language() -> None:
    from crawlers.spiders.base import page_language

    assert page_language(b'<!doctype html><html class="x" lang="fr-FR"><head>', {}) == "fr-FR"
    assert page_language(b"<html lang=de><body>", {"Content-Language": "en"}) == "de"
    assert page_language(b"<html><body>", {"Content-Language": "it, en"}) == "it"
    assert page_language(b"<html><body>", {"content-language": "<script>"}) is None
    assert page_language(b"<html><body>", {}) is None


def test_removal_page_reached_by_redirect_is_known_by_its_url(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    """Many hosts redirect a removed video to one "unavailable" page: the pattern can name
    that page's address (matched on the URL after redirects), which no pirate page has."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Host302(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/watch/1":
                self.send_response(302)
                self.send_header("Location", "/removed.html?id=1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"<h1>Video unavailable</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Host302)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rec, port = smtp
    cfg = make_config(port)
    try:
        _sent_notice(Session, cfg, base, {"/watch/1": []})
        with Session.begin() as s:
            r = verify(s, cfg, now=T0 + timedelta(hours=1))
            assert r.live == [f"{base}/watch/1"]        # "Video unavailable" alone: no evidence
            s.scalar(select(Host).where(Host.name == "tube")).removal_pattern = r"/removed\.html\?id=\d+$"
        with Session.begin() as s:
            r = verify(s, cfg, now=T0 + timedelta(hours=2))
            assert [u for u, _ in r.removed] == [f"{base}/watch/1"]
    finally:
        server.shutdown()
        server.server_close()


def test_crawl_pipeline_locates_a_known_host_by_its_page_language(Session, db_url) -> None:  # type: ignore[no-untyped-def]
    from scrapy.http import HtmlResponse

    from crawlers.pipeline import DatabasePipeline
    from crawlers.spiders.base import capture

    with Session.begin() as s:
        add_host(s, "links", domain_patterns=["pirate-links.com"], jurisdiction=None, language="en")
    url = "https://pirate-links.com/film/42"
    resp = HtmlResponse(url=url, body=b'<!doctype html><html lang="de-AT"><title>Film</title></html>',
                        headers={"Content-Type": "text/html"})
    pipeline = DatabasePipeline(db_url, None)
    pipeline.open_spider()
    try:
        pipeline.process_item({"page_url": url, "media_urls": [], "evidence": capture(resp),
                               "title_text": "Film"})
    finally:
        pipeline.close_spider()
    with Session() as s:
        h = s.scalar(select(Host).where(Host.name == "links"))
        assert (h.jurisdiction, h.jurisdiction_source) == ("AT", "language")
        from db.models import Candidate

        assert s.scalar(select(Candidate)).evidence["language"] == "de-AT"
