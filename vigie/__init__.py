"""Vigie: find pirated copies of a film catalogue, prove them, and get them taken down.

This package is the ``vigie`` command (``cli.py``, ``commands/``), the outermost entry
point. May import: every other package.
"""

from foundation import __version__

__all__ = ["__version__"]
