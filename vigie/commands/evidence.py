"""``vigie evidence export|verify|stamp|purge|pin|unpin|list``: the evidence file.

Thin wrappers over the ``evidence`` package (and the evidence stage): parse, open a
session, call, print.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from vigie.cli import State, parse_day, pass_state


@click.group()
def evidence() -> None:
    """The evidence file: captures, timestamped manifests, case files for a court."""


@evidence.command("export")
@click.option("--url", help="One page (or media) URL: its evidence.")
@click.option("--site", help="A site's name: every infringing page found on it.")
@click.option("--title", "title_id", type=int, metavar="ID", help="A title's id: every page carrying it.")
@click.option("--from", "since", metavar="D", help="Only evidence captured on or after D (YYYY-MM-DD).")
@click.option("--until", metavar="D", help="Only evidence captured on or before D (YYYY-MM-DD).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), metavar="FILE.zip",
              help="Where to write the case file.")
@click.option("--lang", type=click.Choice(["en", "fr"]), default="en", show_default=True,
              help="Language of index.html.")
@click.option("--pin", is_flag=True, help="Keep its evidence past [evidence] keep_days (a case in court).")
@click.option("--no-stamp", is_flag=True, help="Do not first timestamp what is in no manifest yet.")
@pass_state
def export(state: State, url: str | None, site: str | None, title_id: int | None, since: str | None,
           until: str | None, out: str, lang: str, pin: bool, no_stamp: bool) -> None:
    """Write a self-contained case file (zip) for one URL, one site or one title.

    It holds manifest.json (every file with its SHA-256, itself timestamped), the WARC
    records, screenshots, frames, match records, the daily manifests and their tokens,
    the notices sent, the takedown timeline and a readable index.html. Every item and
    token is checked first: an altered file stops the export, naming it.
    """
    from evidence.export import Scope, evidence_store, export_case
    from stages.table import run_stage

    if sum(x is not None for x in (url, site, title_id)) != 1:
        raise click.UsageError("give exactly one of --url, --site, --title")
    scope = Scope(url=url, site=site, title_id=title_id, since=parse_day(since, "--from"), until=parse_day(until, "--until"))
    store = evidence_store(state.config)
    with state.context() as ctx:
        if not no_stamp:
            # What was captured since the last evidence run gets its manifest (and token) now.
            run_stage("evidence", ctx, purge=False)
        with ctx.Session.begin() as s:
            res = export_case(s, store, ctx.config, scope, out, lang=lang, pin=pin, now=ctx.now(),
                              mail_of=_mail_rebuilder(s, ctx.config))
    click.echo(f"wrote {res.path}: {res.candidates} page(s), {res.items} item(s), {res.files} file(s); "
               f"SHA-256 {res.sha256}{'; pinned' if pin else ''} (export {res.export_id})")
    for w in res.warnings:
        click.echo(f"  warning: {w}", err=True)


def _mail_rebuilder(s: Any, config: Any) -> Any:
    """A sent notice's mail as it went out: ``build_message`` makes the same bytes from
    the stored fields (fixed boundaries), with the configured sender."""
    from db.models import Notice
    from notices.mail import build_message, sender_address

    def mail_of(n: Any) -> bytes:
        sender = sender_address(config.smtp.get("from"), config.notifier.get("email"))
        parent = s.get(Notice, n.parent_id) if n.parent_id else None
        return build_message(n, sender=sender, parent_message_id=parent.message_id if parent else None).as_bytes()
    return mail_of


@evidence.command("verify")
@click.argument("case", type=click.Path(dir_okay=False, exists=True), metavar="FILE.zip")
@click.option("--tsa-cert", type=click.Path(dir_okay=False, exists=True), metavar="PEM",
              help="Check the tokens against this TSA certificate chain (default: the one in the file).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def verify(case: str, tsa_cert: str | None, as_json: bool) -> None:
    """Re-check every hash and time-stamp token of a case file; exit 1 naming what was
    altered."""
    from pathlib import Path

    from evidence.verify import verify_case

    res = verify_case(case, Path(tsa_cert).read_bytes() if tsa_cert else None)
    if as_json:
        click.echo(json.dumps({"ok": res.ok, "files": res.files, "items": res.items, "tokens": res.tokens,
                               "tsa": res.tsa, "problems": res.problems, "notes": res.notes}, ensure_ascii=False))
    else:
        for line in res.problems:
            click.echo(f"ALTERED: {line}", err=True)
        for line in res.notes:
            click.echo(f"note: {line}")
        if res.tsa:
            click.echo(f"time-stamping authority: {res.tsa}")
        click.echo(f"{'OK' if res.ok else 'FAILED'}: {res.files} file(s), {res.items} item(s), "
                   f"{res.tokens} token(s) checked; {len(res.problems)} problem(s)")
        if res.ok and not res.tokens:
            click.echo("nothing in it is timestamped: the hashes agree with each other, "
                       "but no trusted time proves when they were taken")
    if not res.ok:
        sys.exit(1)


@evidence.command("stamp")
@pass_state
def stamp(state: State) -> None:
    """Write the manifests of what was captured since the last run and have them
    timestamped by [evidence] tsa_url now (the evidence stage without the purge)."""
    from stages.table import run_stage

    with state.context() as ctx:
        counts = run_stage("evidence", ctx, purge=False)
    _print(counts)


@evidence.command("purge")
@pass_state
def purge(state: State) -> None:
    """Delete evidence older than [evidence] keep_days that no open case cites (open
    notice, URL not taken down, pinned case file); written to the audit log."""
    from stages.table import run_stage

    with state.context() as ctx:
        counts = run_stage("evidence", ctx, stamp=False)
    _print(counts)


def _print(counts: dict) -> None:
    if counts.get("skipped"):
        click.echo(f"nothing to do: {counts['skipped']}")
        return
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in counts.detail.errors:
        click.echo(f"  error: {line}", err=True)


@evidence.command("pin")
@click.argument("export_id", type=int)
@click.option("--off", is_flag=True, help="Unpin: its evidence follows keep_days again.")
@pass_state
def pin(state: State, export_id: int, off: bool) -> None:
    """Pin (or with --off unpin) the evidence of case file EXPORT_ID against the purge."""
    from db.models import AuditLog, EvidenceExport
    from foundation.errors import NotFound

    with state.session() as s:
        row = s.get(EvidenceExport, export_id)
        if row is None:
            raise NotFound(f"no case file {export_id}")
        before, row.pinned = row.pinned, not off
        s.add(AuditLog(actor="cli", action="evidence.pin", object_type="evidence_export", object_id=row.id,
                       before={"pinned": before}, after={"pinned": row.pinned}))
    click.echo(f"case file {export_id} {'unpinned' if off else 'pinned'}")


@evidence.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_state
def list_exports(state: State, as_json: bool) -> None:
    """The case files exported, and the daily manifests with their token state."""
    from sqlalchemy import select

    from db.models import EvidenceExport, EvidenceManifest

    with state.session() as s:
        exports = [{"id": e.id, "created_at": e.created_at.isoformat(), "scope": e.scope, "path": e.path,
                    "sha256": e.sha256, "items": len(e.item_ids or []), "pinned": e.pinned}
                   for e in s.scalars(select(EvidenceExport).order_by(EvidenceExport.id))]
        manifests = [{"id": m.id, "day": m.day, "items": m.items, "sha256": m.sha256,
                      "stamped": m.token is not None, "tsa_time": m.tsa_time.isoformat() if m.tsa_time else None,
                      "error": m.token_error}
                     for m in s.scalars(select(EvidenceManifest).order_by(EvidenceManifest.id))]
    if as_json:
        click.echo(json.dumps({"exports": exports, "manifests": manifests}, ensure_ascii=False, indent=1))
        return
    for m in manifests:
        state_ = f"stamped {m['tsa_time']}" if m["stamped"] else f"NOT stamped{': ' + m['error'] if m['error'] else ''}"
        click.echo(f"manifest {m['id']} {m['day']}: {m['items']} item(s), {state_}")
    for e in exports:
        click.echo(f"case file {e['id']} {e['created_at'][:16]} {e['scope']}: {e['items']} item(s)"
                   f"{', pinned' if e['pinned'] else ''} -> {e['path']}")
    if not manifests and not exports:
        click.echo("no manifest and no case file yet")


COMMANDS = [evidence]
