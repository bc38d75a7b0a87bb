"""Video fingerprints: from a file or URL to arrays of timed frame hashes.

Two shapes of fingerprint:

* reference (catalogue) fingerprints are *dense*: every decoded frame is hashed, and a
  frame is kept when its hash moved away from the last kept one (or time passed), so
  shot changes are always captured and still scenes cost nothing;
* query fingerprints are *sparse*: a few frames per second are enough, because the
  dense reference has a frame close in time to any of them.

The content box (bars cropped away) is decided per video before hashing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fingerprint import decode
from fingerprint.hashing import MIN_QUALITY, hamming, phash_batch, quality, resize_for_hash
from fingerprint.preprocess import FULL, BarStats, Box
from vigie.errors import MediaError

ALGORITHM = "phash64-v1"

# Reference de-duplication: keep a frame when its hash is more than DEDUP_BITS away from
# the last kept frame, or REF_MAX_GAP_S seconds passed. 4 of 64 bits is the noise level
# of pHash between consecutive frames of a still shot after coding; the gap bound keeps
# slow pans sampled often enough for the temporal alignment.
DEDUP_BITS = 4
REF_MAX_GAP_S = 0.5

# Reference sampling: frames per second of video that are scaled and hashed (all are
# decoded). At 8 fps a shot change is caught within 125 ms, far inside the matcher's
# time tolerance, and scaling + hashing cost a fraction of the decode.
REF_FPS = 8.0

# Query sampling. A query is sparse: keyframes only when the file has enough of them
# (they cost a small share of a full decode), else QUERY_FPS frames per second of a full
# decode. A long video (or a remote one past REMOTE_SEEK_MIN_S) is sampled by seeking to
# SEEK_POINTS evenly spaced keyframes, so only a small share of its bytes is read.
QUERY_FPS = 2.0
MIN_KEYFRAME_RATE = 0.5      # keyframes per second needed to use keyframes only
SEEK_MIN_S = 600.0
REMOTE_SEEK_MIN_S = 120.0
SEEK_POINTS = 240

BATCH = 256


@dataclass
class VideoFingerprint:
    """Timed frame hashes of one video, plus what was learnt decoding it."""

    times: NDArray[np.float32]
    hashes: NDArray[np.uint64]
    quality: NDArray[np.float32]
    info: decode.VideoInfo
    frames_decoded: int
    box: Box = FULL
    # Extra hashes per frame for the query side (e.g. "mirror"), aligned with ``times``.
    variants: dict[str, NDArray[np.uint64]] = field(default_factory=dict)
    algorithm: str = ALGORITHM

    def __len__(self) -> int:
        return len(self.times)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _box_from_keyframes(source: str, limit: int = 400) -> Box:
    stats = BarStats()
    for fr in decode.iter_frames(source, keyframes_only=True, max_frames=limit):
        stats.add(fr.gray)
    return stats.box()


def fingerprint_reference(source: str) -> VideoFingerprint:
    """Dense fingerprint of a catalogue video (every frame decoded and hashed)."""
    box = _box_from_keyframes(source)
    info = decode.probe(source)
    times: list[float] = []
    hashes: list[np.uint64] = []
    quals: list[float] = []
    decoded = 0
    pending_t: list[float] = []
    pending: list[NDArray[np.float32]] = []
    last_h: np.uint64 | None = None
    last_t = -1e9

    def flush() -> None:
        nonlocal last_h, last_t
        if not pending:
            return
        batch = np.stack(pending)
        hs = phash_batch(batch)
        qs = quality(batch)
        for t, h, q in zip(pending_t, hs, qs):
            # Frames without detail are never evidence (see hashing.MIN_QUALITY):
            # they are not stored, which also keeps them out of the index.
            if q < MIN_QUALITY:
                continue
            if last_h is None or hamming(h, last_h) > DEDUP_BITS or t - last_t >= REF_MAX_GAP_S:
                times.append(t)
                hashes.append(h)
                quals.append(float(q))
                last_h, last_t = h, t
        pending.clear()
        pending_t.clear()

    for fr in decode.iter_frames(source, sample_fps=REF_FPS):
        decoded += 1
        pending_t.append(fr.t)
        pending.append(resize_for_hash(box.crop(fr.gray)))
        if len(pending) >= BATCH:
            flush()
    flush()
    duration = info.duration_s or (times[-1] if times else 0.0)
    return VideoFingerprint(
        times=np.asarray(times, dtype=np.float32),
        hashes=np.asarray(hashes, dtype=np.uint64),
        quality=np.asarray(quals, dtype=np.float32),
        info=decode.VideoInfo(duration, info.fps, info.width, info.height),
        frames_decoded=decoded,
        box=box,
    )


def fingerprint_frames(
    times: list[float], grays: list[NDArray[np.uint8]], info: decode.VideoInfo, decoded: int
) -> VideoFingerprint:
    """Query fingerprint of already-decoded sparse frames (pure; used by tests too)."""
    stats = BarStats()
    for g in grays:
        stats.add(g)
    box = stats.box()
    small = np.stack([resize_for_hash(box.crop(g)) for g in grays]) if grays else np.zeros((0, 32, 32), np.float32)
    return VideoFingerprint(
        times=np.asarray(times, dtype=np.float32),
        hashes=phash_batch(small) if len(small) else np.zeros(0, np.uint64),
        quality=quality(small) if len(small) else np.zeros(0, np.float32),
        info=info,
        frames_decoded=decoded,
        box=box,
        variants={"mirror": phash_batch(small[:, :, ::-1]) if len(small) else np.zeros(0, np.uint64)},
    )


def fingerprint_query(source: str, *, mode: str = "auto") -> VideoFingerprint:
    """Sparse fingerprint of a video to identify.

    ``mode``: "auto" (choose by length and keyframe density), "keyframes", "dense"
    (QUERY_FPS frames per second of a full decode) or "seek".
    """
    info = decode.probe(source)
    remote = "://" in source
    if mode == "auto":
        long_after = REMOTE_SEEK_MIN_S if remote else SEEK_MIN_S
        mode = "seek" if info.duration_s > long_after else "keyframes"
    frames: list[decode.Frame]
    if mode == "seek":
        step = max(info.duration_s / SEEK_POINTS, 1.0)
        targets = [i * step for i in range(int(info.duration_s / step) + 1)]
        frames = list(decode.iter_seek_frames(source, targets))
    elif mode == "keyframes":
        try:
            frames = list(decode.iter_frames(source, keyframes_only=True, sample_fps=QUERY_FPS))
        except MediaError:
            frames = []  # some streams flag no keyframes: decode them fully instead
        span = max(info.duration_s, frames[-1].t if frames else 0.0, 1.0)
        if len(frames) < MIN_KEYFRAME_RATE * span:
            mode = "dense"
    if mode == "dense":
        frames = list(decode.iter_frames(source, sample_fps=QUERY_FPS, fast=True))
    duration = info.duration_s or (frames[-1].t if frames else 0.0)
    info = decode.VideoInfo(duration, info.fps, info.width, info.height)
    return fingerprint_frames([f.t for f in frames], [f.gray for f in frames], info, len(frames))
