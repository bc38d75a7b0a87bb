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
import pickle
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
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


def _enter(parent_pid: int, other_end: Any) -> None:
    """What a sandbox child does first: die with its parent, and drop the parent's end
    of the pipe (without it here, a send to a parent that is gone fails at once instead
    of blocking on a pipe only this process could ever read)."""
    die_with_parent(parent_pid)
    # A stop signal ends the child: the parent's own handlers (the scheduler's graceful
    # shutdown on SIGTERM) would keep it alive, and the parent's exit, which stops its
    # children with SIGTERM and waits for them, waiting for ever.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    other_end.close()
    # A crash in the child is reported by the parent as a MediaError; a traceback dump
    # from an inherited faulthandler (pytest enables one) would only be noise.
    faulthandler.disable()


def _reply(conn: Any, call: Callable[[], Any]) -> None:
    """Send the parent ``call()``'s result, or what went wrong as one line."""
    try:
        conn.send(("ok", call()))
    except MediaError as exc:
        conn.send(("error", str(exc)))
    except MemoryError:
        conn.send(("error", "decoding needed more memory than allowed"))
    except Exception as exc:  # noqa: BLE001 - anything in the child is a media failure
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"))


def _fixed_limits(limits: dict[str, int]) -> None:
    # The budget is what decoding may add: a forked child starts with its parent's
    # address space (a memory-mapped index, loaded libraries, a long-running test
    # process), which must not eat into it.
    _limit(resource.RLIMIT_AS, _address_space() + limits["memory"])
    _limit(resource.RLIMIT_FSIZE, limits["fsize"])
    _limit(resource.RLIMIT_CORE, 0)


def _child(conn: Any, other_end: Any, parent_pid: int, fn: Callable[..., Any], args: tuple[Any, ...],
           limits: dict[str, int]) -> None:
    _enter(parent_pid, other_end)

    def call() -> Any:
        _fixed_limits(limits)
        _limit(resource.RLIMIT_CPU, limits["cpu"])
        return fn(*args)

    try:
        _reply(conn, call)
    finally:
        conn.close()


def _await_reply(conn: Any, label: str, wall_s: float, stop: Callable[[], None],
                 on_wait: Callable[[], None] | None = None) -> None:
    """Wait until the child has answered on ``conn``; past ``wall_s``, ``stop`` it and
    raise MediaError. ``on_wait`` is called about five times a second meanwhile."""
    deadline = time.monotonic() + wall_s
    while not conn.poll(min(0.2, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            stop()
            raise MediaError(f"decoding {label} took longer than {wall_s:.0f} s; stopped")
        if on_wait is not None:
            on_wait()


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
        _await_reply(parent, label, wall_s, proc.kill, on_wait)
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


# A sandbox child that lives on between calls (``run_in_worker``). Forking one per video
# cost a query 30 to 40 ms: fork and pipe about 7 ms, the result back through the pipe
# 5 to 10 ms, and the decoding itself 20 ms more in a fresh process, every buffer of
# which is a new page (60 bench queries, fingerprinted: median 87 to 100 ms in a child
# of their own, 57 ms in a child that had decoded before, 57 ms in the parent). It is
# replaced after WORKER_CALLS calls, so that whatever decoding leaves in its heap stays
# bounded, and whenever it dies or hangs. Any thread may use it (one at a time); it is
# forked by a thread kept for that (``_Forker``), because a child set to die with its
# parent dies with the thread that forked it: forked by a scheduler's job thread, it
# would die with that thread.
WORKER_CALLS = 64


def _serve(conn: Any, other_end: Any, parent_pid: int, limits: dict[str, int], context: Any) -> None:
    """The worker's loop: one (fn, args, cpu_s, with_context) call after another, each
    under its own CPU limit, until the parent closes the pipe. ``context``: what the
    worker was forked with (``run_in_worker``), first argument of the calls that ask."""
    _enter(parent_pid, other_end)
    _fixed_limits(limits)
    try:
        while True:
            try:
                fn, args, cpu_s, with_context = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            if with_context:
                args = (context, *args)

            def call(fn: Callable[..., Any] = fn, args: tuple[Any, ...] = args, cpu_s: int = cpu_s) -> Any:
                used = resource.getrusage(resource.RUSAGE_SELF)
                _limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime) + 1 + cpu_s)
                return fn(*args)

            _reply(conn, call)
    finally:
        conn.close()


class _WorkerGone(Exception):
    """The worker died during a call (a crash, a limit, its parent thread gone)."""


class _NotPicklable(Exception):
    """The call cannot be sent to the worker."""


