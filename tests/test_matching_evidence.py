"""Temporal evidence, material that is not distinctive, allowed material, and pictures
shown inside other videos: on arrays (the rule itself) and on generated media (the
product's path, from decoding to decision)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fingerprint.decode import VideoInfo
from fingerprint.extract import (
    STATIC_MIN_S,
    VideoFingerprint,
    fingerprint_query,
    fingerprint_reference,
    index_entries,
    static_flags,
)
from fingerprint.index import FLAG_SHARED, FLAG_STATIC, HashIndex
from fingerprint.matching import CHANGE_BITS, match, on_one_line, shared_frames
from demoweb import synth
from stages.identify import identify_source

STEP = 0.5


def _hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)


def _jitter(h: np.ndarray, rng: np.random.Generator, bits: int = 2) -> np.ndarray:
    """``h`` with ``bits`` random bits flipped per hash (coding noise)."""
    out = h.copy()
    for i in range(len(out)):
        for b in rng.choice(64, bits, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(int(b))
    return out


def _fp(hashes: np.ndarray, t0: float = 0.0) -> VideoFingerprint:
    times = t0 + np.arange(len(hashes)) * STEP
    return VideoFingerprint(times=times.astype(np.float32), hashes=hashes.astype(np.uint64),
                            quality=np.full(len(hashes), 80, np.float32),
                            info=VideoInfo(float(times[-1]), 2.0, 64, 64), frames_decoded=len(hashes))


def _film_with_still(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 90 s reference sampled every 0.5 s: moving pictures, with a still shot (one
    picture and its coding noise) from 30 s to 50 s."""
    hashes = _hashes(rng, 180)
    still = _hashes(rng, 1)
    hashes[60:100] = _jitter(np.repeat(still, 40), rng, 1)
    return np.arange(180) * STEP, hashes


def test_static_flags_mark_still_stretches_only() -> None:
    rng = np.random.default_rng(1)
    times, hashes = _film_with_still(rng)
    flags = static_flags(times.astype(np.float32), hashes)
    assert np.all(flags[60:100] == FLAG_STATIC)
    assert not np.any(flags[:59]) and not np.any(flags[101:])
    # A held picture shorter than STATIC_MIN_S is a pause, not a still stretch.
    short = int(STATIC_MIN_S / STEP) - 1
    hashes[120 : 120 + short] = hashes[120]
    assert not np.any(static_flags(times.astype(np.float32), hashes)[120 : 120 + short])


def test_a_still_stretch_never_confirms_the_same_stretch_with_motion_does() -> None:
    rng = np.random.default_rng(2)
    times, hashes = _film_with_still(rng)
    flags = static_flags(times.astype(np.float32), hashes)
    index = HashIndex.build([(1, hashes, times, 0, flags)])
    # A copy of 16 s inside the still shot (with its own noise): a line through it holds
    # one picture, which agrees at any offset. Nothing, not even review.
    still_copy = _jitter(hashes[64:96], rng, 2)
    assert match(_fp(still_copy), index, {1: 1}) == []
    # The same length of moving pictures confirms, offset and all.
    res = match(_fp(_jitter(hashes[120:152], rng, 2)), index, {1: 1})
    assert res and res[0].decision == "confirmed" and abs(res[0].offset_s - 60.0) <= 0.75
    assert res[0].changes >= 3
    # A still *query* (a freeze frame, a fixed camera) against moving reference pictures:
    # each frame is near several of them, but the copy's side holds one picture.
    freeze = _jitter(np.repeat(hashes[130:131], 32), rng, 2)
    assert all(m.decision != "confirmed" for m in match(_fp(freeze), index, {1: 1}))


def test_two_pictures_are_review_at_most() -> None:
    # A copy that alternates between two pictures of the film (a slideshow of two
    # stills) lines up with a reference that does the same: two changes, not three.
    rng = np.random.default_rng(3)
    a, b = _hashes(rng, 2)
    ref = np.concatenate([_hashes(rng, 40), np.repeat([a, b], 20), _hashes(rng, 40)])
    times = np.arange(len(ref)) * STEP
    index = HashIndex.build([(1, ref, times, 0, static_flags(times.astype(np.float32), ref))])
    res = match(_fp(_jitter(ref[40:80], rng, 2), 3.0), index, {1: 1})
    assert all(m.decision != "confirmed" for m in res)


