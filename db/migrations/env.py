"""Alembic environment: runs on the engine handed in by ``db.session.upgrade``."""

from __future__ import annotations

from alembic import context

from db.models import Base
from db.session import make_engine

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table on SQLite (copy, drop, rename). With foreign keys on,
        # the drop deletes its rows first and fires their ON DELETE actions: the rows of
        # the tables pointing at it would be cascaded away or set to NULL. The pragma only
        # takes effect outside a transaction, so it is set before the migration's own.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
