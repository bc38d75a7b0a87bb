"""Temporal matching and the decision rule on generated media and on arrays."""

from __future__ import annotations

import numpy as np

from fingerprint.extract import VideoFingerprint, fingerprint_query, fingerprint_reference, index_entries
from fingerprint.decode import VideoInfo
from fingerprint.index import HashIndex
from fingerprint.matching import CONFIRM_MIN_MATCHED_S, decide, match, offset_uncertainty, snap_speed
from demoweb import synth
from stages.identify import identify_source


def _index(*paths: str) -> tuple[HashIndex, dict[int, int]]:
    refs = []
    for i, p in enumerate(paths, start=1):
        refs.extend(index_entries(i, fingerprint_reference(p)))
    return HashIndex.build(refs), {i: i for i in range(1, len(paths) + 1)}


def _identify(path: str, index: HashIndex, titles: dict[int, int]) -> list:  # type: ignore[type-arg]
    # The product's path: keyframes first, a closer look when they do not confirm.
    return identify_source(path, index, titles, fingerprint=fingerprint_query)[1]


def test_excerpt_found_with_offset(media: dict[str, str]) -> None:
    index, titles = _index(media["film_a"], media["film_b"])
    res = _identify(media["copy_a"], index, titles)
    assert res and res[0].title_id == 1 and res[0].decision == "confirmed"
    assert abs(res[0].offset_s - 20.0) <= 1.0
    assert abs(res[0].speed - 1.0) < 0.01
    assert all(m.title_id != 2 for m in res)


def test_unrelated_video_matches_nothing(media: dict[str, str]) -> None:
    index, titles = _index(media["film_a"], media["film_b"])
    assert _identify(media["other"], index, titles) == []


def test_speed_change_and_intro(media: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    intro = [f for _, f in synth.film_frames(seed=77, duration_s=6, fps=25, size=(480, 270))]
    copy = synth.make_copy(media["film_a"], str(tmp_path / "c.mp4"), start_s=10, duration_s=30,
                           speed=25 / 24, fps=25, intro=intro)
    index, titles = _index(media["film_a"])
    res = _identify(copy, index, titles)
    assert res and res[0].decision == "confirmed"
    m = res[0]
    assert abs(m.speed - 25 / 24) < 0.01
    # The film starts 6 s into the copy, at 10 s of the reference.
    assert abs(m.ref_start_s - (10 + (m.cand_start_s - 6) * m.speed)) <= 1.0
    assert m.cand_start_s >= 5.0


def test_mirrored_copy(media: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    copy = synth.make_copy(media["film_a"], str(tmp_path / "m.mp4"), start_s=5, duration_s=25,
                           transform=lambda f, t: f[:, ::-1])
    index, titles = _index(media["film_a"])
    res = _identify(copy, index, titles)
    assert res and res[0].decision == "confirmed" and abs(res[0].offset_s - 5) <= 1.0


def test_decision_rule() -> None:
    assert decide(0.9, 60.0, 100.0, 60.0) == "confirmed"
    assert decide(0.9, CONFIRM_MIN_MATCHED_S - 1, 100.0, 60.0) == "review"
    assert decide(0.1, 60.0, 100.0, 60.0) is None
    # One still picture repeated: long, dense, but the reference never moves.
    assert decide(0.9, 60.0, 100.0, 0.5) == "review"


def _fp(times: np.ndarray, hashes: np.ndarray) -> VideoFingerprint:
    return VideoFingerprint(
        times=times.astype(np.float32), hashes=hashes.astype(np.uint64),
        quality=np.full(len(times), 80, np.float32), info=VideoInfo(float(times[-1]), 2.0, 64, 64),
        frames_decoded=len(times),
    )


def test_shared_content_does_not_confirm() -> None:
    # Two titles open with the same 20 s studio intro: a copy of the intro alone must not
    # confirm either of them.
    rng = np.random.default_rng(5)
    intro = rng.integers(0, 2**63, 40, dtype=np.int64).astype(np.uint64)
    body1 = rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64)
    body2 = rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64)
    t = np.arange(240) * 0.5
    index = HashIndex.build([(1, np.concatenate([intro, body1]), t), (2, np.concatenate([intro, body2]), t)])
    titles = {1: 1, 2: 2}
    res = match(_fp(t[:40], intro), index, titles)
    assert res and all(m.decision != "confirmed" for m in res)
    # The film itself still confirms.
    res = match(_fp(t[:120], np.concatenate([intro, body1])[:120]), index, titles)
    assert res[0].title_id == 1 and res[0].decision == "confirmed"