def test_recurring_pictures_replaying_the_same_reference_moments_never_confirm() -> None:
    """A video whose own pictures recur (a looped backdrop: A, B, C, A, B, ...), each of
    which happens to look like one slowly moving moment of a film, hits the same few
    reference moments again and again. Each return lines up with the film at some
    offset, so the lines are many (six, 15 s "matched" before the rule), but a copy
    plays each moment of the film once: the returns add nothing to the first line, and
    the whole is review at most. The same film played as the film plays confirms."""
    rng = np.random.default_rng(0)
    ref = _hashes(rng, 180)  # 90 s of moving pictures...
    for t0 in (46, 136, 152):  # ...with three moments that drift slowly for 2 s
        ref[t0 : t0 + 4] = _jitter(np.repeat(ref[t0], 4), rng, 3)
    times = np.arange(180) * STEP
    index = HashIndex.build([(1, ref, times, 0, static_flags(times.astype(np.float32), ref))])
    video = _hashes(rng, 40)  # 20 s of the video's own pictures
    # Where (query frame, frames held) each moment comes back.
    returns = {136: [(0, 3), (14, 2)], 152: [(3, 5), (16, 4), (27, 7)], 46: [(11, 3), (23, 4), (36, 4)]}
    for moment, held in returns.items():
        for q0, n in held:
            video[q0 : q0 + n] = _jitter(ref[moment + np.minimum(np.arange(n), 3)], rng, 4)
    assert not any(m.decision == "confirmed" for m in match(_fp(video), index, {1: 1}))
    res = match(_fp(_jitter(ref[100:140], rng, 3)), index, {1: 1})
    assert res and res[0].decision == "confirmed"


def test_inset_probe_counts_frames_on_one_line_not_hits() -> None:
    """Choosing among proposed insets: a region that is no film (a blurred backdrop)
    can hit one reference on every probe frame, at times that follow no line; the film's
    own inset hits it along a line, at the speed of a 24 -> 25 fps copy too. Only the
    second counts its frames."""
    rng = np.random.default_rng(5)
    frames = np.arange(8)
    qt = frames * 2.5  # eight probe frames over 20 s
    ref = np.full(8, 3)
    scattered = on_one_line(frames, ref, qt, rng.uniform(0, 600, 8), 8)
    assert scattered <= 2
    on_line = on_one_line(frames, ref, qt, 40.0 + qt + rng.uniform(-0.4, 0.4, 8), 8)
    sped_up = on_one_line(frames, ref, qt, 40.0 + qt * 24 / 25 + rng.uniform(-0.4, 0.4, 8), 8)
    assert on_line == 8 and sped_up == 8
    # Two references each taking half the frames on their own lines: four, not eight.
    two = on_one_line(frames, np.where(frames < 4, 3, 4), qt, 40.0 + qt, 8)
    assert two == 4


def test_shared_frames_count_for_nothing() -> None:
    # Two titles share an animated 15 s producer logo (pictures that move); a copy of
    # the logo alone matches neither, each film still confirms on its own pictures.
    rng = np.random.default_rng(4)
    logo = _hashes(rng, 30)
    film1 = np.concatenate([logo, _hashes(rng, 100)])
    film2 = np.concatenate([logo, _hashes(rng, 100)])
    times = (np.arange(130) * STEP).astype(np.float32)
    first = HashIndex.build([(1, film1, times, 0)])
    mask, others = shared_frames(film2, 2, first, {1: 1})
    assert mask[:30].all() and not mask[30:].any()
    assert set(others) == {1} and np.array_equal(others[1], times[:30])
    flags1 = np.zeros(130, np.uint8)
    flags1[np.isin(times, others[1])] |= FLAG_SHARED
    flags2 = np.where(mask, FLAG_SHARED, 0).astype(np.uint8)
    index = HashIndex.build([(1, film1, times, 0, flags1), (2, film2, times, 0, flags2)])
    assert match(_fp(_jitter(logo, rng, 2)), index, {1: 1, 2: 2}) == []
    res = match(_fp(_jitter(film2[20:70], rng, 2)), index, {1: 1, 2: 2})
    assert res[0].title_id == 2 and res[0].decision == "confirmed"
    # Frames of the same title are not "shared": a second reference of a film is not.
    mask, others = shared_frames(film1, 1, first, {1: 1})
    assert not mask.any() and others == {}


