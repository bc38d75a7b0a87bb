"""Cluster mode on a real PostgreSQL with real ``vigie worker`` processes.

Each test gets a fresh PostgreSQL schema holding both Vigie's tables and procrastinate's
(the connection's ``search_path`` names that schema, so the job queue lands there too).
Candidates point at media served over loopback HTTP; workers are separate processes
started with the ``vigie`` entry point and stopped (or SIGKILLed) by the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from db.models import Candidate, CandidateStatus, Match
from tests.conftest import drop_schema, pg_schema_url
from stages.catalog import add_title
from demoweb.rangeserver import RangeServer

PG_URL = os.environ.get("VIGIE_TEST_POSTGRES_URL")
VIGIE = str(Path(sys.executable).parent / "vigie")


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[dict]:  # type: ignore[type-arg]
    """A fresh schema with Vigie's tables and the job queue's, its URL, a config file."""
    from cluster.queue import apply_schema
    from db.session import normalise_url, make_engine, sessionmaker_for, upgrade

    if not PG_URL:
        pytest.skip("cluster tests need VIGIE_TEST_POSTGRES_URL")
    admin = create_engine(normalise_url(PG_URL))
    schema = f"c_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = pg_schema_url(schema)
    engine = make_engine(url)
    upgrade(engine)
    apply_schema(engine)
    cfg = tmp_path / "vigie.toml"
    cfg.write_text('[match]\nallow_loopback = true\n'
                   '[cluster]\nheartbeat_s = 1\nstalled_after_s = 3\ntick_every = "1s"\n')
    workers: list[subprocess.Popen[bytes]] = []
    try:
        yield {"url": url, "engine": engine, "Session": sessionmaker_for(engine), "config": str(cfg),
               "workers": workers, "dir": tmp_path, "schema": schema}
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        engine.dispose()
        try:
            drop_schema(admin, schema)
        finally:
            admin.dispose()


def start_worker(pg: dict, *args: str) -> subprocess.Popen[bytes]:  # type: ignore[type-arg]
    n = len(pg["workers"])
    log = open(pg["dir"] / f"worker{n}.log", "wb")
    p = subprocess.Popen([VIGIE, "--db", pg["url"], "--config", pg["config"], "worker", "--name", f"w{n}", *args],
                         stdout=log, stderr=subprocess.STDOUT)
    pg["workers"].append(p)
    return p


def logs(pg: dict) -> str:  # type: ignore[type-arg]
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(pg["dir"].glob("worker*.log")))


def wait_for(pg: dict, what: str, cond: Callable[[], bool], timeout: float = 60) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs(pg)}")
        time.sleep(0.3)


def jobs(pg: dict, task: str = "vigie.match") -> list[tuple[int, str, dict]]:  # type: ignore[type-arg]
    with pg["engine"].connect() as conn:
        return [tuple(r) for r in conn.execute(text(  # type: ignore[misc]
            "SELECT id, status::text, args FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"), {"t": task})]


def pending(pg: dict) -> int:  # type: ignore[type-arg]
    with pg["Session"]() as s:
        return int(s.scalar(select(func.count()).select_from(Candidate)
                            .where(Candidate.status == CandidateStatus.PENDING)) or 0)


def duplicates(pg: dict) -> list:  # type: ignore[type-arg]
    with pg["engine"].connect() as conn:
        return list(conn.execute(text("SELECT candidate_id, title_id FROM matches GROUP BY 1, 2 HAVING count(*) > 1")))


def add_candidates(pg: dict, urls: list[list[str]]) -> list[int]:  # type: ignore[type-arg]
    """Store candidates and queue their match jobs in the same transaction."""
    from db.jobqueue import defer_match

    with pg["Session"].begin() as s:
        cands = [Candidate(canonical_url=f"https://p.example/{uuid.uuid4().hex}", page_url="https://p.example/x",
                           media_urls=u) for u in urls]
        s.add_all(cands)
        s.flush()
        ids = [c.id for c in cands]
        assert defer_match(s, ids) == len(ids)
    return ids


def test_three_workers_twenty_candidates_exactly_twenty_results(pg, media) -> None:  # type: ignore[no-untyped-def]
    with pg["Session"].begin() as s:
        title = add_title(s, media["film_a"], title="Film A").title.id
    with RangeServer(str(Path(media["copy_a"]).parent)) as srv:
        ids = add_candidates(pg, [[srv.url("copy_a.mp4") + f"?v={i}"] for i in range(20)])
        for _ in range(3):
            start_worker(pg, "--queues", "match")
        wait_for(pg, "every candidate matched", lambda: pending(pg) == 0, timeout=120)
        wait_for(pg, "every job finished", lambda: all(j[1] == "succeeded" for j in jobs(pg)))
    with pg["Session"]() as s:
        rows = list(s.scalars(select(Match)))
        cands = list(s.scalars(select(Candidate)))
    assert sorted(m.candidate_id for m in rows) == sorted(ids) and {m.title_id for m in rows} == {title}
    assert all(c.status == CandidateStatus.MATCHED and c.attempts == 1 for c in cands)
    assert len(jobs(pg)) == 20 and duplicates(pg) == []
    # The work was shared: more than one worker process ran match jobs.
    ran = [p.read_text().count('"event": "match"') for p in pg["dir"].glob("worker*.log")]
    assert sum(ran) == 20 and sum(1 for n in ran if n) >= 2, ran


class HangingServer:
    """Serves nothing: the first request to each path blocks until ``release``, then
    every request gets a 404. Lets a test catch a worker in the middle of a job."""

    def __init__(self) -> None:
        self.seen: dict[str, threading.Event] = {}
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                path = self.path.lstrip("/")
                first = path not in outer.seen
                outer.seen.setdefault(path, threading.Event()).set()
                if first:
                    outer.released.wait(60)
                try:
                    self.send_error(404)
                except OSError:
                    pass  # the client was killed while waiting

            do_GET = do_HEAD = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{path}"

    def hit(self, path: str) -> bool:
        return path in self.seen and self.seen[path].is_set()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_killed_workers_lose_nothing_and_do_nothing_twice(pg, media) -> None:  # type: ignore[no-untyped-def]
    from cluster.matcher import IndexHolder, match_one

    with pg["Session"].begin() as s:
        add_title(s, media["film_a"], title="Film A")
    hang = HangingServer()
    try:
        with RangeServer(str(Path(media["copy_a"]).parent)) as srv:
            good = srv.url("copy_a.mp4")
            # Each candidate's first media URL hangs on its first fetch: the job is caught
            # inside its transaction, before anything is committed.
            before, after = add_candidates(pg, [[hang.url("before.mp4"), good], [hang.url("after.mp4"), good]])
            w1 = start_worker(pg, "--queues", "match")
            wait_for(pg, "worker 1 inside the first job", lambda: hang.hit("before.mp4"))
            w1.send_signal(signal.SIGKILL)
            w1.wait()
            w2 = start_worker(pg, "--queues", "match")
            wait_for(pg, "worker 2 inside the second job", lambda: hang.hit("after.mp4"))
            w2.send_signal(signal.SIGKILL)
            w2.wait()
            hang.released.set()
            assert [j[1] for j in jobs(pg)] == ["doing", "doing"]
            # Killed after the commit, before the job was marked done: the job's results
            # are committed (here by the same library call the job makes), the job stays
            # "doing" under a dead worker.
            _, index = IndexHolder().current(pg["Session"])
            assert match_one(pg["Session"], after, index, allow_loopback=True, thumbnails=False) == "confirmed"
            with pg["Session"]() as s:
                assert s.get(Candidate, before).status == CandidateStatus.PENDING  # rolled back, not lost
            # Not stalled yet: the dead workers' heartbeats are still recent.
            out = subprocess.run([VIGIE, "--db", pg["url"], "--config", pg["config"], "worker", "--status",
                                  "--json"], capture_output=True, text=True, check=True).stdout
            assert {q["queue"]: q["doing"] for q in json.loads(out)["queues"]}["match"] == 2
            time.sleep(4)  # > stalled_after_s
            out = subprocess.run([VIGIE, "--db", pg["url"], "--config", pg["config"], "enqueue", "retry-stalled"],
                                 capture_output=True, text=True, check=True).stdout
            assert "retried 2" in out
            assert [j[1] for j in jobs(pg)] == ["todo", "todo"]
            start_worker(pg, "--queues", "match")
            wait_for(pg, "both jobs finished", lambda: [j[1] for j in jobs(pg)] == ["succeeded", "succeeded"])
    finally:
        hang.close()
    with pg["Session"]() as s:
        b, a = s.get(Candidate, before), s.get(Candidate, after)
        assert b.status == a.status == CandidateStatus.MATCHED
        # The killed attempt rolled back with its transaction; the retried one counted once.
        assert b.attempts == 1 and a.attempts == 1
        assert s.scalar(select(func.count()).select_from(Match)) == 2
    assert duplicates(pg) == []
    assert '"outcome": "skipped"' in logs(pg) and '"outcome": "confirmed"' in logs(pg)


def test_rolled_back_transaction_leaves_no_job_and_jobs_are_queued_once(pg) -> None:  # type: ignore[no-untyped-def]
    from cluster.queue import enqueue_pending
    from db.jobqueue import defer_match

    with pytest.raises(RuntimeError):
        with pg["Session"].begin() as s:
            c = Candidate(canonical_url="https://p.example/r", page_url="https://p.example/r", media_urls=[])
            s.add(c)
            s.flush()
            assert defer_match(s, [c.id]) == 1
            raise RuntimeError("the crawl failed after storing the candidate")
    assert jobs(pg) == []
    with pg["Session"].begin() as s:
        c = Candidate(canonical_url="https://p.example/k", page_url="https://p.example/k", media_urls=[])
        s.add(c)
        s.flush()
        assert defer_match(s, [c.id]) == 1
        assert defer_match(s, [c.id]) == 0  # already waiting: not queued twice
    with pg["Session"].begin() as s:
        assert enqueue_pending(s) == 0
    assert [j[2] for j in jobs(pg)] == [{"candidate_id": c.id}]


def test_catalogue_change_reaches_running_matchers_and_periodic_ticks_run_once(pg, media, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pg["Session"].begin() as s:
        add_title(s, media["film_a"], title="Film A")
    shutil.copy(media["film_b"], tmp_path / "b.mp4")
    with RangeServer(str(tmp_path)) as srv:
        # Two workers on every queue: the maintenance tick (every second) queues pending
        # candidates; the periodic tasks run once per tick whichever worker defers them;
        # the index job writes each catalogue version to the shared index directory.
        cfg = Path(pg["config"])
        cfg.write_text(cfg.read_text().replace("[match]\n", f'[match]\nindex_dir = "{tmp_path / "index"}"\n'))
        start_worker(pg)
        start_worker(pg)
        with pg["Session"].begin() as s:
            s.add(Candidate(canonical_url="b1", page_url="https://p.example/b1", media_urls=[srv.url("b.mp4?1")]))
        wait_for(pg, "first film B candidate done", lambda: pending(pg) == 0, timeout=90)
        with pg["Session"].begin() as s:
            title_b = add_title(s, media["film_b"], title="Film B").title.id
            s.add(Candidate(canonical_url="b2", page_url="https://p.example/b2", media_urls=[srv.url("b.mp4?2")]))
        wait_for(pg, "second film B candidate done", lambda: pending(pg) == 0, timeout=90)
    with pg["Session"]() as s:
        by = {c.canonical_url: c for c in s.scalars(select(Candidate))}
        assert by["b1"].status == CandidateStatus.NO_MATCH  # film B was not in the index yet
        assert by["b2"].status == CandidateStatus.MATCHED
        assert [m.title_id for m in by["b2"].matches] == [title_b]
    # Each worker loaded the index twice: at its first job, then after the new title.
    loads = [json.loads(line) for line in logs(pg).splitlines() if line.startswith('{"ts"') and '"event": "index"' in line]
    assert len({e["version"] for e in loads}) == 2 and all(e["rss_mb"] > 0 for e in loads)
    from stages.catalog import catalogue_version

    with pg["Session"]() as s:
        latest = catalogue_version(s)
    wait_for(pg, "the index job to write the new version",
             lambda: (tmp_path / "index" / f"index-{latest}").is_dir(), timeout=30)
    ticks = jobs(pg, "vigie.tick")
    assert len(ticks) >= 2
    stamps = [j[2]["timestamp"] for j in ticks]
    assert len(stamps) == len(set(stamps)), stamps


def test_interval_cron_and_due_sites() -> None:
    from datetime import datetime, timedelta, timezone

    from cluster.app import _due, interval_cron

    assert interval_cron(1) == "* * * * * */1" and interval_cron(7) == "* * * * * */10"
    assert interval_cron(300) == "*/5 * * * *" and interval_cron(3600) == "0 */1 * * *"
    assert interval_cron(86400) == "0 0 * * *"
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert _due("6h", None, now) and _due("6h", now - timedelta(hours=7), now)
    assert not _due("6h", now - timedelta(hours=1), now)
    assert _due("0 * * * *", now - timedelta(minutes=61), now)
    assert not _due("30 12 * * *", now - timedelta(minutes=10), now)


def test_scheduled_crawl_runs_as_a_job_and_queues_match_jobs(pg) -> None:  # type: ignore[no-untyped-def]
    import demoweb
    from cluster.app import defer_crawl
    from db.models import JobRun, Site

    web = demoweb.serve(pg["dir"] / "demoweb")
    try:
        with pg["Session"].begin() as s:
            web.register(s)
            for site in s.scalars(select(Site)):
                site.enabled = site.name == "free-moviez"
                site.schedule = "1h"
        with open(pg["config"], "a") as f:
            f.write("[crawl]\nallow_loopback = true\n")
        with pg["Session"].begin() as s:
            # Two requests for the same site while none ran: one job waits.
            assert defer_crawl(s, "free-moviez") and not defer_crawl(s, "free-moviez")
        start_worker(pg, "--queues", "crawl")
        wait_for(pg, "the crawl job", lambda: [j[1] for j in jobs(pg, "vigie.crawl")] == ["succeeded"], timeout=120)
    finally:
        web.stop()
    with pg["Session"]() as s:
        run = s.scalar(select(JobRun).where(JobRun.job == "crawl:free-moviez"))
        assert run is not None and run.status == "ok"
        ids = set(s.scalars(select(Candidate.id).where(Candidate.status == CandidateStatus.PENDING)))
    assert ids
    # Every pending candidate the crawl stored got its match job in the same transaction.
    assert sorted(j[2]["candidate_id"] for j in jobs(pg)) == sorted(ids)
    # Just crawled: the periodic check does not queue it again before its interval.
    from cluster.app import schedule_crawls
    from scheduler import Jobs
    from foundation.config import Config

    from stages.context import Context

    ctx = Context(config=Config(), db_url=pg["url"], engine=pg["Session"].kw["bind"], Session=pg["Session"])
    assert schedule_crawls(Jobs(ctx)) == []


def test_every_cluster_setting_has_a_default_and_is_documented() -> None:
    from foundation.config import SCHEMA

    assert all(spec.default is not None for spec in SCHEMA["cluster"].values())
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for key in SCHEMA["cluster"]:
        assert f"`{key}`" in readme, f"[cluster] {key} is not documented in README.md"


def test_cluster_verbs_refuse_sqlite(tmp_path: Path) -> None:
    for args in (["worker"], ["worker", "--status"], ["enqueue", "match"]):
        r = subprocess.run([VIGIE, "--db", f"sqlite:///{tmp_path / 'v.db'}", *args], capture_output=True, text=True)
        assert r.returncode == 1 and "cluster mode needs PostgreSQL" in r.stderr, (args, r.stderr)
