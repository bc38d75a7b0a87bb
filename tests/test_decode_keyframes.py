"""The keyframe count read from packets agrees with decoding the keyframes."""

from __future__ import annotations

import math

import numpy as np

from fingerprint import decode
from fingerprint.extract import FIRST_LOOK_MIN_FRAMES, QUERY_FPS, fingerprint_query
from fingerprint.matching import CONFIRM_MIN_FRAMES
from demoweb import synth


def _film(path: str, gop: int | None, preset: str = "ultrafast") -> str:
    w = synth.VideoWriter(path, 24.0, preset=preset)
    w.gop = gop
    with w:
        for _, img in synth.iter_film_frames(5, 12.0, 24.0, (320, 180)):
            w.write(img)
    return path


def test_packet_keyframes_are_the_decoded_keyframes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for gop in (12, 250):
        path = _film(str(tmp_path / f"gop{gop}.mp4"), gop)
        info, times, _ = decode.probe_keyframes(path, QUERY_FPS, math.inf)
        decoded = [f.t for f in decode.iter_frames(path, keyframes_only=True, sample_fps=QUERY_FPS)]
        assert info == decode.probe(path)
        assert times is not None and np.allclose(times, decoded)
        # Too short a video to count is not read: None.
        assert decode.probe_keyframes(path, QUERY_FPS, 1.0)[1] is None


def test_sparse_keyframes_go_straight_to_the_dense_decode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rich = fingerprint_query(_film(str(tmp_path / "rich.mp4"), 12))
    sparse = fingerprint_query(_film(str(tmp_path / "sparse.mp4"), 250))
    assert rich.mode == "keyframes" and len(rich) >= 3
    assert sparse.mode == "dense" and len(sparse) == len(list(decode.iter_frames(
        str(tmp_path / "sparse.mp4"), sample_fps=QUERY_FPS, fast=True)))


def test_a_first_look_that_could_not_confirm_is_not_taken(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Keyframes every 2 s: often enough for the rate, but 6 in 12 s, fewer than a
    # confirmation needs frames. Such a look would always be followed by the dense one.
    assert FIRST_LOOK_MIN_FRAMES >= CONFIRM_MIN_FRAMES
    path = _film(str(tmp_path / "every2s.mp4"), 48)
    _, times, _ = decode.probe_keyframes(path, QUERY_FPS, math.inf)
    assert times is not None and 3 <= len(times) < FIRST_LOOK_MIN_FRAMES
    assert fingerprint_query(path).mode == "dense"


def test_frames_decoded_from_kept_packets_are_the_frames_of_a_second_opening(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _film(str(tmp_path / "film.mp4"), 250)
    for kw in ({"sample_fps": QUERY_FPS, "fast": True}, {"keyframes_only": True, "sample_fps": QUERY_FPS}):
        _, _, read = decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)
        assert read is not None and len(read.packets) > 0
        once = list(decode.iter_frames(path, read=read, **kw))
        again = list(decode.iter_frames(path, **kw))
        assert [f.t for f in once] == [f.t for f in again]
        assert all(np.array_equal(a.gray, b.gray) for a, b in zip(once, again))
    # Past the byte budget nothing is kept: the file is demuxed again.
    saved = decode.READ_ONCE_MAX_BYTES
    try:
        decode.READ_ONCE_MAX_BYTES = 1000
        assert decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)[2] is None
    finally:
        decode.READ_ONCE_MAX_BYTES = saved


def test_two_decoders_give_the_frames_of_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Packets split at an IDR keyframe near the middle and decoded by two decoders at
    # once give exactly the frames of one pass, with B-frames (medium) and without.
    import av

    for preset in ("ultrafast", "medium"):
        path = _film(str(tmp_path / f"{preset}.mp4"), 72, preset)
        with av.open(path) as c:
            stream = c.streams.video[0]
            assert decode._split_point(list(c.demux(stream)), stream) is not None
        for fps in (QUERY_FPS, None):
            _, _, read = decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)
            split = list(decode.iter_frames(path, read=read, sample_fps=fps, fast=True))
            one = list(decode.iter_frames(path, sample_fps=fps, fast=True))
            assert [f.t for f in split] == [f.t for f in one] and len(one) > 10
            assert all(np.array_equal(a.gray, b.gray) and a.key == b.key for a, b in zip(split, one))
    # One picture group: nowhere to split.
    path = _film(str(tmp_path / "one.mp4"), 500)
    with av.open(path) as c:
        stream = c.streams.video[0]
        assert decode._split_point(list(c.demux(stream)), stream) is None


