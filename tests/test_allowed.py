"""Allowed material (``vigie catalog allow``) and the frame marks of references, end to
end on real SQLite and PostgreSQL with synthetic films: registering, listing, removing;
the index and its cache; shared frames between titles; identify and the match stage on
a copy of a trailer alone and on a copy of the film around it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import (
    AllowedReason,
    AuditLog,
    Candidate,
    CandidateStatus,
    Decision,
    Match,
    ReferenceVideo,
    ReviewState,
    User,
)
from fingerprint.index import FLAG_SHARED
from demoweb import synth
from stages.catalog import (
    add_title,
    allow_video,
    catalogue_version,
    list_allowed,
    load_index,
    remove_allowed,
)
from vigie.cli import cli
from foundation.errors import InvalidInput, NotFound
from demoweb.rangeserver import RangeServer

# The trailer: three stretches of film A (media["film_a"], seed 1, 60 s), cut together.
TRAILER_CUTS = ((5.0, 13.0), (30.0, 38.0), (50.0, 55.0))


def cut(path: str, seed: int, duration_s: float, cuts: tuple[tuple[float, float], ...]) -> str:
    """Stretches of the synthetic film ``seed`` played one after the other (a re-edit)."""
    fps = 24.0
    frames = synth.film_frames(seed, duration_s, fps, (480, 270))
    picked = [img for lo, hi in cuts for t, img in frames if lo <= t < hi]
    synth.write_video(path, ((i / fps, img) for i, img in enumerate(picked)), fps)
    return path


@pytest.fixture(scope="module")
def trailer(media: dict[str, str]) -> dict[str, str]:
    d = Path(media["dir"])
    if not (d / "trailer_a.mp4").exists():
        cut(str(d / "trailer_a.mp4"), 1, 60, TRAILER_CUTS)
        synth.make_copy(str(d / "trailer_a.mp4"), str(d / "trailer_copy.mp4"), bit_rate=250_000)
    return {"trailer": str(d / "trailer_a.mp4"), "trailer_copy": str(d / "trailer_copy.mp4")}


def test_allow_list_remove_and_the_index(Session, media, trailer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        film = add_title(s, media["film_a"], title="Film A", year=2020).title.id
        v0 = catalogue_version(s)
        res = allow_video(s, trailer["trailer"], reason="trailer", title="Film A", actor="alice")
        assert res.created and res.title is not None and res.title.id == film
        ref_id = res.reference.id
        assert res.reference.allowed_reason is AllowedReason.TRAILER
        assert res.reference.flags is not None and len(res.reference.flags) == res.reference.frame_count
        v1 = catalogue_version(s)
        assert v1 != v0
        # The same file again changes nothing; as a film it is refused.
        again = allow_video(s, trailer["trailer"], reason="promo")
        assert not again.created and again.reference.id == ref_id
        assert again.reference.allowed_reason is AllowedReason.TRAILER
        with pytest.raises(InvalidInput, match="allowed material"):
            add_title(s, trailer["trailer"], title="Film A")
        with pytest.raises(InvalidInput, match="a film cannot be allowed material"):
            allow_video(s, media["film_a"], reason="trailer")
        with pytest.raises(InvalidInput, match="unknown reason"):
            allow_video(s, media["film_b"], reason="fair-use")
        with pytest.raises(NotFound, match="no title named"):
            allow_video(s, media["film_b"], reason="trailer", title="No Such Film")
        logo = allow_video(s, media["other"], reason="logo").reference  # of no title
        assert logo.title_id is None
        assert [(r.id, r.allowed_reason) for r in list_allowed(s)] == [
            (ref_id, AllowedReason.TRAILER), (logo.id, AllowedReason.LOGO)]

        index, titles = load_index(s, str(tmp_path / "cache"))
        assert index.allowed == frozenset({ref_id, logo.id})
        assert titles[logo.id] is None and titles[ref_id] == film
        assert len(index.flags) == len(index)
        # The cached copy carries the same allowed set and flags.
        cached, _ = load_index(s, str(tmp_path / "cache"))
        assert cached.allowed == index.allowed and np.array_equal(cached.flags, index.flags)
        audit = s.scalar(select(AuditLog).where(AuditLog.action == "allowed.add", AuditLog.object_id == ref_id))
        assert audit.actor == "alice" and audit.after["reason"] == "trailer" and audit.after["title"] == "Film A"

        v2 = catalogue_version(s)
        assert v2 != v1
        assert remove_allowed(s, logo.id, actor="alice") == 0
        assert catalogue_version(s) != v2
        with pytest.raises(NotFound):
            remove_allowed(s, logo.id)
        with pytest.raises(NotFound):  # a film reference is not allowed material
            remove_allowed(s, s.scalar(select(ReferenceVideo.id).where(ReferenceVideo.title_id == film,
                                                                       ReferenceVideo.allowed_reason.is_(None))))
        index, _ = load_index(s, str(tmp_path / "cache"))
        assert index.allowed == frozenset({ref_id})
        gone = s.scalar(select(AuditLog).where(AuditLog.action == "allowed.remove"))
        assert gone.before["reason"] == "logo" and gone.object_id == logo.id


def test_references_made_before_flags_get_static_marks(Session, media) -> None:  # type: ignore[no-untyped-def]
    from fingerprint.extract import static_flags

    with Session.begin() as s:
        ref = add_title(s, media["film_b"], title="Film B").reference
        before = catalogue_version(s)
        ref.flags = None  # as a reference stored before revision 0008
        s.flush()
        assert catalogue_version(s) != before
        index, _ = load_index(s)
        times = np.frombuffer(ref.times, dtype="<f4")
        hashes = np.frombuffer(ref.hashes, dtype="<u8")[: len(times)]
        want = static_flags(times, hashes)
        assert np.array_equal(index.flags[index.kinds == 0], want)
        assert np.array_equal(index.flags[index.kinds == 1], want)


def test_a_logo_shared_by_two_titles_is_marked_in_both(Session, media) -> None:  # type: ignore[no-untyped-def]
    # Two films open on the same 4 s producer's logo (a little film of its own, seed 4242).
    d = Path(media["dir"])
    logo = [img for _, img in synth.film_frames(4242, 4, 24, (480, 270))]
    a = synth.make_copy(media["film_a"], str(d / "logo_a.mp4"), duration_s=20, intro=logo, bit_rate=None)
    b = synth.make_copy(media["film_b"], str(d / "logo_b.mp4"), duration_s=20, intro=logo, bit_rate=None)
    trailer_b = cut(str(d / "logo_trailer_b.mp4"), 2, 40, ((0.0, 6.0),))
    with Session.begin() as s:
        ra = add_title(s, a, title="Logo A").reference
        # Allowed material neither gets nor gives the mark, even when it holds the logo.
        rt = allow_video(s, cut(str(d / "logo_allowed.mp4"), 4242, 4, ((0.0, 4.0),)), reason="logo").reference
        assert not np.any(np.frombuffer(ra.flags, np.uint8) & FLAG_SHARED)
        rb = add_title(s, b, title="Logo B").reference
        allow_video(s, trailer_b, reason="trailer", title="Logo B")
        s.refresh(ra)
        for ref in (ra, rb):
            times = np.frombuffer(ref.times, dtype="<f4")
            shared = (np.frombuffer(ref.flags, np.uint8) & FLAG_SHARED) > 0
            assert shared.any(), ref.id
            # The marks sit on the logo (the first 4 s), not on the films after it.
            assert times[shared].max() < 4.5, times[shared]
            assert not shared[times > 5].any()
        assert not np.any(np.frombuffer(rt.flags, np.uint8) & FLAG_SHARED)


def _cli(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--db", db_url, *args])


def test_cli_allow_list_identify(db_url: str, engine, media, trailer) -> None:  # type: ignore[no-untyped-def]
    assert _cli(db_url, "catalog", "add", media["film_a"], "--title", "Film A").exit_code == 0
    r = _cli(db_url, "catalog", "allow", trailer["trailer"], "--title", "Film A", "--reason", "trailer")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("allowed trailer of title 1 'Film A': reference 2, ") and r.output.count("\n") == 1
    r = _cli(db_url, "catalog", "allow", trailer["trailer"], "--reason", "trailer")
    assert r.exit_code == 0 and "already allowed" in r.output and "nothing changed" in r.output
    r = _cli(db_url, "catalog", "allow", media["other"], "--reason", "public-domain")
    assert r.exit_code == 0 and "of no title" in r.output
    # Errors: one line, exit 1; a reason not in the list is bad usage (2).
    r = _cli(db_url, "catalog", "allow", media["film_b"], "--title", "Nope", "--reason", "logo")
    assert r.exit_code == 1 and r.output.strip() == "Error: no title named 'Nope'"
    r = _cli(db_url, "catalog", "allow", media["film_a"], "--reason", "logo")
    assert r.exit_code == 1 and "a film cannot be allowed material" in r.output and r.output.count("\n") == 1
    r = _cli(db_url, "catalog", "allow", "/no/such/file.mp4", "--reason", "logo")
    assert r.exit_code == 1 and "no such file" in r.output
    assert _cli(db_url, "catalog", "allow", media["film_b"], "--reason", "fair-use").exit_code == 2
    assert _cli(db_url, "catalog", "allow", media["film_b"]).exit_code == 2  # --reason is required

    rows = json.loads(_cli(db_url, "catalog", "list", "--json").output)
    assert [t["title"] for t in rows] == ["Film A", None]
    assert [r["id"] for r in rows[0]["references"]] == [1]
    assert [(a["id"], a["reason"]) for a in rows[0]["allowed"]] == [(2, "trailer")]
    assert [(a["id"], a["reason"], a["title_id"]) for a in rows[1]["allowed"]] == [(3, "public-domain", None)]
    text = _cli(db_url, "catalog", "list").output
    assert "allowed=1" in text and "allowed material" in text
    assert "    2  trailer       title 1 'Film A'" in text and "    3  public-domain no title" in text

    # A copy of the trailer alone: no film match, an allowed entry.
    r = _cli(db_url, "identify", trailer["trailer_copy"], "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert not [m for m in out["matches"] if m["decision"] == "confirmed"], out
    assert out["allowed"], out
    a = out["allowed"][0]
    assert set(a) == {"ref_id", "title_id", "title", "reason", "matched_s", "cand_start_s", "cand_end_s",
                      "ref_start_s", "ref_end_s", "score"}
    assert (a["ref_id"], a["title_id"], a["title"], a["reason"]) == (2, 1, "Film A", "trailer")
    # A copy of the film (20-50 s: it holds one stretch of the trailer and more): confirmed.
    out = json.loads(_cli(db_url, "identify", media["copy_a"], "--json").output)
    assert out["matches"] and out["matches"][0]["decision"] == "confirmed" and out["matches"][0]["title_id"] == 1
    assert {"title_id", "title", "decision", "score", "matched_s", "offset_s", "speed", "cand_start_s",
            "cand_end_s", "ref_start_s", "ref_end_s"} == set(out["matches"][0])

    r = _cli(db_url, "catalog", "disallow", "3")
    assert r.exit_code == 0 and "removed allowed material 3" in r.output
    r = _cli(db_url, "catalog", "disallow", "1")
    assert r.exit_code == 1 and "no allowed material with id 1" in r.output


def test_match_stage_stores_allowed_and_never_notifies(Session, media, trailer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from notices.build import notifiable_matches
    from stages.match import match_pending
    from webapp import actions

    shutil.copy(trailer["trailer_copy"], tmp_path / "trailer.mp4")
    shutil.copy(media["copy_a"], tmp_path / "film.mp4")
    with Session.begin() as s:
        film = add_title(s, media["film_a"], title="Film A").title.id
        allowed_ref = allow_video(s, trailer["trailer"], reason="trailer", title=film).reference.id
        user = User(username="alice", password_hash="x")
        s.add(user)
    with RangeServer(str(tmp_path)) as srv:
        with Session.begin() as s:
            s.add_all([Candidate(canonical_url="t", page_url="https://pirate.example/trailer",
                                 media_urls=[srv.url("trailer.mp4")]),
                       Candidate(canonical_url="f", page_url="https://pirate.example/film",
                                 media_urls=[srv.url("film.mp4")])])
        stats = match_pending(Session, allow_loopback=True, thumbnails=False)
    assert stats.candidates == 2 and stats.confirmed == 1 and stats.allowed == 1, stats
    with Session.begin() as s:
        by = {c.canonical_url: c for c in s.scalars(select(Candidate))}
        assert by["t"].status is CandidateStatus.ALLOWED
        (m,) = by["t"].matches
        assert m.decision is Decision.ALLOWED and m.reference_id == allowed_ref and m.title_id == film
        assert m.details["allowed_reason"] == "trailer"
        assert by["f"].status is CandidateStatus.MATCHED
        assert [x.decision for x in by["f"].matches] == [Decision.CONFIRMED]
        # Notices are built from the film copy only; an allowed match cannot be approved.
        assert [x.candidate_id for x in notifiable_matches(s)] == [by["f"].id]
        with pytest.raises(InvalidInput, match="allowed material"):
            actions.approve_match(s, m.id, s.scalar(select(User)))
        m.review = ReviewState.APPROVED  # even if it were (by SQL), no notice
        s.flush()
        assert [x.candidate_id for x in notifiable_matches(s)] == [by["f"].id]
        m.review = ReviewState.NONE
        # Removing the trailer from allowed material sends its copies back to matching.
        assert remove_allowed(s, allowed_ref) == 1
        assert by["t"].status is CandidateStatus.PENDING
        assert s.scalar(select(Match).where(Match.candidate_id == by["t"].id)) is None


def test_cli_reasons_are_the_models() -> None:
    # The CLI keeps its own list (so `vigie --help` does not load the models): one rule.
    from vigie.cli import ALLOWED_REASONS

    assert ALLOWED_REASONS == tuple(r.value for r in AllowedReason)
