"""Identify one video (file or http(s) URL) against the catalogue.

Returns the JSON object of `vigie identify --json` (README, "Commands"): the video, its duration, how
many frames were hashed, the time taken, and the matches (films, confirmed or for
review), plus ``allowed``: what allowed material (a trailer, a logo) explains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ReferenceVideo, Title
from fingerprint.extract import VideoFingerprint, fingerprint_query
from fingerprint.index import HashIndex
from fingerprint.matching import MatchResult, match
from fingerprint.sandbox import in_sandbox, run_in_worker
from stages.catalog import load_index
from foundation.netsafe import check_url, media_loopback, media_loopback_setting


ALLOWED = "allowed"  # the decision of a result explained by allowed material (fingerprint.matching)


def strength(results: list[MatchResult]) -> tuple[int, float]:
    """How strong the best match of a result list is, for choosing between two looks:
    a confirmed film match, then one for review, then allowed material only."""
    film = [m for m in results if m.decision != ALLOWED]
    if film:  # in the matcher's order: confirmed first
        return (3 if film[0].decision == "confirmed" else 2, film[0].weight)
    if results:
        return (1, max(m.weight for m in results))
    return (0, 0.0)


def identify_source(
    source: str,
    index: HashIndex,
    ref_titles: dict[int, int],
    *,
    fingerprint: Callable[..., VideoFingerprint] | None = None,
) -> tuple[VideoFingerprint, list[MatchResult]]:
    """Fingerprint and match one video, looking closer when a first look is not enough.

    A file with keyframes at most shot changes is first read from its keyframes alone
    (a small share of the decoding work); a long video is first glanced at by seeking to
    a few points across it (a small share of its bytes). If that confirms nothing, the
    evidence may simply be too sparse (a re-edit, a short excerpt, a film inside a longer
    video): the video is sampled closer (a full decode, or three times as many seeks) and
    matched again, and the stronger result is kept. A full decode of a file is itself
    taken in two rounds: the first half of its frames is matched as a first look, and
    the rest decoded only when that confirms nothing (``decode.decode_in_rounds``).

    The whole of it runs in the sandbox (``fingerprint.sandbox.run_in_worker``, forked
    with the index in its memory), decoding and matching both: only the results and the
    fingerprint's hashes come back (``VideoFingerprint.without_pictures``), not the
    decoded pictures the matcher looks into. ``fingerprint``: decode with that instead,
    here (``fingerprint_query`` or one with its parameters).

    The caller has checked a URL ``source`` (``check_url``). The decoder reads it through
    ``foundation.netsafe.MediaOpener``: each redirect hop, playlist segment and key is
    checked in turn and every connection goes to the checked address (no second DNS
    lookup). Loopback is allowed to them only as the caller says
    (``netsafe.media_loopback``, handed to the worker, which was forked before the caller
    entered it), or when ``source`` names a loopback IP itself (the demo web and the
    tests)."""
    if fingerprint is None:
        if in_sandbox():
            return run_in_worker(_identify_as, source, media_loopback_setting(), label=source,
                                 context=(index, ref_titles))
        fingerprint = fingerprint_query
    return _looks(source, index, ref_titles, fingerprint)


def _identify_as(catalogue: tuple[HashIndex, dict[int, int]], source: str,
                 loopback: bool | None) -> tuple[VideoFingerprint, list[MatchResult]]:
    """``identify_source`` in the sandbox worker, under the caller's loopback setting."""
    with nullcontext() if loopback is None else media_loopback(loopback):
        fp, results = _looks(source, *catalogue, fingerprint_query)
    return fp.without_pictures(), results


def _looks(source: str, index: HashIndex, ref_titles: dict[int, int],
           fingerprint: Callable[..., VideoFingerprint]) -> tuple[VideoFingerprint, list[MatchResult]]:
    # A first look that a closer one may follow gets the first pass only: the search
    # for crops and inner pictures is done once, on the closer look's frames. So does
    # the first round of a dense decode (``fingerprint_query``'s ``enough``).
    first: list[list[MatchResult]] = []

    def enough(part: VideoFingerprint) -> bool:
        first.append(match(part, index, ref_titles, thorough=False))
        return confirmed(first[-1])

    fp = fingerprint(source, enough=enough)
    if fp.mode == "dense-first":
        return fp, first[-1]
    closer_mode = {"keyframes": "dense", "glance": "seek"}.get(fp.mode)
    results = match(fp, index, ref_titles, thorough=closer_mode is None)
    if closer_mode and not confirmed(results):
        # Allowed material alone is no reason to stop: the film may be there beyond it.
        closer = fingerprint(source, mode=closer_mode, enough=enough)
        more = first[-1] if closer.mode == "dense-first" else match(closer, index, ref_titles)
        if strength(more) >= strength(results):
            fp, results = closer, more
    return fp, results


def confirmed(results: list[MatchResult]) -> bool:
    return any(m.decision == "confirmed" for m in results)


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
        if m.decision == ALLOWED:
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
        "allowed": allowed_json(session, results, names),
    }


def allowed_json(session: Session, results: list[MatchResult], names: dict[int, str]) -> list[dict[str, Any]]:
    """The results explained by allowed material, for ``identify --json``: which
    reference, its title (if any) and reason, and where it plays in the copy."""
    allowed = [m for m in results if m.decision == ALLOWED]
    if not allowed:
        return []
    reasons = dict(session.execute(select(ReferenceVideo.id, ReferenceVideo.allowed_reason)
                                   .where(ReferenceVideo.id.in_({m.ref_id for m in allowed}))).all())
    out = []
    for m in allowed:
        reason = reasons.get(m.ref_id)
        out.append({"ref_id": m.ref_id, "title_id": m.title_id, "title": names.get(m.title_id) if m.title_id else None,
                    "reason": reason.value if reason is not None else None, "matched_s": round(m.matched_s, 2),
                    "cand_start_s": round(m.cand_start_s, 2), "cand_end_s": round(m.cand_end_s, 2),
                    "ref_start_s": round(m.ref_start_s, 2), "ref_end_s": round(m.ref_end_s, 2),
                    "score": round(m.score, 4)})
    return out
