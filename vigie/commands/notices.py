"""``vigie notices send|list|approve|reject|task|submitted|retry|export``, ``vigie verify`` and
``vigie hosts add|list``.

Thin wrappers over the ``notices`` package: parse, open a session, call, print.
"""

from __future__ import annotations

import json
from typing import Any

import click

from vigie.cli import State, echo_listing, pass_state, progress_bar


@click.group()
def notices() -> None:
    """Takedown notices: queue, send, list, approve, export; submission tasks and retries."""


@notices.command("send")
@click.option("--dry-run", is_flag=True, help="Write .eml files instead of sending; change nothing.")
@click.option("--out", "out_dir", default="outbox-eml", show_default=True, type=click.Path(file_okay=False),
              help="Where --dry-run writes the .eml files.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_state
def send(state: State, dry_run: bool, out_dir: str, as_json: bool) -> None:
    """Render notices for newly confirmed matches and send every due notice."""
    from sqlalchemy import func, select

    from db.models import Notice, NoticeStatus
    from stages.table import run_stage

    with state.context() as ctx:
        if dry_run:
            out = run_stage("notices", ctx, dry_run=True, out_dir=out_dir).detail
            _print_queue(out, as_json, extra={"eml": [str(p) for p in out.eml]})
            if not as_json:
                click.echo(f"dry run: wrote {len(out.eml)} .eml file(s) to {out_dir}; nothing sent or stored")
            return
        with ctx.Session() as s:
            # Sized before the run: what is due now, plus what this run queues (roughly).
            due = s.scalar(select(func.count()).select_from(Notice).where(
                Notice.status.in_([NoticeStatus.QUEUED, NoticeStatus.IN_DOUBT]))) or 0
        with progress_bar(not as_json, label="sending", length=due) as bar:
            out = run_stage("notices", ctx, on_item=(lambda _nid: bar.step()) if bar else None).detail
    q, r = out, out.dispatch
    queued = [n["id"] for n in out.queued]
    out = {"queued": queued, "refused": q.refused, "flagged": q.flagged, "withheld": q.withheld,
           "partners_skipped": q.partners_skipped, "sent": r.sent, "retry": r.retry,
           "failed": r.failed, "in_doubt": r.in_doubt, "discarded": r.discarded, "held": r.held,
           "rate_limited": r.rate_limited, "recovered": r.recovered}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"queued {len(queued)} notice(s); sent {len(r.sent)}, retry later {len(r.retry)}, "
               f"in doubt {len(r.in_doubt)}, failed {len(r.failed)}, discarded {len(r.discarded)}, "
               f"held for approval {len(r.held)}, rate-limited {len(r.rate_limited)}")
    for line in q.flagged:
        click.echo(f"  needs a human: {line}")
    for line in q.withheld:
        click.echo(f"  not sent: {line}")
    for line in q.refused:
        click.echo(f"  refused: {line}", err=True)


def _print_queue(q: Any, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps({"queued": [n["id"] for n in q.queued], "refused": q.refused,
                               "flagged": q.flagged, "withheld": q.withheld, **extra}))
    else:
        for line in q.withheld:
            click.echo(f"  not sent: {line}")
        for line in q.refused:
            click.echo(f"  refused: {line}", err=True)


def notice_json(n: Any) -> dict[str, Any]:
    from foundation.timeutil import as_utc

    def iso(dt: Any) -> str | None:
        return as_utc(dt).isoformat() if dt else None

    items = []
    for it in n.items:
        ttd = None
        if it.removed_at and n.sent_at:
            ttd = round((as_utc(it.removed_at) - as_utc(n.sent_at)).total_seconds() / 3600, 2)
        items.append({"url": it.url, "role": it.role.value, "match_id": it.match_id, "state": it.state.value,
                      "removed_at": iso(it.removed_at), "hours_to_takedown": ttd,
                      "escalation_level": it.escalation_level, "due_at": iso(it.due_at),
                      "checks": len(it.checks)})
    return {"id": n.id, "kind": n.kind, "host": n.host.name, "regime": n.regime, "language": n.language,
            "recipient": n.recipient, "recipient_source": n.recipient_source, "status": n.status.value,
            "message_id": n.message_id, "attempts": n.attempts, "last_error": n.last_error,
            "created_at": iso(n.created_at), "sent_at": iso(n.sent_at), "parent_id": n.parent_id,
            "subject": n.subject, "ticket_ref": n.ticket_ref, "submitted_by": n.submitted_by,
            "notifier": n.notifier.name if n.notifier else None, "items": items}


