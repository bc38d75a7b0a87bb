"""The host registry's one rule: which host covers a URL, and a host seen for the first time.

The host of a URL is its registrable domain (``tldextract`` with its bundled
public-suffix snapshot: nothing is fetched from the internet), or ``ip:port`` for an IP
address, which is how the demo web's sites on 127.0.0.1 stay distinct. A registered host
covers the URLs its domain patterns match (the full host name, ``host:port`` or the
registrable domain, shell-style wildcards); when several do, the most specific pattern
wins. A host met for the first time is registered under its registrable domain, with no
contact: so every later URL of that domain goes to the same host, and staff see it in
``vigie hosts list``. The crawl (``crawlers.pipeline``) and the notices
(``notices.build``) both look hosts up here.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Host

# No suffix-list download, ever: the bundled snapshot is what we use.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


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


def find_host(session: Session, url: str) -> Host | None:
    """The host whose domain patterns cover ``url``; the most specific pattern wins."""
    best: tuple[int, Host] | None = None
    for host in session.scalars(select(Host).order_by(Host.id)):
        for pattern in host.domain_patterns or []:
            if matches_patterns(url, [pattern]):
                rank = len(str(pattern).replace("*", ""))
                if best is None or rank > best[0]:
                    best = (rank, host)
    return best[1] if best else None


def host_for(session: Session, url: str) -> Host:
    """The known host of ``url``, or a new one named by its registrable domain (no
    abuse contact, no settings yet)."""
    host = find_host(session, url)
    if host is not None:
        return host
    key = host_key(url) or "unknown"
    host = session.scalar(select(Host).where(Host.name == key))
    if host is None:
        host = Host(name=key, domain_patterns=[key] if key != "unknown" else [], abuse_contact=None, settings={})
        session.add(host)
        session.flush()
    return host
