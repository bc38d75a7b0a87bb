"""The stage table: every stage of the flow, its function, its queue and its schedule.

Each stage is ``run(ctx, **args) -> Counts`` (:mod:`stages.context`): it reads its input
from the database, writes its output there, reads its own config keys, and returns its
figures. The CLI verbs, the scheduler (``scheduler.py``), the cluster tasks
(``cluster.app``) and the demo all call the stages through :func:`run_stage`, so a stage
behaves the same whoever runs it::

    with Context.open(db_url, config) as ctx:
        counts = run_stage("match", ctx)

``every`` is the ``[schedule]`` key of a stage's period (``report_at`` is a local time
of day); the crawl has none: each site has its own schedule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from foundation.config import Config
from foundation.errors import CrawlError, NotFound
from foundation.schedules import parse_interval
from foundation.timeutil import as_utc
from stages.context import Context, Counts

# The order of one full cycle (`vigie run --once`, the demo).
FLOW = ("crawl", "match", "notices", "inbox", "verify", "report", "evidence")


def crawl(ctx: Context, sites: Sequence[str] | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> Counts:
    """Crawl ``sites`` (every enabled site when None), one after another, in a child
    process each. ``[crawl]``: evidence_dir, allow_loopback, user_agent, timeout_s. With
    ``[evidence] dir``, every page fetch is also kept as WARC records (``evidence.crawl``)
    and page bodies go under it when ``[crawl] evidence_dir`` is not set.

    CrawlError (its ``counts`` attached) when a crawl failed as a whole (its process
    died or ran past ``timeout_s``); the other sites were crawled all the same."""
    from crawlers.run import crawl as crawl_sites

    get = ctx.config.get
    kept = get("evidence", "dir")
    warc = {"pipelines": {"evidence.crawl.WarcPipeline": 200},
            "settings": {"VIGIE_WARC_DIR": os.path.abspath(kept)}} if kept else {}
    results = crawl_sites(ctx.db_url, list(sites) if sites else None,
                          evidence_dir=get("crawl", "evidence_dir") or (os.path.join(kept, "pages") if kept else None),
                          allow_loopback=bool(get("crawl", "allow_loopback")),
                          user_agent=get("crawl", "user_agent"),
                          timeout_s=float(get("crawl", "timeout_s")),
                          progress=progress, stop=ctx.stop, **warc)
    one = {"run_id": results[0].run_id, "status": results[0].status} if len(results) == 1 else {}
    failed = [r for r in results if r.status == "failed"]
    counts = Counts.of(results, **one, sites=len(results), pages=sum(r.pages for r in results),
                       new=sum(r.candidates_new for r in results),
                       seen=sum(r.candidates_seen for r in results),
                       errors=sum(r.errors for r in results), failed=len(failed))
    if failed:  # a crawl that could not run is a failure of the stage, not a figure
        why = failed[0].error_log[-1]["error"] if failed[0].error_log else "no reason recorded"
        exc = CrawlError(f"{len(failed)} of {len(results)} crawl(s) failed; {failed[0].site}: {why}")
        exc.counts = counts  # type: ignore[attr-defined]
        raise exc
    return counts


MATCH_FIGURES = ("candidates", "confirmed", "review", "allowed", "no_match", "failed", "retry")


def match(ctx: Context, limit: int | None = None, on_item: Callable[[Any, str], None] | None = None) -> Counts:
    """Fingerprint and match pending candidates (at most ``limit``) against the
    catalogue. ``[match]``: allow_loopback, index_dir; with ``[evidence] dir`` each matched
    candidate's media headers, match records and frames go to the evidence file."""
    from stages.match import match_pending

    st = match_pending(ctx.Session, limit=limit, on_item=on_item,
                       allow_loopback=bool(ctx.config.get("match", "allow_loopback")),
                       index_dir=ctx.config.get("match", "index_dir"), stop=ctx.stop,
                       evidence_dir=ctx.config.get("evidence", "dir"))
    return Counts.of(st, **{k: getattr(st, k) for k in MATCH_FIGURES}, errors=len(st.errors))


@dataclass
class NoticesOutcome:
    """What the notices stage did: the notices queued (as plain rows, readable after the
    session closed), what was refused or flagged, and the dispatch."""

    queued: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    # URLs nobody may notify (no holder, mandate expired, no rights in the host's territory).
    withheld: list[str] = field(default_factory=list)
    partners_skipped: int = 0
    dispatch: Any = None           # notices.dispatch.DispatchResult; None in a dry run
    eml: list[Path] = field(default_factory=list)
    delisting: list[Path] = field(default_factory=list)  # the day's bulk delisting files


