"""Perceptual frame hashes and frame quality: pure functions over NumPy arrays.

Frames come in as greyscale ``uint8`` arrays, hashes go out as ``np.uint64``. The hash
is pHash (Zauner 2010, the algorithm of ``imagehash.phash``): resize to 32x32, 2-D DCT-II,
keep the 8x8 lowest frequencies, one bit per coefficient above their median. It is
vectorised over a batch of frames with two matrix products, so hashing every decoded
frame of a film costs far less than decoding it.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

# The hashes' matrix products are small (8 x 108 by 108 x 192 per frame): BLAS threads
# cost more to hand over than they save, and while decoding keeps the other core busy
# their spinning takes it from the decoder. One BLAS thread for the process (the sandbox
# child too: it imports this module). Measured on 40 non-catalogue bench queries: wall
# time 3.3 -> 2.9 s, CPU time 6.2 -> 3.4 s; 40 copies of Big Buck Bunny 6.0 -> 5.6 s,
# CPU 10.6 -> 9.4 s; ingest unchanged (11-13 s for bbb either way). Under load it matters
# more: with the test suite on both cores, the hashing took 16 times longer.
threadpool_limits(limits=1, user_api="blas")

HASH_SIZE = 8
IMG_SIZE = 32  # imagehash.phash's hash_size * highfreq_factor

# Bits of the packed hash, most significant first, in imagehash's row-major order, so
# ``int(str(imagehash.phash(img)), 16)`` equals our hash of the same 32x32 image.
_BIT_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _dct_matrix(n: int, k: int) -> NDArray[np.float64]:
    # Unnormalised DCT-II, as scipy.fftpack.dct(type=2, norm=None): 2 * sum x cos(...).
    i = np.arange(n)
    return 2.0 * np.cos(np.pi * np.outer(np.arange(k), 2 * i + 1) / (2 * n))


_DCT = _dct_matrix(IMG_SIZE, HASH_SIZE)


def resize_for_hash(gray: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Area-average a greyscale frame down to the 32x32 the hash works on."""
    if gray.shape == (IMG_SIZE, IMG_SIZE):
        return gray.astype(np.float32)
    return cv2.resize(gray, (IMG_SIZE, IMG_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)


def low_frequencies(small: NDArray[np.floating]) -> NDArray[np.float64]:
    """The 8x8 lowest DCT coefficients of a (n, 32, 32) batch."""
    batch = np.asarray(small, dtype=np.float64)
    if batch.ndim == 2:
        batch = batch[None]
    return np.einsum("ki,nij,lj->nkl", _DCT, batch, _DCT, optimize=True)


def _pack_above_median(coeffs: NDArray[np.floating]) -> NDArray[np.uint64]:
    """One bit per coefficient above the median of its 64 (last axis), packed most
    significant first (``_BIT_WEIGHTS``' order). The median as ``np.median`` takes it
    (the mean of the two middle values, in the coefficients' precision), from a sort
    (NumPy's vectorised sort of 64 values is about four times faster than a partition
    around two middle elements); the bits packed by bytes."""
    middle = np.sort(coeffs, axis=-1)
    med = np.add(middle[..., 31:32], middle[..., 32:33]) / coeffs.dtype.type(2)
    packed = np.packbits(coeffs > med, axis=-1)  # (..., 8) bytes, first bit highest
    return np.ascontiguousarray(packed).view(">u8")[..., 0].astype(np.uint64)


def phash_batch(small: NDArray[np.floating]) -> NDArray[np.uint64]:
    """pHash of each 32x32 image of a (n, 32, 32) batch, packed into uint64."""
    coeffs = low_frequencies(small).reshape(-1, HASH_SIZE * HASH_SIZE)
    return _pack_above_median(coeffs)


def phash(gray: NDArray[np.uint8]) -> np.uint64:
    """pHash of one greyscale frame of any size."""
    return phash_batch(resize_for_hash(gray)[None])[0]


def area_matrix(n_in: int, spans: list[tuple[float, float]], flip: bool = False) -> NDArray[np.float64]:
    """Weights that area-average each span [lo, hi) of ``n_in`` pixels (shares of
    ``n_in``) into IMG_SIZE cells, as ``cv2.INTER_AREA`` does: shape (spans, 32, n_in).
    ``flip`` reverses the cells (a mirrored picture)."""
    if not spans:
        return np.zeros((0, IMG_SIZE, n_in))
    p = np.arange(n_in, dtype=np.float64)
    lo = np.array([s[0] for s in spans], dtype=np.float64) * n_in
    hi = np.maximum(np.array([s[1] for s in spans], dtype=np.float64) * n_in, lo + 1.0)
    edges = np.linspace(lo, hi, IMG_SIZE + 1, axis=1)              # (spans, 33)
    a, b = edges[:, :-1, None], edges[:, 1:, None]
    out = np.clip(np.minimum(b, p + 1) - np.maximum(a, p), 0.0, None) / (b - a)
    return out[:, ::-1] if flip else out


@functools.lru_cache(maxsize=1024)
def _dct_area_of(n_in: int, span: tuple[float, float], flip: bool) -> NDArray[np.float32]:
    """The DCT rows folded with the area resize of one span: shape (8, n_in). A query's
    pictures share one size, and the crop hypotheses a few spans, so these are computed
    once, not on every call (which cost more than the hashing itself); cached span by
    span, as the crop search asks for ever other subsets of them."""
    out = (_DCT @ area_matrix(n_in, [span], flip)[0]).astype(np.float32)
    out.flags.writeable = False
    return out


def _dct_area(n_in: int, spans: tuple[tuple[float, float], ...], flip: bool) -> NDArray[np.float32]:
    """The DCT rows folded with the area resize of each span: shape (spans * 8, n_in)."""
    if len(spans) == 1:
        return _dct_area_of(n_in, spans[0], flip)
    return np.concatenate([_dct_area_of(n_in, span, flip) for span in spans])


def phash_regions(pictures: NDArray[np.uint8], ys: list[tuple[float, float]], xs: list[tuple[float, float]],
                  flip_x: bool = False) -> NDArray[np.uint64]:
    """pHash of regions of same-sized pictures, every (y span, x span) pair at once:
    shape (n, len(ys), len(xs)). Spans are shares of the height and width.

    The same hash as ``phash`` of the region cut out and resized, computed as matrix
    products: the area resize is linear, so it folds into the DCT (the 8 x h and 8 x w
    matrices ``DCT @ area``), and a region costs a few thousand multiply-adds, not a
    resize call."""
    n, h, w = pictures.shape
    ny, nx = len(ys), len(xs)
    dy = _dct_area(h, tuple(ys), False)                          # (Y*8, h)
    dx = _dct_area(w, tuple(xs), flip_x)                         # (X*8, w)
    rows = dy @ pictures.astype(np.float32)                      # (n, Y*8, w)
    coeffs = rows @ dx.T                                         # (n, Y*8, X*8)
    coeffs = coeffs.reshape(n, ny, HASH_SIZE, nx, HASH_SIZE).transpose(0, 1, 3, 2, 4).reshape(n, ny, nx, 64)
    return _pack_above_median(coeffs)


def hamming(a: NDArray[np.uint64] | np.uint64, b: NDArray[np.uint64] | np.uint64) -> NDArray[np.uint8]:
    """Bitwise Hamming distance, element-wise (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b))


# A 4x4 cell of the 32x32 image "has detail" when its grey levels spread more than
# this (standard deviation). Coding noise on a flat area stays under 2.
CELL_DETAIL_STD = 3.0

# Frames under this quality are black, faded, flat, or a logo or a line of text on a
# plain background: they look alike in every film and are evidence of nothing. They
# are neither stored as references nor used from queries. 15 % is about ten of the
# 64 cells; film scenes sit far above it.
MIN_QUALITY = 15.0


def quality(small: NDArray[np.floating]) -> NDArray[np.float32]:
    """How much of the picture carries detail, 0 to 100, per 32x32 frame of a batch.

    Black frames, fades, flat colour fields and a small logo or a line of text on a
    plain background hash alike in every film, so they prove nothing. The measure is
    the share (in %) of the 64 cells of 4x4 pixels whose grey levels vary: a black or
    flat frame scores 0, a centred logo or title card under 15, a film scene typically
    50-100 (5th percentile of Big Buck Bunny at 2 fps: 50).
    """
    batch = np.asarray(small, dtype=np.float32)
    if batch.ndim == 2:
        batch = batch[None]
    n = batch.shape[0]
    cells = batch.reshape(n, 8, 4, 8, 4).transpose(0, 1, 3, 2, 4).reshape(n, 64, 16)
    busy = cells.std(axis=2) > CELL_DETAIL_STD
    return (busy.mean(axis=1) * 100.0).astype(np.float32)