def test_allowed_material_explains_what_it_covers_and_nothing_more() -> None:
    rng = np.random.default_rng(5)
    film = _hashes(rng, 240)                       # 120 s of moving pictures
    times = np.arange(240) * STEP
    # The studio's trailer: four 5 s stretches of the film, in another order.
    parts = [film[160:170], film[20:30], film[100:110], film[60:70]]
    trailer = np.concatenate(parts)
    index = HashIndex.build([(1, film, times, 0), (2, trailer, np.arange(40) * STEP, 0)], allowed={2})
    titles = {1: 1, 2: 1}
    # A copy of the trailer: explained by allowed material, no film match at all.
    res = match(_fp(_jitter(trailer, rng, 2)), index, titles)
    assert [m.decision for m in res] == ["allowed"] and res[0].ref_id == 2
    # A 40 s copy of the film that plays one trailer stretch among others: the film is
    # still confirmed, on the rest.
    res = match(_fp(_jitter(film[90:170], rng, 2)), index, titles)
    films = [m for m in res if m.decision != "allowed"]
    assert films and films[0].title_id == 1 and films[0].decision == "confirmed"
    assert abs(films[0].offset_s - 45.0) <= 0.75
    assert any(m.decision == "allowed" for m in res)
    # The same index without the allowed mark: the trailer copy is the film's.
    plain = HashIndex.build([(1, film, times, 0)])
    assert match(_fp(_jitter(trailer, rng, 2)), plain, {1: 1})[0].decision == "confirmed"


# ------------------------------------------------------------------ generated media


