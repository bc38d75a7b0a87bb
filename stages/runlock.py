"""One scheduler per database: the lock ``vigie run`` holds for its whole life.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated
connection kept open until the process ends. The server releases it the moment that
connection dies, so a killed scheduler never blocks the next one. The key is made of a
fixed number and a hash of the current schema, so two Vigie databases living in
schemas of one PostgreSQL database (as the tests do) do not block each other.

SQLite (no advisory locks): a row in ``scheduler_locks`` taken with a conditional
INSERT, or an UPDATE that only succeeds when the holder's heartbeat is older than
``stale_after`` (a process killed with SIGKILL leaves such a row). A background thread
refreshes the heartbeat; if the row was taken over meanwhile (this process was frozen
longer than ``stale_after``) ``on_lost`` is called so the scheduler stops.

On both, the row says who holds the lock (pid, host, since, heartbeat) for the refusal
message and ``vigie status``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from db.models import SchedulerLock
from foundation.errors import SchedulerError
from foundation.timeutil import as_utc, utc_now

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
# First half of the PostgreSQL advisory key: "VIGI" in ASCII; the second is the schema's hash.
PG_LOCK_KEY = 0x56494749
DEFAULT_STALE_AFTER_S = 120.0


def describe(row: SchedulerLock | None, now: datetime | None = None) -> str:
    if row is None:
        return "nobody"
    age = ((now or utc_now()) - as_utc(row.heartbeat_at)).total_seconds()
    return (f"pid {row.pid} on {row.host} since {as_utc(row.acquired_at):%Y-%m-%d %H:%M:%S} UTC, "
            f"last heartbeat {age:.0f} s ago")


def current_holder(engine: Engine) -> SchedulerLock | None:
    """The lock row as it stands (may be stale: see ``is_stale``)."""
    with engine.connect() as conn:
        row = conn.execute(select(SchedulerLock).where(SchedulerLock.name == LOCK_NAME)).first()
    if row is None:
        return None
    return SchedulerLock(**row._mapping)


def is_stale(row: SchedulerLock, stale_after_s: float, now: datetime | None = None) -> bool:
    return (now or utc_now()) - as_utc(row.heartbeat_at) > timedelta(seconds=stale_after_s)


class RunLock:
    """Acquire with ``acquire()`` (raises SchedulerError when held), release with ``release()``."""

    def __init__(self, engine: Engine, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.stale_after_s = stale_after_s
        self.heartbeat_s = max(0.2, stale_after_s / 4)
        self.on_lost = on_lost
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self.host = socket.gethostname()[:255]
        self._pg_conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.took_over: SchedulerLock | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self) -> None:
        if self.is_postgres:
            self._acquire_pg()
        else:
            self._acquire_row()
        self._thread = threading.Thread(target=self._beat, name="vigie-lock-heartbeat", daemon=True)
        self._thread.start()

    def _refused(self) -> SchedulerError:
        holder = current_holder(self.engine)
        return SchedulerError(f"another `vigie run` already runs against this database "
                              f"({describe(holder)}); refusing to start a second scheduler")

    def _acquire_pg(self) -> None:
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"),
                           {"k": PG_LOCK_KEY}).scalar()
        conn.commit()
        if not got:
            conn.close()
            raise self._refused()
        self._pg_conn = conn
        # The advisory lock is the authority; whatever row a dead holder left is stale.
        now = utc_now()
        with self.engine.begin() as c:
            c.execute(delete(SchedulerLock).where(SchedulerLock.name == LOCK_NAME))
            c.execute(insert(SchedulerLock).values(self._row(now)))

    def _row(self, now: datetime) -> dict[str, object]:
        return {"name": LOCK_NAME, "holder": self.token, "pid": self.pid, "host": self.host,
                "acquired_at": now, "heartbeat_at": now}

    def _acquire_row(self) -> None:
        now = utc_now()
        try:
            with self.engine.begin() as c:
                c.execute(insert(SchedulerLock).values(self._row(now)))
            return
        except IntegrityError:
            pass
        previous = current_holder(self.engine)
        cutoff = now - timedelta(seconds=self.stale_after_s)
        # One atomic statement: of two starters racing for a stale row only one matches.
        with self.engine.begin() as c:
            taken = c.execute(
                update(SchedulerLock)
                .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.heartbeat_at < cutoff)
                .values(holder=self.token, pid=self.pid, host=self.host, acquired_at=now, heartbeat_at=now)
            ).rowcount
        if not taken:
            raise self._refused()
        # Said in the scheduler's "started" line (vigie.commands.ops).
        self.took_over = previous

    def heartbeat(self) -> bool:
        """Refresh the heartbeat; False when the lock is no longer ours."""
        if self._pg_conn is not None:
            # The advisory lock lives as long as this connection: if the server restarted
            # or dropped it, the lock is gone too.
            try:
                held = self._pg_conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND classid::bigint = :k AND granted"), {"k": PG_LOCK_KEY}).scalar()
                self._pg_conn.commit()
            except Exception:  # noqa: BLE001 - a broken connection means a lost lock
                return False
            if not held:
                return False
        with self.engine.begin() as c:
            n = c.execute(update(SchedulerLock)
                          .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == self.token)
                          .values(heartbeat_at=utc_now())).rowcount
        return bool(n)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                ours = self.heartbeat()
            except Exception as exc:  # noqa: BLE001 - a DB hiccup must not kill the heartbeat
                log.error("scheduler lock heartbeat failed: %s", exc)
                continue
            if not ours:
                log.error("the scheduler lock was lost (taken over, or its connection dropped); stopping")
                if self.on_lost:
                    self.on_lost()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.engine.begin() as c:
                c.execute(delete(SchedulerLock).where(SchedulerLock.name == LOCK_NAME,
                                                      SchedulerLock.holder == self.token))
        finally:
            if self._pg_conn is not None:
                conn, self._pg_conn = self._pg_conn, None
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"),
                                 {"k": PG_LOCK_KEY})
                    conn.commit()
                except Exception:  # noqa: BLE001 - a dead connection holds no lock any more
                    conn.invalidate()
                finally:
                    conn.close()