def test_cropped_copies(media: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 10 % off every side, and 15 % off one side only: the whole-picture hash no longer
    # agrees, the core under the right crop hypothesis does.
    from demoweb.transforms import crop

    index, titles = _index(media["film_a"], media["film_b"])
    for name, fn in {"all_sides": crop(0.1, 0.1, 0.1, 0.1), "one_side": crop(0.0, 0.0, 0.15, 0.0)}.items():
        copy = synth.make_copy(media["film_a"], str(tmp_path / f"{name}.mp4"), start_s=12, duration_s=25,
                               transform=fn, bit_rate=400_000)
        res = _identify(copy, index, titles)
        assert res and res[0].title_id == 1 and res[0].decision == "confirmed", (name, res)
        assert abs(res[0].offset_s - 12) <= 1.0, name


def test_picture_in_picture(media: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from demoweb.transforms import picture_in_picture

    index, titles = _index(media["film_a"], media["film_b"])
    copy = synth.make_copy(media["film_a"], str(tmp_path / "pip.mp4"), start_s=30, duration_s=25,
                           transform=picture_in_picture(0.6), bit_rate=400_000)
    res = _identify(copy, index, titles)
    assert res and res[0].title_id == 1 and res[0].decision == "confirmed", res
    assert abs(res[0].offset_s - 30) <= 1.0


def test_index_saved_and_memory_mapped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(9)
    for n, engine in ((1000, "scan"), (300_000, "mih")):
        h = rng.integers(0, 2**64, n, dtype=np.uint64)
        idx = HashIndex(h, np.arange(n, dtype=np.int32) % 7, np.arange(n, dtype=np.float32),
                        (np.arange(n) % 2).astype(np.uint8), engine=engine)
        idx.save(str(tmp_path / f"i{n}"))
        loaded = HashIndex.load(str(tmp_path / f"i{n}"))
        assert loaded.engine == idx.engine and len(loaded) == n
        q = h[:40] ^ np.uint64(0b1011)
        kinds = np.ones(40, np.uint8)
        a, b = idx.query(q, 12, kinds), loaded.query(q, 12, kinds)
        assert sorted(zip(a.query.tolist(), a.entry.tolist())) == sorted(zip(b.query.tolist(), b.entry.tolist()))
        assert len(a) > 0
        # Both engines are exact: the same pairs as a plain scan.
        c = HashIndex(h, idx.ref_ids, idx.times, idx.kinds, engine="scan").query(q, 12, kinds)
        assert sorted(zip(a.query.tolist(), a.entry.tolist())) == sorted(zip(c.query.tolist(), c.entry.tolist()))


def test_speed_snaps_to_nominal_ratios_only_within_the_fit_error() -> None:
    rng = np.random.default_rng(5)
    q = np.arange(0, 20, 0.5)
    # A 20 s excerpt at the original speed, positions jittered by the reference sampling.
    r = q + 100 + rng.uniform(-0.4, 0.4, len(q))
    fitted = float(np.polyfit(q, r, 1)[0])
    assert fitted != 1.0 and snap_speed(q, r, fitted) == 1.0
    # A long copy sped up from 24 to 25 fps is told apart from 1.0 and named exactly.
    q = np.arange(0, 600, 2.0)
    r = q * 25 / 24 + rng.uniform(-0.2, 0.2, len(q))
    assert snap_speed(q, r, float(np.polyfit(q, r, 1)[0])) == 25 / 24
    # A speed no conversion produces stays as fitted.
    r = q * 1.02 + rng.uniform(-0.2, 0.2, len(q))
    fitted = float(np.polyfit(q, r, 1)[0])
    assert snap_speed(q, r, fitted) == fitted


def test_offset_uncertainty_is_small_for_moving_pictures_and_large_for_a_still_shot() -> None:
    q = np.arange(0, 20, 0.5)
    frames = np.arange(len(q))
    # Moving pictures: each query frame's nearest hash is at one place of the film.
    unc = offset_uncertainty(q, q + 50.0, np.full(len(q), 4.0), frames, frames, 1.0, 50.0)
    assert unc <= 0.75
    # A still shot from 40 s to 80 s: every frame matches every reference frame of it.
    ref_t = np.arange(40, 80, 0.5)
    qt, rt = np.repeat(q, len(ref_t)), np.tile(ref_t, len(q))
    qi = np.repeat(frames, len(ref_t))
    unc = offset_uncertainty(qt, rt, np.full(len(qt), 4.0), qi, frames, 1.0, 50.0)
    assert unc >= 10.0


def test_multi_index_is_exact_at_every_radius() -> None:
    # The tables use the tight pigeonhole bound (a radius per table): every radius
    # gives exactly the pairs a plain scan gives, including hashes just inside or just
    # outside the radius.
    rng = np.random.default_rng(3)
    n = 50_000
    h = rng.integers(0, 2**64, n, dtype=np.uint64)
    q = h[rng.integers(0, n, 120)].copy()
    for i in range(120):
        for b in rng.choice(64, i % 15, replace=False):
            q[i] ^= np.uint64(1) << np.uint64(b)
    zeros = (np.zeros(n, np.int32), np.zeros(n, np.float32))
    mih, scan = HashIndex(h, *zeros, engine="mih"), HashIndex(h, *zeros, engine="scan")
    for radius in range(0, 15):
        a, c = mih.query(q, radius), scan.query(q, radius)
        assert sorted(zip(a.query.tolist(), a.entry.tolist())) == sorted(zip(c.query.tolist(), c.entry.tolist())), radius


def test_a_copy_confirmed_by_the_first_round_of_its_decode_is_decoded_no_further(  # type: ignore[no-untyped-def]
        media: dict[str, str], tmp_path) -> None:
    # A copy with too few keyframes for a first look of their own is decoded in rounds
    # (decode.decode_in_rounds): the first half of its frames confirms, and the rest is
    # never decoded. The same through the sandbox (the product's path) and here. An
    # unrelated video with as few keyframes is decoded in full, and matches nothing.
    from fingerprint.extract import QUERY_FPS

    def sparse_keyframes(src: str, dst: str, start_s: float, seconds: float) -> str:
        w = synth.VideoWriter(dst, 24.0, preset="ultrafast")  # no keyframes at shot changes
        w.gop = 250
        with w:
            for t, frame in synth.iter_source_frames(src, start_s):
                if t >= start_s + seconds:
                    break
                if t >= start_s - 1e-6:
                    w.write(frame.to_ndarray(format="rgb24"))
        return dst

    index, titles = _index(media["film_a"])
    copy = sparse_keyframes(media["film_a"], str(tmp_path / "copy.mp4"), 20.0, 24.0)
    for fp, res in (identify_source(copy, index, titles), identify_source(copy, index, titles,
                                                                           fingerprint=fingerprint_query)):
        assert fp.mode == "dense-first"
        assert res and res[0].decision == "confirmed" and abs(res[0].offset_s - 20.0) <= 1.0
        assert len(fp) <= 0.6 * 24.0 * QUERY_FPS
    other = sparse_keyframes(media["other"], str(tmp_path / "other.mp4"), 0.0, 24.0)
    fp, res = identify_source(other, index, titles)
    assert fp.mode == "dense" and len(fp) >= 0.9 * 24.0 * QUERY_FPS and res == []
