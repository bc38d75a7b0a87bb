"""Temporal matching and the decision rule.

A copy of a film is not one similar frame: it is many query frames whose reference
frames lie on one line ``ref_t = speed * query_t + offset``. For each reference with
hits, we search the speed (a grid around 1.0, covering 24<->25 fps conversions) and
offset (a histogram) that put the most distinct query frames on one line, refine the
line by least squares on its inliers, and measure how much of the query it explains.

The decision is made on that evidence only:

* ``confirmed``: enough matched duration of distinctive frames, densely matched, on a
  consistent line, not shared with another title, and with *temporal evidence*: the
  pictures change along the line, in the copy and in the reference (see
  CONFIRM_MIN_CHANGES). Two still pictures agree at any offset, so a line through a
  still shot, a title or end card or a freeze frame proves nothing;
* ``review``: weaker but real evidence, for a human;
* nothing otherwise, and nothing for a line through reference material that is not
  distinctive (still stretches, frames shared with another title: ``index.FLAG_*``).

References that are allowed material (a trailer, a promo, a logo, public-domain footage:
``HashIndex.allowed``) are matched like the others and reported as ``allowed``; the
query frames they explain are then left out of every film's evidence, so a copy made
only of allowed material matches no film, and a copy of the film that also contains it
is matched on the rest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fingerprint.extract import (CROP_HYPOTHESES, PROBE_KINDS, STATIC_BITS, CropHashes, InnerPicture,
                                 VideoFingerprint)
from fingerprint.hashing import MIN_QUALITY, hamming
from fingerprint.index import FLAG_SHARED, FLAG_STATIC, HashIndex

# Two frames are "the same picture" within this Hamming distance (of 64 bits). pHash
# distances between a frame and its re-encoded, rescaled, colour-shifted copy sit at
# 0-10; unrelated natural frames at 20-40. 12 keeps the degraded copies in reach while
# chance hits stay rare enough for the temporal check to reject.
RADIUS = 12


# Alignment: candidate speeds (query seconds to reference seconds), offset histogram bin,
# and how far from the line an inlier may lie. The reference is sampled at least every
# 0.5 s, so a true pair is within ~0.5 s of the line.
SPEEDS = np.round(np.arange(0.95, 1.0501, 0.0025), 4)
SPEEDS_BY_PRIOR = SPEEDS[np.argsort(np.abs(SPEEDS - 1.0), kind="stable")]
OFFSET_BIN_S = 0.5
INLIER_TOL_S = 0.75
# Speed is fitted by least squares only on segments at least this long; shorter ones
# keep the grid speed (closest to 1.0 among the best).
SPEED_FIT_MIN_S = 8.0
# The speeds that copies play at, by how they are made: unchanged, 24 <-> 25 fps
# (PAL speed-up), 23.976 <-> 25 and 23.976 <-> 24 (NTSC pull-down). A fitted speed is
# only an estimate (0.5 s of jitter on a 20 s excerpt is 2.5 %): when one of these lies
# within SPEED_SNAP_SIGMAS standard errors of the fit (and at least SPEED_SNAP_MIN_DELTA),
# it is taken (the first in this order, most common first) and the offset recomputed
# under it. Other speeds stay as fitted.
NOMINAL_SPEEDS = (1.0, 24 / 25, 25 / 24, 24000 / 1001 / 25, 25 / (24000 / 1001), 1000 / 1001, 1001 / 1000)
SPEED_SNAP_SIGMAS = 2.0
SPEED_SNAP_MIN_DELTA = 0.002
# Offset uncertainty: the offsets (around the chosen one, at the chosen speed) at which
# at least UNCERTAIN_SHARE of the segment's query frames still find a hash about as near
# (within UNCERTAIN_SLACK_BITS of their nearest) on the line. A still shot matches
# itself at any offset inside it; the matcher says so rather than pretend to a precision
# the pictures do not give. Searched up to UNCERTAIN_MAX_S either side.
UNCERTAIN_SHARE = 0.9
UNCERTAIN_SLACK_BITS = 2
UNCERTAIN_MAX_S = 120.0
UNCERTAIN_STEP_S = 0.25
# Segments: at most MAX_SEGMENTS per reference, each of at least SEGMENT_MIN_FRAMES
# matched query frames, with no gap longer than SEGMENT_MAX_GAP_S inside.
MAX_SEGMENTS = 24
SEGMENT_MIN_FRAMES = 3
SEGMENT_MAX_GAP_S = 12.0
# A segment whose reference span lies at least this much inside the spans of stronger
# segments replays reference moments already played, and is no evidence (``_one_to_one``).
# Half: two stretches of a re-edit that meet (one ends where the next begins) share a
# sampling step at most, while a stretch that comes back to the pictures of another
# lies wholly inside its span. Found by a stress copy the bench does not make: a
# street scene at 35 % over a looping backdrop, whose backdrop's three recurring
# pictures each passed for one picture of an unrelated catalogue film, in seven
# segments on three reference moments: confirmed at score 0.66 on 16 s "matched".
REPLAY_SHARE = 0.5

# Crop search: probe frames tried under every crop hypothesis, and how many of them
# must hit for a hypothesis to be used.
CROP_PROBE_FRAMES = 16
CROP_PROBE_MIN_FRAMES = 3
# The probe frames are tried in two halves (every other one first). A look (a crop
# hypothesis, an inner picture) that hits fewer than CROP_PROBE_HALF_MIN of the first
# half goes no further: a copy that the look would confirm (half its frames matched,
# CONFIRM_MIN_SCORE) hits about half of them, where a video that is no copy of anything
# catalogued (most of what a crawl finds) hits none or one by chance.
CROP_PROBE_HALF_MIN = 2
# Inner pictures: a probe frame counts for a proposal when its hits lie on one line of
# one reference (``on_one_line``): one offset within PROBE_LINE_WINDOW_S (a true pair is
# within about 0.5 s of its line: the reference's sampling, INLIER_TOL_S), at one of the
# speeds copies play at most (unchanged, and 24 <-> 25 fps, which drifts 0.04 s a second:
# 2.4 s over a minute, 5 minutes over a two-hour film).
PROBE_LINE_WINDOW_S = 2.0
PROBE_SPEEDS = (1.0, 24 / 25, 25 / 24)
# A crop hypothesis recognised on at least this share of the probe frames (the share of
# a copy's frames a confirmed line matches, CONFIRM_MIN_SCORE) says the film fills the
# frame: it is matched with that crop before any inner picture is looked for, and the
# inner picture search (as costly as the crop search) is skipped when that confirms.
# On the bench, cropped copies hit 14 to 16 of 16, picture-in-picture copies at most 6.
CROP_FILLS_FRAME = 0.5

# Decision thresholds.
CONFIRM_MIN_MATCHED_S = 8.0   # seconds of the query explained by the line
CONFIRM_MIN_FRAMES = 10.0     # distinctive matched frames (ambiguity-weighted)
CONFIRM_MIN_SCORE = 0.5       # share of usable query frames in the span that match
CONFIRM_MIN_REF_SPAN_S = 4.0  # the reference positions must move (not one still image)
REVIEW_MIN_MATCHED_S = 2.0
REVIEW_MIN_FRAMES = 3.0
REVIEW_MIN_SCORE = 0.25

# Temporal evidence. The matched frames of a line are grouped into distinct pictures:
# a frame starts a new picture when its hash is more than CHANGE_BITS from every
# picture already seen on the line. The line confirms only when it holds at least
# CONFIRM_MIN_CHANGES distinct pictures on both sides, the copy's and the reference's
# (shot changes or motion, lined up in time); fewer, and it is at most ``review``.
# CHANGE_BITS is above the jitter of a still picture in a degraded copy (noise,
# camcorder, low bit rate: see tests/test_matching.py) and under what a second of
# motion or a cut moves a hash; CONFIRM_MIN_CHANGES = 3 is two changes lined up.
CHANGE_BITS = 10
CONFIRM_MIN_CHANGES = 3
# The reference's side is read on its whole-picture hashes, those its still stretches
# were marked on (``extract.static_flags``): a core hash of a pale, low-contrast picture
# (sky through leaves) flips 30 bits between frames that look the same, and two such
# flips lined up with the copy's by chance made a still shot of the corpus's tree.avi
# "change" three times (a picture-in-picture copy of it confirmed in the bench). Every
# frame of one still stretch is within STATIC_BITS of its first, so two of them are
# within twice that of each other: one picture, however it is sampled.
STILL_CHANGE_BITS = max(CHANGE_BITS, 2 * STATIC_BITS)
# One picture on either side is no evidence of a copy at all (a still held in the copy
# hits one reference frame, a plain card agrees with a film's card): not even review.
REVIEW_MIN_CHANGES = 2
# Reference frames within SHARED_BITS of a frame of another title are shared material
# (a producer's logo, a licence card): near-identical renditions of one picture.
SHARED_BITS = 8


@dataclass
class MatchResult:
    ref_id: int
    title_id: int
    decision: str
    score: float
    matched_s: float
    offset_s: float
    speed: float
    cand_start_s: float
    cand_end_s: float
    ref_start_s: float
    ref_end_s: float
    frames: int
    weight: float
    mean_distance: float
    segments: int = 1
    # How far the true offset may lie from ``offset_s``, as far as the pictures tell.
    offset_uncertainty_s: float = 0.0
    # Distinct pictures along the matched lines, min over the copy and the reference
    # (see CONFIRM_MIN_CHANGES).
    changes: int = 0
    # The query stretches of every matched line (start, end), seconds.
    spans: list[tuple[float, float]] = field(default_factory=list, repr=False)
    pairs: list[tuple[float, float, int]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, float | int | str]:
        return {
            "title_id": self.title_id,
            "decision": self.decision,
            "score": round(self.score, 4),
            "matched_s": round(self.matched_s, 2),
            "offset_s": round(self.offset_s, 2),
            "speed": round(self.speed, 4),
            "cand_start_s": round(self.cand_start_s, 2),
            "cand_end_s": round(self.cand_end_s, 2),
            "ref_start_s": round(self.ref_start_s, 2),
            "ref_end_s": round(self.ref_end_s, 2),
        }


def _best_line(
    qt: NDArray[np.float64], rt: NDArray[np.float64], w: NDArray[np.float64], qi: NDArray[np.int64]
) -> tuple[float, float, float]:
    """(votes, speed, offset) of the line collecting the most weight of distinct query
    frames. Among speeds with equal votes the one closest to 1.0 wins: a short segment
    cannot tell speeds apart, and most copies play at the original speed.

    Every speed at once: the offsets are binned (OFFSET_BIN_S) under each speed, and a
    query frame gives each bin one vote, the weight of its best pair there. With the
    pairs ordered by query frame, then reference time, a frame's pairs in one bin are
    consecutive under every speed (the offset grows with the reference time), so the
    best pairs are found without sorting per speed."""
    if len(qt) == 0:
        return (-1.0, 1.0, 0.0)
    n, speeds = len(qt), SPEEDS_BY_PRIOR
    order = np.lexsort((rt, qi))
    frame, weight = qi[order], w[order]
    bins = np.floor((rt[order][None, :] - speeds[:, None] * qt[order][None, :]) / OFFSET_BIN_S).astype(np.int64)
    first = np.ones(bins.shape, dtype=bool)  # the first pair of a (frame, bin) run, per speed
    first[:, 1:] = (frame[1:] != frame[:-1])[None, :] | (bins[:, 1:] != bins[:, :-1])
    starts = np.flatnonzero(first)
    best_w = np.maximum.reduceat(np.tile(weight, len(speeds)), starts)
    lo = int(bins.min())
    width = int(bins.max()) - lo + 1
    cell = (starts // n) * width + bins.ravel()[starts] - lo  # (speed, bin)
    size = len(speeds) * width
    votes = np.bincount(cell, weights=best_w, minlength=size).reshape(len(speeds), width)
    # Bins no pair falls in are never chosen, even when every vote is 0.
    votes[np.bincount(cell, minlength=size).reshape(len(speeds), width) == 0] = -1.0
    top = votes.argmax(axis=1)  # per speed, the lowest of its best bins
    best = (-1.0, 1.0, 0.0)
    for i, s in enumerate(speeds):
        if votes[i, top[i]] > best[0] + 1e-9:
            best = (float(votes[i, top[i]]), float(s), float((top[i] + lo + 0.5) * OFFSET_BIN_S))
    return best


def _inliers(qt, rt, d, qi, speed, offset):  # type: ignore[no-untyped-def]
    resid = np.abs(rt - (speed * qt + offset))
    ok = resid <= INLIER_TOL_S
    if not ok.any():
        return np.zeros(0, np.int64)
    idx = np.nonzero(ok)[0]
    # One pair per query frame: the nearest hash, then the closest to the line. (Closest
    # to the line first would bias a refit towards the first guess of the speed.)
    order = np.lexsort((resid[idx], d[idx], qi[idx]))
    idx = idx[order]
    _, first = np.unique(qi[idx], return_index=True)
    return idx[first]


@dataclass
class Segment:
    """One stretch of the query that plays one stretch of the reference."""

    speed: float
    offset: float
    rows: NDArray[np.int64]  # inlier pair rows
    start: float
    end: float
    matched_s: float


def snap_speed(qt: NDArray[np.float64], rt: NDArray[np.float64], fitted: float) -> float:
    """The nominal speed (NOMINAL_SPEEDS) the pairs cannot tell from ``fitted``, if any."""
    n = len(qt)
    spread = float(np.sum((qt - qt.mean()) ** 2))
    if n < 3 or spread <= 0:
        return fitted
    a, b = np.polyfit(qt, rt, 1)
    resid = rt - (a * qt + b)
    se = float(np.sqrt(np.sum(resid**2) / (n - 2) / spread))
    tol = max(SPEED_SNAP_SIGMAS * se, SPEED_SNAP_MIN_DELTA)
    # The first in NOMINAL_SPEEDS' order (most common first) the fit cannot rule out.
    return float(next((c for c in NOMINAL_SPEEDS if abs(c - fitted) <= tol), fitted))


def offset_uncertainty(qt: NDArray[np.float64], rt: NDArray[np.float64], d: NDArray[np.float64],
                       qi: NDArray[np.int64], frames: NDArray[np.int64], speed: float, offset: float) -> float:
    """How far from ``offset`` the line can move and still explain UNCERTAIN_SHARE of
    ``frames`` with hashes about as near as their nearest (see UNCERTAIN_SHARE)."""
    sel = np.isin(qi, frames)
    qt, rt, d, qi = qt[sel], rt[sel], d[sel], qi[sel]
    if len(qi) == 0:
        return 0.0
    # Each frame's near-best pairs, as offsets relative to the chosen one.
    best = np.full(int(qi.max()) + 1, np.inf)
    np.minimum.at(best, qi, d)
    near = d <= best[qi] + UNCERTAIN_SLACK_BITS
    rel = rt[near] - speed * qt[near] - offset
    frame = qi[near]
    keep = np.abs(rel) <= UNCERTAIN_MAX_S + INLIER_TOL_S
    rel, frame = rel[keep], frame[keep]
    n_grid = int(round(UNCERTAIN_MAX_S / UNCERTAIN_STEP_S))
    reach = int(np.floor(INLIER_TOL_S / UNCERTAIN_STEP_S))
    # Grid points each pair supports (within INLIER_TOL_S), one vote per frame and point.
    centre = np.rint(rel / UNCERTAIN_STEP_S).astype(np.int64)
    pts = (centre[:, None] + np.arange(-reach, reach + 1)[None, :]).ravel()
    who = np.repeat(frame, 2 * reach + 1)
    ok = np.abs(pts) <= n_grid
    key = np.unique((pts[ok] + n_grid) * (int(frame.max()) + 1) + who[ok])
    votes = np.bincount(key // (int(frame.max()) + 1), minlength=2 * n_grid + 1)
    need = UNCERTAIN_SHARE * max(int(votes[n_grid]), 1)
    lo = hi = n_grid
    while lo > 0 and votes[lo - 1] >= need:
        lo -= 1
    while hi < 2 * n_grid and votes[hi + 1] >= need:
        hi += 1
    return float(max(n_grid - lo, hi - n_grid) * UNCERTAIN_STEP_S)


def segments(
    qt: NDArray[np.float64],
    rt: NDArray[np.float64],
    d: NDArray[np.float64],
    qi: NDArray[np.int64],
    w: NDArray[np.float64],
    half: float,
    sample_step: float = 0.5,
) -> list[Segment]:
    """Lines ``rt = speed * qt + offset`` explaining the hit pairs, strongest first.

    A re-edit (a trailer, a cut version, a copy with the intro removed) plays several
    stretches of the film: each is found in turn, and its query frames are removed
    before looking for the next.
    """
    out: list[Segment] = []
    alive = np.ones(len(qt), dtype=bool)
    for _ in range(MAX_SEGMENTS):
        rows = np.nonzero(alive)[0]
        if len(np.unique(qi[rows])) < SEGMENT_MIN_FRAMES:
            break
        # Votes: ambiguity weight times hash similarity, so the line through the
        # closest hashes wins among lines of equal length.
        votes = w[rows] * (RADIUS + 1 - d[rows]) / (RADIUS + 1)
        _, speed, offset = _best_line(qt[rows], rt[rows], votes, qi[rows])
        inl = rows[_inliers(qt[rows], rt[rows], d[rows], qi[rows], speed, offset)]
        for _refit in range(2):
            if len(inl) < 3 or np.ptp(qt[inl]) < SPEED_FIT_MIN_S:
                break
            a, b = np.polyfit(qt[inl], rt[inl], 1)
            if not SPEEDS[0] <= a <= SPEEDS[-1]:
                break
            speed, offset = float(a), float(b)
            inl = rows[_inliers(qt[rows], rt[rows], d[rows], qi[rows], speed, offset)]
        if len(inl) < SEGMENT_MIN_FRAMES:
            break
        if np.ptp(qt[inl]) >= SPEED_FIT_MIN_S:
            snapped = snap_speed(qt[inl], rt[inl], speed)
            if snapped != speed:
                speed = snapped
                offset = float(np.median(rt[inl] - speed * qt[inl]))
                inl = rows[_inliers(qt[rows], rt[rows], d[rows], qi[rows], speed, offset)]
                if len(inl) < SEGMENT_MIN_FRAMES:
                    break
        offset = float(np.median(rt[inl] - speed * qt[inl]))
        # Keep the longest run of the line without a long gap: two separate stretches
        # on the same line by chance are not one segment.
        order = inl[np.argsort(qt[inl])]
        gaps = np.nonzero(np.diff(qt[order]) > max(SEGMENT_MAX_GAP_S, 3 * sample_step))[0]
        runs = np.split(order, gaps + 1)
        run = max(runs, key=len)
        alive &= ~np.isin(qi, qi[run])
        if len(run) < SEGMENT_MIN_FRAMES:
            continue
        start, end = float(qt[run].min()), float(qt[run].max())
        out.append(Segment(speed, offset, run, start, end, min(_covered(qt[run], half), end - start + 2 * half)))
    return _one_to_one(sorted(out, key=lambda s: -s.matched_s), rt, half)


def _one_to_one(segs: list[Segment], rt: NDArray[np.float64], half: float) -> list[Segment]:
    """The segments (strongest first) without those that replay reference moments a
    stronger one already plays.

    A copy plays each moment of the film once, however it was re-edited: its stretches
    play different stretches of the reference. Lines that come back to the same
    reference pictures from different parts of the video are the video's own pictures
    recurring (a looped backdrop, a cut back to one set), each of which happens to look
    like one reference picture: they prove nothing more than the first one did. A
    segment is left out when at least REPLAY_SHARE of its reference span (its
    reference times, ``half`` a sampling step either side) lies inside the spans of
    the segments kept before it."""
    kept: list[Segment] = []
    spans: list[tuple[float, float]] = []
    for sg in segs:
        lo, hi = float(rt[sg.rows].min()) - half, float(rt[sg.rows].max()) + half
        inside = _union_length([(max(lo, a), min(hi, b)) for a, b in spans if min(hi, b) > max(lo, a)])
        if inside >= REPLAY_SHARE * (hi - lo):
            continue
        kept.append(sg)
        spans.append((lo, hi))
    return kept


def _union_length(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of intervals."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _covered(times: NDArray[np.float64], half: float) -> float:
    if len(times) == 0:
        return 0.0
    t = np.sort(times)
    total = 0.0
    lo, hi = t[0] - half, t[0] + half
    for x in t[1:]:
        if x - half <= hi:
            hi = x + half
        else:
            total += hi - lo
            lo, hi = x - half, x + half
    return total + (hi - lo)


def distinct_pictures(hashes: NDArray[np.uint64], limit: int = CONFIRM_MIN_CHANGES,
                      still: NDArray[np.bool_] | None = None) -> int:
    """How many distinct pictures (more than CHANGE_BITS apart) ``hashes`` hold, in
    order, counted up to ``limit``. Frames marked ``still`` (a reference's still
    stretch) are a new picture only beyond STILL_CHANGE_BITS."""
    seen: list[np.uint64] = []
    for i, h in enumerate(hashes):
        bits = STILL_CHANGE_BITS if still is not None and still[i] else CHANGE_BITS
        if not seen or int(np.min(hamming(np.asarray(seen, np.uint64), h))) > bits:
            seen.append(h)
            if len(seen) >= limit:
                break
    return len(seen)


def decide(score: float, matched_s: float, weight: float, ref_span: float, changes: int = CONFIRM_MIN_CHANGES) -> str | None:
    """The decision for a line's evidence; ``changes`` is its distinct pictures, the
    lesser of the copy's and the reference's."""
    if changes < REVIEW_MIN_CHANGES:
        return None
    if (
        matched_s >= CONFIRM_MIN_MATCHED_S
        and weight >= CONFIRM_MIN_FRAMES
        and score >= CONFIRM_MIN_SCORE
        and ref_span >= CONFIRM_MIN_REF_SPAN_S
        and changes >= CONFIRM_MIN_CHANGES
    ):
        return "confirmed"
    if matched_s >= REVIEW_MIN_MATCHED_S and weight >= REVIEW_MIN_FRAMES and score >= REVIEW_MIN_SCORE:
        return "review"
    return None


def shared_frames(hashes: NDArray[np.uint64], title_id: int, index: HashIndex,
                  ref_titles: dict[int, int]) -> tuple[NDArray[np.bool_], dict[int, NDArray[np.float32]]]:
    """Frames of a new reference of ``title_id`` that another title's film references
    also hold (within SHARED_BITS): which of ``hashes`` are, and per other reference the
    times of its frames that are. Allowed material is neither side of it: a trailer
    shares its film's pictures on purpose."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    mask = np.zeros(len(hashes), dtype=bool)
    others: dict[int, NDArray[np.float32]] = {}
    if len(hashes) == 0 or len(index) == 0:
        return mask, others
    hits = index.query(hashes, SHARED_BITS, kinds=np.zeros(len(hashes), np.uint8))
    ref = index.ref_ids[hits.entry].astype(np.int64)
    other = np.array([int(r) not in index.allowed and ref_titles.get(int(r), title_id) != title_id for r in ref],
                     dtype=bool)
    mask[hits.query[other]] = True
    for r in np.unique(ref[other]):
        times = index.times[hits.entry[other][ref[other] == r]]
        others[int(r)] = np.unique(np.asarray(times, dtype=np.float32))
    return mask, others


