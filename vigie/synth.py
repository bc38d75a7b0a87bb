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
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        src_fps = float(s.average_rate or 25)
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
        t0 = None
        last_t = 0.0
        for fr in c.decode(s):
            if fr.time is None:
                continue
            t0 = fr.time if t0 is None else t0
            t = fr.time - t0 - start_s
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
