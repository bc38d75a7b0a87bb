"""Sites to crawl and hosts to attribute candidates to: the crawl stage's data.

``vigie sites add/list/import`` and the demo call these. A site is data (kind, start
URLs, settings checked against the kind's spider, schedule); a TOML file of
``[sites.NAME]`` blocks imports several at once. Hosts are looked up, and a domain
seen for the first time registered, by ``db.hosts``.
"""

from __future__ import annotations

import tomllib
from typing import Any
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CrawlRun, Host, NoticeChannel, Site, SiteKind
from foundation.config import read_small_file
from foundation.errors import ConfigError, Duplicate, InvalidInput, NotFound
from foundation.netsafe import http_url
from foundation.schedules import check_schedule


def _check_urls(urls: list[str]) -> list[str]:
    if not urls:
        raise InvalidInput("a site needs at least one start URL")
    out = []
    for u in urls:
        try:
            out.append(http_url(u) if isinstance(u, str) else http_url(""))
        except ValueError:
            raise InvalidInput(f"start URL must be http(s): {u!r}") from None
    return out


def add_site(session: Session, name: str, start_urls: list[str], *, kind: str = "link_site",
             settings: dict[str, Any] | None = None, schedule: str | None = None,
             enabled: bool = True, replace: bool = False) -> Site:
    """Create a site (or update it when ``replace``); settings are checked against the kind."""
    # The spiders (and Scrapy) are loaded only to check a new site, not to list them.
    from crawlers.sitekinds import SITE_KINDS, validate_settings

    name = name.strip()
    if not name:
        raise InvalidInput("a site needs a name")
    if kind not in SITE_KINDS:
        raise InvalidInput(f"unknown site kind {kind!r} (known: {', '.join(SITE_KINDS)})")
    settings = validate_settings(kind, dict(settings or {}))
    urls = _check_urls(list(start_urls))
    site = session.scalar(select(Site).where(Site.name == name))
    if site is not None and not replace:
        raise Duplicate(f"site {name!r} already exists")
    if site is None:
        site = Site(name=name)
        session.add(site)
    site.kind = SiteKind(kind)
    site.start_urls = urls
    site.settings = settings
    site.schedule = check_schedule(schedule)
    site.enabled = enabled
    session.flush()
    return site


def import_sites(session: Session, path: str) -> list[Site]:
    """Add or update every ``[sites.NAME]`` block of a TOML file."""
    try:
        data = tomllib.loads(read_small_file(path).decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, UnicodeDecodeError, a 5,000-digit number
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    blocks = data.get("sites")
    if not isinstance(blocks, dict) or not blocks:
        raise ConfigError(f"{path}: no [sites.NAME] blocks")
    out = []
    for name, block in blocks.items():
        if not isinstance(block, dict):
            raise ConfigError(f"{path}: [sites.{name}] must be a table")
        unknown = set(block) - {"kind", "start_urls", "settings", "schedule", "enabled"}
        if unknown:
            raise ConfigError(f"{path}: [sites.{name}] unknown keys: {', '.join(sorted(unknown))}")
        try:
            out.append(add_site(session, name, block.get("start_urls") or [], kind=block.get("kind", "link_site"),
                                settings=block.get("settings") or {}, schedule=block.get("schedule"),
                                enabled=block.get("enabled", True), replace=True))
        except InvalidInput as exc:
            raise ConfigError(f"{path}: [sites.{name}]: {exc}") from None
    return out


def get_site(session: Session, name: str) -> Site:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        raise NotFound(f"no site named {name!r}; see `vigie sites list`")
    return site


def list_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.name)))


def site_json(site: Site) -> dict[str, Any]:
    last = max(site.crawl_runs, key=lambda r: r.id, default=None)
    return {
        "id": site.id,
        "name": site.name,
        "kind": site.kind.value,
        "start_urls": list(site.start_urls),
        "settings": dict(site.settings),
        "schedule": site.schedule,
        "enabled": site.enabled,
        "last_crawl": None if last is None else {
            "run_id": last.id, "status": last.status, "started_at": last.started_at.isoformat(),
            "pages": last.pages, "candidates_new": last.candidates_new,
            "candidates_seen": last.candidates_seen, "errors": last.errors,
        },
    }


# --------------------------------------------------------------------------- hosts


def upsert_host(session: Session, name: str, domain_patterns: list[str], *,
                abuse_contact: str | None = None, licensed_partner: bool = False,
                channel: str = "email", **fields: Any) -> Host:
    """Create or update a host by name (the demo and staff tools use this)."""
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        host = Host(name=name)
        session.add(host)
    host.domain_patterns = list(domain_patterns)
    host.abuse_contact = abuse_contact
    host.licensed_partner = licensed_partner
    host.channel = NoticeChannel(channel)
    for key, value in fields.items():
        if not hasattr(Host, key):
            raise InvalidInput(f"hosts have no field {key!r}")
        setattr(host, key, value)
    session.flush()
    return host






def scheduled_sites(session: Session) -> dict[str, tuple[str, datetime | None]]:
    """Enabled sites with a schedule: name -> (schedule, start of the last finished crawl).

    A run never finished was cut short (its scheduler was killed): it does not count, so
    the site is crawled again at once rather than an interval later."""
    last = dict(session.execute(select(CrawlRun.site_id, func.max(CrawlRun.started_at))
                                .where(CrawlRun.finished_at.is_not(None))
                                .group_by(CrawlRun.site_id)).all())
    return {site.name: (site.schedule or "", last.get(site.id))
            for site in session.scalars(select(Site).where(Site.enabled, Site.schedule.is_not(None)))}
