"""The ``vigie`` command: parse, open a session, call the library, print.

Domain errors (``foundation.errors``) become a one-line message on stderr and exit status 1;
bad usage exits 2 (click's convention).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from vigie import __version__
from foundation.config import Config, load_config
from foundation.errors import VigieError

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy.orm import Session

    from stages.context import Context


class VigieGroup(click.Group):
    """Turns handled errors into ``Error: <one line>`` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VigieError as exc:
            raise click.ClickException(_one_line(str(exc))) from None
        except Exception as exc:
            # The driver's own errors (locked, gone, not a database). SQLAlchemy is imported
            # by the commands that use it, not at start-up: if it was never imported, this
            # cannot be one of its errors.
            sa_exc = sys.modules.get("sqlalchemy.exc")
            if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
                raise
            raise click.ClickException(_one_line(f"database error: {exc.orig}")) from None


class _Bar:
    """A click progress bar fed either by seconds of video or by items."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.done = 0.0

    def seconds(self, done: float, total: float) -> None:
        if total > 0:
            self.bar.length = int(total)
        self.bar.update(max(0, int(done) - int(self.done)))
        self.done = max(self.done, float(int(done)))

    def step(self) -> None:
        self.bar.update(1)


@contextmanager
def progress_bar(wanted: bool, *, label: str, length: int = 0) -> Iterator[_Bar | None]:
    """A progress bar on stderr when it is a terminal (never in --json mode or in a pipe)."""
    if not wanted or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=max(length, 1), label=label, file=sys.stderr) as bar:
        yield _Bar(bar)


def echo_listing(rows: list[Any], as_json: bool, empty_hint: str) -> bool:
    """The common head of every ``list`` verb: print ``rows`` as JSON, or the hint when
    there are none. Returns True when nothing is left to print."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return True
    if not rows:
        click.echo(empty_hint)
        return True
    return False


def _one_line(msg: str) -> str:
    return " ".join(msg.split()) or "error"


class State:
    def __init__(self, db_url: str | None, config_path: str | None) -> None:
        self.config: Config = load_config(config_path)
        self.db_url = db_url or self.config.database_url

    @contextmanager
    def session(self, *, check: bool = True) -> Iterator[Session]:
        """A session in a transaction, committed on success, rolled back on error."""
        from stages.context import Context

        with Context.open(self.db_url, self.config, check=check) as ctx, ctx.Session.begin() as session:
            yield session

    @contextmanager
    def context(self, **overrides: dict[str, Any]) -> Iterator[Context]:
        """The stages' context on this database, with ``overrides`` (section -> values,
        a command's flags) over the configuration."""
        from stages.context import Context

        config = self.config
        for section, values in overrides.items():
            config = config.with_values(section, **values)
        with Context.open(self.db_url, config) as ctx:
            yield ctx


pass_state = click.make_pass_decorator(State)


@click.group(cls=VigieGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_url", envvar="VIGIE_DATABASE_URL", metavar="URL",
              help="Database URL (env VIGIE_DATABASE_URL; default: sqlite:///vigie.db).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="TOML configuration file (default: ./vigie.toml if present).")
@click.version_option(__version__, prog_name="vigie")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, config_path: str | None) -> None:
    """Vigie: find pirated copies of a film catalogue, prove them, get them taken down."""
    try:
        ctx.obj = State(db_url, config_path)
    except VigieError as exc:
        raise click.ClickException(_one_line(str(exc))) from None


@cli.command()
@pass_state
def init(state: State) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from db.session import current_revision, plain_revisions, upgrade
    from stages.context import Context

    with Context.open(state.db_url, state.config, check=False) as ctx:
        engine = ctx.engine
        before, head = plain_revisions(engine)
        after = before
        if before != head:  # Alembic only when there is something to do
            upgrade(engine)
            after = current_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        click.echo(f"database {url} is up to date (revision {after})")
    else:
        click.echo(f"database {url} upgraded from {before or 'empty'} to {after} (head {head})")


# --------------------------------------------------------------------------- catalog


