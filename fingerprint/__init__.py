"""Frame sampling and decoding, perceptual hashing, the hash index, temporal matching,
decisions. Everything but ``decode`` and ``sandbox`` is pure functions over arrays.

The core. May import: ``foundation`` only (never ``db``: it knows arrays, not rows).
"""
