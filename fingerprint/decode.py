"""Video decoding: the one module that touches PyAV/FFmpeg.

Everything downstream works on the small greyscale frames this module yields. Frames
are scaled by FFmpeg's swscale while converting to grey, which is far cheaper than
converting full-size RGB frames in Python.

Untrusted files are not decoded here directly by callers; ``fingerprint.sandbox`` runs
this code in a child process with resource limits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from numpy.typing import NDArray

from vigie.errors import MediaError

# Analysis width of decoded frames; enough to find bars and inner pictures, small
# enough that scaling and hashing stay a small fraction of the decode cost.
ANALYSIS_WIDTH = 192

# FFmpeg protocols a video may be read through. A remote playlist must not make FFmpeg
# open local files or splice arbitrary inputs (concat:, subfile:, ...).
ALLOWED_PROTOCOLS = "file,http,https,tcp,tls,crypto,hls"


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    t: float
    gray: NDArray[np.uint8]
    key: bool


def _open(source: str, remote_options: dict[str, str] | None = None) -> av.container.InputContainer:
    is_url = "://" in source
    if not is_url and not os.path.exists(source):
        raise MediaError(f"no such file: {source}")
    if not is_url and os.path.isdir(source):
        raise MediaError(f"not a file: {source}")
    options = {"protocol_whitelist": ALLOWED_PROTOCOLS}
    if is_url:
        options.update({"rw_timeout": "20000000", "reconnect": "0"})
        options.update(remote_options or {})
    try:
        container = av.open(source, options=options, timeout=(20.0, 20.0) if is_url else None)
    except av.error.FileNotFoundError:
        raise MediaError(f"no such file: {source}") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable video: {source} ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise MediaError(f"no video stream in {source}")
    return container


def _reason(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return msg.splitlines()[0][:200] if msg else type(exc).__name__


def _stream_info(container: av.container.InputContainer) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    fps = float(rate) if rate else 25.0
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration:
        duration = container.duration / av.time_base
    if (duration <= 0 or not math.isfinite(duration)) and stream.frames and fps:
        duration = stream.frames / fps
    ctx = stream.codec_context
    return VideoInfo(duration_s=max(duration, 0.0), fps=fps, width=ctx.width or 0, height=ctx.height or 0)


def probe(source: str) -> VideoInfo:
    container = _open(source)
    try:
        return _stream_info(container)
    finally:
        container.close()


def _analysis_size(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        return ANALYSIS_WIDTH, ANALYSIS_WIDTH * 9 // 16
    h = max(16, int(round(ANALYSIS_WIDTH * height / width / 2)) * 2)
    return ANALYSIS_WIDTH, min(h, 4 * ANALYSIS_WIDTH)


def iter_frames(
    source: str,
    *,
    sample_fps: float | None = None,
    keyframes_only: bool = False,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Decode ``source`` and yield small greyscale frames with their timestamps.

    ``sample_fps`` keeps at most that many frames per second of video (the first frame
    at or after each sampling instant); None keeps every frame. ``keyframes_only``
    asks the decoder to skip everything but keyframes, which is several times cheaper.
    A decoding error after some good frames ends the iteration (a truncated file still
    yields what it has); one before any frame raises MediaError.
    """
    container = _open(source)
    yielded = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        info = _stream_info(container)
        width, height = _analysis_size(info.width, info.height)
        step = 1.0 / sample_fps if sample_fps else 0.0
        next_t = -math.inf
        start: float | None = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if start is None:
                    start = float(frame.time)
                t = float(frame.time) - start
                if t + 1e-6 < next_t:
                    continue
                next_t = (math.floor(t / step + 1e-6) + 1) * step if step else -math.inf
                gray = frame.to_ndarray(format="gray", width=width, height=height)
                yield Frame(t=t, gray=np.ascontiguousarray(gray), key=bool(frame.key_frame))
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    return
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            if yielded == 0:
                raise MediaError(f"cannot decode {source}: {_reason(exc)}") from None
    finally:
        container.close()
    if yielded == 0:
        raise MediaError(f"no decodable video frames in {source}")
