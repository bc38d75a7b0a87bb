"""Dispatch against a real SMTP server (aiosmtpd on loopback): sending, headers and
attachments, retries with backoff, permanent failures, the in-doubt case, rate limits,
concurrent senders, a sender killed mid-batch, a hanging server, and --dry-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import Notice, NoticeStatus
from notices.build import queue_notices
from notices.dispatch import dispatch
from tests.test_notices_support import T0, machine_documents_valid, add_host, add_match, add_title, make_config, smtp, web, write_config_file  # noqa: F401
from vigie.cli import cli


def _seed(Session, n_hosts: int = 1, **host_kw):  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        for i in range(n_hosts):
            h = add_host(s, f"host{i}", **host_kw)
            add_match(s, t, h, f"https://host{i}.example/v/1")
            add_match(s, t, h, f"https://host{i}.example/v/2")


def _queue(Session, cfg) -> list[int]:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        return [n.id for n in queue_notices(s, cfg, T0).notices]


def _statuses(Session) -> dict[int, NoticeStatus]:  # type: ignore[no-untyped-def]
    with Session() as s:
        return {n.id: n.status for n in s.scalars(select(Notice))}


def test_sends_once_with_headers_attachments_and_deadlines(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, grace_hours=24)
    _seed(Session, 2)
    ids = _queue(Session, cfg)
    r = dispatch(Session, cfg, now=T0)
    assert sorted(r.sent) == sorted(ids) and len(rec.received) == 2
    with Session() as s:
        notices = {n.message_id: n for n in s.scalars(select(Notice))}
        for got in rec.received:
            msg = got.message
            n = notices[str(msg["Message-ID"])]
            assert got.rcpts == [n.recipient] and msg["To"] == n.recipient
            assert msg["From"] == "notices@filmsdunord.example"
            assert msg["Auto-Submitted"] == "auto-generated" and msg["Date"]
            body = msg.get_body(("plain",)).get_content()
            assert "https://vod.filmsdunord.example/le-voyage" in body
            atts = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
            acns = ET.fromstring(atts[f"acns-{n.id}.xml"])
            urls = [e.text for e in acns.iter("{http://www.acns.net/ACNS}URL")]
            assert sorted(urls) == sorted(i.url for i in n.items)
            assert n.status is NoticeStatus.SENT and n.attempts == 1
            assert all(i.due_at is not None for i in n.items)
    # Nothing is due any more: a second run sends nothing.
    assert dispatch(Session, cfg, now=T0 + timedelta(hours=1)).sent == []
    assert len(rec.received) == 2


def test_temporary_failures_back_off_then_send_permanent_ones_are_flagged(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, retry_base_s=60, max_attempts=3)
    _seed(Session, 2)
    first, second = _queue(Session, cfg)
    rec.replies["RCPT"] = ["451 4.3.0 try later", "550 5.1.1 no such mailbox"]
    r = dispatch(Session, cfg, now=T0)
    assert r.retry == [first] and r.failed == [second] and rec.received == []
    with Session() as s:
        n = s.get(Notice, first)
        assert n.status is NoticeStatus.QUEUED and "451" in n.last_error
        assert n.next_attempt_at is not None
        bad = s.get(Notice, second)
        assert bad.status is NoticeStatus.FAILED and "550" in bad.last_error
    # Not due yet: the backoff holds it.
    assert dispatch(Session, cfg, now=T0 + timedelta(seconds=30)).sent == []
    r = dispatch(Session, cfg, now=T0 + timedelta(seconds=61))
    assert r.sent == [first] and len(rec.received) == 1
    with Session() as s:
        assert s.get(Notice, first).attempts == 2


def test_gives_up_after_max_attempts_and_says_so(Session) -> None:  # type: ignore[no-untyped-def]
    # Nothing listens on this port: connection refused every time.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = make_config(port, retry_base_s=1, max_attempts=2)
    _seed(Session, 1)
    (nid,) = _queue(Session, cfg)
    assert dispatch(Session, cfg, now=T0).retry == [nid]
    assert dispatch(Session, cfg, now=T0 + timedelta(seconds=5)).failed == [nid]
    with Session() as s:
        n = s.get(Notice, nid)
        assert n.status is NoticeStatus.FAILED and "gave up after 2 attempts" in n.last_error


def test_connection_dropped_after_data_is_in_doubt_and_resent_with_same_message_id(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port)
    _seed(Session, 1)
    (nid,) = _queue(Session, cfg)
    rec.drop_after_data = {1}
    r = dispatch(Session, cfg, now=T0)
    assert r.in_doubt == [nid] and len(rec.received) == 1
    with Session() as s:
        n = s.get(Notice, nid)
        assert n.status is NoticeStatus.IN_DOUBT and n.data_started_at is not None
        mid = n.message_id
    r = dispatch(Session, cfg, now=T0 + timedelta(minutes=5))
    assert r.sent == [nid]
    assert rec.message_ids() == [mid, mid]
    assert rec.received[0].raw.split(b"\r\n\r\n", 1)[1] == rec.received[1].raw.split(b"\r\n\r\n", 1)[1]


def test_rate_limit_per_host(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, max_urls_per_notice=1)
    _seed(Session, 1, settings={"rate_per_hour": 1})
    a, b = _queue(Session, cfg)
    r = dispatch(Session, cfg, now=T0)
    assert r.sent == [a] and r.rate_limited == [b] and len(rec.received) == 1
    with Session() as s:
        n = s.get(Notice, b)
        assert n.status is NoticeStatus.QUEUED and n.attempts == 0
    assert dispatch(Session, cfg, now=T0 + timedelta(minutes=30)).sent == []
    assert dispatch(Session, cfg, now=T0 + timedelta(minutes=61)).sent == [b]


def test_licensed_partner_rechecked_just_before_sending(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port)
    _seed(Session, 1)
    (nid,) = _queue(Session, cfg)
    with Session.begin() as s:
        s.get(Notice, nid).host.licensed_partner = True
    r = dispatch(Session, cfg, now=T0)
    assert r.discarded == [nid] and rec.received == []
    assert _statuses(Session)[nid] is NoticeStatus.DISCARDED


def test_two_senders_at_once_send_each_notice_once(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, max_urls_per_notice=1)
    _seed(Session, 4)
    ids = _queue(Session, cfg)
    results = []
    threads = [threading.Thread(target=lambda: results.append(dispatch(Session, cfg, now=T0)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = sorted(i for r in results for i in r.sent)
    assert sent == sorted(ids)
    assert sorted(rec.message_ids()) == sorted(set(rec.message_ids())) and len(rec.received) == len(ids)


def _vigie(db_url: str, cfg_path: Path, *args: str) -> subprocess.Popen:  # type: ignore[type-arg]
    exe = str(Path(sys.executable).parent / "vigie")
    return subprocess.Popen([exe, "--db", db_url, "--config", str(cfg_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _write_cfg(tmp_path: Path, port: int) -> Path:
    return write_config_file(tmp_path / "vigie.toml", port, smtp_timeout=20, max_urls_per_notice=1,
                             discover_contacts=False)


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_sender_killed_mid_batch_then_restarted_sends_each_notice_once(
        Session, smtp, db_url: str, tmp_path: Path, where: str) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    _seed(Session, 2)                    # 4 URLs, one per notice
    cfg_path = _write_cfg(tmp_path, port)
    # Stop the sender in the middle of the second notice: before DATA, or inside it
    # (the server has the whole message but the sender never hears back).
    if where == "rcpt":
        rec.block_rcpt = {2}
    else:
        rec.block_data = {2}
    proc = _vigie(db_url, cfg_path, "notices", "send")
    try:
        assert rec.blocked.wait(60), proc.communicate(timeout=5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rec.release.set()
    statuses = _statuses(Session)
    assert len(statuses) == 4 and list(statuses.values()).count(NoticeStatus.SENDING) == 1
    # Restarted at once, well within the lease: the dead sender ran on this machine and its
    # process is gone, so its notice is recovered now; nothing is resent blindly.
    from foundation.config import load_config

    from foundation.timeutil import as_utc
    with Session() as s:
        claimed = max(as_utc(n.claimed_at) for n in s.scalars(select(Notice)) if n.claimed_at)
        assert [n.claimed_by.rsplit("/", 1)[1] for n in s.scalars(select(Notice))
                if n.status is NoticeStatus.SENDING] == [str(proc.pid)]
    r = dispatch(Session, load_config(str(cfg_path)), now=claimed + timedelta(seconds=1))
    assert r.recovered == 1
    assert set(_statuses(Session).values()) == {NoticeStatus.SENT}
    with Session() as s:
        expected = sorted(n.message_id for n in s.scalars(select(Notice)))
    got = rec.message_ids()
    assert sorted(set(got)) == expected
    if where == "rcpt":
        assert sorted(got) == expected              # exactly once each
    else:
        dup = [m for m in set(got) if got.count(m) > 1]
        assert len(dup) == 1 and got.count(dup[0]) == 2   # the in-doubt one, same Message-ID


def test_hanging_server_times_out(Session) -> None:  # type: ignore[no-untyped-def]
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)                        # accepts connections, never says a word
    try:
        cfg = make_config(srv.getsockname()[1])
        cfg.smtp["timeout"] = 0.5
        _seed(Session, 1)
        (nid,) = _queue(Session, cfg)
        r = dispatch(Session, cfg, now=T0)
        assert r.retry == [nid]
        with Session() as s:
            assert "timed out" in s.get(Notice, nid).last_error
    finally:
        srv.close()


def test_cli_dry_run_writes_eml_and_changes_nothing(Session, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _seed(Session, 1)
    cfg_path = _write_cfg(tmp_path, 1)
    out = tmp_path / "eml"
    r = CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg_path), "notices", "send", "--dry-run",
                                 "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.eml"))
    assert len(files) == 2 and b"Auto-Submitted: auto-generated" in files[0].read_bytes()
    assert _statuses(Session) == {}
    r = CliRunner().invoke(cli, ["--db", db_url, "notices", "list", "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and r.output.strip() == "[]"


def test_a_claim_is_released_before_its_lease_only_when_its_sender_is_gone_from_this_machine(
        Session) -> None:  # type: ignore[no-untyped-def]
    """A SENDING notice claimed a second ago: kept while its sender runs, or ran on
    another machine or before a reboot (only the lease can tell there); released at
    once when its sender was a process of this machine that is gone."""
    from foundation.claimant import gone, this_process
    from notices.dispatch import recover_stale

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    machine = this_process().rsplit("/", 1)[0]
    host, boot = machine.split("/")
    assert gone(f"{machine}/{dead.pid}") and not gone(this_process())
    claimants = {"running": this_process(), "other machine": f"elsewhere/{boot}/{dead.pid}",
                 "other boot": f"{host}/00000000/{dead.pid}", "none": None, "gone": f"{machine}/{dead.pid}"}
    _seed(Session, len(claimants))  # one notice per host
    ids = _queue(Session, make_config())
    assert len(ids) == len(claimants)
    with Session.begin() as s:
        for nid, who in zip(ids, claimants.values()):
            n = s.get(Notice, nid)
            n.status, n.claimed_at, n.claimed_by = NoticeStatus.SENDING, T0, who
    assert recover_stale(Session, T0 + timedelta(seconds=1), lease_s=600) == 1
    st = _statuses(Session)
    assert [st[nid] for nid in ids] == [NoticeStatus.SENDING] * 4 + [NoticeStatus.QUEUED]
    # Past the lease every one is released, whoever held it.
    assert recover_stale(Session, T0 + timedelta(seconds=601), lease_s=600) == 4
