"""CLI start-up stays light: the heavy libraries are imported by the commands that use
them, not when ``vigie`` starts (issue 12: ``vigie --help`` and the start of every
command under 0.4 s). Checked on what is imported, not on a clock, so the test does not
depend on the machine's load; ``vigie bench --only startup`` gives the times."""

from __future__ import annotations

import json
import subprocess
import sys

# Each costs tens to hundreds of milliseconds to import.
HEAVY = ("numpy", "cv2", "av", "sqlalchemy", "scrapy", "twisted", "uvicorn", "fastapi", "starlette",
         "jinja2", "alembic", "apscheduler", "procrastinate", "psycopg", "PIL", "imagehash")


def _heavy_after(code: str) -> list[str]:
    probe = f"""
import json, sys
{code}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_cli_is_light() -> None:
    assert _heavy_after("import vigie.cli") == []


def test_help_of_every_verb_is_light() -> None:
    # Every verb and sub-verb's --help, in one child process (click's runner, no exit).
    code = """
import click
from click.testing import CliRunner
from vigie.cli import cli

def walk(cmd, path):
    yield path
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from walk(sub, [*path, name])

paths = list(walk(cli, []))
assert len(paths) > 10, paths
for path in paths:
    res = CliRunner().invoke(cli, [*path, "--help"])
    assert res.exit_code == 0, (path, res.output)
"""
    assert _heavy_after(code) == []


def test_read_only_commands_load_only_what_they_use(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Listing sites needs no spider (Scrapy), the status of a SQLite install no job
    # queue (Procrastinate) nor scheduler (APScheduler) nor notice templates (Jinja2),
    # listing users no password hashing (slow on purpose) nor web layer (Starlette),
    # listing the catalogue no decoder (PyAV) nor NumPy, and none of them the
    # public-suffix list (tldextract) until a URL's host is read. Nor http.client and
    # ssl, which only fetching needs.
    db = f"sqlite:///{tmp_path / 'v.db'}"
    subprocess.run([sys.executable, "-c", "from vigie.cli import main; main()", "--db", db, "init"],
                   check=True, capture_output=True)
    checks = {
        "sites list": "'scrapy' not in sys.modules and 'tldextract' not in sys.modules",
        "status": "not {'procrastinate', 'apscheduler', 'jinja2', 'tldextract', 'http.client'}"
                  " & set(sys.modules)",
        "users list": "sys.modules['webapp.accounts'].dummy_hash.cache_info().currsize == 0"
                      " and not {'tldextract', 'starlette', 'http.client'} & set(sys.modules)",
        "catalog list": "not {'av', 'numpy', 'cv2', 'tldextract', 'http.client'} & set(sys.modules)",
    }
    for command, check in checks.items():
        code = f"""
import sys
from click.testing import CliRunner
from vigie.cli import cli
res = CliRunner().invoke(cli, ["--db", {db!r}, *{command.split()!r}])
assert res.exit_code == 0, res.output
print({check})
"""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == "True", command


def _vigie(prelude: str, *args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    """``vigie ARGS`` through the console script's own entry point, after ``prelude``."""
    code = f"{prelude}\nimport sys\nsys.argv = ['vigie', *{list(args)!r}]\nfrom vigie.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=False)


def test_quick_exit_keeps_output_status_exit_handlers_and_threads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # ``main`` ends without the interpreter's teardown (cli.exit_now): what a command
    # printed must all be there, its status must be the command's, and what the
    # teardown would still have done (exit handlers, waiting for a thread) is done.
    db = f"sqlite:///{tmp_path / 'v.db'}"
    assert _vigie("", "--db", db, "init", cwd=str(tmp_path)).returncode == 0
    # Output through a pipe, in full: a listing as JSON.
    res = _vigie("", "--db", db, "holders", "list", "--json", cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []
    # A handled error: exit status 1 and the message; bad usage: 2.
    res = _vigie("", "--db", f"sqlite:///{tmp_path / 'none' / 'v.db'}", "status", cwd=str(tmp_path))
    assert res.returncode == 1 and res.stderr.startswith("Error:"), res.stderr
    assert _vigie("", "--no-such-option", cwd=str(tmp_path)).returncode == 2
    # Exit handlers run; a thread still working is waited for.
    marker, late = tmp_path / "atexit", tmp_path / "thread"
    prelude = f"""
import atexit, pathlib, threading, time
atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("ran"))
def work():
    time.sleep(0.5)
    pathlib.Path({str(late)!r}).write_text("done")
threading.Thread(target=work).start()
"""
    res = _vigie(prelude, "--db", db, "holders", "list", cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert marker.read_text() == "ran" and late.read_text() == "done"
    res = _vigie(prelude.replace("threading.Thread(target=work).start()", ""), "--help", cwd=str(tmp_path))
    assert res.returncode == 0 and "Usage:" in res.stdout and marker.read_text() == "ran"
