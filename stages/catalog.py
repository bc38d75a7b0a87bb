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
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from db.models import (
    AllowedReason,
    AltTitle,
    AuditLog,
    Candidate,
    CandidateStatus,
    Decision,
    Match,
    ReferenceVideo,
    Title,
    TitleRights,
)
from foundation.errors import InvalidInput, MediaError, NotFound
from foundation.netsafe import http_url
from stages.holders import OfferSpec, add_offers, get_holder, grant_rights, holder_for_owner, territory

if TYPE_CHECKING:  # numpy and the fingerprint modules (PyAV) load where they are used:
    import numpy as np  # listing the catalogue needs neither

    from numpy.typing import NDArray

    from fingerprint.extract import VideoFingerprint
    from fingerprint.index import HashIndex


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


def _existing(session: Session, video: str) -> tuple[str, ReferenceVideo | None]:
    """The SHA-256 of ``video`` and the reference already stored for it, if any."""
    from fingerprint.extract import ALGORITHM, sha256_file

    if not os.path.isfile(video):
        # A FIFO or a device would block the hashing and the decoder.
        raise MediaError(f"{'not a regular file' if os.path.exists(video) else 'no such file'}: {video}")
    digest = sha256_file(video)
    return digest, session.scalar(
        select(ReferenceVideo).where(ReferenceVideo.sha256 == digest, ReferenceVideo.algorithm == ALGORITHM)
    )


def _fingerprint(video: str, progress: Callable[[float, float], None] | None) -> VideoFingerprint:
    """The reference fingerprint of ``video``, decoded in the sandbox."""
    import numpy as np

    from fingerprint.decode import probe
    from fingerprint.extract import fingerprint_reference
    from fingerprint.hashing import MIN_QUALITY
    from fingerprint.sandbox import run_sandboxed

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
    return fp


def _reference_row(video: str, digest: str, fp: VideoFingerprint, flags: NDArray[np.uint8]) -> ReferenceVideo:
    import numpy as np

    return ReferenceVideo(
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
        flags=np.asarray(flags, dtype=np.uint8).tobytes(),
    )


def _not_allowed_yet(existing: ReferenceVideo, video: str) -> None:
    if existing.allowed_reason is not None:
        raise InvalidInput(f"{video} is allowed material ({existing.allowed_reason.value}, reference "
                           f"{existing.id}), not a film: remove it from allowed material first")


def add_title(
    session: Session,
    video: str,
    *,
    title: str,
    year: int | None = None,
    alt_titles: Sequence[str] = (),
    offers: Sequence[str | OfferSpec] = (),
    rights_owner: str | None = None,
    holder: str | None = None,
    rights_territory: str = "*",
    progress: Callable[[float, float], None] | None = None,
    published: bool | None = None,
    publish_from: date | None = None,
) -> AddResult:
    """Fingerprint ``video`` and store it as a reference of ``title``.

    The same file (by SHA-256) is only ever stored once: adding it again returns the
    existing reference with ``created=False`` and changes nothing. A title with the same
    name and year gets the new reference added to it.

    Frames of the new reference that are near-identical to frames of another title's
    film (a producer's logo, a licence card) are marked shared, in both references
    (``mark_shared``): they count for nothing as evidence on their own.

    ``published``/``publish_from`` set the title's public page (``set_published``); a new
    title is unpublished unless told otherwise.

    ``holder`` (a registered holder's name or id) gets rights on the title in
    ``rights_territory``; without it, ``rights_owner`` names a holder, registered on the
    spot when new, with those rights. A title with no holder is never notified.
    """
    name = " ".join(title.split())
    if not name:
        raise InvalidInput("a title must not be empty")
    _validate_year(year)
    specs = [(OfferSpec(o) if isinstance(o, str) else o).checked() for o in offers]
    rights_territory = territory(rights_territory)
    owner = get_holder(session, holder) if holder else holder_for_owner(session, rights_owner) \
        if rights_owner and rights_owner.strip() else None
    digest, existing = _existing(session, video)
    if existing is not None:
        _not_allowed_yet(existing, video)
        assert existing.title is not None  # a film reference always has its title
        return AddResult(existing.title, existing, created=False)
    fp = _fingerprint(video, progress)
    # The catalogue as it was before this reference: what its frames may be shared with.
    index, ref_titles = load_index(session)

    row = session.scalar(select(Title).where(Title.title == name, Title.year == year))
    if row is None:
        row = Title(title=name, year=year, rights_owner=owner.legal_name if owner else rights_owner)
        session.add(row)
    if owner is not None:
        grant_rights(row, owner, rights_territory)
    known = {a.name for a in row.alt_titles}
    for alt in alt_titles:
        alt = " ".join(alt.split())
        if alt and alt not in known and alt != name:
            row.alt_titles.append(AltTitle(name=alt))
            known.add(alt)
    add_offers(row, specs)
    session.flush()
    ref = _reference_row(video, digest, fp, mark_shared(session, fp, row.id, index, ref_titles))
    row.references.append(ref)
    if published is not None or publish_from is not None:
        _publication(row, published, publish_from)
    session.flush()
    return AddResult(row, ref, created=True)


