"""Frame preprocessing before hashing: find the picture inside the frame.

Pirated copies add black bars (letterbox, pillarbox) or re-frame the picture; the
hash must see the same picture as the reference's. The content box is decided once
per video from statistics over many frames (a dark scene must not move it), then
every frame is cropped to it. Pure functions over NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

# A row or column is a bar when most of its pixels are dark (median under BAR_LEVEL
# grey levels) in the video's median frame, and still over time (median temporal
# spread under BAR_SPREAD). Black bars after lossy coding sit at 0-20 and never move;
# a watermark or burned-in subtitle in a bar covers a minority of the row's pixels,
# which the medians ignore. A dark scene inside the picture moves, so it is kept.
BAR_LEVEL = 28.0
BAR_SPREAD = 8.0
# Blurred bars (the film itself, blown up and blurred behind the picture) are neither
# dark nor still, but they carry almost no detail: a row or column at the edge whose
# median detail (mean gradient) is under BLUR_DETAIL_SHARE of the picture centre's is a
# bar too. Real pictures are never that flat at an edge in most frames of a video.
BLUR_DETAIL_SHARE = 0.2
# Never crop more than this share of a dimension: beyond it the "bars" are really a
# dark picture. A film re-posted as a vertical video (9:16, the format of short-video
# platforms) fills the frame's width and a third of its height at 16:9 (a quarter at
# 2.39:1), between bars of three eighths each: 0.6 left every such copy uncropped, its
# film a band across a black frame that no hash of the whole frame recognises.
MAX_BAR_SHARE = 0.8
# Frames kept for the statistics (evenly thinned beyond that).
MAX_STAT_FRAMES = 240


@dataclass(frozen=True)
class Box:
    """A crop box in analysis-frame pixels: rows y0:y1, columns x0:x1."""

    y0: int
    y1: int
    x0: int
    x1: int

    def crop(self, gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return gray[self.y0 : self.y1, self.x0 : self.x1]

    def bounds(self, h: int, w: int) -> tuple[int, int, int, int]:
        """Row and column bounds (r0, r1, c0, c1) of what ``crop`` keeps of an h x w
        picture, as plain indices (a negative or FULL box resolved)."""
        r0, r1, _ = slice(self.y0, self.y1).indices(h)
        c0, c1, _ = slice(self.x0, self.x1).indices(w)
        return r0, max(r0, r1), c0, max(c0, c1)

    @property
    def is_full(self) -> bool:
        return self.y0 == 0 and self.x0 == 0 and self.y1 < 0

    def near(self, other: Box, px: int = 4) -> bool:
        """Whether the two boxes' sides are within ``px`` pixels in all (one adds
        nothing to the other as a proposal)."""
        return (abs(self.y0 - other.y0) + abs(self.y1 - other.y1) + abs(self.x0 - other.x0)
                + abs(self.x1 - other.x1)) <= px


FULL = Box(0, -1, 0, -1)


class BarStats:
    """Collects frames of one video to find its bars."""

    def __init__(self) -> None:
        self.frames: list[NDArray[np.uint8]] = []
        self.shape: tuple[int, int] | None = None
        self.seen = 0

    def add(self, gray: NDArray[np.uint8]) -> None:
        if self.shape is None:
            self.shape = gray.shape  # type: ignore[assignment]
        elif gray.shape != self.shape:
            return
        self.seen += 1
        self.frames.append(gray)
        if len(self.frames) >= 2 * MAX_STAT_FRAMES:
            self.frames = self.frames[::2]

    def box(self, max_frames: int = 2 * MAX_STAT_FRAMES) -> Box:
        """The content box; statistics over at most ``max_frames`` frames (evenly
        thinned): a sparse query's few dozen frames need no more than two dozen."""
        if self.shape is None or not self.frames:
            return FULL
        frames = self.frames[:: -(-len(self.frames) // max_frames)]
        return BarMaps(frames).box()


class BarMaps:
    """Per-pixel statistics of same-sized frames over time, from which bars are found:
    the median level, the spread, and the median detail (gradient). The bars of the
    frames cropped to any region are found from these maps cropped, with the same
    result as from the cropped frames (``box(region)``): a video's inner-picture
    proposals are each looked at for bars of their own without going over the frames
    again."""

    def __init__(self, frames: list[NDArray[np.uint8]]) -> None:
        grey = np.stack(frames)
        self.level = temporal_median(grey)
        self.spread = grey.astype(np.float32).std(axis=0)
        signed = grey.astype(np.int16)
        dx = np.abs(np.diff(signed, axis=2))  # (n, h, w - 1): between column c and c + 1
        dy = np.abs(np.diff(signed, axis=1))  # (n, h - 1, w)
        grad = np.zeros_like(signed)
        grad[:, :, 1:] = dx
        grad[:, 1:, :] += dy
        self.detail = temporal_median(grad)
        # A cropped frame's first column has no left neighbour and its first row none
        # above: there the gradient is the other direction's alone.
        self._dx, self._dy = dx, dy
        self._detail_dx: NDArray[np.float32] | None = None
        self._detail_dy: NDArray[np.float32] | None = None

    def box(self, region: Box | None = None) -> Box:
        """The content box of the frames, or of the frames cropped to ``region`` (in the
        region's coordinates)."""
        if region is None:
            level, spread, detail = self.level, self.spread, self.detail
        else:
            r0, r1, c0, c1 = region.bounds(*self.level.shape)
            if r1 == r0 or c1 == c0:
                return FULL
            level, spread = self.level[r0:r1, c0:c1], self.spread[r0:r1, c0:c1]
            detail = self.detail[r0:r1, c0:c1].copy()
            if self._detail_dx is None or self._detail_dy is None:
                self._detail_dx, self._detail_dy = temporal_median(self._dx), temporal_median(self._dy)
            if c0 > 0:
                detail[1:, 0] = self._detail_dy[r0 : r1 - 1, c0]
            if r0 > 0:
                detail[0, 1:] = self._detail_dx[r0, c0 : c1 - 1]
            detail[0, 0] = 0.0  # neither neighbour
        h, w = level.shape
        y0, y1 = _span(np.median(level, axis=1), np.median(spread, axis=1), detail.mean(axis=1))
        x0, x1 = _span(np.median(level, axis=0), np.median(spread, axis=0), detail.mean(axis=0))
        if y0 == 0 and y1 == h and x0 == 0 and x1 == w:
            return FULL
        return Box(y0, y1, x0, x1)


def _merge_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort for ``n`` (a power of two) inputs: the (lower,
    upper) pairs to compare-exchange, in order."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


# Frames up to which ``temporal_median`` sorts with a network (a query's statistics
# take a few dozen frames); past it, NumPy's median.
MEDIAN_NETWORK_MAX = 64
MedianNetwork = tuple[list[tuple[int, int, int, int]], tuple[int, ...]]
_NETWORKS: dict[int, MedianNetwork] = {}


def _median_network(n: int) -> MedianNetwork:
    """For ``n`` frames, Batcher's sorting network for the next power of two as steps
    (in a, in b, out min, out max) over numbered values (the frames are 0 to n - 1),
    only those the middle depends on, and the value(s) that are the middle.

    The network's other inputs are padding, as many lowest as highest values, so its
    middle is the frames' middle. Padding is never materialised: a compare-exchange
    with a padding lane either leaves both lanes as they are or swaps them, which is
    done by renaming lanes. Compare-exchanges that cannot reach the middle are dropped
    (for 20 frames, 83 of 191 are left)."""
    size = 1 << max(n - 1, 1).bit_length()
    pad = size - n
    low, high = -1, -2
    # What each lane holds: a padding value, or a variable (its index in ``values``).
    lanes = [low] * (pad // 2) + list(range(n)) + [high] * (pad - pad // 2)
    slots = n  # variables: the frames, then each compare-exchange's two results
    ops: list[tuple[int, int, int, int]] = []  # (in a, in b, out min, out max)
    for a, b in _merge_network(size):
        x, y = lanes[a], lanes[b]
        if x == low or y == high or (x == high and y == high) or (x == low and y == low):
            continue  # already in order
        if y == low or x == high:
            lanes[a], lanes[b] = y, x
            continue
        ops.append((x, y, slots, slots + 1))
        lanes[a], lanes[b] = slots, slots + 1
        slots += 2
    middle = (lanes[size // 2 - 1],) if n % 2 else (lanes[size // 2 - 1], lanes[size // 2])
    live, kept = set(middle), []
    for x, y, lo, hi in reversed(ops):
        if lo in live or hi in live:
            live |= {x, y}
            kept.append((x, y, lo, hi))
    kept.reverse()
    return kept, middle


def temporal_median(stack: NDArray[np.integer]) -> NDArray[np.float32]:
    """Per-pixel median over the frames (axis 0) of an integer stack, as float32: the
    same values as ``np.median(stack.astype(np.float32), axis=0)``, ten times faster
    for a few dozen frames. NumPy's median runs a selection per pixel; here a sorting
    network runs over whole frames at once (vectorised minimum and maximum), reduced to
    the compare-exchanges the middle depends on (``_median_network``)."""
    n = stack.shape[0]
    if n == 0 or n > MEDIAN_NETWORK_MAX or not np.issubdtype(stack.dtype, np.integer):
        return np.median(stack.astype(np.float32), axis=0)
    if n not in _NETWORKS:
        _NETWORKS[n] = _median_network(n)
    ops, middle = _NETWORKS[n]
    values: dict[int, NDArray[np.integer]] = dict(enumerate(stack))
    for x, y, lo, hi in ops:  # each value is an input once: let it go
        a, b = values.pop(x), values.pop(y)
        values[lo], values[hi] = np.minimum(a, b), np.maximum(a, b)
    if len(middle) == 1:
        return values[middle[0]].astype(np.float32)
    return (values[middle[0]].astype(np.float32) + values[middle[1]].astype(np.float32)) / np.float32(2)


def _span(means: NDArray[np.floating], spreads: NDArray[np.floating], detail: NDArray[np.floating]) -> tuple[int, int]:
    n = len(means)
    centre = float(np.median(detail[n // 4 : n - n // 4])) if n >= 4 else float(np.median(detail))
    flat = detail < BLUR_DETAIL_SHARE * centre if centre > 1.0 else np.zeros(n, dtype=bool)
    bar = ((means < BAR_LEVEL) & (spreads < BAR_SPREAD)) | flat
    lo = 0
    while lo < n and bar[lo]:
        lo += 1
    hi = n
    while hi > lo and bar[hi - 1]:
        hi -= 1
    if hi - lo < n * (1 - MAX_BAR_SHARE):
        return 0, n
    # Lossy coding smears the bar edge over a pixel or two: step inside it.
    margin = 1 if (lo > 0 or hi < n) else 0
    lo = lo + margin if lo > 0 else 0
    hi = hi - margin if hi < n else n
    return lo, hi


def detect_box(frames: list[NDArray[np.uint8]]) -> Box:
    stats = BarStats()
    for f in frames:
        stats.add(f)
    return stats.box()


# Picture-in-picture: the film shown smaller inside another video (a corner or centred
# inset over another moving video, a reaction layout beside a person, a player or
# browser window around it). Wherever it is, its border is a straight edge that stays
# put while the pictures on both sides change independently: in the per-pixel median
# (over time) of the gradient it is a line as long as the side, where the inside of a
# moving picture is smooth. Proposals are rectangles whose sides (three at least, or
# two when it fills a corner of the frame) are such lines along their whole length
# (their PIP_SIDE_QUANTILE quantile is PIP_EDGE_RATIO times the frame's typical edge
# strength); the matcher then keeps the proposal whose hashes the index recognises.
PIP_EDGE_RATIO = 3.0
PIP_SIDE_QUANTILE = 0.35
PIP_EDGE_GAP = 8
# The film is at least PIP_MIN_SHARE of the frame's width (the 30 %, with
# margin) and PIP_MIN_HEIGHT_SHARE of its height (a 2.39:1 film at 30 % of a 4:3 frame),
# and looks like a film: width / height within PIP_ASPECT (analysis pixels are square).
PIP_MIN_SHARE = 0.25
PIP_MIN_HEIGHT_SHARE = 0.12
PIP_ASPECT = (0.9, 2.8)
# Lines tried per axis and rectangles returned, strongest first.
PIP_LINES = 8
PIP_CANDIDATES = 6
# Two parallel edges frame a picture when they overlap over this share of the longer;
# one edge is a whole side of the frame's picture when it spans this share of the frame.
PIP_PAIR_OVERLAP = 0.8
PIP_FULL_EDGE = 0.95
# Frames the edge statistics are taken over (evenly thinned beyond that).
PIP_STAT_FRAMES = 24
# A proposal that takes a side from the frame's own edge (a picture near a corner, its
# other sides too broken by a busy backdrop to count as lines) may be the picture plus a
# margin of backdrop, which spoils its hashes. Within the outer PIP_TIGHTEN_SHARE of the
# proposal, the line along that side whose mean edge strength over the proposal's span
# is PIP_TIGHTEN_RATIO times the median line's (and above the frame's typical edge) is
# the picture's border seen in part: the box up to it is proposed too, ahead of it. In a
# stress copy (a 30 % inset without border over city footage at night) the right border
# stood at 5 times the median line and the bottom one at 2.5, where the lines of the
# inset's own picture reached 2. Over 70 such copies (30, 35 and 45 %, every position, corpus
# backdrops) this took the confirmed ones from 64 to 66, none lost; the bench's queries
# gave the same decisions.
PIP_TIGHTEN_SHARE = 0.25
PIP_TIGHTEN_RATIO = 2.5


def _longest_runs(strong: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per column of ``strong``: the length of the longest run of True down the rows,
    and the row where it ends (exclusive; the first such run when several are longest)."""
    rows = np.arange(strong.shape[0])[:, None]
    # At each row, the run so far: rows since the last False at or above it.
    last_false = np.maximum.accumulate(np.where(strong, -1, rows), axis=0)
    run = rows - last_false
    end = run.argmax(axis=0)
    best = run[end, np.arange(strong.shape[1])]
    return best.astype(np.int64), np.where(best > 0, end + 1, 0).astype(np.int64)


def _line_spans(strong: NDArray[np.bool_], bridged: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Per column: (start, end) of the longest stretch that is a line, (0, 0) where none
    is: at least 1 - PIP_SIDE_QUANTILE of it is ``strong``. The longest run of
    ``bridged`` when it holds enough; else the longest run of rows around which most of
    the next PIP_EDGE_GAP + 1 rows are strong (bridging may have carried the line on
    through the scattered edges of a busy backdrop beyond its end, and the run is not a
    line as a whole where its part along the inset's side is)."""
    need = 1.0 - PIP_SIDE_QUANTILE
    cols = np.arange(strong.shape[1])
    below = np.vstack([np.zeros((1, strong.shape[1]), np.int64), np.cumsum(strong, axis=0)])

    def holding(runs: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.int64]:
        share = (below[ends, cols] - below[ends - runs, cols]) / np.maximum(runs, 1)
        return np.where(share >= need, runs, 0)

    runs, ends = _longest_runs(bridged)
    runs = holding(runs, ends)
    window = cv2.blur(strong.astype(np.float32), (1, PIP_EDGE_GAP + 1), borderType=cv2.BORDER_CONSTANT)
    dense_runs, dense_ends = _longest_runs(window >= need - 1e-6)
    dense_runs = holding(dense_runs, dense_ends)
    use = dense_runs > runs
    runs, ends = np.where(use, dense_runs, runs), np.where(use, dense_ends, ends)
    return np.stack([ends - runs, ends], axis=1)


def _segments(grad: NDArray[np.float32], floor: float, min_len: int) -> list[tuple[int, int, int, float]]:
    """The strongest long straight edges of ``grad`` running down its columns: (column,
    first row, end row, mean strength), strongest first."""
    strong = grad >= floor
    # A line of min_len has at least 1 - PIP_SIDE_QUANTILE of it strong: the columns
    # with fewer strong pixels in all (most of them) hold none, and are not scanned (the
    # scan is column by column: the same lines as scanning them all).
    cols = np.flatnonzero(np.count_nonzero(strong, axis=0) >= (1.0 - PIP_SIDE_QUANTILE) * min_len - 1e-6)
    spans = np.zeros((grad.shape[1], 2), np.int64)
    if len(cols):
        some = np.ascontiguousarray(strong[:, cols])
        # Where the background happens to look like the film, or lossy coding smears it,
        # an edge breaks for a few pixels: bridge gaps of up to PIP_EDGE_GAP, then ask
        # that most of the bridged stretch is edge (PIP_SIDE_QUANTILE).
        kernel = np.ones((PIP_EDGE_GAP + 1, 1), np.uint8)
        bridged = cv2.morphologyEx(some.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool) | some
        spans[cols] = _line_spans(some, bridged)
    runs = spans[:, 1] - spans[:, 0]
    # The longest of its neighbours (the first of equals): one line per edge.
    before = np.concatenate([[-1], runs[:-1]])
    after = np.concatenate([runs[1:], [-1]])
    out = []
    for i in np.flatnonzero((runs >= min_len) & (runs >= before) & (runs > after)).tolist():
        start, stop = int(spans[i, 0]), int(spans[i, 1])
        out.append((i, start, stop, float(grad[start:stop, i].mean())))
    return sorted(out, key=lambda seg: -(seg[2] - seg[1]) * seg[3])[:PIP_LINES]


Edges = tuple[NDArray[np.float32], NDArray[np.float32]]


def edge_medians(frames: list[NDArray[np.uint8]]) -> Edges | None:
    """Per-pixel medians over the frames of the gradient across columns, (h, w - 1):
    the edge between column c and c + 1, and across rows, (h - 1, w). None for fewer
    than 3 frames."""
    if len(frames) < 3:
        return None
    shape = frames[0].shape
    same = [f for f in frames if f.shape == shape]
    # Evenly thinned: the border is there in every frame, the median needs a few dozen.
    same = same[:: max(1, len(same) // PIP_STAT_FRAMES)]
    stack = np.stack(same).astype(np.int16)
    return temporal_median(np.abs(np.diff(stack, axis=2))), temporal_median(np.abs(np.diff(stack, axis=1)))


# The border of an inset is also where the pictures' motion changes: a film seen by a
# fixed camera over moving city footage is a still rectangle in a moving frame, a film
# with its cuts over a calm backdrop a busy one. Where the backdrop crosses the film's
# tones its border is no edge in the pictures (``edge_medians`` finds nothing), but it is
# one in the map of how much each pixel changes from frame to frame: ``activity_edges``,
# the gradient of the log of each pixel's mean change (ACTIVITY_SCALE per unit of log,
# so that the frame's typical edge is a few units as in ``edge_medians``). In a stress
# copy (a fixed-camera film at 28 % over city footage at night) its four sides stood at
# 60 to 90 where the map's median was 3, and ``edge_medians`` gave no proposal at all.
ACTIVITY_SCALE = 40.0
# Rectangles kept per motion map (``activity_edges``, ``decorrelation_edges``): on the
# first stress set (28-33 % insets over busy footage) 6 confirmed no more copies than 3,
# and 2 lost one; each one kept is one more proposal to probe on every video that is no
# copy.
MOTION_CANDIDATES = 3


def activity_edges(frames: list[NDArray[np.uint8]]) -> Edges | None:
    """The edges of the frames' activity (see ACTIVITY_SCALE), shaped as
    ``edge_medians``'s: across columns (h, w - 1) and across rows (h - 1, w). None for
    fewer than 3 frames of the first one's size."""
    same = [f for f in frames if f.shape == frames[0].shape] if frames else []
    if len(same) < 3:
        return None
    change = np.zeros(same[0].shape, np.float32)
    for a, b in zip(same, same[1:]):
        change += cv2.absdiff(a, b)
    level = np.log1p(change / (len(same) - 1)) * ACTIVITY_SCALE
    return np.abs(np.diff(level, axis=1)), np.abs(np.diff(level, axis=0))


# Where the inset's tones and its motion are both like the backdrop's (an old grey film
# over city lights), the border still parts two pictures that change independently:
# neighbouring pixels on one side change together over time, across it they do not.
# ``decorrelation_edges`` maps 1 - the correlation over time of each two neighbours
# (each pixel's changes scaled by their spread, plus DECOR_NOISE grey levels so that
# the coding noise of a still area does not count as change); a textured backdrop is
# somewhat decorrelated all over, a border is a thin ridge, so what is kept is how far
# each value stands above the values RIDGE_PX pixels to either side across it, in units
# of the map's RIDGE_QUANTILE percentile. In the stress copies whose insets neither
# other map showed (a 1906 film at 30 % over city lights, Big Buck Bunny at 30 and 33 %
# over the same) it outlined each inset.
DECOR_NOISE = 3.0
RIDGE_PX = 2
RIDGE_QUANTILE = 75.0


def decorrelation_edges(frames: list[NDArray[np.uint8]]) -> Edges | None:
    """Where neighbouring pixels change independently over time (see DECOR_NOISE), as
    ridges, shaped as ``edge_medians``'s. None for fewer than 3 frames of the first
    one's size."""
    same = [f for f in frames if f.shape == frames[0].shape] if frames else []
    if len(same) < 3:
        return None
    stack = np.stack(same[:: max(1, len(same) // (2 * PIP_STAT_FRAMES))]).astype(np.float32)
    stack -= stack.mean(axis=0)
    stack /= np.sqrt((stack * stack).mean(axis=0)) + DECOR_NOISE
    across_x = 1.0 - (stack[:, :, :-1] * stack[:, :, 1:]).mean(axis=0)
    across_y = 1.0 - (stack[:, :-1, :] * stack[:, 1:, :]).mean(axis=0)

    def ridges(g: NDArray[np.float32], axis: int) -> NDArray[np.float32]:
        pad = [(0, 0), (0, 0)]
        pad[axis] = (RIDGE_PX, RIDGE_PX)
        wide = np.pad(g, pad, mode="edge")
        n = g.shape[axis]
        before = np.take(wide, np.arange(n), axis=axis)
        after = np.take(wide, np.arange(2 * RIDGE_PX, n + 2 * RIDGE_PX), axis=axis)
        return np.clip(g - np.maximum(before, after), 0.0, None)

    rx, ry = ridges(across_x, 1), ridges(across_y, 0)
    unit = max(float(np.percentile(rx, RIDGE_QUANTILE)), float(np.percentile(ry, RIDGE_QUANTILE)), 1e-3)
    return (rx / unit).astype(np.float32), (ry / unit).astype(np.float32)


def crop_edges(edges: Edges, box: Box) -> Edges:
    """``edge_medians`` of the frames cropped to ``box``, taken from those of the whole
    frames (the same values: each pixel's median over the same frames)."""
    gx, gy = edges
    r0, r1, c0, c1 = box.bounds(gx.shape[0], gy.shape[1])
    return gx[r0:r1, c0 : c1 - 1], gy[r0 : r1 - 1, c0:c1]


def _tightened(box: Box, gx: NDArray[np.float32], gy: NDArray[np.float32], typical: float) -> Box:
    """``box`` with each side that is the frame's own edge moved in to the picture's
    border when one shows within its outer PIP_TIGHTEN_SHARE (see there)."""
    y0, y1, x0, x1 = box.y0, box.y1, box.x0, box.x1
    h, w = gy.shape[0] + 1, gx.shape[1] + 1

    def peak(means: NDArray[np.float32], lo: int, hi: int) -> int | None:
        # The strongest line of means[lo:hi] when it stands out from the median line.
        lo = max(lo, 0)
        if hi - lo < 2:
            return None
        i = lo + int(np.argmax(means[lo:hi]))
        best = float(means[i])
        return i if best >= PIP_TIGHTEN_RATIO * max(float(np.median(means)), 1.0) and best >= typical else None

    band_x, band_y = max(2, int(PIP_TIGHTEN_SHARE * (x1 - x0))), max(2, int(PIP_TIGHTEN_SHARE * (y1 - y0)))
    cols = gx[y0:y1, x0 : x1 - 1].mean(axis=0)  # column c + x0: the edge after column c + x0
    rows = gy[y0 : y1 - 1, x0:x1].mean(axis=1)
    if x1 >= w and (c := peak(cols, len(cols) - band_x, len(cols))) is not None:
        x1 = x0 + c + 1
    if x0 <= 0 and (c := peak(cols, 0, band_x)) is not None:
        x0 = c + 1
    if y1 >= h and (r := peak(rows, len(rows) - band_y, len(rows))) is not None:
        y1 = y0 + r + 1
    if y0 <= 0 and (r := peak(rows, 0, band_y)) is not None:
        y0 = r + 1
    return Box(y0, y1, x0, x1)


def inner_pictures(frames: list[NDArray[np.uint8]], edges: Edges | None = None,
                   limit: int = PIP_CANDIDATES) -> list[Box]:
    """Boxes where a picture shown inside the frame may be (picture-in-picture), most
    likely first (``limit`` of them, and their tightened boxes); empty when nothing looks
    like one. ``edges``: the frames' ``edge_medians`` when already known, or another map
    of where their borders are (``activity_edges``).

    Proposals come from the long straight edges: rectangles whose sides are edges
    (three, or two meeting in a corner of the frame), two parallel edges facing each
    other (the other two sides too weak to see against a busy background), or one edge
    across the whole frame (a film beside a person, filling its half)."""
    if len(frames) < 3:
        return []
    edges = edges if edges is not None else edge_medians(frames)
    if edges is None:
        return []
    gx, gy = edges
    h, w = gy.shape[0] + 1, gx.shape[1] + 1
    typical = max(float(np.median(gx)), float(np.median(gy)), 1.0)
    floor = PIP_EDGE_RATIO * typical
    min_h = int(PIP_MIN_HEIGHT_SHARE * h)
    min_w = int(PIP_MIN_SHARE * w)
    vsegs = _segments(gx, floor, int(0.8 * min_h))
    hsegs = _segments(gy.T, floor, int(0.8 * min_w))
    found: list[tuple[float, Box]] = []

    def fits(y0: int, y1: int, x0: int, x1: int) -> bool:
        if x1 - x0 < min_w or y1 - y0 < min_h or (x1 - x0 >= w - 2 and y1 - y0 >= h - 2):
            return False
        return PIP_ASPECT[0] <= (x1 - x0) / (y1 - y0) <= PIP_ASPECT[1]

    def propose(score: float, y0: int, y1: int, x0: int, x1: int) -> None:
        if fits(y0, y1, x0, x1):
            found.append((score, Box(y0, y1, x0, x1)))

    # Rectangles whose sides are all edges or the frame's own edges.
    xs = sorted({-1, w - 1, *(c for c, *_ in vsegs)})
    ys = sorted({-1, h - 1, *(r for r, *_ in hsegs)})
    # Along-side sums in O(1): cumulative sums down each column of gx (strong pixels
    # and gradient) and along each row of gy.
    sx = np.vstack([np.zeros((1, w - 1)), np.cumsum(gx >= floor, axis=0)])
    vx = np.vstack([np.zeros((1, w - 1)), np.cumsum(gx, axis=0)])
    sy = np.hstack([np.zeros((h - 1, 1)), np.cumsum(gy >= floor, axis=1)])
    vy = np.hstack([np.zeros((h - 1, 1)), np.cumsum(gy, axis=1)])
    need = 1.0 - PIP_SIDE_QUANTILE

    def vertical(x: int, y0: int, y1: int) -> float | None:
        n = y1 - y0
        if (sx[y1 + 1, x] - sx[y0 + 1, x]) < need * n:
            return None
        return float(vx[y1 + 1, x] - vx[y0 + 1, x]) / n

    def horizontal(y: int, x0: int, x1: int) -> float | None:
        n = x1 - x0
        if (sy[y, x1 + 1] - sy[y, x0 + 1]) < need * n:
            return None
        return float(vy[y, x1 + 1] - vy[y, x0 + 1]) / n

    # Every rectangle over those lines at once (in the order of four nested loops: x0,
    # x1, y0, y1), its sides looked up in tables of each line's strength between every
    # two crossing lines (NaN: not an edge along most of it).
    X, Y = np.asarray(xs), np.asarray(ys)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.clip(X, 0, w - 2)
        n_v = (Y[None, :] - Y[:, None]).astype(np.float64)               # (y0, y1)
        cnt_v = sx[Y[None, None, :] + 1, cx[:, None, None]] - sx[Y[None, :, None] + 1, cx[:, None, None]]
        sum_v = vx[Y[None, None, :] + 1, cx[:, None, None]] - vx[Y[None, :, None] + 1, cx[:, None, None]]
        side_v = np.where(cnt_v >= need * n_v[None], sum_v / n_v[None], np.nan)   # (x, y0, y1)
        cy = np.clip(Y, 0, h - 2)
        n_h = (X[None, :] - X[:, None]).astype(np.float64)               # (x0, x1)
        cnt_h = sy[cy[:, None, None], X[None, None, :] + 1] - sy[cy[:, None, None], X[None, :, None] + 1]
        sum_h = vy[cy[:, None, None], X[None, None, :] + 1] - vy[cy[:, None, None], X[None, :, None] + 1]
        side_h = np.where(cnt_h >= need * n_h[None], sum_h / n_h[None], np.nan)   # (y, x0, x1)
    i0, i1, j0, j1 = (a.ravel() for a in np.meshgrid(np.arange(len(X)), np.arange(len(X)), np.arange(len(Y)),
                                                     np.arange(len(Y)), indexing="ij"))
    x0, x1, y0, y1 = X[i0], X[i1], Y[j0], Y[j1]
    left, right, top, bottom = x0 >= 0, x1 < w - 1, y0 >= 0, y1 < h - 1
    interior = left.astype(int) + right + top + bottom
    # Three sides inside the frame, or two meeting in a corner (two opposite frame edges
    # would be a band, which bars already handle).
    corner = (left != right) & (top != bottom)
    ok = (i1 > i0) & (j1 > j0) & (x1 - x0 >= min_w) & ((interior > 2) | ((interior == 2) & corner))
    sides = np.stack([np.where(left, side_v[i0, j0, j1], np.inf), np.where(right, side_v[i1, j0, j1], np.inf),
                      np.where(top, side_h[j0, i0, i1], np.inf), np.where(bottom, side_h[j1, i0, i1], np.inf)])
    ok &= ~np.isnan(sides).any(axis=0)
    for k in np.flatnonzero(ok):
        propose(float(sides[:, k].min()) * int(interior[k]), int(y0[k]) + 1, int(y1[k]) + 1, int(x0[k]) + 1,
                int(x1[k]) + 1)

    # Two parallel edges facing each other over the same stretch: the box between them.
    # Where the backdrop passes the inset's own tone, one edge fades for a while and its
    # longest run stops short of the other's: the pair also holds when each edge is an
    # edge along most (PIP_SIDE_QUANTILE) of the stretch both runs cover.
    for segs, vertical_edges in ((vsegs, True), (hsegs, False)):
        side = vertical if vertical_edges else horizontal
        for a, (p0, s0, e0, v0) in enumerate(segs):
            for p1, s1, e1, v1 in segs[a + 1 :]:
                q0, q1 = sorted((p0, p1))
                lo, hi = max(s0, s1), min(e0, e1)
                strength: float | None = min(v0, v1)
                if hi - lo < PIP_PAIR_OVERLAP * max(e0 - s0, e1 - s1):
                    lo, hi = min(s0, s1), max(e0, e1)
                    w0, w1 = side(p0, lo - 1, hi - 1), side(p1, lo - 1, hi - 1)
                    strength = None if w0 is None or w1 is None else min(w0, w1)
                if strength is None:
                    continue
                if vertical_edges:
                    propose(2 * strength, lo, hi, q0 + 1, q1 + 1)
                else:
                    propose(2 * strength, q0 + 1, q1 + 1, lo, hi)
    # One edge across the whole frame: the picture fills one side of it.
    for segs, vertical_edges, length in ((vsegs, True, h), (hsegs, False, w)):
        for p, s0, e0, v in segs:
            if e0 - s0 < PIP_FULL_EDGE * length:
                continue
            if vertical_edges:
                propose(v, 0, h, 0, p + 1)
                propose(v, 0, h, p + 1, w)
            else:
                propose(v, 0, p + 1, 0, w)
                propose(v, p + 1, h, 0, w)

    found.sort(key=lambda f: -f[0])
    out: list[Box] = []
    kept = 0

    def near(b: Box) -> bool:  # almost equal to a stronger proposal: it adds nothing
        return any(b.near(o) for o in out)

    for _, box in found:
        if near(box):
            continue
        # One that takes a side from the frame's edge goes with its tightened box first,
        # over and above the PIP_CANDIDATES (which it would otherwise push out).
        if box.x0 == 0 or box.y0 == 0 or box.x1 >= w or box.y1 >= h:
            tight = _tightened(box, gx, gy, typical)
            if tight != box and fits(tight.y0, tight.y1, tight.x0, tight.x1) and not near(tight):
                out.append(tight)
        out.append(box)
        kept += 1
        if kept >= limit:
            break
    return out


def inner_picture(frames: list[NDArray[np.uint8]]) -> Box | None:
    """The most likely box of a picture shown inside the frame, or None."""
    boxes = inner_pictures(frames)
    return boxes[0] if boxes else None
