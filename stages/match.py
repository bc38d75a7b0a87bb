"""The match stage: fingerprint pending candidates and store their matches.

Input: Candidate rows in status ``pending`` (written by the crawlers) with their media
URLs. Output: Match rows (one per candidate and title) and the candidate's new status:
``matched``, ``no_match``, or ``allowed`` when allowed material alone (a trailer the
studio published, a logo) explains it; its matches are then stored with decision
``allowed``, which no notice is ever built from.
Each candidate is claimed before work (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
guarded status update on SQLite) and finished in its own transaction, so several
workers can run this at once and a crash loses at most the candidate in hand, which
stays ``matching`` until released (see ``release_claims``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Candidate, CandidateStatus, Decision, Match, ReferenceVideo, ReviewState
from fingerprint.index import HashIndex
from fingerprint.matching import MatchResult
from reports.thumbs import capture_match_frames
from stages.catalog import load_index
from foundation.errors import MediaError, UnsafeAddress
from fingerprint.extract import VideoFingerprint
from stages.identify import ALLOWED, identify_source, strength
from foundation.netsafe import check_url, media_loopback

log = logging.getLogger(__name__)

# A candidate fails for good after this many attempts (a dead link stays dead).
MAX_ATTEMPTS = 3


@dataclass
class MatchStats:
    candidates: int = 0
    matched: int = 0
    confirmed: int = 0
    review: int = 0
    allowed: int = 0  # candidates explained only by allowed material: no notice
    no_match: int = 0
    failed: int = 0
    # Media not had this time, tried again by a later run (failed after MAX_ATTEMPTS).
    retry: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


def _claim(Session: sessionmaker[Session], skip: set[int]) -> int | None:
    """Claim one pending candidate; returns its id, or None when there is none."""
    with Session.begin() as s:
        q = select(Candidate.id).where(Candidate.status == CandidateStatus.PENDING)
        if skip:
            q = q.where(Candidate.id.not_in(skip))
        q = q.order_by(Candidate.id).limit(1)
        if s.bind is not None and s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        cid = s.scalar(q)
        if cid is None:
            return None
        done = s.execute(
            update(Candidate)
            .where(Candidate.id == cid, Candidate.status == CandidateStatus.PENDING)
            .values(status=CandidateStatus.MATCHING, attempts=Candidate.attempts + 1)
        )
        return cid if done.rowcount == 1 else -1


def _to_store(results: list[MatchResult]) -> list[MatchResult]:
    """The results a candidate keeps: its film matches; or, when allowed material alone
    explains it (a trailer, a logo), the best allowed result per title (or of no title),
    so review can show why no notice went out. Allowed material beside a film match says
    nothing a notice needs and is not kept."""
    film = [r for r in results if r.decision != ALLOWED]
    if film:
        return film
    best: dict[int | None, MatchResult] = {}
    for r in results:
        key = r.title_id if r.title_id is not None and r.title_id >= 0 else None
        if key not in best or r.weight > best[key].weight:
            best[key] = r
    return list(best.values())


def store_matches(s: Session, cand: Candidate, media_url: str, results: list[MatchResult]) -> list[Match]:
    """Insert or refresh the candidate's matches; a pair staff rejected never comes back.

    A match explained only by allowed material is stored with decision ``allowed``: no
    notice is ever built from it (``notices.build`` takes confirmed or approved matches)."""
    out = []
    for r in _to_store(results):
        allowed = r.decision == ALLOWED
        title_id = r.title_id if r.title_id is not None and r.title_id >= 0 else None
        q = select(Match).where(Match.candidate_id == cand.id)
        # Allowed material of no title: one row per reference (a NULL title is unique to nothing).
        q = q.where(Match.title_id == title_id) if title_id is not None else \
            q.where(Match.title_id.is_(None), Match.reference_id == r.ref_id)
        row = s.scalar(q)
        if row is not None and row.review == ReviewState.REJECTED:
            continue
        if row is None:
            row = Match(candidate_id=cand.id, title_id=title_id)
            s.add(row)
        row.reference_id = r.ref_id
        row.media_url = media_url
        row.score, row.matched_s, row.offset_s, row.speed = r.score, r.matched_s, r.offset_s, r.speed
        row.cand_start_s, row.cand_end_s = r.cand_start_s, r.cand_end_s
        row.ref_start_s, row.ref_end_s = r.ref_start_s, r.ref_end_s
        # A human's confirmation stands; otherwise the machine's decision is refreshed.
        if row.review != ReviewState.APPROVED:
            row.decision = Decision(r.decision)
        details: dict[str, object] = {"frames": r.frames, "segments": r.segments,
                                      "mean_distance": round(r.mean_distance, 2),
                                      "offset_uncertainty_s": round(r.offset_uncertainty_s, 2)}
        if allowed:
            reason = s.scalar(select(ReferenceVideo.allowed_reason).where(ReferenceVideo.id == r.ref_id))
            details["allowed_reason"] = reason.value if reason is not None else None
        row.details = details
        out.append(row)
    s.flush()
    return out


def match_candidate(
    s: Session, cand: Candidate, index: tuple[HashIndex, dict[int, int]],
    fingerprint: Callable[..., VideoFingerprint] | None = None,
    *, allow_loopback: bool = False,
) -> list[Match]:
    """Fingerprint each media URL of one candidate; store the matches of the best one.

    Media URLs come from pirate pages: each is checked (http(s) only, public addresses
    only unless ``allow_loopback``) before anything fetches it."""
    if not cand.media_urls:
        raise MediaError("no media URL found on the page")
    best: tuple[str, list[MatchResult]] | None = None
    errors = []
    for url in cand.media_urls:
        try:
            check_url(url, allow_loopback=allow_loopback)
            with media_loopback(allow_loopback):
                _, results = identify_source(url, *index, fingerprint=fingerprint)
        except (MediaError, UnsafeAddress) as exc:
            errors.append(str(exc))
            continue
        if best is None or strength(results) > strength(best[1]):
            best = (url, results)
    if best is None:
        raise MediaError("; ".join(errors)[:1000])
    return store_matches(s, cand, best[0], best[1])


def finish_candidate(
    s: Session, cand: Candidate, index: tuple[HashIndex, dict[int, int]], *,
    allow_loopback: bool = False, thumbnails: bool = True,
    fingerprint: Callable[..., VideoFingerprint] | None = None,
    evidence_dir: str | None = None,
) -> list[Match] | None:
    """Match one claimed candidate and set its final status (the body of a match job).

    Returns the stored matches, or None when its media could not be had: then the
    error is kept and the candidate goes back to pending, or to failed after
    MAX_ATTEMPTS (the caller has counted this attempt)."""
    try:
        rows = match_candidate(s, cand, index, fingerprint, allow_loopback=allow_loopback)
        if thumbnails:
            for row in rows:
                capture_match_frames(s, row, None, row.media_url)
    except MediaError as exc:
        cand.error = str(exc)[:2000]
        cand.status = CandidateStatus.FAILED if cand.attempts >= MAX_ATTEMPTS else CandidateStatus.PENDING
        return None
    cand.error = None
    cand.status = (CandidateStatus.NO_MATCH if not rows
                   else CandidateStatus.ALLOWED if all(r.decision == Decision.ALLOWED for r in rows)
                   else CandidateStatus.MATCHED)
    if evidence_dir:
        keep_match_evidence(s, cand, rows, evidence_dir, allow_loopback=allow_loopback)
    return rows


# A page listing more media URLs than this has its first ones' headers kept.
MAX_MEDIA_CAPTURES = 5


def keep_match_evidence(s: Session, cand: Candidate, rows: list[Match], evidence_dir: str, *,
                        allow_loopback: bool) -> None:
    """The evidence file's part of a match: the media URLs' response headers (WARC), the
    match records and the frames side by side. Evidence that cannot be had is said in
    the candidate's evidence JSON, never a reason to fail the match."""
    from evidence.capture import MEDIA_HEADERS, capture_fetch, record_match
    from evidence.fetch import fetch_head
    from evidence.store import EvidenceStore
    from foundation.timeutil import utc_now

    store = EvidenceStore(evidence_dir)
    problems = []
    try:
        for url in [u for u in cand.media_urls or [] if isinstance(u, str)][:MAX_MEDIA_CAPTURES]:
            for fetch in fetch_head(url, allow_loopback=allow_loopback):
                capture_fetch(s, store, fetch, MEDIA_HEADERS, candidate_id=cand.id)
        for row in rows:
            record_match(s, store, row, utc_now())
    except (OSError, ValueError) as exc:
        problems.append(f"evidence not kept: {type(exc).__name__}: {exc}"[:500])
    if problems:
        cand.evidence = {**(cand.evidence or {}), "evidence_problems": problems}


