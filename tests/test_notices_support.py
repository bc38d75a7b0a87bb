"""Shared pieces of the notices tests (no tests here): seeded rows, a real SMTP server
(aiosmtpd) and a real HTTP server on free loopback ports, a test configuration, and
``machine_documents_valid``: every ACNS and X-ARF document a test builds, and every
attachment of every mail it builds, checked against the published schemas with the
validators themselves (``xmlschema`` on the XSDs shipped in ``notices/schemas/acns``,
``xarf.parse``), not with our own checker."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import xarf
import xmlschema
from aiosmtpd.controller import Controller

from sqlalchemy import select

from db.models import (
    Candidate,
    CandidateStatus,
    Decision,
    Host,
    Match,
    Offer,
    OfferKind,
    RightsHolder,
    Title,
    TitleRights,
)
from foundation.config import Config

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

NOTIFIER = {
    "legal_name": "Films du Nord SAS",
    "address": "12 rue de la Paix, 75002 Paris, France",
    "phone": "+33 1 23 45 67 89",
    "email": "rights@filmsdunord.example",
    "signature": "Claire Martin, head of rights protection",
    "country": "FR",
}


def free_port() -> int:
    # aiosmtpd's port=0 does not report the bound port: find a free one first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(smtp_port: int | None = None, **notices: Any) -> Config:
    return Config(
        notifier=dict(NOTIFIER),
        smtp={"host": "127.0.0.1", "port": smtp_port or 1, "from": "notices@filmsdunord.example",
              "timeout": 5},
        notices={"allow_loopback": True, "discover_contacts": False, "retry_base_s": 60,
                 "http_timeout": 3, **notices},
    )


def write_config_file(path: Path, smtp_port: int, *, smtp_timeout: float | None = None, **notices: Any) -> Path:
    """The same settings as ``make_config``, as a TOML file for the ``vigie`` command."""
    lines = ["[notifier]", *(f"{k} = {json.dumps(v)}" for k, v in NOTIFIER.items()),
             "[smtp]", 'host = "127.0.0.1"', f"port = {smtp_port}", 'from = "notices@filmsdunord.example"']
    if smtp_timeout is not None:
        lines.append(f"timeout = {smtp_timeout}")
    lines += ["[notices]", *(f"{k} = {json.dumps(v)}" for k, v in notices.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- schemas

ACNS_DIR = Path(__file__).resolve().parent.parent / "notices" / "schemas" / "acns"
_ACNS_SCHEMA: list[xmlschema.XMLSchema10] = []


def acns_schema() -> xmlschema.XMLSchema10:
    if not _ACNS_SCHEMA:
        _ACNS_SCHEMA.append(xmlschema.XMLSchema10(
            str(ACNS_DIR / "acns.xsd"),
            locations=[("http://www.w3.org/2005/05/xmlmime", str(ACNS_DIR / "xmlmime.xsd")),
                       ("http://www.w3.org/2000/09/xmldsig#", str(ACNS_DIR / "xmldsig.xsd"))]))
    return _ACNS_SCHEMA[0]


def assert_acns_valid(document: str) -> None:
    errors = [f"{e.path}: {e.reason}" for e in acns_schema().iter_errors(document)]
    assert not errors, f"ACNS document fails the rev 1.2 XSD: {errors}\n{document}"


def assert_xarf_valid(report: dict[str, Any] | str) -> None:
    """A valid X-ARF v4 copyright report: no schema error, no unknown field except the
    ``match_details`` the non-UGC types do not define (the core schema allows extras)."""
    result = xarf.parse(report)
    assert result.report is not None and not result.errors, f"X-ARF report invalid: {result.errors}\n{report}"
    unknown = [w for w in result.warnings if w.field != "match_details"]
    assert not unknown, f"X-ARF report warnings: {unknown}"
    data = json.loads(report) if isinstance(report, str) else report
    assert data["category"] == "copyright" and data["infringing_url"].startswith(("http://", "https://"))
    assert data["match_details"]["match_confidence"] > 0 and data["reporter"] and data["sender"]


def assert_mail_parts_valid(msg: EmailMessage) -> None:
    """Every attachment of a notice mail, and the ACNS inlined in its body."""
    from notices.machine import ACNS_END, ACNS_START

    xml_parts = []
    for part in msg.iter_attachments():
        name = part.get_filename() or ""
        payload = part.get_payload(decode=True).decode("utf-8")
        if name.endswith(".xml"):
            assert_acns_valid(payload)
            xml_parts.append(payload.strip())
        elif name.endswith(".json"):
            assert_xarf_valid(payload)
    body = msg.get_body(("plain",)).get_content()
    if xml_parts:
        start, end = body.index(ACNS_START + "\n"), body.index("\n" + ACNS_END)
        inline = body[start + len(ACNS_START) + 1:end].strip()
        assert inline == xml_parts[0], "the inline ACNS differs from the attached one"
    else:
        assert ACNS_START not in body


@pytest.fixture(autouse=True)
def machine_documents_valid(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Any]]]:
    """Record every ACNS document, X-ARF report and notice mail built during the test;
    validate them all at its end (a module that imports this fixture gets it)."""
    from notices import dispatch as dispatch_mod
    from notices import machine

    seen: dict[str, list[Any]] = {"acns": [], "xarf": [], "mail": []}
    real_acns, real_xarf, real_build = machine.acns_xml, machine.xarf_report, dispatch_mod.build_message

    def acns(*a: Any, **kw: Any) -> Any:
        out = real_acns(*a, **kw)
        if out is not None:
            seen["acns"].append(out)
        return out

    def report(*a: Any, **kw: Any) -> Any:
        out = real_xarf(*a, **kw)
        seen["xarf"].append(out)
        return out

    def build(*a: Any, **kw: Any) -> Any:
        out = real_build(*a, **kw)
        seen["mail"].append(out)
        return out

    monkeypatch.setattr(machine, "acns_xml", acns)
    monkeypatch.setattr(machine, "xarf_report", report)
    monkeypatch.setattr(dispatch_mod, "build_message", build)
    yield seen
    for doc in seen["acns"]:
        assert_acns_valid(doc)
    for r in seen["xarf"]:
        assert_xarf_valid(r)
    for msg in seen["mail"]:
        assert_mail_parts_valid(msg)


# --------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    sender: str
    rcpts: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Recorder:
    """aiosmtpd handler: records every message; ``script`` can make a step misbehave."""

    received: list[Received] = field(default_factory=list)
    # Replies to force, consumed in order, per SMTP step: {"RCPT": ["451 ...", ...]}.
    replies: dict[str, list[str]] = field(default_factory=dict)
    # After recording the Nth message (1-based), close the connection without replying.
    drop_after_data: set[int] = field(default_factory=set)
    # Block in DATA (after recording) / in RCPT for these message numbers until released.
    block_data: set[int] = field(default_factory=set)
    block_rcpt: set[int] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    blocked: threading.Event = field(default_factory=threading.Event)
    rcpt_count: int = 0

    def _forced(self, step: str) -> str | None:
        queue = self.replies.get(step)
        return queue.pop(0) if queue else None

    async def _wait(self) -> None:
        self.blocked.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        self.rcpt_count += 1
        if self.rcpt_count in self.block_rcpt:
            await self._wait()
        forced = self._forced("RCPT")
        if forced:
            return forced
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        forced = self._forced("DATA")
        if forced:
            return forced
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        n = len(self.received)
        if n in self.block_data:
            await self._wait()
        if n in self.drop_after_data:
            server.transport.close()
            return "250 never seen"
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    handler = Recorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release.set()
        controller.stop()


# --------------------------------------------------------------------------- HTTP


class Pages:
    """path -> (status, body); missing paths are 404."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []

    def set(self, path: str, status: int, body: str = "") -> None:
        self.routes[path] = (status, body.encode())


