"""Hostile videos through the sandboxed decoder (fingerprint.sandbox): the parent survives.

Truncated and mutated copies of a small synthetic clip go through
``run_sandboxed(fingerprint_query, path)``, as ``identify`` does with a downloaded video:
each ends with a fingerprint or a ``MediaError`` within its wall-clock limit, the test
process (the parent) carries on, and the children stay under the memory cap. Children that
crash on a signal, hang, or allocate without bound become clear ``MediaError``s too.
60 videos in CI; ``make soak`` (VIGIE_SOAK=1) runs 1,000.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import time
from pathlib import Path

import pytest

from fingerprint import sandbox
from fingerprint.extract import fingerprint_query
from fingerprint.sandbox import run_in_worker, run_sandboxed
from tests.figures import Figures, soak
from demoweb import synth
from foundation.errors import MediaError

WALL_S = 30.0
CPU_S = 20
MEMORY = 2 << 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    synth.make_film(str(path), seed=7, duration_s=4, fps=12, size=(160, 90))
    return path.read_bytes()


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One hostile variant of ``data`` and the name of what was done to it."""
    kind = rng.choice(["truncate", "flip", "zero", "splice", "garbage_header", "repeat", "box_size"])
    b = bytearray(data)
    n = len(b)
    if kind == "truncate":
        b = b[: rng.randrange(1, n)]
    elif kind == "flip":
        for _ in range(rng.randint(1, 64)):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        start = rng.randrange(n)
        b[start : start + rng.randint(16, 4096)] = bytes(min(4096, n - start))[: len(b[start : start + 4096])]
    elif kind == "splice":
        a, c = sorted(rng.randrange(n) for _ in range(2))
        b = b[:a] + b[c:] + b[a:c]
    elif kind == "garbage_header":
        b[: rng.randint(8, 256)] = rng.randbytes(256)[: rng.randint(8, 256)]
    elif kind == "repeat":
        a = rng.randrange(n)
        b = b[:a] + b[a : a + 2048] * rng.randint(2, 50) + b[a:]
    elif kind == "box_size":
        # MP4 box sizes are big-endian 32-bit words: lie about one of them.
        at = rng.randrange(0, max(1, n - 4))
        b[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x01", b"\x7f\xff\xff\xf0"])
    return kind, bytes(b)


def test_mutated_videos_end_ok_or_rejected_within_limits(clip: bytes, tmp_path: Path,
                                                         figures: Figures) -> None:
    count = 1000 if soak() else 60
    rng = random.Random(20261126)
    outcomes = {"ok": 0, "rejected": 0}
    slowest = 0.0
    unclear: list[str] = []
    for i in range(count):
        kind, data = mutate(clip, rng)
        path = tmp_path / f"m{i % 4}.mp4"
        path.write_bytes(data)
        t0 = time.monotonic()
        try:
            run_sandboxed(fingerprint_query, str(path), label=f"mutant {i}", memory=MEMORY,
                          cpu_s=CPU_S, wall_s=WALL_S)
            outcomes["ok"] += 1
        except MediaError as exc:
            outcomes["rejected"] += 1
            if not str(exc).strip():
                unclear.append(f"{i} {kind}")
        slowest = max(slowest, time.monotonic() - t0)
    # ru_maxrss of waited-for children, in KiB on Linux: the largest any child of this
    # process reached (an upper bound for the sandboxed ones).
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    # A forked child starts with its parent's pages (here a test worker that may have run
    # hundreds of tests: 2.2 GiB once in CI), and the cap is on what decoding adds to
    # them (fingerprint.sandbox): the parent's own peak so far bounds what it inherits.
    added = max(0, child_peak - resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    total = outcomes["ok"] + outcomes["rejected"]
    figures.record("sandbox: mutated videos, parent survived, each ok or MediaError",
                   f"{total}/{count} ({outcomes['ok']} ok, {outcomes['rejected']} rejected)",
                   f"{count}/{count}", total == count and not unclear)
    figures.record("sandbox: slowest mutated video (s)", f"{slowest:.1f}",
                   f"< wall limit {WALL_S:.0f} s", slowest < WALL_S + 5)
    figures.record("sandbox: peak child memory above its parent's (MiB)", f"{added / 2**20:.0f}",
                   f"< cap {MEMORY / 2**20:.0f} MiB", added < MEMORY)
    assert total == count
    assert not unclear, f"MediaErrors without a message: {unclear}"
    assert slowest < WALL_S + 5
    assert added < MEMORY
    # The original is still readable: the parent is in a sane state after all that.
    path = tmp_path / "orig.mp4"
    path.write_bytes(clip)
    assert len(run_sandboxed(fingerprint_query, str(path), memory=MEMORY, wall_s=WALL_S)) > 0


def _segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _hang() -> None:
    while True:
        time.sleep(0.05)


def _spin() -> None:
    while True:
        pass


def _hog() -> int:
    chunks = []
    while True:
        chunks.append(bytearray(64 << 20))
        chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])


