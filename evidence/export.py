"""The case file: everything a lawyer attaches to a blocking-order request, in one zip.

``export_case`` gathers, for a scope (one URL, one site, one title; optionally a period),
the candidates concerned and their kept evidence, checks every item against its SHA-256
and every daily manifest's token on the way out (a file altered since capture, or a
token that does not verify, stops the export and says which), and writes::

    manifest.json            every file of the zip with its SHA-256; every item
    manifest.json.tsr        an RFC 3161 token over manifest.json (when a TSA is set up)
    index.html               per site, every infringing page and title: first seen,
                             last seen, notices, outcome (French or English)
    warc/case.warc.gz        the WARC records of the pages, players, media headers and
                             verification fetches (each item a byte range, as captured)
    screenshots/ frames/ matches/   the browser's screenshots, frames side by side,
                             fingerprint match records (content-addressed names)
    daily/                   the daily manifests citing the items, and their tokens
    notices/                 each notice as sent: the mail (.eml, rebuilt byte for byte
                             from its stored fields), JSON with its fields, .txt, .html
    replies/                 the hosts' replies as received (the inbox's stored mail)
    timeline.json            the takedown timeline: notified URLs, checks, removals
    tsa/chain.pem            the TSA certificate chain the tokens were checked against

``verify_case`` re-checks a case file alone (``evidence.verify`` has the details).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.models import (AuditLog, Candidate, Decision, EvidenceExport, EvidenceItem, EvidenceManifest,
                       InboxMessage, Match, Notice, NoticeItem, ReviewState, Site)
from evidence.manifest import check_manifest
from evidence.store import EvidenceStore
from evidence.timestamp import read_chain, request_stamp
from foundation.config import Config
from foundation.errors import EvidenceError, InvalidInput, NotFound, VigieError

CASE_FORMAT = "vigie-case/1"
WARC_KINDS = ("page", "player", "media", "verify")
FOLDER = {"screenshot": "screenshots", "har": "screenshots", "frames": "frames", "match": "matches"}
SUFFIX = {"screenshot": ".png", "har": ".har.gz", "frames": ".jpg", "match": ".json"}


@dataclass(frozen=True)
class Scope:
    url: str | None = None
    site: str | None = None
    title_id: int | None = None
    since: date | None = None
    until: date | None = None

    def describe(self) -> str:
        what = (f"url {self.url}" if self.url else f"site {self.site}" if self.site
                else f"title {self.title_id}")
        if self.since or self.until:
            what += f" from {self.since or '…'} until {self.until or '…'}"
        return what


@dataclass
class Reply:
    """A host's answer to a notice, as received (raw RFC 5322 bytes)."""

    notice_id: int
    received_at: datetime
    raw: bytes
    sender: str = ""
    subject: str = ""


class ReplySource(Protocol):
    """Where the hosts' replies are read from (the inbox, when it exists, registers one):
    given notice ids, their replies."""

    def __call__(self, s: Session, notice_ids: list[int]) -> list[Reply]: ...


def inbox_replies(s: Session, notice_ids: list[int]) -> list[Reply]:
    """The mail the inbox (``vigie inbox``) stored and tied to these notices, as received
    (a mail over ``[inbox] max_bytes`` was kept with its header only, and is so here)."""
    if not notice_ids:
        return []
    rows = s.scalars(select(InboxMessage).where(InboxMessage.notice_id.in_(notice_ids))
                     .order_by(InboxMessage.received_at, InboxMessage.id))
    return [Reply(notice_id=m.notice_id, received_at=m.received_at, raw=m.raw, sender=m.from_addr or "",
                  subject=m.subject or "") for m in rows if m.notice_id is not None]


# Where a case file's replies come from: the inbox's stored mail (another source, say a
# desk's ticket export, can be added here).
REPLY_SOURCES: list[ReplySource] = [inbox_replies]


@dataclass
class ExportResult:
    path: Path
    sha256: str
    export_id: int
    candidates: int
    items: int
    files: int
    stamped: bool
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ what is in a case


def _infringing(m: Match) -> bool:
    return m.decision != Decision.ALLOWED and m.review != ReviewState.REJECTED


