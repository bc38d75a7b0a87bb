"""CLI verbs that live beside their stage, registered on the ``vigie`` group.

Each module listed in ``MODULES`` defines ``register(cli: click.Group) -> None``. The
list is explicit (no discovery) so ``vigie --help`` shows exactly what is built.
"""

from __future__ import annotations

import importlib

import click

MODULES: list[str] = [
]


def register_all(cli: click.Group) -> None:
    names: set[str] = set(cli.commands)
    for mod in MODULES:
        before = set(cli.commands)
        importlib.import_module(mod).register(cli)
        added = set(cli.commands) - before
        clash = added & names
        if clash:
            raise RuntimeError(f"{mod} registers verbs already defined: {sorted(clash)}")
        names |= added