def match_pending(
    Session: sessionmaker[Session],
    *,
    limit: int | None = None,
    on_item: Callable[[Candidate, str], None] | None = None,
    allow_loopback: bool = False,
    thumbnails: bool = True,
    index_dir: str | None = None,
    stop: threading.Event | None = None,
    evidence_dir: str | None = None,
) -> MatchStats:
    """Process pending candidates until none is left (or ``limit`` were processed, or
    ``stop`` is set: then after the candidate in hand).

    With ``thumbnails``, each stored match gets its side-by-side frames (reference and
    candidate at the matched timecode) for the report and the review app."""
    stats = MatchStats()
    with Session() as s:
        index = load_index(s, index_dir)
    tried: set[int] = set()
    while (limit is None or stats.candidates < limit) and not (stop is not None and stop.is_set()):
        cid = _claim(Session, tried)
        if cid is None:
            break
        if cid < 0:
            continue  # another worker took it between our select and update
        tried.add(cid)
        stats.candidates += 1
        with Session.begin() as s:
            cand = s.get(Candidate, cid)
            assert cand is not None
            rows = finish_candidate(s, cand, index, allow_loopback=allow_loopback, thumbnails=thumbnails,
                                    evidence_dir=evidence_dir)
            if rows is None:
                stats.errors.append(f"candidate {cid}: {cand.error}")
                if cand.status == CandidateStatus.FAILED:
                    stats.failed += 1
                    outcome = "failed"
                else:  # back to pending: the line and the summary say the same
                    stats.retry += 1
                    outcome = f"error, to retry (attempt {cand.attempts} of {MAX_ATTEMPTS})"
            elif cand.status == CandidateStatus.ALLOWED:
                stats.allowed += 1
                outcome = ", ".join(f"allowed {(r.details or {}).get('allowed_reason')} (reference {r.reference_id})"
                                    for r in rows)
            elif rows:
                stats.matched += 1
                stats.confirmed += sum(r.decision == Decision.CONFIRMED for r in rows)
                stats.review += sum(r.decision == Decision.REVIEW for r in rows)
                outcome = ", ".join(f"{r.decision.value} title {r.title_id}" for r in rows)
            else:
                stats.no_match += 1
                outcome = "no match"
            if on_item:
                on_item(cand, outcome)
    return stats


def release_claims(Session: sessionmaker[Session]) -> int:
    """Put candidates left ``matching`` by a dead worker back to ``pending``.

    Only safe when no other matcher is running (the single-machine scheduler calls it
    at start-up, holding its lock)."""
    with Session.begin() as s:
        res = s.execute(
            update(Candidate).where(Candidate.status == CandidateStatus.MATCHING).values(status=CandidateStatus.PENDING)
        )
        return int(res.rowcount or 0)
