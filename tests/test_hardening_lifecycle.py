"""A Hypothesis state machine over the notice lifecycle, on a real database and SMTP server.

Staff and the pipeline act in any order: titles and matches (confirmed or for review)
appear, staff approve or reject matches, edit the partner lists (a host marked licensed
partner on its own row or on a new row covering its domain, a title's own offer on a
domain), require approval for a host, build notices, approve or discard held notices,
dispatch them to a real aiosmtpd server that can answer 451 or drop the connection
after ".", and the dispatcher crashes (its claimed notice abandoned before DATA, after
DATA started, or after the server took the message) and restarts on a later clock.

The model is kept by the test itself (which domains are partners, which title owns which
domain, which matches staff approved or rejected, which hosts need approval), so the
checks do not ask the code under test what it thinks. After every step:

* never a notice built, or a mail sent, to a licensed partner or about a URL on one;
* every item of a notice (its ACNS and X-ARF copies too, and the mail's attachments)
  names the film of its own match;
* never sent without approval where approval is required (a held host, a match for review);
* a sent notice has exactly one mail with its Message-ID, more only when it was in doubt;
* nothing lost: every notice is in a known state with a reason when it is not sent, every
  notifiable match is in a notice after a build, and at the end of each run a restart
  sends every notice left in the outbox.

SQLite gets a fresh file per example (copied from a migrated template); PostgreSQL one
schema, emptied between examples.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from hypothesis import HealthCheck, settings
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from db.models import Base, Decision, Host, Match, Notice, NoticeItem, NoticeStatus, ReviewState, Title, User
from db.session import make_engine, sessionmaker_for
from notices.build import approve_notice, queue_notices, reject_notice
from notices.channels import EmailChannel
from notices.dispatch import dispatch
from notices.hosts import add_host as register_host
from tests.figures import Figures, soak
from tests.test_notices_support import T0, machine_documents_valid, Recorder, add_match, add_title, make_config, smtp  # noqa: F401
from foundation.errors import InvalidInput
from webapp import actions

ACNS = "{http://www.acns.net/ACNS}"
PAGE_DOMAINS = ("site0.example", "site1.example", "site2.example")
# loose.example is registered by nobody: building a notice for it registers it.
MEDIA_DOMAINS = ("cdn0.example", "cdn1.example", "loose.example")
DOMAINS = PAGE_DOMAINS + MEDIA_DOMAINS
# Distinct names, some hostile: a notice naming the wrong film must show.
TITLE_NAMES = ("Le Voyage", "The Journey Back", "L'Été <b>meurtrier</b>", "Nuit & Brouillard",
               "Subject: =?UTF-8?Q?=0A?=Bcc: x", "東京物語", "Film 7", "Film 8")
JURISDICTIONS = {"site0.example": ("FR", "fr"), "site1.example": ("US", "en"),
                 "site2.example": ("DE", "en"), "cdn0.example": ("US", "en"), "cdn1.example": ("FR", "fr")}


class Crash(BaseException):
    """The dispatcher dies (a BaseException: no ``except Exception`` in dispatch catches it)."""


class CrashingChannel:
    """The real SMTP channel, except that the dispatcher dies at its ``at``-th notice:
    before DATA, after DATA started (nothing delivered), or after the server accepted the
    message (the reply never recorded)."""

    name = "email"

    def __init__(self, real: EmailChannel, at: int, point: str) -> None:
        self.real, self.at, self.point, self.count = real, at, point, 0

    def send(self, message, *, on_data):  # type: ignore[no-untyped-def]
        self.count += 1
        if self.count != self.at:
            return self.real.send(message, on_data=on_data)
        if self.point == "before_data":
            raise Crash("died before DATA")
        if self.point == "data_started":
            on_data()
            raise Crash("died after marking DATA, before sending it")
        self.real.send(message, on_data=on_data)
        raise Crash("died after the server accepted the message")


@dataclass
class MatchModel:
    title_id: int
    page_url: str
    media_url: str | None
    decision: Decision
    review: ReviewState = ReviewState.NONE

    def notifiable(self) -> bool:
        # Allowed material is never notified, whatever a reviewer did.
        if self.decision is Decision.ALLOWED:
            return False
        return self.review is ReviewState.APPROVED or (
            self.decision is Decision.CONFIRMED and self.review is not ReviewState.REJECTED)


@dataclass
class Env:
    """What a test hands the machine: the database, the SMTP server, the tally."""

    kind: str                     # sqlite | postgresql
    url: str                      # postgresql: the schema's URL; sqlite: the template file
    recorder: Recorder
    port: int
    workdir: Path
    tally: Counter[str] = field(default_factory=Counter)


def domain(url: str) -> str:
    return url.split("/")[2]


def acns_pairs(xml: str) -> set[tuple[str, str]]:
    root = ET.fromstring(xml)
    return {(it.findtext(f"{ACNS}Title") or "", it.findtext(f"{ACNS}URL") or "")
            for it in root.iter(f"{ACNS}Item")}


def xarf_pairs(blob: str) -> set[tuple[str, str]]:
    return {(r["work_title"], r["infringing_url"]) for r in json.loads(blob)}


def empty_all(engine) -> None:  # type: ignore[no-untyped-def]
    # DELETE, children first: on a few rows much faster than TRUNCATE (which recreates files).
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


class NoticeLifecycle(RuleBasedStateMachine):
    env: Env  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        env.tally["examples"] += 1
        rec = env.recorder
        rec.received.clear()
        rec.replies.clear()
        rec.drop_after_data.clear()
        if env.kind == "sqlite":
            path = env.workdir / f"ex{env.tally['examples']}.db"
            shutil.copy(env.url, path)
            self.engine = make_engine(f"sqlite:///{path}")
        else:
            self.engine = make_engine(env.url)
            empty_all(self.engine)
        self.Session = sessionmaker_for(self.engine)
        self.clock: datetime = T0
        self.titles: dict[int, str] = {}
        self.offers: dict[int, dict[str, int]] = {}        # title id -> domain -> offer id
        self.matches: dict[int, MatchModel] = {}
        self.partners: set[str] = set()
        self.held: set[str] = set()                        # domains whose host needs approval
        self.requires_approval: set[int] = set()           # notices built for a held host
        self.approved: set[int] = set()                    # notices staff approved
        self.staff_discarded: set[int] = set()
        self.contents_checked: set[int] = set()
        self.doubted: set[str] = set()                     # Message-IDs the server may have twice
        self.mails_seen = 0
        self.urls = 0
        self.cfg: Any = None

    # ------------------------------------------------------------------ set-up

    @initialize(per_notice=st.sampled_from([1, 3]), held=st.sets(st.sampled_from(PAGE_DOMAINS), max_size=1),
                names=st.lists(st.sampled_from(TITLE_NAMES), min_size=1, max_size=3, unique=True),
                matches=st.lists(st.tuples(st.integers(0, 99), st.sampled_from(PAGE_DOMAINS),
                                           st.sampled_from((None, "same") + MEDIA_DOMAINS), st.booleans(),
                                           st.sampled_from(Decision)), min_size=1, max_size=6))
    def setup(self, per_notice: int, held: set[str], names: list[str],
              matches: list[tuple[int, str, str | None, bool, Decision]]) -> None:
        """The hosts, a catalogue and a crawl's worth of matches (so most runs reach the outbox)."""
        self.cfg = make_config(self.env.port, max_urls_per_notice=per_notice)
        with self.Session.begin() as s:
            s.add(User(username="analyst", password_hash="-"))
            for d, (jur, lang) in JURISDICTIONS.items():
                register_host(s, d, patterns=[d], contact=f"abuse@{d}", jurisdiction=jur, language=lang,
                              needs_approval=d in held, settings={"rate_per_hour": 100000})
        self.held = set(held)
        for name in names:
            self.add_title(name)
        for args in matches:
            self.add_match(*args)

    def _user(self, s) -> User:  # type: ignore[no-untyped-def]
        return s.scalar(select(User))

    def _pick(self, keys: list[int], i: int) -> int | None:
        return sorted(keys)[i % len(keys)] if keys else None

    # ------------------------------------------------------------------ catalogue and matches

    @rule(name=st.sampled_from(TITLE_NAMES))
    def add_title(self, name: str) -> None:
        if name in self.titles.values():
            return
        with self.Session.begin() as s:
            t = add_title(s, name)
            self.titles[t.id] = name
            self.offers[t.id] = {}

    @rule(t=st.integers(0, 99), page=st.sampled_from(PAGE_DOMAINS),
          media=st.sampled_from((None, "same") + MEDIA_DOMAINS), reuse=st.booleans(),
          decision=st.sampled_from(Decision))
    def add_match(self, t: int, page: str, media: str | None, reuse: bool, decision: Decision) -> None:
        tid = self._pick(list(self.titles), t)
        if tid is None:
            return
        self.urls += 1
        page_url = f"https://{page}/v/{self.urls}"
        media_url = None
        if media == "same":
            media_url = f"https://{page}/f/{self.urls}.mp4"
        elif media is not None:
            media_url = f"https://{media}/e/{self.urls}.mp4"
        if reuse:  # the same video embedded in another page (same film)
            media_url = next((m.media_url for m in self.matches.values()
                              if m.title_id == tid and m.media_url), media_url)
        with self.Session.begin() as s:
            host = s.scalar(select(Host).where(Host.name == page))
            m = add_match(s, s.get(Title, tid), host, page_url, decision=decision,
                          media=[media_url] if media_url else None, seen=self.clock - timedelta(hours=1))
            m.media_url = media_url
            self.matches[m.id] = MatchModel(tid, page_url, media_url, decision)

    @rule(c=st.integers(0, 99), t=st.integers(0, 99), decision=st.sampled_from(Decision))
    def second_title_on_a_candidate(self, c: int, t: int, decision: Decision) -> None:
        """One page matching two films (a double bill): two matches, one candidate."""
        mid = self._pick(list(self.matches), c)
        tid = self._pick(list(self.titles), t)
        if mid is None or tid is None:
            return
        first = self.matches[mid]
        if any(m.page_url == first.page_url and m.title_id == tid for m in self.matches.values()):
            return
        with self.Session.begin() as s:
            cand = s.get(Match, mid).candidate
            m = Match(candidate=cand, title_id=tid, media_url=first.media_url, score=0.9, matched_s=300.0,
                      offset_s=60.0, speed=1.0, cand_start_s=0.0, cand_end_s=300.0, ref_start_s=60.0,
                      ref_end_s=360.0, decision=decision)
            s.add(m)
            s.flush()
            self.matches[m.id] = MatchModel(tid, first.page_url, first.media_url, decision)

    @rule(i=st.integers(0, 99), approve=st.booleans())
    def review_match(self, i: int, approve: bool) -> None:
        mid = self._pick(list(self.matches), i)
        if mid is None:
            return
        if approve and self.matches[mid].decision is Decision.ALLOWED:
            # Allowed material has nothing to confirm: refused, nothing changes.
            with pytest.raises(InvalidInput), self.Session.begin() as s:
                actions.approve_match(s, mid, self._user(s))
            return
        with self.Session.begin() as s:
            if approve:
                actions.approve_match(s, mid, self._user(s))
            else:
                actions.reject_match(s, mid, self._user(s), "a trailer the studio published itself")
        self.matches[mid].review = ReviewState.APPROVED if approve else ReviewState.REJECTED

    # ------------------------------------------------------------------ partner lists, approval

    @rule(d=st.sampled_from(DOMAINS), how=st.sampled_from(["own row", "new row", "unmark"]))
    def edit_partner(self, d: str, how: str) -> None:
        with self.Session.begin() as s:
            rows = [h for h in s.scalars(select(Host)) if d in (h.domain_patterns or [])]
            if how == "unmark":
                for h in rows:
                    register_host(s, h.name, licensed_partner=False)
                self.partners.discard(d)
                return
            if how == "own row" and rows:
                register_host(s, rows[0].name, licensed_partner=True)
            else:
                n = len(list(s.scalars(select(Host))))
                register_host(s, f"partner {n} for {d}", patterns=[d], licensed_partner=True,
                              contact=f"legal@{d}")
            self.partners.add(d)

    @rule(t=st.integers(0, 99), d=st.sampled_from(DOMAINS), add=st.booleans())
    def edit_offer(self, t: int, d: str, add: bool) -> None:
        """The title's own shop on a domain: never notified for that title."""
        tid = self._pick(list(self.titles), t)
        if tid is None:
            return
        with self.Session.begin() as s:
            if add and d not in self.offers[tid]:
                o = actions.add_offer(s, tid, self._user(s), f"https://{d}/watch/{tid}", d)
                self.offers[tid][d] = o.id
            elif not add and d in self.offers[tid]:
                actions.remove_offer(s, self.offers[tid].pop(d), self._user(s))

    @rule(d=st.sampled_from(DOMAINS), on=st.booleans())
    def require_approval(self, d: str, on: bool) -> None:
        with self.Session.begin() as s:
            rows = [h for h in s.scalars(select(Host)) if d in (h.domain_patterns or [])]
            if not rows:
                register_host(s, d, patterns=[d], needs_approval=on)
            for h in rows:
                register_host(s, h.name, needs_approval=on)
        (self.held.add if on else self.held.discard)(d)

    # ------------------------------------------------------------------ notices

    def _forbidden(self, url: str, title_id: int) -> bool:
        return domain(url) in self.partners or domain(url) in self.offers.get(title_id, {})

    def _notice_ids(self) -> set[int]:
        with self.Session() as s:
            return set(s.scalars(select(Notice.id)))

    @rule()
    def build(self) -> None:
        before = self._notice_ids()
        with self.Session.begin() as s:
            queue_notices(s, self.cfg, self.clock)
        with self.Session() as s:
            for n in s.scalars(select(Notice).where(Notice.id.not_in(before) if before else True)):
                self.env.tally["notices built"] += 1
                host_domains = set(n.host.domain_patterns or [])
                assert not n.host.licensed_partner and not host_domains & self.partners, \
                    f"notice {n.id} built for licensed partner {n.host.name}"
                for it in n.items:
                    m = self.matches[it.match_id]
                    assert not self._forbidden(it.url, m.title_id), f"notice {n.id} built about {it.url}"
                    assert m.notifiable(), f"notice {n.id} built for match {it.match_id} ({m})"
                if host_domains & self.held:
                    self.requires_approval.add(n.id)
                    assert n.status in (NoticeStatus.AWAITING_APPROVAL, NoticeStatus.DRAFT), \
                        f"notice {n.id} to a host that needs approval is {n.status.value}"
        self._check_coverage()

    def _check_coverage(self) -> None:
        """Nothing lost: every notifiable match not about a partner has its URLs in a notice."""
        with self.Session() as s:
            # A notice staff discarded settles its URLs; one refused by the code does not.
            notified = {url for url, nid, status in s.execute(
                select(NoticeItem.url, Notice.id, Notice.status).join(Notice).where(Notice.kind == "notice"))
                if status is not NoticeStatus.DISCARDED or nid in self.staff_discarded}
        for mid, m in self.matches.items():
            urls = [m.page_url] + ([m.media_url] if m.media_url and domain(m.media_url) != domain(m.page_url) else [])
            if not m.notifiable() or any(self._forbidden(u, m.title_id) for u in urls):
                continue
            missing = [u for u in urls if u not in notified]
            assert not missing, f"match {mid} ({m}) not in any notice after a build: {missing}"

    @rule()
    def build_then_crash(self) -> None:
        """The builder dies before its transaction commits: nothing half-built stays."""
        before = self._notice_ids()
        try:
            with self.Session.begin() as s:
                queue_notices(s, self.cfg, self.clock)
                s.flush()
                raise Crash("builder died before commit")
        except Crash:
            pass
        assert self._notice_ids() == before

    @rule(i=st.integers(0, 99), approve=st.booleans())
    def decide_notice(self, i: int, approve: bool) -> None:
        with self.Session() as s:
            held = list(s.scalars(select(Notice.id).where(Notice.status == NoticeStatus.AWAITING_APPROVAL)))
        nid = self._pick(held, i)
        if nid is None:
            return
        with self.Session.begin() as s:
            if approve:
                n = approve_notice(s, nid, actor="analyst", now=self.clock)
                if n.status is NoticeStatus.QUEUED:
                    self.approved.add(nid)
            else:
                reject_notice(s, nid, actor="analyst", reason="not this one")
                self.staff_discarded.add(nid)

    @rule(kind=st.sampled_from(["451", "drop"]))
    def server_trouble(self, kind: str) -> None:
        """The next message gets a 451, or the connection drops after its "."."""
        rec = self.env.recorder
        if kind == "451":
            rec.replies.setdefault("DATA", []).append("451 4.3.0 try again later")
        else:
            rec.drop_after_data.add(len(rec.received) + 1)

    @rule(minutes=st.sampled_from([1, 30, 61, 24 * 60]))
    def tick(self, minutes: int) -> None:
        self.clock += timedelta(minutes=minutes)

    def _outbox_due(self) -> bool:
        with self.Session() as s:
            return s.scalar(select(Notice.id).where(
                Notice.status.in_([NoticeStatus.QUEUED, NoticeStatus.IN_DOUBT]),
                (Notice.next_attempt_at.is_(None)) | (Notice.next_attempt_at <= self.clock)).limit(1)) is not None

    CRASH = st.none() | st.tuples(st.integers(1, 2), st.sampled_from(["before_data", "data_started", "accepted"]))

    def _dispatch(self, crash: tuple[int, str] | None) -> None:
        """Dispatch; with ``crash``, the dispatcher dies at its 1st or 2nd notice."""
        channels = None
        self.env.tally["dispatch runs"] += 1
        if crash is not None:
            at, point = crash
            channels = {"email": lambda cfg: CrashingChannel(EmailChannel(cfg), at, point)}
        try:
            dispatch(self.Session, self.cfg, now=self.clock, channels=channels)
        except Crash:
            self.env.tally["dispatcher crashes"] += 1
        self._check_new_mail()

    @precondition(lambda self: self.cfg is not None and self._outbox_due())
    @rule(crash=CRASH)
    def send(self, crash: tuple[int, str] | None) -> None:
        self._dispatch(crash)

    @rule(crash=CRASH)
    def notices_send(self, crash: tuple[int, str] | None) -> None:
        """What ``vigie notices send`` does: build, then dispatch."""
        self.build()
        self._dispatch(crash)

    @rule()
    def restart_after_lease(self) -> None:
        """A restart once the dead dispatcher's lease is over: its notice is recovered."""
        self.clock += timedelta(seconds=float(self.cfg.get("notices", "lease_s")) + 1)
        dispatch(self.Session, self.cfg, now=self.clock)
        self._check_new_mail()

    def _check_new_mail(self) -> None:
        """Each message the server got in this step: sent as allowed, or honestly in doubt."""
        new = self.env.recorder.received[self.mails_seen:]
        self.mails_seen += len(new)
        with self.Session() as s:
            by_mid = {n.message_id: n for n in s.scalars(select(Notice))}
            for n in by_mid.values():
                if n.status is NoticeStatus.SENDING and n.data_started_at is not None:
                    self.doubted.add(n.message_id)
            for got in new:
                msg = got.message
                mid = str(msg["Message-ID"])
                n = by_mid.get(mid)
                assert n is not None, f"a mail for no notice: {mid}"
                self.env.tally["mails"] += 1
                assert not n.host.licensed_partner and not set(n.host.domain_patterns or []) & self.partners, \
                    f"notice {n.id} sent to licensed partner {n.host.name}"
                pairs: set[tuple[str, str]] = set()
                xarf_seen: set[tuple[str, str]] = set()
                for part in msg.iter_attachments():
                    name = part.get_filename() or ""
                    if name.startswith("acns-"):
                        pairs |= acns_pairs(part.get_payload(decode=True).decode())
                    elif name.startswith("xarf-"):
                        xarf_seen |= xarf_pairs("[" + part.get_payload(decode=True).decode() + "]")
                want = {(self.titles[self.matches[it.match_id].title_id], it.url) for it in n.items}
                # ACNS names one source's URLs (those served from one known address).
                assert pairs <= want and xarf_seen == want, \
                    f"mail of notice {n.id} names other films or URLs than its matches: {pairs} {xarf_seen}"
                for it in n.items:
                    m = self.matches[it.match_id]
                    assert not self._forbidden(it.url, m.title_id), f"notice {n.id} sent about {it.url}"
                    assert m.notifiable(), f"notice {n.id} sent for match {it.match_id} ({m})"
                if n.id in self.requires_approval or set(n.host.domain_patterns or []) & self.held:
                    assert n.id in self.approved and n.approved_at is not None, \
                        f"notice {n.id} sent without the approval its host requires"
                if n.status is not NoticeStatus.SENT:
                    # The server has it and we do not know: only after DATA started.
                    in_doubt = (n.status is NoticeStatus.IN_DOUBT
                                or (n.status is NoticeStatus.SENDING and n.data_started_at is not None)
                                or (n.status is NoticeStatus.FAILED and "after DATA" in (n.last_error or "")))
                    assert in_doubt, f"notice {n.id} delivered but {n.status.value}: {n.last_error}"
                    self.doubted.add(mid)

    # ------------------------------------------------------------------ after every step

    @invariant()
    def notices_are_whole_and_honest(self) -> None:
        if self.cfg is not None:
            self.env.tally["steps"] += 1
            self._check_notices()

    def _check_contents(self, n: Notice) -> None:
        """A notice's items, and its ACNS and X-ARF copies, name its matches' own films and URLs
        (once per notice: what a notice says never changes after it is built)."""
        if n.id in self.contents_checked:
            return
        want = {(self.titles[self.matches[it.match_id].title_id], it.url) for it in n.items}
        assert want and (n.acns_xml is None or acns_pairs(n.acns_xml) <= want), \
            f"notice {n.id}: ACNS names other films"
        assert xarf_pairs(n.xarf_json or "[]") == want, f"notice {n.id}: X-ARF names other films"
        for it in n.items:
            m = self.matches[it.match_id]
            assert it.url in (m.page_url, m.media_url), f"notice {n.id}: {it.url} is not its match's"
        self.contents_checked.add(n.id)

    def _check_notices(self) -> None:
        got = Counter(self.env.recorder.message_ids())
        with self.Session() as s:
            for n in s.scalars(select(Notice)):
                self._check_contents(n)
                if n.status in (NoticeStatus.FAILED, NoticeStatus.DISCARDED, NoticeStatus.DRAFT):
                    assert n.last_error, f"notice {n.id} {n.status.value} without a reason"
                if n.status is NoticeStatus.SENT:
                    assert n.sent_at is not None
                    assert got[n.message_id] >= 1, f"notice {n.id} marked sent, never received"
                    assert got[n.message_id] == 1 or n.message_id in self.doubted, \
                        f"notice {n.id} received {got[n.message_id]} times, never in doubt"
                if n.status is NoticeStatus.QUEUED and n.id in self.requires_approval:
                    assert n.id in self.approved, f"notice {n.id} queued without the approval it needs"
        for mid, count in got.items():
            assert count == 1 or mid in self.doubted, f"{mid} received {count} times, never in doubt"

    def teardown(self) -> None:
        try:
            if self.cfg is not None:
                self._drain()
        finally:
            self.engine.dispose()

    def _drain(self) -> None:
        """The final restart: past every lease and backoff, the outbox empties."""
        rec = self.env.recorder
        rec.replies.clear()
        rec.drop_after_data.clear()
        for _ in range(3):
            self.clock += timedelta(days=1)
            dispatch(self.Session, self.cfg, now=self.clock)
            self._check_new_mail()
        self._check_notices()
        with self.Session() as s:
            left = {n.id: n.status.value for n in s.scalars(select(Notice).where(Notice.status.in_(
                [NoticeStatus.QUEUED, NoticeStatus.SENDING, NoticeStatus.IN_DOUBT])))}
            assert not left, f"notices left in the outbox after a restart: {left}"
            self.env.tally["notices sent"] += len(list(s.scalars(
                select(Notice.id).where(Notice.status == NoticeStatus.SENT))))


