"""Run one harness under atheris: ``python -m fuzz.run NAME [libFuzzer flags] [corpus dirs]``.

libFuzzer flags as usual: ``-max_total_time=S`` or ``-runs=N``, ``-timeout=S``,
``-artifact_prefix=DIR/``; new interesting inputs go to the first corpus directory, so
pass a scratch directory first and the committed seeds (``fuzz/corpus/NAME``) after it.
A crash (an exception the harness does not allow) is written as ``crash-*`` under the
artifact prefix and ends the run with a non-zero status; ``atheris.Fuzz`` exits the
process, which is why the tests run each harness in a subprocess of its own.
"""

from __future__ import annotations

import sys

import atheris

# Coverage is collected for our packages and the libraries whose parsing we rely on.
INSTRUMENTED = ["crawlers", "notices", "inbox", "vigie", "fuzz", "w3lib", "tldextract", "tomllib", "parsel",
                "email"]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit(f"usage: {argv[0]} NAME [libFuzzer flags] [corpus dirs]")
    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz import harnesses

        harness = harnesses.HARNESSES.get(argv[1])
        if harness is None:
            sys.exit(f"no harness {argv[1]!r} (known: {', '.join(harnesses.HARNESSES)})")
        # The harnesses import their parsers late: import them now, under instrumentation.
        # A seed that crashes is met again, and reported, by the fuzzer itself.
        for _, seed in harnesses.seeds(harness.name)[:1]:
            try:
                harness.one(seed)
            except Exception:  # noqa: BLE001
                pass
    atheris.Setup([argv[0], *argv[2:]], harness.one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