Lookup = tuple[NDArray[np.uint64], int]  # hashes aligned with the query frames, kind


def match(
    query: VideoFingerprint,
    index: HashIndex,
    ref_titles: dict[int, int],
    *,
    radius: int = RADIUS,
    thorough: bool = True,
) -> list[MatchResult]:
    """Match a query fingerprint against the index; best result per title, best first.

    First pass: the whole picture (as is and mirrored) and its uncropped core. When that
    confirms nothing, the copy may have been cropped or shown inside another video: the
    crop hypothesis whose core hashes hit the most probe frames, and the hashes of an
    inner picture if one was found, are added and the match is run again. A crop
    recognised on most probe frames (CROP_FILLS_FRAME) is matched on its own first: when
    that confirms, no inner picture is looked for. ``thorough`` False stops after the
    first pass (a first look, to be followed by a closer one).
    """
    usable = np.nonzero(query.quality >= MIN_QUALITY)[0]
    if len(usable) == 0 or len(index) == 0:
        return []
    lookups: list[Lookup] = [(query.hashes, 0), *((v, 0) for v in query.variants.values())]
    crops = query.crops if query.crops is not None and len(query.crops) == len(query.times) else None
    if crops is not None:
        lookups += [(h, 1) for h in crops.hypothesis(0)]
    results = _match_lookups(query, usable, lookups, index, ref_titles, radius)
    if not thorough or any(m.decision == "confirmed" for m in results):
        return results
    extra: list[Lookup] = []
    filled = False  # a crop of the whole frame is recognised on most probe frames
    for hashes, known in ((crops, 0), (query.uncropped, None)):
        if hashes is None or len(hashes) != len(query.times):
            continue
        found = best_crop_hypothesis(hashes, usable, index, radius)
        if found is not None and found[0] != known:  # ``crops`` hypothesis 0 was in the first pass
            extra += [(h, 1) for h in hashes.hypothesis(found[0])]
            filled |= found[1] >= CROP_FILLS_FRAME
    cropped: list[MatchResult] | None = None
    if filled:
        # The film fills the frame (cropped): no inner picture to look for unless the
        # crop alone does not confirm.
        cropped = _match_lookups(query, usable, [*lookups, *extra], index, ref_titles, radius)
        if any(m.decision == "confirmed" for m in cropped):
            return _merged(results, cropped)
    inner = best_inner_picture(query, usable, index, radius)
    if inner is None:
        # Nothing to add to the crops: matched with them already, or matched now.
        if cropped is None and extra:
            cropped = _match_lookups(query, usable, [*lookups, *extra], index, ref_titles, radius)
        return results if cropped is None else _merged(results, cropped)
    extra += [(inner.hashes, 0), (inner.mirror, 0)]
    if len(inner.crops) == len(query.times):
        found = best_crop_hypothesis(inner.crops, usable, index, radius)
        if found is not None:
            extra += [(h, 1) for h in inner.crops.hypothesis(found[0])]
    more = _match_lookups(query, usable, [*lookups, *extra], index, ref_titles, radius)
    return _merged(results, more)


