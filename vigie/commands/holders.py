"""CLI verbs of rights holders and agents: ``vigie holders``, ``vigie mandates``.

Thin: parse, open a session, call ``stages.holders``, print.
"""

from __future__ import annotations

from datetime import date, datetime

import click

from vigie.cli import State, echo_listing, pass_state

DAY = click.DateTime(formats=["%Y-%m-%d"])


def day_of(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.group("holders")
def holders() -> None:
    """Rights holders (producers, distributors) and agents (associations, agencies acting
    for them): who notifies, with which contact details."""


@holders.command("add")
@click.argument("name")
@click.option("--legal-name", help="The full legal name the notices carry (default: NAME).")
@click.option("--agent", is_flag=True,
              help="An agent (association, agency) acting for holders under mandates (`vigie mandates add`).")
@click.option("--address", help="Postal address (the notices' complainant block).")
@click.option("--signatory", help="Who signs the notices: a person authorised to act for it.")
@click.option("--email", help="Contact address (replies go to the installation's mailbox anyway).")
@click.option("--phone", help="Telephone number.")
@click.option("--country", metavar="CC", help="Country of its seat (ISO 3166-1 alpha-2).")
@click.option("--logo", type=click.Path(dir_okay=False), metavar="FILE",
              help="Logo for the public pages (PNG or JPEG, at most 512 kB).")
@pass_state
def holders_add(state: State, name: str, legal_name: str | None, agent: bool, address: str | None,
                signatory: str | None, email: str | None, phone: str | None, country: str | None,
                logo: str | None) -> None:
    """Register a rights holder (or with --agent, an agent) under the short name NAME.

    Contact details left empty are taken from [notifier] when a notice is built."""
    from stages.holders import add_holder

    with state.session() as s:
        h = add_holder(s, name, legal_name=legal_name, agent=agent, address=address, signatory=signatory,
                       email=email, phone=phone, country=country, logo=logo)
        click.echo(f"added {h.kind.value} {h.id} {h.name!r} ({h.legal_name})")


@holders.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def holders_list(state: State, as_json: bool) -> None:
    """List rights holders and agents with the titles they hold rights on, per territory."""
    from stages.holders import holder_json, list_holders

    with state.session() as s:
        rows = [holder_json(h) for h in list_holders(s)]
    if echo_listing(rows, as_json, "no rights holders; add one with `vigie holders add NAME --legal-name L`"):
        return
    for h in rows:
        rights = ", ".join(f"title {r['title_id']} in {r['territory']}" for r in h["rights"]) or "no titles"
        click.echo(f"{h['id']:>5}  {h['kind']:<6} {h['name']}  ({h['legal_name']})  {rights}")


@holders.command("grant")
@click.argument("holder")
@click.argument("title")
@click.option("--territory", default="*", show_default=True, metavar="CC[,CC...]",
              help="Where it holds the rights: ISO 3166-1 alpha-2 codes, or * for worldwide.")
@click.option("--from", "valid_from", type=DAY, metavar="YYYY-MM-DD", help="First day of the rights.")
@click.option("--until", "valid_until", type=DAY, metavar="YYYY-MM-DD", help="Last day of the rights.")
@click.option("--replace", is_flag=True, help="Drop the title's other rights rows of this holder first.")
@pass_state
def holders_grant(state: State, holder: str, title: str, territory: str, valid_from: datetime | None,
                  valid_until: datetime | None, replace: bool) -> None:
    """Record that HOLDER holds the rights on TITLE (id or name) in a territory.

    A notice to a host in a territory no rights row covers is not sent. --replace
    narrows rights given before (the 0013 migration gave worldwide rights)."""
    from stages.holders import grant_title_rights

    with state.session() as s:
        row, dropped = grant_title_rights(s, holder, title, territory, day_of(valid_from), day_of(valid_until),
                                          replace=replace)
        t = row.title
        click.echo(f"{row.holder.name} holds the rights on title {t.id} {t.title!r} in {row.territory}"
                   + (f" ({dropped} earlier row(s) replaced)" if dropped else ""))


@click.group("mandates")
def mandates() -> None:
    """Mandates: an agent's recorded authority to notify for a rights holder."""


@mandates.command("add")
@click.option("--agent", required=True, metavar="NAME", help="The agent (see `vigie holders add --agent`).")
@click.option("--for", "principal", required=True, metavar="HOLDER", help="The rights holder it acts for.")
@click.option("--title", "titles", multiple=True, metavar="T",
              help="A title it covers (id or name); repeatable. Default: all the holder's titles.")
@click.option("--from", "valid_from", type=DAY, required=True, metavar="YYYY-MM-DD", help="First day it is valid.")
@click.option("--until", "valid_until", type=DAY, metavar="YYYY-MM-DD",
              help="Last day it is valid (default: until revoked).")
@click.option("--document", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="The signed mandate: its SHA-256 is recorded and quoted in the notices.")
@click.option("--sha256", "document_sha256", metavar="HEX", help="The SHA-256 of the signed mandate, when the "
                                                                    "file is kept elsewhere.")
@pass_state
def mandates_add(state: State, agent: str, principal: str, titles: tuple[str, ...], valid_from: datetime,
                 valid_until: datetime | None, document: str | None, document_sha256: str | None) -> None:
    """Record that an agent may notify for a rights holder, from one day to another.

    Once a holder has given a mandate, the agent notifies for its titles (grouping all its
    principals' works per host); when the mandate has expired, they are not notified."""
    from stages.holders import add_mandate

    with state.session() as s:
        m = add_mandate(s, agent=agent, principal=principal, titles=titles, valid_from=valid_from.date(),
                        valid_until=day_of(valid_until), document=document, document_sha256=document_sha256)
        scope = "all its titles" if m.all_titles else f"{len(m.titles)} title(s)"
        until = m.valid_until.isoformat() if m.valid_until else "until revoked"
        click.echo(f"added mandate {m.id}: {m.agent.name} for {m.principal.name}, {scope}, "
                   f"{m.valid_from.isoformat()} to {until}")


@mandates.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def mandates_list(state: State, as_json: bool) -> None:
    """List mandates, and whether each is valid today."""
    from foundation.timeutil import utc_now
    from stages.holders import list_mandates, mandate_json

    with state.session() as s:
        rows = [mandate_json(m, utc_now().date()) for m in list_mandates(s)]
    if echo_listing(rows, as_json, "no mandates; add one with `vigie mandates add --agent A --for H --from D`"):
        return
    for m in rows:
        titles = m["titles"] if m["titles"] == "all" else ",".join(str(t) for t in m["titles"])
        state_ = "valid" if m["valid_today"] else "NOT valid today"
        click.echo(f"{m['id']:>5}  {m['agent']} for {m['principal']}  titles={titles}  {m['from']} to "
                   f"{m['until'] or '...'}  {state_}  sha256={m['document_sha256'] or '-'}")


COMMANDS: list[click.Command] = [holders, mandates]
