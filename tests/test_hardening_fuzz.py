"""Fuzzing our own parsers of hostile text: 0 crashes.

The harnesses (``fuzz.harnesses``) cover the URL canonicaliser and host keys, the
address checks of netsafe and its media reader's reading of HTTP answers, the
security.txt parser and abuse-contact discovery, the TOML configuration loader and
validator, the title cleaner and matcher, the media resolvers over page HTML, the site
schedule parser, the staff input checks (host contacts, offer URLs, page text), and the reader of the hosts' replies (MIME, DSN, classification). Each feeds bytes to one parser and allows only its documented
errors; anything else, or a broken promise, is a crash.

- Every committed seed (``fuzz/corpus/NAME``: real examples and every input that once
  crashed a parser) is replayed in this process.
- atheris, coverage-guided, runs each harness in a subprocess of its own (``atheris.Fuzz``
  exits its process) for a CI budget of a few seconds (a minute under ``make soak``), two at
  a time. A crash fails the test with the input and the traceback; to keep it, copy the
  ``crash-*`` file to ``fuzz/corpus/NAME/regress-WHAT`` once the parser is fixed.
- Hypothesis drives the same harnesses with random bytes: a short run always (so the
  fallback keeps working), the whole budget where atheris is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harnesses import CORPUS, HARNESSES, seeds
from tests.figures import Figures, soak

ROOT = Path(__file__).resolve().parents[1]
HAS_ATHERIS = importlib.util.find_spec("atheris") is not None
# Seconds of fuzzing per harness (the CI budget; two harnesses run at a time).
BUDGET_S = 60 if soak() else 5
# Artifacts libFuzzer writes for a failing input (slow-unit-* is only a note).
FAILURES = ("crash-", "timeout-", "oom-", "leak-")


def test_every_harness_has_seeds_and_a_unique_name() -> None:
    assert len(HARNESSES) >= 8
    for name in HARNESSES:
        assert len(seeds(name)) >= 3, name
    assert sorted(os.listdir(CORPUS)) == sorted(HARNESSES)


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_seeds_and_regressions_replay(name: str) -> None:
    harness = HARNESSES[name]
    for seed_name, data in seeds(name):
        try:
            harness.one(data)
        except Exception as exc:  # noqa: BLE001 - the point is to name the seed
            raise AssertionError(f"{name}/{seed_name}: {type(exc).__name__}: {exc}") from exc


def _atheris(name: str, work: Path) -> dict[str, object]:
    scratch, artifacts = work / "corpus", work / "artifacts"
    scratch.mkdir(parents=True)
    artifacts.mkdir()
    cmd = [sys.executable, "-m", "fuzz.run", name, f"-max_total_time={BUDGET_S}", "-timeout=10",
           "-rss_limit_mb=2048", "-max_len=4096", f"-artifact_prefix={artifacts}/",
           "-print_final_stats=1", str(scratch), os.path.join(CORPUS, name)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace",
                          timeout=BUDGET_S + 120)
    out = proc.stdout + proc.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    failures = sorted(f.name for f in artifacts.iterdir() if f.name.startswith(FAILURES))
    found = [(f, (artifacts / f).read_bytes()[:300]) for f in failures]
    tail = out[out.find("=== Uncaught"):][:2000] if "=== Uncaught" in out else out[-2000:]
    return {"name": name, "runs": int(m.group(1)) if m else 0, "status": proc.returncode,
            "failures": found, "log": tail}


@pytest.mark.skipif(not HAS_ATHERIS, reason="atheris not installed: the Hypothesis run below "
                                            "takes the whole budget")
def test_atheris_finds_no_crash(tmp_path: Path, figures: Figures) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda n: _atheris(n, tmp_path / n), sorted(HARNESSES)))
    bad = []
    for r in results:
        crashes = len(r["failures"])  # type: ignore[arg-type]
        ok = crashes == 0 and r["status"] == 0 and r["runs"] > 0  # type: ignore[operator]
        figures.record(f"fuzz (atheris, {BUDGET_S} s): {r['name']} - executions, crashes",
                       f"{r['runs']:,} runs, {crashes} crashes", "0 crashes", ok)
        if not ok:
            bad.append(r)
    total = sum(int(r["runs"]) for r in results)  # type: ignore[call-overload]
    figures.record("fuzz (atheris): executions over every harness", f"{total:,}", "> 0", total > 0)
    assert not bad, "\n\n".join(f"{r['name']}: exit {r['status']}, {r['failures']}\n{r['log']}"
                                for r in bad)


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_hypothesis_finds_no_crash(name: str) -> None:
    harness = HARNESSES[name]
    examples = 50 if HAS_ATHERIS else (2000 if soak() else 300)
    seed_inputs = [data for _, data in seeds(name)]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(st.binary(max_size=512), st.text(max_size=300).map(str.encode),
                     st.sampled_from(seed_inputs).flatmap(
                         lambda s: st.binary(max_size=8).map(lambda b: s[: len(s) // 2] + b + s[len(s) // 2:]))))
    def run(data: bytes) -> None:
        harness.one(data)

    run()
