"""The house rules, checked: the layers (import-linter's contract in pyproject.toml), no
private name imported across packages, and each package saying what it may import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vigie", "scheduler", "cluster", "webapp", "demoweb", "stages", "crawlers", "notices", "reports", "evidence",
            "fingerprint", "db", "foundation")


def _sources() -> list[Path]:
    files = [ROOT / "scheduler.py"]
    for pkg in PACKAGES:
        if (ROOT / pkg).is_dir():
            files += sorted(p for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)
    return files


def _package_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
    return out


def test_the_layers_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    res = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]


def test_no_private_name_is_imported_across_packages() -> None:
    bad = []
    for path in _sources():
        mine = _package_of(path)
        for line, module, names in _imports(path):
            top = module.split(".")[0]
            if top not in PACKAGES or top == mine:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in module.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {', '.join(private)}")
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def test_the_scheduler_imports_no_entry_point() -> None:
    # scheduler.py is a module, which import-linter cannot take as a root package.
    allowed = {"stages", "crawlers", "notices", "reports", "fingerprint", "db", "foundation"}
    found = {m.split(".")[0] for _, m, _ in _imports(ROOT / "scheduler.py")}
    assert not (found & set(PACKAGES)) - allowed


def test_every_package_says_what_it_may_import() -> None:
    for pkg in PACKAGES:
        init = ROOT / pkg / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
            assert "May import:" in doc, f"{pkg}/__init__.py does not say what it may import"
