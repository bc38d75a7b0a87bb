"""Media generation for the demo, the tests and the benchmark.

``make_film`` writes a deterministic synthetic "film": shots of a few seconds, each a
textured scene (smooth noise, shapes) with camera motion and a moving object, cut
together like an edited film. ``make_copy`` writes a pirate-style copy of any video:
an excerpt, re-encoded at a low bit rate, with pixel transforms applied per frame.
Everything goes through PyAV's bundled FFmpeg; no ffmpeg binary is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import av
import cv2
import numpy as np
from numpy.typing import NDArray

FrameFn = Callable[[NDArray[np.uint8], float], NDArray[np.uint8]]


def _scene(rng: np.random.Generator, w: int, h: int) -> NDArray[np.uint8]:
    """A textured still, larger than the frame so the camera can move over it."""
    W, H = int(w * 1.5), int(h * 1.5)
    base = rng.random((max(3, H // 40), max(3, W // 40), 3)).astype(np.float32)
    img = cv2.resize(base, (W, H), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.random((H // 6, W // 6, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    img = np.clip(0.7 * img + 0.3 * fine, 0, 1) * 255
    for _ in range(int(rng.integers(6, 14))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(H // 20, H // 5)), colour, -1, cv2.LINE_AA)
        else:
            x2, y2 = x + int(rng.integers(-W // 4, W // 4)), y + int(rng.integers(-H // 4, H // 4))
            cv2.rectangle(img, (x, y), (x2, y2), colour, -1, cv2.LINE_AA)
    return img.astype(np.uint8)


def film_frames(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> list[tuple[float, NDArray[np.uint8]]]:
    """(time, RGB frame) of a synthetic film; same seed, same film. For short clips:
    a long film should be streamed with ``iter_film_frames``."""
    return list(iter_film_frames(seed, duration_s, fps, size))


def iter_film_frames(seed: int, duration_s: float, fps: float,
                     size: tuple[int, int]) -> Iterator[tuple[float, NDArray[np.uint8]]]:
    """(time, RGB frame) of a synthetic film, one at a time."""
    w, h = size
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fps))
    shot_end = 0.0
    scene = _scene(rng, w, h)
    vx = vy = 0.0
    obj_colour = (255, 255, 255)
    shot_start = 0.0
    for i in range(n):
        t = i / fps
        if t >= shot_end:
            scene = _scene(rng, w, h)
            shot_start = t
            shot_end = t + float(rng.uniform(2.0, 4.5))
            vx, vy = (float(v) for v in rng.uniform(-0.12, 0.12, 2) * w)
            obj_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        dt = t - shot_start
        ox = int(np.clip(w * 0.25 + vx * dt, 0, scene.shape[1] - w))
        oy = int(np.clip(h * 0.25 + vy * dt, 0, scene.shape[0] - h))
        frame = scene[oy : oy + h, ox : ox + w].copy()
        cx = int((0.2 + 0.6 * ((dt * 0.3) % 1.0)) * w)
        cy = int(h * (0.5 + 0.3 * np.sin(dt * 2.0)))
        cv2.circle(frame, (cx, cy), h // 10, obj_colour, -1, cv2.LINE_AA)
        yield t, frame


class VideoWriter:
    """Encode RGB frames to a file as they come (container chosen by the extension)."""

    def __init__(self, path: str, fps: float, *, codec: str = "libx264", bit_rate: int | None = None,
                 crf: int = 23, preset: str = "veryfast") -> None:
        self.out = av.open(path, "w")
        self.rate = Fraction(fps).limit_denominator(1001)
        self.codec, self.bit_rate, self.crf, self.preset = codec, bit_rate, crf, preset
        self.stream: av.video.stream.VideoStream | None = None
        self.gop: int | None = None  # keyframe interval in frames (None: the encoder's)

    def write(self, img: NDArray[np.uint8]) -> None:
        if self.stream is None:
            h, w = img.shape[:2]
            self.stream = self.out.add_stream(self.codec, rate=self.rate)
            self.stream.width, self.stream.height = w - w % 2, h - h % 2
            self.stream.pix_fmt = "yuv420p"
            if self.gop:
                self.stream.codec_context.gop_size = self.gop
            if self.bit_rate:
                self.stream.bit_rate = self.bit_rate
            if self.codec == "libx264":
                self.stream.options = {"preset": self.preset} if self.bit_rate else {"crf": str(self.crf), "preset": self.preset}
        st = self.stream
        img = np.ascontiguousarray(img[: st.height, : st.width])
        for packet in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            self.out.mux(packet)

    def close(self) -> None:
        if self.stream is not None:
            for packet in self.stream.encode():
                self.out.mux(packet)
        self.out.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str, frames: Iterable[tuple[float, NDArray[np.uint8]]], fps: float, **kw: object) -> None:
    with VideoWriter(path, fps, **kw) as w:  # type: ignore[arg-type]
        for _, img in frames:
            w.write(img)


def make_film(path: str, seed: int, duration_s: float = 60.0, fps: float = 24.0,
              size: tuple[int, int] = (480, 270)) -> str:
    write_video(path, iter_film_frames(seed, duration_s, fps, size), fps)
    return path


# Past this many seconds into a file, an excerpt starts with a seek (to the keyframe
# before it) rather than decoding everything before it.
SEEK_AFTER_S = 10.0


def iter_source_frames(src: str, start_s: float = 0.0) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames of ``src`` with their time after its first frame, from the keyframe
    before ``start_s`` on (earlier ones may come too: the caller skips them). When the
    container cannot seek there exactly, everything is decoded from the start."""
    with av.open(src) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        frames = (fr for fr in c.decode(s) if fr.time is not None)
        first = next(frames, None)
        if first is None:
            return
        t0 = first.time
        if start_s > SEEK_AFTER_S and s.time_base:
            try:
                c.seek(int((t0 + start_s - 1.0) / s.time_base), stream=s, backward=True)
                frames = (fr for fr in c.decode(s) if fr.time is not None)
                landed = next(frames, None)
            except av.error.FFmpegError:
                landed = None
            if landed is not None and landed.time - t0 <= start_s + 1e-6:
                yield landed.time - t0, landed
                for fr in frames:
                    yield fr.time - t0, fr
                return
        else:
            yield 0.0, first
            for fr in frames:
                yield fr.time - t0, fr
            return
    # The seek overshot or failed: the slow way.
    with av.open(src) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for fr in c.decode(s):
            if fr.time is not None:
                yield fr.time - t0, fr