def _publication(row: Title, published: bool | None, publish_from: date | None) -> None:
    if published is not None:
        row.published = published
    if publish_from is not None:
        row.published = True if published is None else row.published
        row.publish_from = publish_from


def set_published(session: Session, title_id: int, published: bool, publish_from: date | None = None,
                  *, actor: str = "cli") -> Title:
    """Publish (from ``publish_from`` on, when given) or unpublish a title's public page,
    audited. Public pages (``webapp.public``) and the static export show only published
    titles whose date has come: a film watched for leaks before its release stays
    unlisted. Called by ``vigie catalog publish|unpublish`` and the titles admin page."""
    from db.models import AuditLog

    row = session.get(Title, title_id)
    if row is None:
        raise NotFound(f"no title {title_id}")
    before = {"published": row.published, "publish_from": row.publish_from.isoformat() if row.publish_from else None}
    row.published = published
    row.publish_from = publish_from if published else None
    session.add(AuditLog(actor=actor, action="title.publish" if published else "title.unpublish",
                         object_type="title", object_id=row.id, before=before,
                         after={"published": row.published,
                                "publish_from": row.publish_from.isoformat() if row.publish_from else None}))
    session.flush()
    return row


def _reference_flags(ref: Any) -> NDArray[np.uint8]:
    """A stored reference's frame flags: its blob, or for a reference made before flags
    were stored, the static marks computed from its whole-picture hashes."""
    import numpy as np

    from fingerprint.extract import static_flags

    times = np.frombuffer(ref.times, dtype="<f4")
    if ref.flags is not None and len(ref.flags) == len(times):
        return np.frombuffer(ref.flags, dtype=np.uint8)
    hashes = np.frombuffer(ref.hashes, dtype="<u8").astype(np.uint64)[: len(times)]
    return np.asarray(static_flags(times, hashes), dtype=np.uint8)


def _own_flags(fp: VideoFingerprint) -> NDArray[np.uint8]:
    """The static marks of a new reference: as fingerprinted, or computed when the
    fingerprint carries none (one of another shape)."""
    import numpy as np

    from fingerprint.extract import static_flags

    if len(fp.flags) == len(fp):
        return np.asarray(fp.flags, dtype=np.uint8)
    return np.asarray(static_flags(fp.times, fp.hashes), dtype=np.uint8)


def mark_shared(session: Session, fp: VideoFingerprint, title_id: int, index: HashIndex,
                ref_titles: dict[int, int]) -> NDArray[np.uint8]:
    """The flags of a new film reference of ``title_id``: its own (static) marks, plus
    FLAG_SHARED on the frames near-identical to frames of other titles' films in
    ``index``; those frames of the other references are marked shared in the database
    too. Allowed material is never marked shared and never makes a film's frames shared:
    a trailer is the film's own pictures, not another title's."""
    import numpy as np

    from fingerprint.index import FLAG_SHARED
    from fingerprint.matching import shared_frames

    flags = _own_flags(fp).copy()
    if len(index) == 0:
        return flags
    mine, others = shared_frames(fp.hashes, title_id, index, ref_titles)
    flags[np.asarray(mine, dtype=bool)] |= FLAG_SHARED
    for ref_id, times in others.items():
        if ref_id in index.allowed:
            continue
        other = session.get(ReferenceVideo, ref_id)
        if other is None or other.allowed_reason is not None:
            continue
        theirs = _reference_flags(other).copy()
        # The index keeps each frame's stored time: the same float32 values as the blob.
        theirs[np.isin(np.frombuffer(other.times, dtype="<f4"), np.asarray(times, dtype=np.float32))] |= FLAG_SHARED
        other.flags = theirs.tobytes()
    return flags


@dataclass(frozen=True)
class AllowResult:
    reference: ReferenceVideo
    title: Title | None
    created: bool


