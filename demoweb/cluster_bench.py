"""Cluster throughput: fingerprint+match with 1, 2 and 4 worker processes.

``python -m demoweb.cluster_bench --db postgresql://...`` works in a fresh schema of that
database (dropped at the end): one synthetic film in the catalogue, N candidate copies
served over loopback HTTP, then for each worker count the same candidates are reset to
``pending``, their match jobs queued, real ``vigie worker --queues match`` processes
started, and the time until every job has finished is measured (from the enqueue,
once every worker has started; each loads the index at its first job). Prints one JSON
object: seconds per run, candidates per second, and the ratio to one worker.

Not part of ``vigie bench`` (it needs PostgreSQL and several processes).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, delete, text, update


def run(db_url: str, candidates: int, counts: list[int]) -> dict[str, object]:
    from cluster.queue import apply_schema
    from db.jobqueue import defer_match
    from db.models import Candidate, CandidateStatus, Match
    from db.session import normalise_url, make_engine, sessionmaker_for, upgrade
    from demoweb import synth
    from stages.catalog import add_title
    from demoweb.rangeserver import RangeServer

    admin = create_engine(normalise_url(db_url))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{db_url}{'&' if '?' in db_url else '?'}options=-csearch_path%3D{schema}"
    tmp = Path(tempfile.mkdtemp(prefix="vigie-cluster-bench-"))
    engine = make_engine(url)
    try:
        upgrade(engine)
        apply_schema(engine)
        Session = sessionmaker_for(engine)
        film = synth.make_film(str(tmp / "film.mp4"), seed=1, duration_s=60)
        synth.make_copy(film, str(tmp / "copy.mp4"), start_s=20, duration_s=30, bit_rate=250_000)
        with Session.begin() as s:
            add_title(s, film, title="Bench film")
        cfg = tmp / "vigie.toml"
        cfg.write_text("[match]\nallow_loopback = true\n")
        vigie = str(Path(sys.executable).parent / "vigie")
        out: dict[str, object] = {"candidates": candidates, "cpus": os.cpu_count(), "runs": {}}
        with RangeServer(str(tmp)) as srv:
            with Session.begin() as s:
                ids = []
                for i in range(candidates):
                    c = Candidate(canonical_url=f"https://bench.example/{i}", page_url=f"https://bench.example/{i}",
                                  media_urls=[srv.url("copy.mp4") + f"?v={i}"])
                    s.add(c)
                    s.flush()
                    ids.append(c.id)
            for n in counts:
                with Session.begin() as s:
                    s.execute(delete(Match))
                    s.execute(update(Candidate).values(status=CandidateStatus.PENDING, attempts=0))
                    s.execute(text("DELETE FROM procrastinate_jobs"))
                procs = [subprocess.Popen([vigie, "--db", url, "--config", str(cfg), "worker", "-q", "match"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]
                try:
                    # Timed from the enqueue, once every worker is up (start-up excluded).
                    while True:
                        with engine.connect() as conn:
                            if conn.scalar(text("SELECT count(*) FROM procrastinate_workers")) >= n:
                                break
                        time.sleep(0.2)
                    with Session.begin() as s:
                        defer_match(s, ids)
                    t0 = time.monotonic()
                    while True:
                        with engine.connect() as conn:
                            left = conn.scalar(text(
                                "SELECT count(*) FROM procrastinate_jobs "
                                "WHERE task_name = 'vigie.match' AND status IN ('todo', 'doing')"))
                        if not left:
                            break
                        time.sleep(0.2)
                    elapsed = time.monotonic() - t0
                finally:
                    for p in procs:
                        p.send_signal(signal.SIGTERM)
                    for p in procs:
                        p.wait(timeout=60)
                with engine.connect() as conn:
                    states = dict(conn.execute(text(
                        "SELECT status::text, count(*) FROM procrastinate_jobs "
                        "WHERE task_name = 'vigie.match' GROUP BY 1")).all())
                    matched = conn.scalar(text("SELECT count(DISTINCT candidate_id) FROM matches"))
                if states != {"succeeded": candidates} or matched != candidates:
                    raise RuntimeError(f"{n} worker(s): jobs {states}, {matched} candidates matched")
                out["runs"][str(n)] = {"seconds": round(elapsed, 2),  # type: ignore[index]
                                       "per_second": round(candidates / elapsed, 3),
                                       "seconds_per_candidate": round(elapsed / candidates, 3)}
        base = out["runs"][str(counts[0])]["per_second"]  # type: ignore[index]
        for r in out["runs"].values():  # type: ignore[attr-defined]
            r["ratio"] = round(r["per_second"] / base, 2)
        return out
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="PostgreSQL URL (a scratch schema is created in it)")
    ap.add_argument("--candidates", type=int, default=24)
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    a = ap.parse_args()
    print(json.dumps(run(a.db, a.candidates, [int(x) for x in a.workers.split(",")]), indent=2))


if __name__ == "__main__":
    main()
