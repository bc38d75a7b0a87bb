"""The host registry: who hosts what, how to reach their abuse desk, what they are owed.

A Host row says which domains it covers, its abuse contact and channel, jurisdiction
(also the territory used to pick legitimate offers), language, whether it is a
licensed partner (never notified) and whether its notices need a staff approval.
``Host.settings`` carries the per-host knobs: ``upstream_contact`` (escalation),
``grace_hours``, ``rate_per_hour``, ``regime``, ``form_url`` (the host's abuse web
form, for its submission tasks). ``Host.removal_pattern`` is the host's own "content
removed" page (``notices.verify``). Contact discovery, when no contact is configured:
the site's RFC 9116 ``/.well-known/security.txt`` ``Contact: mailto:`` (not past its
``Expires``), else RFC 2142 ``abuse@domain``, marked as a guess (its notices wait for
staff unless ``[notices] allow_guessed_contacts``). Where a host's jurisdiction comes
from: ``db.hosts``. Used by ``vigie hosts``, the hosts admin page and ``notices.build``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Host, NoticeChannel
from notices.http import fetch
from foundation.errors import InvalidInput, NotFound
from foundation.netsafe import http_url
from foundation.timeutil import utc_now

# Deliberately narrower than RFC 5322: an address we put in a header must be plain.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)+$")
_DOMAIN = re.compile(r"^(?:\*\.)?[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?)*$")


def valid_email(addr: str | None) -> str | None:
    """The address if it is a plain, header-safe mailbox; None otherwise."""
    if not addr:
        return None
    addr = addr.strip()
    if len(addr) > 254 or not _EMAIL.fullmatch(addr):
        return None
    return addr


def check_contact(addr: str | None, what: str = "abuse contact", *, allow_empty: bool = False) -> str | None:
    """The address, stripped, if it is a plain, header-safe mailbox (no CR/LF, no display
    name); InvalidInput otherwise. Empty means none when ``allow_empty``. The one check of
    a host's contacts: ``vigie hosts add`` (``add_host``) and the admin host form
    (``webapp.actions.set_host``) both call it."""
    if allow_empty and (addr is None or not addr.strip()):
        return None
    ok = valid_email(addr)
    if ok is None:
        raise InvalidInput(f"{what} must be a plain email address: {addr!r}")
    return ok


def check_removal_pattern(pattern: str | None) -> str | None:
    """The pattern, stripped, if it is a usable regular expression (InvalidInput
    otherwise); empty means none. One check for ``vigie hosts add`` and the hosts page."""
    pattern = (pattern or "").strip()
    if not pattern:
        return None
    if len(pattern) > 500:
        raise InvalidInput("a removal-page pattern is at most 500 characters")
    try:
        compiled = re.compile(pattern, re.I)
    except re.error as exc:
        raise InvalidInput(f"removal-page pattern is not a regular expression: {exc}") from None
    if compiled.search(""):
        raise InvalidInput("removal-page pattern matches every page (it matches the empty text)")
    return pattern


def check_jurisdiction(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; InvalidInput otherwise."""
    value = (value or "").strip()
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise InvalidInput(f"jurisdiction must be an ISO 3166-1 alpha-2 code: {value!r}")
    return value.upper()


