"""``vigie notices send|list|approve|reject``, ``vigie verify`` and ``vigie hosts add|list``.

Thin wrappers over the ``notices`` package: parse, open a session, call, print.
"""

from __future__ import annotations

import json
from typing import Any

import click

from vigie.cli import State, echo_listing, pass_state, progress_bar


@click.group()
def notices() -> None:
    """Takedown notices: queue, send, list, approve."""


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
            "subject": n.subject, "notifier": n.notifier.name if n.notifier else None, "items": items}


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
@click.option("--jurisdiction", metavar="CC", help="ISO 3166-1 alpha-2 country (picks regime and offers).")
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
@click.option("--json", "as_json", is_flag=True, help="Print the host as JSON.")
@pass_state
def hosts_add(state: State, name: str, domains: tuple[str, ...], contact: str | None, channel: str | None,
              jurisdiction: str | None, language: str | None, kind: str | None,
              licensed_partner: bool | None, needs_approval: bool | None, upstream_contact: str | None,
              grace_hours: float | None, rate_per_hour: int | None, regime: str | None,
              as_json: bool) -> None:
    """Add host NAME, or update the fields given."""
    from notices.hosts import add_host, host_json

    settings = {k: v for k, v in {"upstream_contact": upstream_contact, "grace_hours": grace_hours,
                                   "rate_per_hour": rate_per_hour, "regime": regime}.items()
                if v is not None}
    with state.session() as s:
        h, created = add_host(s, name, patterns=domains, contact=contact, channel=channel,
                              jurisdiction=jurisdiction, language=language, kind=kind,
                              licensed_partner=licensed_partner, needs_approval=needs_approval,
                              settings=settings)
        out = host_json(h)
    if as_json:
        click.echo(json.dumps({"created": created, **out}, ensure_ascii=False))
    else:
        click.echo(f"{'added' if created else 'updated'} host {out['id']} {out['name']!r}")


@hosts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def hosts_list(state: State, as_json: bool) -> None:
    """List registered hosts."""
    from notices.hosts import host_json, list_hosts

    with state.session() as s:
        rows = [host_json(h) for h in list_hosts(s)]
    if echo_listing(rows, as_json, "no hosts; add one with `vigie hosts add NAME --domain D --contact EMAIL`"):
        return
    for h in rows:
        flags = [f for f, on in (("PARTNER", h["licensed_partner"]), ("approval", h["needs_approval"])) if on]
        click.echo(f"{h['id']:>5}  {h['name']}  {','.join(h['domain_patterns']) or '-'}  "
                   f"{h['channel']}:{h['abuse_contact'] or '-'}  {h['jurisdiction'] or '--'}/{h['language']}"
                   + (f"  [{' '.join(flags)}]" if flags else ""))


COMMANDS: list[click.Command] = [notices, verify, hosts]
