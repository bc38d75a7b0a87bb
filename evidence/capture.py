"""Recording evidence items: what each stage hands to the evidence file.

Called by the stages (crawl through ``evidence.crawl``, match, verify): each capture's
bytes go to the store (``evidence.store``), and an ``EvidenceItem`` row says what they
are, when they were captured, and which candidate, match or check they prove. The
caller's session and transaction: an item is committed with the row it proves.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from db.models import EvidenceItem, Match, MatchFrame
from evidence.store import EvidenceStore, Fetch, Stored, day_of

# The kinds of item (EvidenceItem.kind).
PAGE = "page"                  # the link page: WARC request + response
PLAYER = "player"              # an embedded player page: WARC request + response
MEDIA_HEADERS = "media"        # the media URL's response headers (first bytes only): WARC
SCREENSHOT = "screenshot"      # the browser resolver's rendering: PNG
HAR = "har"                    # every request the rendered page made (gzip HAR, no bodies)
FRAMES = "frames"              # reference and candidate frames side by side: JPEG
MATCH = "match"                # the fingerprint match (score, offsets): JSON
VERIFY = "verify"              # a verification fetch after a notice: WARC
KINDS = (PAGE, PLAYER, MEDIA_HEADERS, SCREENSHOT, HAR, FRAMES, MATCH, VERIFY)


def add_item(s: Session, stored: Stored, kind: str, captured_at: datetime, **fields: Any) -> EvidenceItem:
    """The row of one stored capture (``fields``: candidate_id, match_id, check_id, url,
    ip, meta)."""
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}")
    at = captured_at if captured_at.tzinfo else captured_at.replace(tzinfo=timezone.utc)
    item = EvidenceItem(kind=kind, captured_at=at, day=day_of(at), meta=fields.pop("meta", None) or {},
                        **stored.row(), **fields)
    s.add(item)
    return item


def capture_fetch(s: Session, store: EvidenceStore, fetch: Fetch, kind: str, **fields: Any) -> EvidenceItem:
    """Keep an HTTP exchange as WARC records and record it."""
    stored = store.append_warc(fetch)
    meta = {"status": fetch.status, **({"error": fetch.error[:500]} if fetch.error else {}),
            **(fields.pop("meta", None) or {})}
    return add_item(s, stored, kind, fetch.fetched_at, url=fetch.url[:2000], ip=fetch.ip, meta=meta, **fields)


def match_record(m: Match) -> dict[str, Any]:
    """What a court needs of a fingerprint match: which title and reference, how strong,
    where in each video, and the decision (with the matching's own details)."""
    return {
        "match_id": m.id, "candidate_id": m.candidate_id, "title_id": m.title_id,
        "title": m.title.title if m.title else None, "reference_id": m.reference_id,
        "media_url": m.media_url, "score": m.score, "matched_s": m.matched_s,
        "offset_s": m.offset_s, "speed": m.speed, "cand_start_s": m.cand_start_s,
        "cand_end_s": m.cand_end_s, "ref_start_s": m.ref_start_s, "ref_end_s": m.ref_end_s,
        "decision": m.decision.value, "details": m.details or {},
        "created_at": m.created_at.isoformat() if m.created_at else None,
    }


def record_match(s: Session, store: EvidenceStore, m: Match, now: datetime) -> list[EvidenceItem]:
    """The match record (JSON) and, when the thumbnails were made, the frames side by side."""
    s.flush()
    data = json.dumps(match_record(m), sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
    items = [add_item(s, store.put_blob(data, ".json"), MATCH, now, candidate_id=m.candidate_id,
                      match_id=m.id, url=m.media_url, meta={"score": m.score, "offset_s": m.offset_s})]
    frames = s.query(MatchFrame).filter(MatchFrame.match_id == m.id).one_or_none()
    if frames is not None and frames.ref_jpeg and frames.cand_jpeg:
        picture = side_by_side(frames.ref_jpeg, frames.cand_jpeg)
        items.append(add_item(s, store.put_blob(picture, ".jpg"), FRAMES, now, candidate_id=m.candidate_id,
                              match_id=m.id, url=m.media_url,
                              meta={"ref_t": frames.ref_t, "cand_t": frames.cand_t}))
    return items


def side_by_side(ref_jpeg: bytes, cand_jpeg: bytes) -> bytes:
    """One JPEG: the reference frame on the left, the candidate's on the right, same height."""
    from PIL import Image

    ref = Image.open(io.BytesIO(ref_jpeg)).convert("RGB")
    cand = Image.open(io.BytesIO(cand_jpeg)).convert("RGB")
    h = max(ref.height, cand.height)
    ref = ref.resize((max(1, ref.width * h // ref.height), h))
    cand = cand.resize((max(1, cand.width * h // cand.height), h))
    gap = 8
    out = Image.new("RGB", (ref.width + gap + cand.width, h), (255, 255, 255))
    out.paste(ref, (0, 0))
    out.paste(cand, (ref.width + gap, 0))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def keep_verify_fetches(s: Session, store: EvidenceStore, now: datetime, fetches: list[Fetch]) -> list[EvidenceItem]:
    """Keep the verify stage's fetches of this run (``now``: the time its checks carry),
    each tied to the check it decided and the candidate it concerns."""
    from sqlalchemy import select

    from db.models import Check

    s.flush()
    by_url: dict[str, tuple[int, int]] = {}
    for check in s.scalars(select(Check).where(Check.checked_at == now)):
        cand = check.item.match.candidate
        by_url.setdefault(check.item.url, (check.id, cand.id))
        for media in cand.media_urls or []:
            if isinstance(media, str):
                by_url.setdefault(media, (check.id, cand.id))
    out = []
    for fetch in fetches:
        check_id, cand_id = by_url.get(fetch.url, (None, None))
        out.append(capture_fetch(s, store, fetch, VERIFY, check_id=check_id, candidate_id=cand_id))
    return out
