"""CLI verbs of the crawl stage: ``vigie sites add/list/import`` and ``vigie crawl``.

Thin: parse, call ``crawlers.sites`` / ``crawlers.run``, print. Site settings are given
as ``--set KEY=VALUE`` with VALUE read as TOML (``--set obey_robots=false``,
``--set film_link_pattern='"/film/"'``; a bare word that is not TOML is a string).
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import click

from vigie.cli import State, echo_listing, pass_state
from foundation.errors import CrawlError


def _parse_setting(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise click.BadParameter(f"expected KEY=VALUE, got {raw!r}", param_hint="--set")
    key, value = raw.split("=", 1)
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


@click.group()
def sites() -> None:
    """Sites to crawl: link sites, site searches, sitemaps and feeds."""


@sites.command("add")
@click.argument("name")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--kind", default="link_site", show_default=True,
              type=click.Choice(["link_site", "site_search", "sitemap"]), help="The site kind.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A site setting (VALUE as TOML); repeatable.")
@click.option("--schedule", help='When to crawl: an interval from 1s to 365d ("6h") or a five-field '
                                 'cron line ("30 2 * * *").')
@click.option("--disabled", is_flag=True, help="Add the site without crawling it.")
@click.option("--replace", is_flag=True, help="Update the site if it exists.")
@pass_state
def sites_add(state: State, name: str, urls: tuple[str, ...], kind: str, settings: tuple[str, ...],
              schedule: str | None, disabled: bool, replace: bool) -> None:
    """Add site NAME starting at URL... (start pages, sitemaps or feeds)."""
    from crawlers.sites import add_site

    conf = dict(_parse_setting(s) for s in settings)
    with state.session() as s:
        site = add_site(s, name, list(urls), kind=kind, settings=conf, schedule=schedule,
                        enabled=not disabled, replace=replace)
        click.echo(f"site {site.id} {site.name!r} ({site.kind.value}): {len(site.start_urls)} start URL(s)")


@sites.command("import")
@click.argument("toml_file", type=click.Path(dir_okay=False))
@pass_state
def sites_import(state: State, toml_file: str) -> None:
    """Add or update every [sites.NAME] block of TOML_FILE."""
    from crawlers.sites import import_sites

    with state.session() as s:
        for site in import_sites(s, toml_file):
            click.echo(f"site {site.id} {site.name!r} ({site.kind.value})")


@sites.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def sites_list(state: State, as_json: bool) -> None:
    """List the sites and their last crawl."""
    from crawlers.sites import list_sites, site_json

    with state.session() as s:
        rows = [site_json(x) for x in list_sites(s)]
    if echo_listing(rows, as_json, "no sites yet; add one with `vigie sites add NAME URL`"):
        return
    for r in rows:
        last = r["last_crawl"]
        seen = (f"last crawl {last['status']}: {last['pages']} pages, {last['candidates_new']} new, "
                f"{last['errors']} errors" if last else "never crawled")
        off = "" if r["enabled"] else " (disabled)"
        click.echo(f"{r['id']:>4}  {r['name']}  {r['kind']}{off}  {r['start_urls'][0]}  {seen}")


@click.command()
@click.argument("site_names", nargs=-1, metavar="[SITE...]")
@click.option("--evidence-dir", type=click.Path(file_okay=False),
              help="Keep page captures here (default: [crawl] evidence_dir, else in the database).")
@click.option("--allow-loopback", is_flag=True, default=None,
              help="Let the crawler fetch 127.0.0.1 (the demo web, tests); never for real sites.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as a JSON array.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_state
def crawl(state: State, site_names: tuple[str, ...], evidence_dir: str | None, allow_loopback: bool | None,
          as_json: bool, quiet: bool) -> None:
    """Crawl SITE... (every enabled site when none is named) and store the candidates.

    Exits 1 when a crawl failed as a whole (its process died or hit [crawl] timeout_s)."""
    from stages.table import run_stage

    def progress(event: dict[str, Any]) -> None:
        if quiet or as_json:
            return
        kind = event.get("event")
        if kind == "candidate":
            tag = "new " if event.get("new") else "seen"
            click.echo(f"  {tag} {event.get('url')}  media={event.get('media')}  {event.get('title', '')[:70]!r}")
        elif kind == "error":
            click.echo(f"  ERROR {event.get('url')}: {event.get('error')}")

    failure: CrawlError | None = None
    with state.context(crawl={"evidence_dir": evidence_dir, "allow_loopback": allow_loopback}) as ctx:
        try:
            results = run_stage("crawl", ctx, sites=site_names, progress=progress).detail
        except CrawlError as exc:
            counts = getattr(exc, "counts", None)
            if counts is None:
                raise
            results, failure = counts.detail, exc
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], ensure_ascii=False, indent=1))
    elif not results:
        click.echo("no enabled sites to crawl; add one with `vigie sites add NAME URL`")
    for r in [] if as_json else results:
        click.echo(f"{r.site}: {r.status}, {r.pages} pages, {r.candidates_new} new candidates, "
                   f"{r.candidates_seen} seen again, {r.errors} errors ({r.elapsed_s:.1f} s, run {r.run_id})")
    if failure is not None:  # a crawl that could not run is a failure of the command
        raise failure


COMMANDS: list[click.Command] = [sites, crawl]
