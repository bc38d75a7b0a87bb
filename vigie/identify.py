"""Identify one video (file or http(s) URL) against the catalogue.

Returns the JSON object of the CLI contract (DESIGN.md): the video, its duration, how
many frames were hashed, the time taken, and the matches.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from db.models import Title
from fingerprint.extract import VideoFingerprint, fingerprint_query
from fingerprint.index import HashIndex
from fingerprint.matching import MatchResult, match
from fingerprint.sandbox import in_sandbox, run_sandboxed
from vigie.catalog import load_index
from vigie.netsafe import check_url, follow_redirects, on_loopback


def fingerprint_untrusted(source: str) -> VideoFingerprint:
    """Query fingerprint of a video we do not trust, decoded in the sandbox.

    The caller has checked a URL ``source`` (``check_url``); its redirects are walked and
    checked here, since FFmpeg, which then reads the final URL, follows none itself. A
    redirect may stay on loopback only if the checked URL was there already (the demo web
    and the tests, where the caller allowed loopback)."""
    if "://" in source:
        source = follow_redirects(source, allow_loopback=on_loopback(source))
    if in_sandbox():
        return run_sandboxed(fingerprint_query, source, label=source)
    return fingerprint_query(source)


def identify_fingerprint(
    fp: VideoFingerprint, index: HashIndex, ref_titles: dict[int, int]
) -> list[MatchResult]:
    return match(fp, index, ref_titles)


def identify(session: Session, source: str, *, index: tuple[HashIndex, dict[int, int]] | None = None,
             allow_loopback: bool = False, index_dir: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    if "://" in source:
        # Only http(s) to public addresses (loopback for the demo and tests only).
        check_url(source, allow_loopback=allow_loopback)
    fp = fingerprint_untrusted(source)
    idx, ref_titles = index or load_index(session, index_dir)
    results = identify_fingerprint(fp, idx, ref_titles)
    names = {t.id: t.title for t in session.query(Title).filter(Title.id.in_({m.title_id for m in results}))}
    matches = []
    for m in results:
        d = m.as_json()
        d = {"title_id": d.pop("title_id"), "title": names.get(m.title_id, ""), **d}
        matches.append(d)
    return {
        "video": source,
        "duration_s": round(fp.info.duration_s, 3),
        "frames_hashed": len(fp),
        "elapsed_s": round(time.perf_counter() - started, 3),
        "matches": matches,
    }
