"""The foundation every other package stands on: errors, the typed configuration (every
default in one place), the network-safety policy, schedules and time helpers.

May import: the standard library and third-party packages only; nothing of Vigie's.
"""

__version__ = "0.1.0"
