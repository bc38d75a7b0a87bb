"""Who holds a claim: this process, named so that a later process on the same machine
can tell whether the holder is gone.

A claim row (a notice being sent) says when it was taken; a lease then lets another
process take it over once the holder has surely died. When the holder ran on this very
machine, in this boot, there is no need to wait for the lease: whether its process
still exists is known at once. A claimant is ``<host>/<boot>/<pid>``; from another
machine, or from before a reboot, it is never judged gone here (the lease decides).
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

# /proc's boot id: two boots of one machine reuse process ids, never boot ids.
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@cache
def _machine() -> str:
    try:
        boot = BOOT_ID.read_text().strip()[:8]
    except OSError:
        boot = "-"  # no /proc: a claim is then never judged gone, only leased
    return f"{socket.gethostname()[:200]}/{boot}"


def this_process() -> str:
    """The claimant name of the calling process (its pid read now: a forked child is
    its own claimant)."""
    return f"{_machine()}/{os.getpid()}"


def gone(claimant: str | None) -> bool:
    """Whether ``claimant`` names a process of this machine and boot that no longer
    runs (or is a zombie, dead but not yet reaped). False for anything else: another
    machine, an unreadable name, a process that still runs, or a machine without /proc."""
    if not claimant:
        return False
    machine, _, pid = claimant.rpartition("/")
    if machine != _machine() or machine.endswith("/-") or not pid.isdigit():
        return False
    return not running(int(pid))


def running(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs: it exists (as any user) and is not
    a zombie, dead but not yet reaped (Linux /proc; where it is missing, existing is
    enough)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
