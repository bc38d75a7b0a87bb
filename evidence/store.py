"""Where evidence bytes live: content-addressed files and daily WARC files, append-only.

Under ``[evidence] dir``:

- ``blobs/ab/abcdef....png``: a file named by the SHA-256 of its bytes (a screenshot,
  the frames side by side, a match record), written once; the same bytes again cost
  nothing.
- ``warc/2026-12-04/vigie-<host>-<pid>.warc.gz``: the day's WARC file of one writing
  process, only ever appended to, one gzip member per record (any record can be cut
  out by its byte range and read alone). One file per process, so parallel crawls
  never interleave their records; threads of one process take turns.
- ``manifests/``: the daily manifests and their time-stamp tokens (``evidence.manifest``).

Nothing here is rewritten: an item's ``sha256`` covers exactly its bytes (a blob, or the
byte range of its records), so a later read shows whether they changed.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from foundation.errors import EvidenceError, NotFound

# Response headers that describe the transfer, not the body as kept (Scrapy and urllib
# hand us the body de-chunked and decompressed): kept under the Wayback convention's
# X-Archive-Orig- prefix so the record stays readable and the original stays visible.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


@dataclass
class Fetch:
    """One HTTP exchange as captured: what was asked, what came back, from which address."""

    url: str
    fetched_at: datetime
    status: int | None
    reason: str = ""
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ip: str | None = None
    method: str = "GET"
    truncated: str | None = None   # WARC-Truncated: "length" when the body was cut short
    error: str | None = None       # no HTTP answer (then only a request record is kept)


@dataclass(frozen=True)
class Stored:
    """Where an item's bytes went (the fields of an ``EvidenceItem`` the store decides)."""

    sha256: str
    size: int
    path: str                 # relative to the evidence directory
    offset: int | None = None
    length: int | None = None

    def row(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "path": self.path,
                "offset": self.offset, "length": self.length}


_APPEND_LOCK = threading.Lock()


def day_of(at: datetime) -> str:
    """The UTC day an item belongs to (the manifests are per UTC day)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).date().isoformat()


class EvidenceStore:
    """The evidence directory. Safe to use from several processes at once."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    # ------------------------------------------------------------------ blobs

    def put_blob(self, data: bytes, suffix: str) -> Stored:
        sha = hashlib.sha256(data).hexdigest()
        rel = f"blobs/{sha[:2]}/{sha}{suffix}"
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        return Stored(sha, len(data), rel)

    # ------------------------------------------------------------------ WARC

    def append_warc(self, fetch: Fetch) -> Stored:
        """Append the request and response records of ``fetch`` to today's WARC file of
        this process; where they went and the SHA-256 of their bytes."""
        data = warc_records(fetch)
        day = day_of(fetch.fetched_at)
        rel = f"warc/{day}/vigie-{_safe(socket.gethostname())}-{os.getpid()}.warc.gz"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # One writing process per file; inside it, threads (the scheduler's jobs, a
        # worker's concurrent tasks) take turns, so an item's offset is where its bytes went.
        with _APPEND_LOCK, open(path, "ab") as f:
            if f.tell() == 0:
                f.write(warcinfo_record(path.name))
            offset = f.tell()
            f.write(data)
            f.flush()
        return Stored(hashlib.sha256(data).hexdigest(), len(data), rel, offset, len(data))

    # ------------------------------------------------------------------ reading

    def path(self, rel: str) -> Path:
        """The absolute path of a stored file (refusing anything outside the store)."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise NotFound(f"not inside the evidence directory: {rel}")
        return path

    def read(self, path: str, offset: int | None = None, length: int | None = None) -> bytes:
        """The bytes of an item (a whole blob, or a WARC byte range)."""
        p = self.path(path)
        if not p.exists():
            raise NotFound(f"evidence file missing: {path}")
        with open(p, "rb") as f:
            if offset is None:
                return f.read()
            f.seek(offset)
            return f.read(length or 0)

    def read_checked(self, item: Any) -> bytes:
        """An item's bytes, refused (EvidenceError) when they no longer match its SHA-256."""
        data = self.read(item.path, item.offset, item.length)
        if hashlib.sha256(data).hexdigest() != item.sha256:
            raise EvidenceError(f"evidence item {item.id} ({item.path}) does not match its SHA-256: altered")
        return data


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)[:60] or "host"


def warcinfo_record(filename: str) -> bytes:
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    writer.write_record(writer.create_warcinfo_record(filename, {
        "software": "Vigie (evidence.store)", "format": "WARC File Format 1.0",
        "description": "Captures kept as evidence of infringement; never rewritten"}))
    return out.getvalue()


def warc_records(fetch: Fetch) -> bytes:
    """The gzip members of ``fetch``'s request record and, when an answer came, its
    response record (WARC-IP-Address: the server's address; WARC-Date: the fetch)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.timeutils import datetime_to_iso_date
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    at = fetch.fetched_at if fetch.fetched_at.tzinfo else fetch.fetched_at.replace(tzinfo=timezone.utc)
    warc_date = datetime_to_iso_date(at.astimezone(timezone.utc).replace(tzinfo=None))
    parts = urlsplit(fetch.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    req_headers = [(k, v) for k, v in fetch.request_headers if k.lower() != "host"]
    req_headers.insert(0, ("Host", parts.netloc))
    req_http = StatusAndHeaders(f"{fetch.method} {target} HTTP/1.1", req_headers, is_http_request=True)
    extra = {"WARC-Date": warc_date}
    if fetch.ip:
        extra["WARC-IP-Address"] = fetch.ip
    request = writer.create_warc_record(fetch.url, "request", payload=io.BytesIO(b""), length=0,
                                        http_headers=req_http, warc_headers_dict=dict(extra))
    if fetch.status is None:
        writer.write_record(request)
        return out.getvalue()
    headers = []
    for k, v in fetch.response_headers:
        headers.append((f"X-Archive-Orig-{k}", v) if k.lower() in _TRANSFER_HEADERS else (k, v))
    headers.append(("Content-Length", str(len(fetch.body))))
    resp_http = StatusAndHeaders(f"{fetch.status} {fetch.reason or ''}".strip(), headers, protocol="HTTP/1.1")
    if fetch.truncated:
        extra["WARC-Truncated"] = fetch.truncated
    response = writer.create_warc_record(fetch.url, "response", payload=io.BytesIO(fetch.body),
                                         length=len(fetch.body), http_headers=resp_http,
                                         warc_headers_dict=extra)
    writer.write_request_response_pair(request, response)
    return out.getvalue()


def read_records(data: bytes) -> list[Any]:
    """The WARC records in ``data`` (for checks and the case file's index)."""
    from warcio.archiveiterator import ArchiveIterator

    out = []
    for rec in ArchiveIterator(io.BytesIO(data)):
        out.append({"type": rec.rec_type, "uri": rec.rec_headers.get_header("WARC-Target-URI"),
                    "date": rec.rec_headers.get_header("WARC-Date"),
                    "ip": rec.rec_headers.get_header("WARC-IP-Address"),
                    "status": rec.http_headers.get_statuscode() if rec.http_headers and rec.rec_type == "response"
                    else None,
                    "body": rec.content_stream().read()})
    return out
