"""Identify one video (file or http(s) URL) against the catalogue.

Returns the JSON object of the CLI contract (DESIGN.md): the video, its duration, how
many frames were hashed, the time taken, and the matches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from db.models import Title
from fingerprint.extract import VideoFingerprint, fingerprint_query
from fingerprint.index import HashIndex
from fingerprint.matching import MatchResult, match
from fingerprint.sandbox import in_sandbox, run_sandboxed
from vigie.catalog import load_index
from vigie.netsafe import check_url, media_loopback


def fingerprint_untrusted(source: str, mode: str = "auto") -> VideoFingerprint:
    """Query fingerprint of a video we do not trust, decoded in the sandbox.

    The caller has checked a URL ``source`` (``check_url``). The decoder reads it through
    ``vigie.netsafe.MediaOpener``: each redirect hop, playlist segment and key is checked
    in turn and every connection goes to the checked address (no second DNS lookup).
    Loopback is allowed to them only as the caller says (``netsafe.media_loopback``), or
    when ``source`` names a loopback IP itself (the demo web and the tests)."""
    if in_sandbox():
        return run_sandboxed(partial(fingerprint_query, mode=mode), source, label=source)
    return fingerprint_query(source, mode=mode)


def strength(results: list[MatchResult]) -> tuple[int, float]:
    """How strong the best match of a result list is, for choosing between two looks."""
    films = [m for m in results if m.decision != "allowed"]
    if not films:
        return (0, sum(m.weight for m in results))
    return (2 if films[0].decision == "confirmed" else 1, films[0].weight)


def identify_source(
    source: str,
    index: HashIndex,
    ref_titles: dict[int, int],
    *,
    fingerprint: Callable[..., VideoFingerprint] = fingerprint_untrusted,
) -> tuple[VideoFingerprint, list[MatchResult]]:
    """Fingerprint and match one video, looking closer when a first look is not enough.

    A file with keyframes at most shot changes is first read from its keyframes alone
    (a small share of the decoding work); a long video is first glanced at by seeking to
    a few points across it (a small share of its bytes). If that confirms nothing, the
    evidence may simply be too sparse (a re-edit, a short excerpt, a film inside a longer
    video): the video is sampled closer (a full decode, or three times as many seeks) and
    matched again, and the stronger result is kept."""
    fp = fingerprint(source)
    closer_mode = {"keyframes": "dense", "glance": "seek"}.get(fp.mode)
    # A first look that a closer one may follow gets the first pass only: the search
    # for crops and inner pictures is done once, on the closer look's frames.
    results = match(fp, index, ref_titles, thorough=closer_mode is None)
    if closer_mode and not any(m.decision == "confirmed" for m in results):
        closer = fingerprint(source, mode=closer_mode)
        more = match(closer, index, ref_titles)
        if strength(more) >= strength(results):
            fp, results = closer, more
    return fp, results


def identify(session: Session, source: str, *, index: tuple[HashIndex, dict[int, int]] | None = None,
             allow_loopback: bool = False, index_dir: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    if "://" in source:
        # Only http(s) to public addresses (loopback for the demo and tests only).
        check_url(source, allow_loopback=allow_loopback)
    idx, ref_titles = index or load_index(session, index_dir)
    with media_loopback(allow_loopback):
        fp, results = identify_source(source, idx, ref_titles)
    names = {t.id: t.title for t in session.query(Title).filter(Title.id.in_({m.title_id for m in results}))}
    matches = []
    for m in results:
        if m.decision == "allowed":
            continue
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
