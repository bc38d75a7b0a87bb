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

A host's jurisdiction picks the legal regime and the language of its notices
(``notices.regimes``), so a host registered on first sight gets one from what is known,
in this order, the first that answers winning, its source recorded in
``Host.jurisdiction_source``:

1. ``staff``: set by hand (``vigie hosts add --jurisdiction``, the hosts admin page);
   never overwritten by a guess;
2. ``cctld``: the country-code top-level domain (``.fr`` -> FR, ``.co.uk`` -> GB);
   generic TLDs (``.com``, ``.net``, ``.io``...) say nothing;
3. ``language``: the language of a crawled page of the host (``<html lang>``, else the
   ``Content-Language`` header): its region when it names one (``fr-CA`` -> CA), else
   the country a language is mostly the official one of (``de`` -> DE); English,
   Spanish, Portuguese, Arabic... say nothing;
4. ``default``: ``[notices] default_jurisdiction`` (``notices.build`` applies it when
   nothing above answered).

The notice language follows the page language when it is one the templates have.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Host


@lru_cache(maxsize=1)
def _extract() -> Any:
    """tldextract's extractor, made on first use (importing tldextract costs a command's
    start 60 ms, and most commands never read a URL's host). No suffix-list download,
    ever: the bundled snapshot is what we use."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


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
    ext = _extract()(hostname)
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
    abuse contact, no settings yet; a jurisdiction from its ccTLD when it has one)."""
    host = find_host(session, url)
    if host is not None:
        return host
    key = host_key(url) or "unknown"
    host = session.scalar(select(Host).where(Host.name == key))
    if host is None:
        host = Host(name=key, domain_patterns=[key] if key != "unknown" else [], abuse_contact=None, settings={})
        country = cctld_country(url)
        if country:
            host.jurisdiction, host.jurisdiction_source = country, "cctld"
            host.language = _COUNTRY_LANGUAGE.get(country, "en")
        session.add(host)
        session.flush()
    return host


# --------------------------------------------------------------------------- jurisdiction

JURISDICTION_SOURCES = ("staff", "cctld", "language", "default")

# ccTLDs that are not their country's (sold worldwide as generic names): no guess.
_GENERIC_CCTLDS = frozenset("io co tv me ws cc fm am ai gg ly to nu sh ac la su tk ml ga cf gq".split())
# ccTLDs whose ISO 3166-1 code differs.
_CCTLD_ISO = {"uk": "GB"}
# Languages that are the official language of essentially one country: a page in one
# of them says where its audience (and usually its operator) is. Languages spoken in
# many countries (en, es, pt, ar, ru, zh...) are deliberately absent.
_LANGUAGE_COUNTRY = {
    "fr": "FR", "de": "DE", "it": "IT", "nl": "NL", "pl": "PL", "cs": "CZ", "sk": "SK",
    "hu": "HU", "ro": "RO", "bg": "BG", "hr": "HR", "sl": "SI", "da": "DK", "sv": "SE",
    "fi": "FI", "et": "EE", "lv": "LV", "lt": "LT", "el": "GR", "ja": "JP", "ko": "KR",
    "tr": "TR", "uk": "UA", "nb": "NO", "no": "NO", "is": "IS",
}
_LANG_TAG = re.compile(r"^([a-z]{2,3})(?:-[a-z]{4})?(?:-([a-z]{2}|[0-9]{3}))?(?:-.*)?$")


def cctld_country(url: str) -> str | None:
    """The country of ``url``'s ccTLD (ISO 3166-1 alpha-2), None for a generic TLD or an
    IP address. For a public suffix of several labels the last one counts (co.uk -> GB)."""
    _, hostname, _ = _host_port(url)
    suffix = _extract()(hostname).suffix
    tld = suffix.rsplit(".", 1)[-1] if suffix else ""
    if len(tld) != 2 or not tld.isalpha() or tld in _GENERIC_CCTLDS:
        return None
    return _CCTLD_ISO.get(tld, tld.upper())


def parse_language(tag: str | None) -> tuple[str, str | None] | None:
    """(language, region or None) of a BCP 47 tag such as ``fr``, ``fr-CA``,
    ``zh-Hant-TW``; the first of a ``Content-Language`` list; None if unreadable."""
    if not tag:
        return None
    first = tag.split(",", 1)[0].strip().lower().replace("_", "-")
    m = _LANG_TAG.match(first)
    if not m:
        return None
    region = m.group(2).upper() if m.group(2) and m.group(2).isalpha() else None
    return m.group(1), region


def language_country(tag: str | None) -> str | None:
    """The country a page language points to: its region, else the one country the
    language is mostly spoken in; None for languages of many countries."""
    parsed = parse_language(tag)
    if parsed is None:
        return None
    lang, region = parsed
    return region or _LANGUAGE_COUNTRY.get(lang)


def locate_host(host: Host, url: str, page_language: str | None = None) -> bool:
    """Give ``host`` the best jurisdiction the order above allows from one of its URLs and,
    when it is a crawled page, that page's language: for hosts registered before
    jurisdictions were guessed, and hosts first met through another URL. Staff's and a
    ccTLD's answers are kept. Returns whether anything changed."""
    if host.jurisdiction_source in ("staff", "cctld") or (host.jurisdiction and not host.jurisdiction_source):
        return False
    country = cctld_country(url)
    if country:
        host.jurisdiction, host.jurisdiction_source = country, "cctld"
        host.language = _COUNTRY_LANGUAGE.get(country, host.language or "en")
        return True
    return note_page_language(host, page_language)


def note_page_language(host: Host, tag: str | None) -> bool:
    """Use a crawled page's language for a host whose jurisdiction nothing better gave
    (no staff setting, no ccTLD): sets the jurisdiction (source ``language``) and the
    notice language when the templates have it. Returns whether anything changed."""
    if host.jurisdiction_source in ("staff", "cctld") or (host.jurisdiction and not host.jurisdiction_source):
        return False
    parsed = parse_language(tag)
    country = language_country(tag)
    changed = False
    if country and host.jurisdiction != country:
        host.jurisdiction, host.jurisdiction_source = country, "language"
        changed = True
    if parsed and parsed[0] in NOTICE_LANGUAGES and host.language != parsed[0] and country:
        host.language = parsed[0]
        changed = True
    return changed


# The languages notice templates exist in (notices.regimes.LANGUAGES says the same for
# the notices package; db cannot import it).
NOTICE_LANGUAGES = ("en", "fr")
_COUNTRY_LANGUAGE = {c: lang for lang, c in _LANGUAGE_COUNTRY.items() if lang in NOTICE_LANGUAGES}


def apply_default_jurisdiction(host: Host, default: str | None) -> bool:
    """The last resort of the order above: a host whose jurisdiction is still unknown
    gets the configured default (source ``default``). Returns whether it changed."""
    if host.jurisdiction or not default:
        return False
    host.jurisdiction, host.jurisdiction_source = default.upper(), "default"
    host.language = host.language or _COUNTRY_LANGUAGE.get(default.upper(), "en")
    return True
