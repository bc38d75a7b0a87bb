"""The registry of site kinds: one spider class per kind, named after it.

Crawl stage, used when a site is added (its settings are checked here, so a typo is an
error at ``vigie sites add`` rather than a silent default at 3 a.m.) and when a crawl
starts (the site's kind picks its spider). Adding a pirate site is data (a ``Site`` row);
adding a new *kind* of site is a spider class appended to ``BUILTINS``.
"""

from __future__ import annotations

import math
from typing import Any

from crawlers.browser import RENDER_MODES
from crawlers.spiders.base import COMMON_SETTINGS, CandidateSpider
from crawlers.spiders.link_site import LinkSiteSpider
from crawlers.spiders.site_search import SiteSearchSpider
from crawlers.spiders.sitemap import SitemapFeedSpider
from db.models import SiteKind
from foundation.errors import InvalidInput

BUILTINS: list[type[CandidateSpider]] = [LinkSiteSpider, SiteSearchSpider, SitemapFeedSpider]


def build_registry(classes: list[type[CandidateSpider]]) -> dict[str, type[CandidateSpider]]:
    registry: dict[str, type[CandidateSpider]] = {}
    for cls in classes:
        if not cls.name:
            raise ValueError(f"spider {cls.__name__} has no name")
        if cls.name in registry:
            raise ValueError(f"site kind {cls.name!r} is defined twice")
        registry[cls.name] = cls
    return registry


SITE_KINDS = build_registry(BUILTINS)
# Every kind the database can hold has a spider, and every spider a kind.
if set(SITE_KINDS) != {k.value for k in SiteKind}:
    raise RuntimeError("db.models.SiteKind and crawlers.sitekinds.BUILTINS disagree")


def spider_for(kind: str) -> type[CandidateSpider]:
    try:
        return SITE_KINDS[kind]
    except KeyError:
        raise InvalidInput(f"unknown site kind {kind!r} (known: {', '.join(SITE_KINDS)})") from None


def validate_settings(kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Check a site's settings against its kind; returns them unchanged or raises."""
    import re

    spider = spider_for(kind)
    allowed = {**COMMON_SETTINGS, **spider.SETTINGS}
    for key, value in settings.items():
        if key not in allowed:
            raise InvalidInput(f"unknown setting {key!r} for a {kind} site "
                               f"(known: {', '.join(sorted(allowed))})")
        types = allowed[key]
        # bool is an int in Python; an int setting given true/false is a mistake.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise InvalidInput(f"setting {key!r} must be a {names}, not {type(value).__name__}")
        # Every number is a count, a size, a delay or a time: nan, inf, a negative or
        # one past TOML's 64-bit integers is a mistake (nan once passed "<= 0" checks).
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                0 <= value < 2**63 and math.isfinite(value)):
            raise InvalidInput(f"setting {key!r} must be a finite number of at least 0")
        if key.endswith("_pattern"):
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidInput(f"setting {key!r} is not a valid regular expression: {exc}") from None
    if "render" in settings and settings["render"] not in RENDER_MODES:
        raise InvalidInput(f"setting 'render' must be one of {', '.join(RENDER_MODES)}, "
                           f"not {settings['render']!r}")
    for key in ("render_timeout_s", "render_max_requests", "render_max_bytes", "render_max_pages"):
        if key in settings and settings[key] <= 0:
            raise InvalidInput(f"setting {key!r} must be positive")
    for key in spider.REQUIRED:
        if key not in settings:
            raise InvalidInput(f"a {kind} site needs the setting {key!r}")
    if kind == "site_search" and "{query}" not in settings["search_url"]:
        raise InvalidInput("setting 'search_url' must contain {query}")
    return settings
