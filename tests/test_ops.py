"""`vigie run` as operators run it: real processes of the installed ``vigie`` against
SQLite and PostgreSQL: one scheduler per database, a killed one's lock taken over,
SIGTERM stops cleanly, ``--once`` runs every stage in order; ``vigie status`` and
``vigie config check``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import Candidate, CandidateStatus, CrawlRun, JobRun, Role, SchedulerLock, Site, SiteKind, User
from vigie.cli import cli
from stages.runlock import current_holder, is_stale

VIGIE = str(Path(sys.executable).parent / "vigie")
# Generous: a live scheduler on a loaded machine must never look dead.
STALE_S = 10.0


def _config(tmp_path: Path, **schedule: str) -> Path:
    sched = {"match_every": "1s", "dispatch_every": "1s", "verify_every": "1s", "resync_every": "1s",
             "lock_stale_after": f"{STALE_S}s", **schedule}
    lines = ["[notifier]", 'email = "rights@example.org"', 'legal_name = "Example Films"',
             "[report]", f'out_dir = "{tmp_path / "reports"}"', "[schedule]"]
    lines += [f'{k} = "{v}"' for k, v in sched.items()]
    path = tmp_path / "vigie.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def _start(procs: list[subprocess.Popen[str]], db_url: str, cfg: Path, *args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([VIGIE, "--db", db_url, "--config", str(cfg), "run", *args], cwd=cfg.parent,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    return p


def _vigie(db_url: str, cfg: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VIGIE, "--db", db_url, "--config", str(cfg), *args], cwd=cfg.parent,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _wait(cond, what: str, timeout: float = 20.0, proc: subprocess.Popen[str] | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _holder(Session) -> int | None:  # type: ignore[no-untyped-def]
    with Session() as s:
        row = s.get(SchedulerLock, "scheduler")
        return row.pid if row else None


def _runs(Session) -> list[JobRun]:  # type: ignore[no-untyped-def]
    with Session() as s:
        return list(s.scalars(select(JobRun).order_by(JobRun.id)))


def _events(stderr: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_one_scheduler_per_database_and_sigterm_stops_it(Session, db_url: str, tmp_path: Path,
                                                        procs: list) -> None:  # type: ignore[type-arg]
    cfg = _config(tmp_path)
    a = _start(procs, db_url, cfg)
    _wait(lambda: _holder(Session) == a.pid, "the first scheduler to hold the lock", proc=a)

    b = _vigie(db_url, cfg, "run")
    assert b.returncode == 1
    assert b.stderr.count("\n") == 1 and b.stderr.startswith("Error: another `vigie run` already runs")
    assert f"pid {a.pid}" in b.stderr
    assert _holder(Session) == a.pid

    # Every stage job runs at start-up, in flow order, then again on its 1 s interval.
    def stages_done() -> bool:
        done = {r.job for r in _runs(Session) if r.status == "ok"}
        return {"resync", "match", "notices", "verify"} <= done

    _wait(stages_done, "match, notices and verify to run", proc=a)
    first = {}
    for r in _runs(Session):
        first.setdefault(r.job, r.started_at)
    assert first["match"] < first["notices"] < first["verify"]

    a.send_signal(signal.SIGTERM)
    _, err = a.communicate(timeout=30)
    assert a.returncode == 0, err
    events = _events(err)
    assert events[0]["event"] == "started" and events[-1]["event"] == "stopped"
    assert any(e["event"] == "stopping" for e in events)
    jobs = [e for e in events if e["event"] == "job"]
    assert jobs and all(e["status"] == "ok" and "duration_s" in e and "counts" in e for e in jobs), jobs
    assert _holder(Session) is None
    # Nothing left half-done: every recorded run finished.
    assert all(r.status == "ok" and r.finished_at is not None for r in _runs(Session))


def test_killed_scheduler_lock_is_taken_over(Session, db_url: str, tmp_path: Path,
                                             procs: list) -> None:  # type: ignore[type-arg]
    stale = 3.0
    cfg = _config(tmp_path, lock_stale_after=f"{stale}s")
    a = _start(procs, db_url, cfg)
    _wait(lambda: _holder(Session) == a.pid, "the first scheduler to hold the lock", proc=a)
    a.kill()
    a.wait()
    postgres = db_url.startswith("postgresql")
    if not postgres:
        # While the dead process's row is fresh, a start is refused. Its heartbeat is moved
        # ahead here so that a slow start-up on a loaded machine cannot outlast it.
        with Session.begin() as s:
            row = s.get(SchedulerLock, "scheduler")
            fresh_until = datetime.now(timezone.utc) + timedelta(seconds=60)
            row.heartbeat_at, beat = fresh_until, row.heartbeat_at
        refused = _vigie(db_url, cfg, "run")
        assert refused.returncode == 1 and "another `vigie run`" in refused.stderr, refused.stderr
        with Session.begin() as s:
            s.get(SchedulerLock, "scheduler").heartbeat_at = beat
        _wait(lambda: is_stale(current_holder(Session.kw["bind"]), stale), "the dead holder's row to go stale")
    # PostgreSQL frees the advisory lock with the dead connection: no wait needed.
    c = _start(procs, db_url, cfg)
    _wait(lambda: _holder(Session) == c.pid, "the new scheduler to take the lock", 40, proc=c)
    c.send_signal(signal.SIGINT)
    _, err = c.communicate(timeout=30)
    assert c.returncode == 0, err
    started = _events(err)[0]
    assert started["event"] == "started"
    if not postgres:
        assert started["took_over"] and f"pid {a.pid}" in started["took_over"]


def test_run_once_on_an_empty_database(Session, db_url: str, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    r = _vigie(db_url, cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    runs = _runs(Session)
    assert [x.job for x in runs] == ["match", "notices", "inbox", "verify", "report", "evidence"]
    assert all(x.status == "ok" for x in runs)
    assert runs[0].counts["candidates"] == 0
    assert (tmp_path / "reports").is_dir() and list((tmp_path / "reports").glob("*.html"))
    assert [e["job"] for e in _events(r.stderr) if e["event"] == "job"] == ["match", "notices", "inbox", "verify", "report", "evidence"]
    assert _holder(Session) is None


def test_run_once_seeded_releases_claims_and_records_failures(Session, db_url: str, tmp_path: Path) -> None:
    """A matcher died holding a candidate; a site's address is refused; the report
    directory cannot be written. The run frees the claim, retries the candidate (a clear
    error, kept for a later try), records the crawl's error, runs every stage, and exits 1
    naming the job that failed."""
    with Session.begin() as s:
        s.add(Site(name="deadsite", kind=SiteKind.LINK_SITE, start_urls=["http://127.0.0.1:9/"], schedule="6h"))
        s.add(Candidate(canonical_url="http://127.0.0.1:9/film/1", page_url="http://127.0.0.1:9/film/1",
                        media_urls=["http://127.0.0.1:9/film/1.mp4"], status=CandidateStatus.MATCHING))
    cfg = _config(tmp_path)
    (tmp_path / "reports").write_text("a file where the report directory should be")
    r = _vigie(db_url, cfg, "run", "--once")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith("Error: 1 job(s) failed: report: ReportError: cannot write")
    started = _events(r.stderr)[0]
    assert started["released_claims"] == 1
    runs = _runs(Session)
    assert [x.job for x in runs] == ["crawl:deadsite", "match", "notices", "inbox", "verify", "report", "evidence"]
    assert [x.status for x in runs] == ["ok", "ok", "ok", "ok", "ok", "error", "ok"]
    assert runs[0].counts["errors"] == 1 and runs[0].counts["status"] == "completed_with_errors"
    assert runs[1].counts["candidates"] == 1 and runs[1].counts["errors"] == 1
    with Session() as s:
        cand = s.scalars(select(Candidate)).one()
        assert cand.status is CandidateStatus.PENDING and cand.attempts == 1 and "loopback" in (cand.error or "")
        assert s.scalars(select(CrawlRun)).one().errors == 1

    st = _vigie(db_url, cfg, "status", "--json")
    assert st.returncode == 0, st.stderr
    out = json.loads(st.stdout)
    assert out["scheduler"] is None
    assert {j["job"]: j["status"] for j in out["jobs"]}["report"] == "error"
    assert out["queues"]["candidates_pending"] == 1 and out["queues"]["notices_failed"] == 0
    assert out["overdue"][0].startswith("scheduler: not running")
    text = _vigie(db_url, cfg, "status")
    assert "crawl:deadsite" in text.stdout and "error: ReportError" in text.stdout and "candidates pending 1" in text.stdout


def test_status_shows_overdue_sites_and_stale_scheduler(Session, db_url: str, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    with Session.begin() as s:
        late = Site(name="late", start_urls=["http://example.org/"], schedule="1h")
        fresh = Site(name="fresh", start_urls=["http://example.org/"], schedule="1h")
        never = Site(name="never", start_urls=["http://example.org/"], schedule="0 3 * * *")
        s.add_all([late, fresh, never, Site(name="manual", start_urls=["http://example.org/"])])
        s.flush()
        s.add(CrawlRun(site_id=late.id, started_at=now - timedelta(hours=3), status="ok"))
        s.add(CrawlRun(site_id=fresh.id, started_at=now - timedelta(minutes=10), status="ok"))
        s.add(SchedulerLock(name="scheduler", holder="x", pid=4242, host="elsewhere",
                            acquired_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(minutes=30)))
    res = CliRunner().invoke(cli, ["--db", db_url, "--config", str(_config(tmp_path)), "status", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["scheduler"]["pid"] == 4242 and out["scheduler"]["stale"] is True
    over = out["overdue"]
    assert over[0].startswith("scheduler: pid 4242 on elsewhere stopped sending heartbeats")
    assert any(line.startswith("site late: last crawl 3 h ago") for line in over)
    assert any(line.startswith("site never: never crawled") for line in over)
    assert not any("fresh" in line or "manual" in line for line in over)


def test_status_names_a_periodic_job_that_stopped_running(Session, db_url: str, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    with Session.begin() as s:
        s.add(SchedulerLock(name="scheduler", holder="x", pid=4242, host="here",
                            acquired_at=now - timedelta(hours=2), heartbeat_at=now))
        s.add(JobRun(job="match", status="ok", started_at=now - timedelta(minutes=30), counts={}))
        s.add(JobRun(job="notices", status="ok", started_at=now - timedelta(minutes=1), counts={}))
        s.add(JobRun(job="inbox", status="ok", started_at=now - timedelta(minutes=2), counts={}))
        s.add(JobRun(job="verify", status="running", started_at=now - timedelta(hours=1), counts={}))
    cfg = _config(tmp_path, match_every="5m", dispatch_every="5m", verify_every="10m", resync_every="1m")
    res = CliRunner().invoke(cli, ["--db", db_url, "--config", str(cfg), "status", "--json"])
    assert res.exit_code == 0, res.output
    over = json.loads(res.output)["overdue"]
    # match: 30 min without a run for a 5 min schedule; resync: never ran in 2 h; notices ran
    # a minute ago; verify is running (a long run is not a missed one).
    assert over == ["job match: no run for 30 min, scheduled every 5 min",
                    "job resync: no run for 120 min, scheduled every 1 min"]


@pytest.mark.parametrize(("body", "message"), [
    ("[schedule]\nmatch_every = \"soon\"\n", "schedule.match_every: not an interval"),
    ("[schedule]\nreport_at = \"25:00\"\n", "schedule.report_at: must be a local time HH:MM"),
    ("[schedule]\nlock_stale_after = 0\n", "schedule.lock_stale_after: an interval must be between 1 s and 1 year"),
    ("[schedule]\nevery = \"1h\"\n", "unknown key schedule.every"),
    ("[schedule]\nverify_every = true\n", "schedule.verify_every must be a str or int or float, not bool"),
    ("[general]\ntimezone = \"Mars/Olympus\"\n", "general.timezone: unknown time zone"),
    ("[report]\nstaff = [\"not an address\"]\n", "report.staff: not mail addresses"),
    ("[schedule\n", "not valid TOML"),
])
def test_config_check_names_the_bad_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    res = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "config", "check", str(path)])
    assert res.exit_code == 1
    assert message in res.output and str(path) in res.output
    assert res.output.count("\n") == 1


def test_config_check_accepts_a_good_file_and_refuses_a_missing_one(tmp_path: Path) -> None:
    cfg = _config(tmp_path, report_at="06:30")
    res = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert res.exit_code == 0, res.output
    assert res.output == f"{cfg}: ok\n"
    res = CliRunner().invoke(cli, ["config", "check", str(tmp_path / "nope.toml")])
    assert res.exit_code == 1 and "config file not found" in res.output


def test_an_unreadable_site_schedule_is_reported_and_the_others_run(Session, tmp_path: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler import Jobs, resync_sites
    from foundation.config import load_config
    from foundation.errors import SchedulerError

    with Session.begin() as s:
        s.add(Site(name="good", start_urls=["http://example.org/"], schedule="6h"))
        s.add(Site(name="cron", start_urls=["http://example.org/"], schedule="30 2 * * *"))
        s.add(Site(name="bad", start_urls=["http://example.org/"], schedule="every tuesday"))
        # Written behind the CLI's back (an older vigie, SQL): it once raised OverflowError
        # on every resync, and no site was crawled any more.
        s.add(Site(name="huge", start_urls=["http://example.org/"], schedule="999999999w"))
    sched = BackgroundScheduler()
    sched.start(paused=True)  # jobs are stored (and replaced) as in `vigie run`, never run
    from stages.context import Context

    jobs = Jobs(Context(config=load_config(str(_config(tmp_path))), db_url="unused", engine=Session.kw["bind"],
                        Session=Session))
    known: dict[str, str] = {}
    with pytest.raises(SchedulerError, match="site bad: schedule 'every tuesday'.*; site huge: an interval "
                                             "must be between 1 s and 1 year"):
        resync_sites(sched, jobs, known)
    assert sorted(known) == ["cron", "good"]
    assert sorted(j.id for j in sched.get_jobs()) == ["crawl:cron", "crawl:good"]
    # A change, a removal, an addition: picked up by the next resync.
    with Session.begin() as s:
        s.scalars(select(Site).where(Site.name == "good")).one().schedule = "12h"
        s.scalars(select(Site).where(Site.name == "cron")).one().enabled = False
        s.scalars(select(Site).where(Site.name == "bad")).one().schedule = "1d"
        s.scalars(select(Site).where(Site.name == "huge")).one().enabled = False
    counts = resync_sites(sched, jobs, known)
    assert counts == {"sites": 2, "added": 1, "changed": 1, "removed": 1}
    job = sched.get_job("crawl:good")
    assert job.trigger.interval.total_seconds() == 12 * 3600
    assert job.coalesce is True and job.max_instances == 1
    assert sorted(j.id for j in sched.get_jobs()) == ["crawl:bad", "crawl:good"]
    sched.shutdown(wait=False)


def test_one_schedule_parser_everywhere(Session, db_url: str, tmp_path: Path, figures) -> None:  # type: ignore[no-untyped-def]
    """A schedule out of bounds is refused by the CLI, the admin form and the config check,
    and skipped (with a reason) by the cluster tick and the daily report."""
    from zoneinfo import ZoneInfo

    from cluster.app import _due
    from crawlers.sites import add_site
    from foundation.schedules import late_reason as _late
    from foundation.errors import InvalidInput
    from webapp.actions import set_site

    r = subprocess.run([VIGIE, "--db", db_url, "sites", "add", "big", "http://example.org/",
                        "--schedule", "999999999w"], capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "between 1 s and 1 year" in r.stderr and "Traceback" not in r.stderr
    with Session.begin() as s:
        for bad in ("999999999w", "0s", "0.5s", "366d", "61 * * * *", "nan", "1e9s"):
            with pytest.raises(InvalidInput):
                add_site(s, f"x{bad}", ["http://example.org/"], schedule=bad)
        site = add_site(s, "ok", ["http://example.org/"], schedule=" 6h ")
        assert site.schedule == "6h"
        admin = s.scalars(select(User)).first() or User(username="a", password_hash="x", role=Role.ADMIN)
        s.add(admin)
        s.flush()
        with pytest.raises(InvalidInput, match="1 year"):
            set_site(s, site.id, admin, schedule="999999999w")
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[schedule]\nmatch_every = "999999999w"\n')
    r = subprocess.run([VIGIE, "config", "check", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 1 and "schedule.match_every" in r.stderr, r.stderr
    last = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert _due("999999999w", last, last.replace(year=2027)) is False
    assert _due("1d", last, last.replace(day=3)) is True
    assert _late("999999999w", last, last, ZoneInfo("UTC")) == "schedule '999999999w' not understood"
    figures.record("schedules: 999999999w refused by CLI, admin form, config check; skipped by tick and report",
                   "5/5", "5/5", True)


def test_readme_documents_every_schedule_key_and_its_deployment_config_is_valid(tmp_path: Path) -> None:
    import re

    from foundation.config import SCHEMA

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for key in SCHEMA["schedule"]:
        assert f"`{key}`" in readme, f"[schedule] {key} is not documented in README.md"
    assert all(spec.default is not None for k, spec in SCHEMA["schedule"].items() if k != "log_file")
    deployment = readme[readme.index("## Deployment"):]
    block = re.search(r"```toml\n(.*?)```", deployment, re.DOTALL)
    assert block, "the deployment section has no TOML example"
    path = tmp_path / "vigie.toml"
    path.write_text("\n".join(line.strip() for line in block.group(1).splitlines()) + "\n")
    res = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert res.exit_code == 0, res.output


def test_a_scheduler_that_loses_its_lock_stops(Session, engine, db_url: str, tmp_path: Path,
                                              procs: list) -> None:  # type: ignore[type-arg]
    """Frozen past the stale delay and taken over (SQLite), or its lock connection killed
    (PostgreSQL): the scheduler must notice and stop rather than run beside another."""
    from sqlalchemy import text, update

    cfg = _config(tmp_path)
    a = _start(procs, db_url, cfg)
    _wait(lambda: _holder(Session) == a.pid, "the scheduler to hold the lock", proc=a)
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:
            killed = c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND classid::bigint = :k AND objid::bigint = ("
                                    "SELECT hashtext(current_schema())::bigint & 4294967295)"),
                               {"k": 0x56494749}).scalars().all()
        assert killed == [True]
    else:
        with Session.begin() as s:
            s.execute(update(SchedulerLock).values(holder="someone-else", pid=1))
    _, err = a.communicate(timeout=30)
    assert a.returncode == 1
    assert err.splitlines()[-1] == ("Error: the scheduler lock was lost (taken over by another process, "
                                    "or its database connection dropped); stopped")
