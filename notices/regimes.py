"""Legal regimes of a notice: what each one must contain, and which one a host gets.

A regime names its required elements (the statute's own numbering, so a refusal says
exactly what is missing) and the statements its rendered text must carry. Built-ins:
US DMCA 17 U.S.C. 512(c)(3)(A), EU Digital Services Act art. 16(2), and a
search-engine delisting request. Used by ``notices.build`` before a notice is queued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from db.hosts import NOTICE_LANGUAGES
from db.models import Host
from foundation.errors import NoticeInvalid

Context = Mapping[str, Any]

# EU and EEA member states: the DSA applies (France since the 2024 SREN law).
EU_EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split()
)
LANGUAGES = NOTICE_LANGUAGES


@dataclass(frozen=True)
class Requirement:
    label: str
    present: Callable[[Context], bool]


@dataclass(frozen=True)
class Regime:
    name: str
    title: str
    requirements: tuple[Requirement, ...]
    # Phrases the rendered text must contain, per language: the sworn statements live in
    # the templates, and a template edited without them must not go out.
    statements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def missing(self, ctx: Context, text: str | None = None) -> list[str]:
        out = [r.label for r in self.requirements if not r.present(ctx)]
        if text is not None:
            flat = " ".join(text.split()).lower()
            for phrase in self.statements.get(ctx["language"], ()):
                if phrase.lower() not in flat:
                    out.append(f"statement {phrase!r} in the rendered text")
        return out

    def validate(self, ctx: Context, text: str | None = None) -> None:
        """Raise NoticeInvalid naming every missing element."""
        missing = self.missing(ctx, text)
        if missing:
            raise NoticeInvalid(f"{self.title} notice to {ctx['host']['name']!r} is missing: "
                                + "; ".join(missing))


def _notifier(key: str) -> Callable[[Context], bool]:
    return lambda ctx: bool(str(ctx["notifier"].get(key) or "").strip())


def _items(ctx: Context) -> list[Mapping[str, Any]]:
    return [it for w in ctx["works"] for it in w["items"]]


def _works_identified(ctx: Context) -> bool:
    return bool(ctx["works"]) and all(str(w.get("title") or "").strip() for w in ctx["works"])


def _urls(ctx: Context) -> bool:
    items = _items(ctx)
    return bool(items) and all(str(it.get("url") or "").startswith(("http://", "https://")) for it in items)


def _evidence(ctx: Context) -> bool:
    return all(it.get("evidence_sha256") and it.get("found_at") and it.get("score") is not None
               for it in _items(ctx))


def _explanation(ctx: Context) -> bool:
    # Art. 16(2)(a): why it is illegal = whose work it is, and the match that proves it.
    return _works_identified(ctx) and all(w.get("rights_owner") for w in ctx["works"]) and all(
        it.get("matched_s") is not None and it.get("ref_start_s") is not None for it in _items(ctx))


def _authorised_copy(ctx: Context) -> bool:
    return bool(ctx["works"]) and all(w.get("offers") for w in ctx["works"])


EVIDENCE = Requirement("evidence per URL (when found, match score, evidence hash of the captured page)",
                       _evidence)

DMCA = Regime(
    name="dmca",
    title="DMCA 17 U.S.C. 512(c)(3)(A)",
    requirements=(
        Requirement("(i) signature of a person authorised to act for the owner (notifier.signature)",
                    _notifier("signature")),
        Requirement("(ii) identification of the copyrighted work", _works_identified),
        Requirement("(iii) identification and location of the infringing material (URLs)", _urls),
        Requirement("(iv) complainant's name (notifier.legal_name)", _notifier("legal_name")),
        Requirement("(iv) complainant's address (notifier.address)", _notifier("address")),
        Requirement("(iv) complainant's telephone number (notifier.phone)", _notifier("phone")),
        Requirement("(iv) complainant's email address (notifier.email)", _notifier("email")),
        EVIDENCE,
    ),
    statements={
        "en": ("good faith belief", "accurate", "under penalty of perjury"),
        "fr": ("de bonne foi", "exactes", "sous peine de parjure"),
    },
)

DSA = Regime(
    name="dsa",
    title="DSA art. 16(2)",
    requirements=(
        Requirement("(a) substantiated explanation: the work, its rights owner and the match",
                    _explanation),
        Requirement("(b) exact electronic location of the content (URLs)", _urls),
        Requirement("(c) notifier's name (notifier.legal_name)", _notifier("legal_name")),
        Requirement("(c) notifier's email address (notifier.email)", _notifier("email")),
        EVIDENCE,
    ),
    statements={
        "en": ("in good faith", "accurate and complete"),
        "fr": ("de bonne foi", "exactes et complètes"),
    },
)

DELISTING = Regime(
    name="delisting",
    title="search-engine delisting request",
    requirements=(
        Requirement("the infringing URLs", _urls),
        Requirement("identification of the work", _works_identified),
        Requirement("the URL of an authorised copy (a legitimate offer per work)", _authorised_copy),
        Requirement("requester's name (notifier.legal_name)", _notifier("legal_name")),
        Requirement("requester's email address (notifier.email)", _notifier("email")),
        EVIDENCE,
    ),
    statements={
        "en": ("good faith",),
        "fr": ("bonne foi",),
    },
)

BUILTIN_REGIMES: tuple[Regime, ...] = (DMCA, DSA, DELISTING)


def _registry(regimes: tuple[Regime, ...]) -> dict[str, Regime]:
    out: dict[str, Regime] = {}
    for r in regimes:
        if r.name in out:
            raise RuntimeError(f"notice regime {r.name!r} is defined twice")
        out[r.name] = r
    return out


REGIMES: dict[str, Regime] = _registry(BUILTIN_REGIMES)


def get_regime(name: str) -> Regime:
    try:
        return REGIMES[name]
    except KeyError:
        raise NoticeInvalid(f"unknown notice regime {name!r} (known: {', '.join(REGIMES)})") from None


def regime_for_host(host: Host) -> Regime:
    """The host's explicit regime (settings["regime"]), else by jurisdiction: US hosts get
    the DMCA, EU/EEA hosts the DSA, anyone else the DMCA form most abuse desks know."""
    explicit = (host.settings or {}).get("regime")
    if explicit:
        return get_regime(str(explicit))
    j = (host.jurisdiction or "").upper()
    return DSA if j in EU_EEA else DMCA


def language_for_host(host: Host) -> str:
    lang = (host.language or "en").lower()[:2]
    return lang if lang in LANGUAGES else "en"