def make_montage(src: str, dst: str, stretches: list[tuple[float, float]], *, bit_rate: int | None = 1_500_000,
                 preset: str = "veryfast") -> str:
    """A re-edit of ``src``: its ``(start_s, duration_s)`` stretches one after another,
    in the order given (a trailer, a cut version), at the source's frame rate."""
    with av.open(src) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    with VideoWriter(dst, fps, bit_rate=bit_rate, preset=preset) as writer:
        for start, length in stretches:
            for t, fr in iter_source_frames(src, start):
                if t >= start + length:
                    break
                if t >= start - 1e-6:
                    writer.write(fr.to_ndarray(format="rgb24"))
    return dst


def make_copy(
    src: str,
    dst: str,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    transform: FrameFn | None = None,
    speed: float = 1.0,
    fps: float | None = None,
    bit_rate: int | None = 300_000,
    intro: list[NDArray[np.uint8]] | None = None,
    outro: list[NDArray[np.uint8]] | None = None,
    preset: str = "veryfast",
) -> str:
    """A pirate-style copy of ``src``: an excerpt, transformed, re-timed, re-encoded.

    ``speed`` > 1 plays faster (a 24 fps film shown at 25 fps has speed 25/24); frames
    are re-timed, not interpolated, as a pirate's conversion does. ``intro``/``outro``
    frames (RGB, any size: they are resized to the output) are put around the excerpt.
    Frames are streamed: memory does not grow with the length of the copy.
    """
    end_s = None if duration_s is None else start_s + duration_s
    with av.open(src) as c:
        src_fps = float(c.streams.video[0].average_rate or 25)
    out_fps = fps or src_fps
    writer = VideoWriter(dst, out_fps, bit_rate=bit_rate, preset=preset)
    size: tuple[int, int] | None = None
    k = 0  # next output frame; it shows the source at k * speed / out_fps

    def emit(img: NDArray[np.uint8], t_src: float) -> None:
        nonlocal size
        out = transform(img, t_src) if transform else img
        if size is None:
            size = (out.shape[1], out.shape[0])
            for extra in intro or []:
                writer.write(cv2.resize(extra, size))
        writer.write(out if (out.shape[1], out.shape[0]) == size else cv2.resize(out, size))

    prev: NDArray[np.uint8] | None = None
    last_t = 0.0
    for t_file, fr in iter_source_frames(src, start_s):
        t = t_file - start_s
        if t < -1e-6:
            continue
        if end_s is not None and t >= end_s - start_s:
            break
        img = fr.to_ndarray(format="rgb24")
        while prev is not None and k * speed / out_fps < t - 1e-6:
            emit(prev, k * speed / out_fps)
            k += 1
        prev, last_t = img, t
    while prev is not None and k * speed / out_fps <= last_t + 1e-6:
        emit(prev, k * speed / out_fps)
        k += 1
    if size is not None:
        for extra in outro or []:
            writer.write(cv2.resize(extra, size))
    writer.close()
    return dst


