"""SMTP honesty under crashes: kill -9 the dispatcher at random points, and the outcome matrix.

A batch of 200 notices (600 with VIGIE_SOAK=1) goes to a real SMTP server (aiosmtpd on
loopback) while the dispatcher, a forked process running ``notices.dispatch.dispatch``,
is SIGKILLed at random moments (50 kills in CI, 150 in the soak), each restart on a clock
past the sender lease. Criteria: no notice lost (every one reaches the server and ends
``sent``), and a message received twice is always one that was in doubt (its sender
died after DATA started) and always carries the same Message-ID. The outcome matrix
drives one notice into each server behaviour: 250, connection dropped after ".", 421,
451 and 554.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Notice, NoticeStatus
from db.session import make_engine, sessionmaker_for
from notices.build import queue_notices
from notices.dispatch import dispatch
from tests.figures import Figures, soak
from tests.test_notices_support import T0, machine_documents_valid, add_host, add_match, add_title, make_config, smtp  # noqa: F401

N_NOTICES = 600 if soak() else 200
N_HOSTS = 20


def _seed(Session, n: int, cfg) -> list[int]:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        hosts = [add_host(s, f"host{i}", settings={"rate_per_hour": 100000}) for i in range(N_HOSTS)]
        for i in range(n):
            add_match(s, t, hosts[i % N_HOSTS], f"https://host{i % N_HOSTS}.example/v/{i}")
    with Session.begin() as s:
        return [x.id for x in queue_notices(s, cfg, T0).notices]


def _run_killed(db_url: str, cfg, now, delay: float) -> bool:  # type: ignore[no-untyped-def]
    """Fork a dispatcher, SIGKILL it after ``delay`` s; True when it was still running."""
    pid = os.fork()
    if pid == 0:  # the dispatcher: its own engine, never the parent's connections
        code = 0
        try:
            eng = make_engine(db_url)
            dispatch(sessionmaker_for(eng), cfg, now=now)
        except BaseException:  # noqa: BLE001 - the parent checks the database, not the code
            code = 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


def test_dispatcher_killed_at_random_points_loses_nothing(Session, db_url: str, smtp,  # noqa: F811
                                                           figures: Figures) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, max_urls_per_notice=1)
    ids = _seed(Session, N_NOTICES, cfg)
    assert len(ids) == N_NOTICES
    lease = float(cfg.get("notices", "lease_s"))
    kills_wanted = 150 if soak() else 50
    rng = random.Random(8)
    clock = T0
    kills = 0
    doubted: set[str] = set()
    rounds = 0
    while kills < kills_wanted and rounds < kills_wanted * 4:
        rounds += 1
        # Short lives, so that all the kills fit in one batch: a life sends a few notices.
        if _run_killed(db_url, cfg, clock, rng.uniform(0.01, 0.12)):
            kills += 1
        with Session() as s:
            for n in s.scalars(select(Notice).where(Notice.status.in_(
                    [NoticeStatus.SENDING, NoticeStatus.IN_DOUBT]))):
                if n.status is NoticeStatus.IN_DOUBT or n.data_started_at is not None:
                    doubted.add(n.message_id)
            left = s.scalar(select(Notice.id).where(Notice.status != NoticeStatus.SENT).limit(1))
        clock += timedelta(seconds=lease + 60)
        if left is None:
            break
    # The last dispatcher runs to the end (past the lease, so stale claims are recovered).
    dispatch(Session, cfg, now=clock + timedelta(seconds=lease + 60))
    with Session() as s:
        rows = list(s.scalars(select(Notice)))
        statuses = Counter(n.status for n in rows)
        mids = {n.message_id for n in rows}
    got = Counter(rec.message_ids())
    lost = len(mids - set(got))
    dups = {m for m, c in got.items() if c > 1}
    bad_dups = dups - doubted
    figures.record(f"dispatch: notices lost after {kills} kill -9 in a {N_NOTICES}-notice batch "
                   f"({db_url.split(':')[0]})", lost, "0", lost == 0)
    figures.record(f"dispatch: duplicates ({db_url.split(':')[0]}), of which not in doubt",
                   f"{len(dups)}, {len(bad_dups)}", "0 not in doubt, same Message-ID", not bad_dups)
    assert kills >= 1
    assert lost == 0
    assert statuses == Counter({NoticeStatus.SENT: N_NOTICES}), statuses
    assert not bad_dups, bad_dups
    assert set(got) <= mids  # nothing but our notices, each under its own Message-ID


@pytest.mark.parametrize("reply, expected", [
    ("250", NoticeStatus.SENT),
    ("drop", NoticeStatus.IN_DOUBT),
    ("421 4.3.2 shutting down", NoticeStatus.QUEUED),
    ("451 4.3.0 try later", NoticeStatus.QUEUED),
    ("554 5.7.1 rejected", NoticeStatus.FAILED),
])
def test_smtp_outcome_matrix(Session, db_url: str, smtp, reply: str, expected: NoticeStatus,  # noqa: F811
                             figures: Figures) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    cfg = make_config(port, max_urls_per_notice=1)
    (nid,) = _seed(Session, 1, cfg)
    if reply == "drop":
        rec.drop_after_data = {1}
    elif reply != "250":
        rec.replies["DATA"] = [reply]
    dispatch(Session, cfg, now=T0)
    with Session() as s:
        n = s.get(Notice, nid)
        status, error, mid = n.status, n.last_error or "", n.message_id
    figures.record(f"SMTP outcome after '.': {reply.split(' ')[0]} ({db_url.split(':')[0]})",
                   status.value, expected.value,
                   status is expected)
    assert status is expected, error
    if expected is not NoticeStatus.SENT:
        assert error, "a notice not sent says why"
    if expected in (NoticeStatus.QUEUED, NoticeStatus.IN_DOUBT):
        # Retried later, with the same Message-ID, and then sent.
        dispatch(Session, cfg, now=T0 + timedelta(days=1))
        with Session() as s:
            n = s.get(Notice, nid)
            assert n.status is NoticeStatus.SENT and n.message_id == mid
        assert set(rec.message_ids()) == {mid}
