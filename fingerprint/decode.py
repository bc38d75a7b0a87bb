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
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from foundation.errors import FetchError, MediaError, UnsafeAddress
from foundation.netsafe import MediaOpener, media_loopback_allowed

# Analysis width of decoded frames; enough to find bars and inner pictures, small
# enough that scaling and hashing stay a small fraction of the decode cost.
ANALYSIS_WIDTH = 192

# FFmpeg protocols a video may be read through. A remote video is read by
# ``foundation.netsafe.MediaOpener`` (PyAV's io_open): every URL FFmpeg opens for it - the
# video, a playlist, its segments and keys - is checked and read over a connection to
# the checked address, so FFmpeg needs no protocol of its own ("data" stands for none:
# it reads nothing outside the string). A local file is read from disk only: a local
# playlist must not make FFmpeg fetch anything or splice other inputs (concat:,
# subfile:, ...).
REMOTE_PROTOCOLS = "data"
# Bytes per HTTP range request when reading a remote video for seeking. A 720p keyframe
# takes one or two: on the 10-minute bench film, 64 KB read 4.6 % of the file where
# 128 KB read 5.4 % and 32 KB 4.0 % (more round trips for little saving).
HTTP_REQUEST_SIZE = 64 * 1024
LOCAL_PROTOCOLS = "file,crypto,hls"
# Connect and read timeout for remote media, per request.
HTTP_TIMEOUT_S = 20.0


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


def open_media(source: str, *, ranged: bool = False) -> av.container.InputContainer:
    is_url = "://" in source
    if not is_url and not os.path.exists(source):
        raise MediaError(f"no such file: {source}")
    if not is_url and not os.path.isfile(source):
        # A FIFO or a device would block FFmpeg (a FIFO with no writer: for ever).
        raise MediaError(f"not a regular file: {source}")
    options = {"protocol_whitelist": REMOTE_PROTOCOLS if is_url else LOCAL_PROTOCOLS}
    opener = None
    if is_url:
        # Ranged: bounded range requests for seeking, so a seek reads about one
        # request's worth of bytes, not the rest of the file. Only for seeking: a
        # whole-file read gains nothing from them.
        opener = MediaOpener(allow_loopback=media_loopback_allowed(source), timeout=HTTP_TIMEOUT_S,
                             request_size=HTTP_REQUEST_SIZE if ranged else None)
        # The HLS demuxer would reuse a segment's connection as FFmpeg's own HTTP client
        # (an assertion, SIGABRT, on our I/O): a new open for every segment instead.
        options["http_persistent"] = "0"
    try:
        container = av.open(source, options=options, io_open=opener,
                            timeout=(HTTP_TIMEOUT_S, HTTP_TIMEOUT_S) if is_url else None)
    except av.error.FileNotFoundError:
        raise MediaError(f"no such file: {source}") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable video: {source} ({error_reason(exc)})") from None
    except UnsafeAddress as exc:
        raise FetchError(str(exc)) from None
    if not container.streams.video:
        container.close()
        raise MediaError(f"no video stream in {source}")
    return container


def error_reason(exc: BaseException) -> str:
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
    # Ranged: reading the header must not start streaming the whole remote file.
    container = open_media(source, ranged=True)
    try:
        return _stream_info(container)
    finally:
        container.close()


def _sampled(times: list[float], sample_fps: float | None) -> list[float]:
    """The times ``iter_frames`` keeps of frames at ``times`` (in order): at most
    ``sample_fps`` a second of video, the first at or after each sampling instant,
    counted from the first."""
    step = 1.0 / sample_fps if sample_fps else 0.0
    kept: list[float] = []
    next_t = -math.inf
    for raw in times:
        t = raw - times[0]
        if t + 1e-6 < next_t:
            continue
        next_t = (math.floor(t / step + 1e-6) + 1) * step if step else -math.inf
        kept.append(t)
    return kept


# A local video whose packets total at most this many bytes is read from disk once for
# a query: the packets demuxed to count its keyframes (``probe_keyframes``) are kept and
# decoded from memory (``iter_frames(read=...)``), not demuxed again from a second
# opening. 64 MB is minutes of a typical copy; a larger file is demuxed twice as before.
READ_ONCE_MAX_BYTES = 64 << 20