def test_keyframes_of_a_vp9_file_are_its_keyframes_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # FFmpeg's VP9 decoder does not honour skip_frame, so the "keyframes" first look of a
    # WebM decoded every frame (2 a second kept); it is given the keyframe packets only.
    # Where the decoder skips (H.264), the frames are the same either way.
    for name, codec in (("vp9.webm", "libvpx-vp9"), ("h264.mp4", "libx264")):
        path = str(tmp_path / name)
        w = synth.VideoWriter(path, 24.0, codec=codec)
        w.gop = 24
        with w:
            for _, img in synth.iter_film_frames(5, 8.0, 24.0, (320, 180)):
                w.write(img)
        _, times, read = decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)
        kept = [f.t for f in decode.iter_frames(path, keyframes_only=True, sample_fps=QUERY_FPS, read=read)]
        assert times is not None and len(times) >= 7 and np.allclose(kept, times), (name, kept, times)


def test_a_decode_in_rounds_ends_with_the_frames_of_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two rounds (the first half of each decoder's packets, then the rest from where it
    # stopped) end with exactly the frames of one pass: split in two decoders or not,
    # with B-frames (medium) and without, sampled or every frame. The first round holds
    # frames of the video about as densely sampled, from both halves of the video when
    # it is split.
    for preset, gop in (("ultrafast", 72), ("medium", 72), ("ultrafast", 500), ("medium", 500)):
        path = _film(str(tmp_path / f"{preset}-{gop}.mp4"), gop, preset)
        for fps in (QUERY_FPS, None):
            _, _, read = decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)
            assert read is not None
            rounds = decode.decode_in_rounds(path, read, sample_fps=fps, fast=True)
            first, whole = next(rounds), next(rounds)
            one = list(decode.iter_frames(path, sample_fps=fps, fast=True))
            assert [f.t for f in whole] == [f.t for f in one] and len(one) > 10
            assert all(np.array_equal(a.gray, b.gray) and a.key == b.key for a, b in zip(whole, one))
            at = {f.t: f for f in decode.iter_frames(path, fast=True)}
            assert 0.3 * len(one) <= len(first) <= 0.7 * len(one)
            assert all(f.t in at and np.array_equal(f.gray, at[f.t].gray) for f in first)
            if gop == 72:  # two decoders: the first round has frames of both halves
                assert min(f.t for f in first) < 3.0 and max(f.t for f in first) > 6.0


def test_a_decode_in_rounds_that_stops_after_the_first_decodes_no_more(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A caller that has enough after the first round closes the rounds: the rest is
    # never decoded and the file is closed.
    path = _film(str(tmp_path / "film.mp4"), 72)
    _, _, read = decode.probe_keyframes(path, QUERY_FPS, math.inf, keep=True)
    assert read is not None
    rounds = decode.decode_in_rounds(path, read, sample_fps=QUERY_FPS, fast=True)
    assert len(next(rounds)) > 0
    rounds.close()
    assert read.packets == []


def test_a_damaged_stream_in_rounds_gives_what_one_pass_gives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Bytes of the second half overwritten with garbage: the rounds cannot promise the
    # frames of one pass, so the second round decodes in one go, as iter_frames does.
    path = _film(str(tmp_path / "film.mp4"), 72)
    data = bytearray((tmp_path / "film.mp4").read_bytes())
    rng = np.random.default_rng(3)
    start = len(data) * 2 // 3
    data[start : start + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    _, _, read = decode.probe_keyframes(str(bad), QUERY_FPS, math.inf, keep=True)
    assert read is not None
    rounds = decode.decode_in_rounds(str(bad), read, sample_fps=QUERY_FPS, fast=True)
    next(rounds)
    whole = next(rounds)
    one = list(decode.iter_frames(str(bad), sample_fps=QUERY_FPS, fast=True))
    assert [f.t for f in whole] == [f.t for f in one]
