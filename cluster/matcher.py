"""One candidate per match job, against an index kept in memory by the worker.

A long-lived worker loads the hash index once and, before each job, compares the
catalogue's version (``stages.catalog.catalogue_version``, a SELECT over reference ids)
with the version it holds. On a change it loads the new index fully (memory-mapped from
the shared index cache when an ``index`` job has written it, built otherwise) and only
then swaps the reference, so a job never sees a half-loaded index; jobs already running
keep the index they started with.

A job locks its candidate row and does everything in one transaction: the matches, the
frames and the candidate's new status commit together or not at all. A worker killed
mid-job leaves the candidate ``pending`` (its transaction dies with its connection) and
the retried job redoes it; a job run again after its commit finds the candidate no
longer pending and does nothing. At-least-once jobs, exactly-once results.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Candidate, CandidateStatus, Decision
from fingerprint.index import HashIndex
from stages.catalog import catalogue_version, load_index
from stages.match import finish_candidate
from stages.ops import log_event

Index = tuple[HashIndex, dict[int, int]]


def rss_mb() -> float:
    """Resident memory of this process in MiB (current on Linux, peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class IndexHolder:
    """The index a matcher process holds, and the catalogue version it was built from."""

    def __init__(self, cache_dir: str | None = None, *, writer: bool = False) -> None:
        self.cache_dir = cache_dir
        # Only the ``index`` job writes the shared cache (one writer: matchers never race
        # each other writing or pruning it); a matcher maps the file when it is there and
        # builds in memory otherwise.
        self.writer = writer
        self.version: str | None = None
        self.index: Index | None = None
        self.swaps = 0
        self._lock = threading.Lock()

    def current(self, Session: sessionmaker[Session]) -> tuple[str, Index]:
        """The index for the catalogue as it is now; reloads (then swaps) on a change."""
        with Session() as s:
            version = catalogue_version(s)
            if version == self.version and self.index is not None:
                return version, self.index
            # One loader at a time per process; the others wait and reuse its result.
            with self._lock:
                if version == self.version and self.index is not None:
                    return version, self.index
                t0 = time.monotonic()
                cached = bool(self.cache_dir) and os.path.isdir(
                    os.path.join(self.cache_dir or "", f"index-{version}"))
                fresh = load_index(s, self.cache_dir if (self.writer or cached) else None)
                # The swap: a single reference assignment, after the load completed.
                self.index, self.version = fresh, version
                self.swaps += 1
        log_event("index", version=version, load_s=round(time.monotonic() - t0, 2), hashes=len(fresh[0]),
                  rss_mb=round(rss_mb(), 1))
        return version, fresh


def match_one(Session: sessionmaker[Session], candidate_id: int, index: Index, *,
              allow_loopback: bool = False, thumbnails: bool = True,
              fingerprint: Callable[[str], object] | None = None, evidence_dir: str | None = None) -> str:
    """Match one candidate if it is still pending; returns what happened, one word."""
    with Session.begin() as s:
        cand = s.scalar(select(Candidate).where(Candidate.id == candidate_id).with_for_update())
        if cand is None:
            return "gone"
        if cand.status != CandidateStatus.PENDING:
            return "skipped"
        cand.attempts += 1
        kw = {"fingerprint": fingerprint} if fingerprint is not None else {}
        rows = finish_candidate(s, cand, index, allow_loopback=allow_loopback, thumbnails=thumbnails,
                                evidence_dir=evidence_dir, **kw)  # type: ignore[arg-type]
        # Left pending, a dead link is queued again by a later maintenance tick.
        if rows is None:
            return "failed" if cand.status == CandidateStatus.FAILED else "retry"
        if not rows:
            return "no_match"
        if cand.status == CandidateStatus.ALLOWED:
            return "allowed"
        return "confirmed" if any(r.decision == Decision.CONFIRMED for r in rows) else "review"