def add_host(
    session: Session,
    name: str,
    *,
    patterns: Sequence[str] = (),
    contact: str | None = None,
    channel: str | None = None,
    jurisdiction: str | None = None,
    language: str | None = None,
    kind: str | None = None,
    licensed_partner: bool | None = None,
    needs_approval: bool | None = None,
    settings: dict[str, Any] | None = None,
    removal_pattern: str | None = None,
) -> tuple[Host, bool]:
    """Create host ``name``, or update the fields given; returns (host, created)."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise InvalidInput("a host name must be 1 to 200 characters")
    pats = [p.strip().lower() for p in patterns if p.strip()]
    for p in pats:
        if not _DOMAIN.match(p):
            raise InvalidInput(f"not a domain pattern: {p!r} (use example.com or *.example.com)")
    if contact is not None:
        contact = check_contact(contact)
    if jurisdiction is not None:
        jurisdiction = check_jurisdiction(jurisdiction)
    try:
        chan = NoticeChannel(channel) if channel is not None else None
    except ValueError:
        raise InvalidInput(f"unknown channel {channel!r} (known: "
                           f"{', '.join(c.value for c in NoticeChannel)})") from None

    host = session.scalar(select(Host).where(Host.name == name))
    created = host is None
    if host is None:
        host = Host(name=name, domain_patterns=[], settings={})
        session.add(host)
    if pats:
        host.domain_patterns = sorted(set(host.domain_patterns or []) | set(pats))
    if contact is not None:
        host.abuse_contact = contact
    if chan is not None:
        host.channel = chan
    if jurisdiction is not None:
        host.jurisdiction, host.jurisdiction_source = jurisdiction.upper(), "staff"
    if removal_pattern is not None:
        host.removal_pattern = check_removal_pattern(removal_pattern)
    if language is not None:
        host.language = language.lower()
    if kind is not None:
        host.kind = kind
    if licensed_partner is not None:
        host.licensed_partner = licensed_partner
    if needs_approval is not None:
        host.needs_approval = needs_approval
    if settings:
        if settings.get("form_url") is not None:
            try:
                settings = {**settings, "form_url": http_url(str(settings["form_url"]))}
            except ValueError as exc:
                raise InvalidInput(f"form URL: {exc}") from None
        if settings.get("upstream_contact") is not None:
            settings = {**settings, "upstream_contact": check_contact(settings["upstream_contact"],
                                                                      "upstream contact")}
        host.settings = {**(host.settings or {}), **settings}
    session.flush()
    return host, created


def list_hosts(session: Session) -> list[Host]:
    return list(session.scalars(select(Host).order_by(Host.name)))


def get_host(session: Session, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound(f"no host named {name!r}")
    return host






def host_json(h: Host) -> dict[str, Any]:
    return {
        "id": h.id, "name": h.name, "domain_patterns": list(h.domain_patterns or []),
        "abuse_contact": h.abuse_contact, "channel": h.channel.value,
        "jurisdiction": h.jurisdiction, "jurisdiction_source": h.jurisdiction_source,
        "language": h.language, "kind": h.kind, "removal_pattern": h.removal_pattern,
        "licensed_partner": h.licensed_partner, "needs_approval": h.needs_approval,
        "settings": dict(h.settings or {}),
    }


@dataclass(frozen=True)
class Contact:
    address: str | None
    source: str            # configured | security.txt | guess | none
    detail: str = ""


def security_txt_expires(body: str) -> datetime | None:
    """The ``Expires:`` date of an RFC 9116 file (RFC 3339), None when absent or unreadable."""
    for line in body.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "expires":
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None
            return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return None


def parse_security_txt(body: str, *, now: datetime | None = None) -> str | None:
    """The first ``Contact: mailto:`` address of an RFC 9116 file that is a valid mailbox;
    None when the file is past its ``Expires`` (RFC 9116 2.5.5: stale data, not to be
    used). A file without ``Expires`` is still read: it is malformed, not stale."""
    expires = security_txt_expires(body)
    if expires is not None and expires <= (now or utc_now()):
        return None
    for line in body.splitlines():
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() != "contact":
            continue
        value = value.strip()
        if value.lower().startswith("mailto:"):
            addr = valid_email(value[7:].split("?", 1)[0])
            if addr:
                return addr
    return None


def bad_contact(host: Host, addr: str | None) -> str | None:
    """Why ``addr`` is a bad contact of ``host`` (a bounce read by ``inbox``), or None."""
    bad = (host.settings or {}).get("bad_contacts") or {}
    entry = bad.get(addr.lower()) if addr and isinstance(bad, dict) else None
    if entry is None:
        return None
    return str(entry.get("reason") or "bounced") if isinstance(entry, dict) else "bounced"


def resolve_contact(host: Host, *, origin: str | None, discover: bool, timeout: float,
                    allow_loopback: bool, now: datetime | None = None) -> Contact:
    """Configured contact → security.txt → abuse@domain (a guess), in that order; an
    address that bounced (``bad_contact``) is none: staff set a new one.

    A contact found in a security.txt is remembered (``Host.settings``) with the file's
    ``Expires``; past it, the file is read again (and an expired file is not used)."""
    contact = _resolve_contact(host, origin=origin, discover=discover, timeout=timeout,
                               allow_loopback=allow_loopback, now=now or utc_now())
    why = bad_contact(host, contact.address)
    if why:
        return Contact(None, "none", f"contact {contact.address} bounced ({why[:200]}): set a new one")
    return contact


def _resolve_contact(host: Host, *, origin: str | None, discover: bool, timeout: float,
                     allow_loopback: bool, now: datetime) -> Contact:
    configured = valid_email(host.abuse_contact)
    if configured:
        return Contact(configured, "configured")
    if host.abuse_contact:
        return Contact(None, "none", f"configured contact {host.abuse_contact!r} is not a valid address")
    # The validated form, not the stored one: valid_email strips, and what it strips
    # (a CR, an LF, any control character) must not reach a To header (found by fuzzing).
    settings = host.settings or {}
    cached = valid_email(settings.get("discovered_contact"))
    if cached and not _cache_expired(settings, now):
        return Contact(cached, settings.get("contact_source", "guess"), str(settings.get("contact_expires") or ""))
    domain = None
    parts = None
    if origin:
        try:
            parts = urlsplit(origin)
        except ValueError:  # "http://[x": an origin that is no URL (found by fuzzing)
            parts = None
        domain = parts.hostname if parts else None
    if not domain:
        domain = next((p for p in host.domain_patterns or [] if "*" not in p), None)
    if discover and parts is not None:
        resp = fetch(f"{parts.scheme}://{parts.netloc}/.well-known/security.txt",
                     timeout=timeout, allow_loopback=allow_loopback)
        if resp.status == 200:
            body = resp.body.decode("utf-8", "replace")
            addr = parse_security_txt(body, now=now)
            if addr:
                expires = security_txt_expires(body)
                return Contact(addr, "security.txt", expires.isoformat() if expires else "")
    if domain and not _is_ip(domain):
        addr = valid_email(f"abuse@{_registrable(domain)}")
        if addr:
            return Contact(addr, "guess", "RFC 2142 abuse@ address, not confirmed by the host")
    return Contact(None, "none", "no abuse contact configured or discoverable")


def _cache_expired(settings: dict[str, Any], now: datetime) -> bool:
    """A remembered security.txt contact past the file's Expires (or a guess remembered
    when discovery failed, which a later discovery may now improve: kept, as before)."""
    if settings.get("contact_source") != "security.txt" or not settings.get("contact_expires"):
        return False
    try:
        expires = datetime.fromisoformat(str(settings["contact_expires"]))
    except ValueError:
        return True
    return (expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)) <= now


def remember_contact(host: Host, contact: Contact) -> None:
    """Keep a discovered or guessed contact on the host (``Host.settings``), with the
    security.txt's Expires, so the next notice does not fetch it again."""
    if contact.source not in ("security.txt", "guess") or host.abuse_contact:
        return
    extra = {"contact_expires": contact.detail} if contact.source == "security.txt" and contact.detail else {}
    settings = {k: v for k, v in (host.settings or {}).items() if k != "contact_expires"}
    host.settings = {**settings, "discovered_contact": contact.address, "contact_source": contact.source, **extra}


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@functools.cache
def _extractor() -> Any:
    # tldextract ships a Public Suffix List snapshot; suffix_list_urls=() means no fetch.
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=())


def _registrable(domain: str) -> str:
    ext = _extractor()(domain)
    return getattr(ext, "top_domain_under_public_suffix", None) or domain