def _card(text: str, size: tuple[int, int], grey: int = 128) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), grey, np.uint8)
    for k, line in enumerate(text.split("\n")):
        cv2.putText(img, line, (20, 60 + 34 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (235, 235, 235), 2)
    return img


@pytest.fixture(scope="module")
def film_with_end_card(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A 40 s film that ends on a 10 s licence card, and clips that are not the film."""
    d = tmp_path_factory.mktemp("evidence")
    size, fps = (480, 270), 24.0
    card = _card("This film is licensed under\nCreative Commons BY 4.0\nStudio Example", size)
    frames = [f for _, f in synth.film_frames(11, 30.0, fps, size)] + [card] * int(10 * fps)
    film = str(d / "film.mp4")
    synth.write_video(film, ((i / fps, f) for i, f in enumerate(frames)), fps)
    rng = np.random.default_rng(6)

    def noisy(img: np.ndarray) -> np.ndarray:
        return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)

    # Not the film: a fixed camera on a table for 5 s, then another studio's licence
    # card on grey for 6 s (the held-out false confirmation was of this kind).
    table = synth._scene(np.random.default_rng(7), *size)[: size[1], : size[0]].copy()
    other_card = _card("Licensed under Creative Commons\nAttribution 4.0\nAnother Studio", size)
    clip = [noisy(table) for _ in range(int(5 * fps))] + [noisy(other_card) for _ in range(int(6 * fps))]
    unrelated = str(d / "unrelated.mp4")
    synth.write_video(unrelated, ((i / fps, f) for i, f in enumerate(clip)), fps)
    # The film's own card, re-encoded: one still picture.
    card_copy = synth.make_copy(film, str(d / "card_copy.mp4"), start_s=31, duration_s=8, bit_rate=300_000)
    # An excerpt of the film's moving pictures.
    excerpt = synth.make_copy(film, str(d / "excerpt.mp4"), start_s=6, duration_s=16, bit_rate=300_000)
    return {"film": film, "unrelated": unrelated, "card_copy": card_copy, "excerpt": excerpt}


def _identify(path: str, index: HashIndex, titles: dict[int, int]) -> list:  # type: ignore[type-arg]
    return identify_source(path, index, titles, fingerprint=fingerprint_query)[1]


def test_cards_and_still_clips_never_confirm(film_with_end_card: dict[str, str]) -> None:
    ref = fingerprint_reference(film_with_end_card["film"])
    # The end card was marked when the reference was fingerprinted.
    card = ref.times >= 31.0
    assert np.all(ref.flags[card] & FLAG_STATIC)
    index, titles = HashIndex.build(index_entries(1, ref)), {1: 1}
    assert _identify(film_with_end_card["unrelated"], index, titles) == []
    assert _identify(film_with_end_card["card_copy"], index, titles) == []
    res = _identify(film_with_end_card["excerpt"], index, titles)
    assert res and res[0].decision == "confirmed" and abs(res[0].offset_s - 6.0) <= 1.0


def _moving_background(size: tuple[int, int]) -> list[np.ndarray]:
    return [f for _, f in synth.film_frames(31, 6.0, 5.0, size)]


def inset(scale: float, corner: str) -> synth.FrameFn:
    """The film at ``scale`` of the width in a corner of another moving video, with a
    channel logo."""
    cache: dict[tuple[int, int], list[np.ndarray]] = {}

    def f(img: np.ndarray, t: float) -> np.ndarray:
        h, w = img.shape[:2]
        bgs = cache.setdefault((h, w), _moving_background((w, h)))
        out = bgs[int(t * 5) % len(bgs)].copy()
        iw, ih = int(w * scale), int(h * scale)
        x = w - iw - 12 if "right" in corner else 12
        y = h - ih - 12 if "bottom" in corner else 12
        out[y : y + ih, x : x + iw] = cv2.resize(img, (iw, ih), interpolation=cv2.INTER_AREA)
        cv2.putText(out, "CH 9", (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        return out

    return f


def reaction(img: np.ndarray, t: float) -> np.ndarray:
    """The film on the left 55 %, a 'person' (moving shapes on a moving scene) beside it."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    fw, fh = int(w * 0.55), int(h * 0.55)
    out[(h - fh) // 2 : (h - fh) // 2 + fh, :fw] = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
    cv2.rectangle(out, (fw + 6, 0), (w, h), (90, 70, 60), -1)
    cx, cy = fw + (w - fw) // 2 + int(12 * np.sin(3 * t)), h // 2 + int(6 * np.cos(2 * t))
    cv2.circle(out, (cx, cy), h // 5, (200, 160, 140), -1)
    cv2.circle(out, (cx, cy + h // 4), h // 8, (40, 40, 160), -1)
    return out


@pytest.mark.parametrize("transform", [inset(0.32, "bottom-right"), inset(0.45, "top-left"), reaction],
                         ids=["inset_32_bottom_right", "inset_45_top_left", "reaction"])
def test_picture_inside_another_video(media: dict[str, str], tmp_path, transform) -> None:  # type: ignore[no-untyped-def]
    ref = fingerprint_reference(media["film_a"])
    index, titles = HashIndex.build([*index_entries(1, ref)]), {1: 1}
    copy = synth.make_copy(media["film_a"], str(tmp_path / "pip.mp4"), start_s=14, duration_s=20,
                           transform=transform, bit_rate=500_000)
    res = _identify(copy, index, titles)
    assert res and res[0].decision == "confirmed", res
    assert abs(res[0].offset_s - 14.0) <= 1.0


def test_change_bits_is_above_the_jitter_of_a_degraded_still() -> None:
    # The rule's premise: a still picture through heavy noise and a low bit rate moves
    # its hash by less than CHANGE_BITS, so noise alone never makes "changes".
    from fingerprint.hashing import hamming, phash

    rng = np.random.default_rng(8)
    scene = cv2.cvtColor(synth._scene(rng, 320, 180)[:180, :320], cv2.COLOR_RGB2GRAY)
    base = phash(scene)
    for _ in range(20):
        noisy = np.clip(scene + rng.normal(0, 12, scene.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 20])
        assert ok
        assert int(hamming(phash(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)), base)) < CHANGE_BITS


# ------------------------------------------------- insets the bar search misreads


def _drawn_film(path: str, seed: int, fps: float, size: tuple[int, int]) -> str:
    """A 40 s drawn film (an animation, a motion-graphics short): 24 s of pictures that
    fill the frame, then 16 s of pictures in the middle of a flat grey ground, the
    outer fifth of every side plain grey. Over the whole film there are no bars."""
    w, h = size
    frames = list(synth.film_frames(seed, 24.0, fps, size))
    for t, art in synth.film_frames(seed + 1, 16.0, fps, (int(w * 0.6), int(h * 0.6))):
        img = np.full((h, w, 3), 128, np.uint8)
        y0, x0 = (h - art.shape[0]) // 2, (w - art.shape[1]) // 2
        img[y0 : y0 + art.shape[0], x0 : x0 + art.shape[1]] = art
        frames.append((24.0 + t, img))
    synth.write_video(path, frames, fps)
    return path


def placed(scale: float, x_share: float, y_share: float, backdrop: str) -> synth.FrameFn:
    """The film at ``scale`` of the width with its top-left corner at the given shares of
    the frame, over a moving video (``"moving"``) or a plain light wall with one moving
    object in the far corner (``"wall"``), with a channel logo."""
    cache: dict[tuple[int, int], list[np.ndarray]] = {}

    def f(img: np.ndarray, t: float) -> np.ndarray:
        h, w = img.shape[:2]
        if backdrop == "moving":
            out = cache.setdefault((h, w), _moving_background((w, h)))[int(t * 5) % 30].copy()
        else:
            out = np.full_like(img, 205)
            cx = int(w * (0.75 + 0.15 * np.sin(2 * t)))
            cv2.circle(out, (cx, int(h * 0.8)), h // 9, (30, 30, 40), -1, cv2.LINE_AA)
        iw, ih = int(w * scale), int(h * scale)
        x, y = int(w * x_share), int(h * y_share)
        out[y : y + ih, x : x + iw] = cv2.resize(img, (iw, ih), interpolation=cv2.INTER_AREA)
        cv2.putText(out, "TV 5", (w - 70, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
        return out

    return f


def test_drawn_film_on_flat_ground_found_inside_another_video(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Its flat grey edges look like bars inside the inset: cropping them leaves a detail
    # its reference never shows alone. The inset is looked at with and without them.
    film = _drawn_film(str(tmp_path / "drawn.mp4"), 41, 24.0, (480, 352))
    ref = fingerprint_reference(film)
    # The reference keeps its grey ground (at most a few pixels of edge are cropped).
    assert ref.box.x0 <= 8 and ref.box.y0 <= 8
    index, titles = HashIndex.build(index_entries(1, ref)), {1: 1}
    copy = synth.make_copy(film, str(tmp_path / "pip.mp4"), start_s=24.5, duration_s=15,
                           transform=placed(0.45, 0.28, 0.22, "moving"), bit_rate=500_000)
    res = _identify(copy, index, titles)
    assert res and res[0].decision == "confirmed", res
    assert abs(res[0].offset_s - 24.5) <= 1.0


def test_inset_at_the_edge_of_a_plain_wall(media: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The plain wall between the inset and the frame's edge looks like bars: the frame
    # cropped of them has lost the inset's own border, so the inset is also looked for
    # in the frame as decoded.
    ref = fingerprint_reference(media["film_a"])
    index, titles = HashIndex.build(index_entries(1, ref)), {1: 1}
    copy = synth.make_copy(media["film_a"], str(tmp_path / "wall.mp4"), start_s=20, duration_s=20,
                           transform=placed(0.5, 0.02, 0.03, "wall"), bit_rate=500_000)
    res = _identify(copy, index, titles)
    assert res and res[0].decision == "confirmed", res
    assert abs(res[0].offset_s - 20.0) <= 1.0


def test_flips_of_a_still_stretch_core_hash_are_not_changes() -> None:
    # A pale still shot whose whole-picture hash is steady (so it is marked still) but
    # whose core hash flips 30 bits from frame to frame, as a low-contrast picture's can.
    # A copy whose core hashes flip the same way at the same times lines up with it: the
    # flips are not pictures changing, and the line is not confirmed.
    from fingerprint.matching import _match_refs

    rng = np.random.default_rng(12)
    n = 40
    times = (np.arange(n) * STEP).astype(np.float32)
    whole = _jitter(np.repeat(_hashes(rng, 1), n), rng, 1)
    flips = _hashes(rng, 4)
    core = flips[(np.arange(n) // 10) % 4]
    flags = static_flags(times, whole)
    assert np.all(flags == FLAG_STATIC)
    index = HashIndex.build([(1, whole, times, 0, flags), (1, core, times, 1, flags)])
    q = _fp(_jitter(whole[4:36], rng, 2), 2.0)
    q_core = _jitter(core[4:36], rng, 2)
    usable = np.arange(len(q.times))
    res = _match_refs(q, usable, [(q.hashes, 0), (q_core, 1)], index, {1: 1}, 12)
    assert all(m.decision != "confirmed" for m in res), res
    # The same line through a moving stretch (whole pictures changing) confirms.
    moving = _hashes(rng, n)
    index = HashIndex.build([(1, moving, times, 0), (1, core, times, 1)])
    q = _fp(_jitter(moving[4:36], rng, 2), 2.0)
    res = _match_refs(q, usable, [(q.hashes, 0), (q_core, 1)], index, {1: 1}, 12)
    assert res and res[0].decision == "confirmed"
