"""The evidence file end to end, with real parts: the crawl stage's Scrapy child writing
WARC records of a loopback site's link and player pages; the match stage's capture of a
media URL's headers and the match itself; the verify stage's fetches; daily manifests
timestamped by a real RFC 3161 authority (``openssl ts -reply`` behind a loopback HTTP
server, tests skipped with the reason where openssl is absent); the case file exported
and checked by ``vigie evidence verify`` (one altered byte named; an altered manifest
failing its token); the retention purge sparing open cases, written to the audit log."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from crawlers.sites import add_site
from db.auditchain import verify_chain
from db.models import (AuditLog, Candidate, Check, EvidenceExport, EvidenceItem, EvidenceManifest, InboxMessage,
                       ItemState, MatchFrame, Notice, NoticeItem, NoticeStatus)
from evidence.capture import add_item, capture_fetch
from evidence.store import EvidenceStore, Fetch, read_records
from foundation.config import Config
from stages.context import Context
from stages.table import STAGES, run_stage
from tests.test_notices_support import add_host, add_match, add_title, make_config
from tests.tsa_server import OPENSSL, start_tsa
from vigie.cli import cli

NOW = datetime.now(timezone.utc)
MEDIA = bytes(range(256)) * 400   # 100 kB: more than the 64 kB kept of a media URL


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if OPENSSL is None:
        pytest.skip("openssl is not installed: no loopback time-stamping authority (apt install openssl)")
    tsa, server = start_tsa(tmp_path_factory.mktemp("tsa"))
    yield tsa
    server.shutdown()
    server.server_close()


class Site:
    """path -> (status, content type, body); the rest is 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []

    def set(self, path: str, body: str | bytes, status: int = 200, ctype: str = "text/html; charset=utf-8") -> None:
        self.routes[path] = (status, ctype, body.encode() if isinstance(body, str) else body)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    pages = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            pages.hits.append((self.path, dict(self.headers)))
            status, ctype, body = pages.routes.get(self.path, (404, "text/html", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Server", "PirateTube/1.0")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _config(tmp_path: Path, tsa: Any = None, **evidence: Any) -> Config:
    ev: dict[str, Any] = {"dir": str(tmp_path / "evidence")}
    if tsa is not None:
        ev.update(tsa_url=tsa.url, tsa_cert=str(tsa.chain))
    ev.update(evidence)
    return make_config(None).with_values("evidence", **ev).with_values("crawl", allow_loopback=True) \
        .with_values("match", allow_loopback=True)


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buf, "JPEG")
    return buf.getvalue()


# --------------------------------------------------------------------------- capture


def test_crawl_keeps_link_and_player_pages_as_warc_and_a_recrawl_adds_a_capture(
        Session, db_url: str, site: tuple[Site, str], tmp_path: Path) -> None:
    pages, base = site
    pages.set("/", '<a href="/film/1">Le Voyage</a>')
    pages.set("/film/1", '<h1>Le Voyage</h1><iframe src="/embed/1"></iframe>')
    pages.set("/embed/1", '<video src="/media/1.mp4"></video>')
    with Session.begin() as s:
        add_site(s, "pirate", [f"{base}/"], settings={"film_link_pattern": "/film/"})
    cfg = _config(tmp_path)
    with Context.open(db_url, cfg) as ctx:
        assert run_stage("crawl", ctx)["new"] == 1
    store = EvidenceStore(tmp_path / "evidence")
    with Session() as s:
        cand = s.scalar(select(Candidate))
        items = list(s.scalars(select(EvidenceItem).order_by(EvidenceItem.id)))
        assert [(i.kind, i.url) for i in items] == [("page", f"{base}/film/1"), ("player", f"{base}/embed/1")]
        assert all(i.candidate_id == cand.id and i.ip == "127.0.0.1" and i.day == NOW.date().isoformat()
                   for i in items)
        first = items[0]
        records = read_records(store.read_checked(first))
        # The page body went under [evidence] dir too (no [crawl] evidence_dir set).
        assert Path(cand.evidence["body_path"]).is_relative_to(tmp_path / "evidence" / "pages")
    by_type = {r["type"]: r for r in records}
    assert set(by_type) == {"request", "response"}
    resp = by_type["response"]
    assert resp["uri"] == f"{base}/film/1" and resp["ip"] == "127.0.0.1" and resp["status"] == "200"
    assert resp["body"] == b'<h1>Le Voyage</h1><iframe src="/embed/1"></iframe>'
    assert resp["date"].startswith(NOW.date().isoformat())
    assert by_type["request"]["ip"] == "127.0.0.1"

    # The page changes: a re-crawl adds a capture; the first one is still there, unchanged.
    pages.set("/film/1", '<h1>Le Voyage (HD)</h1><iframe src="/embed/1"></iframe>')
    with Context.open(db_url, cfg) as ctx:
        assert run_stage("crawl", ctx)["seen"] == 1
    with Session() as s:
        page_items = list(s.scalars(select(EvidenceItem).where(EvidenceItem.kind == "page").order_by(EvidenceItem.id)))
        assert len(page_items) == 2 and page_items[0].sha256 == first.sha256
        assert page_items[0].sha256 != page_items[1].sha256
        assert b"Le Voyage</h1>" in read_records(store.read_checked(page_items[0]))[0]["body"]
        assert b"(HD)" in read_records(store.read_checked(page_items[1]))[0]["body"]


def test_match_evidence_keeps_media_headers_the_match_and_frames_side_by_side(
        Session, site: tuple[Site, str], tmp_path: Path) -> None:
    from stages.match import keep_match_evidence

    pages, base = site
    pages.set("/media/1.mp4", MEDIA, ctype="video/mp4")
    with Session.begin() as s:
        m = add_match(s, add_title(s), add_host(s), f"{base}/film/1", media=[f"{base}/media/1.mp4"])
        m.media_url = f"{base}/media/1.mp4"
        s.add(MatchFrame(match=m, ref_t=1212.0, cand_t=12.0, ref_jpeg=_jpeg((200, 0, 0)), cand_jpeg=_jpeg((190, 5, 5))))
        s.flush()
        keep_match_evidence(s, m.candidate, [m], str(tmp_path / "evidence"), allow_loopback=True)
    store = EvidenceStore(tmp_path / "evidence")
    with Session() as s:
        items = {i.kind: i for i in s.scalars(select(EvidenceItem))}
        assert set(items) == {"media", "match", "frames"}
        media = read_records(store.read_checked(items["media"]))
        record = json.loads(store.read_checked(items["match"]))
        frames = Image.open(io.BytesIO(store.read_checked(items["frames"])))
    resp = next(r for r in media if r["type"] == "response")
    assert resp["ip"] == "127.0.0.1" and resp["body"] == MEDIA[:64 * 1024]
    assert items["media"].ip == "127.0.0.1"
    # Only the first bytes were asked for, and the record says the body is cut.
    assert pages.hits[-1][1].get("Range") == "bytes=0-65535"
    raw = store.read(items["media"].path, items["media"].offset, items["media"].length)
    text = gzip.decompress(raw).decode("latin-1")
    assert "WARC-Truncated: length" in text and "Server: PirateTube/1.0" in text
    assert record["score"] == 0.97 and record["offset_s"] == 1200.0 and record["decision"] == "confirmed"
    assert frames.size == (64 + 8 + 64, 36)


def test_verify_stage_keeps_every_fetch_tied_to_its_check(
        Session, db_url: str, site: tuple[Site, str], tmp_path: Path) -> None:
    pages, base = site
    pages.set("/film/live", "<video src='/media/x.mp4'></video>")
    with Session.begin() as s:
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"])
        m = add_match(s, add_title(s), h, f"{base}/film/live")
        n = Notice(host=h, regime="lcen", template="lcen", language="fr", recipient="abuse@tube.example",
                   status=NoticeStatus.SENT, sent_at=NOW - timedelta(hours=2))
        n.items.append(NoticeItem(match=m, url=f"{base}/film/live", state=ItemState.NOTIFIED))
        s.add(n)
    cfg = _config(tmp_path)
    with Context.open(db_url, cfg) as ctx:
        assert run_stage("verify", ctx)["checked"] == 1
    with Session() as s:
        (item,) = s.scalars(select(EvidenceItem))
        check = s.scalar(select(Check))
        assert (item.kind, item.url, item.check_id, item.ip) == ("verify", f"{base}/film/live", check.id, "127.0.0.1")
        body = next(r for r in read_records(EvidenceStore(tmp_path / "evidence").read_checked(item))
                    if r["type"] == "response")["body"]
        assert body == b"<video src='/media/x.mp4'></video>"


def test_warc_writing_costs_the_crawl_little(tmp_path: Path) -> None:
    # A page's records are one gzip of its body plus an append: the crawl must not notice.
    store = EvidenceStore(tmp_path)
    body = (b"<html><body>" + b"<a href='/film/123'>Un film</a> " * 1200 + b"</body></html>")  # ~40 kB
    fetch = Fetch("http://pirate.example/film/1", NOW, 200, "OK", [("User-Agent", "Vigie")],
                  [("Content-Type", "text/html")], body, "203.0.113.9")
    start = time.perf_counter()
    for _ in range(200):
        store.append_warc(fetch)
    per_page = (time.perf_counter() - start) / 200
    assert per_page < 0.01, f"{per_page * 1000:.1f} ms a page"


# --------------------------------------------------------------------------- trusted time


def _items(s: Any, store: EvidenceStore, n: int, at: datetime, cand: Candidate | None = None) -> list[EvidenceItem]:
    return [add_item(s, store.put_blob(f"capture {k} {at} {cand.id if cand else 0}".encode(), ".json"), "match", at,
                     candidate_id=cand.id if cand else None) for k in range(n)]


def test_daily_manifests_are_timestamped_and_a_failed_request_is_retried(
        Session, db_url: str, tmp_path: Path, tsa: Any) -> None:
    from evidence.timestamp import verify_token

    cfg = _config(tmp_path, tsa)
    store = EvidenceStore(tmp_path / "evidence")
    with Session.begin() as s:
        _items(s, store, 2, NOW - timedelta(days=1))
        _items(s, store, 3, NOW - timedelta(minutes=5))
    tsa.fail[0] = True
    try:
        with Context.open(db_url, cfg) as ctx:
            counts = run_stage("evidence", ctx)
    finally:
        tsa.fail[0] = False
    assert (counts["manifests"], counts["items"], counts["stamped"], counts["errors"]) == (2, 5, 0, 2)
    with Session() as s:
        assert all("HTTP 500" in (m.token_error or "") for m in s.scalars(select(EvidenceManifest)))
    # The authority is back: the next run stamps both, writes no new manifest.
    with Context.open(db_url, cfg) as ctx:
        counts = run_stage("evidence", ctx)
    assert (counts["manifests"], counts["stamped"], counts["errors"]) == (0, 2, 0)
    with Session() as s:
        manifests = list(s.scalars(select(EvidenceManifest).order_by(EvidenceManifest.day)))
        assert [m.items for m in manifests] == [2, 3]
        for m in manifests:
            data = store.read(m.path)
            assert hashlib.sha256(data).hexdigest() == m.sha256 and m.path.endswith(f"{m.sha256}.json")
            stamp = verify_token(m.token, data, tsa.chain.read_bytes())
            # The authority's clock is the real one (NOW was taken when the module was
            # imported, minutes earlier in a full run).
            assert abs((stamp.gen_time - datetime.now(timezone.utc)).total_seconds()) < 120
            assert m.token_error is None
            listed = json.loads(data)["items"]
            assert {i["sha256"] for i in listed} == {i.sha256 for i in s.scalars(
                select(EvidenceItem).where(EvidenceItem.manifest_id == m.id))}
            assert "url" not in listed[0]   # no other case's URL travels in a case file


def test_a_token_from_another_authority_is_refused(Session, db_url: str, tmp_path: Path, tsa: Any) -> None:
    from tests.tsa_server import make_pki

    other = tmp_path / "other"
    other.mkdir()
    make_pki(other, "Someone Else TSA")
    cfg = _config(tmp_path, tsa, tsa_cert=str(other / "chain.pem"))
    with Session.begin() as s:
        _items(s, EvidenceStore(tmp_path / "evidence"), 1, NOW - timedelta(minutes=1))
    with Context.open(db_url, cfg) as ctx:
        counts = run_stage("evidence", ctx)
    assert counts["stamped"] == 0 and counts["errors"] == 1
    with Session() as s:
        m = s.scalar(select(EvidenceManifest))
        assert m.token is None and "does not verify" in m.token_error


# --------------------------------------------------------------------------- case file


HOSTILE = '<script>alert("x")</script> Le Voyage'


REPLY = (b"From: abuse@tube.example\r\nTo: notices@filmsdunord.example\r\n"
         b"Subject: Re: Notification LCEN\r\nIn-Reply-To: <n1@vigie.example>\r\n\r\nContenu retir\xc3\xa9.\r\n")


def _case(Session: Any, store: EvidenceStore, base: str) -> int:
    """A title, a pirate page with its captures, a notice, a check and the removal."""
    with Session.begin() as s:
        t = add_title(s, HOSTILE)
        h = add_host(s, "tube", domain_patterns=["127.0.0.1"])
        m = add_match(s, t, h, f"{base}/film/1")
        cand = m.candidate
        cand.site = add_site(s, "pirate-site", [f"{base}/"])
        at = NOW - timedelta(hours=3)
        capture_fetch(s, store, Fetch(f"{base}/film/1", at, 200, "OK", [("User-Agent", "Vigie")],
                                      [("Content-Type", "text/html")], f"<h1>{HOSTILE}</h1>".encode(),
                                      "127.0.0.1"), "page", candidate_id=cand.id)
        add_item(s, store.put_blob(_jpeg((1, 2, 3)), ".png"), "screenshot", at, candidate_id=cand.id)
        add_item(s, store.put_blob(b'{"score": 0.97}', ".json"), "match", at, candidate_id=cand.id, match_id=m.id)
        n = Notice(host=h, regime="lcen", template="lcen", language="fr", recipient="abuse@tube.example",
                   subject="Notification LCEN", body_text=f"Retirez {base}/film/1", status=NoticeStatus.SENT,
                   sent_at=NOW - timedelta(hours=2), message_id="<n1@vigie.example>")
        ni = NoticeItem(match=m, url=f"{base}/film/1", state=ItemState.REMOVED, removed_at=NOW - timedelta(hours=1))
        n.items.append(ni)
        s.add(n)
        s.flush()
        s.add(Check(item=ni, checked_at=NOW - timedelta(hours=1), http_status=404, live=False, detail="HTTP 404"))
        # The host's answer, as the inbox stored it: the case file carries it as received.
        s.add(InboxMessage(sha256="0" * 64, raw=REPLY, size=len(REPLY), source="test", notice_id=n.id,
                           received_at=NOW - timedelta(minutes=90), from_addr="abuse@tube.example",
                           subject="Re: Notification LCEN"))
        return cand.id


def _rewrite(src: Path, dst: Path, change: dict[str, Any]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename in change:
                data = change[info.filename](data)
            zout.writestr(info.filename, data)


def test_case_file_export_and_verify(Session, db_url: str, tmp_path: Path, tsa: Any) -> None:
    cfg_path = tmp_path / "vigie.toml"
    cfg_path.write_text(f'[evidence]\ndir = "{tmp_path / "evidence"}"\ntsa_url = "{tsa.url}"\n'
                        f'tsa_cert = "{tsa.chain}"\n[smtp]\nfrom = "notices@filmsdunord.example"\n')
    store = EvidenceStore(tmp_path / "evidence")
    _case(Session, store, "http://127.0.0.1:9")
    out = tmp_path / "case.zip"
    runner = CliRunner()
    args = ["--db", db_url, "--config", str(cfg_path)]
    res = runner.invoke(cli, [*args, "evidence", "export", "--site", "pirate-site", "--lang", "fr", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "3 item(s)" in res.output
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
        html = z.read("index.html").decode()
        eml = z.read("notices/notice-1.eml")
        assert [z.read(n) for n in sorted(z.namelist()) if n.startswith("replies/")] == [REPLY]
        timeline = json.loads(z.read("timeline.json"))
    assert {"manifest.json", "manifest.json.tsr", "index.html", "warc/case.warc.gz", "timeline.json",
            "notices/notice-1.json", "notices/notice-1.txt", "notices/notice-1.eml", "tsa/chain.pem"} <= names
    assert any(n.startswith("screenshots/") for n in names) and any(n.startswith("matches/") for n in names)
    assert len(manifest["daily_manifests"]) == 1 and manifest["daily_manifests"][0]["token"] in names
    assert {f["path"] for f in manifest["files"]} == names - {"manifest.json", "manifest.json.tsr"}
    # Readable, in French, and every hostile string escaped.
    assert "Dossier de preuves" in html and "tube: retirée le" in html and "pirate-site" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert timeline[0]["state"] == "removed" and timeline[0]["checks"][0]["http_status"] == 404
    assert b"Message-ID: <n1@vigie.example>" in eml and b"Retirez http://127.0.0.1:9/film/1" in eml

    res = runner.invoke(cli, ["evidence", "verify", str(out)])
    assert res.exit_code == 0, res.output
    assert "OK: " in res.output and "Vigie Test TSA" in res.output

    # One byte changed in one file: exit 1, naming that file.
    shot = next(n for n in names if n.startswith("screenshots/"))
    bad = tmp_path / "bad.zip"
    _rewrite(out, bad, {shot: lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:]})
    res = runner.invoke(cli, ["evidence", "verify", str(bad)])
    assert res.exit_code == 1
    assert f"{shot}: altered" in res.output and "FAILED" in res.output
    # The list of hashes rewritten to match: its time-stamp token no longer holds.
    forged = tmp_path / "forged.zip"

    def forge(data: bytes) -> bytes:
        m = json.loads(data)
        m["scope"] = "site another-site"
        return json.dumps(m).encode()
    _rewrite(out, forged, {"manifest.json": forge})
    res = runner.invoke(cli, ["evidence", "verify", str(forged)])
    assert res.exit_code == 1 and "manifest.json: time-stamp token check failed" in res.output
    # A WARC record changed: the item and the file are both named.
    warc = tmp_path / "warc.zip"
    _rewrite(out, warc, {"warc/case.warc.gz": lambda d: d[:-30] + bytes([d[-30] ^ 0xFF]) + d[-29:]})
    res = runner.invoke(cli, ["evidence", "verify", str(warc)])
    assert res.exit_code == 1 and "warc/case.warc.gz: altered" in res.output and "(page, warc/case.warc.gz): altered" in res.output
    # Against a TSA the reader trusts that is not the one: tokens fail.
    from tests.tsa_server import make_pki
    other = tmp_path / "other"
    other.mkdir()
    make_pki(other, "Someone Else")
    res = runner.invoke(cli, ["evidence", "verify", str(out), "--tsa-cert", str(other / "chain.pem")])
    assert res.exit_code == 1 and "token check failed" in res.output

    with Session() as s:
        exp = s.scalar(select(EvidenceExport))
        assert exp.sha256 == hashlib.sha256(out.read_bytes()).hexdigest() and len(exp.item_ids) == 3
        assert s.scalar(select(AuditLog).where(AuditLog.action == "evidence.export")) is not None


def test_export_refuses_evidence_altered_in_the_store(Session, db_url: str, tmp_path: Path, tsa: Any) -> None:
    from evidence.export import Scope, export_case
    from foundation.errors import EvidenceError

    store = EvidenceStore(tmp_path / "evidence")
    _case(Session, store, "http://127.0.0.1:9")
    cfg = _config(tmp_path, tsa)
    with Context.open(db_url, cfg) as ctx:
        run_stage("evidence", ctx)
    # A period in which the page was not seen: nothing to export, said.
    from foundation.errors import NotFound
    with Session.begin() as s, pytest.raises(NotFound, match="in that period"):
        export_case(s, store, cfg, Scope(url="http://127.0.0.1:9/film/1", since=NOW.date() + timedelta(days=2)),
                    tmp_path / "c.zip", now=NOW)
    with Session() as s:
        shot = s.scalar(select(EvidenceItem).where(EvidenceItem.kind == "screenshot"))
        path = store.path(shot.path)
    path.write_bytes(path.read_bytes() + b"x")
    with Session.begin() as s, pytest.raises(EvidenceError, match="altered"):
        export_case(s, store, cfg, Scope(url="http://127.0.0.1:9/film/1"), tmp_path / "c.zip", now=NOW)


def test_export_needs_an_evidence_dir_and_one_scope(tmp_path: Path, db_url: str, engine: Any) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", db_url, "evidence", "export", "--site", "x", "--out", str(tmp_path / "a.zip")])
    assert res.exit_code == 1 and "[evidence] dir" in res.output
    res = runner.invoke(cli, ["--db", db_url, "evidence", "export", "--site", "x", "--title", "1",
                              "--out", str(tmp_path / "a.zip")])
    assert res.exit_code == 2


# --------------------------------------------------------------------------- retention


def test_purge_spares_open_cases_and_pinned_files_and_is_audited(Session, db_url: str, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    old = NOW - timedelta(days=400)
    with Session.begin() as s:
        t, h = add_title(s), add_host(s, "tube", domain_patterns=["127.0.0.1"])
        open_m, closed_m, pinned_m = (add_match(s, t, h, f"http://p.example/{k}") for k in ("open", "closed", "pinned"))
        n = Notice(host=h, regime="lcen", template="lcen", language="fr", status=NoticeStatus.SENT, sent_at=old)
        n.items.append(NoticeItem(match=open_m, url="http://p.example/open", state=ItemState.LIVE))
        n.items.append(NoticeItem(match=closed_m, url="http://p.example/closed", state=ItemState.REMOVED))
        s.add(n)
        kept_open = _items(s, store, 1, old, open_m.candidate)[0]
        gone = _items(s, store, 1, old, closed_m.candidate)[0]
        pinned = _items(s, store, 1, old, pinned_m.candidate)[0]
        # The same bytes kept for a recent item: the file must stay.
        shared = add_item(s, store.put_blob(b"same bytes", ".json"), "match", old, candidate_id=closed_m.candidate.id)
        add_item(s, store.put_blob(b"same bytes", ".json"), "match", NOW, candidate_id=closed_m.candidate.id)
        s.flush()
        s.add(EvidenceExport(scope="url x", path="/tmp/x.zip", sha256="0" * 64, item_ids=[pinned.id], pinned=True))
        ids = (kept_open.id, gone.id, pinned.id, shared.id)
        gone_path = gone.path
    cfg = _config(tmp_path, keep_days=365)
    with Context.open(db_url, cfg) as ctx:
        counts = run_stage("evidence", ctx, stamp=False)
    assert (counts["purged"], counts["kept_for_cases"]) == (2, 2)
    with Session() as s:
        rows = {i.id: i for i in s.scalars(select(EvidenceItem).where(EvidenceItem.id.in_(ids)))}
        assert rows[ids[0]].purged_at is None and rows[ids[2]].purged_at is None
        assert rows[ids[1]].purged_at is not None and rows[ids[3]].purged_at is not None
        assert not store.path(gone_path).exists()
        assert store.path(rows[ids[3]].path).exists()            # still used by the recent item
        store.read_checked(rows[ids[0]])
        audit = s.scalar(select(AuditLog).where(AuditLog.action == "evidence.purge"))
        assert audit.after["purged"] == 2 and gone_path in audit.after["files"]
        assert verify_chain(s) == []
    # Nothing more to purge: a second run changes nothing.
    with Context.open(db_url, cfg) as ctx:
        assert run_stage("evidence", ctx, stamp=False)["purged"] == 0


def test_the_evidence_stage_is_scheduled_daily() -> None:
    from foundation.config import SCHEMA

    assert STAGES["evidence"].every == "evidence_every"
    assert SCHEMA["schedule"]["evidence_every"].default == "1d"
    assert SCHEMA["evidence"]["keep_days"].default == 1825


def test_without_an_evidence_dir_the_stage_does_nothing(db_url: str, engine: Any) -> None:
    with Context.open(db_url, Config()) as ctx:
        assert run_stage("evidence", ctx)["skipped"] == "no [evidence] dir"



def _chromium_problem() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "needs the playwright package"
    from crawlers.browser import find_chromium

    path = find_chromium()
    import os
    if not path or not os.access(path, os.X_OK):
        return f"needs Chromium ({path or '/usr/bin/chromium'}; apt-get install chromium)"
    return None


@pytest.mark.skipif(_chromium_problem() is not None, reason=f"browser resolver test {_chromium_problem()}")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_page_the_browser_rendered_keeps_its_screenshot_and_requests(
        Session, db_url: str, site: tuple[Site, str], tmp_path: Path) -> None:
    pages, base = site
    pages.set("/", '<a href="/film/1">Le Voyage</a>')
    # A player built by a script: only the browser finds its media.
    pages.set("/film/1", "<h1>Le Voyage</h1><div id=p></div><script>"
                         "var v=document.createElement('video');v.src='/media/1.mp4';"
                         "document.getElementById('p').appendChild(v);</script>")
    pages.set("/media/1.mp4", MEDIA, ctype="video/mp4")
    with Session.begin() as s:
        add_site(s, "scripted", [f"{base}/"], settings={"film_link_pattern": "/film/", "render": "auto",
                                                            "render_idle_s": 1, "render_timeout_s": 10})
    with Context.open(db_url, _config(tmp_path)) as ctx:
        assert run_stage("crawl", ctx)["new"] == 1
    store = EvidenceStore(tmp_path / "evidence")
    with Session() as s:
        cand = s.scalar(select(Candidate))
        assert cand.media_urls == [f"{base}/media/1.mp4"]
        items = {i.kind: i for i in s.scalars(select(EvidenceItem))}
        assert {"page", "screenshot", "har"} <= set(items)
        assert store.read_checked(items["screenshot"])[:8] == b"\x89PNG\r\n\x1a\n"
        har = json.loads(gzip.decompress(store.read_checked(items["har"])))
        assert f"{base}/film/1" in [e["request"]["url"] for e in har["log"]["entries"]]


def test_cli_stamp_list_and_pin_without_an_authority(Session, db_url: str, tmp_path: Path) -> None:
    cfg_path = tmp_path / "vigie.toml"
    cfg_path.write_text(f'[evidence]\ndir = "{tmp_path / "evidence"}"\n')
    _case(Session, EvidenceStore(tmp_path / "evidence"), "http://127.0.0.1:9")
    runner = CliRunner()
    args = ["--db", db_url, "--config", str(cfg_path), "evidence"]
    res = runner.invoke(cli, [*args, "stamp"])
    assert res.exit_code == 0 and "manifests 1, items 3, stamped 0, unstamped 1" in res.output, res.output
    res = runner.invoke(cli, [*args, "export", "--url", "http://127.0.0.1:9/film/1", "--out", str(tmp_path / "c.zip")])
    assert res.exit_code == 0, res.output
    assert "no time-stamp token" in res.output and "manifest.json not timestamped" in res.output
    with zipfile.ZipFile(tmp_path / "c.zip") as z:
        assert "the time of its captures is not proven" in z.read("index.html").decode()
    res = runner.invoke(cli, [*args, "verify", str(tmp_path / "c.zip")])
    assert res.exit_code == 0 and "manifest.json has no time-stamp token" in res.output, res.output
    assert runner.invoke(cli, [*args, "pin", "1"]).exit_code == 0
    listing = json.loads(runner.invoke(cli, [*args, "list", "--json"]).output)
    assert listing["exports"][0]["pinned"] is True and listing["manifests"][0]["stamped"] is False
    assert runner.invoke(cli, [*args, "pin", "1", "--off"]).exit_code == 0
    assert runner.invoke(cli, [*args, "pin", "7"]).exit_code == 1
    with Session() as s:
        assert [a.after["pinned"] for a in s.scalars(select(AuditLog).where(AuditLog.action == "evidence.pin"))] \
            == [True, False]


def test_evidence_that_cannot_be_written_drops_the_item_with_the_reason(tmp_path: Path) -> None:
    from scrapy.exceptions import DropItem

    from evidence.crawl import WarcPipeline

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the evidence directory should be")
    item = {"page_url": "http://pirate.example/film/1", "captures": [],
            "evidence": {"url": "http://pirate.example/film/1", "fetched_at": NOW.isoformat(), "status": 200,
                         "headers": {}, "request_headers": [], "ip_address": "203.0.113.9",
                         "body_gz": gzip.compress(b"<h1>x</h1>")}}
    with pytest.raises(DropItem, match="cannot write the evidence of http://pirate.example/film/1"):
        WarcPipeline(str(blocker)).process_item(item)


def test_a_media_url_at_a_refused_address_is_recorded_as_refused(Session, tmp_path: Path, site: tuple[Site, str]) -> None:
    from evidence.fetch import fetch_head

    pages, base = site
    pages.set("/media/1.mp4", MEDIA, ctype="video/mp4")
    (fetch,) = fetch_head(f"{base}/media/1.mp4", allow_loopback=False)
    assert fetch.status is None and "refused" in (fetch.error or "") and not pages.hits
    store = EvidenceStore(tmp_path / "evidence")
    with Session.begin() as s:
        item = capture_fetch(s, store, fetch, "media")
        assert item.meta["status"] is None and "refused" in item.meta["error"]
        assert [r["type"] for r in read_records(store.read_checked(item))] == ["request"]


def test_threads_appending_at_once_get_the_offsets_of_their_own_records(tmp_path: Path) -> None:
    # The scheduler runs match and verify jobs in threads of one process: one WARC file.
    from concurrent.futures import ThreadPoolExecutor

    store = EvidenceStore(tmp_path)

    def one(k: int) -> tuple[int, Any]:
        body = f"<h1>page {k}</h1>".encode() * (50 + k)
        return k, store.append_warc(Fetch(f"http://pirate.example/{k}", NOW, 200, "OK", [], [], body, "203.0.113.9"))

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(one, range(64)))
    for k, stored in done:
        data = store.read(stored.path, stored.offset, stored.length)
        assert hashlib.sha256(data).hexdigest() == stored.sha256
        assert read_records(data)[0]["uri"] == f"http://pirate.example/{k}"
