"""Database: typed models, session handling, Alembic migrations."""
