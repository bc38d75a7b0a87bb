"""Bar detection: letterbox, pillarbox, watermarked bars, dark scenes left alone."""

from __future__ import annotations

import numpy as np

from fingerprint.preprocess import FULL, detect_box


def _frames(n: int = 30, h: int = 108, w: int = 192, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((h, w)) * 200 + 30).astype(np.uint8) for _ in range(n)]


def test_no_bars_full_frame() -> None:
    assert detect_box(_frames()) == FULL


def test_letterbox_found() -> None:
    frames = []
    for f in _frames(h=80):
        out = np.zeros((108, 192), np.uint8)
        out[14:94] = f
        frames.append(out)
    box = detect_box(frames)
    assert 14 <= box.y0 <= 16 and 92 <= box.y1 <= 94
    assert box.x0 == 0 and box.x1 == 192


def test_pillarbox_with_watermark_in_bar() -> None:
    frames = []
    for f in _frames(w=140):
        out = np.zeros((108, 192), np.uint8)
        out[:, 26:166] = f
        out[40:50, 2:20] = 255  # a static logo in the left bar
        frames.append(out)
    box = detect_box(frames)
    assert 26 <= box.x0 <= 28 and 164 <= box.x1 <= 166


def test_vertical_repost_bars_found() -> None:
    # A 16:9 film across a 9:16 frame (analysis size 192 x 340): a band of 108 rows
    # between bars of 116, a caption in the upper one. And a 2.39:1 film: 80 rows.
    for rows in (108, 80):
        frames = []
        for f in _frames(h=rows):
            out = np.zeros((340, 192), np.uint8)
            top = (340 - rows) // 2
            out[top : top + rows] = f
            out[top - 20 : top - 12, 10:80] = 255  # a caption over a minority of its rows
            frames.append(out)
        box = detect_box(frames)
        top = (340 - rows) // 2
        assert top <= box.y0 <= top + 2 and top + rows - 2 <= box.y1 <= top + rows, box
        assert box.x0 == 0 and box.x1 == 192


def test_dark_moving_scene_is_not_a_bar() -> None:
    rng = np.random.default_rng(1)
    frames = [(rng.random((108, 192)) * 20).astype(np.uint8) for _ in range(30)]
    assert detect_box(frames) == FULL


def test_blurred_bars_found() -> None:
    import cv2

    frames = []
    for f in _frames(w=120, seed=3):
        f = cv2.GaussianBlur(f, (3, 3), 0)
        bg = cv2.GaussianBlur(cv2.resize(f, (192, 108)), (0, 0), 12)
        bg[:, 36:156] = f
        frames.append(bg)
    box = detect_box(frames)
    assert 34 <= box.x0 <= 39 and 153 <= box.x1 <= 158, box


