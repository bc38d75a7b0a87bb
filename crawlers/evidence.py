"""Where captured page bodies are kept: compressed, addressed by their SHA-256.

Crawl stage; a notice later cites the capture (hash, time, status, server address) and
staff can open the page exactly as it was. With an evidence directory the gzip file
lives at ``DIR/ab/abcdef....html.gz`` (content-addressed, so an unchanged page costs
nothing on re-crawl); without one the compressed body goes into the evidence JSON.
"""

from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path
from typing import Any


def store_body(evidence: dict[str, Any], evidence_dir: str | None) -> dict[str, Any]:
    """Move ``body_gz`` out of the captured evidence into its store; returns the JSON to keep."""
    out = dict(evidence)
    body_gz: bytes = out.pop("body_gz")
    sha = out["sha256"]
    if evidence_dir:
        out["body_path"] = _write_addressed(Path(evidence_dir) / sha[:2] / f"{sha}.html.gz", body_gz)
    else:
        out["body_gz_b64"] = base64.b64encode(body_gz).decode("ascii")
    return out


def _write_addressed(path: Path, data: bytes) -> str:
    """Write a content-addressed file once (an unchanged capture costs nothing); its path."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    return str(path.resolve())


def load_body(evidence: dict[str, Any]) -> bytes:
    """The page body as fetched, from wherever ``store_body`` put it."""
    if evidence.get("body_path"):
        data = gzip.decompress(Path(evidence["body_path"]).read_bytes())
    elif evidence.get("body_gz_b64"):
        data = gzip.decompress(base64.b64decode(evidence["body_gz_b64"]))
    else:
        raise FileNotFoundError("this evidence has no stored body")
    return data


def store_blob(data: bytes, evidence_dir: str | None, suffix: str) -> dict[str, Any]:
    """Keep a binary capture (the browser's screenshot) like a page body: addressed by its
    SHA-256 in the evidence directory, or base64 in the JSON without one."""
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    out: dict[str, Any] = {"sha256": sha, "size": len(data)}
    if evidence_dir:
        out["path"] = _write_addressed(Path(evidence_dir) / sha[:2] / f"{sha}{suffix}", data)
    else:
        out["b64"] = base64.b64encode(data).decode("ascii")
    return out


def load_blob(ref: dict[str, Any]) -> bytes:
    """The bytes ``store_blob`` kept, checked against their SHA-256 (evidence must be what
    was captured: a file changed since is refused)."""
    import hashlib

    if ref.get("path"):
        data = Path(ref["path"]).read_bytes()
    elif ref.get("b64"):
        data = base64.b64decode(ref["b64"])
    else:
        raise FileNotFoundError("this evidence has no stored file")
    if hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        raise FileNotFoundError("the stored file does not match its recorded SHA-256")
    return data
