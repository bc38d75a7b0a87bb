"""Who may notify for a title, where, and when; and what a tenant's staff may see.

One home for the rules of rights holders (``RightsHolder``), their territory-scoped
rights (``TitleRights``), agents' mandates (``Mandate``) and offers' release windows:
``notices.build`` asks ``notifier_for`` before a URL goes into a notice, the review app
asks ``scope_titles`` before it shows or changes a row, the public pages ask
``current_offers``.

A territory field holds ISO 3166-1 alpha-2 codes separated by commas (or semicolons),
or ``*`` for worldwide; a host's territory is its ``jurisdiction``. A window is
inclusive at both ends; an empty end is open.

Part of the core. May import: ``foundation`` only (and ``db``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Decision,
    Mandate,
    MandateTitle,
    Match,
    Offer,
    OrgKind,
    ReviewState,
    RightsHolder,
    Title,
    TitleRights,
)

WORLDWIDE = "*"


def territory_codes(field: str | None) -> set[str]:
    """The codes of a territory field, upper-cased; ``{"*"}`` for worldwide or empty."""
    codes = {c.strip().upper() for c in (field or WORLDWIDE).replace(";", ",").split(",")} - {""}
    return codes or {WORLDWIDE}


def covers(field: str | None, territory: str | None) -> bool:
    """Whether a territory field covers ``territory``: a worldwide field covers any, even
    an unknown one; a list of countries covers only the countries it names."""
    codes = territory_codes(field)
    if WORLDWIDE in codes:
        return True
    return bool(territory) and territory.strip().upper() in codes  # type: ignore[union-attr]


def in_window(valid_from: date | None, valid_until: date | None, day: date) -> bool:
    return (valid_from is None or valid_from <= day) and (valid_until is None or day <= valid_until)


def normalise_territory(field: str) -> str:
    """A territory field as stored: ``*`` or sorted two-letter codes; ValueError otherwise."""
    codes = territory_codes(field)
    if WORLDWIDE in codes:
        if len(codes) > 1:
            raise ValueError(f"territory {field!r}: '*' (worldwide) cannot be combined with countries")
        return WORLDWIDE
    bad = sorted(c for c in codes if len(c) != 2 or not c.isalpha() or not c.isascii())
    if bad:
        raise ValueError(f"territory {field!r}: not ISO 3166-1 alpha-2 codes: {', '.join(bad)}")
    return ",".join(sorted(codes))


# --------------------------------------------------------------------------- offers


def offers_in(offers: Iterable[Offer], territory: str | None, day: date | None = None) -> list[Offer]:
    """The offers valid in ``territory`` on ``day`` (any day when None). An unknown
    territory keeps every offer open on that day: the public cannot be told less."""
    out = []
    for o in offers:
        if day is not None and not in_window(o.valid_from, o.valid_until, day):
            continue
        if territory and not covers(o.territory, territory):
            continue
        out.append(o)
    return out


def current_offers(title: Title, day: date) -> dict[str, list[Offer]]:
    """The title's offers open on ``day``, per territory field (worldwide first)."""
    per: dict[str, list[Offer]] = {}
    for o in offers_in(title.offers, None, day):
        per.setdefault(o.territory or WORLDWIDE, []).append(o)
    return dict(sorted(per.items(), key=lambda kv: (kv[0] != WORLDWIDE, kv[0])))


# --------------------------------------------------------------------------- who notifies


@dataclass(frozen=True)
class Party:
    """Who a notice about a title comes from: the holder itself, or an agent for it."""

    notifier: RightsHolder
    holder: RightsHolder
    mandate: Mandate | None = None


@dataclass(frozen=True)
class Withheld:
    """Why a title is not notified to a host: said in ``vigie notices send``, kept on the match."""

    reason: str


def _mandates_for(session: Session, holder: RightsHolder, title: Title) -> list[Mandate]:
    q = (select(Mandate).where(Mandate.principal_id == holder.id)
         .where(or_(Mandate.all_titles.is_(True),
                    exists().where(MandateTitle.mandate_id == Mandate.id, MandateTitle.title_id == title.id)))
         .order_by(Mandate.valid_from.desc(), Mandate.id.desc()))
    return list(session.scalars(q))