@pytest.fixture
def web() -> Iterator[tuple[Pages, str]]:
    pages = Pages()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            pages.hits.append(self.path)
            status, body = pages.routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- rows


def add_title(s, name: str = "Le Voyage", *, offers: list[tuple[str, str]] | None = None) -> Title:  # type: ignore[no-untyped-def]
    t = Title(title=name, year=2024, rights_owner="Films du Nord SAS")
    holder = s.scalar(select(RightsHolder).where(RightsHolder.name == "Films du Nord SAS")) or RightsHolder(
        name="Films du Nord SAS", legal_name="Films du Nord SAS")
    t.rights.append(TitleRights(holder=holder, territory="*"))
    for url, territory in offers if offers is not None else [
            ("https://vod.filmsdunord.example/le-voyage", "FR,BE"),
            ("https://us-stream.example/the-journey", "US")]:
        t.offers.append(Offer(url=url, provider=url.split("/")[2], kind=OfferKind.VOD_RENTAL,
                              territory=territory))
    s.add(t)
    s.flush()
    return t


def add_host(s, name: str = "videohost", **kw: Any) -> Host:  # type: ignore[no-untyped-def]
    defaults: dict[str, Any] = {"domain_patterns": [f"{name}.example"],
                                "abuse_contact": f"abuse@{name}.example",
                                "jurisdiction": "FR", "language": "fr", "kind": "video_host",
                                "settings": {}}
    h = Host(name=name, **{**defaults, **kw})
    s.add(h)
    s.flush()
    return h


def add_match(s, title: Title, host: Host | None, url: str, *,  # type: ignore[no-untyped-def]
              decision: Decision = Decision.CONFIRMED, media: list[str] | None = None,
              seen: datetime = T0 - timedelta(hours=3)) -> Match:
    c = Candidate(canonical_url=url, page_url=url, media_urls=media or [], host=host,
                  title_text="pirate page", status=CandidateStatus.MATCHED, first_seen=seen, last_seen=seen,
                  evidence={"sha256": "ab" * 32, "fetched_at": seen.isoformat(), "status": 200,
                            "url": url, "ip_address": "203.0.113.7"})
    m = Match(candidate=c, title=title, score=0.97, matched_s=412.0, offset_s=1200.0, speed=1.0,
              cand_start_s=0.0, cand_end_s=420.0, ref_start_s=1200.0, ref_end_s=1620.0, decision=decision)
    s.add(m)
    s.flush()
    return m
