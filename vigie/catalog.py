"""The catalogue: titles, their legitimate offers, and reference fingerprints.

Library functions over a session the caller opened; they flush but never commit.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from db.models import AltTitle, Offer, OfferKind, ReferenceVideo, Title
from fingerprint.decode import probe
from fingerprint.extract import ALGORITHM, VideoFingerprint, fingerprint_reference, sha256_file
from fingerprint.index import HashIndex
from fingerprint.hashing import MIN_QUALITY
from fingerprint.sandbox import run_sandboxed
from vigie.errors import InvalidInput, MediaError, NotFound
from vigie.netsafe import http_url


@dataclass(frozen=True)
class AddResult:
    title: Title
    reference: ReferenceVideo
    created: bool


def validate_offer_url(url: str) -> str:
    """The offer URL, stripped, if it is an http(s) URL with a host; InvalidInput if not
    (``vigie catalog add --offer`` and the admin offer form both call this)."""
    try:
        return http_url(url)
    except ValueError:
        raise InvalidInput(f"offer URL must be an http(s) URL: {url!r}") from None


def _validate_year(year: int | None) -> None:
    if year is not None and not 1870 <= year <= 2200:
        raise InvalidInput(f"year out of range: {year}")


def add_title(
    session: Session,
    video: str,
    *,
    title: str,
    year: int | None = None,
    alt_titles: Sequence[str] = (),
    offers: Sequence[str] = (),
    rights_owner: str | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> AddResult:
    """Fingerprint ``video`` and store it as a reference of ``title``.

    The same file (by SHA-256) is only ever stored once: adding it again returns the
    existing reference with ``created=False`` and changes nothing. A title with the same
    name and year gets the new reference added to it.
    """
    name = " ".join(title.split())
    if not name:
        raise InvalidInput("a title must not be empty")
    _validate_year(year)
    offer_urls = [validate_offer_url(u) for u in offers]
    if not os.path.isfile(video):
        # A FIFO or a device would block the hashing and the decoder.
        raise MediaError(f"{'not a regular file' if os.path.exists(video) else 'no such file'}: {video}")
    digest = sha256_file(video)
    existing = session.scalar(
        select(ReferenceVideo).where(ReferenceVideo.sha256 == digest, ReferenceVideo.algorithm == ALGORITHM)
    )
    if existing is not None:
        return AddResult(existing.title, existing, created=False)

    fp: VideoFingerprint
    if progress is None:
        fp = run_sandboxed(fingerprint_reference, video, label=video)
    else:
        # The child writes how far it has decoded into shared memory; the parent reports
        # it as (seconds done, duration) while it waits.
        done = multiprocessing.get_context("fork").Value("d", 0.0, lock=False)
        duration = probe(video).duration_s

        def advance(t: float) -> None:
            done.value = t

        fp = run_sandboxed(partial(fingerprint_reference, progress=advance), video, label=video,
                           on_wait=lambda: progress(done.value, duration))
        progress(duration, duration)
    if len(fp) == 0 or not np.any(fp.quality >= MIN_QUALITY):
        raise MediaError(f"{video}: no usable frames (black, flat or empty video)")

    row = session.scalar(select(Title).where(Title.title == name, Title.year == year))
    if row is None:
        row = Title(title=name, year=year, rights_owner=rights_owner)
        session.add(row)
    known = {a.name for a in row.alt_titles}
    for alt in alt_titles:
        alt = " ".join(alt.split())
        if alt and alt not in known and alt != name:
            row.alt_titles.append(AltTitle(name=alt))
            known.add(alt)
    known_offers = {o.url for o in row.offers}
    for url in offer_urls:
        if url not in known_offers:
            row.offers.append(Offer(url=url, provider=urlsplit(url).hostname, kind=OfferKind.VOD_RENTAL))
            known_offers.add(url)
    ref = ReferenceVideo(
        sha256=digest,
        path=os.path.abspath(video),
        duration_s=fp.info.duration_s,
        fps=fp.info.fps,
        width=fp.info.width,
        height=fp.info.height,
        size_bytes=os.path.getsize(video),
        algorithm=fp.algorithm,
        frame_count=len(fp),
        # The whole-picture hashes, then the core hashes (see extract.ALGORITHM).
        hashes=np.concatenate([fp.hashes, fp.core]).astype("<u8").tobytes(),
        times=fp.times.astype("<f4").tobytes(),
    )
    row.references.append(ref)
    session.flush()
    return AddResult(row, ref, created=True)


def get_title(session: Session, title_id: int) -> Title:
    row = session.get(Title, title_id)
    if row is None:
        raise NotFound(f"no title with id {title_id}")
    return row


def list_titles(session: Session) -> list[Title]:
    return list(
        session.scalars(
            select(Title)
            .options(selectinload(Title.alt_titles), selectinload(Title.offers), selectinload(Title.references))
            .order_by(Title.id)
        )
    )


def title_json(t: Title) -> dict[str, object]:
    return {
        "id": t.id,
        "title": t.title,
        "year": t.year,
        "alt_titles": [a.name for a in t.alt_titles],
        "offers": [{"url": o.url, "provider": o.provider, "kind": o.kind.value, "territory": o.territory} for o in t.offers],
        "references": [
            {
                "id": r.id,
                "sha256": r.sha256,
                "duration_s": round(r.duration_s, 3),
                "fps": round(r.fps, 3),
                "width": r.width,
                "height": r.height,
                "size_bytes": r.size_bytes,
                "hashes": r.frame_count,
                "algorithm": r.algorithm,
            }
            for r in t.references
        ],
    }


def catalogue_version(session: Session) -> str:
    """A key that changes whenever a reference is added or removed (cheap: no blobs read)."""
    rows = session.execute(
        select(ReferenceVideo.id, ReferenceVideo.frame_count).where(ReferenceVideo.algorithm == ALGORITHM)
        .order_by(ReferenceVideo.id)
    ).all()
    digest = hashlib.sha256(ALGORITHM.encode())
    for r in rows:
        digest.update(f"{r.id}:{r.frame_count};".encode())
    return digest.hexdigest()[:24]


def load_index(session: Session, cache_dir: str | None = None) -> tuple[HashIndex, dict[int, int]]:
    """The index over every reference of the current algorithm, and ref id -> title id.

    With ``cache_dir``, the built index is kept there as a file named after the
    catalogue's version; later loads memory-map it instead of rebuilding (a 10 M-hash
    index takes seconds to build, milliseconds to map). A new version is written when
    the catalogue changes; the files of older versions are removed.
    """
    titles = dict(session.execute(
        select(ReferenceVideo.id, ReferenceVideo.title_id).where(ReferenceVideo.algorithm == ALGORITHM)).all())
    if cache_dir:
        path = os.path.join(cache_dir, f"index-{catalogue_version(session)}")
        if os.path.exists(path):
            try:
                return HashIndex.load(path), titles
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is rebuilt below
    rows = session.execute(
        select(ReferenceVideo.id, ReferenceVideo.title_id, ReferenceVideo.hashes, ReferenceVideo.times).where(
            ReferenceVideo.algorithm == ALGORITHM
        )
    ).all()
    def parts(r: Any) -> Iterator[tuple[int, NDArray[np.uint64], NDArray[np.float32], int]]:
        times = np.frombuffer(r.times, dtype="<f4")
        hashes = np.frombuffer(r.hashes, dtype="<u8").astype(np.uint64)
        n = len(times)
        yield r.id, hashes[:n], times, 0
        yield r.id, hashes[n : 2 * n], times, 1

    index = HashIndex.build(part for r in rows for part in parts(r))
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        for old in os.listdir(cache_dir):
            # Another process's index being written (``.tmp<pid>``) is not ours to remove.
            if old.startswith("index-") and ".tmp" not in old and old != os.path.basename(path):
                shutil.rmtree(os.path.join(cache_dir, old), ignore_errors=True)
        index.save(path)
    return index, {r.id: r.title_id for r in rows}


def stale_references(session: Session) -> int:
    """References fingerprinted by an older algorithm: the index ignores them until their
    file is added again (``vigie catalog add`` fingerprints it with the current one)."""
    return int(session.scalar(select(func.count()).select_from(ReferenceVideo)
                              .where(ReferenceVideo.algorithm != ALGORITHM)) or 0)
