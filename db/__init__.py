"""Database: typed models, session handling, Alembic migrations, the host registry
(``db.hosts``) and the job queue's inserts (``db.jobqueue``).

The core. May import: ``foundation`` only.
"""