# ------------------------------------------------------------------ moving footage

Img = NDArray[np.uint8]
FrameIter = Iterator[tuple[float, Img]]


def iter_video_frames(path: str) -> FrameIter:
    """(time from the start, RGB frame) of a video file, decoded as they are read."""
    for t, fr in iter_source_frames(path):
        yield t, fr.to_ndarray(format="rgb24")


class Footage:
    """Moving pictures to show beside or behind a film (a background video, a person),
    read as time advances and looped when they end.

    ``frames()`` starts the footage over; times asked of ``at`` normally grow (as
    ``make_copy`` asks them), and going back restarts it. Only the current frame is
    held, so a long background costs no memory.
    """

    def __init__(self, frames: Callable[[], FrameIter], name: str = "") -> None:
        self.frames, self.name = frames, name
        self._it: FrameIter | None = None
        self._cur: tuple[float, Img] | None = None
        self._next: tuple[float, Img] | None = None
        self._base = 0.0   # footage time at which the current loop started
        self._last = -1.0

    @classmethod
    def of_file(cls, path: str) -> Footage:
        return cls(lambda: iter_video_frames(path), name=path)

    @classmethod
    def synthetic(cls, seed: int, size: tuple[int, int] = (640, 360), fps: float = 12.0) -> Footage:
        return cls(lambda: iter_film_frames(seed, 3600.0, fps, size), name=f"synthetic film {seed}")

    @classmethod
    def person(cls, seed: int, size: tuple[int, int] = (480, 360), fps: float = 12.0) -> Footage:
        return cls(lambda: iter_person_frames(seed, 3600.0, fps, size), name=f"synthetic person {seed}")

    def _pull(self) -> tuple[float, Img] | None:
        assert self._it is not None
        try:
            t, img = next(self._it)
        except StopIteration:
            return None
        return self._base + t, img

    def at(self, t: float, size: tuple[int, int] | None = None) -> Img:
        """The frame showing at time ``t`` (s), resized to ``size`` (w, h) if given."""
        if self._it is None or t < self._last:
            self._it, self._base = self.frames(), 0.0
            self._cur, self._next = self._pull(), None
            if self._cur is None:
                raise ValueError(f"{self.name}: no frames")
            self._next = self._pull()
        self._last = t
        while True:
            if self._next is None:  # the footage ended: play it again from its start
                assert self._cur is not None
                self._base = self._cur[0] + 0.1
                self._it = self.frames()
                self._next = self._pull()
            assert self._next is not None
            if self._next[0] > t:
                break
            self._cur, self._next = self._next, self._pull()
        assert self._cur is not None
        img = self._cur[1]
        if size is not None and (img.shape[1], img.shape[0]) != size:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return img


