"""CLI verbs that live beside their stage, registered on the ``vigie`` group.

Each module listed in ``MODULES`` defines ``COMMANDS: list[click.Command]`` (commands
or groups). The list is explicit (no discovery) so ``vigie --help`` shows exactly what
is built, and names are checked unique so one module cannot shadow another's verb.
"""

from __future__ import annotations

import importlib

import click

MODULES: list[str] = [
    "vigie.commands.crawl",
    "vigie.commands.web",
    "vigie.commands.notices",
    "vigie.commands.inbox",
    "vigie.commands.ops",
    "vigie.commands.cluster",
    "vigie.commands.evidence",
    "vigie.commands.holders",
]


def register_all(cli: click.Group) -> None:
    for mod in MODULES:
        for command in importlib.import_module(mod).COMMANDS:
            if command.name in cli.commands:
                raise RuntimeError(f"{mod}: verb {command.name!r} is already defined")
            cli.add_command(command)