def test_inner_picture_found_and_not_invented() -> None:
    from fingerprint.preprocess import inner_picture

    import cv2

    rng = np.random.default_rng(4)
    frames, plain = [], []

    def smooth(h: int, w: int, lo: float, hi: float) -> np.ndarray:
        small = rng.random((max(2, h // 12), max(2, w // 12))).astype(np.float32)
        return (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1) * (hi - lo) + lo).astype(np.uint8)

    for _ in range(20):
        bg = smooth(108, 192, 0, 255)
        film = smooth(60, 110, 40, 220)
        out = bg.copy()
        out[10:70, 70:180] = film
        frames.append(out)
        plain.append(bg)
    box = inner_picture(frames)
    assert box is not None and abs(box.y0 - 10) <= 1 and abs(box.y1 - 70) <= 1
    assert abs(box.x0 - 70) <= 1 and abs(box.x1 - 180) <= 1
    assert inner_picture(plain) is None


def test_temporal_median_equals_numpy_median():
    # The sorting network gives NumPy's per-pixel median exactly, for every frame count
    # it handles (odd and even, padded to a power of two) and past it.
    from fingerprint.preprocess import MEDIAN_NETWORK_MAX, temporal_median

    rng = np.random.default_rng(7)
    for n in [*range(1, 20), 31, 32, 33, MEDIAN_NETWORK_MAX, MEDIAN_NETWORK_MAX + 1]:
        for dtype, top in ((np.uint8, 256), (np.int16, 511)):
            stack = rng.integers(0, top, (n, 6, 5)).astype(dtype)
            assert np.array_equal(temporal_median(stack), np.median(stack.astype(np.float32), axis=0))


def test_cropped_edges_are_the_cropped_frames_edges() -> None:
    """The inner-picture proposals of bar-cropped frames, from the decoded frames' edge
    medians cropped, are those computed on the cropped frames themselves."""
    from fingerprint.preprocess import Box, crop_edges, edge_medians, inner_pictures

    rng = np.random.default_rng(3)
    frames = []
    for _ in range(20):
        f = np.zeros((120, 192), np.uint8)
        f[12:108] = rng.integers(30, 120)  # letterboxed backdrop, its level changing
        f[30:80, 100:180] = rng.integers(140, 230)  # an inset, changing on its own
        frames.append(f)
    box = Box(12, 108, 0, 192)
    cropped = [box.crop(f) for f in frames]
    edges = crop_edges(edge_medians(frames), box)
    direct = edge_medians(cropped)
    assert all(np.array_equal(a, b) for a, b in zip(edges, direct))
    assert inner_pictures(cropped, edges) == inner_pictures(cropped)
    assert inner_pictures(cropped)  # the inset is proposed


def test_bars_of_a_region_from_the_frames_maps() -> None:
    """An inner picture's own bars, found from the whole frames' bar statistics cropped
    to it, are those found on the cropped frames, wherever the region is (against the
    frame's top or left edge too, where the gradient's first row and column differ)."""
    from fingerprint.preprocess import BarMaps, Box

    rng = np.random.default_rng(11)
    frames = []
    for _ in range(8):
        f = rng.integers(40, 220, (108, 192), dtype=np.uint8)  # a moving backdrop
        f[20:90, 60:170] = 0
        f[30:80, 60:170] = rng.integers(40, 220, (50, 110), dtype=np.uint8)  # a letterboxed inset
        frames.append(f)
    maps = BarMaps(frames)
    regions = [Box(20, 90, 60, 170), Box(0, 90, 0, 170), Box(18, 108, 58, 192), Box(0, 54, 40, 120)]
    found = [maps.box(r) for r in regions]
    assert found == [detect_box([r.crop(f) for f in frames]) for r in regions]
    assert found[0] == Box(11, 59, 0, 110)  # the inset's own bars, inside its box
    assert maps.box() == detect_box(frames)


def test_corner_proposal_tightened_to_the_pictures_border() -> None:
    """A picture near a corner, its border seen only in part against a busy backdrop,
    was proposed out to the frame's edge (backdrop margin and all, which spoils its
    hashes): the box up to the border that stands out is proposed first."""
    from fingerprint.preprocess import Box, _tightened

    rng = np.random.default_rng(5)
    h, w = 108, 192
    gx = (rng.random((h, w - 1)) * 6).astype(np.float32)
    gy = (rng.random((h - 1, w)) * 6).astype(np.float32)
    gx[75:104, 181] = 30.0  # the right border, gy's bottom one: weak, but far above the rest
    gy[104, 128:182] = 20.0
    assert _tightened(Box(75, h, 128, w), gx, gy, 3.0) == Box(75, 105, 128, 182)
    # Nothing stands out: the box stays as it was.
    flat = (rng.random((h, w - 1)) * 6).astype(np.float32), (rng.random((h - 1, w)) * 6).astype(np.float32)
    assert _tightened(Box(75, h, 128, w), *flat, 3.0) == Box(75, h, 128, w)



def test_inset_found_where_its_motion_differs_and_its_border_is_no_edge() -> None:
    """A fixed-camera picture over busy moving footage of the same tones (a stress copy:
    a 28 % inset over city lights): its border is no edge in the pictures, whose
    gradient is as strong everywhere, but it is one in the map of how much each pixel
    changes. The same frames with no inset give no proposal from either map."""
    from fingerprint.preprocess import activity_edges, edge_medians, inner_pictures

    rng = np.random.default_rng(8)
    still = (rng.random((40, 56)) * 255).astype(np.uint8)
    frames, plain = [], []
    for _ in range(40):
        bg = (rng.random((108, 192)) * 255).astype(np.uint8)  # changes all over, every frame
        plain.append(bg.copy())
        bg[64:104, 127:183] = still
        frames.append(bg)
    assert inner_pictures(frames, edge_medians(frames)) == []
    moving = activity_edges(frames)
    assert moving is not None
    boxes = inner_pictures(frames, moving)
    assert boxes and max(abs(a - b) for a, b in zip(
        (boxes[0].y0, boxes[0].y1, boxes[0].x0, boxes[0].x1), (64, 104, 127, 183))) <= 1
    none = activity_edges(plain)
    assert none is not None and inner_pictures(plain, none) == []


def test_a_border_beside_scattered_edges_is_still_a_line() -> None:
    """The columns next to an inset's side over a busy backdrop hold scattered edges
    that, gaps bridged, make longer runs than the side itself: the side was not taken
    for a line because a neighbour's run was longer, and a run bridged on through the
    scattered edges was refused as not enough of an edge. Each column's line is now the
    longest stretch of it that is one."""
    from fingerprint.preprocess import PIP_EDGE_GAP, _segments

    rng = np.random.default_rng(9)
    grad = np.where(rng.random((108, 191)) < 0.3, 20.0, 1.0).astype(np.float32)  # scattered strong pixels
    grad[64:104, 126] = 80.0  # the side
    found = {(c, s, e) for c, s, e, _ in _segments(grad, 10.0, 9)}
    # Its ends to within a bridged gap: scattered edges right next to them read as line.
    gap = PIP_EDGE_GAP + 1
    assert any(c == 126 and 64 - gap <= s <= 66 and 102 <= e <= 104 + gap for c, s, e in found), found


def test_inset_found_where_its_neighbours_change_independently() -> None:
    """An inset whose tones and motion are both the backdrop's (fine texture everywhere,
    each side's brightness wandering on its own): no edge in the pictures, no step in how
    much pixels change, but across its border neighbours change independently where on
    either side they change together. Frames without the inset give no proposal."""
    from fingerprint.preprocess import activity_edges, decorrelation_edges, edge_medians, inner_pictures

    rng = np.random.default_rng(10)
    texture = rng.random((108, 192)) * 0.6 + 0.4  # fine detail: a strong gradient all over
    light = np.cumsum(rng.normal(0, 12, (2, 40)), axis=1) + 120  # two wandering brightnesses
    frames, plain = [], []
    for t in range(40):
        bg = texture * light[0, t]
        plain.append(np.clip(bg, 0, 255).astype(np.uint8))
        bg[30:76, 70:128] = texture[30:76, 70:128] * light[1, t]
        frames.append(np.clip(bg, 0, 255).astype(np.uint8))
    truth = (30, 76, 70, 128)

    def found(boxes: list) -> bool:  # type: ignore[type-arg]
        return any(max(abs(a - b) for a, b in zip((x.y0, x.y1, x.x0, x.x1), truth)) <= 1 for x in boxes)

    assert not found(inner_pictures(frames, edge_medians(frames)))
    assert not found(inner_pictures(frames, activity_edges(frames)))
    assert found(inner_pictures(frames, decorrelation_edges(frames)))
    assert inner_pictures(plain, decorrelation_edges(plain)) == []
