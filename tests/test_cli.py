"""The CLI end to end: init, catalog add/list, identify, and the error cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from db.models import ReferenceVideo, Title
from vigie.cli import cli

VIGIE = str(Path(sys.executable).parent / "vigie")


def run(db_url: str, *args: str) -> "object":
    result = CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
    return result


def _counts(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as c:
        return c.scalar(select(func.count()).select_from(Title)), c.scalar(select(func.count()).select_from(ReferenceVideo))


def test_catalogue_and_identify(db_url: str, media: dict[str, str]) -> None:
    r = run(db_url, "init")
    assert r.exit_code == 0, r.output
    r = run(db_url, "catalog", "add", media["film_a"], "--title", "Film A", "--year", "2020",
            "--alt-title", "Le Film A", "--offer", "https://vod.example/a")
    assert r.exit_code == 0, r.output
    assert "added title 1" in r.output
    r = run(db_url, "catalog", "add", media["film_b"], "--title", "Film B")
    assert r.exit_code == 0
    # The same file again: detected by SHA-256, nothing changes.
    r = run(db_url, "catalog", "add", media["film_a"], "--title", "Film A")
    assert r.exit_code == 0 and "already catalogued" in r.output

    r = run(db_url, "catalog", "list", "--json")
    rows = json.loads(r.output)
    assert [t["title"] for t in rows] == ["Film A", "Film B"]
    assert rows[0]["alt_titles"] == ["Le Film A"]
    assert rows[0]["offers"][0]["url"] == "https://vod.example/a"
    ref = rows[0]["references"][0]
    assert len(ref["sha256"]) == 64 and abs(ref["duration_s"] - 60) < 0.5 and ref["fps"] == 24
    assert ref["hashes"] > 60

    r = run(db_url, "identify", media["copy_a"], "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"video", "duration_s", "frames_hashed", "elapsed_s", "matches"} <= set(out)
    m = out["matches"][0]
    assert set(m) == {"title_id", "title", "decision", "score", "matched_s", "offset_s", "speed",
                      "cand_start_s", "cand_end_s", "ref_start_s", "ref_end_s"}
    assert m["title"] == "Film A" and m["decision"] == "confirmed"
    assert abs(m["offset_s"] - 20) <= 1.0
    assert [x for x in out["matches"] if x["title"] == "Film B"] == []

    r = run(db_url, "identify", media["other"], "--json")
    assert json.loads(r.output)["matches"] == []

    r = run(db_url, "identify", media["copy_a"])
    assert "CONFIRMED 'Film A'" in r.output


def test_errors_leave_database_unchanged(db_url: str, media: dict[str, str], tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    assert run(db_url, "catalog", "add", media["film_b"], "--title", "B").exit_code == 0
    before = _counts(engine)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(30000))
    truncated = tmp_path / "truncated.mp4"
    data = Path(media["film_a"]).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = [
        (["catalog", "add", str(tmp_path / "missing.mp4"), "--title", "X"], "no such file"),
        (["catalog", "add", str(junk), "--title", "X"], "junk.mp4"),
        (["catalog", "add", str(truncated), "--title", "X"], "truncated.mp4"),
        (["catalog", "add", str(empty), "--title", "X"], "empty.mp4"),
        (["catalog", "add", media["film_a"], "--title", "X", "--offer", "ftp://nope"], "offer URL"),
        (["identify", str(junk)], "junk.mp4"),
        (["identify", str(tmp_path / "missing.mp4")], "no such file"),
    ]
    for args, needle in cases:
        r = CliRunner().invoke(cli, ["--db", db_url, *args])
        assert r.exit_code == 1, (args, r.output)
        assert needle in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert _counts(engine) == before


def test_real_command_one_line_errors(tmp_path: Path) -> None:
    if not os.path.exists(VIGIE):
        pytest.skip("vigie entry point not installed next to this python")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    p = subprocess.run([VIGIE, "--db", db, "identify", str(tmp_path / "nope.mp4")], capture_output=True, text=True)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    # Not initialised yet: a clear message, not a crash.
    assert "vigie init" in p.stderr or "no such file" in p.stderr
    p = subprocess.run([VIGIE, "--db", "nosuchdriver://x", "init"], capture_output=True, text=True)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = subprocess.run([VIGIE, "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db", "init"], capture_output=True, text=True)
    assert p.returncode == 1 and "does not exist" in p.stderr
    p = subprocess.run([VIGIE, "nosuchverb"], capture_output=True, text=True)
    assert p.returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nurll = 'x'\n")
    p = subprocess.run([VIGIE, "--config", str(bad), "--db", db, "init"], capture_output=True, text=True)
    assert p.returncode == 1 and "database.urll" in p.stderr


def test_uninitialised_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    r = CliRunner().invoke(cli, ["--db", db, "catalog", "list"])
    assert r.exit_code == 1 and "vigie init" in r.output


def test_help_lists_only_working_verbs() -> None:
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for verb in ("init", "catalog", "identify", "demo"):
        assert verb in r.output


def test_index_cache_follows_the_catalogue(tmp_path: Path, media: dict[str, str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    cfg = tmp_path / "vigie.toml"
    cache = tmp_path / "idx"
    cfg.write_text(f"[match]\nindex_dir = '{cache}'\n")
    base = ["--db", db, "--config", str(cfg)]
    assert CliRunner().invoke(cli, [*base, "init"]).exit_code == 0
    assert CliRunner().invoke(cli, [*base, "catalog", "add", media["film_b"], "--title", "B"]).exit_code == 0
    r = CliRunner().invoke(cli, [*base, "identify", media["copy_a"], "--json"])
    assert json.loads(r.output)["matches"] == []
    first = sorted(os.listdir(cache))
    assert len(first) == 1
    # A new title makes a new index version; the copy of it is found through the cache.
    assert CliRunner().invoke(cli, [*base, "catalog", "add", media["film_a"], "--title", "A"]).exit_code == 0
    r = CliRunner().invoke(cli, [*base, "identify", media["copy_a"], "--json"])
    assert json.loads(r.output)["matches"][0]["title"] == "A"
    second = sorted(os.listdir(cache))
    assert len(second) == 1 and second != first


def test_catalogue_ingest_reports_progress(Session, media: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from stages.catalog import add_title

    seen: list[tuple[float, float]] = []
    with Session.begin() as s:
        add_title(s, media["film_b"], title="B", progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] > 30
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_commands_work_with_the_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No --db, no VIGIE_DATABASE_URL, no [database] url: the documented default
    (sqlite:///vigie.db in the working folder) is used by every command, `status` included
    (it once passed an empty URL to the cluster check and crashed)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIGIE_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"], catch_exceptions=False).exit_code == 0
    assert (tmp_path / "vigie.db").exists()
    r = runner.invoke(cli, ["status"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "scheduler: not running" in r.output