def find_title(session: Session, title: int | str) -> Title:
    """A title by id, or by its name (exactly, spaces folded); a name that several titles
    bear must be given as an id."""
    if isinstance(title, int):
        return get_title(session, title)
    name = " ".join(title.split())
    rows = list(session.scalars(select(Title).where(Title.title == name).order_by(Title.id)))
    if len(rows) == 1:
        return rows[0]
    if len(rows) > 1:
        which = ", ".join(f"{t.id} ({t.year or 'no year'})" for t in rows)
        raise InvalidInput(f"several titles are named {name!r}: {which}; give the title's id")
    if name.isdigit():
        return get_title(session, int(name))
    raise NotFound(f"no title named {name!r}")


def _audit(session: Session, actor: str, action: str, ref: ReferenceVideo, before: dict[str, Any] | None,
           after: dict[str, Any] | None) -> None:
    session.add(AuditLog(actor=actor, action=action, object_type="reference", object_id=ref.id,
                         before=before, after=after))
    session.flush()


def allow_video(
    session: Session,
    video: str,
    *,
    reason: str | AllowedReason,
    title: int | str | None = None,
    actor: str = "cli",
    progress: Callable[[float, float], None] | None = None,
) -> AllowResult:
    """Fingerprint ``video`` and store it as allowed material (a trailer, promo,
    public-domain footage, a logo), of ``title`` (an id or a name) or of none.

    A copy explained only by allowed material produces no notice; a copy of a film that
    also holds allowed material is still matched on the rest (``fingerprint.matching``).
    The same file (by SHA-256) is stored once: allowing it again changes nothing, and a
    film reference cannot become allowed material. The registration is audit-logged.
    """
    try:
        why = reason if isinstance(reason, AllowedReason) else AllowedReason(reason)
    except ValueError:
        raise InvalidInput(f"unknown reason {reason!r} (known: "
                           f"{', '.join(r.value for r in AllowedReason)})") from None
    owner = find_title(session, title) if title is not None else None
    digest, existing = _existing(session, video)
    if existing is not None:
        if existing.allowed_reason is None:
            raise InvalidInput(f"{video} is the film reference {existing.id} of title {existing.title_id}: "
                               "a film cannot be allowed material")
        return AllowResult(existing, existing.title, created=False)
    fp = _fingerprint(video, progress)
    ref = _reference_row(video, digest, fp, _own_flags(fp))
    ref.allowed_reason = why
    ref.title_id = owner.id if owner is not None else None
    session.add(ref)
    session.flush()
    _audit(session, actor, "allowed.add", ref, None, allowed_json(ref))
    return AllowResult(ref, owner, created=True)


def list_allowed(session: Session) -> list[ReferenceVideo]:
    """Every reference registered as allowed material, oldest first."""
    return list(session.scalars(select(ReferenceVideo).where(ReferenceVideo.allowed_reason.is_not(None))
                                .options(selectinload(ReferenceVideo.title)).order_by(ReferenceVideo.id)))


def get_allowed(session: Session, ref_id: int) -> ReferenceVideo:
    ref = session.get(ReferenceVideo, ref_id)
    if ref is None or ref.allowed_reason is None:
        raise NotFound(f"no allowed material with id {ref_id}")
    return ref


def remove_allowed(session: Session, ref_id: int, *, actor: str = "cli") -> int:
    """Remove allowed material; returns how many candidates go back to matching.

    Copies that were found to be only this material were not notified: with the
    material no longer allowed they may be infringing, so their allowed matches are
    removed and the candidates matched again (pending). Audit-logged."""
    ref = get_allowed(session, ref_id)
    before = allowed_json(ref)
    matches = list(session.scalars(select(Match).where(Match.reference_id == ref.id,
                                                       Match.decision == Decision.ALLOWED)))
    cand_ids = {m.candidate_id for m in matches}
    for m in matches:
        session.delete(m)
    session.flush()
    requeued = 0
    for cand in session.scalars(select(Candidate).where(Candidate.id.in_(cand_ids))) if cand_ids else ():
        left = session.scalar(select(func.count()).select_from(Match).where(Match.candidate_id == cand.id))
        if cand.status is CandidateStatus.ALLOWED and not left:
            cand.status = CandidateStatus.PENDING
            requeued += 1
    _audit(session, actor, "allowed.remove", ref, before, {"candidates_requeued": requeued})
    session.delete(ref)
    session.flush()
    return requeued


