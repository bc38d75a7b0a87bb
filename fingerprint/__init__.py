"""Frame sampling and decoding, perceptual hashing, the hash index, temporal matching,
decisions. Everything but ``decode`` and ``sandbox`` is pure functions over arrays."""
