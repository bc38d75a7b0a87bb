"""The notice workflow in the review app: submission tasks shown ready to paste, exported,
marked submitted; failed notices retried; a host's channel changed from the hosts page
rebuilding its pending notices (the app in process, real SQLite/PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from db.models import AuditLog, Host, Notice, NoticeChannel, NoticeStatus
from foundation.config import Config
from notices.build import queue_notices
from tests.test_notices_support import NOTIFIER, T0, add_host, add_match, add_title
from tests.test_web import form_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ADMIN = ("alice", "correct horse battery")


def _config() -> Config:
    return Config(timezone="Europe/Paris", notifier=dict(NOTIFIER),
                  notices={"discover_contacts": False, "allow_loopback": True})


@pytest.fixture
def setup(engine, Session):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from webapp.accounts import create_user
    from webapp.app import create_app

    with Session.begin() as s:
        create_user(s, ADMIN[0], ADMIN[1], "admin")
        t = add_title(s)
        form_host = add_host(s, "formtube", channel=NoticeChannel.WEBFORM,
                             settings={"form_url": "https://formtube.example/dmca"})
        add_match(s, t, form_host, "https://formtube.example/v/<b>1</b>")
        mail_host = add_host(s, "mailtube")
        add_match(s, t, mail_host, "https://mailtube.example/v/9")
        notices = {n.host.name: n.id for n in queue_notices(s, _config(), T0).notices}
        s.get(Notice, notices["mailtube"]).status = NoticeStatus.FAILED
        s.get(Notice, notices["mailtube"]).last_error = "refused by the server: RCPT TO: 550 no such user"
        ids = {"task": notices["formtube"], "failed": notices["mailtube"], "formtube": form_host.id}
    app = create_app(engine, _config(), secret_key="k" * 48)
    with TestClient(app) as client:
        token = form_token(client.get("/login").text)
        r = client.post("/login", data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1],
                                        "next": "/notices"}, follow_redirects=False)
        assert r.status_code == 303
        yield client, ids


def test_submission_task_page_export_and_mark_submitted(setup, Session) -> None:  # type: ignore[no-untyped-def]
    client, ids = setup
    page = client.get("/notices").text
    assert f'id="notice-{ids["task"]}"' in page and "Submission tasks" in page
    assert f'action="/notices/{ids["failed"]}/retry"' in page          # failed: a retry button
    r = client.get(f"/notices/{ids['task']}")
    html = r.text
    assert 'id="task"' in html and 'data-copy="f-urls"' in html and '<script src="/static/copy.js">' in html
    # The hostile URL is data, escaped, in a read-only field ready to copy.
    assert "https://formtube.example/v/&lt;b&gt;1&lt;/b&gt;" in html and "<b>1</b>" not in html
    assert "https://vod.filmsdunord.example/le-voyage" in html and "de bonne foi" in html
    assert 'href="https://formtube.example/dmca"' in html
    exported = client.get(f"/notices/{ids['task']}/export.json")
    assert exported.headers["content-type"].startswith("application/json")
    assert json.loads(exported.text)["infringing_urls"] == ["https://formtube.example/v/<b>1</b>"]
    text = client.get(f"/notices/{ids['task']}/export.txt")
    assert text.headers["content-type"].startswith("text/plain") and "Infringing URLs:" in text.text
    assert client.get("/static/copy.js").status_code == 200

    token = form_token(html)
    r = client.post(f"/notices/{ids['task']}/submitted", data={"csrf_token": token, "ticket_ref": ""},
                    follow_redirects=False)
    assert r.status_code == 422
    r = client.post(f"/notices/{ids['task']}/submitted", data={"csrf_token": token, "ticket_ref": "FT-2026-881"},
                    follow_redirects=True)
    assert r.status_code == 200 and "FT-2026-881" in r.text and "marked submitted" in r.text
    with Session() as s:
        n = s.get(Notice, ids["task"])
        assert n.status is NoticeStatus.SENT and n.ticket_ref == "FT-2026-881" and n.submitted_by == "alice"
        assert all(i.due_at is not None for i in n.items)


def test_retry_a_failed_notice_from_the_page(setup, Session) -> None:  # type: ignore[no-untyped-def]
    client, ids = setup
    token = form_token(client.get(f"/notices/{ids['failed']}").text)
    r = client.post(f"/notices/{ids['failed']}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert r.status_code == 200 and "queued again" in r.text
    with Session() as s:
        assert s.get(Notice, ids["failed"]).status is NoticeStatus.QUEUED
        assert s.scalar(select(AuditLog).where(AuditLog.action == "notice.retry")).actor == "alice"
    r = client.post(f"/notices/{ids['failed']}/retry", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422 and "only failed notices and drafts" in r.text


def test_hosts_page_edits_jurisdiction_and_channel_rebuilds_the_task(setup, Session) -> None:  # type: ignore[no-untyped-def]
    client, ids = setup
    page = client.get("/hosts").text
    assert 'name="jurisdiction"' in page and 'name="removal_pattern"' in page
    token = form_token(page)
    form = {"csrf_token": token, "abuse_contact": "abuse@formtube.example", "channel": "email",
            "jurisdiction": "us", "language": "en", "removal_pattern": r"/removed\.html$"}
    r = client.post(f"/hosts/{ids['formtube']}", data=form, follow_redirects=True)
    assert r.status_code == 200 and "1 pending notice(s) rebuilt" in r.text
    with Session() as s:
        h = s.get(Host, ids["formtube"])
        assert (h.jurisdiction, h.jurisdiction_source, h.channel) == ("US", "staff", NoticeChannel.EMAIL)
        assert h.removal_pattern == r"/removed\.html$"
        old = s.get(Notice, ids["task"])
        assert old.status is NoticeStatus.DISCARDED and "channel webform -> email" in old.last_error
        fresh = s.scalar(select(Notice).where(Notice.host_id == h.id, Notice.status == NoticeStatus.QUEUED))
        # Rebuilt for the host as it is now: email, US jurisdiction so a DMCA notice in English.
        assert fresh.regime == "dmca" and fresh.language == "en" and fresh.recipient == "abuse@formtube.example"
    bad = {**form, "removal_pattern": "(oops"}
    r = client.post(f"/hosts/{ids['formtube']}", data=bad, follow_redirects=False)
    assert r.status_code == 422
    # An empty jurisdiction is "unknown": guessed again (ccTLD, language, default) later.
    r = client.post(f"/hosts/{ids['formtube']}", data={**form, "jurisdiction": ""}, follow_redirects=True)
    assert r.status_code == 200 and "rebuilt" not in r.text        # same channel and contact
    with Session() as s:
        h = s.get(Host, ids["formtube"])
        assert (h.jurisdiction, h.jurisdiction_source) == (None, None)
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "host.update")).all()[-1]
        assert audit.before["jurisdiction"] == "US" and audit.after["jurisdiction"] is None


def test_public_pages_only_for_published_titles(setup, Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import date, timedelta

    from db.models import Title
    from webapp.public import export_static

    client, _ = setup
    with Session.begin() as s:
        voyage = s.scalar(select(Title))
        assert voyage.published is False          # new titles start unpublished
        released = Title(title="Sorti en salle", year=2025, published=True)
        future = Title(title="Pas encore sorti", year=2027, published=True,
                       publish_from=date.today() + timedelta(days=30))
        s.add_all([released, future])
        s.flush()
        ids = {"voyage": voyage.id, "released": released.id, "future": future.id}
    index = client.get("/public/").text
    assert "Sorti en salle" in index and "Le Voyage" not in index and "Pas encore sorti" not in index
    assert client.get(f"/public/titles/{ids['released']}").status_code == 200
    for key in ("voyage", "future"):
        assert client.get(f"/public/titles/{ids[key]}").status_code == 404
        assert client.get(f"/public/titles/{ids[key]}/poster.jpg").status_code == 404
    with Session() as s:
        names = sorted(p.name for p in export_static(s, _config(), tmp_path / "pub"))
    assert f"title-{ids['released']}.html" in names
    assert f"title-{ids['voyage']}.html" not in names and f"title-{ids['future']}.html" not in names
    assert "Le Voyage" not in (tmp_path / "pub" / "index.html").read_text()

    # The admin publishes it from the titles page, from a date that has come.
    page = client.get("/titles").text
    assert "unpublished" in page
    r = client.post(f"/titles/{ids['voyage']}/publish",
                    data={"csrf_token": form_token(page), "published": "on", "publish_from": "2020-01-01"},
                    follow_redirects=True)
    assert r.status_code == 200 and "published from 2020-01-01" in r.text
    assert client.get(f"/public/titles/{ids['voyage']}").status_code == 200
    r = client.post(f"/titles/{ids['voyage']}/publish", data={"csrf_token": form_token(page)},
                    follow_redirects=True)
    assert "unpublished" in r.text and client.get(f"/public/titles/{ids['voyage']}").status_code == 404
    r = client.post(f"/titles/{ids['voyage']}/publish",
                    data={"csrf_token": form_token(page), "published": "on", "publish_from": "someday"},
                    follow_redirects=False)
    assert r.status_code == 422
    with Session() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "title"))]
    assert actions == ["title.publish", "title.unpublish"]


def test_cli_publish_and_unpublish(Session, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from db.models import Title
    from vigie.cli import cli

    with Session.begin() as s:
        tid = add_title(s).id

    def vigie(*args: str) -> str:
        res = CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    assert "unpublished" in vigie("catalog", "list")
    assert "published from 2026-05-01" in vigie("catalog", "publish", str(tid), "--from", "2026-05-01")
    listed = json.loads(vigie("catalog", "list", "--json"))
    assert (listed[0]["published"], listed[0]["publish_from"]) == (True, "2026-05-01")
    assert "unpublished" in vigie("catalog", "unpublish", str(tid))
    with Session() as s:
        t = s.get(Title, tid)
        assert t.published is False and t.publish_from is None
