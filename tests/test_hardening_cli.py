"""The CLI misused by a hurried operator (issue 13): every case is one line on stderr,
exit status 1, no traceback, and nothing hangs. Real ``vigie`` processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.figures import Figures

VIGIE = str(Path(sys.executable).parent / "vigie")
# A safety net for the FIFO cases (they once blocked for ever), not a measure: nothing
# here is expected to take more than a few seconds.
HANG_S = 120


def vigie(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VIGIE, *args], capture_output=True, text=True, timeout=HANG_S,
                          stdin=subprocess.DEVNULL)


def one_line_exit_1(p: subprocess.CompletedProcess[str]) -> bool:
    lines = p.stderr.strip().splitlines()
    return p.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in p.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    assert vigie("--db", url, "init").returncode == 0
    return url


def test_misuse_is_one_line_and_exit_1(db: str, tmp_path: Path, figures: Figures) -> None:
    not_a_db = tmp_path / "passwd"
    not_a_db.write_text("root:x:0:0:root:/root:/bin/bash\n" * 40)
    fifo = tmp_path / "video.fifo"
    os.mkfifo(fifo)
    video = tmp_path / "film.mp4"
    video.write_bytes(b"\x00" * 1024)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = str(busy.getsockname()[1])
    cases = {
        "a file that is no database": (["--db", f"sqlite:///{not_a_db}", "catalog", "list"], "not a database"),
        "offer https://[::1": (["--db", db, "catalog", "add", str(video), "--title", "T", "--offer", "https://[::1"],
                               "offer URL"),
        "report --date 0001-01-01": (["--db", db, "report", "--date", "0001-01-01", "--out", str(tmp_path)],
                                     "0001-01-01"),
        "report --date 9999-12-31": (["--db", db, "report", "--date", "9999-12-31", "--out", str(tmp_path)],
                                     "9999-12-31"),
        "serve --port 99999999": (["--db", db, "serve", "--port", "99999999"], "1 to 65535"),
        "serve --port -1": (["--db", db, "serve", "--port", "-1"], "1 to 65535"),
        "serve on a busy port": (["--db", db, "serve", "--port", port], "already in use"),
        "identify a FIFO": (["--db", db, "identify", str(fifo)], "not a regular file"),
        "catalog add a FIFO": (["--db", db, "catalog", "add", str(fifo), "--title", "T"], "not a regular file"),
        "config check /dev/zero": (["config", "check", "/dev/zero"], "not a regular file"),
        "config check a FIFO": (["config", "check", str(fifo)], "not a regular file"),
        "sites import a FIFO": (["--db", db, "sites", "import", str(fifo)], "not a regular file"),
        "sites add https://[::1": (["--db", db, "sites", "add", "v6", "https://[::1"], "start URL"),
        "sites add --schedule 999999999w": (["--db", db, "sites", "add", "big", "https://example.org/",
                                             "--schedule", "999999999w"], "1 year"),
    }
    bad = {}
    try:
        for name, (args, needle) in cases.items():
            p = vigie(*args)
            if not (one_line_exit_1(p) and needle in p.stderr):
                bad[name] = (p.returncode, p.stderr[-500:])
    finally:
        busy.close()
    figures.record("CLI: misuse cases answered with one line on stderr and exit 1",
                   f"{len(cases) - len(bad)}/{len(cases)}", f"{len(cases)}/{len(cases)}", not bad)
    assert not bad, bad


def test_crawl_exits_1_when_a_crawl_failed(db: str, tmp_path: Path) -> None:
    # timeout_s = nan once made every crawl fail at once while `vigie crawl` exited 0.
    assert vigie("--db", db, "sites", "add", "down", "http://127.0.0.1:9/").returncode == 0
    cfg = tmp_path / "nan.toml"
    cfg.write_text("[crawl]\ntimeout_s = nan\n")
    p = vigie("--db", db, "--config", str(cfg), "crawl")
    assert one_line_exit_1(p) and "crawl.timeout_s" in p.stderr, p.stderr
    # A crawl that did fail (killed by its time limit at once) fails the command.
    cfg.write_text("[crawl]\ntimeout_s = 0.001\n")
    p = vigie("--db", db, "--config", str(cfg), "crawl")
    assert one_line_exit_1(p) and "1 of 1 crawl(s) failed" in p.stderr, (p.returncode, p.stdout, p.stderr)
    assert "down: failed" in p.stdout