@dataclass
class ReadVideo:
    """A video opened and demuxed once: its container (open), stream and packets, the
    last of them the end-of-stream packet that flushes the decoder when demuxing ended
    cleanly. Owned by whoever decodes it (``iter_frames`` closes it)."""

    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    packets: list[av.Packet]

    def close(self) -> None:
        self.packets = []
        self.container.close()  # PyAV closes once; later calls do nothing


def probe_keyframes(source: str, sample_fps: float | None, max_duration_s: float, *, keep: bool = False
                    ) -> tuple[VideoInfo, list[float] | None, ReadVideo | None]:
    """``probe``, and for a video of at most ``max_duration_s`` the times of the keyframes
    ``iter_frames(keyframes_only=True, sample_fps=...)`` would yield at most, read from
    the packets' flags alone: demuxing without decoding, a few milliseconds for a short
    file, where decoding its keyframes costs several times that. None for a longer
    video (its keyframes are not read). With ``keep``, the packets read, for
    ``iter_frames`` to decode (when they total at most READ_ONCE_MAX_BYTES), else None."""
    container = open_media(source)
    kept: ReadVideo | None = None
    try:
        info = _stream_info(container)
        if info.duration_s > max_duration_s:
            return info, None, None
        stream = container.streams.video[0]
        base = stream.time_base or Fraction(1, 1000)
        times: list[float] = []
        packets: list[av.Packet] | None = [] if keep else None
        size = 0
        try:
            for packet in container.demux(stream):
                if packet.pts is not None and packet.is_keyframe:
                    times.append(float(packet.pts * base))
                if packets is not None:
                    size += packet.size
                    packets.append(packet)
                    if size > READ_ONCE_MAX_BYTES:
                        packets = None
        except (av.error.FFmpegError, ValueError, OSError):
            pass  # a damaged tail: the keyframes before it are what a decode would see
        if packets is not None:
            kept = ReadVideo(container, stream, packets)
        return info, _sampled(sorted(times), sample_fps) if times else [], kept
    finally:
        if kept is None:
            container.close()