@cli.group()
def catalog() -> None:
    """The catalogue: titles, offers, reference fingerprints and allowed material."""


# Kept here (not imported from db.models) so `vigie --help` stays light.
ALLOWED_REASONS = ("trailer", "promo", "public-domain", "logo")
# Likewise the words of `--kind` (stages.holders.OFFER_KINDS maps them to stored kinds).
OFFER_KINDS = ("rental", "subscription", "purchase", "cinema")


@catalog.command("add")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("--title", "-t", required=True, help="The title of the work.")
@click.option("--year", type=int, help="Release year.")
@click.option("--alt-title", "alt_titles", multiple=True, metavar="A",
              help="An alternative title (translations, working titles); repeatable.")
@click.option("--offer", "offers", multiple=True, metavar="URL",
              help="Where the film can be watched legally; repeatable. Each may have a --territory, "
                   "--from, --until and --kind (once for all offers, or once per --offer, in order; "
                   "'-' for an offer's default).")
@click.option("--territory", "territories", multiple=True, metavar="CC[,CC...]",
              help="Where an offer is open: ISO 3166-1 alpha-2 codes, or * for worldwide (default).")
@click.option("--from", "starts", multiple=True, metavar="YYYY-MM-DD", help="First day an offer is open.")
@click.option("--until", "ends", multiple=True, metavar="YYYY-MM-DD", help="Last day an offer is open.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(OFFER_KINDS),
              help="What an offer is: rental (default), subscription, purchase, cinema.")
@click.option("--holder", metavar="NAME",
              help="The rights holder (see `vigie holders add`); a title with no holder is never notified.")
@click.option("--rights", "rights_territory", default="*", show_default=True, metavar="CC[,CC...]",
              help="Where --holder (or --rights-owner) holds the rights: a notice to a host elsewhere is "
                   "not sent.")
@click.option("--rights-owner", help="Who owns the rights, by name: registered as a holder when new "
                                     "(default: the configured notifier, when no --holder is given).")
@click.option("--publish/--no-publish", "published", default=None,
              help="Give the title a public 'watch legally' page (default: no, a new title is unpublished).")
