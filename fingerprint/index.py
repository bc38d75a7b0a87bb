"""The hash index over every reference frame hash of the catalogue.

``HashIndex.build()`` takes the references' hashes; ``query()`` answers exact
Hamming-radius queries: every (query frame, reference frame) pair within the radius.

Two engines, both exact:

* a vectorised NumPy scan (XOR + popcount over every entry) for small catalogues;
* multi-index hashing (Norouzi et al., 2012) past ``MIH_MIN_ENTRIES``: the 64 bits are
  cut into m substrings, each with a table sorted by its value. Two hashes within
  radius r agree within floor(r/m) bits on at least one substring (pigeonhole), so only
  the buckets of those near substring values are read and verified. Substrings of about
  log2(N) bits keep buckets near one entry each: 21-22 bits for 10 M entries. At
  radius 12 that is ~11,000 small buckets per query instead of every entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this many entries a plain scan is as fast as the tables and needs no build.
# Measured (200 queries at radius 12, random 64-bit hashes, a 2-core machine): the scan
# answered 5656 / 2988 / 1439 / 553 queries a second at 0.25 / 0.5 / 1 / 2 M entries,
# the tables 2844 / 2667 / 2299 / 1643: they pay from about 600,000 (120 films) on.
MIH_MIN_ENTRIES = 600_000
# Substring widths (bits) of the tables, low bits first; they must add up to 64.
MIH_WIDTHS = (21, 21, 22)
# Candidates verified at once by the multi-index engine; bounds its temporaries.
_MIH_CHUNK = 4_000_000
# (query, entry) pairs compared at once by the scan, in buffers allocated once per
# query: 2.6 MB that stay in cache. Measured (1,024 queries against 3,800 entries, a
# 2-core machine): 4 ms at 256 K pairs, 6 ms at 16 K or 1 M, 16 ms with fresh 8 M-pair
# temporaries per block (mostly page faults).
_SCAN_BLOCK = 1 << 18


_MASKS: dict[tuple[int, int], NDArray[np.int64]] = {}

# Per-entry marks of reference frames that are not distinctive (see
# ``fingerprint.extract.static_flags`` and ``fingerprint.matching.shared_frames``): they
# help place a line but count for nothing as evidence on their own.
FLAG_STATIC = np.uint8(1)   # inside a still stretch of its reference (a held shot, a card)
FLAG_SHARED = np.uint8(2)   # near-identical to a frame of another title (a logo, a licence card)


def _masks(bits: int, radius: int) -> NDArray[np.int64]:
    """Every ``bits``-bit value with at most ``radius`` bits set (cached)."""
    key = (bits, radius)
    if key not in _MASKS:
        values = np.arange(1 << bits, dtype=np.uint32)
        _MASKS[key] = values[np.bitwise_count(values) <= radius].astype(np.int64)
    return _MASKS[key]


@dataclass(frozen=True)
class Hits:
    """Pairs within the radius: query row, index entry, distance (parallel arrays)."""

    query: NDArray[np.int64]
    entry: NDArray[np.int64]
    distance: NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.query)


class HashIndex:
    """All reference frame hashes, with the reference id and time of each."""

    def __init__(
        self,
        hashes: NDArray[np.uint64],
        ref_ids: NDArray[np.int32],
        times: NDArray[np.float32],
        kinds: NDArray[np.uint8] | None = None,
        *,
        flags: NDArray[np.uint8] | None = None,
        allowed: Iterable[int] = (),
        engine: str | None = None,
    ) -> None:
        if not (len(hashes) == len(ref_ids) == len(times)):
            raise ValueError("hashes, ref_ids and times must have the same length")
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.ref_ids = np.ascontiguousarray(ref_ids, dtype=np.int32)
        self.times = np.ascontiguousarray(times, dtype=np.float32)
        # What each hash is of (0: the whole picture, 1: its core); a query hash only
        # meets entries of its own kind.
        self.kinds = (np.zeros(len(self.hashes), np.uint8) if kinds is None
                      else np.ascontiguousarray(kinds, dtype=np.uint8))
        self.flags = (np.zeros(len(self.hashes), np.uint8) if flags is None
                      else np.ascontiguousarray(flags, dtype=np.uint8))
        if len(self.kinds) != len(self.hashes) or len(self.flags) != len(self.hashes):
            raise ValueError("kinds and flags must have one value per hash")
        # References that are allowed material (a trailer, a logo, public-domain footage):
        # what they explain is not infringement (see ``fingerprint.matching.match``).
        self.allowed: frozenset[int] = frozenset(int(a) for a in allowed)
        self.engine = engine or ("mih" if len(self.hashes) >= MIH_MIN_ENTRIES else "scan")
        self._tables: list[tuple[NDArray[np.int64], NDArray[np.int32]]] = []
        if self.engine == "mih":
            self._build_tables()

    def _substrings(self, values: NDArray[np.uint64]) -> list[NDArray[np.int64]]:
        out, shift = [], 0
        for width in MIH_WIDTHS:
            out.append(((values >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64))
            shift += width
        return out

    def _build_tables(self) -> None:
        idx_type = np.int32 if len(self.hashes) < 2**31 else np.int64
        for width, sub in zip(MIH_WIDTHS, self._substrings(self.hashes)):
            order = np.argsort(sub, kind="stable").astype(idx_type)
            starts = np.zeros((1 << width) + 1, dtype=np.int64)
            np.cumsum(np.bincount(sub, minlength=1 << width), out=starts[1:])
            self._tables.append((starts, order))

    @classmethod
    def build(cls, refs: Iterable[tuple[Any, ...]], *, allowed: Iterable[int] = ()) -> HashIndex:
        """From (ref_id, hashes, times[, kind[, flags]]) tuples, one per reference and
        kind; ``allowed`` names the references that are allowed material."""
        hs, ids, ts, ks, fs = [], [], [], [], []
        for ref_id, hashes, times, *rest in refs:
            n = len(hashes)
            hs.append(np.asarray(hashes, dtype=np.uint64))
            ts.append(np.asarray(times, dtype=np.float32))
            ids.append(np.full(n, ref_id, dtype=np.int32))
            ks.append(np.full(n, rest[0] if rest else 0, dtype=np.uint8))
            flags = rest[1] if len(rest) > 1 and rest[1] is not None else np.zeros(n, np.uint8)
            if len(flags) != n:
                raise ValueError(f"reference {ref_id}: {len(flags)} flags for {n} hashes")
            fs.append(np.asarray(flags, dtype=np.uint8))
        if not hs:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.float32), allowed=allowed)
        return cls(np.concatenate(hs), np.concatenate(ids), np.concatenate(ts), np.concatenate(ks),
                   flags=np.concatenate(fs), allowed=allowed)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        tables = sum(st.nbytes + order.nbytes for st, order in self._tables)
        return (self.hashes.nbytes + self.ref_ids.nbytes + self.times.nbytes + self.kinds.nbytes
                + self.flags.nbytes + tables)

    def query(self, queries: NDArray[np.uint64], radius: int, kinds: NDArray[np.uint8] | None = None) -> Hits:
        """Every (query, entry) pair with Hamming distance <= radius (and, when ``kinds``
        gives each query's kind, only entries of that kind)."""
        queries = np.asarray(queries, dtype=np.uint64)
        if len(self.hashes) == 0 or len(queries) == 0:
            empty = np.zeros(0, np.int64)
            return Hits(empty, empty, np.zeros(0, np.uint8))
        if self.engine == "scan" and kinds is not None:
            return self._query_scan_by_kind(queries, radius, np.asarray(kinds, dtype=np.uint8))
        hits = self._query_mih(queries, radius) if self.engine == "mih" else self._query_scan(queries, radius)
        if kinds is None:
            return hits
        ok = self.kinds[hits.entry] == np.asarray(kinds, dtype=np.uint8)[hits.query]
        return Hits(hits.query[ok], hits.entry[ok], hits.distance[ok])

    def _query_scan_by_kind(self, queries: NDArray[np.uint64], radius: int, kinds: NDArray[np.uint8]) -> Hits:
        """The scan, each query against the entries of its own kind only (half the work
        when queries are all of one kind, as the crop search's are)."""
        qs, es, ds = [], [], []
        for kind in np.unique(kinds):
            rows = np.nonzero(kinds == kind)[0]
            entries, hashes = self._of_kind(int(kind))
            if len(entries) == 0:
                continue
            hits = self._query_scan(queries[rows], radius, entries, hashes)
            qs.append(rows[hits.query])
            es.append(hits.entry)
            ds.append(hits.distance)
        if not qs:
            empty = np.zeros(0, np.int64)
            return Hits(empty, empty, np.zeros(0, np.uint8))
        return Hits(np.concatenate(qs), np.concatenate(es), np.concatenate(ds))

    def _of_kind(self, kind: int) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
        """The entries of one kind and their hashes, gathered once per index (a query
        makes several look-ups, each of which gathered them anew)."""
        cache: dict[int, tuple[NDArray[np.int64], NDArray[np.uint64]]] = self.__dict__.setdefault("_by_kind", {})
        if kind not in cache:
            entries = np.nonzero(self.kinds == kind)[0]
            cache[kind] = (entries, np.ascontiguousarray(self.hashes[entries]))
        return cache[kind]

    def whole_entries(self, entries: NDArray[np.int64]) -> NDArray[np.int64]:
        """For each entry, the entry of the same reference frame's whole picture (kind
        0): itself when it is one, or when the index holds no such entry. References are
        built as blocks of one reference and kind, in frame order (``build``), so a core
        entry's frame is found at the same place in its reference's whole block."""
        entries = np.asarray(entries, dtype=np.int64)
        if len(entries) == 0 or not np.any(self.kinds[entries]):
            return entries
        if "_blocks" not in self.__dict__:
            ref, kind = np.asarray(self.ref_ids), np.asarray(self.kinds)
            starts = np.flatnonzero(np.r_[True, (ref[1:] != ref[:-1]) | (kind[1:] != kind[:-1])])
            ends = np.r_[starts[1:], len(ref)]
            whole = {int(ref[s]): (int(s), int(e - s)) for s, e in zip(starts, ends) if kind[s] == 0}
            # Per block: where its reference's whole block starts, or -1 without one of its size.
            target = np.array([whole[int(ref[s])][0] if int(ref[s]) in whole and whole[int(ref[s])][1] == e - s
                               else -1 for s, e in zip(starts, ends)], dtype=np.int64)
            self.__dict__["_blocks"] = (starts, target)
        starts, target = self.__dict__["_blocks"]
        block = np.searchsorted(starts, entries, side="right") - 1
        mapped = np.where(target[block] >= 0, target[block] + entries - starts[block], entries)
        same = self.times[mapped] == self.times[entries]
        return np.where(same, mapped, entries)

    def _query_scan(self, queries: NDArray[np.uint64], radius: int,
                    entries: NDArray[np.int64] | None = None, hashes: NDArray[np.uint64] | None = None) -> Hits:
        # A block of queries against every entry at once, about _SCAN_BLOCK pairs a
        # block: one vectorised XOR + popcount instead of a Python loop per query.
        qs, es, ds = [], [], []
        if hashes is None:
            hashes = self.hashes if entries is None else self.hashes[entries]
        n = len(hashes)
        step = max(1, min(_SCAN_BLOCK // max(n, 1), len(queries)))
        xor = np.empty((step, n), np.uint64)
        dist = np.empty((step, n), np.uint8)
        near = np.empty((step, n), bool)
        for first in range(0, len(queries), step):
            block = queries[first : first + step]
            k = len(block)
            np.bitwise_xor(block[:, None], hashes[None, :], out=xor[:k])
            np.bitwise_count(xor[:k], out=dist[:k])
            np.less_equal(dist[:k], radius, out=near[:k])
            flat = np.flatnonzero(near[:k])
            qi, ei = np.divmod(flat, n)
            qs.append(qi + first)
            es.append(ei if entries is None else entries[ei].astype(np.int64))
            ds.append(dist[:k].ravel()[flat])
        return Hits(np.concatenate(qs), np.concatenate(es), np.concatenate(ds).astype(np.uint8))

    def _query_mih(self, queries: NDArray[np.uint64], radius: int) -> Hits:
        q_out, e_out, d_out = [], [], []
        subs = self._substrings(queries)
        # Pigeonhole, in its tight form (Norouzi et al.): with radius = m * a + b (b < m),
        # a pair within the radius is within a bits on one of the first b + 1 substrings,
        # or within a - 1 bits on one of the others (else it would differ in at least
        # (b + 1)(a + 1) + (m - b - 1) a = radius + 1 bits). At radius 12 over three
        # tables that is 4, 3 and 3 bits: half the buckets of 4, 4 and 4.
        a, b = divmod(radius, len(MIH_WIDTHS))
        for i, (width, sub, (starts, order)) in enumerate(zip(MIH_WIDTHS, subs, self._tables)):
            reach = a if i <= b else a - 1
            if reach < 0:
                continue
            masks = _masks(width, reach).astype(np.int64)
            keys = (sub[:, None] ^ masks[None, :]).ravel()
            lo, hi = starts[keys], starts[keys + 1]
            lengths = hi - lo
            owner = np.repeat(np.arange(len(queries), dtype=np.int64), len(masks))
            keep = lengths > 0
            lo, lengths, owner = lo[keep], lengths[keep], owner[keep]
            # Read the buckets in slices of about _MIH_CHUNK entries.
            ends = np.cumsum(lengths)
            first = 0
            while first < len(lengths):
                base = ends[first - 1] if first else 0
                last = int(np.searchsorted(ends, base + _MIH_CHUNK, side="right"))
                last = max(last, first + 1)
                ln = lengths[first:last]
                total = int(ln.sum())
                offs = np.cumsum(ln) - ln
                pos = np.repeat(lo[first:last] - offs, ln) + np.arange(total, dtype=np.int64)
                ent = order[pos].astype(np.int64)
                qi = np.repeat(owner[first:last], ln)
                dist = np.bitwise_count(self.hashes[ent] ^ queries[qi])
                ok = dist <= radius
                q_out.append(qi[ok])
                e_out.append(ent[ok])
                d_out.append(dist[ok])
                first = last
        if not q_out:
            empty = np.zeros(0, np.int64)
            return Hits(empty, empty, np.zeros(0, np.uint8))
        qi = np.concatenate(q_out)
        ent = np.concatenate(e_out)
        dist = np.concatenate(d_out)
        # A pair close on several substrings was found in several tables: keep it once.
        key = qi * len(self.hashes) + ent
        _, first_idx = np.unique(key, return_index=True)
        return Hits(qi[first_idx], ent[first_idx], dist[first_idx].astype(np.uint8))


    # ------------------------------------------------------------------ persistence

    def save(self, path: str) -> None:
        """Write the index (tables included) as a directory of .npy files, atomically."""
        import os
        import shutil

        arrays = {"hashes": self.hashes, "ref_ids": self.ref_ids, "times": self.times, "kinds": self.kinds,
                  "flags": self.flags, "allowed": np.array(sorted(self.allowed), dtype=np.int64),
                  "engine": np.frombuffer(self.engine.encode(), np.uint8)}
        for j, (starts, order) in enumerate(self._tables):
            arrays[f"starts{j}"] = starts
            arrays[f"order{j}"] = order
        tmp = f"{path}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        for name, arr in arrays.items():
            np.save(os.path.join(tmp, f"{name}.npy"), np.ascontiguousarray(arr))
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> HashIndex:
        """Read an index written by ``save``, memory-mapped: start-up costs no rebuild and
        pages are read only as queries touch them."""
        import os

        def arr(name: str) -> NDArray[Any]:
            return np.load(os.path.join(path, f"{name}.npy"), mmap_mode="r")

        index = cls.__new__(cls)
        index.hashes, index.ref_ids, index.times, index.kinds = arr("hashes"), arr("ref_ids"), arr("times"), arr("kinds")
        index.flags = arr("flags")
        index.allowed = frozenset(int(a) for a in np.asarray(arr("allowed")))
        index.engine = bytes(np.asarray(arr("engine"))).decode()
        index._tables = []
        j = 0
        while os.path.exists(os.path.join(path, f"starts{j}.npy")):
            index._tables.append((arr(f"starts{j}"), arr(f"order{j}")))
            j += 1
        return index