def notifier_for(session: Session, title: Title, territory: str | None, day: date) -> Party | Withheld:
    """Who notifies a host in ``territory`` about ``title`` on ``day``, or why nobody may.

    The holder whose rights on the title cover the territory on that day (the oldest such
    row when several do); once it has given mandates covering the title, the agent of a
    mandate valid that day notifies for it, and with none valid nobody does."""
    if not title.rights:
        return Withheld(f"title {title.id} {title.title!r} has no rights holder")
    open_rows = [r for r in title.rights if in_window(r.valid_from, r.valid_until, day)]
    if not open_rows:
        spans = "; ".join(f"{r.holder.name}: {r.valid_from or '...'} to {r.valid_until or '...'}"
                          for r in title.rights)
        return Withheld(f"no rights on title {title.id} {title.title!r} are valid on {day} ({spans})")
    rows = [r for r in open_rows if covers(r.territory, territory)]
    if not rows:
        where = f"in {territory.upper()}" if territory else "for a host of unknown jurisdiction"
        held = "; ".join(f"{r.holder.name}: {r.territory}" for r in open_rows)
        return Withheld(f"no rights holder of title {title.id} {title.title!r} has rights {where} ({held})")
    holder = sorted(rows, key=lambda r: r.id)[0].holder
    mandates = _mandates_for(session, holder, title)
    if not mandates:
        return Party(notifier=holder, holder=holder)
    valid = [m for m in mandates if in_window(m.valid_from, m.valid_until, day)]
    if valid:
        return Party(notifier=valid[0].agent, holder=holder, mandate=valid[0])
    m = mandates[0]
    when = f"expired on {m.valid_until}" if m.valid_until and m.valid_until < day else f"starts on {m.valid_from}"
    return Withheld(f"the mandate {m.id} of {m.agent.name} for {holder.name} on title {title.id} "
                    f"{title.title!r} {when}: nobody may notify for it")


# --------------------------------------------------------------------------- staff scope


def scope_titles(org_id: int) -> Select[tuple[int]]:
    """SQL: the ids of the titles an organisation's staff may see: those it holds rights
    on, and as an agent those of its principals its mandates cover (whatever their dates:
    the history of its own notices stays readable)."""
    own = select(TitleRights.title_id).where(TitleRights.holder_id == org_id)
    covered = (select(TitleRights.title_id)
               .join(Mandate, Mandate.principal_id == TitleRights.holder_id)
               .where(Mandate.agent_id == org_id)
               .where(or_(Mandate.all_titles.is_(True),
                          exists().where(MandateTitle.mandate_id == Mandate.id,
                                         MandateTitle.title_id == TitleRights.title_id))))
    return own.union(covered)  # type: ignore[return-value]


def visible_title_ids(session: Session, org_id: int) -> set[int]:
    return set(session.scalars(scope_titles(org_id)))


def holder_named(session: Session, name_or_id: str) -> RightsHolder | None:
    """A holder or agent by id or by name (case-insensitive on the name)."""
    key = name_or_id.strip()
    if key.isdigit():
        found = session.get(RightsHolder, int(key))
        if found is not None:
            return found
    return session.scalar(select(RightsHolder).where(func.lower(RightsHolder.name) == key.lower()))


def is_agent(org: RightsHolder) -> bool:
    return org.kind is OrgKind.AGENT


def withheld_matches(s: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Confirmed or approved matches kept from a host, with the reason the notice builder
    recorded (no rights holder, mandate expired, no rights in the host's territory)."""
    rows = s.execute(select(Match.id, Match.title_id, Match.details).where(
        (Match.decision == Decision.CONFIRMED) | (Match.review == ReviewState.APPROVED),
        Match.review != ReviewState.REJECTED).order_by(Match.id.desc()))
    out: list[dict[str, Any]] = []
    for mid, title_id, details in rows:
        for host, w in sorted(((details or {}).get("withheld") or {}).items()):
            out.append({"match_id": mid, "title_id": title_id, "host": host, "reason": (w or {}).get("reason"), "at": (w or {}).get("at")})
        if len(out) >= limit:
            break
    return out[:limit]


__all__ = ["Party", "Withheld", "WORLDWIDE", "covers", "current_offers", "holder_named", "in_window",
           "is_agent", "normalise_territory", "notifier_for", "offers_in", "scope_titles", "territory_codes",
           "visible_title_ids"]
