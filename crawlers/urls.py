"""URL identity for the crawl stage: canonical URLs and the host a URL belongs to.

A candidate is keyed by its canonical URL so the same page reached through a listing,
a search result and a feed (each adding its own ``utm_*`` or ``ref`` parameter) is one
row. The host of a URL is its registrable domain (``tldextract`` with its bundled
public-suffix snapshot: nothing is fetched from the internet), or ``ip:port`` for an
IP address, which is how the demo web's sites on 127.0.0.1 stay distinct.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract
from w3lib.url import canonicalize_url, url_query_cleaner

# Query parameters that say who sent the visitor, not what the page is.
TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|igshid|"
    r"_ga|_gl|ref|ref_src|referrer|source|share|si|spm|trk|clickid|aff|aff_id|affiliate)$",
    re.IGNORECASE,
)

# No suffix-list download, ever: the bundled snapshot is what we use.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def canonical_url(url: str) -> str:
    """The URL without fragment and tracking parameters, with sorted query and
    normalised escaping (w3lib), so equal pages get equal keys."""
    parts = urlsplit(url)
    names = [kv.split("=", 1)[0] for kv in parts.query.split("&") if kv]
    tracking = [n for n in names if TRACKING_PARAMS.match(n)]
    if tracking:
        url = url_query_cleaner(url, tracking, remove=True, unique=False, keep_fragments=False)
    return canonicalize_url(url, keep_fragments=False)


@lru_cache(maxsize=4096)
def host_key(url: str) -> str:
    """The name a host is known by: ``example.co.uk``, or ``127.0.0.1:8080`` for an IP."""
    parts = urlsplit(url)
    hostname = (parts.hostname or "").lower().rstrip(".")
    ext = _EXTRACT(hostname)
    if ext.suffix and ext.domain:
        return f"{ext.domain}.{ext.suffix}"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{hostname}:{port}" if port and port != default else hostname


def host_names(url: str) -> list[str]:
    """Every name a host pattern may be written against: full hostname, hostname:port,
    registrable domain."""
    parts = urlsplit(url)
    hostname = (parts.hostname or "").lower().rstrip(".")
    names = [hostname, host_key(url)]
    if parts.port:
        names.append(f"{hostname}:{parts.port}")
    return list(dict.fromkeys(n for n in names if n))


def matches_patterns(url: str, patterns: list[str]) -> bool:
    names = host_names(url)
    return any(fnmatch.fnmatchcase(n, str(p).lower()) for p in patterns for n in names)