def case_candidates(s: Session, scope: Scope) -> list[Candidate]:
    """The candidates a scope covers: the page (or media URL) itself; a site's or a
    title's infringing pages (a match not rejected, not allowed material)."""
    if sum(x is not None for x in (scope.url, scope.site, scope.title_id)) != 1:
        raise InvalidInput("give exactly one of --url, --site, --title")
    if scope.url:
        from sqlalchemy import String, cast

        cands = list(s.scalars(select(Candidate).where(or_(
            Candidate.page_url == scope.url, Candidate.canonical_url == scope.url,
            cast(Candidate.media_urls, String).contains(json.dumps(scope.url)[1:-1])))))
        cands = [c for c in cands if c.page_url == scope.url or c.canonical_url == scope.url
                 or scope.url in (c.media_urls or [])]
        if not cands:
            raise NotFound(f"no candidate has the URL {scope.url}")
        return cands
    if scope.site:
        site = s.scalar(select(Site).where(Site.name == scope.site))
        if site is None:
            raise NotFound(f"no site named {scope.site!r}")
        q = select(Candidate).where(Candidate.site_id == site.id)
    else:
        q = select(Candidate).join(Match, Match.candidate_id == Candidate.id).where(Match.title_id == scope.title_id)
    cands = [c for c in s.scalars(q.order_by(Candidate.id)).unique()
             if any(_infringing(m) and (scope.title_id is None or m.title_id == scope.title_id) for m in c.matches)]
    if not cands:
        raise NotFound(f"no infringing page found for {scope.describe()}")
    return cands


def _period(scope: Scope) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(scope.since, time.min, timezone.utc) if scope.since else None
    end = datetime.combine(scope.until + timedelta(days=1), time.min, timezone.utc) if scope.until else None
    return start, end


def _seen_in(c: Candidate, scope: Scope) -> bool:
    """Whether the page was seen in the scope's period (first seen before its end, last
    seen after its start)."""
    start, end = _period(scope)
    first = c.first_seen if c.first_seen.tzinfo else c.first_seen.replace(tzinfo=timezone.utc)
    last = c.last_seen if c.last_seen.tzinfo else c.last_seen.replace(tzinfo=timezone.utc)
    return (end is None or first < end) and (start is None or last >= start)


def case_items(s: Session, cands: list[Candidate], scope: Scope) -> list[EvidenceItem]:
    start, end = _period(scope)
    q = select(EvidenceItem).where(EvidenceItem.candidate_id.in_([c.id for c in cands]),
                                   EvidenceItem.purged_at.is_(None))
    if start:
        q = q.where(EvidenceItem.captured_at >= start)
    if end:
        q = q.where(EvidenceItem.captured_at < end)
    return list(s.scalars(q.order_by(EvidenceItem.captured_at, EvidenceItem.id)))


def _notice_items(s: Session, cands: list[Candidate]) -> list[NoticeItem]:
    return list(s.scalars(select(NoticeItem).join(Match, NoticeItem.match_id == Match.id)
                          .where(Match.candidate_id.in_([c.id for c in cands])).order_by(NoticeItem.id)))


# ------------------------------------------------------------------ writing


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


