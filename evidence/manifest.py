"""The daily manifests and their time-stamp tokens (the evidence stage).

Each run lists every item captured before now and not yet in a manifest, per UTC day,
in a manifest file (canonical JSON: each item's id, kind, SHA-256, size and capture
time; no URL, so a case file carrying a day's manifest reveals nothing of other cases)
named by its own SHA-256, and asks the time-stamping authority for a token over it.
Run daily (``[schedule] evidence_every``) that is one manifest per day; a day's late
items go into a further manifest of that day. A manifest whose token could not be had
(authority down, refused, a token that does not verify) is retried on the next run;
the manifest itself is kept either way.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EvidenceItem, EvidenceManifest
from evidence.store import EvidenceStore
from evidence.timestamp import read_chain, request_stamp, verify_token
from foundation.config import Config
from foundation.errors import EvidenceError

FORMAT = "vigie-evidence-manifest/1"


@dataclass
class StampResult:
    manifests: list[int] = field(default_factory=list)    # manifests written this run
    items: int = 0
    stamped: list[int] = field(default_factory=list)
    unstamped: list[int] = field(default_factory=list)    # no authority configured
    errors: list[str] = field(default_factory=list)


def manifest_bytes(day: str, created_at: datetime, items: list[EvidenceItem]) -> bytes:
    body: dict[str, Any] = {
        "format": FORMAT, "day": day, "created_at": created_at.isoformat(),
        "items": [{"id": i.id, "kind": i.kind, "sha256": i.sha256, "size": i.size,
                   "captured_at": i.captured_at.isoformat()} for i in items],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def write_manifests(s: Session, store: EvidenceStore, now: datetime) -> tuple[list[EvidenceManifest], int]:
    """A manifest per day for the items captured before ``now`` and in none yet."""
    pending = list(s.scalars(select(EvidenceItem).where(
        EvidenceItem.manifest_id.is_(None), EvidenceItem.captured_at <= now,
        EvidenceItem.purged_at.is_(None)).order_by(EvidenceItem.id)))
    by_day: dict[str, list[EvidenceItem]] = defaultdict(list)
    for item in pending:
        by_day[item.day].append(item)
    out = []
    for day, items in sorted(by_day.items()):
        data = manifest_bytes(day, now, items)
        stored = store.put_blob(data, ".json")  # content-addressed: never overwritten
        m = EvidenceManifest(day=day, created_at=now, sha256=stored.sha256, path=stored.path, items=len(items))
        s.add(m)
        s.flush()
        for item in items:
            item.manifest_id = m.id
        out.append(m)
    return out, len(pending)


def stamp_pending(s: Session, store: EvidenceStore, config: Config) -> tuple[list[int], list[int], list[str]]:
    """Ask for a token for every manifest without one; (stamped, unstamped, errors)."""
    url, cert = config.get("evidence", "tsa_url"), config.get("evidence", "tsa_cert")
    todo = list(s.scalars(select(EvidenceManifest).where(EvidenceManifest.token.is_(None))
                          .order_by(EvidenceManifest.id)))
    if not url:
        return [], [m.id for m in todo], []
    if not cert:
        why = "[evidence] tsa_cert is not set: tokens from the authority could not be checked"
        for m in todo:
            m.token_error = why
        return [], [], [why] if todo else []
    chain = read_chain(cert)
    stamped, errors = [], []
    for m in todo:
        data = store.read(m.path)
        if hashlib.sha256(data).hexdigest() != m.sha256:
            m.token_error = "the manifest file changed since it was written: not stamped"
            errors.append(f"manifest {m.id} ({m.day}): {m.token_error}")
            continue
        try:
            stamp = request_stamp(data, url, chain, timeout=float(config.get("evidence", "tsa_timeout")))
        except EvidenceError as exc:
            m.token_error = str(exc)[:2000]
            errors.append(f"manifest {m.id} ({m.day}): {exc}")
            continue
        store.put_blob(stamp.token, ".tsr")
        m.token, m.tsa_url, m.tsa_time, m.token_error = stamp.token, url, stamp.gen_time, None
        stamped.append(m.id)
    return stamped, [], errors


def stamp(s: Session, store: EvidenceStore, config: Config, now: datetime) -> StampResult:
    """Write the manifests of what was captured since the last run and have every
    unstamped manifest timestamped (the evidence stage's first half)."""
    made, items = write_manifests(s, store, now)
    stamped, unstamped, errors = stamp_pending(s, store, config)
    return StampResult([m.id for m in made], items, stamped, unstamped, errors)


def check_manifest(store: EvidenceStore, m: EvidenceManifest, chain: bytes | None) -> str | None:
    """What is wrong with a stored manifest and its token (None: both hold)."""
    try:
        data = store.read(m.path)
    except Exception as exc:  # noqa: BLE001 - a missing file is the answer, not a crash
        return f"manifest {m.id} ({m.day}): {exc}"
    if hashlib.sha256(data).hexdigest() != m.sha256:
        return f"manifest {m.id} ({m.day}): the file does not match its SHA-256: altered"
    if m.token is None:
        return None
    if chain is None:
        return f"manifest {m.id} ({m.day}): [evidence] tsa_cert is not set: its token cannot be checked"
    try:
        verify_token(m.token, data, chain)
    except EvidenceError as exc:
        return f"manifest {m.id} ({m.day}): {exc}"
    return None
