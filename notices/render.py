"""Rendering: the notice context, its text and HTML bodies, from Jinja2 templates.

The context is built only from our own rows (the match, its candidate's evidence, the
title and its offers, the configured notifier); anything that came from a crawled page
(URLs) is data in it, escaped by the HTML templates' autoescape and never used in a mail
header (``notices.mail``). Templates live in ``notices/templates/``, one pair (text,
HTML) per regime and language, extending a per-language base that lays out the evidence
and the legitimate offers. Each URL says what it is to the host (``ItemRole``): the video
stored on its service, or a page of its site linking to or embedding a video stored
elsewhere. Called by ``notices.build``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date as date_type
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from db.models import Host, ItemRole, Match, Offer, OfferKind, ReviewState, RightsHolder
from db.rights import Party, offers_in
from foundation.timeutil import as_utc

TEMPLATES = Path(__file__).parent / "templates"

_ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

KIND_LABELS: dict[str, dict[OfferKind, str]] = {
    "en": {OfferKind.VOD_RENTAL: "VOD rental", OfferKind.VOD_PURCHASE: "VOD purchase",
           OfferKind.SVOD: "subscription streaming", OfferKind.CINEMA: "in cinemas",
           OfferKind.OTHER: "other"},
    "fr": {OfferKind.VOD_RENTAL: "VOD location", OfferKind.VOD_PURCHASE: "VOD achat",
           OfferKind.SVOD: "SVOD (abonnement)", OfferKind.CINEMA: "en salle",
           OfferKind.OTHER: "autre"},
}

# Keys the crawlers may use for the page hash and fetch time in Candidate.evidence.
_HASH_KEYS = ("sha256", "body_sha256", "page_sha256")
_TIME_KEYS = ("fetched_at", "fetch_time", "captured_at")



def fmt_time(dt: datetime | str | None) -> str:
    if dt is None:
        return "unknown"
    if isinstance(dt, str):
        return dt
    return as_utc(dt).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")  # type: ignore[union-attr]


def timecode(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    ms = int(round(max(seconds, 0.0) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"


def offers_for(offers: Iterable[Offer], territory: str | None, day: date_type | None = None) -> list[Offer]:
    """The offers valid in ``territory`` (ISO 3166-1 alpha-2; all territories if unknown)
    on ``day`` (the notice's date: a rental window that closed is not shown)."""
    return offers_in(offers, territory, day)


NOTIFIER_KEYS = ("legal_name", "address", "phone", "email", "signature", "country")


def notifier_block(configured: Mapping[str, str], org: RightsHolder | None) -> dict[str, str]:
    """The complainant: the notifying organisation, its empty contact details filled from
    ``[notifier]`` (the installation, whose mailbox receives the replies). An organisation
    with no contact details at all (a holder the 0013 migration made from a
    ``rights_owner`` name) leaves the configured notifier as the complainant, as before
    holders existed, rather than lending it someone else's signatory; each work still names
    its rights holder."""
    base = {k: str(configured.get(k, "") or "") for k in NOTIFIER_KEYS}
    if org is None or not any((org.address, org.email, org.signatory, org.phone)):
        return base
    own = {"legal_name": org.legal_name, "address": org.address, "phone": org.phone, "email": org.email,
           "signature": org.signatory, "country": org.country}
    return {k: (own.get(k) or base[k]) for k in NOTIFIER_KEYS}


def _mandate_view(party: Party) -> dict[str, Any]:
    m = party.mandate
    assert m is not None
    return {"principal": party.holder.legal_name, "mandate_id": m.id,
            "valid_from": m.valid_from.isoformat(),
            "valid_until": m.valid_until.isoformat() if m.valid_until else "",
            "document_sha256": m.document_sha256 or ""}


def evidence_of(match: Match) -> tuple[str | None, str | None]:
    ev = match.candidate.evidence or {}
    digest = next((str(ev[k]) for k in _HASH_KEYS if ev.get(k)), None)
    fetched = next((str(ev[k]) for k in _TIME_KEYS if ev.get(k)), None)
    return digest, fetched


def source_address(match: Match, url: str) -> str | None:
    """The server address ``url`` was fetched from, as the crawler recorded it: the page's
    (``evidence["ip_address"]``), or that of an embed fetched on the same host name (a
    player page or a video file the crawl followed); an address literal in the URL
    itself. None when nothing fetched from that host name (a CDN only the matcher read)."""
    import ipaddress

    ev = match.candidate.evidence or {}
    name = (urlsplit(url).hostname or "").lower()
    if not name:
        return None
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    seen = [(ev.get("url") or match.candidate.page_url, ev.get("ip_address")), (match.candidate.page_url,
            ev.get("ip_address"))]
    seen += [(e.get("url"), e.get("ip_address")) for e in ev.get("embeds") or [] if isinstance(e, dict)]
    for where, ip in seen:
        if ip and isinstance(where, str) and (urlsplit(where).hostname or "").lower() == name:
            return str(ip)
    return None


def _reference_duration(match: Match) -> float | None:
    """The length of the catalogue reference the match is against (its duration column
    only: the row also holds every hash), None when unknown."""
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    from db.models import ReferenceVideo

    session = object_session(match)
    if session is None or match.reference_id is None:
        return None
    value = session.scalar(select(ReferenceVideo.duration_s).where(ReferenceVideo.id == match.reference_id))
    return float(value) if value else None


def is_media_url(match: Match, url: str) -> bool:
    """Whether ``url`` is one of the match's media URLs rather than its page."""
    c = match.candidate
    return url != c.page_url and (url == match.media_url or url in (c.media_urls or []))


@dataclass(frozen=True)
class Target:
    """One URL of a notice: the match that proves it, the URL, and what it is to the host.

    A pirated film on a link site is two takedowns: the host storing the video (its media
    URL) and the site whose page links to or embeds it (the page URL). When both are the
    same host, one ``HOSTING`` target with the page URL carries the media URLs as evidence.
    """

    match: Match
    url: str
    role: ItemRole = ItemRole.HOSTING

    @classmethod
    def page(cls, match: Match) -> Target:
        """The candidate's page as the host's own content (one host for page and video)."""
        return cls(match, match.candidate.page_url, ItemRole.HOSTING)


def build_context(
    *,
    regime: str,
    regime_title: str,
    kind: str,
    language: str,
    host: Host,
    recipient_label: str,
    notifier: Mapping[str, str],
    targets: Sequence[Target],
    reference: str,
    date: datetime,
    first_sent: datetime | None = None,
    parties: Mapping[int, Party] | None = None,
) -> dict[str, Any]:
    """Everything a template, the validator and the ACNS/X-ARF builders need.

    ``parties`` gives, per title id, who notifies for it (``db.rights.notifier_for``):
    one notifier for the whole notice, each work naming its own rights holder, and an
    agent's notice listing the mandates it acts under."""
    parties = parties or {}
    works: dict[int, dict[str, Any]] = {}
    labels = KIND_LABELS.get(language, KIND_LABELS["en"])
    day = as_utc(date).date()  # type: ignore[union-attr]
    for tg in sorted(targets, key=lambda tg: (tg.match.title_id, tg.match.id, tg.role.value)):
        m = tg.match
        t = m.title
        w = works.get(t.id)
        if w is None:
            w = works[t.id] = {
                "title_id": t.id,
                "title": t.title,
                "year": t.year,
                "rights_owner": (parties[t.id].holder.legal_name if t.id in parties
                                 else t.rights_owner or notifier.get("legal_name")),
                "offers": [
                    {"provider": o.provider or _domain(o.url), "url": o.url, "kind": o.kind.value,
                     "kind_label": labels[o.kind]}
                    for o in offers_for(t.offers, host.jurisdiction, day)
                ],
                "items": [],
            }
        digest, fetched = evidence_of(m)
        c = m.candidate
        is_page = not is_media_url(m, tg.url)
        w["items"].append({
            "match_id": m.id,
            "url": tg.url,
            "role": tg.role.value,
            # A page (ours to remove or not) lists the media it carries; a media URL says
            # on which page we found it, since the page is what the evidence hash is of.
            "media_urls": [u for u in (c.media_urls or []) if isinstance(u, str) and u != c.page_url]
            if is_page else [],
            "found_on": None if is_page else c.page_url,
            "found_at": fmt_time(c.first_seen),
            "found_at_iso": as_utc(c.first_seen).isoformat() if c.first_seen else None,  # type: ignore[union-attr]
            "score": round(float(m.score), 3),
            "matched_s": round(float(m.matched_s), 1),
            "ref_start_s": m.ref_start_s,
            "ref_end_s": m.ref_end_s,
            "ref_start_tc": timecode(m.ref_start_s),
            "ref_end_tc": timecode(m.ref_end_s),
            "cand_start_tc": timecode(m.cand_start_s),
            "cand_end_tc": timecode(m.cand_end_s),
            "evidence_sha256": digest,
            "fetched_at": fetched or "unknown",
            # For the machine-readable parts: where the URL is served from, the media
            # file's own hash when the matcher read it whole (never the page's), the
            # catalogue reference matched, and whether a human confirmed the match.
            "source_ip": source_address(m, tg.url),
            "source_port": _port(tg.url),
            "media_sha256": (m.details or {}).get("media_sha256"),
            "reference_id": m.reference_id,
            "reference_duration_s": _reference_duration(m),
            "reviewed": m.review is ReviewState.APPROVED,
        })
    return {
        "regime": regime,
        "regime_title": regime_title,
        "kind": kind,
        "language": language,
        "reference": reference,
        "date": fmt_time(date),
        "date_iso": as_utc(date).isoformat(),  # type: ignore[union-attr]
        "first_sent": fmt_time(first_sent) if first_sent else "",
        "recipient_label": recipient_label,
        "host": {"name": host.name, "jurisdiction": host.jurisdiction, "kind": host.kind},
        "notifier": notifier_block(notifier, next(iter(parties.values())).notifier if parties else None),
        # An agent acting for the holders: one line per mandate (principal, dates, document hash).
        "on_behalf_of": _on_behalf_of(parties),
        "works": list(works.values()),
        "url_count": sum(len(w["items"]) for w in works.values()),
        # What notices.machine will attach: ACNS needs a known server address.
        "machine_parts": "ACNS 2.0 XML, X-ARF v4 JSON" if any(
            it["source_ip"] for w in works.values() for it in w["items"]) else "X-ARF v4 JSON",
    }


def _on_behalf_of(parties: Mapping[int, Party]) -> list[dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    for p in parties.values():
        if p.mandate is not None and p.mandate.id not in seen:
            seen[p.mandate.id] = _mandate_view(p)
    return sorted(seen.values(), key=lambda v: (v["principal"], v["mandate_id"]))


def _domain(url: str) -> str:
    return urlsplit(url).hostname or url


def _port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str


def render(ctx: Mapping[str, Any]) -> Rendered:
    base = f"{ctx['regime']}.{ctx['language']}"
    text = _ENV.get_template(f"{base}.txt.j2").render(ctx)
    html = _ENV.get_template(f"{base}.html.j2").render(ctx)
    return Rendered(text=text, html=html)
