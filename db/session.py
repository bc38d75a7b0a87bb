"""Engines, sessions and schema upgrades.

The database URL comes from ``--db``, else ``VIGIE_DATABASE_URL``, else an SQLite file
``vigie.db`` in the working directory. Callers open a session per unit of work
(``with Session.begin() as s:``) and pass it into library functions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from foundation.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported only by the functions that migrate or ask it (``upgrade``,
# ``current_revision``, ...): it costs about a quarter of a second, and the schema check
# every database command makes at start (``check_schema``) reads the two facts it needs
# directly (``_stored_revisions``, ``_migration_heads``).

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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema (what ``vigie init`` does)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except DBAPIError as exc:
        raise DatabaseError(f"cannot open database: {exc.orig}") from None


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:  # unreachable, or a file that is no database (/etc/passwd)
        raise DatabaseError(f"cannot open database: {exc.orig}") from None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return script.get_current_head()


# Where Alembic keeps a database's revision (its default; env.py does not change it).
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]\s*$", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.*)$", re.M)


def _migration_heads() -> list[str] | None:
    """The revisions of the migration scripts that no other script revises, read from
    their ``revision`` and ``down_revision`` lines; None when a script does not state
    them in that plain form (then only Alembic can tell)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if not rev and not down and path.name == "__init__.py":
            continue
        if len(rev) != 1 or len(down) != 1:
            return None
        revisions.add(rev[0])
        revised.update(re.findall(r"['\"]([^'\"]+)['\"]", down[0]))
    return sorted(revisions - revised)


def _stored_revisions(engine: Engine) -> list[str]:
    """The revisions a database says it is at (none when it has no version table)."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return []
            return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    except DBAPIError as exc:  # unreachable, or a file that is no database (/etc/passwd)
        raise DatabaseError(f"cannot open database: {exc.orig}") from None


def plain_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the scripts' head), without importing Alembic when the
    answer is plain: one stored revision, one head among the scripts. Otherwise (a
    branched history) Alembic is asked, as before."""
    stored = _stored_revisions(engine)
    current = stored[0] if len(stored) == 1 else None if not stored else current_revision(engine)
    heads = _migration_heads()
    return current, heads[0] if heads is not None and len(heads) == 1 else head_revision()


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database that ``vigie init`` has not brought to head."""
    current, head = plain_revisions(engine)
    if current is None:
        raise DatabaseError(f"database {engine.url.render_as_string(hide_password=True)} "
                            "is not initialised: run `vigie init`")
    if current != head:
        raise DatabaseError(f"database schema is at {current}, this vigie needs "
                            f"{head}: run `vigie init` to upgrade")


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot connect to database: {getattr(exc, 'orig', exc)}") from None
