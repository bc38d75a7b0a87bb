"""The outbox: send queued notices exactly once as far as we control it.

Each notice goes through claim → send → record, each step its own short transaction:

* **claim**: QUEUED or IN_DOUBT → SENDING with ``claimed_at``, as a conditional UPDATE
  (``WHERE status = <what we read>``) so two senders never both win; on PostgreSQL the
  candidate row is picked with ``FOR UPDATE SKIP LOCKED`` so senders do not queue up
  behind each other. Licensed partners and staff's match rejections are checked again
  here (``notices.build.refusal``), and a host that needs approval since the notice
  was queued gets it back for staff.
* **send**: one SMTP transaction; ``data_started_at`` is committed just before DATA.
* **record**: SENT; or QUEUED again with exponential backoff (4xx, connection errors);
  FAILED for staff (5xx, or too many attempts); IN_DOUBT when the connection broke after
  DATA (the host may have it), retried later with the very same message and Message-ID
  so the host can recognise the duplicate.

A sender killed mid-notice leaves a SENDING row; :func:`recover_stale` (run at the start
of every dispatch) turns those older than the lease, and at once those whose sender was a
process of this machine that is gone (``claimed_by``), into QUEUED (DATA never started:
it was not delivered) or IN_DOUBT (it may have been). Nothing is dropped silently: every
notice ends SENT, FAILED with a reason, or DISCARDED with a reason.

``dispatch`` takes a sessionmaker, not a session: the claim must be committed before
the SMTP transaction starts, which a caller's single transaction cannot give.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Notice, NoticeStatus
from notices.build import REFUSED, guess_needs_approval, refusal
from foundation.claimant import gone, this_process
from foundation.timeutil import utc_now
from notices.channels import CHANNELS, Channel, InDoubt, PermanentFailure, TemporaryFailure
from notices.mail import build_message, sender_address
from foundation.timeutil import as_utc
from foundation.config import Config
from foundation.errors import DispatchError

CLAIMABLE = (NoticeStatus.QUEUED, NoticeStatus.IN_DOUBT)


@dataclass
class DispatchResult:
    sent: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    in_doubt: list[int] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)     # back to staff: approval now required
    rate_limited: list[int] = field(default_factory=list)
    recovered: int = 0
    errors: list[str] = field(default_factory=list)


def recover_stale(sessions: sessionmaker[Session], now: datetime, lease_s: float) -> int:
    """Release notices whose sender died: QUEUED if DATA never started, else IN_DOUBT.
    A sender is known dead once its lease is over, or at once when it ran on this
    machine and its process is gone (``foundation.claimant``: a scheduler restarted
    after a crash sends what the crash left half-sent now, not ``lease_s`` later)."""
    cutoff = now - timedelta(seconds=lease_s)
    count = 0
    with sessions.begin() as s:
        rows = s.execute(select(Notice.id, Notice.data_started_at, Notice.claimed_at, Notice.claimed_by)
                         .where(Notice.status == NoticeStatus.SENDING)).all()
        for nid, data_started, claimed, claimant in rows:
            if claimed is not None and as_utc(claimed) > cutoff and not gone(claimant):  # type: ignore[operator]
                continue
            if data_started is not None:
                values = {"status": NoticeStatus.IN_DOUBT,
                          "last_error": "sender stopped after DATA started: resend with the same Message-ID"}
            else:
                values = {"status": NoticeStatus.QUEUED,
                          "last_error": "sender stopped before DATA: not delivered, requeued"}
            res = s.execute(update(Notice).where(Notice.id == nid, Notice.status == NoticeStatus.SENDING)
                            .values(claimed_at=None, **values))
            count += res.rowcount or 0
    return count


def _claim(sessions: sessionmaker[Session], now: datetime,
           skip: set[int]) -> tuple[int, NoticeStatus] | None:
    """Claim the next due notice: (id, the status it had); None when none is left."""
    while True:
        with sessions.begin() as s:
            q = (select(Notice.id, Notice.status)
                 .where(Notice.status.in_(CLAIMABLE))
                 .where((Notice.next_attempt_at.is_(None)) | (Notice.next_attempt_at <= now))
                 .order_by(Notice.id).limit(1))
            if skip:
                q = q.where(Notice.id.not_in(skip))
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            row = s.execute(q).first()
            if row is None:
                return None
            nid, status = row
            res = s.execute(update(Notice).where(Notice.id == nid, Notice.status == status)
                            .values(status=NoticeStatus.SENDING, claimed_at=now, claimed_by=this_process(),
                                    data_started_at=None, attempts=Notice.attempts + 1))
            if res.rowcount == 1:
                return int(nid), status
        # Another sender won this one between our read and our update: try the next.
        skip.add(int(nid))


def _set(sessions: sessionmaker[Session], nid: int, **values: object) -> None:
    with sessions.begin() as s:
        s.execute(update(Notice).where(Notice.id == nid).values(**values))


def _rate_limited_until(s: Session, notice: Notice, now: datetime, config: Config) -> datetime | None:
    limit = int((notice.host.settings or {}).get("rate_per_hour", config.get("notices", "rate_per_hour")))
    since = now - timedelta(hours=1)
    sent = s.execute(select(func.count(), func.min(Notice.sent_at))
                     .where(Notice.host_id == notice.host_id, Notice.status == NoticeStatus.SENT,
                            Notice.sent_at >= since)).one()
    if sent[0] < limit:
        return None
    return as_utc(sent[1]) + timedelta(hours=1)  # type: ignore[operator]


def dispatch(
    sessions: sessionmaker[Session],
    config: Config,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    channels: dict[str, Callable[[Config], Channel]] | None = None,
    on_item: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> DispatchResult:
    """Send every due notice in the outbox (the stage function of ``vigie notices send``).

    ``on_item`` is called with each notice id as it is taken up (a progress display). When
    ``stop`` is set, the notice in hand is finished and the rest waits for the next run."""
    now = now or utc_now()
    channels = channels if channels is not None else CHANNELS
    sender = sender_address(config.smtp.get("from"), config.notifier.get("email"))
    result = DispatchResult()
    result.recovered = recover_stale(sessions, now, float(config.get("notices", "lease_s")))
    max_attempts = int(config.get("notices", "max_attempts"))
    base = float(config.get("notices", "retry_base_s"))
    built: dict[str, Channel] = {}
    skip: set[int] = set()
    done = 0
    while (limit is None or done < limit) and not (stop is not None and stop.is_set()):
        claimed = _claim(sessions, now, skip)
        if claimed is None:
            break
        nid, old_status = claimed
        done += 1
        skip.add(nid)
        if on_item is not None:
            on_item(nid)
        with sessions.begin() as s:
            notice = s.get(Notice, nid)
            assert notice is not None
            problems = refusal(notice, now)
            if problems:
                notice.status = NoticeStatus.DISCARDED
                notice.last_error = f"{REFUSED} before sending: " + "; ".join(problems)
                notice.claimed_at = None
                result.discarded.append(nid)
                continue
            if notice.host.needs_approval and notice.approved_at is None:
                # Staff asked to see this host's notices after this one was queued: it
                # waits for them instead of going out unseen. Not an attempt.
                notice.status = NoticeStatus.AWAITING_APPROVAL
                notice.attempts -= 1
                notice.claimed_at = None
                notice.last_error = f"held before sending: host {notice.host.name!r} now needs approval"
                result.held.append(nid)
                continue
            parent = s.get(Notice, notice.parent_id) if notice.parent_id else None
            if notice.approved_at is None and guess_needs_approval(config, notice.recipient_source, parent):
                # Queued before guesses needed a human (or by hand): a guessed address
                # is not used unseen.
                notice.status = NoticeStatus.AWAITING_APPROVAL
                notice.attempts -= 1
                notice.claimed_at = None
                notice.last_error = f"held before sending: guessed contact {notice.recipient} needs approval"
                result.held.append(nid)
                continue
            until = _rate_limited_until(s, notice, now, config)
            if until is not None:
                # Not an attempt: give it back as it was, due after the window.
                notice.status = old_status
                notice.attempts -= 1
                notice.claimed_at = None
                notice.next_attempt_at = until
                result.rate_limited.append(nid)
                continue
            channel_name = notice.host.channel.value
            factory = channels.get(channel_name)
            if factory is None:
                notice.status = NoticeStatus.FAILED
                notice.last_error = f"no channel {channel_name!r} to send with: send it by hand"
                result.failed.append(nid)
                continue
            parent_mid = None
            if notice.parent_id:
                parent = s.get(Notice, notice.parent_id)
                parent_mid = parent.message_id if parent else None
            try:
                message = build_message(notice, sender=sender, parent_message_id=parent_mid)
            except DispatchError as exc:
                notice.status = NoticeStatus.FAILED
                notice.last_error = str(exc)
                result.failed.append(nid)
                continue
            attempts = notice.attempts
            is_first = notice.kind == "notice"
            grace = float((notice.host.settings or {}).get("grace_hours", config.get("notices", "grace_hours")))
        if channel_name not in built:
            built[channel_name] = factory(config)

        def mark_data(nid: int = nid) -> None:
            _set(sessions, nid, data_started_at=now)

        try:
            ack = built[channel_name].send(message, on_data=mark_data)
        except TemporaryFailure as exc:
            if attempts >= max_attempts:
                _set(sessions, nid, status=NoticeStatus.FAILED, claimed_at=None,
                     last_error=f"gave up after {attempts} attempts: {exc}")
                result.failed.append(nid)
            else:
                _set(sessions, nid, status=NoticeStatus.QUEUED, claimed_at=None, last_error=str(exc),
                     next_attempt_at=now + timedelta(seconds=base * 2 ** (attempts - 1)))
                result.retry.append(nid)
            continue
        except PermanentFailure as exc:
            _set(sessions, nid, status=NoticeStatus.FAILED, claimed_at=None,
                 last_error=f"refused by the server: {exc}")
            result.failed.append(nid)
            continue
        except InDoubt as exc:
            status = NoticeStatus.IN_DOUBT if attempts < max_attempts else NoticeStatus.FAILED
            _set(sessions, nid, status=status, claimed_at=None, last_error=str(exc),
                 next_attempt_at=now + timedelta(seconds=base))
            (result.in_doubt if status is NoticeStatus.IN_DOUBT else result.failed).append(nid)
            continue
        except DispatchError:
            # The channel itself is broken (bad login, no STARTTLS): nothing was sent;
            # give the notice back and stop the run with the reason.
            _set(sessions, nid, status=NoticeStatus.QUEUED, claimed_at=None, attempts=attempts - 1)
            raise
        with sessions.begin() as s:
            notice = s.get(Notice, nid)
            assert notice is not None
            notice.status = NoticeStatus.SENT
            notice.sent_at = now
            notice.claimed_at = None
            notice.next_attempt_at = None
            notice.last_error = None if notice.attempts == 1 else f"sent on attempt {notice.attempts}: {ack}"
            if is_first:
                for it in notice.items:
                    if it.due_at is None:
                        it.due_at = now + timedelta(hours=grace)
        result.sent.append(nid)
    return result


def write_eml(session: Session, config: Config, out_dir: str | Path) -> list[Path]:
    """``--dry-run``: the .eml of every due notice, as it would be sent; no state change."""
    sender = sender_address(config.smtp.get("from"), config.notifier.get("email"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for notice in session.scalars(select(Notice).where(Notice.status.in_(CLAIMABLE)).order_by(Notice.id)):
        parent = session.get(Notice, notice.parent_id) if notice.parent_id else None
        msg = build_message(notice, sender=sender, parent_message_id=parent.message_id if parent else None)
        path = out / f"notice-{notice.id:06d}.eml"
        path.write_bytes(msg.as_bytes())
        paths.append(path)
    return paths
