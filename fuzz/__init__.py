"""Fuzzing harnesses for Vigie's own parsers of hostile text.

``fuzz.harnesses`` holds one harness per parser (bytes in, the parser run, only its
documented errors allowed); ``fuzz.run`` runs one under atheris (coverage-guided,
libFuzzer); ``fuzz/corpus/NAME/`` holds each harness's seeds: a few real examples, and
every input that once crashed a parser, kept as a regression seed.
tests/test_hardening_fuzz.py replays the seeds and runs every harness for a CI budget.
Tooling, not installed. May import: everything.
"""
