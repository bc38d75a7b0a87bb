"""Video fingerprints: from a file or URL to arrays of timed frame hashes.

Two shapes of fingerprint:

* reference (catalogue) fingerprints are *dense*: REF_FPS frames a second are hashed, and a
  frame is kept when its hash moved away from the last kept one (or time passed), so
  shot changes are always captured and still scenes cost nothing;
* query fingerprints are *sparse*: a few frames per second are enough, because the
  dense reference has a frame close in time to any of them.

The content box (bars cropped away) is decided per video before hashing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from fingerprint import decode
from fingerprint.hashing import MIN_QUALITY, hamming, phash_batch, phash_regions, quality, resize_for_hash
from fingerprint.index import FLAG_STATIC
from fingerprint.preprocess import (
    FULL,
    MOTION_CANDIDATES,
    BarMaps,
    BarStats,
    Box,
    activity_edges,
    crop_edges,
    decorrelation_edges,
    detect_box,
    edge_medians,
    inner_pictures,
)
from foundation.errors import MediaError

# v2: two hashes per reference frame, the whole picture and its core (see CORE).
ALGORITHM = "phash64x2-v2"

# The core of a picture: the centre region [CORE, 1 - CORE] on both axes. Any crop of up
# to CORE per side leaves it whole, and logos, subtitles and watermarks mostly sit
# outside it. References store its hash beside the whole picture's; a query looks for
# it under a few hypotheses of how it was cropped (CROP_AXIS_OPTIONS).
CORE = 0.15

# Share of each side of a detected inner picture left out before hashing it; one of
# the crop options, so that the hypothesis "cropped by INNER_MARGIN all round"
# (INNER_HYPOTHESIS) finds the film's core in it exactly.
INNER_MARGIN = 0.05
# Frames of an inner picture its own bars are looked for in (bars do not move: a few
# frames show them, and every inset proposal pays for its own look, both looks being
# tried anyway when bars are found), and of a query its bars are.
INNER_BAR_FRAMES = 8
QUERY_BAR_FRAMES = 24

# How one axis of a copy may have been cropped: (kept from, kept to) as shares of the
# original. Symmetric crops of 0-15 % and one-sided ones; the grid step (5-7.5 %) is
# within what pHash tolerates as misalignment. Option 0 is "not cropped".
CROP_AXIS_OPTIONS: tuple[tuple[float, float], ...] = (
    (0.0, 1.0), (0.05, 0.95), (0.10, 0.90), (0.15, 0.85),
    (0.15, 1.0), (0.0, 0.85), (0.075, 1.0), (0.0, 0.925),
)
CROP_HYPOTHESES: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = tuple(
    (x, y) for y in CROP_AXIS_OPTIONS for x in CROP_AXIS_OPTIONS
)
INNER_HYPOTHESIS = CROP_HYPOTHESES.index(((0.05, 0.95), (0.05, 0.95)))

# Reference de-duplication: keep a frame when its hash is more than DEDUP_BITS away from
# the last kept frame, or REF_MAX_GAP_S seconds passed. 4 of 64 bits is the noise level
# of pHash between consecutive frames of a still shot after coding; the gap bound keeps
# slow pans sampled often enough for the temporal alignment.
DEDUP_BITS = 4
REF_MAX_GAP_S = 0.5

# Reference sampling: frames per second of video that are scaled and hashed. At 8 fps
# a shot change is caught within 125 ms, far inside the matcher's time tolerance, and
# scaling + hashing cost a fraction of the decode. The decode is the fast one the dense
# query look uses (``decode.iter_frames(fast=True)``): non-reference frames (most
# B-frames) and the deblocking filter skipped, invisible to a 32x32 hash. Every
# reference frame is still decoded, so a frame is there at least every few frames of
# video (a P-frame every 3 to 8 at most), well inside the 8 fps sampling and
# REF_MAX_GAP_S. Measured on the corpus's bbb (H.264 Main, 1280x720, 10 min, 2 cores):
# 28 s -> 14-19 s, 40 -> 18-21 s of CPU, the same 4,772 frames sampled.
REF_FPS = 8.0

# Query sampling. A query is sparse: keyframes only when the file has enough of them
# (they cost a small share of a full decode), else QUERY_FPS frames per second of a full
# decode. A long video (or a remote one past REMOTE_SEEK_MIN_S) is sampled by seeking to
# SEEK_POINTS evenly spaced keyframes, so only a small share of its bytes is read.
# Seeking goes coarse to fine: SEEK_FIRST_POINTS first ("glance"), which confirms a
# whole-film copy on its own; SEEK_POINTS ("seek") only when the glance confirms nothing.
QUERY_FPS = 2.0
MIN_KEYFRAME_RATE = 0.15     # keyframes per second needed to try keyframes only
# ... and at least as many keyframes as a confirmation needs frames on its line
# (``matching.CONFIRM_MIN_FRAMES``; extract cannot import matching, a test ties the two):
# a first look is there to confirm, and one that cannot is always followed by the dense
# decode. On the bench, all 28 keyframe looks (3 keyframes in about 20 s) were, for
# nothing: 7 ms of decoding and a first match each.
# The dense decode of a local file is itself a first look when its first round
# (``decode.decode_in_rounds``: half the frames) holds as many sampled frames: the
# caller matches them (``fingerprint_query``'s ``enough``), and the rest is decoded only
# when they confirm nothing.
FIRST_LOOK_MIN_FRAMES = 10
SEEK_MIN_S = 300.0
REMOTE_SEEK_MIN_S = 120.0
SEEK_FIRST_POINTS = 40
SEEK_POINTS = 120
SEEK_MIN_STEP_S = 4.0

BATCH = 256

# Still stretches of a reference (a held shot, a title or end card, a licence card): a
# run of stored frames all within STATIC_BITS of its first frame that lasts at least
# STATIC_MIN_S is marked FLAG_STATIC. Such a run agrees with any still picture at any
# offset, so it never counts as evidence on its own (``fingerprint.matching``).
# 6 bits is above the coding noise of a still (DEDUP_BITS) and under what half a second
# of real motion moves a hash (the street scene of the corpus, a fixed camera with
# walkers, drifts 4 bits per 0.5 s and is not marked); 2 s is four dedup gaps.
STATIC_BITS = 6
STATIC_MIN_S = 2.0


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
    # Reference only: the core hash of each frame, aligned with ``times``.
    core: NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))
    # Reference only: marks of frames that are not distinctive (``index.FLAG_*``).
    flags: NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    # Query only: core hashes under the crop hypotheses of the whole picture.
    crops: CropHashes | None = None
    # Query only: pictures that may be shown inside the frame (picture-in-picture),
    # most likely first; looked for only when nothing else confirms (``inner``).
    _inner: list[InnerPicture] | None = field(default=None, repr=False)
    _inner_moving: list[InnerPicture] | None = field(default=None, repr=False)
    _edge_boxes: dict[int, list[Box]] = field(default_factory=dict, repr=False)
    _bars: dict[int, BarMaps | None] = field(default_factory=dict, repr=False)
    # Query only: the crop hypotheses of the frames as decoded, when bars were cropped
    # away: the "bars" may have been the film's own flat edges (a drawn film on white).
    uncropped: CropHashes | None = None
    # How the frames were sampled: "reference", "keyframes", "dense", "glance", "seek", or
    # "dense-first" (the first round of a dense decode, which was enough: FIRST_LOOK_MIN_FRAMES).
    mode: str = "reference"
    algorithm: str = ALGORITHM

    def __len__(self) -> int:
        return len(self.times)

    def without_pictures(self) -> VideoFingerprint:
        """This fingerprint's hashes, times and what was learnt decoding, without the
        decoded pictures kept for the matcher's closer looks (and what it found in them):
        what a caller of the sandboxed identify gets back, a few kilobytes."""
        return replace(self, crops=None, uncropped=None, _inner=None, _inner_moving=None, _edge_boxes={}, _bars={})

    @property
    def inner(self) -> list[InnerPicture]:
        """Pictures that may be shown inside the frame (picture-in-picture), where the
        pictures' borders are (``edge_medians``), computed the first time they are asked
        for: most copies confirm without them, and finding them costs as much as the
        first look."""
        if self._inner is None:
            self._inner = self._inner_looks(moving=False)
        return self._inner

    @property
    def inner_by_motion(self) -> list[InnerPicture]:
        """More such pictures, where the pictures' motion changes (``activity_edges``)
        or neighbours change independently (``decorrelation_edges``), those ``inner``
        does not already hold: looked at only when the matcher
        recognises none of ``inner``."""
        if self._inner_moving is None:
            self._inner_moving = self._inner_looks(moving=True)
        return self._inner_moving

    def _inner_looks(self, moving: bool) -> list[InnerPicture]:
        found: list[InnerPicture] = []
        # The frame as cropped of its bars, and as decoded when bars were cropped: a
        # flat backdrop next to an inset near the frame's edge looks like bars, and
        # cropping it away takes the inset's own border with it. The edges of the
        # cropped frames are those of the decoded ones, cropped.
        whole = self.uncropped.pictures if self.uncropped is not None else []
        one_size = len({p.shape for p in whole}) == 1  # the crops line up
        edges = edge_medians(whole) if one_size and not moving else None
        for k, (crops, mine) in enumerate(((self.crops, None if edges is None else crop_edges(edges, self.box)),
                                           (self.uncropped, edges))):
            pictures = crops.pictures if crops is not None else []
            if not pictures:
                continue
            if moving:
                self.inner  # noqa: B018 - computes _edge_boxes, those of the same pictures
                boxes = []
                seen = list(self._edge_boxes.get(k, []))
                for where in (activity_edges(pictures), decorrelation_edges(pictures)):
                    for b in inner_pictures(pictures, where, MOTION_CANDIDATES) if where is not None else []:
                        if not any(b.near(o) for o in seen):
                            boxes.append(b)
                            seen.append(b)
            else:
                boxes = self._edge_boxes[k] = inner_pictures(pictures, mine)
            # Each proposal's own bars, from the frames' bar statistics cropped to it (the
            # same statistics for both passes).
            if boxes and k not in self._bars:
                self._bars[k] = _bar_maps(pictures)
            bars = self._bars.get(k)
            found += [look for b in boxes for look in inner_picture_looks(pictures, b, bars)]
        return found


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


def fingerprint_reference(source: str, progress: Callable[[float], None] | None = None) -> VideoFingerprint:
    """Dense fingerprint of a catalogue video (REF_FPS frames a second hashed, of the
    frames the fast decode gives: see REF_FPS).

    ``progress`` is told the time (s) of each sampled frame as decoding advances."""
    box = _box_from_keyframes(source)
    info = decode.probe(source)
    times: list[float] = []
    hashes: list[np.uint64] = []
    cores: list[np.uint64] = []
    quals: list[float] = []
    decoded = 0
    pending_t: list[float] = []
    pending: list[NDArray[np.float32]] = []
    pending_core: list[NDArray[np.float32]] = []
    last_h: np.uint64 | None = None
    last_t = -1e9

    def flush() -> None:
        nonlocal last_h, last_t
        if not pending:
            return
        batch = np.stack(pending)
        hs = phash_batch(batch)
        cs = phash_batch(np.stack(pending_core))
        qs = quality(batch)
        for t, h, c, q in zip(pending_t, hs, cs, qs):
            # Frames without detail are never evidence (see hashing.MIN_QUALITY):
            # they are not stored, which also keeps them out of the index.
            if q < MIN_QUALITY:
                continue
            if last_h is None or hamming(h, last_h) > DEDUP_BITS or t - last_t >= REF_MAX_GAP_S:
                times.append(t)
                hashes.append(h)
                cores.append(c)
                quals.append(float(q))
                last_h, last_t = h, t
        pending.clear()
        pending_core.clear()
        pending_t.clear()

    for fr in decode.iter_frames(source, sample_fps=REF_FPS, fast=True):
        decoded += 1
        if progress is not None:
            progress(fr.t)
        pending_t.append(fr.t)
        picture = box.crop(fr.gray)
        pending.append(resize_for_hash(picture))
        pending_core.append(resize_for_hash(region(picture, (CORE, 1 - CORE), (CORE, 1 - CORE))))
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
        core=np.asarray(cores, dtype=np.uint64),
        flags=static_flags(np.asarray(times, dtype=np.float32), np.asarray(hashes, dtype=np.uint64)),
    )


def static_flags(times: NDArray[np.float32], hashes: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """FLAG_STATIC on every frame of a still stretch (see STATIC_BITS), else 0."""
    n = len(hashes)
    flags = np.zeros(n, np.uint8)
    start = 0
    while start < n:
        end = start + 1
        while end < n and int(hamming(hashes[end], hashes[start])) <= STATIC_BITS:
            end += 1
        if float(times[end - 1]) - float(times[start]) >= STATIC_MIN_S:
            flags[start:end] = FLAG_STATIC
        start = end
    return flags


def index_entries(ref_id: int, fp: VideoFingerprint) -> list[tuple[int, NDArray[np.uint64], NDArray[np.float32], int,
                                                                  NDArray[np.uint8] | None]]:
    """A reference fingerprint as ``HashIndex.build`` entries: whole pictures, cores,
    each with the frames' marks."""
    flags = fp.flags if len(fp.flags) == len(fp.hashes) else None
    return [(ref_id, fp.hashes, fp.times, 0, flags), (ref_id, fp.core, fp.times, 1, flags)]