def allowed_json(r: ReferenceVideo) -> dict[str, object]:
    assert r.allowed_reason is not None
    return {
        "id": r.id,
        "reason": r.allowed_reason.value,
        "title_id": r.title_id,
        "title": r.title.title if r.title is not None else None,
        "sha256": r.sha256,
        "path": r.path,
        "duration_s": round(r.duration_s, 3),
        "hashes": r.frame_count,
    }


def get_title(session: Session, title_id: int) -> Title:
    row = session.get(Title, title_id)
    if row is None:
        raise NotFound(f"no title with id {title_id}")
    return row


def list_titles(session: Session) -> list[Title]:
    return list(
        session.scalars(
            select(Title)
            .options(selectinload(Title.alt_titles), selectinload(Title.offers), selectinload(Title.references),
                     selectinload(Title.rights).selectinload(TitleRights.holder))
            .order_by(Title.id)
        )
    )


def title_json(t: Title) -> dict[str, object]:
    return {
        "id": t.id,
        "title": t.title,
        "year": t.year,
        "alt_titles": [a.name for a in t.alt_titles],
        "published": t.published,
        "publish_from": t.publish_from.isoformat() if t.publish_from else None,
        "offers": [{"url": o.url, "provider": o.provider, "kind": o.kind.value, "territory": o.territory,
                    "from": o.valid_from.isoformat() if o.valid_from else None,
                    "until": o.valid_until.isoformat() if o.valid_until else None} for o in t.offers],
        "rights": [{"holder": r.holder.name, "territory": r.territory} for r in t.rights],
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
            if r.allowed_reason is None
        ],
        "allowed": [allowed_json(r) for r in t.references if r.allowed_reason is not None],
    }


def catalogue_version(session: Session) -> str:
    """A key that changes whenever a reference is added or removed, or is allowed
    material or not, or has stored flags or not (cheap: no blobs read; the cluster's
    workers ask before every job).

    The stored flags of a reference change in one way only: ``add_title`` marks the
    frames a new film shares with it, and that new reference changes the key. Anything
    that changes flags otherwise must change the key too."""
    from fingerprint.extract import ALGORITHM

    rows = session.execute(
        select(ReferenceVideo.id, ReferenceVideo.frame_count, ReferenceVideo.allowed_reason,
               ReferenceVideo.flags.is_(None).label("computed"))
        .where(ReferenceVideo.algorithm == ALGORITHM).order_by(ReferenceVideo.id)
    ).all()
    digest = hashlib.sha256(ALGORITHM.encode())
    for r in rows:
        allowed = r.allowed_reason.value if r.allowed_reason is not None else ""
        digest.update(f"{r.id}:{r.frame_count}:{allowed}:{'computed' if r.computed else 'stored'};".encode())
    return digest.hexdigest()[:24]


def load_index(session: Session, cache_dir: str | None = None) -> tuple[HashIndex, dict[int, int]]:
    """The index over every reference of the current algorithm, and ref id -> title id
    (None for allowed material of no title). Allowed material is in the index, named in
    ``HashIndex.allowed``; each entry carries its frame's flags (static, shared).

    With ``cache_dir``, the built index is kept there as a file named after the
    catalogue's version; later loads memory-map it instead of rebuilding (a 10 M-hash
    index takes seconds to build, milliseconds to map). A new version is written when
    the catalogue changes; the files of older versions are removed.
    """
    import numpy as np

    from fingerprint.extract import ALGORITHM
    from fingerprint.index import HashIndex

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
        select(ReferenceVideo.id, ReferenceVideo.title_id, ReferenceVideo.hashes, ReferenceVideo.times,
               ReferenceVideo.flags, ReferenceVideo.allowed_reason).where(ReferenceVideo.algorithm == ALGORITHM)
    ).all()

    def parts(r: Any) -> Iterator[tuple[int, NDArray[np.uint64], NDArray[np.float32], int, NDArray[np.uint8]]]:
        times = np.frombuffer(r.times, dtype="<f4")
        hashes = np.frombuffer(r.hashes, dtype="<u8").astype(np.uint64)
        n = len(times)
        # One flag per frame, for both of its hashes (the whole picture and its core).
        flags = _reference_flags(r)
        yield r.id, hashes[:n], times, 0, flags
        yield r.id, hashes[n : 2 * n], times, 1, flags

    index = HashIndex.build((part for r in rows for part in parts(r)),
                            allowed=[r.id for r in rows if r.allowed_reason is not None])
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
    from fingerprint.extract import ALGORITHM

    return int(session.scalar(select(func.count()).select_from(ReferenceVideo)
                              .where(ReferenceVideo.algorithm != ALGORITHM)) or 0)