def test_notice_lifecycle_state_machine(engine, db_url: str, smtp, tmp_path: Path,  # noqa: F811
                                        figures: Figures) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    kind = engine.dialect.name
    if kind == "sqlite":
        engine.dispose()  # the migrated file is the template each example copies
        url = db_url.removeprefix("sqlite:///")
    else:
        url = db_url
    env = Env(kind=kind, url=url, recorder=rec, port=port, workdir=tmp_path)
    machine = type("Lifecycle", (NoticeLifecycle,), {"env": env})
    examples = 200 if soak() else 25
    violations = 0
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=examples, stateful_step_count=50 if soak() else 20, deadline=None,
            database=None, derandomize=not soak(),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    except AssertionError:
        violations = 1  # Hypothesis stops at the first one and shrinks it
        raise
    finally:
        t = env.tally
        figures.record(f"lifecycle state machine ({kind}): examples, steps checked, invariant violations",
                       f"{t['examples']}, {t['steps']}, {violations}", f"{examples} examples, 0 violations",
                       t["examples"] >= examples and not violations)
    figures.record(f"lifecycle state machine ({kind}): notices built, mails, sent, dispatcher crashes",
                   f"{t['notices built']}, {t['mails']}, {t['notices sent']}, {t['dispatcher crashes']}",
                   "crashes > 0, every notice accounted for", t["dispatcher crashes"] > 0)
    assert t["examples"] >= examples
    assert t["dispatcher crashes"] > 0 and t["mails"] > 0
