"""Rights holders, agents and mandates, titles' rights per territory, and offers with
their territory and release window: the library under ``vigie holders``, ``vigie
mandates`` and ``vigie catalog add --holder/--offer``.

Library functions over a session the caller opened; they flush and audit, never commit.
The rules that use these rows (who notifies, what staff see) live in ``db.rights``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from db.auditchain import audit as record_audit
from db.models import (
    Mandate,
    MandateTitle,
    Offer,
    OfferKind,
    OrgKind,
    RightsHolder,
    Title,
    TitleRights,
)
from db.rights import WORLDWIDE, holder_named, in_window, normalise_territory
from foundation.errors import Duplicate, InvalidInput, NotFound

# The words of `--kind` (what a viewer does) and the stored kinds.
OFFER_KINDS: dict[str, OfferKind] = {
    "rental": OfferKind.VOD_RENTAL,
    "purchase": OfferKind.VOD_PURCHASE,
    "subscription": OfferKind.SVOD,
    "cinema": OfferKind.CINEMA,
    "other": OfferKind.OTHER,
}
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_LOGO_BYTES = 512 * 1024


def territory(field: str) -> str:
    """A territory field as stored (``*`` or sorted ISO codes); InvalidInput otherwise."""
    try:
        return normalise_territory(field)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _window(valid_from: date | None, valid_until: date | None, what: str) -> None:
    if valid_from and valid_until and valid_until < valid_from:
        raise InvalidInput(f"{what}: ends ({valid_until}) before it starts ({valid_from})")


def offer_kind(word: str) -> OfferKind:
    """An offer kind from a CLI word (rental, subscription...) or a stored value (svod...)."""
    key = word.strip().lower()
    if key in OFFER_KINDS:
        return OFFER_KINDS[key]
    try:
        return OfferKind(key)
    except ValueError:
        raise InvalidInput(f"unknown offer kind {word!r} (known: {', '.join(OFFER_KINDS)})") from None


@dataclass(frozen=True)
class OfferSpec:
    """A legitimate offer to add: where, what kind, for which territory, when."""

    url: str
    territory: str = WORLDWIDE
    kind: OfferKind = OfferKind.VOD_RENTAL
    valid_from: date | None = None
    valid_until: date | None = None
    provider: str | None = None

    def checked(self) -> OfferSpec:
        from stages.catalog import validate_offer_url

        _window(self.valid_from, self.valid_until, f"offer {self.url}")
        return OfferSpec(validate_offer_url(self.url), territory(self.territory), self.kind, self.valid_from,
                         self.valid_until, self.provider)

    def row(self) -> Offer:
        return Offer(url=self.url, provider=self.provider or urlsplit(self.url).hostname, kind=self.kind,
                     territory=self.territory, valid_from=self.valid_from, valid_until=self.valid_until)


def add_offers(title: Title, specs: Sequence[OfferSpec]) -> int:
    """Add the offers not on the title yet (same URL, territory and window); returns how many."""
    known = {(o.url, o.territory, o.valid_from, o.valid_until) for o in title.offers}
    added = 0
    for spec in specs:
        key = (spec.url, spec.territory, spec.valid_from, spec.valid_until)
        if key not in known:
            title.offers.append(spec.row())
            known.add(key)
            added += 1
    return added


# --------------------------------------------------------------------------- holders


def _audit(session: Session, actor: str, action: str, object_type: str, object_id: int,
           after: dict[str, Any]) -> None:
    record_audit(session, actor, action, object_type, object_id, None, after)


def read_logo(path: str) -> tuple[bytes, str]:
    """A logo file's bytes and type: PNG or JPEG, at most 512 kB (served on public pages)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the logo {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_LOGO_BYTES:
        raise InvalidInput(f"logo {path} is larger than {MAX_LOGO_BYTES // 1024} kB")
    kind = next((t for magic, t in LOGO_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise InvalidInput(f"logo {path} is neither PNG nor JPEG")
    return data, kind


def add_holder(session: Session, name: str, *, legal_name: str | None = None, agent: bool = False,
               address: str | None = None, signatory: str | None = None, email: str | None = None,
               phone: str | None = None, country: str | None = None, logo: str | None = None,
               actor: str = "cli") -> RightsHolder:
    """Register a rights holder (or, with ``agent``, an association or agency acting for
    holders). The name is the short handle the CLI and mandates use; unique."""
    from notices.hosts import valid_email

    name = " ".join(name.split())
    if not name or name.isdigit():
        raise InvalidInput(f"a holder's name must be a non-empty text, not a number: {name!r}")
    if holder_named(session, name) is not None:
        raise Duplicate(f"a rights holder named {name!r} exists already")
    if email and not valid_email(email):
        raise InvalidInput(f"not an email address: {email!r}")
    if country and (len(country) != 2 or not country.isalpha()):
        raise InvalidInput(f"country must be an ISO 3166-1 alpha-2 code: {country!r}")
    row = RightsHolder(name=name, legal_name=" ".join((legal_name or name).split()),
                       kind=OrgKind.AGENT if agent else OrgKind.HOLDER, address=address, signatory=signatory,
                       email=email, phone=phone, country=country.upper() if country else None)
    if logo:
        row.logo, row.logo_type = read_logo(logo)
    session.add(row)
    session.flush()
    _audit(session, actor, "holder.add", "rights_holder", row.id, holder_json(row))
    return row


def holder_for_owner(session: Session, owner: str) -> RightsHolder:
    """The holder named ``owner``, registered on the spot when new (what the 0013
    migration did for each ``rights_owner``): ``catalog add --rights-owner`` keeps working."""
    name = " ".join(owner.split())[:200]
    found = holder_named(session, name)
    if found is not None:
        return found
    row = RightsHolder(name=name, legal_name=name, kind=OrgKind.HOLDER)
    session.add(row)
    session.flush()
    return row


def get_holder(session: Session, name_or_id: str) -> RightsHolder:
    found = holder_named(session, name_or_id)
    if found is None:
        raise NotFound(f"no rights holder or agent {name_or_id!r} (see `vigie holders list`)")
    return found


def grant_rights(title: Title, holder: RightsHolder, territory_field: str = WORLDWIDE,
                 valid_from: date | None = None, valid_until: date | None = None) -> TitleRights | None:
    """Give ``holder`` rights on ``title`` in a territory (a no-op when it has those already)."""
    field = territory(territory_field)
    _window(valid_from, valid_until, f"rights of {holder.name}")
    for r in title.rights:
        if r.holder_id == holder.id and r.territory == field and (r.valid_from, r.valid_until) == (
                valid_from, valid_until):
            return None
    row = TitleRights(holder=holder, territory=field, valid_from=valid_from, valid_until=valid_until)
    title.rights.append(row)
    if not title.rights_owner:
        title.rights_owner = holder.legal_name
    return row


def grant_title_rights(session: Session, holder: str, title: str, territory_field: str = WORLDWIDE,
                       valid_from: date | None = None, valid_until: date | None = None, *,
                       replace: bool = False, actor: str = "cli") -> tuple[TitleRights, int]:
    """``vigie holders grant``: rights of a holder on a title; with ``replace``, the
    holder's other rows on the title go (returns the row and how many went)."""
    from stages.catalog import find_title

    h, t = get_holder(session, holder), find_title(session, title)
    dropped = 0
    if replace:
        for r in [r for r in t.rights if r.holder_id == h.id]:
            t.rights.remove(r)
            dropped += 1
        session.flush()
    row = grant_rights(t, h, territory_field, valid_from, valid_until)
    if row is None:
        row = next(r for r in t.rights if r.holder_id == h.id and r.territory == territory(territory_field))
    session.flush()
    _audit(session, actor, "rights.grant", "title", t.id,
           {"holder": h.name, "territory": row.territory, "replaced": dropped,
            "from": valid_from.isoformat() if valid_from else None,
            "until": valid_until.isoformat() if valid_until else None})
    return row, dropped


def list_holders(session: Session) -> list[RightsHolder]:
    return list(session.scalars(select(RightsHolder).options(selectinload(RightsHolder.rights))
                                .order_by(RightsHolder.name)))


def holder_json(h: RightsHolder) -> dict[str, Any]:
    return {"id": h.id, "name": h.name, "kind": h.kind.value if h.kind else OrgKind.HOLDER.value,
            "legal_name": h.legal_name, "address": h.address, "signatory": h.signatory, "email": h.email,
            "phone": h.phone, "country": h.country, "logo": h.logo_type,
            "titles": sorted({r.title_id for r in h.rights if r.title_id is not None}),
            "rights": [{"title_id": r.title_id, "territory": r.territory,
                        "from": r.valid_from.isoformat() if r.valid_from else None,
                        "until": r.valid_until.isoformat() if r.valid_until else None} for r in h.rights]}


# --------------------------------------------------------------------------- mandates


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InvalidInput(f"cannot read the mandate document {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def add_mandate(session: Session, *, agent: str, principal: str, titles: Sequence[str] = (),
                valid_from: date, valid_until: date | None = None, document: str | None = None,
                document_sha256: str | None = None, actor: str = "cli") -> Mandate:
    """Record that ``agent`` may notify for ``principal`` (for ``titles``, or all its
    titles), from one day to another, with the SHA-256 of the signed document."""
    from stages.catalog import find_title

    ag, pr = get_holder(session, agent), get_holder(session, principal)
    if ag.id == pr.id:
        raise InvalidInput(f"{ag.name} cannot hold a mandate from itself")
    if ag.kind is not OrgKind.AGENT:
        raise InvalidInput(f"{ag.name} is not an agent (add it with `vigie holders add --agent`)")
    _window(valid_from, valid_until, "mandate")
    if document and document_sha256:
        raise InvalidInput("give the mandate document or its SHA-256, not both")
    if document:
        document_sha256 = sha256_of(document)
    if document_sha256 is not None:
        document_sha256 = document_sha256.strip().lower()
        if len(document_sha256) != 64 or any(c not in "0123456789abcdef" for c in document_sha256):
            raise InvalidInput(f"not a SHA-256 in hex: {document_sha256!r}")
    rows: list[Title] = []
    for t in titles:
        row = find_title(session, t)
        if not any(r.holder_id == pr.id for r in row.rights):
            raise InvalidInput(f"{pr.name} holds no rights on title {row.id} {row.title!r}")
        rows.append(row)
    m = Mandate(agent=ag, principal=pr, all_titles=not rows, valid_from=valid_from, valid_until=valid_until,
                document_sha256=document_sha256,
                document_name=os.path.basename(document) if document else None)
    session.add(m)
    session.flush()
    for row in rows:
        m.titles.append(MandateTitle(mandate_id=m.id, title_id=row.id))
    session.flush()
    _audit(session, actor, "mandate.add", "mandate", m.id, mandate_json(m))
    return m


def list_mandates(session: Session) -> list[Mandate]:
    return list(session.scalars(select(Mandate).options(selectinload(Mandate.titles))
                                .order_by(Mandate.agent_id, Mandate.principal_id, Mandate.id)))


def mandate_json(m: Mandate, today: date | None = None) -> dict[str, Any]:
    out = {"id": m.id, "agent": m.agent.name, "principal": m.principal.name,
           "titles": "all" if m.all_titles else sorted(t.title_id for t in m.titles),
           "from": m.valid_from.isoformat(), "until": m.valid_until.isoformat() if m.valid_until else None,
           "document_sha256": m.document_sha256, "document": m.document_name}
    if today is not None:
        out["valid_today"] = in_window(m.valid_from, m.valid_until, today)
    return out
