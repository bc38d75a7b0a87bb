"""Run untrusted decoding in a child process with resource limits.

A crafted or truncated video can crash FFmpeg inside the process (a SIGSEGV no
``except`` catches) or make it hang or allocate without bound. The child gets limits
on address space, CPU time and file size, and a wall-clock deadline; whatever happens
to it, the parent gets either a result or a ``MediaError`` naming what went wrong.

The child also dies with its parent. A forked child holds copies of every socket the
parent had open, database connections included: if it outlived a scheduler killed with
SIGKILL, it would keep that scheduler's transactions and its PostgreSQL advisory lock
alive, and the restarted scheduler would refuse to start.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing as mp
import os
import resource
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from foundation.errors import MediaError

T = TypeVar("T")

MEMORY_LIMIT_BYTES = 4 << 30
CPU_LIMIT_S = 600
WALL_LIMIT_S = 900.0
FILE_SIZE_LIMIT_BYTES = 64 << 20


def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))


def _address_space() -> int:
    """This process's virtual address space now, in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGKILL to this process when its parent dies (Linux).

    ``parent_pid`` is the parent as it was when this process was started: if it already
    died before the request was made, exit now. Elsewhere than Linux, do nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def _child(conn: Any, other_end: Any, parent_pid: int, fn: Callable[..., Any], args: tuple[Any, ...],
           limits: dict[str, int]) -> None:
    die_with_parent(parent_pid)
    # Without the parent's end of the pipe here, a send to a parent that is gone fails
    # at once instead of blocking on a pipe only this process could ever read.
    other_end.close()
    # A crash in the child is reported by the parent as a MediaError; a traceback dump
    # from an inherited faulthandler (pytest enables one) would only be noise.
    faulthandler.disable()
    try:
        # The budget is what decoding may add: a forked child starts with its parent's
        # address space (a memory-mapped index, loaded libraries, a long-running test
        # process), which must not eat into it.
        _limit(resource.RLIMIT_AS, _address_space() + limits["memory"])
        _limit(resource.RLIMIT_CPU, limits["cpu"])
        _limit(resource.RLIMIT_FSIZE, limits["fsize"])
        _limit(resource.RLIMIT_CORE, 0)
        result = fn(*args)
        conn.send(("ok", result))
    except MediaError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", "decoding needed more memory than allowed"))
    except Exception as exc:  # noqa: BLE001 - anything in the child is a media failure
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"))
    finally:
        conn.close()


def run_sandboxed(
    fn: Callable[..., T],
    *args: Any,
    label: str = "video",
    memory: int = MEMORY_LIMIT_BYTES,
    cpu_s: int = CPU_LIMIT_S,
    wall_s: float = WALL_LIMIT_S,
    on_wait: Callable[[], None] | None = None,
) -> T:
    """Call ``fn(*args)`` in a forked child with limits; return its (picklable) result.

    ``on_wait`` is called about five times a second while the child works (a progress
    display reading a value the child shares, for instance)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    limits = {"memory": memory, "cpu": cpu_s, "fsize": FILE_SIZE_LIMIT_BYTES}
    proc = ctx.Process(target=_child, args=(child, parent, os.getpid(), fn, args, limits), daemon=True)
    proc.start()
    child.close()
    try:
        deadline = time.monotonic() + wall_s
        while not parent.poll(min(0.2, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                proc.kill()
                raise MediaError(f"decoding {label} took longer than {wall_s:.0f} s; stopped")
            if on_wait is not None:
                on_wait()
        try:
            status, payload = parent.recv()
        except EOFError:
            proc.join(5)
            code = proc.exitcode
            if code is not None and code < 0:
                name = signal.Signals(-code).name
                raise MediaError(f"decoder crashed on {label} ({name})") from None
            raise MediaError(f"decoder died on {label} (exit {code})") from None
    finally:
        parent.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    if status == "ok":
        return payload  # type: ignore[no-any-return]
    raise MediaError(str(payload))


def in_sandbox() -> bool:
    return os.environ.get("VIGIE_NO_SANDBOX") != "1"
