"""``vigie demo``: one full cycle on the bundled demo world, offline.

The demo world is real and local: a catalogue of freely licensed footage shipped in
``demoweb/demo_media`` (see its README for attribution), the demo web (``demoweb``: a
pirate link site, a video host and a licensed VOD site on loopback, serving
pirate-style copies made on the spot) and the hosts' abuse mailboxes (an SMTP server
on loopback). The cycle is the production one, stage by stage: catalogue, crawl,
match, notices, dispatch, the hosts' replies read, verify (with a host that complies
and one that does not), the daily report.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from db.models import Candidate, CandidateStatus, Decision, Match, Notice, NoticeItem, NoticeStatus, Site
from db.session import upgrade
from foundation.config import Config
from foundation.timeutil import local_today, utc_now
from stages.catalog import add_title
from stages.holders import add_holder, add_mandate
from stages.context import Context
from stages.table import run_stage

MEDIA = Path(__file__).parent / "demo_media"

CATALOGUE = [
    {
        "file": "big_buck_bunny_excerpt.mp4",
        "title": "Big Buck Bunny",
        "year": 2008,
        "alt_titles": ["Le Grand Lapin"],
        "holder": "films-du-phare",
    },
    {
        "file": "calais_1906.mp4",
        "title": "Grand Prix de l'ACF, Calais 1906",
        "year": 1906,
        "alt_titles": ["French Grand Prix 1906"],
        # Notified by the agent below, on behalf of the archive, under its mandate.
        "holder": "archives-calais",
    },
]

NOTIFIER = {
    "legal_name": "Films du Phare SAS (demo)",
    "address": "12 rue de la Vigie, 29200 Brest, France",
    "phone": "+33 2 98 00 00 00",
    "email": "rights@films-du-phare.example",
    "signature": "Camille Martin, head of rights protection, Films du Phare SAS",
    "country": "FR",
}

# Who holds the rights (worldwide), and an agent acting for one of them: the demo's
# notices come from the producer itself, and from the agent "on behalf of" the archive.
HOLDERS = [
    {"name": "films-du-phare", "legal_name": NOTIFIER["legal_name"], "address": NOTIFIER["address"],
     "signatory": NOTIFIER["signature"], "email": NOTIFIER["email"], "phone": NOTIFIER["phone"], "country": "FR"},
    {"name": "archives-calais", "legal_name": "Archives cinématographiques de Calais (demo)",
     "address": "1 quai de la Colonne, 62100 Calais, France", "country": "FR"},
    {"name": "alpa-demo", "agent": True,
     "legal_name": "Association de lutte contre la piraterie audiovisuelle (demo)",
     "address": "5 rue du Cinéma, 75009 Paris, France", "signatory": "Louis Bernard, délégué général",
     "email": "notices@alpa-demo.example", "phone": "+33 1 45 00 00 00", "country": "FR"},
]
MANDATE_TEXT = b"Mandate (demo): the Archives of Calais appoint the association to notify for all their titles."


class Mailboxes:
    """The hosts' abuse mailboxes: a real SMTP server on loopback that keeps every mail."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []

        class Handler:
            async def handle_DATA(inner, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                self.messages.append(envelope)
                return "250 OK"

        # aiosmtpd cannot bind port 0 itself (issues 276, 388): find a free port first.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def run_demo(workdir: str, echo: Callable[[str], None] = print) -> None:
    import demoweb

    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    db.unlink(missing_ok=True)
    shutil.rmtree(out / "evidence", ignore_errors=True)
    shutil.rmtree(out / "evidence-file", ignore_errors=True)
    db_url = f"sqlite:///{db.resolve()}"
    with Context.open(db_url, Config(), check=False) as ctx:
        upgrade(ctx.engine)
    echo(f"Vigie demo: database {db}")

    echo("\n0. Starting the demo world on loopback (first run: making the pirate copies)...")
    started = time.perf_counter()
    web = demoweb.serve(out / "web")
    mail = Mailboxes()
    echo(f"   pirate link site {web.base_url}, video host {web.host.base}, licensed VOD {web.vod.base}, "
         f"abuse mailboxes smtp://127.0.0.1:{mail.port} ({time.perf_counter() - started:.1f} s)")
    config = Config(
        notifier=dict(NOTIFIER),
        smtp={"host": "127.0.0.1", "port": mail.port, "from": "notices@films-du-phare.example", "timeout": 10.0},
        notices={"allow_loopback": True, "discover_contacts": False, "grace_hours": 48.0},
        match={"allow_loopback": True},
        crawl={"allow_loopback": True, "evidence_dir": str(out / "evidence")},
        # The evidence file (WARC captures, match records, case files); no time-stamping
        # authority in the demo: its manifests stay unstamped, and say so.
        evidence={"dir": str(out / "evidence-file")},
    )
    try:
        with Context.open(db_url, config) as ctx:
            _cycle(ctx, web, mail, out, echo)
    finally:
        web.stop()
        mail.stop()


def _cycle(ctx: Context, web: Any, mail: Mailboxes, out: Path, echo: Callable[[str], None]) -> None:
    Session, config = ctx.Session, ctx.config
    offers = web.offers()
    echo("\n1. Catalogue: rights holders, an agent with its mandate, and the reference films")
    with Session.begin() as s:
        for h in HOLDERS:
            row = add_holder(s, **h, actor="demo")
            echo(f"   {row.kind.value} {row.name}: {row.legal_name}")
    for item in CATALOGUE:
        t0 = time.perf_counter()
        with Session.begin() as s:
            res = add_title(s, str(MEDIA / item["file"]), title=item["title"], year=item["year"],
                            alt_titles=item["alt_titles"], offers=[offers[item["title"]]],
                            holder=item["holder"], rights_territory="*", published=True)
            r = res.reference
            echo(f"   title {res.title.id}: {res.title.title} ({item['year']}), {r.duration_s:.0f} s, "
                 f"{r.frame_count} frame hashes in {time.perf_counter() - t0:.1f} s; "
                 f"rights of {item['holder']} worldwide; legal offer {offers[item['title']]}")
    with Session.begin() as s:
        today = utc_now().date()
        m = add_mandate(s, agent="alpa-demo", principal="archives-calais", valid_from=today - timedelta(days=30),
                        valid_until=today + timedelta(days=335),
                        document_sha256=hashlib.sha256(MANDATE_TEXT).hexdigest(), actor="demo")
        echo(f"   mandate {m.id}: alpa-demo notifies for archives-calais, all titles, {m.valid_from} to "
             f"{m.valid_until}, document SHA-256 {m.document_sha256[:16]}…")

    echo("\n2. Crawl: the pirate link site (listing, search, sitemap and feed)")
    with Session.begin() as s:
        web.register(s)
    for res in run_stage("crawl", ctx).detail:
        echo(f"   {res.site}: {res.status}, {res.pages} pages, {res.candidates_new} new candidates, "
             f"{res.candidates_seen} seen again, {res.errors} errors ({res.elapsed_s:.1f} s)")
    echo(_browser_step(ctx, web))
    with Session() as s:
        counts = dict(s.execute(select(Candidate.status, func.count()).group_by(Candidate.status)).all())
    echo("   candidates: " + ", ".join(f"{n} {st.value}" for st, n in sorted(counts.items(), key=lambda x: x[0].value)))

    echo("\n3. Match: fingerprinting each candidate's video against the catalogue")
    lines: list[str] = []
    def show(c: Candidate, outcome: str) -> None:
        if outcome == "failed":
            outcome = f"not matched yet ({_short(c.error, 90)}); retried on the next run"
        lines.append(f"   {_short(c.title_text)}: {outcome}")

    stats = run_stage("match", ctx, on_item=show).detail
    for line in lines:
        echo(line)
    echo(f"   {stats.candidates} candidates: {stats.confirmed} confirmed, {stats.review} for review, "
         f"{stats.no_match} unrelated, {stats.failed} failed, {stats.retry} to retry (dead or removed media, tried again next run)")

    now = ctx.at = utc_now()
    echo("\n4. Notices: one per host and notifier (the producer, or the agent for the archive), with the "
         "evidence and the legal offer, to the abuse mailboxes")
    q = run_stage("notices", ctx).detail
    with Session() as s:
        notifier = {n.id: n.notifier.name if n.notifier else "-" for n in s.scalars(select(Notice))}
    for n in q.queued:
        echo(f"   notice {n['id']} from {notifier.get(n['id'], '-')} to {n['host']} <{n['recipient']}>: "
             f"{n['regime']} in {n['language']}, {n['urls']} URL(s), {n['status']}")
    for why in q.refused + q.flagged:
        echo(f"   held: {why}")
    for why in q.withheld:
        echo(f"   not sent: {why}")
    if q.partners_skipped:
        echo(f"   {q.partners_skipped} match(es) on the licensed partner's site: never notified")
    d = q.dispatch
    echo(f"   dispatched: {len(d.sent)} sent, {len(d.retry)} to retry, {len(d.failed)} failed; "
         f"mailboxes received {len(mail.messages)} mail(s)")
    for env in mail.messages:
        echo(f"     -> {', '.join(env.rcpt_tos)}: {len(env.content)} bytes")

    echo("\n5. Takedowns: the video host complies, the link site does not")
    with Session() as s:
        items = s.execute(select(NoticeItem.url, Notice.host_id).join(Notice)).all()
        host_name = {n.host_id: n.host.name for n in s.scalars(select(Notice))}
    for url, host_id in items:
        if host_name.get(host_id) == "StreamHub":
            web.take_down(url)
            echo(f"   {host_name[host_id]} removed {url}")
    replies = _host_replies(ctx, out / "replies")
    r = run_stage("inbox", ctx, path=replies).detail.result
    echo(f"   the hosts answer ({replies}, read as `vigie inbox import` does): {len(r.stored)} mail(s), "
         + ", ".join(f"{k} {v}" for k, v in sorted(r.by_kind.items())) + f"; {r.for_staff} for staff")
    ctx.at = now + timedelta(hours=5)
    v = run_stage("verify", ctx).detail
    echo(f"   verify after 5 h: {v.checked} checked, {len(v.removed)} removed, {len(v.live)} still live")
    ctx.at = now + timedelta(hours=49)
    v = run_stage("verify", ctx).detail
    echo(f"   verify after 49 h: {len(v.live)} still live past the deadline, "
         f"{len(v.escalations)} escalation notice(s) queued")
    d = run_stage("notices", ctx).detail.dispatch
    echo(f"   escalations dispatched: {len(d.sent)}; mailboxes hold {len(mail.messages)} mail(s) in all")

    echo("\n6. Daily report for the analysts")
    ctx.at = None
    rep = run_stage("report", ctx, day=local_today(config), out_dir=out / "reports").detail.output
    echo(f"   {rep.html}")

    echo("\n7. Evidence file: a case file against the pirate link site, for a blocking order")
    _evidence_step(ctx, out, echo)

    with Session() as s:
        confirmed = s.scalar(select(func.count()).select_from(Match).where(Match.decision == Decision.CONFIRMED))
        review = s.scalar(select(func.count()).select_from(Match).where(Match.decision == Decision.REVIEW))
        sent = s.scalar(select(func.count()).select_from(Notice).where(Notice.status == NoticeStatus.SENT))
        failed = s.scalar(select(func.count()).select_from(Candidate).where(Candidate.status == CandidateStatus.FAILED))
    echo(f"\nSummary: {confirmed} confirmed matches, {review} for review, {sent} notices sent, "
         f"{len(mail.messages)} mails delivered, {failed} candidates failed (with their reasons). "
         f"Work files are in {out}/; open the report above in a browser.")


def _evidence_step(ctx: Context, out: Path, echo: Callable[[str], None]) -> None:
    """The evidence stage, then a case file for the link site (French) and its check."""
    from evidence.export import Scope, evidence_store, export_case
    from evidence.verify import verify_case

    counts = run_stage("evidence", ctx, purge=False)
    echo(f"   daily manifests: {counts['manifests']} written over {counts['items']} item(s) "
         f"(no time-stamping authority configured in the demo: unstamped)")
    with ctx.Session() as s:
        site = s.scalar(select(Candidate.site_id).where(Candidate.status == CandidateStatus.MATCHED))
        name = s.scalar(select(Site.name).where(Site.id == site)) if site else None
    if name is None:
        echo("   no matched page: no case file")
        return
    with ctx.Session.begin() as s:
        res = export_case(s, evidence_store(ctx.config), ctx.config, Scope(site=name), out / "case-file.zip",
                          lang="fr", now=ctx.now(), actor="demo")
    check = verify_case(res.path)
    echo(f"   {res.path}: {res.candidates} page(s), {res.items} item(s), {res.files} file(s); "
         f"vigie evidence verify: {'OK' if check.ok else 'FAILED'} ({check.files} files checked)")
def _host_replies(ctx: Context, path: Path) -> Path:
    """The abuse desks' answers to the notices, as a maildir: StreamHub's desk says it
    removed the videos, the others' auto-reply acknowledges with a ticket number."""
    import mailbox
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    shutil.rmtree(path, ignore_errors=True)
    box = mailbox.Maildir(str(path), create=True)
    with ctx.Session() as s:
        for i, n in enumerate(s.scalars(select(Notice).where(Notice.status == NoticeStatus.SENT)
                                        .order_by(Notice.id)), start=1):
            m = EmailMessage()
            desk = (n.recipient or "abuse@host.example").rsplit("@", 1)[1]
            m["From"], m["To"] = f"abuse@{desk}", "notices@films-du-phare.example"
            m["Subject"], m["In-Reply-To"] = f"Re: {n.subject}", n.message_id
            m["Date"], m["Message-ID"] = format_datetime(ctx.now()), make_msgid(domain=desk)
            if n.host.name == "StreamHub":
                m.set_content("Hello,\n\nWe have removed the videos you reported.\n\nStreamHub Trust & Safety")
            else:
                m["Auto-Submitted"] = "auto-replied"
                m.set_content(f"Thank you for your report. It has been received under ticket number "
                              f"AB-{2026000 + i}. This is an automated response.")
            box.add(m.as_bytes())
    box.close()
    return path


def _browser_step(ctx: Context, web: Any) -> str:
    """Crawl the scripted players (issue 15) and say in one line whether the browser ran."""
    from crawlers.sites import add_site

    site = web.player_site()
    with ctx.Session.begin() as s:
        add_site(s, site["name"], site["start_urls"], kind=site["kind"], settings=site["settings"], replace=True)
    (res,) = run_stage("crawl", ctx, sites=[site["name"]]).detail
    with ctx.Session() as s:
        cands = [c for c in s.scalars(select(Candidate)) if c.site_id is not None and c.site.name == site["name"]]
    rendered = [c for c in cands if (c.evidence or {}).get("browser")]
    waiting = [c for c in cands if c.status is CandidateStatus.NEEDS_BROWSER]
    if rendered:
        found = sum(1 for c in rendered if c.media_urls)
        return (f"   {res.site}: browser step ran: {len(rendered)} scripted player pages rendered in "
                f"Chromium, media found on {found} ({res.elapsed_s:.1f} s)")
    why = (waiting[0].error or "") if waiting else "no page needed it"
    return f"   {res.site}: browser step did not run: {len(waiting)} pages stored as needs_browser ({why})"


def _short(text: str | None, n: int = 60) -> str:
    text = " ".join((text or "(no title)").split())
    return repr(text if len(text) <= n else text[: n - 1] + "…")
