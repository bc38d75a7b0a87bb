"""URL identity for the crawl stage: canonical URLs.

A candidate is keyed by its canonical URL so the same page reached through a listing,
a search result and a feed (each adding its own ``utm_*`` or ``ref`` parameter) is one
row. The host a URL belongs to is ``db.hosts``'s business.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import canonicalize_url

# Query parameters that say who sent the visitor, not what the page is.
TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|igshid|"
    r"_ga|_gl|ref|ref_src|referrer|source|share|si|spm|trk|clickid|aff|aff_id|affiliate)$",
    re.IGNORECASE,
)

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