def test_child_crashes_hangs_and_hogs_become_media_errors(figures: Figures) -> None:
    cases = {
        "SIGSEGV": (_segfault, {}, "SIGSEGV"),
        "wall-clock hang": (_hang, {"wall_s": 1.0}, "longer than"),
        "CPU spin": (_spin, {"cpu_s": 1, "wall_s": 20.0}, "SIGXCPU|SIGKILL"),
        "memory hog": (_hog, {"memory": 512 << 20, "wall_s": 20.0}, "memory"),
    }
    clear = 0
    for name, (fn, kw, expect) in cases.items():
        with pytest.raises(MediaError, match=expect):
            run_sandboxed(fn, label=name, **kw)  # type: ignore[arg-type]
        clear += 1
    figures.record("sandbox: crash/hang/CPU/memory children turned into a clear MediaError",
                   f"{clear}/{len(cases)}", f"{len(cases)}/{len(cases)}", clear == len(cases))


def _pid() -> int:
    return os.getpid()


def test_the_worker_serves_call_after_call_and_is_replaced_when_it_fails(clip: bytes, tmp_path: Path) -> None:
    # One child serves the calls (a warm decoder: see sandbox.WORKER_CALLS).
    first = run_in_worker(_pid)
    assert first != os.getpid() and run_in_worker(_pid) == first
    # A clean failure leaves it in place.
    with pytest.raises(MediaError):
        run_in_worker(fingerprint_query, str(tmp_path / "missing.mp4"))
    assert run_in_worker(_pid) == first
    # A crash, a hang and a CPU hog each end as they would in a child of their own, with
    # the same clear error, and the next call gets a new worker.
    seen = {first}
    for fn, kw, expect in ((_segfault, {}, "SIGSEGV"), (_hang, {"wall_s": 1.0}, "longer than"),
                           (_spin, {"cpu_s": 1, "wall_s": 20.0}, "SIGXCPU|SIGKILL")):
        with pytest.raises(MediaError, match=expect):
            run_in_worker(fn, label=fn.__name__, **kw)  # type: ignore[arg-type]
        now = run_in_worker(_pid)
        assert now not in seen
        seen.add(now)
    # Hostile videos through the worker, then the original: still decoded.
    rng = random.Random(12)
    for i in range(12):
        kind, data = mutate(clip, rng)
        path = tmp_path / f"m{i}-{kind}.mp4"
        path.write_bytes(data)
        try:
            run_in_worker(fingerprint_query, str(path), wall_s=WALL_S)
        except MediaError as exc:
            assert str(exc), kind
    (tmp_path / "orig.mp4").write_bytes(clip)
    assert len(run_in_worker(fingerprint_query, str(tmp_path / "orig.mp4"))) > 0
    # After WORKER_CALLS calls a new one.
    worker = run_in_worker(_pid)
    for _ in range(sandbox.WORKER_CALLS):
        if run_in_worker(_pid) != worker:
            break
    else:
        raise AssertionError("the worker was never replaced")