DISPATCH_FIGURES = ("sent", "retry", "in_doubt", "failed", "discarded", "held")


def notices(ctx: Context, dry_run: bool = False, out_dir: str | Path = "outbox-eml",
            on_item: Callable[[int], None] | None = None) -> Counts:
    """Build notices for newly confirmed matches, then send every due notice (``[smtp]``,
    ``[notices]``). With ``dry_run``, write the mails as .eml files to ``out_dir`` and
    change nothing. With ``[notices] delisting_dir``, then write the day's bulk delisting
    file per search engine there (``notices.exports``)."""
    from notices.build import queue_notices
    from notices.dispatch import dispatch, write_eml

    out = NoticesOutcome()
    session = ctx.Session() if dry_run else ctx.Session.begin()
    with session as s:
        q = queue_notices(s, ctx.config, ctx.now())
        out.queued = [{"id": n.id, "host": n.host.name, "recipient": n.recipient, "regime": n.regime,
                       "language": n.language, "urls": len(n.items), "status": n.status.value}
                      for n in q.notices]
        out.refused, out.flagged, out.partners_skipped = q.refused, q.flagged, q.partners_skipped
        out.withheld = q.withheld
        if dry_run:
            out.eml = write_eml(s, ctx.config, out_dir)
            s.rollback()
    figures = {"queued": len(out.queued), "flagged": len(out.flagged), "refused": len(out.refused),
               "withheld": len(out.withheld)}
    if dry_run:
        return Counts.of(out, **figures, eml=len(out.eml))
    out.dispatch = dispatch(ctx.Session, ctx.config, now=ctx.at, on_item=on_item, stop=ctx.stop)
    delisting_dir = ctx.config.get("notices", "delisting_dir")
    if delisting_dir:
        # The search engines' bulk files of the day, refreshed at every run: what verify
        # asked them to delist so far today, ready for their trusted-submitter upload.
        from notices.exports import write_delisting

        with ctx.Session() as s:
            out.delisting = write_delisting(s, ctx.config.notifier, delisting_dir, as_utc(ctx.now()).date()).files  # type: ignore[union-attr]
        figures["delisting_files"] = len(out.delisting)
    return Counts.of(out, **figures, **{k: len(getattr(out.dispatch, k)) for k in DISPATCH_FIGURES})


def verify(ctx: Context) -> Counts:
    """Re-check notified URLs, record takedowns, escalate overdue ones (``[notices]``).
    With ``[evidence] dir`` every verification fetch is kept as WARC records."""
    from notices.http import fetch
    from notices.verify import verify as verify_items

    kept = ctx.config.get("evidence", "dir")
    timeout = float(ctx.config.get("notices", "http_timeout"))
    loopback = bool(ctx.config.get("notices", "allow_loopback"))
    fetched: list[Any] = []

    def fetch_kept(url: str) -> Any:
        resp = fetch(url, timeout=timeout, allow_loopback=loopback)
        fetched.append(resp)
        return resp

    now = ctx.now()
    with ctx.Session.begin() as s:
        r = verify_items(s, ctx.config, now=now, fetcher=fetch_kept if kept else None)
        if kept:
            from evidence.capture import keep_verify_fetches
            from evidence.store import EvidenceStore, Fetch

            keep_verify_fetches(s, EvidenceStore(kept), now, [Fetch(
                url=f.url, fetched_at=f.fetched_at, status=f.status, reason=f.reason,
                request_headers=list(f.request_headers), response_headers=list(f.headers), body=f.body,
                ip=f.address, error=f.error) for f in fetched])
    return Counts.of(r, checked=r.checked, removed=len(r.removed), live=len(r.live),
                     inconclusive=len(r.inconclusive), reuploads=len(r.reuploads))


def inbox(ctx: Context, path: str | Path | None = None,
          on_item: Callable[[str], None] | None = None) -> Counts:
    """Read the hosts' replies: the new mail of the ``[inbox]`` IMAP folder, or with
    ``path`` a maildir or mbox file. Each mail is stored once, tied to its notice and
    read; what is unsure goes to staff. Without ``[inbox] host`` (and no path) it does
    nothing and says so (``configured=0``)."""
    from inbox.sources import fetch_imap, import_path

    if path is not None:
        out = import_path(ctx.Session, ctx.config, path, now=ctx.at, on_item=on_item)
    else:
        out = fetch_imap(ctx.Session, ctx.config, now=ctx.at, stop=ctx.stop)
    r = out.result
    return Counts.of(out, configured=int(not out.skipped_configured), seen=out.seen, stored=len(r.stored),
                     duplicates=r.duplicates, filed=r.filed, for_staff=r.for_staff, errors=len(r.errors),
                     **{f"kind_{k}": v for k, v in sorted(r.by_kind.items())})


