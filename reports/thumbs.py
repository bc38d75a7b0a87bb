"""Thumbnails of a match: one frame of the reference and one of the candidate, side by side.

Sits right after the match stage: once a Match is stored, the coordinator calls
``capture_match_frames`` with the reference file and the candidate media, and the small
JPEGs land in ``match_frames``. The daily report embeds them as ``data:`` URIs and the
review app serves them from its own origin, so staff compare the two pictures without
their browser ever touching the pirate page.

The candidate is untrusted media: it is decoded in the sandbox
(``fingerprint.sandbox.run_sandboxed``). The reference is our own file and is decoded in
process. Titles' poster frames for the public pages come from the reference too.
"""

from __future__ import annotations

import io
import math

import av
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Match, MatchFrame, ReferenceVideo, Title, TitlePoster
from fingerprint.decode import error_reason, open_media
from fingerprint.sandbox import in_sandbox, run_sandboxed
from foundation.errors import MediaError

# Wide enough to recognise a scene beside its twin, small enough that a report with a
# hundred matches stays a mailable file (about 8-15 kB per JPEG at this size).
THUMB_WIDTH = 240
POSTER_WIDTH = 640
JPEG_QUALITY = 75
# A seek lands on the keyframe before the instant; decoding forward from there is
# bounded so a file with no keyframes cannot make us decode the whole film.
MAX_FRAMES_AFTER_SEEK = 1500


def grab_jpeg(source: str, t: float, width: int = THUMB_WIDTH) -> bytes:
    """Decode the frame shown at ``t`` seconds (from the first frame) and return a JPEG.

    ``t`` past the end gives the last decodable frame. Raises MediaError.
    """
    container = open_media(source)
    try:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        target = start + max(t, 0.0)
        if stream.time_base and t > 1.0:
            try:
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            except (av.error.FFmpegError, OSError):
                container.seek(0)  # unseekable stream: decode from the start
        best = None
        try:
            for i, frame in enumerate(container.decode(stream)):
                best = frame
                if (frame.time is not None and frame.time + 1e-3 >= target) or i >= MAX_FRAMES_AFTER_SEEK:
                    break
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            if best is None:
                raise MediaError(f"cannot decode {source} at {t:.1f} s: {error_reason(exc)}") from None
        if best is None:
            raise MediaError(f"no decodable frame in {source} at {t:.1f} s")
        w, h = best.width or 1, best.height or 1
        height = max(2, int(round(width * h / w / 2)) * 2)
        rgb = best.to_ndarray(format="rgb24", width=width, height=height)
    finally:
        container.close()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def _grab_untrusted(source: str, t: float) -> bytes:
    if in_sandbox():
        # A still needs far less than a full fingerprint: tight limits.
        return run_sandboxed(grab_jpeg, source, t, label=source, cpu_s=60, wall_s=90.0)
    return grab_jpeg(source, t)


def matched_instants(match: Match) -> tuple[float, float]:
    """The (candidate, reference) instants shown: the middle of the longest matched stretch,
    mapped to the film through the match's line ``ref_t = speed * t + offset``."""
    cand_t = (match.cand_start_s + match.cand_end_s) / 2.0
    ref_t = match.speed * cand_t + match.offset_s
    if not math.isfinite(ref_t) or ref_t < match.ref_start_s - 5 or ref_t > match.ref_end_s + 5:
        ref_t = (match.ref_start_s + match.ref_end_s) / 2.0
    return cand_t, max(ref_t, 0.0)


def capture_match_frames(
    session: Session, match: Match, ref_path: str | None, media_source: str | None
) -> MatchFrame:
    """Store the reference and candidate thumbnails of ``match`` (replacing older ones).

    ``ref_path``: our reference file (default: the match's ReferenceVideo.path).
    ``media_source``: the candidate media, a file path or URL (default: Match.media_url).
    A frame that cannot be had is left empty and the reason kept in ``error``; this
    never raises for bad media, so the match stage goes on.
    """
    if ref_path is None and match.reference_id is not None:
        ref = session.get(ReferenceVideo, match.reference_id)
        ref_path = ref.path if ref else None
    media_source = media_source or match.media_url
    cand_t, ref_t = matched_instants(match)
    errors: list[str] = []
    ref_jpeg = cand_jpeg = None
    if ref_path:
        try:
            ref_jpeg = grab_jpeg(ref_path, ref_t)
        except MediaError as exc:
            errors.append(f"reference: {exc}")
    else:
        errors.append("reference: no reference file known")
    if media_source:
        try:
            cand_jpeg = _grab_untrusted(media_source, cand_t)
        except MediaError as exc:
            errors.append(f"candidate: {exc}")
    else:
        errors.append("candidate: no media URL known")
    row = session.scalar(select(MatchFrame).where(MatchFrame.match_id == match.id))
    if row is None:
        row = MatchFrame(match_id=match.id, ref_t=ref_t, cand_t=cand_t)
        session.add(row)
    row.ref_t, row.cand_t = ref_t, cand_t
    row.ref_jpeg, row.cand_jpeg = ref_jpeg, cand_jpeg
    row.error = "; ".join(errors) or None
    session.flush()
    return row


def title_poster(session: Session, title: Title) -> TitlePoster | None:
    """The title's poster frame, cut once from its first reference at a tenth of its length.

    Returns None when the title has no reference file we can read (the page shows none).
    """
    poster = session.get(TitlePoster, title.id)
    if poster is not None:
        return poster
    for ref in title.references:
        if not ref.path:
            continue
        t = max(ref.duration_s * 0.1, 0.0)
        try:
            jpeg = grab_jpeg(ref.path, t, width=POSTER_WIDTH)
        except MediaError:
            continue
        poster = TitlePoster(title_id=title.id, t_s=t, jpeg=jpeg)
        session.add(poster)
        session.flush()
        return poster
    return None