def _analysis_size(width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        return ANALYSIS_WIDTH, ANALYSIS_WIDTH * 9 // 16
    h = max(16, int(round(ANALYSIS_WIDTH * height / width / 2)) * 2)
    return ANALYSIS_WIDTH, min(h, 4 * ANALYSIS_WIDTH)


class _Grey:
    """Scales decoded frames to small greyscale arrays, reusing one swscale context."""

    def __init__(self, info: VideoInfo) -> None:
        self.width, self.height = _analysis_size(info.width, info.height)
        self.reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> NDArray[np.uint8]:
        small = self.reformatter.reformat(frame, self.width, self.height, "gray", interpolation="AREA")
        return np.ascontiguousarray(small.to_ndarray())


# H.264 profiles without CABAC or B-frames: the cheapest frames to decode, too cheap for
# frame threading, whose hand-off of every frame between threads then costs more than
# it overlaps. Measured on 2 cores, 20 s clips from 240p to 1080p: slice threading (one
# thread unless the stream has slices) decoded them 10-25 % faster than frame threading
# (and the gap grows when the other core is busy), while H.264 High or Main streams
# with B-frames, MPEG-4 and VP8 at 640x360 and up decoded up to 40 % faster with frames.
# Keyframes alone leave frame threads nothing to overlap: slices decoded them twice as
# fast (median over the development corpus).
CHEAP_PROFILES = frozenset({"Baseline", "Constrained Baseline"})


def cheap_frames(stream: av.video.stream.VideoStream) -> bool:
    """Whether the stream's frames are too cheap to decode for frame threading to pay."""
    ctx = stream.codec_context
    return ctx.name == "h264" and ctx.profile in CHEAP_PROFILES


def iter_frames(
    source: str,
    *,
    sample_fps: float | None = None,
    keyframes_only: bool = False,
    fast: bool = False,
    max_frames: int | None = None,
    read: ReadVideo | None = None,
) -> Iterator[Frame]:
    """Decode ``source`` and yield small greyscale frames with their timestamps.

    ``sample_fps`` keeps at most that many frames per second of video (the first frame
    at or after each sampling instant); None keeps every frame. Frames not kept are
    decoded (the codec needs them) but never scaled or copied. ``keyframes_only`` asks
    the decoder to skip everything but keyframes, which is many times cheaper. ``fast``
    skips non-reference frames (B-frames) and the deblocking filter: a third cheaper,
    and invisible to a 32x32 hash.
    A decoding error after some good frames ends the iteration (a truncated file still
    yields what it has); one before any frame raises MediaError. ``read``: the video's
    packets already demuxed (``probe_keyframes(keep=True)``), decoded instead of
    opening ``source`` again; closed when done.
    """
    container = read.container if read is not None else open_media(source)
    yielded = 0
    try:
        stream = container.streams.video[0]
        if read is not None and keyframes_only:
            # The decoder would skip the others (skip_frame NONKEY) one call each: they
            # are not given to it (the end-of-stream packet is kept: it flushes).
            read.packets = [p for p in read.packets if p.is_keyframe or not p.size]
        split = _split_point(read.packets, stream) if read is not None and not keyframes_only else None
        settings = _Settings(
            "SLICE" if keyframes_only or split is not None or cheap_frames(stream) else "AUTO",
            "NONKEY" if keyframes_only else "NONREF" if fast else None,
            {"skip_loop_filter": "all"} if fast and not keyframes_only else None)
        settings.apply(stream)
        info = _stream_info(container)
        step = 1.0 / sample_fps if sample_fps else 0.0
        decoded = (_decode(container, stream, read) if split is None or read is None
                   else _decode_split(source, stream, read.packets, split, settings, step, info))
        try:
            for t, key, picture in _taken(decoded, step):
                gray = picture() if callable(picture) else picture
                if gray is None:  # _decode_split keeps every frame the sampling can take
                    raise RuntimeError(f"{source}: a sampled frame was not kept by the second decoder")
                yield Frame(t=t, gray=gray, key=key)
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    return
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            if yielded == 0:
                raise MediaError(f"cannot decode {source}: {error_reason(exc)}") from None
    finally:
        if read is not None:
            read.close()
        else:
            container.close()
    if yielded == 0:
        raise MediaError(f"no decodable video frames in {source}")


Decoded = tuple[float | None, bool, Any]  # time, key frame, a picture (see iter_frames)


def _taken(items: Iterable[Decoded], step: float) -> Iterator[tuple[float, bool, Any]]:
    """The decoded items (in time order) that ``iter_frames``'s sampling takes, with
    their times from the first item's: the first at or after each instant, every
    ``step`` s from there (every item when ``step`` is 0)."""
    next_t = -math.inf
    start: float | None = None
    for time_s, key, picture in items:
        if time_s is None:
            continue
        if start is None:
            start = time_s
        t = time_s - start
        if t + 1e-6 < next_t:
            continue
        next_t = (math.floor(t / step + 1e-6) + 1) * step if step else -math.inf
        yield t, key, picture


def _may_be_taken(t: float, last: float | None, origin: float, step: float) -> bool:
    """Whether a frame at ``t``, after one at ``last`` (None: the first of its run of
    packets), may be taken by the sampling from ``origin``: it passes a sampling instant,
    SPLIT_TIME_MARGIN_S either side."""
    return (last is None or not step
            or math.floor((t - origin + 1e-6 + SPLIT_TIME_MARGIN_S) / step)
            > math.floor((last - origin - SPLIT_TIME_MARGIN_S) / step))


@dataclass
class _Settings:
    """How a stream is decoded: threads, frames skipped, codec options."""

    thread_type: str
    skip_frame: str | None
    options: dict[str, str] | None

    def apply(self, stream: av.video.stream.VideoStream) -> None:
        stream.thread_type = self.thread_type
        if self.skip_frame:
            stream.codec_context.skip_frame = self.skip_frame
        if self.options:
            stream.codec_context.options = dict(self.options)


def _frames_of(frames: Iterable[av.VideoFrame], grey: _Grey) -> Iterator[Decoded]:
    for frame in frames:
        yield (None if frame.time is None else float(frame.time), bool(frame.key_frame), partial(grey, frame))


def _packet_frames(stream: av.video.stream.VideoStream, packets: list[av.Packet]) -> Iterator[av.VideoFrame]:
    """Frames of packets already read, the decoder flushed at the end (unless the last
    packet is the end-of-stream one that does it)."""
    for packet in packets:
        yield from stream.decode(packet)
    if not packets or packets[-1].size:
        # An empty packet flushes; with the stream's time base, so that the frames it
        # lets out have their times (``decode(None)`` leaves them without).
        end = av.Packet()
        end.time_base = stream.time_base
        yield from stream.decode(end)


def _decode(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
            read: ReadVideo | None) -> Iterator[Decoded]:
    """The stream's frames: demuxed and decoded, or decoded from packets already read."""
    grey = _Grey(_stream_info(container))
    yield from _frames_of(container.decode(stream) if read is None else _packet_frames(stream, read.packets), grey)


# Decoding in two halves at once. With a video's packets in memory, a second decoder
# takes the packets from a keyframe near the middle on, in a thread of its own (FFmpeg
# decodes without Python's lock), while the first decodes those before it: on two cores
# the decode takes the longer half's time, where slice threading keeps one core busy
# and frame threading spends much of the other on handing frames over. Only where the
# halves are independent, so that every frame decodes as it would in one pass: the
# keyframe starts a picture group that needs nothing before it (an H.264 IDR picture;
# any keyframe of the codecs of SPLIT_CODECS), no packet before it is shown after it and
# none after it before it. Each half at least SPLIT_MIN_PACKETS (two seconds at 24 fps):
# a shorter one does not pay for the second opening (about 2 ms).
SPLIT_CODECS = frozenset({"h264", "vp8", "vp9", "mpeg4", "mpeg2video", "mpeg1video"})
SPLIT_MIN_PACKETS = 48
# How far before a frame's time the second half looks for a sampling instant, so that
# it keeps (scaled) every frame the sampling may take: more than any rounding of times.
SPLIT_TIME_MARGIN_S = 1e-3


def _split_point(packets: list[av.Packet], stream: av.video.stream.VideoStream) -> int | None:
    """The index of the packet where a second decoder can start (see SPLIT_CODECS), the
    keyframe nearest the middle that qualifies; None when none does."""
    ctx = stream.codec_context
    n = len(packets)
    if ctx.name not in SPLIT_CODECS or n < 2 * SPLIT_MIN_PACKETS:
        return None
    pts = np.array([np.nan if p.pts is None else float(p.pts) for p in packets])
    before = np.fmax.accumulate(np.concatenate([[-np.inf], pts[:-1]]))  # latest shown before i
    after = np.fmin.accumulate(pts[::-1])[::-1]  # earliest shown from i on
    candidates = [i for i in range(SPLIT_MIN_PACKETS, n - SPLIT_MIN_PACKETS + 1)
                  if packets[i].is_keyframe and not np.isnan(pts[i]) and before[i] < pts[i] and after[i] == pts[i]]
    for i in sorted(candidates, key=lambda i: abs(2 * i - n)):
        if ctx.name != "h264" or _h264_idr(bytes(packets[i]), ctx.extradata):
            return i
    return None


def _h264_idr(data: bytes, extradata: bytes | None) -> bool:
    """Whether an H.264 packet holds an IDR picture (NAL unit type 5), its NAL units
    length-prefixed (avcC extradata, as in MP4 and Matroska) or after start codes."""
    if extradata and extradata[0] == 1 and len(extradata) > 4:
        size = (extradata[4] & 3) + 1
        i = 0
        while i + size < len(data):
            length = int.from_bytes(data[i : i + size], "big")
            i += size
            if data[i] & 0x1F == 5:
                return True
            i += length
        return False
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 3:
        if data[i + 3] & 0x1F == 5:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


def _decode_split(source: str, stream: av.video.stream.VideoStream, packets: list[av.Packet], split: int,
                  settings: _Settings, step: float, info: VideoInfo) -> Iterator[Decoded]:
    """The frames of ``packets``, the first ``split`` decoded here and the rest by a
    second decoder in a thread. The second half's frames are scaled there, those the
    sampling (every ``step`` s from the first frame's time) may take: its first frame
    and each that passes a sampling instant (SPLIT_TIME_MARGIN_S either side)."""
    base = stream.time_base or Fraction(1, 1000)
    shown = [float(p.pts * base) for p in packets[:split] if p.pts is not None]
    origin = min(shown) if shown else 0.0
    tail: list[Decoded] = []
    failure: list[BaseException] = []

    def second(every: bool) -> None:
        try:
            other = open_media(source)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(exc)
            return
        try:
            st = other.streams.video[0]
            settings.apply(st)
            grey = _Grey(info)
            last: float | None = None
            for frame in _packet_frames(st, packets[split:]):
                if frame.time is None:
                    tail.append((None, False, None))
                    continue
                t = float(frame.time)
                keep = every or _may_be_taken(t, last, origin, step)
                tail.append((t, bool(frame.key_frame), grey(frame) if keep else None))
                last = t
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(exc)
        finally:
            other.close()

    worker = threading.Thread(target=second, args=(False,), name="vigie-decode-half", daemon=True)
    worker.start()
    first: float | None = None
    try:
        for item in _frames_of(_packet_frames(stream, packets[:split]), _Grey(info)):
            if first is None and item[0] is not None:
                first = item[0]
            yield item
    finally:
        worker.join()
    if first is not None and first != origin:
        # The first half began elsewhere than its packets said, so the second half kept
        # frames for another origin: decode it again here, scaling every frame.
        tail.clear()
        failure.clear()
        second(True)
    yield from tail
    if failure:
        raise failure[0]


# Decoding in rounds (``decode_in_rounds``). A video identify decodes in full (too few
# keyframes for a first look of its own) is decoded half at first: the first half of
# each decoder's packets (both decoders at once when the packets are split between two,
# as in ``_decode_split``), each decoder's state then kept. When those frames already
# confirm a film (many copies of the whole picture: 90 of the bench's 322 queries), the
# rest is never decoded; else each decoder goes on from where it stopped, and the frames
# of both rounds are those a decode in one go would give.


class _Lane:
    """One decoder of a decode in rounds: fed a run of packets at a time, it keeps
    (scaled) the frames the sampling may take, as ``_decode_split``'s second half does."""

    def __init__(self, stream: av.video.stream.VideoStream, info: VideoInfo, origin: float, step: float) -> None:
        self.stream, self.grey, self.origin, self.step = stream, _Grey(info), origin, step
        self.last: float | None = None
        self.out: list[Decoded] = []
        self.failure: BaseException | None = None

    def feed(self, packets: list[av.Packet], flush: bool) -> None:
        if self.failure is not None:
            return
        try:
            for frame in _packet_frames(self.stream, packets) if flush else self._frames(packets):
                if frame.time is None:
                    self.out.append((None, False, None))
                    continue
                t = float(frame.time)
                keep = _may_be_taken(t, self.last, self.origin, self.step)
                self.out.append((t, bool(frame.key_frame), self.grey(frame) if keep else None))
                self.last = t
        except Exception as exc:  # noqa: BLE001 - the caller decodes again in one go (Ctrl-C goes through)
            self.failure = exc

    def _frames(self, packets: list[av.Packet]) -> Iterator[av.VideoFrame]:
        for packet in packets:
            yield from self.stream.decode(packet)


def _sampled_frames(items: list[Decoded], step: float, *, exact: bool) -> list[Frame] | None:
    """``iter_frames``'s sampling over decoded items in time order (``_taken``). None
    when a frame it takes was not kept by the lanes (``exact``; else it is left out)."""
    out: list[Frame] = []
    for t, key, picture in _taken(items, step):
        if picture is None:
            if exact:
                return None
            continue
        out.append(Frame(t=t, gray=picture, key=key))
    return out


def decode_in_rounds(source: str, read: ReadVideo, *, sample_fps: float | None, fast: bool = False
                     ) -> Iterator[list[Frame]]:
    """``iter_frames(source, sample_fps=..., fast=..., read=read)``'s frames, in two rounds
    (see "Decoding in rounds" above): first the sampled frames of the first half of each
    decoder's packets, then, if the caller asks for more, all the frames, the same as
    ``iter_frames`` gives. Where the rounds cannot give those (a damaged stream, times
    other than the packets said), the second round decodes again in one go. Closes
    ``read`` when done (or when the caller stops)."""
    container = read.container
    try:
        stream = container.streams.video[0]
        packets = [p for p in read.packets if p.size]  # the lanes flush at the end themselves
        split = _split_point(packets, stream)
        settings = _Settings("SLICE" if split is not None or cheap_frames(stream) else "AUTO",
                             "NONREF" if fast else None, {"skip_loop_filter": "all"} if fast else None)
        settings.apply(stream)
        info = _stream_info(container)
        step = 1.0 / sample_fps if sample_fps else 0.0
        base = stream.time_base or Fraction(1, 1000)
        shown = [float(p.pts * base) for p in packets if p.pts is not None]
        origin = min(shown) if shown else 0.0
        cuts = [0, len(packets)] if split is None else [0, split, len(packets)]
        lanes: list[_Lane] = [_Lane(stream, info, origin, step)]
        others: list[av.container.InputContainer] = []
        try:
            if split is not None:
                other = open_media(source)
                others.append(other)
                st = other.streams.video[0]
                settings.apply(st)
                lanes.append(_Lane(st, info, origin, step))
            halves = [(cuts[i], (cuts[i] + cuts[i + 1]) // 2, cuts[i + 1]) for i in range(len(lanes))]
            for r in range(2):
                runs = [(lane, packets[a:m] if r == 0 else packets[m:b], r == 1)
                        for lane, (a, m, b) in zip(lanes, halves)]
                threads = [threading.Thread(target=lane.feed, args=(run, flush), name="vigie-decode-half", daemon=True)
                           for lane, run, flush in runs[1:]]
                for t in threads:
                    t.start()
                try:
                    lane, run, flush = runs[0]
                    lane.feed(run, flush)
                finally:
                    for t in threads:
                        t.join()
                failed = any(lane.failure is not None for lane in lanes)
                items = [item for lane in lanes for item in lane.out]
                first = next((t for t, _, _ in items if t is not None), None)
                if r == 0:
                    yield [] if failed or first is None else _sampled_frames(items, step, exact=False) or []
                    if failed:
                        break
                    continue
                whole = None if failed or first != origin else _sampled_frames(items, step, exact=True)
                if not whole:
                    break
                yield whole
                return
        finally:
            for other in others:
                other.close()
    finally:
        read.close()
    # The rounds could not give what one go does: decode in one go.
    yield list(iter_frames(source, sample_fps=sample_fps, fast=fast))


def iter_seek_frames(source: str, times: list[float]) -> Iterator[Frame]:
    """One frame near each of ``times``: seek to the keyframe at or before it, decode it.

    Reading a long video this way touches a small share of its bytes (over HTTP, each
    keyframe is fetched with a bounded range request), which is what makes identifying
    a full-length remote copy cheap. Only the keyframe's own packet is demuxed and
    decoded. Frames are yielded in time order, without repeats.
    """
    container = open_media(source, ranged=True)
    yielded = 0
    try:
        stream = container.streams.video[0]
        # No frame threading: it would hold packets back before returning a frame.
        stream.thread_type = "SLICE"
        ctx = stream.codec_context
        info = _stream_info(container)
        grey = _Grey(info)
        base = stream.time_base or Fraction(1, 1000)
        origin = float(stream.start_time * base) if stream.start_time is not None else 0.0
        seen: set[int] = set()
        last_error: BaseException | None = None
        for target in times:
            try:
                container.seek(int((target + origin) / base), stream=stream, backward=True, any_frame=False)
                for packet in container.demux(stream):
                    if packet.pts is None or not packet.is_keyframe:
                        if packet.size == 0:
                            break  # end of file
                        continue
                    if packet.pts in seen:
                        break
                    seen.add(packet.pts)
                    frames = list(ctx.decode(packet)) or list(ctx.decode(None))
                    ctx.flush_buffers()
                    for frame in frames[:1]:
                        t = float(packet.pts * base) - origin
                        yield Frame(t=t, gray=grey(frame), key=True)
                        yielded += 1
                    break
            except (av.error.FFmpegError, ValueError, OSError) as exc:
                last_error = exc
                continue
    finally:
        container.close()
    if yielded == 0:
        why = f": {error_reason(last_error)}" if last_error else ""
        raise MediaError(f"no decodable video frames in {source}{why}")
