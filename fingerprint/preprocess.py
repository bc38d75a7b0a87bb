"""Frame preprocessing before hashing: find the picture inside the frame.

Pirated copies add black bars (letterbox, pillarbox) or re-frame the picture; the
hash must see the same picture as the reference's. The content box is decided once
per video from statistics over many frames (a dark scene must not move it), then
every frame is cropped to it. Pure functions over NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# dark picture.
MAX_BAR_SHARE = 0.6
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

    @property
    def is_full(self) -> bool:
        return self.y0 == 0 and self.x0 == 0 and self.y1 < 0


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

    def box(self) -> Box:
        if self.shape is None or not self.frames:
            return FULL
        h, w = self.shape
        stack = np.stack(self.frames).astype(np.float32)
        level = np.median(stack, axis=0)
        spread = stack.std(axis=0)
        gx = np.zeros_like(stack)
        gy = np.zeros_like(stack)
        gx[:, :, 1:] = np.abs(np.diff(stack, axis=2))
        gy[:, 1:, :] = np.abs(np.diff(stack, axis=1))
        detail = np.median(gx + gy, axis=0)
        y0, y1 = _span(np.median(level, axis=1), np.median(spread, axis=1), detail.mean(axis=1))
        x0, x1 = _span(np.median(level, axis=0), np.median(spread, axis=0), detail.mean(axis=0))
        if y0 == 0 and y1 == h and x0 == 0 and x1 == w:
            return FULL
        return Box(y0, y1, x0, x1)


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


# Picture-in-picture: the film shown smaller inside another video. Its border is a
# straight edge that stays put while everything moves, so it stands out in the
# per-pixel median (over time) of the gradient. A side counts when its median edge
# strength is PIP_EDGE_RATIO times the frame's typical edge strength; the inner
# picture must cover at least PIP_MIN_SHARE of each dimension (the issue's "half size
# or more", with margin) and have a film-like aspect ratio.
PIP_EDGE_RATIO = 3.0
PIP_MIN_SHARE = 0.4
PIP_ASPECT = (1.0, 2.6)
PIP_CANDIDATES = 6


def _peaks(profile: NDArray[np.floating], floor: float) -> list[int]:
    """Indices of the strongest local maxima above ``floor`` (at most PIP_CANDIDATES)."""
    idx = [i for i in range(len(profile))
           if profile[i] >= floor
           and (i == 0 or profile[i] >= profile[i - 1])
           and (i == len(profile) - 1 or profile[i] >= profile[i + 1])]
    return sorted(idx, key=lambda i: -profile[i])[:PIP_CANDIDATES]


def inner_picture(frames: list[NDArray[np.uint8]]) -> Box | None:
    """The box of a picture shown inside the frame (picture-in-picture), or None."""
    if len(frames) < 3:
        return None
    shape = frames[0].shape
    stack = np.stack([f for f in frames if f.shape == shape][:MAX_STAT_FRAMES]).astype(np.float32)
    h, w = shape
    gx = np.median(np.abs(np.diff(stack, axis=2)), axis=0)  # (h, w-1): edge between c and c+1
    gy = np.median(np.abs(np.diff(stack, axis=1)), axis=0)  # (h-1, w)
    typical = max(float(np.median(gx)), float(np.median(gy)), 1.0)
    floor = PIP_EDGE_RATIO * typical
    cols = _peaks(gx.mean(axis=0), floor / 2)
    rows = _peaks(gy.mean(axis=1), floor / 2)
    xs = sorted({-1, w - 1, *cols})  # -1 / w-1: the picture touches the frame's edge
    ys = sorted({-1, h - 1, *rows})
    best: tuple[float, Box] | None = None
    for i, x0 in enumerate(xs):
        for x1 in xs[i + 1 :]:
            if x1 - x0 < PIP_MIN_SHARE * w:
                continue
            for j, y0 in enumerate(ys):
                for y1 in ys[j + 1 :]:
                    if y1 - y0 < PIP_MIN_SHARE * h or (x0 == -1 and x1 == w - 1 and y0 == -1 and y1 == h - 1):
                        continue
                    aspect = (x1 - x0) / (y1 - y0) * (16 / 9) / (w / h)
                    if not PIP_ASPECT[0] <= aspect <= PIP_ASPECT[1]:
                        continue
                    sides = []
                    if x0 >= 0:
                        sides.append(float(gx[y0 + 1 : y1 + 1, x0].mean()))
                    if x1 < w - 1:
                        sides.append(float(gx[y0 + 1 : y1 + 1, x1].mean()))
                    if y0 >= 0:
                        sides.append(float(gy[y0, x0 + 1 : x1 + 1].mean()))
                    if y1 < h - 1:
                        sides.append(float(gy[y1, x0 + 1 : x1 + 1].mean()))
                    if len(sides) < 3 or min(sides) < floor:
                        continue
                    score = min(sides) * len(sides)
                    if best is None or score > best[0]:
                        best = (score, Box(y0 + 1, y1 + 1, x0 + 1, x1 + 1))
    return best[1] if best else None