def _sleep_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_any_thread_uses_the_worker_and_a_second_at_once_or_a_closure_gets_a_child() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    worker = run_in_worker(_pid)
    # Another thread (a scheduler's job) uses the same worker; the worker outlives that
    # thread (it is forked by the sandbox's own thread, not by the caller).
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(run_in_worker, _pid).result() == worker
    assert run_in_worker(_pid) == worker
    # A worker first forked for a thread that then ends serves on.
    sandbox.stop_worker()
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(run_in_worker(_pid)))
    t.start()
    t.join()
    time.sleep(0.2)
    assert run_in_worker(_pid) == seen[0]
    # While one thread's call is in the worker, another's gets a child of its own.
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(run_in_worker, _sleep_pid, 1.0)
        time.sleep(0.3)
        other = pool.submit(run_in_worker, _pid).result()
        assert slow.result() == seen[0] and other not in {seen[0], os.getpid()}
    # A call that cannot be pickled (a closure) goes to a child forked with it.
    here = os.getpid()
    assert run_in_worker(lambda: (os.getpid(), here)) not in {(seen[0], here), (here, here)}
    assert run_in_worker(_pid) == seen[0]


def _context_of(context: object, x: int) -> tuple[int, object, int]:
    return os.getpid(), context, x


def test_a_worker_is_forked_with_the_context_its_calls_need() -> None:
    # ``context`` (the catalogue's index, in the product) is not sent: the worker is
    # forked with it, and a call with another context object gets a worker forked anew.
    from concurrent.futures import ThreadPoolExecutor

    index, titles = {"hashes": list(range(1000))}, {1: 1}
    pid, got, x = run_in_worker(_context_of, 5, context=(index, titles))
    assert pid != os.getpid() and got == (index, titles) and x == 5
    # The same objects (in a tuple made anew): the same worker. No context: the same.
    assert run_in_worker(_context_of, 6, context=(index, titles))[0] == pid
    assert run_in_worker(_pid) == pid
    # An equal but other object: a new worker, which has that one.
    other = {"hashes": list(range(1000))}
    pid2, got, _ = run_in_worker(_context_of, 7, context=(other, titles))
    assert pid2 != pid and got == (other, titles)
    # A child of its own (another thread's call in the worker) is forked with it too.
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(run_in_worker, _sleep_pid, 1.0)
        time.sleep(0.3)
        pid3, got, x = pool.submit(lambda: run_in_worker(_context_of, 8, context=(index, titles))).result()
        assert slow.result() == pid2
    assert pid3 not in {pid, pid2, os.getpid()} and got == (index, titles) and x == 8


def test_the_callers_loopback_setting_reaches_the_worker(clip: bytes, tmp_path: Path) -> None:
    # The worker is forked before the caller enters ``media_loopback``: the setting of
    # each call is handed to it (stages.identify.identify_source, run in the worker whole
    # with the index).
    from demoweb.rangeserver import RangeServer
    from fingerprint.index import HashIndex
    from foundation.netsafe import media_loopback
    from stages.identify import identify_source

    empty, titles = HashIndex.build([]), {}  # the same objects each call: the same worker
    (tmp_path / "c.mp4").write_bytes(clip)
    with pytest.raises(MediaError):  # forks the worker, with this index, outside the setting
        identify_source(str(tmp_path / "missing.mp4"), empty, titles)
    worker = sandbox._worker
    with RangeServer(str(tmp_path)) as srv:
        with media_loopback(False), pytest.raises(MediaError, match="loopback"):
            identify_source(f"http://127.0.0.1:{srv.port}/c.mp4", empty, titles)
        with media_loopback(True):
            fp, results = identify_source(f"http://localhost:{srv.port}/c.mp4", empty, titles)
            assert len(fp) > 0 and results == [] and fp.crops is None
    assert sandbox._worker is worker  # the same worker answered both


def test_the_worker_dies_on_sigterm_whatever_its_parent_does_with_it() -> None:
    # ``vigie run`` turns SIGTERM into a graceful shutdown; its worker, forked with that
    # handler, must still die on it (the parent's exit stops its children with SIGTERM
    # and waits for them).
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        sandbox.stop_worker()
        pid = run_in_worker(_pid)
        worker = sandbox._worker
        assert worker is not None and worker.proc.pid == pid
        os.kill(pid, signal.SIGTERM)
        worker.proc.join(5)
        assert worker.proc.exitcode == -signal.SIGTERM
        assert run_in_worker(_pid) != pid
    finally:
        signal.signal(signal.SIGTERM, previous)