@notices.command("list")
@click.option("--status", help="Only notices in this status (queued, sent, failed, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def list_(state: State, status: str | None, as_json: bool) -> None:
    """List notices with their items' takedown state."""
    from sqlalchemy import select

    from db.models import Notice, NoticeStatus
    from foundation.errors import InvalidInput

    with state.session() as s:
        q = select(Notice).order_by(Notice.id)
        if status:
            try:
                q = q.where(Notice.status == NoticeStatus(status))
            except ValueError:
                raise InvalidInput(f"unknown status {status!r} (known: "
                                   f"{', '.join(x.value for x in NoticeStatus)})") from None
        rows = [notice_json(n) for n in s.scalars(q)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        click.echo("no notices")
    for r in rows:
        removed = sum(1 for i in r["items"] if i["state"] == "removed")
        click.echo(f"{r['id']:>5}  {r['status']:17} {r['kind']:9} {r['regime']:9} {r['host']}  "
                   f"-> {r['recipient'] or '-'}  urls={len(r['items'])} removed={removed}"
                   + (f"  ticket={r['ticket_ref']}" if r["ticket_ref"] else "")
                   + (f"  ({r['last_error']})" if r["last_error"] else ""))


@notices.command("approve")
@click.argument("notice_id", type=int)
@pass_state
def approve(state: State, notice_id: int) -> None:
    """Approve a notice held for staff approval: it joins the outbox."""
    from notices.build import approve_notice

    with state.session() as s:
        n = approve_notice(s, notice_id, actor="cli")
        click.echo(f"notice {n.id} is now {n.status.value}" + (f": {n.last_error}" if n.last_error else ""))


@notices.command("reject")
@click.argument("notice_id", type=int)
@click.option("--reason", default="", help="Why (kept in the notice and the audit log).")
@pass_state
def reject(state: State, notice_id: int, reason: str) -> None:
    """Discard a notice that has not been sent."""
    from notices.build import reject_notice

    with state.session() as s:
        n = reject_notice(s, notice_id, actor="cli", reason=reason)
        click.echo(f"notice {n.id} discarded")


@notices.command("export")
@click.option("--lumen", is_flag=True, help="Write lumen-ID.json per sent notice (Lumen's submission JSON).")
@click.option("--delisting", is_flag=True,
              help="Write delisting-ENGINE-DAY.csv per search engine: the day's delisting requests, "
                   "one row per URL, for the engines' bulk submission.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Where to write the files.")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="--delisting: the UTC day (default: today).")
@click.option("--engine", "engines", multiple=True, metavar="NAME",
              help="--delisting: only this search-engine host; repeatable.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="--lumen: notices sent on or after this day.")
@click.option("--id", "ids", type=int, multiple=True, metavar="ID", help="--lumen: only this notice; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON.")
@pass_state
def export(state: State, lumen: bool, delisting: bool, out_dir: str, day: Any, engines: tuple[str, ...],
           since: Any, ids: tuple[int, ...], as_json: bool) -> None:
    """Export notices as files: Lumen JSON for transparency, bulk delisting CSVs for search engines."""
    from foundation.timeutil import utc_now
    from notices.exports import write_delisting, write_lumen

    if not (lumen or delisting):
        raise click.UsageError("say what to export: --lumen, --delisting, or both")
    out: dict[str, Any] = {}
    with state.session() as s:
        if lumen:
            r = write_lumen(s, state.config.notifier, out_dir, since=since.date() if since else None, ids=ids)
            out["lumen"] = [str(p) for p in r.files]
        if delisting:
            d = write_delisting(s, state.config.notifier, out_dir, day.date() if day else utc_now().date(),
                                engines=engines)
            out["delisting"] = [str(p) for p in d.files]
            out["delisting_rows"] = d.rows
    if as_json:
        click.echo(json.dumps(out))
        return
    if lumen:
        click.echo(f"lumen: wrote {len(out['lumen'])} notice(s) to {out_dir}")
    if delisting:
        click.echo(f"delisting: wrote {len(out['delisting'])} file(s), {out['delisting_rows']} URL(s), to {out_dir}")
    for path in out.get("lumen", []) + out.get("delisting", []):
        click.echo(f"  {path}")
@notices.command("task")
@click.argument("notice_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON instead of text.")
@pass_state
def task(state: State, notice_id: int, as_json: bool) -> None:
    """Print a notice's submission task: the fields to paste into the host's web form
    (work, URLs, statements, legal offer, complainant)."""
    from db.models import Notice
    from foundation.errors import NotFound
    from notices.workflow import export_task

    with state.session() as s:
        n = s.get(Notice, notice_id)
        if n is None:
            raise NotFound(f"no notice {notice_id}")
        click.echo(export_task(n, state.config, "json" if as_json else "text"), nl=False)


@notices.command("submitted")
@click.argument("notice_id", type=int)
@click.option("--ticket", "ticket_ref", required=True, metavar="REF",
              help="The host's ticket or confirmation reference ('none' if its form gave none).")
@pass_state
def submitted(state: State, notice_id: int, ticket_ref: str) -> None:
    """Mark a submission task submitted on the host's form: from now on it is verified,
    reminded and escalated like a mailed notice."""
    from notices.workflow import mark_submitted

    with state.session() as s:
        n = mark_submitted(s, state.config, notice_id, ticket_ref, actor="cli")
        click.echo(f"notice {n.id} is now {n.status.value}" + (f": {n.last_error}" if n.last_error else
                                                               f" (ticket {n.ticket_ref})"))


@notices.command("retry")
@click.argument("notice_id", type=int)
@pass_state
def retry(state: State, notice_id: int) -> None:
    """Retry a failed notice (back to the outbox) or a draft (rebuilt for the host as it
    is now: its contact, channel, jurisdiction). The attempt is counted and audited."""
    from notices.workflow import retry_notice

    with state.session() as s:
        n = retry_notice(s, state.config, notice_id, actor="cli")
        what = "queued again" if n.id == notice_id else f"rebuilt as notice {n.id}"
        click.echo(f"notice {notice_id} {what}: {n.status.value}" + (f" ({n.last_error})" if n.last_error else ""))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_state
def verify(state: State, as_json: bool) -> None:
    """Re-check notified URLs, record takedowns, escalate overdue ones."""
    from stages.table import run_stage

    with state.context() as ctx:
        r = run_stage("verify", ctx).detail
    if as_json:
        click.echo(json.dumps({"checked": r.checked, "removed": [{"url": u, "hours_to_takedown": round(h, 2)}
                                                                  for u, h in r.removed],
                               "live": r.live, "inconclusive": r.inconclusive, "reuploads": r.reuploads,
                               "escalations": r.escalations, "errors": r.errors}))
        return
    click.echo(f"checked {r.checked} URL(s): {len(r.removed)} newly removed, {len(r.live)} live, "
               f"{len(r.inconclusive)} inconclusive, {len(r.reuploads)} re-upload(s); "
               f"{len(r.escalations)} escalation notice(s) queued")
    for url, hours in r.removed:
        click.echo(f"  removed after {hours:.1f} h: {url}")
    for e in r.errors:
        click.echo(f"  {e}", err=True)


@click.group()
def hosts() -> None:
    """The host registry: abuse contacts, channels, jurisdictions, partners."""


@hosts.command("add")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, metavar="PATTERN",
              help="A domain it covers (example.com or *.example.com); repeatable.")
@click.option("--contact", help="Abuse contact email address.")
@click.option("--channel", type=click.Choice(["email", "api", "webform", "none"]))
@click.option("--jurisdiction", metavar="CC",
              help="ISO 3166-1 alpha-2 country (picks regime and offers); recorded as set by staff, "
                   "never overwritten by a guess.")
@click.option("--language", type=click.Choice(["en", "fr"]))
@click.option("--kind", help="link_site, video_host, cyberlocker, search_engine, ...")
@click.option("--licensed-partner/--not-licensed-partner", default=None,
              help="A licensed partner is never notified.")
@click.option("--needs-approval/--no-approval", default=None,
              help="Hold its notices until staff approve them.")
@click.option("--upstream-contact", help="Email of its upstream provider, for escalation.")
@click.option("--grace-hours", type=float, help="Hours before an unremoved URL is escalated.")
@click.option("--rate-per-hour", type=int, help="Notices per hour at most.")
@click.option("--regime", type=click.Choice(["dmca", "dsa", "delisting"]), help="Force a legal regime.")
@click.option("--removal-pattern", metavar="REGEX",
              help="Regular expression matching the URL or text of the host's own 'content removed' page "
                   "(the only page text verification counts as a removal); '' to clear.")
@click.option("--form-url", metavar="URL", help="The host's abuse web form (shown with its submission tasks).")
@click.option("--json", "as_json", is_flag=True, help="Print the host as JSON.")
@pass_state
def hosts_add(state: State, name: str, domains: tuple[str, ...], contact: str | None, channel: str | None,
              jurisdiction: str | None, language: str | None, kind: str | None,
              licensed_partner: bool | None, needs_approval: bool | None, upstream_contact: str | None,
              grace_hours: float | None, rate_per_hour: int | None, regime: str | None,
              removal_pattern: str | None, form_url: str | None, as_json: bool) -> None:
    """Add host NAME, or update the fields given. Changing its channel or contact
    rebuilds its pending notices (drafts, queued, failed) for the new one."""
    from sqlalchemy import select

    from db.models import Host
    from notices.hosts import add_host, host_json
    from notices.workflow import requeue_host

    settings = {k: v for k, v in {"upstream_contact": upstream_contact, "grace_hours": grace_hours,
                                   "rate_per_hour": rate_per_hour, "regime": regime,
                                   "form_url": form_url}.items()
                if v is not None}
    with state.session() as s:
        old = s.scalar(select(Host).where(Host.name == " ".join(name.split())))
        before = (old.channel.value, old.abuse_contact) if old is not None else None
        h, created = add_host(s, name, patterns=domains, contact=contact, channel=channel,
                              jurisdiction=jurisdiction, language=language, kind=kind,
                              licensed_partner=licensed_partner, needs_approval=needs_approval,
                              settings=settings, removal_pattern=removal_pattern)
        rebuilt: list[Any] = []
        errors: list[str] = []
        if before is not None and before != (h.channel.value, h.abuse_contact):
            rebuilt, errors = requeue_host(s, state.config, h, actor="cli",
                                           why=f"host edited: channel {before[0]} -> {h.channel.value}"
                                           if before[0] != h.channel.value else "host edited: contact changed")
        out = host_json(h)
        out_rebuilt = [{"id": n.id, "status": n.status.value} for n in rebuilt]
    if as_json:
        click.echo(json.dumps({"created": created, **out, "rebuilt": out_rebuilt, "rebuild_errors": errors},
                              ensure_ascii=False))
    else:
        click.echo(f"{'added' if created else 'updated'} host {out['id']} {out['name']!r}")
        if out_rebuilt:
            click.echo(f"  {len(out_rebuilt)} pending notice(s) rebuilt: "
                       + ", ".join(f"#{r['id']} {r['status']}" for r in out_rebuilt))
        for e in errors:
            click.echo(f"  not rebuilt: {e}", err=True)


@hosts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def hosts_list(state: State, as_json: bool) -> None:
    """List registered hosts: domains, channel and contact, jurisdiction/language and where
    the jurisdiction came from (staff, cctld, language, default, or unknown)."""
    from notices.hosts import host_json, list_hosts

    with state.session() as s:
        rows = [host_json(h) for h in list_hosts(s)]
    if echo_listing(rows, as_json, "no hosts; add one with `vigie hosts add NAME --domain D --contact EMAIL`"):
        return
    for h in rows:
        flags = [f for f, on in (("PARTNER", h["licensed_partner"]), ("approval", h["needs_approval"])) if on]
        click.echo(f"{h['id']:>5}  {h['name']}  {','.join(h['domain_patterns']) or '-'}  "
                   f"{h['channel']}:{h['abuse_contact'] or '-'}  {h['jurisdiction'] or '--'}/{h['language']}"
                   f" ({h['jurisdiction_source'] or 'unknown'})"
                   + (f"  [{' '.join(flags)}]" if flags else ""))


COMMANDS: list[click.Command] = [notices, verify, hosts]