def iter_person_frames(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """A face-like person talking to a camera in a room (a reaction video's other half):
    the head sways and nods, the eyes blink, the mouth opens and closes, the hands come
    and go; the room is still. Colours, room and rhythm come from ``seed``."""
    w, h = size
    rng = np.random.default_rng(seed)
    room = cv2.GaussianBlur(_scene(rng, w, h)[:h, :w], (0, 0), 3)
    skin = tuple(int(c) for c in rng.choice([(224, 172, 140), (198, 134, 100), (141, 85, 60), (241, 194, 160)]))
    shirt = tuple(int(c) for c in rng.integers(0, 256, 3))
    hair = tuple(int(c) for c in rng.integers(0, 90, 3))
    sway, nod, talk = (float(x) for x in rng.uniform(0.4, 1.2, 3))
    blink_every = float(rng.uniform(2.5, 4.5))
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        img = room.copy()
        cx = int(w * (0.5 + 0.08 * np.sin(t * sway)))
        cy = int(h * (0.42 + 0.03 * np.sin(t * nod * 1.7)))
        rx, ry = int(w * 0.13), int(h * 0.22)
        cv2.ellipse(img, (cx, h + int(h * 0.05)), (int(w * 0.3), int(h * 0.35)), 0, 180, 360, shirt, -1, cv2.LINE_AA)
        cv2.ellipse(img, (cx, cy - ry // 3), (rx + 6, ry), 0, 180, 360, hair, -1, cv2.LINE_AA)
        cv2.ellipse(img, (cx, cy), (rx, ry), 0, 0, 360, skin, -1, cv2.LINE_AA)
        eye_h = 1 if (t % blink_every) < 0.15 else max(2, ry // 9)
        for dx in (-rx // 2.5, rx // 2.5):
            cv2.ellipse(img, (int(cx + dx), cy - ry // 5), (max(2, rx // 6), eye_h), 0, 0, 360, (30, 30, 30), -1)
        mouth = max(1, int(ry * 0.18 * abs(np.sin(t * talk * 6.0))))
        cv2.ellipse(img, (cx, cy + ry // 2), (rx // 3, mouth), 0, 0, 360, (90, 20, 30), -1, cv2.LINE_AA)
        if np.sin(t * 0.9 + seed) > 0.3:  # a hand comes up to the face now and then
            hx = int(cx + rx * 1.4 * np.sin(t * 1.3))
            cv2.circle(img, (hx, cy + ry), max(4, rx // 2), skin, -1, cv2.LINE_AA)
        yield t, img


# ------------------------------------------------------------------ non-catalogue static material
#
# Footage that is not in any catalogue and holds (nearly) still pictures: the kinds of
# video that agree with any still stretch of a film at any offset. The benchmark's
# negatives; each function yields (time, RGB frame) and takes its look from ``seed``.

WORDS = ("harbour", "morning", "river", "project", "quarterly", "review", "summer", "festival", "garden",
         "session", "meeting", "chapter", "episode", "lecture", "archive", "notes", "workshop", "city",
         "light", "north", "open", "studio", "field", "report")


def _sensor_noise(img: NDArray[np.float32], rng: np.random.Generator, sigma: float) -> Img:
    return np.clip(img + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 255).astype(np.uint8)


def _text_lines(img: Img, lines: list[str], colour: tuple[int, ...], rng: np.random.Generator,
                top: float = 0.35) -> None:
    h, w = img.shape[:2]
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX]))
    scale = h / float(rng.uniform(380, 520))
    thick = max(1, int(h / 300))
    centred = bool(rng.random() < 0.6)
    y = int(h * top)
    for line in lines:
        (tw, th), _ = cv2.getTextSize(line, font, scale, thick)
        while tw > w * 0.92 and scale > 0.2:
            scale *= 0.9
            (tw, th), _ = cv2.getTextSize(line, font, scale, thick)
        x = (w - tw) // 2 if centred else int(w * 0.08)
        cv2.putText(img, line, (x, y), font, scale, colour, thick, cv2.LINE_AA)
        y += int(th * 1.9)


def iter_test_card(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """Colour bars (SMPTE- or EBU-like, by seed) with a little noise, as broadcast before
    a programme; now and then a caption."""
    w, h = size
    rng = np.random.default_rng(seed)
    colours = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0), (0, 0, 192)]
    if rng.random() < 0.5:
        colours = [(255, 255, 255), *[(int(r * 255 / 192), int(g * 255 / 192), int(b * 255 / 192))
                                      for r, g, b in colours[1:]], (0, 0, 0)]
    card = np.zeros((h, w, 3), np.uint8)
    bar_h = int(h * rng.uniform(0.62, 0.8))
    n = len(colours)
    for i, c in enumerate(colours):
        card[:bar_h, i * w // n : (i + 1) * w // n] = c
    lower = np.linspace(0, 255, w).astype(np.uint8)[None, :, None]  # a grey ramp
    card[bar_h:] = lower if rng.random() < 0.5 else lower[:, ::-1]
    if rng.random() < 0.6:
        caption = f"{rng.choice(WORDS).upper()} {int(rng.integers(1, 99))}"
        _text_lines(card, [caption], (255, 255, 255), rng, top=0.92)
    sigma = float(rng.uniform(2, 8))
    base = card.astype(np.float32)
    for i in range(int(round(duration_s * fps))):
        yield i / fps, _sensor_noise(base, rng, sigma)


def iter_title_slide(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """Text on a plain or gradient background (a talk's first slide, a channel's card),
    faded in, then held."""
    w, h = size
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
    if rng.random() < 0.5:
        ramp = np.linspace(0, 1, h if rng.random() < 0.5 else w, dtype=np.float32)
        ramp = ramp[:, None, None] if len(ramp) == h else ramp[None, :, None]
        bg = np.broadcast_to(a * (1 - ramp) + b * ramp, (h, w, 3)).copy()
    else:
        bg = np.broadcast_to(a, (h, w, 3)).copy()
    ink = (255, 255, 255) if bg.mean() < 128 else (20, 20, 20)
    words = list(rng.choice(WORDS, int(rng.integers(2, 5)), replace=False))
    lines = [" ".join(words).title(), f"{rng.choice(WORDS).title()} {int(rng.integers(2001, 2026))}"]
    slide = bg.astype(np.uint8)
    _text_lines(slide, lines, ink, rng)
    fade = float(rng.uniform(0.0, 1.5))
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        k = min(1.0, t / fade) if fade > 0 else 1.0
        yield t, (slide.astype(np.float32) * k).astype(np.uint8)


def iter_near_black(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """Almost black, with sensor noise (a lens cap, a dark room, the end of a tape)."""
    w, h = size
    rng = np.random.default_rng(seed)
    level = float(rng.uniform(2, 14))
    sigma = float(rng.uniform(1, 5))
    base = np.full((h, w, 3), level, np.float32)
    for i in range(int(round(duration_s * fps))):
        yield i / fps, _sensor_noise(base, rng, sigma)


def iter_licence_card(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """A licence end card: a few lines about a Creative Commons licence on grey, as
    free films end with. The wording is made up here, from pieces chosen by ``seed``."""
    w, h = size
    rng = np.random.default_rng(seed)
    grey = float(rng.uniform(90, 170))
    card = np.full((h, w, 3), grey, np.float32)
    licence = str(rng.choice(["CC BY 4.0", "CC BY-SA 4.0", "CC BY-NC 3.0", "CC0 1.0", "CC BY-ND 4.0"]))
    maker = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} Collective"
    lines = [str(rng.choice(["This work is made available under", "Released by its authors under",
                             "You may share this recording under"])),
             f"the Creative Commons {licence} licence.",
             f"(c) {int(rng.integers(2005, 2026))} {maker}"]
    img = card.astype(np.uint8)
    _text_lines(img, lines, (255, 255, 255) if grey < 130 else (25, 25, 25), rng)
    sigma = float(rng.uniform(0.5, 3))
    for i in range(int(round(duration_s * fps))):
        yield i / fps, _sensor_noise(img.astype(np.float32), rng, sigma)


def iter_slideshow(seed: int, stills: list[Img], duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """Stills shown one after another, each for a few seconds, cut or cross-faded."""
    w, h = size
    rng = np.random.default_rng(seed)
    order = [cv2.resize(stills[int(i)], (w, h), interpolation=cv2.INTER_AREA)
             for i in rng.permutation(len(stills))]
    hold = float(rng.uniform(2.5, 5.0))
    fade = float(rng.choice([0.0, 0.5, 1.0]))
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        k, into = divmod(t, hold)
        cur = order[int(k) % len(order)]
        if fade and into < fade and k > 0:
            prev = order[int(k - 1) % len(order)]
            a = into / fade
            cur = (prev.astype(np.float32) * (1 - a) + cur.astype(np.float32) * a).astype(np.uint8)
        yield t, cur


def iter_held_then_motion(still: Img, motion: Footage, hold_s: float, duration_s: float, fps: float,
                          size: tuple[int, int]) -> FrameIter:
    """A still held ``hold_s`` seconds (a paused player, a freeze frame), then footage."""
    w, h = size
    frozen = cv2.resize(still, (w, h), interpolation=cv2.INTER_AREA)
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        yield t, frozen if t < hold_s else motion.at(t - hold_s, (w, h))


def iter_fixed_camera(seed: int, duration_s: float, fps: float, size: tuple[int, int]) -> FrameIter:
    """A camera on a tripod over a still, textured scene (a table, a desk): one small
    object moves slowly, the light flickers a little, the sensor is noisy."""
    w, h = size
    rng = np.random.default_rng(seed)
    scene = _scene(rng, w, h)[:h, :w].astype(np.float32)
    colour: tuple[int, ...] = tuple(int(c) for c in rng.integers(0, 256, 3))
    r = max(3, int(h * rng.uniform(0.02, 0.05)))
    x0, y0 = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    vx, vy = (float(v) for v in rng.uniform(-0.02, 0.02, 2) * w)
    sigma = float(rng.uniform(2, 6))
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        img = (scene * float(1.0 + 0.01 * np.sin(t * 7.0))).clip(0, 255).astype(np.uint8)
        x = int(np.clip(x0 + vx * t, r, w - r))
        y = int(np.clip(y0 + vy * t + 3 * np.sin(t), r, h - r))
        cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        yield t, _sensor_noise(img.astype(np.float32), rng, sigma)


def still_of(footage: Footage, t: float, size: tuple[int, int]) -> Img:
    """One frame of ``footage`` (a still to freeze or to put in a slideshow)."""
    return footage.at(t, size).copy()