@click.option("--publish-from", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Publish its public page from this day on (implies --publish).")
@click.option("--json", "as_json", is_flag=True, help="Print the title as JSON.")
@pass_state
def catalog_add(state: State, video: str, title: str, year: int | None, alt_titles: tuple[str, ...],
                offers: tuple[str, ...], territories: tuple[str, ...], starts: tuple[str, ...],
                ends: tuple[str, ...], kinds: tuple[str, ...], holder: str | None, rights_territory: str,
                rights_owner: str | None, published: bool | None, publish_from: Any, as_json: bool) -> None:
    """Fingerprint VIDEO and add it to the catalogue as TITLE.

    The same file (by SHA-256) is stored once; adding it again does nothing. A new title
    has no public page until published (--publish, or `vigie catalog publish ID`).
    """
    from stages.catalog import add_title, title_json

    specs = offer_specs(offers, territories, starts, ends, kinds)
    with state.session() as s:
        with progress_bar(not as_json, label="fingerprinting") as bar:
            res = add_title(s, video, title=title, year=year, alt_titles=alt_titles, offers=specs,
                            holder=holder, rights_territory=rights_territory,
                            rights_owner=None if holder else rights_owner or state.config.notifier.get("legal_name"),
                            progress=bar.seconds if bar else None, published=published,
                            publish_from=publish_from.date() if publish_from else None)
        if as_json:
            click.echo(json.dumps({"created": res.created, **title_json(res.title)}, ensure_ascii=False))
        elif res.created:
            r = res.reference
            click.echo(f"added title {res.title.id} {res.title.title!r}: reference {r.id}, "
                       f"{r.duration_s:.1f} s, {r.width}x{r.height}, {r.frame_count} hashes")
        else:
            click.echo(f"already catalogued: {video} is reference {res.reference.id} "
                       f"of title {res.title.id} {res.title.title!r}; nothing changed")


@catalog.command("publish")
@click.argument("title_id", type=int)
@click.option("--from", "publish_from", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Only from this day on (the film's release date).")
@pass_state
def catalog_publish(state: State, title_id: int, publish_from: Any) -> None:
    """Give title ID a public 'watch legally' page (in `vigie serve` and the static export)."""
    from stages.catalog import set_published

    with state.session() as s:
        t = set_published(s, title_id, True, publish_from.date() if publish_from else None)
        click.echo(f"title {t.id} {t.title!r} published"
                   + (f" from {t.publish_from.isoformat()}" if t.publish_from else ""))


@catalog.command("unpublish")
@click.argument("title_id", type=int)
@pass_state
def catalog_unpublish(state: State, title_id: int) -> None:
    """Remove title ID's public page (its page answers 404, it leaves lists and exports)."""
    from stages.catalog import set_published

    with state.session() as s:
        t = set_published(s, title_id, False)
        click.echo(f"title {t.id} {t.title!r} unpublished")


def parse_day(value: str | None, flag: str) -> date | None:
    """An option's YYYY-MM-DD value as a date (None when not given); a clear usage error
    naming the option otherwise."""
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=flag) from None


def offer_specs(offers: tuple[str, ...], territories: tuple[str, ...], starts: tuple[str, ...],
                ends: tuple[str, ...], kinds: tuple[str, ...]) -> list[Any]:
    """Pair each --offer with its --territory, --from, --until and --kind: each given
    once (for every offer) or once per offer, in the order of the offers; "-" leaves
    one offer's value to its default (worldwide, open-ended, rental)."""
    from stages.holders import OfferSpec, offer_kind

    def per_offer(values: tuple[str, ...], flag: str) -> list[str | None]:
        if not values:
            return [None] * len(offers)
        if len(values) == 1:
            return [values[0]] * len(offers)
        if len(values) != len(offers):
            raise click.UsageError(f"{flag} given {len(values)} times for {len(offers)} --offer: "
                                   "give it once for all, or once per --offer ('-' for its default)")
        return [None if v.strip() == "-" else v for v in values]

    if not offers and (territories or starts or ends or kinds):
        raise click.UsageError("--territory, --from, --until and --kind describe an --offer: give one")
    rows = zip(offers, per_offer(territories, "--territory"), per_offer(starts, "--from"),
               per_offer(ends, "--until"), per_offer(kinds, "--kind"), strict=True)
    return [OfferSpec(url, territory=t or "*", kind=offer_kind(k or "rental"), valid_from=parse_day(a, "--from"),
                      valid_until=parse_day(b, "--until")) for url, t, a, b, k in rows]


@catalog.command("offer")
@click.argument("title")
@click.option("--offer", "offers", multiple=True, required=True, metavar="URL",
              help="Where the film can be watched legally; repeatable.")
@click.option("--territory", "territories", multiple=True, metavar="CC[,CC...]",
              help="Where an offer is open (default: worldwide); once, or once per --offer.")
@click.option("--from", "starts", multiple=True, metavar="YYYY-MM-DD", help="First day an offer is open.")
@click.option("--until", "ends", multiple=True, metavar="YYYY-MM-DD", help="Last day an offer is open.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(OFFER_KINDS),
              help="What an offer is: rental (default), subscription, purchase, cinema.")
@pass_state
def catalog_offer(state: State, title: str, offers: tuple[str, ...], territories: tuple[str, ...],
                  starts: tuple[str, ...], ends: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    """Add legitimate offers to TITLE (id or name), each with its territory and window
    (the same options as `catalog add`); an offer it has already is not added twice."""
    from stages.catalog import find_title
    from stages.holders import add_offers

    specs = [spec.checked() for spec in offer_specs(offers, territories, starts, ends, kinds)]
    with state.session() as s:
        t = find_title(s, int(title) if title.isdigit() else title)
        added = add_offers(t, specs)
        s.flush()
    click.echo(f"title {t.id} {t.title!r}: {added} offer(s) added, {len(specs) - added} known already")


@catalog.command("allow")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("--reason", "-r", required=True, type=click.Choice(ALLOWED_REASONS),
              help="Why the video is allowed: a trailer (or clip, making-of) the studio published, "
                   "promotional material, public-domain footage, a logo.")
@click.option("--title", "-t", metavar="T", help="The title it belongs to (id or name); none for a logo "
                                                  "or public-domain footage of no title.")
@click.option("--json", "as_json", is_flag=True, help="Print the allowed material as JSON.")
@pass_state
def catalog_allow(state: State, video: str, reason: str, title: str | None, as_json: bool) -> None:
    """Register VIDEO as allowed material: a copy of it alone gets no notice.

    A copy of a film that also holds allowed material is still matched on the rest.
    The same file (by SHA-256) is stored once; allowing it again does nothing.
    """
    from stages.catalog import allow_video, allowed_json

    with state.session() as s:
        with progress_bar(not as_json, label="fingerprinting") as bar:
            res = allow_video(s, video, reason=reason, title=title, progress=bar.seconds if bar else None)
        r = res.reference
        if as_json:
            click.echo(json.dumps({"created": res.created, **allowed_json(r)}, ensure_ascii=False))
            return
        of = f"of title {res.title.id} {res.title.title!r}" if res.title is not None else "of no title"
        why = r.allowed_reason.value if r.allowed_reason else reason
        if res.created:
            click.echo(f"allowed {why} {of}: reference {r.id}, {r.duration_s:.1f} s, {r.width}x{r.height}, "
                       f"{r.frame_count} hashes")
        else:
            click.echo(f"already allowed: {video} is reference {r.id} ({why}) {of}; nothing changed")


@catalog.command("disallow")
@click.argument("ref_id", type=int, metavar="ID")
@pass_state
def catalog_disallow(state: State, ref_id: int) -> None:
    """Remove allowed material ID (see `vigie catalog list`); copies found to be only it
    are matched again."""
    from stages.catalog import remove_allowed

    with state.session() as s:
        requeued = remove_allowed(s, ref_id)
    click.echo(f"removed allowed material {ref_id}; {requeued} candidate(s) will be matched again")


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def catalog_list(state: State, as_json: bool) -> None:
    """List the catalogue: titles, then allowed material with its reason.

    In JSON, each title lists its allowed material under "allowed"; material of no title
    comes last, in an entry whose "id" and "title" are null.
    """
    from stages.catalog import allowed_json, list_allowed, list_titles, title_json

    with state.session() as s:
        rows = [title_json(t) for t in list_titles(s)]
        untitled = [allowed_json(r) for r in list_allowed(s) if r.title_id is None]
        allowed = [allowed_json(r) for r in list_allowed(s)]
    if untitled:
        rows.append({"id": None, "title": None, "year": None, "alt_titles": [], "offers": [], "references": [],
                     "published": False, "publish_from": None, "rights": [], "allowed": untitled})
    if echo_listing(rows, as_json, "the catalogue is empty; add a film with `vigie catalog add VIDEO --title T`"):
        return
    for t in rows:
        if t["id"] is None:
            continue
        year = f" ({t['year']})" if t["year"] else ""
        refs = t["references"]
        dur = sum(r["duration_s"] for r in refs)  # type: ignore[misc]
        extra = f"  allowed={len(t['allowed'])}" if t["allowed"] else ""  # type: ignore[arg-type]
        public = ("public" + (f" from {t['publish_from']}" if t["publish_from"] else "")) if t["published"] \
            else "unpublished"
        rights = ",".join(f"{r['holder']}({r['territory']})" for r in t["rights"]) or "NONE (never notified)"  # type: ignore[index,union-attr]
        click.echo(f"{t['id']:>5}  {t['title']}{year}  refs={len(refs)} {dur:.0f}s  offers={len(t['offers'])}"  # type: ignore[arg-type]
                   f"  {public}  rights={rights}{extra}")
    if allowed:
        click.echo("allowed material (a copy of it alone gets no notice):")
    for a in allowed:
        of = f"title {a['title_id']} {a['title']!r}" if a["title_id"] is not None else "no title"
        click.echo(f"{a['id']:>5}  {a['reason']:<13} {of}  {a['duration_s']:.0f}s  {a['path']}")


# --------------------------------------------------------------------------- identify


@cli.command()
@click.argument("video_or_url")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--allow-loopback", is_flag=True, default=None,
              help="Allow a URL on 127.0.0.1 (the demo web, tests); default: [match] allow_loopback.")
@pass_state
def identify(state: State, video_or_url: str, as_json: bool, allow_loopback: bool | None) -> None:
    """Match one video (a file or an http(s) URL) against the catalogue."""
    from stages.identify import identify as run

    from stages.catalog import stale_references

    loopback = state.config.get("match", "allow_loopback") if allow_loopback is None else allow_loopback
    with state.session() as s:
        stale = stale_references(s)
        out = run(s, video_or_url, allow_loopback=bool(loopback), index_dir=state.config.get("match", "index_dir"))
    if stale:
        click.echo(f"warning: {stale} reference(s) were fingerprinted by an older algorithm and are not "
                   "matched; add their files again with `vigie catalog add`", err=True)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"{out['video']}: {out['duration_s']:.1f} s, {out['frames_hashed']} frames hashed "
               f"in {out['elapsed_s']:.2f} s")
    if not out["matches"]:
        click.echo("  no match in the catalogue")
    for m in out["matches"]:
        click.echo(f"  {m['decision'].upper():9} {m['title']!r} (title {m['title_id']}) score {m['score']:.2f}, "
                   f"{m['matched_s']:.0f} s matched; copy {m['cand_start_s']:.1f}-{m['cand_end_s']:.1f} s = "
                   f"film {m['ref_start_s']:.1f}-{m['ref_end_s']:.1f} s, speed {m['speed']:.3f}")
    for a in out["allowed"]:
        of = f"{a['title']!r} (title {a['title_id']})" if a["title_id"] is not None else "of no title"
        click.echo(f"  ALLOWED   {a['reason']} {of}, reference {a['ref_id']}: {a['matched_s']:.0f} s matched; "
                   f"copy {a['cand_start_s']:.1f}-{a['cand_end_s']:.1f} s (no notice for it)")


# --------------------------------------------------------------------------- match


@cli.command("match")
@click.option("--limit", type=int, help="Process at most this many candidates.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--allow-loopback", is_flag=True, default=None,
              help="Fetch media on 127.0.0.1 (the demo web, tests); default: [match] allow_loopback.")
@pass_state
def match_cmd(state: State, limit: int | None, as_json: bool, allow_loopback: bool | None) -> None:
    """Fingerprint and match pending candidates."""
    from sqlalchemy import func, select

    from db.models import Candidate, CandidateStatus
    from stages.table import run_stage

    with state.context(match={"allow_loopback": allow_loopback}) as ctx:
        with ctx.Session() as s:
            pending = s.scalar(select(func.count()).select_from(Candidate)
                               .where(Candidate.status == CandidateStatus.PENDING)) or 0

        def show(cand: Any, outcome: str) -> None:
            if bar is not None:
                bar.step()
            elif not as_json:
                click.echo(f"  candidate {cand.id} {cand.page_url}: {outcome}")

        with progress_bar(not as_json, label="matching", length=min(pending, limit or pending)) as bar:
            stats = run_stage("match", ctx, limit=limit, on_item=show).detail
    if as_json:
        click.echo(json.dumps(stats.as_json()))
        return
    click.echo(f"{stats.candidates} candidates: {stats.confirmed} confirmed, {stats.review} for review, "
               f"{stats.allowed} allowed material only, {stats.no_match} without match, {stats.failed} failed, "
               f"{stats.retry} to retry")
    for err in stats.errors[:20]:
        click.echo(f"  error: {err}", err=True)


# --------------------------------------------------------------------------- bench

BENCH_SECTIONS = ("startup", "ingest", "identify", "index", "accuracy", "peer", "browser")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON object (progress goes to stderr).")
@click.option("--film", type=click.Path(exists=True, dir_okay=False),
              help="A film for the ingest and identify figures (default: a generated 720p film).")
@click.option("--corpus", type=click.Path(exists=True, file_okay=False),
              help="A corpus directory for the accuracy and peer runs (e.g. ../shared/corpus).")
@click.option("--only", "only", multiple=True, type=click.Choice(BENCH_SECTIONS),
              help="Run only these sections (repeatable; default: all that apply).")
@click.option("--workdir", default="bench-out", show_default=True, type=click.Path(file_okay=False),
              help="Where generated films and queries are cached.")
@click.option("--limit", type=int, help="Accuracy: only the first N transforms (a quick run).")
@click.option("--rows", multiple=True, metavar="TEXT",
              help="Accuracy: only the rows whose name contains TEXT (transforms, non-catalogue classes, "
                   "allowed_only, film_plus_allowed, corpus_footage); repeatable.")
def bench(as_json: bool, film: str | None, corpus: str | None, only: tuple[str, ...], workdir: str,
          limit: int | None, rows: tuple[str, ...]) -> None:
    """Speed and accuracy figures, each against a baseline measured in the same run.

    Sections: startup (vigie --help and each verb's --help, against python -c pass),
    ingest, identify, index; with --corpus, accuracy (per transform, non-catalogue
    material, allowed material) and peer (Meta's vPDQ on the same queries, and the
    speed of both)."""
    from demoweb.bench import run_bench

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    out = run_bench(film=film, corpus=corpus, workdir=workdir, sections=list(only or BENCH_SECTIONS),
                    echo=progress, limit=limit, rows=rows, verbs=sorted(cli.commands))
    click.echo(json.dumps(out, indent=None if as_json else 1))


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Where the demo keeps its database and generated copies.")
def demo(workdir: str) -> None:
    """One full cycle on the bundled demo world, offline."""
    from demoweb.cycle import run_demo

    run_demo(workdir, echo=click.echo)


# The collector's pace while a command runs (see ``main``): a young-generation pass every
# GC_YOUNG allocations, an older one every GC_OLDER passes of the younger.
GC_YOUNG = 10_000
GC_OLDER = 50


def main() -> None:
    # Starting a database command creates some 60,000 objects the collector tracks and
    # that live as long as the process (SQLAlchemy, the models' mappings); at its default
    # pace (a pass every 700 allocations, an older one every 10 passes) going over them
    # again and again took about 20 ms of a 0.36 s command (`vigie catalog list` and
    # `vigie status` on an empty catalogue, median of 15 runs each). Garbage cycles are
    # still collected, less often.
    gc.set_threshold(GC_YOUNG, GC_OLDER, GC_OLDER)
    try:
        cli.main(prog_name="vigie")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        exit_now(130)
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def exit_now(code: object) -> NoReturn:
    """Exit with ``code`` without the interpreter's teardown, when nothing is left for it
    to do: the output flushed, the exit handlers run (``atexit``), and no other thread.

    The teardown frees every object one by one, SQLAlchemy's mappings of every table
    among them: measured here, 40 to 75 ms of a database command's 0.4 s (`vigie
    catalog list` on an empty catalogue) went on it after the command had finished.
    Whatever holds a resource releases it in the command itself (a context's engine is
    disposed when its ``with`` ends) or in an exit handler; the kernel closes the rest.
    Another thread still running (a server, a pool) gets the usual exit, which waits for
    it; so does a code that is not a number (a message for stderr). Daemon threads (the
    sandbox's forker) are not waited for by either exit."""
    if code is None:
        code = 0
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if not isinstance(code, int) or others:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # a closed pipe: the usual exit reports it
    atexit._run_exitfuncs()
    os._exit(code & 0xFF)


def _register() -> None:
    from vigie.commands import register_all

    register_all(cli)


_register()
