"""Notices as files for other systems: search engines' bulk delisting and Lumen.

* **Delisting at scale.** Search engines' trusted-submitter programmes take copyright
  removal requests in bulk, as a spreadsheet with one row per URL, rather than as mail:
  per row, the infringing URL, the copyrighted work described, and where an authorised
  example of it can be seen (the legitimate offer). ``write_delisting`` writes, for each
  search-engine host (``Host.kind == "search_engine"``), one CSV per UTC day of the
  delisting requests built that day (``notices.verify`` builds them; the same requests
  still go by mail when the engine has an email channel). A request waiting for staff
  approval, or discarded, is left out: the file is what may be submitted.
* **Lumen** (lumendatabase.org) collects takedown notices for transparency;
  ``lumen_notice`` is a notice in its notice-submission JSON (``notice`` with
  ``title``, ``type``, ``works_attributes`` with ``copyrighted_urls_attributes`` and
  ``infringing_urls_attributes``, and the ``sender``, ``principal`` and ``recipient``
  roles), ready to post with the submitter's own authentication token. Only what Lumen
  publishes is in it: no phone number or street address of a person.

Called by ``vigie notices export`` and, for the current day's delisting files, by the
notices stage when ``[notices] delisting_dir`` is set.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.models import Candidate, Host, Match, Notice, NoticeItem, NoticeStatus, Title
from notices.render import offers_for
from foundation.timeutil import as_utc

SEARCH_ENGINE = "search_engine"
# The columns of a bulk delisting file: the three fields the engines' copyright removal
# forms ask for, then what lets a reviewer check a row against our records.
DELISTING_COLUMNS = ("infringing_url", "work_description", "authorized_example_url", "work_title",
                     "work_year", "rights_owner", "notice_reference", "found_at", "match_score",
                     "matched_seconds")
# Statuses of a request that may be submitted (not held for a human, not discarded).
_SUBMITTABLE = (NoticeStatus.DRAFT, NoticeStatus.QUEUED, NoticeStatus.SENDING, NoticeStatus.IN_DOUBT,
                NoticeStatus.SENT, NoticeStatus.FAILED)
LUMEN_TYPES = {"dmca": "DMCA", "dsa": "DMCA", "delisting": "DMCA"}  # Lumen's type for copyright


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def reference_of(notice: Notice) -> str:
    """The notice's reference as its subject shows it (``[VIGIE-...]``)."""
    subject = notice.subject or ""
    if subject.startswith("[") and "]" in subject:
        return subject[1:subject.index("]")]
    return f"notice {notice.id}"


def work_description(title: Title, notifier: Mapping[str, Any]) -> str:
    year = f" ({title.year})" if title.year else ""
    owner = title.rights_owner or notifier.get("legal_name") or ""
    return (f"The film \"{title.title}\"{year}" + (f", whose rights are owned by {owner}" if owner else "")
            + ". The page makes an unauthorised copy of the film available, identified by "
              "video fingerprint matching against the original.")


def _authorised_url(title: Title, territory: str | None) -> str:
    offers = offers_for(title.offers, territory) or list(title.offers)
    return offers[0].url if offers else ""


# --------------------------------------------------------------------------- delisting


@dataclass
class DelistingExport:
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    engines: list[str] = field(default_factory=list)


