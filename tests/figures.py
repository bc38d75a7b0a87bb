"""The figures of the reliability and security suite, printed at the end of the run.

Each hardening test records what it measured (how many hostile videos went through the
sandbox, how many requests reached the SSRF canary, ...) together with the criterion the
figure must meet, through the session-scoped ``figures`` fixture. ``pytest_terminal_summary``
prints them as a "Vigie figures" table, so a CI log shows the numbers and not only "passed".
The test itself still asserts the criterion: the table is the evidence, not the check.
Registered from tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest


@dataclass
class Figure:
    name: str
    value: str
    criterion: str
    met: bool


@dataclass
class Figures:
    rows: list[Figure] = field(default_factory=list)

    def record(self, name: str, value: object, criterion: str, met: bool) -> None:
        """Record one figure; ``met`` says whether ``value`` meets ``criterion``."""
        self.rows.append(Figure(name, str(value), criterion, bool(met)))


_FIGURES = Figures()


def soak() -> bool:
    """True for the long run (``make soak``, VIGIE_SOAK=1), False for the CI budget."""
    return os.environ.get("VIGIE_SOAK") == "1"


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


# Under pytest-xdist each worker records its own figures; they travel to the controller
# in the worker's ``workeroutput`` when it finishes, and the controller prints them all.
def pytest_sessionfinish(session) -> None:  # type: ignore[no-untyped-def]
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["vigie_figures"] = [vars(r) for r in _FIGURES.rows]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # type: ignore[no-untyped-def]
    for row in getattr(node, "workeroutput", {}).get("vigie_figures", []):
        _FIGURES.rows.append(Figure(**row))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    rows = _FIGURES.rows
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("=", "Vigie figures" + (" (soak)" if soak() else ""))
    w_name = max(len(r.name) for r in rows)
    w_value = max(len(r.value) for r in rows)
    for r in rows:
        mark = "ok  " if r.met else "FAIL"
        tr.write_line(f"{mark} {r.name:<{w_name}}  {r.value:>{w_value}}  (criterion: {r.criterion})")
