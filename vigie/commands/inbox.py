"""``vigie inbox fetch|import|list``: read the hosts' replies and show what waits for staff.

Thin wrappers over the ``inbox`` stage (``stages.table.inbox``) and ``inbox.views``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from vigie.cli import State, pass_state


@click.group()
def inbox() -> None:
    """The hosts' replies: acknowledgements, removals, refusals, bounces, counter-notices."""


def _print(counts: Any, as_json: bool) -> None:
    out = counts.detail
    r = out.result
    data = {"source": out.source, "configured": not out.skipped_configured, "seen": out.seen,
            "stored": r.stored, "duplicates": r.duplicates, "filed": r.filed, "for_staff": r.for_staff,
            "by_kind": r.by_kind, "errors": r.errors}
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if out.skipped_configured:
        click.echo("no [inbox] host configured: nothing fetched (see `vigie inbox import PATH` for a file)")
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.by_kind.items())) or "none"
    click.echo(f"{out.source}: {out.seen} mail(s) read, {len(r.stored)} stored ({kinds}), "
               f"{r.duplicates} already stored; {r.filed} filed on their notice, {r.for_staff} for staff")
    for e in r.errors:
        click.echo(f"  error: {e}", err=True)


@inbox.command("fetch")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_state
def fetch(state: State, as_json: bool) -> None:
    """Read the new mail of the [inbox] IMAP folder (nothing is marked seen or moved)."""
    from stages.table import run_stage

    with state.context() as ctx:
        counts = run_stage("inbox", ctx)
    _print(counts, as_json)


@inbox.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_state
def import_(state: State, path: str, as_json: bool) -> None:
    """Read every mail of a maildir directory or an mbox file at PATH."""
    from stages.table import run_stage

    with state.context() as ctx:
        counts = run_stage("inbox", ctx, path=path)
    _print(counts, as_json)


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """What waits for staff: unmatched or unsure mail, refusals, bounces, counter-notices."""
    from foundation.timeutil import utc_now
    from inbox.views import open_counter_notices, putback_text, staff_queue
    from reports.daily import one_line

    today = utc_now().date()
    with state.session() as s:
        queue = [{"id": m.id, "received_at": m.received_at.isoformat() if m.received_at else None,
                  "from": m.from_addr, "subject": m.subject, "kind": m.kind.value, "confidence": m.confidence,
                  "notice_id": m.notice_id, "ticket": m.ticket, "why": m.staff_reason} for m in staff_queue(s)]
        cases = [{"id": c.id, "notice_id": c.notice_id, "regime": c.regime, "urls": c.urls,
                  "received_at": c.received_at.isoformat() if c.received_at else None,
                  "putback_from": c.putback_from.isoformat() if c.putback_from else None,
                  "putback_until": c.putback_until.isoformat() if c.putback_until else None,
                  "window": putback_text(c, today)} for c in open_counter_notices(s)]
    if as_json:
        click.echo(json.dumps({"for_staff": queue, "counter_notices_open": cases}, ensure_ascii=False))
        return
    click.echo(f"{len(queue)} mail(s) for staff" + (":" if queue else ""))
    for m in queue:
        click.echo(f"  #{m['id']:<5} {m['kind']:<14} {m['confidence']:.2f}  notice {m['notice_id'] or '-'}  "
                   f"{one_line(m['from'] or '?', 80)}: {one_line(m['subject'] or '', 80)}  -- "
                   f"{one_line(m['why'] or '', 160)}")
    click.echo(f"{len(cases)} counter-notice(s) open" + (":" if cases else ""))
    for c in cases:
        click.echo(f"  #{c['id']:<5} {c['regime']}  notice {c['notice_id'] or '-'}  {len(c['urls'])} URL(s)  "
                   f"{c['window']}")


COMMANDS: list[click.Command] = [inbox]
