"""Engines, sessions and schema upgrades.

The database URL comes from ``--db``, else ``VIGIE_DATABASE_URL``, else an SQLite file
``vigie.db`` in the working directory. Callers open a session per unit of work
(``with Session.begin() as s:``) and pass it into library functions.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from foundation.errors import DatabaseError

DEFAULT_URL = "sqlite:///vigie.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get("VIGIE_DATABASE_URL") or DEFAULT_URL


def normalise_url(url: str) -> str:
    # "postgresql://" means psycopg2 to SQLAlchemy; we ship psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None) -> Engine:
    """Create an engine, or raise DatabaseError with a readable reason."""
    raw = resolve_url(url)
    try:
        parsed = make_url(normalise_url(raw))
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            parent = Path(parsed.database).expanduser().resolve().parent
            if not parent.is_dir():
                raise DatabaseError(f"database directory does not exist: {parent}")
        engine = create_engine(parsed, future=True, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise DatabaseError(f"bad database URL {raw!r}: {exc}") from None
    except ImportError as exc:
        raise DatabaseError(f"database driver missing for {raw!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def sessionmaker_for(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema (what ``vigie init`` does)."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except DBAPIError as exc:
        raise DatabaseError(f"cannot open database: {exc.orig}") from None


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:  # unreachable, or a file that is no database (/etc/passwd)
        raise DatabaseError(f"cannot open database: {exc.orig}") from None


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database that ``vigie init`` has not brought to head."""
    current = current_revision(engine)
    if current is None:
        raise DatabaseError(f"database {engine.url.render_as_string(hide_password=True)} "
                            "is not initialised: run `vigie init`")
    if current != head_revision():
        raise DatabaseError(f"database schema is at {current}, this vigie needs "
                            f"{head_revision()}: run `vigie init` to upgrade")


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot connect to database: {getattr(exc, 'orig', exc)}") from None