class _Worker:
    def __init__(self, context: Any) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe(duplex=True)
        limits = {"memory": MEMORY_LIMIT_BYTES, "fsize": FILE_SIZE_LIMIT_BYTES}
        # Forked, not pickled: the child has ``context`` in its memory as it is here.
        self.context = context
        self.proc = ctx.Process(target=_serve, args=(child, self.conn, os.getpid(), limits, context), daemon=True,
                                name="vigie-sandbox")
        self.proc.start()
        child.close()
        self.owner = os.getpid()
        self.calls = 0

    def usable(self, context: Any) -> bool:
        return (self.proc.is_alive() and self.calls < WORKER_CALLS
                and (context is _NO_CONTEXT or _same(context, self.context)))

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], label: str, cpu_s: int, wall_s: float,
             with_context: bool) -> T:
        self.calls += 1
        try:
            job = ForkingPickler.dumps((fn, args, cpu_s, with_context))
        except (pickle.PicklingError, AttributeError, TypeError):
            raise _NotPicklable from None  # a closure, say: it cannot be sent, only forked with
        try:
            self.conn.send_bytes(job)
            _await_reply(self.conn, label, wall_s, self.stop)
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.stop()
            raise _WorkerGone from None
        if status == "ok":
            return payload  # type: ignore[no-any-return]
        raise MediaError(str(payload))

    def stop(self) -> None:
        self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)


class _Forker:
    """A thread that lives as long as the process and forks the workers for the
    threads that call ``run_in_worker`` (see WORKER_CALLS)."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.requests: queue.SimpleQueue[tuple[Any, queue.SimpleQueue[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="vigie-sandbox-forker", daemon=True).start()

    def fork(self, context: Any) -> _Worker:
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.requests.put((context, reply))
        worker = reply.get()
        if isinstance(worker, BaseException):
            raise worker
        return worker  # type: ignore[no-any-return]

    def _run(self) -> None:
        while True:
            context, reply = self.requests.get()
            try:
                reply.put(_Worker(context))
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                reply.put(exc)
            del context, reply


_forker: _Forker | None = None
_worker: _Worker | None = None
_worker_lock = threading.Lock()
_NO_CONTEXT: Any = object()


def _same(a: Any, b: Any) -> bool:
    """The same context: the same object, or tuples of the same objects."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    return a is b


def run_in_worker(fn: Callable[..., T], *args: Any, label: str = "video", cpu_s: int = CPU_LIMIT_S,
                  wall_s: float = WALL_LIMIT_S, context: Any = _NO_CONTEXT) -> T:
    """``run_sandboxed``'s call, with its limits, in a sandbox child that lives on
    between calls (see WORKER_CALLS).

    ``fn`` and ``args`` go to it by pickling, and it was forked at its first call: what
    ``fn`` needs of the caller's state now goes in ``args``, or, when it is large and the
    same from call to call (the catalogue's index), in ``context``: the worker is forked
    with it in memory, a call with another context object (or a tuple of others: see
    ``_same``) replaces the worker, and ``fn`` is called as ``fn(context, *args)``.

    From any thread, one call at a time: a call made while another thread's is in the
    worker, one that cannot be pickled, and one during which the worker dies run in a
    child of their own as ``run_sandboxed`` does, whose answer stands: a video that
    crashes the decoder is reported as it always was, and only that video pays twice."""
    global _worker, _forker
    with_context = context is not _NO_CONTEXT
    alone = (context, *args) if with_context else args  # a child of its own is forked with the context
    if not _worker_lock.acquire(blocking=False):
        return run_sandboxed(fn, *alone, label=label, cpu_s=cpu_s, wall_s=wall_s)
    try:
        if _worker is not None and _worker.owner != os.getpid():
            _worker = None  # a forked copy of this process: that worker is its parent's
        if _worker is not None and not _worker.usable(context):
            _worker.stop()
            _worker = None
        if _worker is None:
            if _forker is None or _forker.owner != os.getpid():
                _forker = _Forker()
            _worker = _forker.fork(context if with_context else None)
        try:
            return _worker.call(fn, args, label, cpu_s, wall_s, with_context)
        except _WorkerGone:
            _worker = None
        except _NotPicklable:
            pass  # it goes to a child forked with it, below
        except MediaError:
            if not _worker.proc.is_alive():  # stopped on the deadline
                _worker = None
            raise
    finally:
        _worker_lock.release()
    return run_sandboxed(fn, *alone, label=label, cpu_s=cpu_s, wall_s=wall_s)


def stop_worker() -> None:
    """Stop this process's worker, if any (the next call forks a new one)."""
    global _worker
    with _worker_lock:
        if _worker is not None and _worker.owner == os.getpid():
            _worker.stop()
        _worker = None


def worker_cpu_s() -> float:
    """CPU seconds this process's worker has used so far (0 without one, or where /proc
    is missing). A child's CPU time reaches RUSAGE_CHILDREN only once it is reaped, which
    for the worker is when it is replaced: the two together are what the sandbox cost."""
    worker = _worker
    if worker is None or worker.owner != os.getpid() or worker.proc.pid is None:
        return 0.0
    try:
        with open(f"/proc/{worker.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def in_sandbox() -> bool:
    return os.environ.get("VIGIE_NO_SANDBOX") != "1"