def _merged(results: list[MatchResult], more: list[MatchResult]) -> list[MatchResult]:
    """The first pass's results and a closer look's, the stronger per title (and per
    piece of allowed material)."""
    best: dict[int, MatchResult] = {}
    allowed: dict[int, MatchResult] = {}
    for m in [*results, *more]:
        if m.decision == "allowed":
            if m.ref_id not in allowed or m.weight > allowed[m.ref_id].weight:
                allowed[m.ref_id] = m
            continue
        cur = best.get(m.title_id)
        if cur is None or (m.decision == "confirmed", m.weight) > (cur.decision == "confirmed", cur.weight):
            best[m.title_id] = m
    return _resolve(list(best.values())) + sorted(allowed.values(), key=lambda m: -m.score)


def best_inner_picture(query: VideoFingerprint, usable: NDArray[np.int64], index: HashIndex,
                       radius: int) -> InnerPicture | None:
    """The proposed inner picture (picture-in-picture) whose hashes the index recognises
    on the most probe frames (at least CROP_PROBE_MIN_FRAMES, with one same reference):
    the whole inner picture, mirrored, and its core. None when no proposal is
    recognised. Every proposal is tried on half the probe frames at once, and only
    those that hit at least CROP_PROBE_HALF_MIN of them on the other half. The
    proposals where the pictures' borders are first, and only when none of them is
    recognised those where their motion changes (``VideoFingerprint.inner_by_motion``)."""
    for proposals in (lambda: query.inner, lambda: query.inner_by_motion):
        found = _best_proposal([c for c in proposals() if len(c) == len(query.times)], query, usable, index, radius)
        if found is not None:
            return found
    return None


