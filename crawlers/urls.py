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
from urllib.parse import urlsplit, urlunsplit

import tldextract
from w3lib.url import canonicalize_url

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
    normalised escaping (w3lib), so equal pages get equal keys. ValueError for a string
    that cannot be read as a URL at all.

    Tracking parameters are dropped by their canonical names: ``utm%5Fsource`` or
    ``utm_sou<TAB>rce`` become ``utm_source`` once canonical (found by fuzzing)."""
    canon = canonicalize_url(url, keep_fragments=False)
    parts = urlsplit(canon)
    kept = [kv for kv in parts.query.split("&") if kv and not TRACKING_PARAMS.match(kv.split("=", 1)[0])]
    query = "&".join(kept)
    if query == parts.query:
        return canon
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _host_port(url: str) -> tuple[str, str, int | None]:
    """(scheme, host name, port) as far as ``url`` can be read: a URL that does not
    parse (``http://[::1``) or an impossible port (``:99999``) gives what there is, since
    a hostile page's URL must not stop the crawl of that page (found by fuzzing)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", "", None
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port


@lru_cache(maxsize=4096)
def host_key(url: str) -> str:
    """The name a host is known by: ``example.co.uk``, or ``127.0.0.1:8080`` for an IP."""
    scheme, hostname, port = _host_port(url)
    ext = _EXTRACT(hostname)
    if ext.suffix and ext.domain:
        return f"{ext.domain}.{ext.suffix}"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{hostname}:{port}" if port and port != default else hostname


def host_names(url: str) -> list[str]:
    """Every name a host pattern may be written against: full hostname, hostname:port,
    registrable domain."""
    _, hostname, port = _host_port(url)
    names = [hostname, host_key(url)]
    if port:
        names.append(f"{hostname}:{port}")
    return list(dict.fromkeys(n for n in names if n))


def matches_patterns(url: str, patterns: list[str]) -> bool:
    names = host_names(url)
    return any(fnmatch.fnmatchcase(n, str(p).lower()) for p in patterns for n in names)