def region(img: NDArray[np.uint8], xs: tuple[float, float], ys: tuple[float, float]) -> NDArray[np.uint8]:
    """The part of ``img`` between shares xs of its width and ys of its height."""
    h, w = img.shape[:2]
    x0, x1 = int(round(xs[0] * w)), max(int(round(xs[1] * w)), int(round(xs[0] * w)) + 1)
    y0, y1 = int(round(ys[0] * h)), max(int(round(ys[1] * h)), int(round(ys[0] * h)) + 1)
    return img[y0:y1, x0:x1]


def core_in_copy(kept: tuple[float, float]) -> tuple[float, float]:
    """Where the original's core [CORE, 1 - CORE] lies in a copy that kept ``kept``."""
    lo, hi = kept
    span = hi - lo
    return (max(0.0, (CORE - lo) / span), min(1.0, (1 - CORE - lo) / span))


# Where the original's core lies in a copy, per crop option of one axis, as is and
# mirrored (the copy was flipped, so the original's left is the copy's right).
_AXIS_CORES = [core_in_copy(o) for o in CROP_AXIS_OPTIONS]
_AXIS_CORES_MIRRORED = [(1 - c[1], 1 - c[0]) for c in _AXIS_CORES]


def _core_hashes(pictures: list[NDArray[np.uint8]], ks: list[int]) -> NDArray[np.uint64]:
    """Core hashes of ``pictures`` under crop hypotheses ``ks``: shape (len(ks), 2, n),
    as is and mirrored."""
    n_axis = len(CROP_AXIS_OPTIONS)
    out = np.zeros((len(ks), 2, len(pictures)), np.uint64)
    if not pictures:
        return out
    shapes = {p.shape for p in pictures}
    if len(shapes) > 1:  # a stream that changed size: each size on its own
        for shape in shapes:
            idx = [i for i, p in enumerate(pictures) if p.shape == shape]
            out[:, :, idx] = _core_hashes([pictures[i] for i in idx], ks)
        return out
    stack = np.stack(pictures)
    ys = sorted({k // n_axis for k in ks})
    xs = sorted({k % n_axis for k in ks})
    plain = phash_regions(stack, [_AXIS_CORES[y] for y in ys], [_AXIS_CORES[x] for x in xs])
    mirrored = phash_regions(stack, [_AXIS_CORES[y] for y in ys], [_AXIS_CORES_MIRRORED[x] for x in xs], flip_x=True)
    for j, k in enumerate(ks):
        yi, xi = ys.index(k // n_axis), xs.index(k % n_axis)
        out[j, 0], out[j, 1] = plain[:, yi, xi], mirrored[:, yi, xi]
    return out


class CropHashes:
    """A query's core hashes under every crop hypothesis, computed when asked.

    Most copies confirm on the first pass, which needs hypothesis 0 only; the crop
    search needs all hypotheses but on a few probe frames, then one hypothesis on all
    frames. So the (small, greyscale) pictures are kept and hashed when asked."""

    def __init__(self, pictures: list[NDArray[np.uint8]]) -> None:
        self.pictures = pictures
        self._full: dict[int, NDArray[np.uint64]] = {}

    def __len__(self) -> int:
        return len(self.pictures)

    def hypothesis(self, k: int) -> NDArray[np.uint64]:
        """Hashes of every frame under hypothesis ``k``: shape (2, frames)."""
        if k not in self._full:
            self._full[k] = _core_hashes(self.pictures, [k])[0]
        return self._full[k]

    def probe(self, frames: NDArray[np.int64], ks: list[int] | None = None) -> NDArray[np.uint64]:
        """Hashes of some frames under hypotheses ``ks`` (default: every one): shape
        (hypotheses, 2, len(frames))."""
        ks = list(range(len(CROP_HYPOTHESES))) if ks is None else ks
        return _core_hashes([self.pictures[int(i)] for i in frames], ks)


# What the matcher tries an inner picture with on its probe frames (``InnerPicture.probe``):
# the whole picture, then its core where the margin left it (INNER_HYPOTHESIS) and where
# a copy that also cropped the film would have it (hypothesis 0); each as is, then
# mirrored. PROBE_KINDS: the kind of index entry each is looked up among.
PROBE_CORES = (INNER_HYPOTHESIS, 0)
PROBE_KINDS = (0, 0, 1, 1, 1, 1)


class InnerPicture:
    """A picture found inside the frame: its box and its hashes (as is and mirrored),
    per query frame, computed when asked. The matcher tries each proposal on a few
    probe frames and keeps one: only that one is hashed on every frame."""

    def __init__(self, box: Box, insides: list[NDArray[np.uint8]]) -> None:
        self.box = box
        self.crops = CropHashes(insides)
        self._full: dict[bool, NDArray[np.uint64]] = {}

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def hashes(self) -> NDArray[np.uint64]:
        return self._all(False)

    @property
    def mirror(self) -> NDArray[np.uint64]:
        return self._all(True)

    def probe(self, frames: NDArray[np.int64]) -> NDArray[np.uint64]:
        """The hashes the matcher tries this picture with on some frames, in PROBE_KINDS'
        order: shape (6, len(frames)). Each frame's hashes are its own (the same as the
        whole run's at that frame). Per size of picture, two matrix products give all six
        (``phash_regions`` over the whole picture and both cores as one grid, as is and
        mirrored), where one at a time took six."""
        n_axis = len(CROP_AXIS_OPTIONS)
        out = np.zeros((len(PROBE_KINDS), len(frames)), np.uint64)
        pictures = [self.crops.pictures[int(i)] for i in frames]
        ys = [(0.0, 1.0), *(_AXIS_CORES[k // n_axis] for k in PROBE_CORES)]
        on = np.arange(len(ys))
        for shape in {p.shape for p in pictures}:  # one, unless the stream changed size
            idx = [j for j, p in enumerate(pictures) if p.shape == shape]
            stack = np.stack([pictures[j] for j in idx])
            for flip, cores in ((0, _AXIS_CORES), (1, _AXIS_CORES_MIRRORED)):
                xs = [(0.0, 1.0), *(cores[k % n_axis] for k in PROBE_CORES)]
                grid = phash_regions(stack, ys, xs, flip_x=bool(flip))  # (n, 3, 3): what is wanted on its diagonal
                out[np.ix_(on * 2 + flip, idx)] = grid[:, on, on].T
        return out

    def _one_size(self) -> bool:
        return len({p.shape for p in self.crops.pictures}) <= 1

    def _all(self, mirrored: bool) -> NDArray[np.uint64]:
        if mirrored not in self._full:
            pictures = self.crops.pictures
            if self._one_size():
                self._full[mirrored] = _whole_hashes(pictures, mirrored)
            else:  # a stream that changed size: each picture resized on its own
                whole = np.stack([resize_for_hash(p) for p in pictures])
                self._full[mirrored] = phash_batch(whole[:, :, ::-1] if mirrored else whole)
        return self._full[mirrored]


def _whole_hashes(pictures: list[NDArray[np.uint8]], mirrored: bool) -> NDArray[np.uint64]:
    """Hashes of same-sized pictures, whole, as is or mirrored."""
    if not pictures:
        return np.zeros(0, np.uint64)
    return phash_regions(np.stack(pictures), [(0.0, 1.0)], [(0.0, 1.0)], flip_x=mirrored)[:, 0, 0]


def _bar_maps(pictures: list[NDArray[np.uint8]]) -> BarMaps | None:
    """The bar statistics of the frames ``inner_picture_looks`` looks at for an inner
    picture's own bars, when the pictures are all of one size (else None: each inner
    picture is then looked at on its own)."""
    if len({p.shape for p in pictures}) != 1:
        return None
    return BarMaps(pictures[:: max(1, len(pictures) // INNER_BAR_FRAMES)])


def inner_picture_looks(pictures: list[NDArray[np.uint8]], box: Box,
                        bars: BarMaps | None = None) -> list[InnerPicture]:
    """What ``box`` shows in each picture, ready for the matcher to hash: without its
    own bars, and also with them when it seems to have some.

    The inner picture may carry bars of its own (a 4:3 film pillarboxed in it), but a
    drawn film on a flat ground has "bars" that are its own picture: cropping them
    leaves a detail of the film its reference never shows alone, so both are looked at
    and the index tells which one is the film."""
    insides = [box.crop(p) for p in pictures]
    inner_bars = (bars.box(box) if bars is not None
                  else detect_box(insides[:: max(1, len(insides) // INNER_BAR_FRAMES)]))
    looks = [insides] if inner_bars.is_full else [[inner_bars.crop(p) for p in insides], insides]
    # Its border is found to a pixel or two of the analysis frame: step inside it, so
    # that what is left is a crop of the film, which the crop search then handles.
    return [InnerPicture(box, [region(p, (INNER_MARGIN, 1 - INNER_MARGIN), (INNER_MARGIN, 1 - INNER_MARGIN))
                               for p in look]) for look in looks]


def fingerprint_frames(
    times: list[float], grays: list[NDArray[np.uint8]], info: decode.VideoInfo, decoded: int
) -> VideoFingerprint:
    """Query fingerprint of already-decoded sparse frames (pure; used by tests too)."""
    stats = BarStats()
    for g in grays:
        stats.add(g)
    box = stats.box(QUERY_BAR_FRAMES)
    pictures = [box.crop(g) for g in grays]
    small = np.stack([resize_for_hash(p) for p in pictures]) if grays else np.zeros((0, 32, 32), np.float32)
    return VideoFingerprint(
        times=np.asarray(times, dtype=np.float32),
        hashes=phash_batch(small) if len(small) else np.zeros(0, np.uint64),
        quality=quality(small) if len(small) else np.zeros(0, np.float32),
        info=info,
        frames_decoded=decoded,
        box=box,
        variants={"mirror": phash_batch(small[:, :, ::-1]) if len(small) else np.zeros(0, np.uint64)},
        crops=CropHashes(pictures),
        uncropped=None if box.is_full or not grays else CropHashes(grays),
    )


def _too_few_keyframes(times: list[float], info: decode.VideoInfo) -> bool:
    """Whether keyframes at ``times`` are too sparse to be a first look (MIN_KEYFRAME_RATE,
    FIRST_LOOK_MIN_FRAMES)."""
    span = max(info.duration_s, times[-1] if times else 0.0, 1.0)
    return len(times) < max(MIN_KEYFRAME_RATE * span, FIRST_LOOK_MIN_FRAMES)


def fingerprint_query(source: str, *, mode: str = "auto",
                      enough: Callable[[VideoFingerprint], bool] | None = None) -> VideoFingerprint:
    """Sparse fingerprint of a video to identify.

    ``mode``: "auto" (a glance for a long video, else keyframes when there are enough
    of them, else dense), "keyframes", "dense" (QUERY_FPS frames per second of a full
    decode), "glance" (SEEK_FIRST_POINTS seeks across the video) or "seek" (SEEK_POINTS
    seeks). Keyframes and the glance are fast first looks: when they do not confirm a
    match, the caller looks closer (see ``stages.identify.identify_source``). With
    ``enough``, a dense decode of a local file goes in rounds (FIRST_LOOK_MIN_FRAMES):
    the fingerprint of its first round is given to ``enough``, and returned (mode
    "dense-first") when that says it is enough.
    """
    remote = "://" in source
    keyframes: list[float] | None = None
    read: decode.ReadVideo | None = None
    if mode in ("auto", "keyframes", "dense") and not remote:
        # A local file: its keyframes are counted from the packets in the same opening
        # as the probe, so a file with too few of them is decoded once, not twice, and
        # those packets are what is decoded: in two halves at once where they allow it
        # (``decode.iter_frames``), a closer look after the keyframes included. (A remote
        # one is not: demuxing it would read all its bytes for the count alone.)
        info, keyframes, read = decode.probe_keyframes(
            source, QUERY_FPS, math.inf if mode == "keyframes" else SEEK_MIN_S, keep=True)
    else:
        info = decode.probe(source)
    try:
        return _query_frames(source, mode, info, keyframes, read, enough)
    finally:
        if read is not None:
            read.close()


def _query_frames(source: str, mode: str, info: decode.VideoInfo, keyframes: list[float] | None,
                  read: decode.ReadVideo | None, enough: Callable[[VideoFingerprint], bool] | None
                  ) -> VideoFingerprint:
    """``fingerprint_query`` once the video is probed (and maybe read: ``read``)."""
    remote = "://" in source
    if mode == "auto":
        long_after = REMOTE_SEEK_MIN_S if remote else SEEK_MIN_S
        mode = "glance" if info.duration_s > long_after else "keyframes"
    frames: list[decode.Frame] = []
    if mode in ("glance", "seek"):
        points = SEEK_FIRST_POINTS if mode == "glance" else SEEK_POINTS
        step = max(info.duration_s / points, SEEK_MIN_STEP_S)
        targets = [i * step for i in range(int(info.duration_s / step) + 1)]
        frames = list(decode.iter_seek_frames(source, targets))
    elif mode == "keyframes" and keyframes is not None and _too_few_keyframes(keyframes, info):
        mode = "dense"  # decoding its keyframes would find no more than its packets say
    elif mode == "keyframes":
        try:
            frames = list(decode.iter_frames(source, keyframes_only=True, sample_fps=QUERY_FPS, read=read))
        except MediaError:
            frames = []  # some streams flag no keyframes: decode them fully instead
        read = None  # decoded (and closed): a dense decode opens the file again
        if _too_few_keyframes([f.t for f in frames], info):
            mode = "dense"
    if mode == "dense" and read is not None and enough is not None and (
            info.duration_s * QUERY_FPS / 2 >= FIRST_LOOK_MIN_FRAMES):
        rounds = decode.decode_in_rounds(source, read, sample_fps=QUERY_FPS, fast=True)
        try:
            first = next(rounds)
            if len(first) >= FIRST_LOOK_MIN_FRAMES:
                fp = _sampled(first, info, "dense-first")
                if enough(fp):
                    return fp
            frames = next(rounds)
        finally:
            rounds.close()
    elif mode == "dense":
        frames = list(decode.iter_frames(source, sample_fps=QUERY_FPS, fast=True, read=read))
    return _sampled(frames, info, mode)


def _sampled(frames: list[decode.Frame], info: decode.VideoInfo, mode: str) -> VideoFingerprint:
    duration = info.duration_s or (frames[-1].t if frames else 0.0)
    info = decode.VideoInfo(duration, info.fps, info.width, info.height)
    fp = fingerprint_frames([f.t for f in frames], [f.gray for f in frames], info, len(frames))
    fp.mode = mode
    return fp
