"""The hash index over every reference frame hash of the catalogue.

``HashIndex.build()`` takes the references' hashes; ``query()`` answers exact
Hamming-radius queries: every (query frame, reference frame) pair within the radius.
This first implementation is a vectorised NumPy scan (XOR + popcount over all entries,
in chunks to bound memory).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Query hashes compared at once; bounds the temporary (CHUNK x N) distance matrix.
_CHUNK_BYTES = 64 << 20


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
    ) -> None:
        if not (len(hashes) == len(ref_ids) == len(times)):
            raise ValueError("hashes, ref_ids and times must have the same length")
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        self.ref_ids = np.ascontiguousarray(ref_ids, dtype=np.int32)
        self.times = np.ascontiguousarray(times, dtype=np.float32)

    @classmethod
    def build(cls, refs: Iterable[tuple[int, NDArray[np.uint64], NDArray[np.float32]]]) -> HashIndex:
        hs, ids, ts = [], [], []
        for ref_id, hashes, times in refs:
            hs.append(np.asarray(hashes, dtype=np.uint64))
            ts.append(np.asarray(times, dtype=np.float32))
            ids.append(np.full(len(hashes), ref_id, dtype=np.int32))
        if not hs:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.float32))
        return cls(np.concatenate(hs), np.concatenate(ids), np.concatenate(ts))

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.ref_ids.nbytes + self.times.nbytes

    def query(self, queries: NDArray[np.uint64], radius: int) -> Hits:
        """Every (query, entry) pair with Hamming distance <= radius."""
        queries = np.asarray(queries, dtype=np.uint64)
        n = len(self.hashes)
        if n == 0 or len(queries) == 0:
            empty = np.zeros(0, np.int64)
            return Hits(empty, empty, np.zeros(0, np.uint8))
        rows = max(1, _CHUNK_BYTES // max(1, n * 9))
        qs, es, ds = [], [], []
        for start in range(0, len(queries), rows):
            block = queries[start : start + rows]
            dist = np.bitwise_count(np.bitwise_xor(block[:, None], self.hashes[None, :]))
            qi, ei = np.nonzero(dist <= radius)
            qs.append(qi + start)
            es.append(ei)
            ds.append(dist[qi, ei])
        return Hits(
            np.concatenate(qs).astype(np.int64),
            np.concatenate(es).astype(np.int64),
            np.concatenate(ds).astype(np.uint8),
        )