def delisting_rows(session: Session, engine: Host, day: date,
                   notifier: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per infringing URL of the delisting requests to ``engine`` built on ``day``
    (UTC), each URL once (the first request naming it)."""
    start, end = _day_bounds(day)
    notices = session.scalars(
        select(Notice).where(Notice.host_id == engine.id, Notice.kind == "delisting",
                             Notice.status.in_(_SUBMITTABLE),
                             Notice.created_at >= start, Notice.created_at < end)
        .options(selectinload(Notice.items).selectinload(NoticeItem.match).selectinload(Match.title)
                 .selectinload(Title.offers),
                 selectinload(Notice.items).selectinload(NoticeItem.match).selectinload(Match.candidate))
        .order_by(Notice.id))
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n in notices:
        for it in sorted(n.items, key=lambda i: i.id):
            m = it.match
            if it.url in seen or m.title is None:
                continue
            seen.add(it.url)
            c: Candidate = m.candidate
            rows.append({
                "infringing_url": it.url,
                "work_description": work_description(m.title, notifier),
                "authorized_example_url": _authorised_url(m.title, engine.jurisdiction),
                "work_title": m.title.title,
                "work_year": m.title.year or "",
                "rights_owner": m.title.rights_owner or notifier.get("legal_name") or "",
                "notice_reference": reference_of(n),
                "found_at": as_utc(c.first_seen).strftime("%Y-%m-%dT%H:%M:%SZ") if c.first_seen else "",  # type: ignore[union-attr]
                "match_score": round(float(m.score), 3),
                "matched_seconds": round(float(m.matched_s), 1),
            })
    return rows


def _safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (URLs and titles come from pirates)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "engine"


def write_delisting(session: Session, notifier: Mapping[str, Any], out_dir: str | Path, day: date,
                    engines: Iterable[str] = ()) -> DelistingExport:
    """Write ``delisting-<engine>-<day>.csv`` into ``out_dir`` for every search-engine host
    (or those named) that has delisting requests built on ``day``; the file is replaced
    whole, so writing it again during the day brings it up to date."""
    wanted = set(engines)
    out = DelistingExport()
    q = select(Host).where(Host.kind == SEARCH_ENGINE).order_by(Host.name)
    unknown = wanted - set(session.scalars(select(Host.name).where(Host.kind == SEARCH_ENGINE)))
    if unknown:
        from foundation.errors import NotFound

        raise NotFound(f"no search-engine host named {', '.join(sorted(unknown))} "
                       "(register it with `vigie hosts add NAME --kind search_engine`)")
    for engine in session.scalars(q):
        if wanted and engine.name not in wanted:
            continue
        rows = delisting_rows(session, engine, day, notifier)
        if not rows:
            continue
        path = Path(out_dir) / f"delisting-{_file_stem(engine.name)}-{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=DELISTING_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _safe_cell(v) for k, v in row.items()})
        tmp.replace(path)
        out.files.append(path)
        out.rows += len(rows)
        out.engines.append(engine.name)
    return out


# --------------------------------------------------------------------------- Lumen


def _entity(name: str, *, kind: str = "organization", country: str | None = None,
            email: str | None = None, url: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": kind}
    if country:
        out["country_code"] = country.upper()[:2]
    if email:
        out["email"] = email
    if url:
        out["url"] = url
    return out


def lumen_notice(notice: Notice, notifier: Mapping[str, Any]) -> dict[str, Any]:
    """The notice as Lumen's notice-submission JSON (without the authentication token)."""
    works: dict[int, dict[str, Any]] = {}
    principals: list[str] = []
    for it in sorted(notice.items, key=lambda i: i.id):
        t = it.match.title
        if t is None:
            continue
        w = works.get(t.id)
        if w is None:
            w = works[t.id] = {
                "kind": "movie",
                "description": f"{t.title}" + (f" ({t.year})" if t.year else ""),
                "copyrighted_urls_attributes": [{"url": o.url} for o in offers_for(t.offers, notice.host.jurisdiction)
                                                or t.offers],
                "infringing_urls_attributes": [],
            }
            owner = t.rights_owner or notifier.get("legal_name")
            if owner and owner not in principals:
                principals.append(owner)
        if {"url": it.url} not in w["infringing_urls_attributes"]:
            w["infringing_urls_attributes"].append({"url": it.url})
    sent = notice.sent_at or notice.created_at
    host = notice.host
    roles = [
        {"name": "recipient", "entity_attributes": _entity(host.name, country=host.jurisdiction)},
        {"name": "sender", "entity_attributes": _entity(
            str(notifier.get("legal_name") or ""), country=notifier.get("country") or None,
            email=notifier.get("email") or None)},
        *({"name": "principal", "entity_attributes": _entity(p)} for p in principals),
    ]
    regime = {"dmca": "DMCA 17 U.S.C. 512(c)(3)", "dsa": "DSA art. 16",
              "delisting": "search-engine delisting request"}.get(notice.regime, notice.regime)
    titles = ", ".join(w["description"] for w in works.values())
    return {"notice": {
        "title": f"{regime} to {host.name}: {titles}"[:255],
        "type": LUMEN_TYPES.get(notice.regime, "DMCA"),
        "subject": f"Copyright infringement notice ({regime}) regarding films",
        "date_sent": as_utc(sent).strftime("%Y-%m-%d") if sent else None,  # type: ignore[union-attr]
        "language": notice.language,
        "source": "Email" if notice.recipient else "Online form",
        "tag_list": ", ".join(["film", "video fingerprint", notice.regime]),
        "jurisdiction_list": host.jurisdiction or "",
        "works_attributes": list(works.values()),
        "entity_notice_roles_attributes": roles,
    }}


@dataclass
class LumenExport:
    files: list[Path] = field(default_factory=list)


def write_lumen(session: Session, notifier: Mapping[str, Any], out_dir: str | Path, *,
                since: date | None = None, ids: Iterable[int] = ()) -> LumenExport:
    """Write ``lumen-<id>.json`` into ``out_dir`` for every sent notice (of ``ids`` when
    given; sent on or after ``since`` when given). Only sent notices: Lumen records what
    was actually sent."""
    q = (select(Notice).where(Notice.status == NoticeStatus.SENT)
         .options(selectinload(Notice.items).selectinload(NoticeItem.match).selectinload(Match.title)
                  .selectinload(Title.offers), selectinload(Notice.host))
         .order_by(Notice.id))
    id_list = list(ids)
    if id_list:
        q = q.where(Notice.id.in_(id_list))
    if since is not None:
        q = q.where(Notice.sent_at >= _day_bounds(since)[0])
    out = LumenExport()
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for n in session.scalars(q):
        path = target / f"lumen-{n.id}.json"
        path.write_text(json.dumps(lumen_notice(n, notifier), ensure_ascii=False, indent=1) + "\n",
                        encoding="utf-8")
        out.files.append(path)
    return out
