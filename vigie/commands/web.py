"""CLI verbs of the staff side: ``vigie report``, ``vigie serve``, ``vigie users``.

Thin: parse, open a session, call ``reports.daily`` / ``webapp``, print.
"""

from __future__ import annotations

import sys

import click

from vigie.cli import State, pass_state


@click.command("report")
@click.option("--date", "day", metavar="YYYY-MM-DD",
              help="The day to report (default: yesterday in the configured time zone).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Where to write the HTML and CSV files (default: [report].out_dir or ./reports).")
@click.option("--mail/--no-mail", default=True, show_default=True,
              help="Mail the report to [report].staff when [smtp] is configured.")
@click.option("--public", "public_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Also export the public 'where to watch legally' pages as static HTML to DIR.")
@pass_state
def report(state: State, day: str | None, out_dir: str | None, mail: bool, public_dir: str | None) -> None:
    """Write the daily match report (one HTML file and CSV files of the same rows)."""
    from reports.daily import parse_day
    from stages.table import run_stage

    when = parse_day(day) if day else None
    with state.context() as ctx:
        done = run_stage("report", ctx, day=when, out_dir=out_dir, mail=mail).detail
        out = done.output
        click.echo(f"report for {out.day.isoformat()}: {out.html}")
        figures = ", ".join(f"{v} {k}" for k, v in out.summary.items())
        click.echo(f"  {figures}")
        for p in out.csv.values():
            click.echo(f"  {p}")
        if out.audit_head:
            click.echo(f"  audit log head: {out.audit_head}")
        if done.mailed:
            click.echo(f"  mailed to {', '.join(done.mailed)}")
        if public_dir:
            from webapp.public import export_static

            with ctx.Session.begin() as s:
                pages = export_static(s, state.config, public_dir)
            click.echo(f"public pages: {len(pages)} files in {public_dir}")


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: [web].host or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: [web].port or 8080).")
@pass_state
def serve(state: State, host: str | None, port: int | None) -> None:
    """Run the review web app (staff pages, JSON API, public title pages).

    X-Forwarded-For/-Proto are believed only from [web].trusted_proxies (default: none)."""
    from stages.context import Context
    from webapp import serve as server
    from webapp.app import create_app

    host, port = server.address(state.config, host, port)
    app = create_app(Context.open(state.db_url, state.config).engine, state.config)
    sock = server.bind(host, port)
    click.echo(f"serving on http://{host}:{port}/ (API schema at /openapi.json)")
    server.run(app, state.config, sock)


@click.group("users")
def users() -> None:
    """Staff accounts of the review web app."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["analyst", "admin"]), default="analyst", show_default=True)
@click.option("--email", help="The user's mail address.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.option("--holder", metavar="NAME",
              help="The rights holder or agent the user works for: they see only its titles, matches, "
                   "notices and evidence (default: the installation's staff, who see all).")
@pass_state
def users_add(state: State, name: str, role: str, email: str | None, password_stdin: bool,
              holder: str | None) -> None:
    """Add a staff user NAME (the password is asked for, or read with --password-stdin)."""
    from stages.holders import get_holder
    from webapp.accounts import create_user

    password = _read_password(password_stdin)
    with state.session() as s:
        org = get_holder(s, holder) if holder else None
        user = create_user(s, name, password, role, email=email, actor="cli", org_id=org.id if org else None)
        of = f" for {org.name}" if org else ""
        click.echo(f"added user {user.username} ({user.role.value}{of}), id {user.id}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


def _user_id(s, name: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from db.models import User
    from foundation.errors import NotFound

    uid = s.scalar(select(User.id).where(User.username == name))
    if uid is None:
        raise NotFound(f"no user {name!r} (see `vigie users list`)")
    return int(uid)


def _set_active(state: State, name: str, active: bool) -> None:
    from webapp.accounts import set_active

    with state.session() as s:
        set_active(s, _user_id(s, name), active, actor="cli")


@users.command("disable")
@click.argument("name")
@pass_state
def users_disable(state: State, name: str) -> None:
    """Disable user NAME: their live sessions end at once (a lost laptop, a leaver)."""
    _set_active(state, name, False)
    click.echo(f"user {name} disabled; their sessions have ended")


@users.command("enable")
@click.argument("name")
@pass_state
def users_enable(state: State, name: str) -> None:
    """Enable user NAME again."""
    _set_active(state, name, True)
    click.echo(f"user {name} enabled")


@users.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (one line).")
@pass_state
def users_password(state: State, name: str, password_stdin: bool) -> None:
    """Set a new password for user NAME; their live sessions end."""
    from webapp.accounts import set_password

    password = _read_password(password_stdin)
    with state.session() as s:
        set_password(s, _user_id(s, name), password, actor="cli")
        click.echo(f"password of {name} changed; their sessions have ended")


@users.command("list")
@pass_state
def users_list(state: State) -> None:
    """List staff users."""
    from db.models import RightsHolder
    from webapp.accounts import list_users

    with state.session() as s:
        rows = list_users(s)
        if not rows:
            click.echo("no users; add one with `vigie users add NAME --role admin`")
        for u in rows:
            flag = "" if u.active else "  (disabled)"
            org = f"  for {s.get(RightsHolder, u.org_id).name}" if u.org_id else ""  # type: ignore[union-attr]
            click.echo(f"{u.id:>5}  {u.username:<24} {u.role.value:<8} {u.email or ''}{org}{flag}")


COMMANDS: list[click.Command] = [report, serve, users]
