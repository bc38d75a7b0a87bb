"""What every stage is given (:class:`Context`) and what it gives back (:class:`Counts`).

A context is opened once per process or command (``Context.open``): one engine, one
session factory, the configuration and a stop flag. Every entry point (the CLI verbs,
the scheduler, the cluster tasks, the demo) opens one and calls the stages through
``stages.table``; a stage reads its own config keys from ``ctx.config``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from foundation.config import Config
from foundation.timeutil import utc_now


class Counts(dict[str, Any]):
    """A stage run's figures: what ``job_runs`` records and the job log prints (numbers
    and short strings; lists are counted). The stage's whole outcome rides along in
    ``detail`` for a caller that shows more of it (the CLI, the demo)."""

    detail: Any = None

    @classmethod
    def of(cls, detail: Any, **figures: Any) -> Counts:
        counts = cls(figures)
        counts.detail = detail
        return counts


@dataclass
class Context:
    config: Config
    db_url: str
    engine: Engine
    Session: sessionmaker[Session]
    # Set by a signal handler or a shutting-down scheduler: long stages look at it between
    # items, so a stop waits for the item in hand, never for a whole backlog.
    stop: threading.Event = field(default_factory=threading.Event)
    # A fixed "now" (the demo's "five hours later"); None: the clock.
    at: datetime | None = None

    @classmethod
    def open(cls, db_url: str | None, config: Config, *, check: bool = True) -> Context:
        """A context on ``db_url`` (None: the configured or default database). With
        ``check``, a database that is not initialised or not upgraded is refused here."""
        from db.session import check_schema, make_engine, resolve_url, sessionmaker_for

        url = resolve_url(db_url or config.database_url)
        engine = make_engine(url)
        if check:
            try:
                check_schema(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(config=config, db_url=url, engine=engine, Session=sessionmaker_for(engine))

    def now(self) -> datetime:
        return self.at or utc_now()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