def _best_proposal(cands: list[InnerPicture], query: VideoFingerprint, usable: NDArray[np.int64], index: HashIndex,
                   radius: int) -> InnerPicture | None:
    if not cands:
        return None
    probe = usable[np.linspace(0, len(usable) - 1, min(CROP_PROBE_FRAMES, len(usable))).astype(int)]
    found = np.zeros(len(cands), np.int64)
    alive = list(range(len(cands)))
    for half in (probe[0::2], probe[1::2]):
        if len(half) == 0 or not alive:
            continue
        looks = np.stack([cands[i].probe(half) for i in alive])  # (alive, PROBE_KINDS, frames)
        per = len(PROBE_KINDS) * len(half)
        kinds = np.tile(np.repeat(np.array(PROBE_KINDS, np.uint8), len(half)), len(alive))
        hits = index.query(looks.reshape(-1), radius, kinds=kinds)
        who, frame, ref = hits.query // per, hits.query % len(half), index.ref_ids[hits.entry].astype(np.int64)
        qt = query.times[half].astype(np.float64)[frame]
        rt = np.asarray(index.times[hits.entry], dtype=np.float64)
        for j, i in enumerate(alive):
            mine = who == j
            found[i] += on_one_line(frame[mine], ref[mine], qt[mine], rt[mine], len(half))
        alive = [i for i in alive if found[i] >= CROP_PROBE_HALF_MIN]
    best = int(found.argmax())
    return cands[best] if found[best] >= CROP_PROBE_MIN_FRAMES else None