@dataclass
class EvidenceOutcome:
    stamp: Any = None              # evidence.manifest.StampResult
    purge: Any = None              # evidence.purge.PurgeResult
    errors: list[str] = field(default_factory=list)


def evidence(ctx: Context, stamp: bool = True, purge: bool = True) -> Counts:
    """The evidence file's daily work (``[evidence]``): a manifest of what was captured
    since the last run, per day, timestamped by the authority at ``tsa_url`` (a failed
    request is retried next time); then the retention purge (``keep_days``). Without
    ``[evidence] dir`` there is nothing to do."""
    from evidence.manifest import stamp as stamp_manifests
    from evidence.purge import delete_files, purge as purge_old
    from evidence.store import EvidenceStore

    kept = ctx.config.get("evidence", "dir")
    if not kept:
        return Counts.of(EvidenceOutcome(), skipped="no [evidence] dir")
    store, now, out = EvidenceStore(kept), ctx.now(), EvidenceOutcome()
    if stamp:
        with ctx.Session.begin() as s:
            out.stamp = stamp_manifests(s, store, ctx.config, now)
        out.errors += out.stamp.errors
    if purge:
        with ctx.Session.begin() as s:
            out.purge = purge_old(s, store, int(ctx.config.get("evidence", "keep_days")), now)
        out.errors += delete_files(store, out.purge.files_deleted)
    st, pu = out.stamp, out.purge
    return Counts.of(out, manifests=len(st.manifests) if st else 0, items=st.items if st else 0,
                     stamped=len(st.stamped) if st else 0, unstamped=len(st.unstamped) if st else 0,
                     purged=pu.purged if pu else 0, kept_for_cases=pu.kept_for_cases if pu else 0,
                     errors=len(out.errors))


@dataclass
class ReportOutcome:
    output: Any                    # reports.daily.ReportOutput
    mailed: list[str] = field(default_factory=list)


def report(ctx: Context, day: date | None = None, out_dir: str | Path | None = None, mail: bool = True) -> Counts:
    """The daily report for ``day`` (default: yesterday, local time) into ``out_dir``
    (default ``[report] out_dir``), mailed to ``[report] staff`` when mail is set up."""
    from reports.daily import build_report, mail_configured, mail_report

    with ctx.Session.begin() as s:
        out = build_report(s, ctx.config, day, out_dir, now=ctx.at)
        mailed = mail_report(ctx.config, out, s) if mail and mail_configured(ctx.config) else []
    return Counts.of(ReportOutcome(out, mailed), day=out.day.isoformat(), html=str(out.html), mailed=len(mailed))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[..., Counts]
    queue: str                 # the cluster queue its jobs go to
    every: str | None          # its [schedule] key; None: per site (the crawl)


STAGES: dict[str, Stage] = {
    "crawl": Stage("crawl", crawl, "crawl", None),
    "match": Stage("match", match, "match", "match_every"),
    "notices": Stage("notices", notices, "notices", "dispatch_every"),
    "verify": Stage("verify", verify, "verify", "verify_every"),
    "inbox": Stage("inbox", inbox, "inbox", "inbox_every"),
    "report": Stage("report", report, "report", "report_at"),
    "evidence": Stage("evidence", evidence, "evidence", "evidence_every"),
}


def seconds(config: Config, key: str) -> float:
    """The ``[schedule]`` period ``key`` in seconds."""
    return parse_interval(config.get("schedule", key))


def job_intervals(config: Config) -> dict[str, float]:
    """Seconds between runs of each periodic job (for ``vigie status``, which so needs
    neither the scheduler nor APScheduler)."""
    periodic = {name: seconds(config, st.every) for name, st in STAGES.items()
                if st.every and st.every.endswith("_every")}
    return {**periodic, "resync": seconds(config, "resync_every")}


def run_stage(name: str, ctx: Context, **args: Any) -> Counts:
    """Run stage ``name`` with ``args``; its counts."""
    try:
        stage = STAGES[name]
    except KeyError:
        raise NotFound(f"no stage {name!r} (known: {', '.join(STAGES)})") from None
    return stage.run(ctx, **args)
