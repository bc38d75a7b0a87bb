"""Alembic migrations: upgrade to head, down to base, and up again, on each database."""

from __future__ import annotations

from sqlalchemy import inspect

from db.models import Base
from db.session import current_revision, downgrade, head_revision, make_engine, upgrade


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert not (set(Base.metadata.tables) & set(inspect(engine).get_table_names()))
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    # Autogenerate against the migrated schema finds nothing to do: the models and the
    # migrations say the same thing.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_0008_keeps_every_row_and_allows_material_without_title(db_url: str) -> None:
    # 0008 rebuilds reference_videos and matches on SQLite (batch mode): no row of theirs
    # nor of the tables pointing at them (notice items, thumbnails) may be lost on the way.
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0007_web_sessions")
        with engine.begin() as c:
            c.execute(text("INSERT INTO titles (id, title, created_at) VALUES (1, 'Film', '2026-01-01')"))
            c.execute(text("INSERT INTO reference_videos (id, title_id, sha256, duration_s, fps, width, height, "
                           "size_bytes, algorithm, frame_count, hashes, times, created_at) VALUES (1, 1, 'a', 60, "
                           "24, 480, 270, 10, 'x', 0, :b, :b, '2026-01-01')"), {"b": b""})
            c.execute(text("INSERT INTO hosts (id, name, domain_patterns, channel, language, licensed_partner, "
                           "needs_approval, settings) VALUES (1, 'h', '[]', 'email', 'en', false, false, '{}')"))
            c.execute(text("INSERT INTO candidates (id, canonical_url, page_url, media_urls, evidence, status, "
                           "attempts, first_seen, last_seen) VALUES (1, 'u', 'u', '[]', '{}', 'matched', 1, "
                           "'2026-01-01', '2026-01-01')"))
            c.execute(text("INSERT INTO matches (id, candidate_id, title_id, reference_id, score, matched_s, "
                           "offset_s, speed, cand_start_s, cand_end_s, ref_start_s, ref_end_s, decision, review, "
                           "details, created_at) VALUES (1, 1, 1, 1, 0.9, 20, 0, 1, 0, 20, 0, 20, 'confirmed', "
                           "'none', '{}', '2026-01-01')"))
            c.execute(text("INSERT INTO match_frames (id, match_id, ref_t, cand_t, created_at) "
                           "VALUES (1, 1, 1, 1, '2026-01-01')"))
            c.execute(text("INSERT INTO notices (id, host_id, regime, template, language, status, attempts, "
                           "escalation_level, created_at, kind) VALUES (1, 1, 'dmca', 't', 'en', 'sent', 1, 0, "
                           "'2026-01-01', 'notice')"))
            c.execute(text("INSERT INTO notice_items (id, notice_id, match_id, url, role, state, escalation_level) "
                           "VALUES (1, 1, 1, 'u', 'hosting', 'notified', 0)"))
        upgrade(engine)
        with engine.begin() as c:
            assert c.execute(text("SELECT reference_id, title_id FROM matches")).all() == [(1, 1)]
            assert c.scalar(text("SELECT count(*) FROM notice_items")) == 1
            assert c.scalar(text("SELECT count(*) FROM match_frames")) == 1
            assert c.execute(text("SELECT title_id, flags, allowed_reason FROM reference_videos")).all() == [
                (1, None, None)]
            # Allowed material of no title, and a match of it.
            c.execute(text("INSERT INTO reference_videos (id, title_id, sha256, duration_s, fps, width, height, "
                           "size_bytes, algorithm, frame_count, hashes, times, flags, allowed_reason, created_at) "
                           "VALUES (2, NULL, 'b', 5, 24, 480, 270, 10, 'x', 0, :b, :b, :b, 'logo', '2026-01-01')"),
                      {"b": b""})
            c.execute(text("INSERT INTO matches (id, candidate_id, title_id, reference_id, score, matched_s, "
                           "offset_s, speed, cand_start_s, cand_end_s, ref_start_s, ref_end_s, decision, review, "
                           "details, created_at) VALUES (2, 1, NULL, 2, 0.9, 5, 0, 1, 0, 5, 0, 5, 'allowed', "
                           "'none', '{}', '2026-01-01')"))
        downgrade(engine, "0007_web_sessions")
        with engine.begin() as c:
            assert c.execute(text("SELECT id FROM reference_videos")).all() == [(1,)]
            assert c.execute(text("SELECT id, reference_id FROM matches")).all() == [(1, 1)]
            assert c.scalar(text("SELECT count(*) FROM notice_items")) == 1
    finally:
        engine.dispose()


def test_schema_check_reads_what_alembic_says(db_url: str) -> None:
    # check_schema reads the stored revision and the scripts' head without Alembic: they
    # are Alembic's answers, at every revision, and it refuses all but the head.
    import pytest

    from db.session import _migration_heads, _stored_revisions, check_schema
    from foundation.errors import DatabaseError

    assert _migration_heads() == [head_revision()]
    engine = make_engine(db_url)
    try:
        assert _stored_revisions(engine) == [] and current_revision(engine) is None
        with pytest.raises(DatabaseError, match="not initialised"):
            check_schema(engine)
        upgrade(engine, "0002_reports")
        assert _stored_revisions(engine) == [current_revision(engine)] == ["0002_reports"]
        with pytest.raises(DatabaseError, match="run `vigie init` to upgrade"):
            check_schema(engine)
        upgrade(engine)
        assert _stored_revisions(engine) == [current_revision(engine)] == [head_revision()]
        check_schema(engine)
    finally:
        engine.dispose()


def test_schema_check_does_not_import_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    db = tmp_path / "v.db"
    code = ("import sys; from db.session import make_engine, upgrade, check_schema; "
            f"e = make_engine('sqlite:///{db}'); upgrade(e); e.dispose(); "
            "[sys.modules.pop(m) for m in list(sys.modules) if m.split('.')[0] == 'alembic']; "
            f"e = make_engine('sqlite:///{db}'); check_schema(e); "
            "print(any(m.split('.')[0] == 'alembic' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_0011_publishes_released_titles_and_keeps_staff_jurisdictions(db_url: str) -> None:
    # Existing titles with a legitimate offer keep their public page (notices already sent
    # may link to it); a title with nothing to point to (a film watched for leaks) loses
    # it. A jurisdiction set before 0011 counts as set by staff.
    from sqlalchemy import text

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0010_needs_browser")
        with engine.begin() as c:
            c.execute(text("INSERT INTO titles (id, title, created_at) VALUES (1, 'Released', '2026-01-01'), "
                           "(2, 'Unreleased', '2026-01-01')"))
            c.execute(text("INSERT INTO offers (id, title_id, url, kind, territory) "
                           "VALUES (1, 1, 'https://vod.example/r', 'svod', '*')"))
            c.execute(text("INSERT INTO hosts (id, name, domain_patterns, channel, language, licensed_partner, "
                           "needs_approval, settings, jurisdiction) VALUES (1, 'h', '[]', 'email', 'en', false, "
                           "false, '{}', 'FR'), (2, 'g', '[]', 'email', 'en', false, false, '{}', NULL)"))
        upgrade(engine)
        with engine.begin() as c:
            rows = c.execute(text("SELECT id, published FROM titles ORDER BY id")).all()
            assert [(i, bool(p)) for i, p in rows] == [(1, True), (2, False)]
            assert c.execute(text("SELECT id, jurisdiction_source FROM hosts ORDER BY id")).all() == \
                [(1, "staff"), (2, None)]
    finally:
        engine.dispose()