def on_one_line(frame: NDArray[np.int64], ref: NDArray[np.int64], qt: NDArray[np.float64],
                rt: NDArray[np.float64], n_frames: int) -> int:
    """The most probe frames (``frame``, of ``n_frames``) whose hits (reference ``ref``
    at time ``rt``, from query time ``qt``) fall on one line of one reference: one
    offset (within PROBE_LINE_WINDOW_S) at one of PROBE_SPEEDS.

    Chance hits spread over many references and offsets. So do the hits of a region
    that is no film, however many there are: a blurred backdrop or a plain wall hashes
    like some frame of every soft or flat film, on every probe frame, but at times that
    follow no line. Counting frames per reference only, such a region tied with the
    film's own inset and could be chosen in its place."""
    if len(frame) == 0:
        return 0
    best = 0
    for speed in PROBE_SPEEDS:
        offset = rt - speed * qt
        for shift in (0.0, PROBE_LINE_WINDOW_S / 2):  # two grids: any window of half the width is inside a bin
            bins = np.floor((offset + shift) / PROBE_LINE_WINDOW_S).astype(np.int64)
            bins -= bins.min()
            cell = ref * (int(bins.max()) + 1) + bins
            keys = np.unique(cell * n_frames + frame)  # one (cell, frame) each
            best = max(best, int(np.unique(keys // n_frames, return_counts=True)[1].max()))
    return best


def best_crop_hypothesis(crops: CropHashes, usable: NDArray[np.int64], index: HashIndex,
                         radius: int) -> tuple[int, float] | None:
    """The crop hypothesis whose core hashes hit the index on the most probe frames,
    and the share of the probe frames it hits.

    In two halves, as for inner pictures: every hypothesis on every other probe frame
    first, and only those that hit CROP_PROBE_HALF_MIN of them on the other half. When
    none does, the copy is not a cropped copy of anything catalogued (most videos a
    crawl finds) and the second half is not looked at."""
    probe = usable[np.linspace(0, len(usable) - 1, min(CROP_PROBE_FRAMES, len(usable))).astype(int)]
    counts = np.zeros(len(CROP_HYPOTHESES), np.int64)
    alive = list(range(len(CROP_HYPOTHESES)))
    for half in (probe[0::2], probe[1::2]):
        if len(half) == 0 or not alive:
            continue
        cores = crops.probe(half, alive)  # (alive hypotheses, 2, frames)
        flat = cores.reshape(-1)
        hits = index.query(flat, radius, kinds=np.ones(len(flat), np.uint8))
        hyp = np.asarray(alive)[hits.query // (2 * len(half))]
        frame = hits.query % len(half)
        # Distinct frames per hypothesis: one (hypothesis, frame) key per hit, counted once.
        counts += np.bincount(np.unique(hyp * len(half) + frame) // len(half), minlength=len(counts))
        alive = [k for k in alive if counts[k] >= CROP_PROBE_HALF_MIN]
    k = int(counts.argmax())
    return (k, counts[k] / len(probe)) if counts[k] >= CROP_PROBE_MIN_FRAMES else None


def _match_lookups(
    query: VideoFingerprint,
    usable: NDArray[np.int64],
    lookups: list[Lookup],
    index: HashIndex,
    ref_titles: dict[int, int],
    radius: int,
) -> list[MatchResult]:
    """Match, then leave out of the films' evidence what allowed material explains.

    A frame is explained by allowed material when the allowed line through it is at
    least as long as any film's line through it. A copy of a trailer plays the trailer
    along one line and the film in short pieces (each trailer shot is elsewhere in the
    film): explained. A copy of the film plays the film along one line, and a trailer's
    shots in it are short pieces of the trailer: not explained, the film is matched on
    everything. Near-still footage, which a trailer's stretches match at many offsets
    in short pieces, stays the film's too."""
    results = _match_refs(query, usable, lookups, index, ref_titles, radius)
    allowed = [m for m in results if m.decision == "allowed"]
    films = [m for m in results if m.decision != "allowed"]
    if not allowed:
        return results
    times = query.times[usable].astype(np.float64)
    explained = _longest_line(times, allowed) >= np.maximum(_longest_line(times, films), 1e-9)
    if not explained.any():
        return results
    rest = usable[~explained]
    films = _match_refs(query, rest, lookups, index, ref_titles, radius, skip=index.allowed) if len(rest) else []
    return _resolve(films) + sorted(allowed, key=lambda m: -m.score)


def _longest_line(times: NDArray[np.float64], results: list[MatchResult]) -> NDArray[np.float64]:
    """Per query frame, the length (s) of the longest matched line of ``results`` that
    runs through it (0 where none does)."""
    longest = np.zeros(len(times))
    for m in results:
        for start, end in m.spans:
            inside = (times >= start - 1e-6) & (times <= end + 1e-6)
            longest[inside] = np.maximum(longest[inside], end - start)
    return longest


def _match_refs(
    query: VideoFingerprint,
    usable: NDArray[np.int64],
    lookups: list[Lookup],
    index: HashIndex,
    ref_titles: dict[int, int],
    radius: int,
    skip: frozenset[int] = frozenset(),
) -> list[MatchResult]:
    qtimes = query.times.astype(np.float64)
    # Every hash of a usable frame (the picture as is, mirrored, its core, ...) is looked
    # up among entries of its kind; a hit by any of them is a hit of that frame.
    q_all = np.concatenate([h[usable] for h, _ in lookups])
    kinds = np.concatenate([np.full(len(usable), k, np.uint8) for _, k in lookups])
    frame_of = np.tile(usable, len(lookups))
    hits = index.query(q_all, radius, kinds=kinds)
    if len(hits) == 0:
        return []
    ref = index.ref_ids[hits.entry]
    if skip:
        keep = ~np.isin(ref, np.fromiter(skip, np.int64))
        hits = type(hits)(hits.query[keep], hits.entry[keep], hits.distance[keep])
        ref = ref[keep]
        if len(hits) == 0:
            return []
    qi = frame_of[hits.query]
    lookup_of = hits.query // len(usable)
    q_hash = q_all[hits.query]
    ent = hits.entry
    dist = hits.distance.astype(np.float64)
    allowed = index.allowed
    title = np.array([ref_titles.get(int(r), -1) for r in ref], dtype=np.int64)

    # Distinctiveness: a query frame that hits several titles is shared content (a
    # studio logo, credits on black) and counts 1/k towards each. Allowed material is
    # not a title: what it explains is taken out separately.
    titles_per_frame: dict[int, set[int]] = defaultdict(set)
    for f, t, r in zip(qi.tolist(), title.tolist(), ref.tolist()):
        if r not in allowed:
            titles_per_frame[f].add(t)
    weight = np.array([1.0 / max(len(titles_per_frame[f]), 1) for f in qi.tolist()])
    # Reference frames shared with another title count for nothing.
    flags = np.asarray(index.flags[ent], dtype=np.uint8)
    weight[(flags & FLAG_SHARED) != 0] = 0.0

    step = float(np.median(np.diff(qtimes[usable]))) if len(usable) > 1 else 1.0
    half = min(max(step / 2, 0.05), SEGMENT_MAX_GAP_S / 2)

    results: list[MatchResult] = []
    usable_t = qtimes[usable]
    for r in np.unique(ref):
        is_allowed = int(r) in allowed
        sel = np.nonzero(ref == r)[0]
        qt, rt = qtimes[qi[sel]], index.times[ent[sel]].astype(np.float64)
        segs = segments(qt, rt, dist[sel], qi[sel], weight[sel], half, step)
        if not segs:
            continue
        rows = np.concatenate([sg.rows for sg in segs])
        start = min(sg.start for sg in segs)
        end = max(sg.end for sg in segs)
        in_span = np.count_nonzero((usable_t >= start - 1e-6) & (usable_t <= end + 1e-6))
        mean_d = float(dist[sel][rows].mean())
        score = min(1.0, len(rows) / max(in_span, 1)) * (1.0 - mean_d / 64.0)
        matched = float(sum(sg.matched_s for sg in segs))
        w = float(weight[sel][rows].sum())
        ref_span = float(sum(np.ptp(rt[sg.rows]) for sg in segs))
        if is_allowed:
            decision = "allowed" if decide(score, matched, w, ref_span) is not None else None
            changes = 0
        else:
            fl = flags[sel][rows]
            distinctive = (fl & FLAG_SHARED) == 0
            # A line only through still stretches (or shared frames) of the reference
            # counts for nothing on its own: it agrees with any still at any offset.
            if not np.any(distinctive & ((fl & FLAG_STATIC) == 0)):
                continue
            changes = _changes(qt[rows], q_hash[sel][rows], lookup_of[sel][rows],
                               index.hashes[index.whole_entries(ent[sel][rows])], distinctive,
                               (fl & FLAG_STATIC) != 0)
            decision = decide(score, matched, w, ref_span, changes)
        if decision is None:
            continue
        top = segs[0]
        results.append(
            MatchResult(
                ref_id=int(r),
                title_id=ref_titles.get(int(r), -1),
                decision=decision,
                score=float(score),
                matched_s=matched,
                offset_s=top.offset,
                speed=top.speed,
                cand_start_s=top.start,
                cand_end_s=top.end,
                ref_start_s=top.speed * top.start + top.offset,
                ref_end_s=top.speed * top.end + top.offset,
                frames=len(rows),
                weight=w,
                mean_distance=mean_d,
                segments=len(segs),
                # Only the reported (top) segment's: the one the offset is read from.
                offset_uncertainty_s=offset_uncertainty(qt, rt, dist[sel], qi[sel], qi[sel][top.rows],
                                                        top.speed, top.offset),
                changes=changes,
                spans=[(sg.start, sg.end) for sg in segs],
                pairs=[(float(a), float(b), int(c)) for a, b, c in zip(qt[rows], rt[rows], dist[sel][rows])],
            )
        )
    return _resolve([m for m in results if m.decision != "allowed"]) + [m for m in results if m.decision == "allowed"]


def _changes(qt: NDArray[np.float64], q_hash: NDArray[np.uint64], lookup: NDArray[np.int64],
             r_whole: NDArray[np.uint64], distinctive: NDArray[np.bool_], still: NDArray[np.bool_]) -> int:
    """Distinct pictures along a line, the lesser of the copy's and the reference's.

    Only distinctive reference frames count, read on their whole-picture hashes
    ``r_whole`` (``still``: in a still stretch; see STILL_CHANGE_BITS). On the copy's
    side the hashes of one kind of look-up are compared (a frame's whole picture and
    its core are not comparable): the look-up that found the most of the line's frames."""
    order = np.argsort(qt[distinctive], kind="stable")
    ref_side = distinct_pictures(r_whole[distinctive][order], still=still[distinctive][order])
    if ref_side == 0:
        return 0
    main = np.bincount(lookup[distinctive]).argmax()
    mine = distinctive & (lookup == main)
    q_side = distinct_pictures(q_hash[mine][np.argsort(qt[mine], kind="stable")])
    return min(ref_side, q_side)


def _resolve(results: list[MatchResult]) -> list[MatchResult]:
    """Best reference per title; a confirmation shared with another title is demoted."""
    best: dict[int, MatchResult] = {}
    for m in results:
        cur = best.get(m.title_id)
        if cur is None or (m.decision == "confirmed", m.weight) > (cur.decision == "confirmed", cur.weight):
            best[m.title_id] = m
    out = sorted(best.values(), key=lambda m: (m.decision != "confirmed", -m.weight))
    for m in out:
        if m.decision != "confirmed":
            continue
        for o in out:
            if o is m or o.weight < 0.5 * m.weight:
                continue
            overlap = min(m.cand_end_s, o.cand_end_s) - max(m.cand_start_s, o.cand_start_s)
            if overlap > 0.5 * min(m.cand_end_s - m.cand_start_s, o.cand_end_s - o.cand_start_s):
                m.decision = "review"
    return sorted(out, key=lambda m: (m.decision != "confirmed", -m.score))
