"""The match stage over real databases: candidates in, matches out, nothing twice."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from db.models import Candidate, CandidateStatus, Decision, Match, MatchFrame, ReviewState
from demoweb.rangeserver import RangeServer
from stages.catalog import add_title
from stages.match import match_pending


def _setup(Session, media):  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        a = add_title(s, media["film_a"], title="Film A").title.id
        add_title(s, media["film_b"], title="Film B")
    return a


def test_pending_candidates_matched_over_http(Session, media, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    title_a = _setup(Session, media)
    shutil.copy(media["copy_a"], tmp_path / "copy.mp4")
    shutil.copy(media["other"], tmp_path / "other.mp4")
    with RangeServer(str(tmp_path)) as srv:
        with Session.begin() as s:
            s.add_all([
                Candidate(canonical_url="https://pirate.example/a", page_url="https://pirate.example/a",
                          media_urls=[srv.url("missing.mp4"), srv.url("copy.mp4")]),
                Candidate(canonical_url="https://pirate.example/b", page_url="https://pirate.example/b",
                          media_urls=[srv.url("other.mp4")]),
                Candidate(canonical_url="https://pirate.example/c", page_url="https://pirate.example/c",
                          media_urls=[srv.url("dead.mp4")]),
                Candidate(canonical_url="https://pirate.example/d", page_url="https://pirate.example/d",
                          media_urls=[]),
            ])
        outcomes: list[str] = []
        stats = match_pending(Session, allow_loopback=True, on_item=lambda c, o: outcomes.append(o))
    assert stats.candidates == 4 and stats.confirmed == 1 and stats.no_match == 1
    # Each line and the summary say the same (issue 13: "candidate 3: failed", then "0 failed").
    assert stats.failed == outcomes.count("failed") and stats.failed + stats.retry == 2, outcomes
    assert sum(o.startswith("error, to retry") for o in outcomes) == stats.retry == 2, outcomes
    with Session() as s:
        by_url = {c.page_url: c for c in s.scalars(select(Candidate))}
        a = by_url["https://pirate.example/a"]
        assert a.status == CandidateStatus.MATCHED
        (m,) = a.matches
        assert m.title_id == title_a and m.decision == Decision.CONFIRMED
        assert abs(m.offset_s - 20) <= 1.0 and m.media_url.endswith("copy.mp4")
        assert by_url["https://pirate.example/b"].status == CandidateStatus.NO_MATCH
        # A dead link is retried on a later run, not lost; the error says why.
        c = by_url["https://pirate.example/c"]
        assert c.status == CandidateStatus.PENDING and c.attempts == 1 and "dead.mp4" in c.error
        assert "no media URL" in by_url["https://pirate.example/d"].error


def test_rerun_is_idempotent_and_rejections_stick(Session, media) -> None:  # type: ignore[no-untyped-def]
    _setup(Session, media)
    with RangeServer(str(Path(media["copy_a"]).parent)) as srv:
        with Session.begin() as s:
            s.add(Candidate(canonical_url="u1", page_url="https://p.example/1", media_urls=[srv.url("copy_a.mp4")]))
        match_pending(Session, allow_loopback=True)
        with Session() as s:
            m = s.scalar(select(Match))
            frames = s.scalar(select(MatchFrame).where(MatchFrame.match_id == m.id))
            assert frames is not None and frames.ref_jpeg and frames.cand_jpeg, frames and frames.error
        with Session.begin() as s:
            m = s.scalar(select(Match))
            m.review = ReviewState.REJECTED
            m.review_reason = "trailer published by the studio itself"
            cand = s.scalar(select(Candidate))
            cand.status = CandidateStatus.PENDING
        match_pending(Session, allow_loopback=True)
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == 1
        assert s.scalar(select(Match)).review == ReviewState.REJECTED


def test_media_urls_are_checked_before_fetching(Session, media) -> None:  # type: ignore[no-untyped-def]
    _setup(Session, media)
    with Session.begin() as s:
        s.add_all([
            Candidate(canonical_url="x1", page_url="https://p.example/x1", media_urls=[media["copy_a"]]),
            Candidate(canonical_url="x2", page_url="https://p.example/x2", media_urls=["http://127.0.0.1:9/a.mp4"]),
            Candidate(canonical_url="x3", page_url="https://p.example/x3", media_urls=["http://169.254.169.254/latest"]),
        ])
    stats = match_pending(Session)
    assert stats.matched == 0
    with Session() as s:
        errors = {c.canonical_url: c.error for c in s.scalars(select(Candidate))}
    assert "scheme" in errors["x1"]
    assert "loopback" in errors["x2"]
    assert "link-local" in errors["x3"] or "metadata" in errors["x3"]


def test_two_matchers_at_once_never_share_a_candidate(db_url: str, Session, media, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Real concurrent processes on the same database: every candidate is claimed by
    # exactly one of them (attempts stays 1) and matched once.
    import subprocess
    import sys

    _setup(Session, media)
    shutil.copy(media["copy_a"], tmp_path / "copy.mp4")
    vigie = str(Path(sys.executable).parent / "vigie")
    cfg = tmp_path / "vigie.toml"
    cfg.write_text("[match]\nallow_loopback = true\n")
    with RangeServer(str(tmp_path)) as srv:
        with Session.begin() as s:
            for i in range(8):
                s.add(Candidate(canonical_url=f"https://p.example/{i}", page_url=f"https://p.example/{i}",
                                media_urls=[srv.url("copy.mp4") + f"?v={i}"]))
        procs = [subprocess.Popen([vigie, "--db", db_url, "--config", str(cfg), "match", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    import json

    counts = [json.loads(o[0])["candidates"] for o in outs]
    assert sum(counts) == 8
    with Session() as s:
        cands = list(s.scalars(select(Candidate)))
        assert all(c.attempts == 1 and c.status == CandidateStatus.MATCHED for c in cands)
        assert s.scalar(select(func.count()).select_from(Match)) == 8
