"""Vigie: find pirated copies of a film catalogue, prove them, and get them taken down."""

__version__ = "0.1.0"
