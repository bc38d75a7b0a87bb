"""Verification against a real local HTTP server: removed vs live, checks recorded,
time-to-takedown, escalation (reminder, then upstream and delisting) through the real
SMTP outbox, re-uploads notified again at once, and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import func, select

from db.models import Check, ItemState, Notice, NoticeItem, NoticeStatus
from notices.build import queue_notices
from notices.dispatch import dispatch
from notices.hosts import add_host as register_host
from notices.verify import verify
from tests.test_notices_support import T0, machine_documents_valid, add_host, add_match, add_title, make_config, smtp, web, write_config_file  # noqa: F401
from vigie.cli import cli


def _setup(Session, base: str, cfg):  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"],
                     settings={"grace_hours": 48, "upstream_contact": "abuse@upstream-isp.example"})
        # The host's own removal page, as staff recorded it (page text alone never counts).
        h.removal_pattern = r"<h1>This video has been removed following a copyright claim</h1>"
        for path in ("gone", "live", "says-removed", "media-gone", "flaky"):
            media = [f"{base}/media/{path}.mp4"] if path == "media-gone" else []
            add_match(s, t, h, f"{base}/{path}", media=media)
        register_host(s, "search", kind="search_engine", contact="removals@search.example", language="en")
        queue_notices(s, cfg, T0)
    r = dispatch(Session, cfg, now=T0)
    assert len(r.sent) == 1


def test_verify_records_checks_takedowns_and_escalates(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    _setup(Session, base, cfg)
    pages.set("/live", 200, "<video src='/media/live.mp4'></video>")
    pages.set("/says-removed", 200, "<h1>This video has been removed following a copyright claim</h1>")
    pages.set("/media-gone", 200, "<video src='/media/media-gone.mp4'></video>")
    pages.set("/flaky", 503, "busy")
    # /gone and /media/media-gone.mp4 are 404.

    t1 = T0 + timedelta(hours=5)
    with Session.begin() as s:
        r = verify(s, cfg, now=t1)
        assert r.checked == 5
        assert sorted(u.rsplit("/", 1)[1] for u, _ in r.removed) == ["gone", "media-gone", "says-removed"]
        assert all(abs(h - 5.0) < 1e-6 for _, h in r.removed)
        assert [u.rsplit("/", 1)[1] for u in r.live] == ["live"]
        assert [u.rsplit("/", 1)[1] for u in r.inconclusive] == ["flaky"]
        assert r.escalations == []               # not overdue yet
        states = {i.url.rsplit("/", 1)[1]: i.state for i in s.scalars(select(NoticeItem))}
        assert states == {"gone": ItemState.REMOVED, "live": ItemState.LIVE, "says-removed": ItemState.REMOVED,
                          "media-gone": ItemState.REMOVED, "flaky": ItemState.NOTIFIED}
        assert s.scalar(select(func.count()).select_from(Check)) == 5
        assert "/" + "gone" in pages.hits and "/media/media-gone.mp4" in pages.hits

    # Past the 48 h grace: the live URL gets a reminder to the host, threaded on the notice.
    t2 = T0 + timedelta(hours=49)
    with Session.begin() as s:
        r = verify(s, cfg, now=t2)
        (rid,) = r.escalations
        reminder = s.get(Notice, rid)
        assert reminder.kind == "reminder" and [i.url for i in reminder.items] == [f"{base}/live"]
        assert reminder.recipient == "abuse@tube.example"
        # Its ACNS names the notice it follows up (History), as the desk's ticket knows it.
        parent = s.get(Notice, reminder.parent_id)
        parent_ref = parent.subject[1:].split("]")[0]
        assert f'<History><Notice ID="{parent_ref}" TimeStamp="' in reminder.acns_xml
        # The flaky one was never shown to be live: no escalation on an inconclusive check.
    r = dispatch(Session, cfg, now=t2)
    assert r.sent == [rid]
    msg = rec.received[-1].message
    first = rec.received[0].message
    assert msg["In-Reply-To"] == first["Message-ID"]
    assert "RELANCE" in str(msg["Subject"])

    # Still live after the next deadline: upstream provider and search engines.
    t3 = t2 + timedelta(hours=49)
    with Session.begin() as s:
        r = verify(s, cfg, now=t3)
        kinds = sorted((s.get(Notice, i).kind, s.get(Notice, i).recipient, s.get(Notice, i).regime)
                       for i in r.escalations)
        assert kinds == [("delisting", "removals@search.example", "delisting"),
                         ("upstream", "abuse@upstream-isp.example", "dsa")]
        live_item = s.scalar(select(NoticeItem).where(NoticeItem.url == f"{base}/live",
                                                      NoticeItem.notice.has(kind="notice")))
        assert live_item.state is ItemState.ESCALATED
    r = dispatch(Session, cfg, now=t3)
    assert len(r.sent) == 2
    assert {x.rcpts[0] for x in rec.received[-2:]} == {"removals@search.example", "abuse@upstream-isp.example"}
    delisting = next(x.message for x in rec.received[-2:] if x.rcpts == ["removals@search.example"])
    body = delisting.get_body(("plain",)).get_content()
    assert "https://vod.filmsdunord.example/le-voyage" in body and f"{base}/live" in body

    # Nothing more to escalate: a later run only records checks.
    with Session.begin() as s:
        assert verify(s, cfg, now=t3 + timedelta(days=5)).escalations == []


def test_reupload_after_removal_is_notified_again_at_once(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"])
        add_match(s, t, h, f"{base}/film")
        queue_notices(s, cfg, T0)
    dispatch(Session, cfg, now=T0)
    with Session.begin() as s:
        assert len(verify(s, cfg, now=T0 + timedelta(hours=2)).removed) == 1
    pages.set("/film", 200, "<video src='/x.mp4'></video>")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=3))
        assert r.reuploads == [f"{base}/film"] and len(r.escalations) == 1
        again = s.get(Notice, r.escalations[0])
        assert again.kind == "notice" and again.status is NoticeStatus.QUEUED
    assert len(dispatch(Session, cfg, now=T0 + timedelta(hours=3)).sent) == 1
    assert len(rec.received) == 2
    # The new notice is the one tracked from now on; no second re-upload notice.
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=4))
        assert r.reuploads == [] and r.escalations == [] and r.live == [f"{base}/film"]


def test_cli_hosts_notices_and_verify(Session, db_url: str, web, smtp, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    rec, port = smtp
    cfg = write_config_file(tmp_path / "vigie.toml", port, allow_loopback=True, discover_contacts=False)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg), *args], catch_exceptions=False)

    r = run("hosts", "add", "tube", "--domain", "127.0.0.1", "--contact", "abuse@tube.example",
            "--jurisdiction", "US", "--language", "en", "--kind", "video_host", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["created"] is True
    r = run("hosts", "add", "bad", "--contact", "x@y\r\nBcc: z@w")
    assert r.exit_code == 1 and "plain email address" in r.output
    r = run("hosts", "list")
    assert "tube" in r.output and "US/en" in r.output
    with Session.begin() as s:
        from db.models import Host

        t = add_title(s)
        add_match(s, t, s.scalar(select(Host).where(Host.name == "tube")), f"{base}/v1")
    r = run("notices", "send", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert len(out["queued"]) == 1 and out["sent"] == out["queued"]
    assert len(rec.received) == 1 and "DMCA" in str(rec.received[0].message["Subject"])
    r = run("verify", "--json")
    assert r.exit_code == 0 and len(json.loads(r.output)["removed"]) == 1
    r = run("notices", "list", "--json")
    (row,) = json.loads(r.output)
    assert row["status"] == "sent" and row["items"][0]["state"] == "removed"
    assert row["items"][0]["hours_to_takedown"] is not None
    r = run("notices", "approve", str(row["id"]))
    assert r.exit_code == 1 and "not awaiting approval" in r.output
