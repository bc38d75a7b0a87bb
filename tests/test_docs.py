"""The README against the code (as datasette's tests/test_docs.py does): every CLI
command, every config key and every top-level folder is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from foundation.config import SCHEMA
from vigie.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HEADINGS = [line for line in README.splitlines() if line.startswith("### ")]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append(f"{prefix}{name}")
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}{name} ")
    return out


@pytest.mark.parametrize("command", _commands(cli))
def test_every_command_is_documented(command: str) -> None:
    if f"vigie {command}" in README:
        return
    # A subcommand may be listed in its group's heading: "`vigie notices send` / `approve ID`".
    group, _, sub = command.rpartition(" ")
    assert group and any(f"vigie {group}" in h and re.search(rf"`{re.escape(sub)}\b", h) for h in HEADINGS), \
        f"`vigie {command}` is not in README.md"


@pytest.mark.parametrize("key", [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys])
def test_every_config_key_is_documented(key: str) -> None:
    assert f"`{key}`" in README, f"config key {key} is not in README.md"


def _top_level() -> list[str]:
    names = []
    for p in sorted(ROOT.iterdir()):
        if p.name.startswith(".") or p.name in ("build", "dist") or p.name.endswith(".egg-info"):
            continue
        if p.is_dir() and ((p / "__init__.py").exists() or p.name == "tests"):
            names.append(f"{p.name}/")
        elif p.suffix == ".py" or p.name == "pyproject.toml":
            names.append(p.name)
    return names


@pytest.mark.parametrize("path", _top_level())
def test_every_top_level_folder_is_in_the_layout(path: str) -> None:
    layout = README[README.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 1)]
    assert f"`{path}`" in layout, f"{path} is not in README.md's layout section"