class _Zip:
    """The zip being written, with the SHA-256 of each file for manifest.json."""

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)
        self.files: dict[str, dict[str, Any]] = {}

    def add(self, name: str, data: bytes, listed: bool = True) -> str:
        if name in self.files:
            return name
        self.zf.writestr(name, data)
        if listed:
            self.files[name] = {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        return name

    def add_stream(self, name: str, f: Any) -> str:
        """A large member (the case's WARC records) copied from an open file, hashed on the way."""
        digest, size = hashlib.sha256(), 0
        f.seek(0)
        with self.zf.open(name, "w", force_zip64=True) as dst:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
        self.files[name] = {"path": name, "sha256": digest.hexdigest(), "size": size}
        return name

    def close(self) -> None:
        self.zf.close()


def notice_record(n: Notice) -> dict[str, Any]:
    return {"id": n.id, "kind": n.kind, "parent_id": n.parent_id, "host": n.host.name if n.host else None,
            "recipient": n.recipient, "subject": n.subject, "message_id": n.message_id,
            "status": n.status.value, "regime": n.regime, "language": n.language,
            "created_at": _iso(n.created_at), "sent_at": _iso(n.sent_at), "attempts": n.attempts,
            "escalation_level": n.escalation_level, "body_text": n.body_text, "body_html": n.body_html,
            "acns_xml": n.acns_xml, "xarf_json": n.xarf_json,
            "items": [{"id": i.id, "url": i.url, "role": i.role.value, "state": i.state.value} for i in n.items]}


def export_case(s: Session, store: EvidenceStore, config: Config, scope: Scope, out: str | Path, *,
                lang: str = "en", pin: bool = False, now: datetime, actor: str = "cli",
                mail_of: Callable[[Notice], bytes] | None = None) -> ExportResult:
    """Write the case file of ``scope`` to ``out`` (see the module docstring). ``mail_of``
    rebuilds a sent notice's mail, byte for byte, from its stored fields (the caller
    passes ``notices.mail.build_message``'s: this layer does not import notices)."""
    from evidence.report import render_index

    if lang not in ("en", "fr"):
        raise InvalidInput(f"--lang must be en or fr, not {lang!r}")
    cands = [c for c in case_candidates(s, scope) if _seen_in(c, scope)]
    if not cands:
        raise NotFound(f"no page of {scope.describe()} was seen in that period")
    items = case_items(s, cands, scope)
    warnings: list[str] = []
    cert = config.get("evidence", "tsa_cert")
    chain = read_chain(cert) if cert else None
    # Tokens are checked on the way out: a case file never carries one that fails.
    manifests = {m.id: m for m in s.scalars(select(EvidenceManifest).where(
        EvidenceManifest.id.in_({i.manifest_id for i in items if i.manifest_id})))}
    for m in manifests.values():
        problem = check_manifest(store, m, chain)
        if problem:
            raise EvidenceError(f"cannot export: {problem}")
        if m.token is None:
            warnings.append(f"the manifest of {m.day} (id {m.id}) has no time-stamp token"
                            + (f": {m.token_error}" if m.token_error else ""))
    unlisted = [i.id for i in items if i.manifest_id is None]
    if unlisted:
        warnings.append(f"{len(unlisted)} item(s) captured since the last evidence run are in no "
                        "timestamped manifest yet")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    z = _Zip(tmp)
    try:
        listing = _write_items(z, store, items, manifests)
        notices = sorted({ni.notice for ni in _notice_items(s, cands)}, key=lambda n: n.id)
        for n in notices:
            z.add(f"notices/notice-{n.id}.json", json.dumps(notice_record(n), indent=1, ensure_ascii=False).encode())
            if n.body_text:
                z.add(f"notices/notice-{n.id}.txt", n.body_text.encode("utf-8"))
            if n.body_html:
                z.add(f"notices/notice-{n.id}.html", n.body_html.encode("utf-8"))
            if mail_of is not None and n.sent_at is not None:
                try:
                    z.add(f"notices/notice-{n.id}.eml", mail_of(n))
                except VigieError as exc:
                    warnings.append(f"notice {n.id}: its mail cannot be rebuilt: {exc}")
        replies = [r for source in REPLY_SOURCES for r in source(s, [n.id for n in notices])]
        for k, r in enumerate(replies, 1):
            z.add(f"replies/notice-{r.notice_id}-{k}.eml", r.raw)
        timeline = takedown_timeline(s, cands)
        z.add("timeline.json", json.dumps(timeline, indent=1, ensure_ascii=False).encode())
        if chain:
            z.add("tsa/chain.pem", chain)
        html = render_index(lang=lang, scope=scope.describe(), now=now, cands=cands, items=items,
                            notices=notices, timeline=timeline, replies=len(replies),
                            unstamped=sorted(m.day for m in manifests.values() if m.token is None),
                            unlisted=len(unlisted))
        z.add("index.html", html.encode("utf-8"))
        manifest = {"format": CASE_FORMAT, "created_at": _iso(now), "scope": scope.describe(),
                    "lang": lang, "files": sorted(z.files.values(), key=lambda f: f["path"]),
                    "items": listing,
                    "daily_manifests": [{"id": m.id, "day": m.day, "sha256": m.sha256,
                                         "file": f"daily/{m.day}-{m.sha256[:16]}.json",
                                         "token": f"daily/{m.day}-{m.sha256[:16]}.tsr" if m.token else None,
                                         "tsa_time": _iso(m.tsa_time)} for m in manifests.values()],
                    "tsa_chain": "tsa/chain.pem" if chain else None, "warnings": warnings}
        data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
        z.add("manifest.json", data, listed=False)
        stamped = False
        url = config.get("evidence", "tsa_url")
        if url and chain:
            try:
                stamp = request_stamp(data, url, chain, timeout=float(config.get("evidence", "tsa_timeout")))
                z.add("manifest.json.tsr", stamp.token, listed=False)
                stamped = True
            except EvidenceError as exc:
                warnings.append(f"manifest.json not timestamped: {exc}")
        else:
            warnings.append("manifest.json not timestamped: no [evidence] tsa_url and tsa_cert")
    finally:
        z.close()
    tmp.replace(out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    row = EvidenceExport(created_at=now, scope=scope.describe()[:2000], path=str(out.resolve())[:2000],
                         sha256=digest, item_ids=[i.id for i in items], pinned=pin)
    s.add(row)
    s.flush()
    s.add(AuditLog(actor=actor, action="evidence.export", object_type="evidence_export", object_id=row.id,
                   before=None, after={"scope": scope.describe()[:500], "sha256": digest, "items": len(items),
                                       "pinned": pin, "path": str(out)[:500]}))
    return ExportResult(out, digest, row.id, len(cands), len(items), len(z.files), stamped, warnings)


def _write_items(z: _Zip, store: EvidenceStore, items: list[EvidenceItem],
                 manifests: dict[int, EvidenceManifest]) -> list[dict[str, Any]]:
    """Every item's bytes into the zip (checked against its SHA-256 first); its listing.
    The WARC records are gathered in a spooled file: a site's captures can be large."""
    warc = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    listing = []
    for item in items:
        data = store.read_checked(item)
        entry: dict[str, Any] = {"id": item.id, "kind": item.kind, "sha256": item.sha256, "size": item.size,
                                 "candidate_id": item.candidate_id, "match_id": item.match_id,
                                 "check_id": item.check_id, "url": item.url, "ip": item.ip,
                                 "captured_at": _iso(item.captured_at), "meta": item.meta or {},
                                 "daily_manifest": item.manifest_id}
        if item.kind in WARC_KINDS:
            entry.update(file="warc/case.warc.gz", offset=warc.tell(), length=len(data))
            warc.write(data)
        else:
            name = f"{FOLDER.get(item.kind, 'other')}/{item.sha256}{SUFFIX.get(item.kind, '')}"
            entry["file"] = z.add(name, data)
        listing.append(entry)
    if warc.tell():
        z.add_stream("warc/case.warc.gz", warc)
    warc.close()
    for m in manifests.values():
        z.add(f"daily/{m.day}-{m.sha256[:16]}.json", store.read(m.path))
        if m.token:
            z.add(f"daily/{m.day}-{m.sha256[:16]}.tsr", m.token)
    return listing


def takedown_timeline(s: Session, cands: list[Candidate]) -> list[dict[str, Any]]:
    """Per notified URL: the notice, when it was sent, each check, the removal."""
    out = []
    for ni in _notice_items(s, cands):
        n = ni.notice
        checks = sorted(ni.checks, key=lambda c: (c.checked_at, c.id))
        out.append({"candidate_id": ni.match.candidate_id, "title_id": ni.match.title_id,
                    "url": ni.url, "role": ni.role.value, "notice_id": n.id, "notice_kind": n.kind,
                    "host": n.host.name if n.host else None, "recipient": n.recipient,
                    "notice_status": n.status.value, "sent_at": _iso(n.sent_at), "state": ni.state.value,
                    "removed_at": _iso(ni.removed_at), "due_at": _iso(ni.due_at),
                    "checks": [{"id": c.id, "checked_at": _iso(c.checked_at), "http_status": c.http_status,
                                "live": c.live, "detail": c.detail} for c in checks]})
    return out


def evidence_store(config: Config) -> EvidenceStore:
    """The configured store; EvidenceError when ``[evidence] dir`` is not set."""
    root = config.get("evidence", "dir")
    if not root:
        raise EvidenceError("no evidence directory: set [evidence] dir in the config file")
    return EvidenceStore(root)

