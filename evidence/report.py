"""The case file's ``index.html``: what a judge reads first, in French or English.

Per site, every infringing page: the titles it carries, when it was first and last
seen, the notices sent about it and the outcome (taken down when, or still online at
the last check), with its evidence listed by kind. Everything shown comes from pirate
pages or hosts, so the template escapes it all (Jinja2 autoescape).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from db.models import Candidate, Decision, EvidenceItem, Notice, ReviewState

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Evidence file", "scope": "Scope", "made": "Made on", "site": "Site",
        "page": "Infringing page", "titles": "Titles", "first": "First seen", "last": "Last seen",
        "notices": "Notices", "outcome": "Outcome", "evidence": "Evidence kept",
        "removed": "taken down on {0}", "live": "still online at the last check ({0})",
        "sent": "notified, not yet checked", "pending": "notice not yet sent", "none": "not notified",
        "notice_line": "no. {0}, {1}, to {2}", "not_sent": "not sent",
        "warnings": "Warnings", "howto": "How to check this file",
        "unstamped": "The manifest of {0} has no time-stamp token: the time of its captures is not proven.",
        "unlisted": "{0} item(s) captured since the last evidence run are in no timestamped manifest yet.",
        "howto_text": "manifest.json lists every file of this archive with its SHA-256; "
                      "manifest.json.tsr is an RFC 3161 time-stamp token over manifest.json; "
                      "each daily manifest in daily/ lists the SHA-256 of every item captured "
                      "that day and carries its own token. Run: vigie evidence verify FILE.zip",
        "replies": "Replies received", "pages": "pages",
        "kinds": {"page": "link page (WARC)", "player": "player page (WARC)",
                  "media": "media headers (WARC)", "screenshot": "screenshot",
                  "har": "browser's requests (HAR)", "frames": "frames side by side",
                  "match": "fingerprint match", "verify": "verification fetch (WARC)"},
    },
    "fr": {
        "title": "Dossier de preuves", "scope": "Périmètre", "made": "Établi le", "site": "Site",
        "page": "Page contrefaisante", "titles": "Œuvres", "first": "Vue la première fois",
        "last": "Vue la dernière fois", "notices": "Notifications", "outcome": "Résultat",
        "evidence": "Preuves conservées",
        "removed": "retirée le {0}", "live": "toujours en ligne au dernier contrôle ({0})",
        "sent": "notifiée, pas encore contrôlée", "pending": "notification pas encore envoyée",
        "none": "non notifiée", "notice_line": "n° {0}, {1}, à {2}", "not_sent": "non envoyée",
        "warnings": "Avertissements", "howto": "Comment vérifier ce dossier",
        "unstamped": "Le manifeste du {0} n'a pas de jeton d'horodatage : l'heure de ses captures "
                     "n'est pas prouvée.",
        "unlisted": "{0} élément(s) capturé(s) depuis le dernier passage ne figurent encore dans aucun "
                    "manifeste horodaté.",
        "howto_text": "manifest.json donne l'empreinte SHA-256 de chaque fichier de l'archive ; "
                      "manifest.json.tsr est un jeton d'horodatage RFC 3161 sur manifest.json ; "
                      "chaque manifeste quotidien du dossier daily/ donne l'empreinte de chaque "
                      "élément capturé ce jour-là et porte son propre jeton. Commande : "
                      "vigie evidence verify FICHIER.zip",
        "replies": "Réponses reçues", "pages": "pages",
        "kinds": {"page": "page de liens (WARC)", "player": "page du lecteur (WARC)",
                  "media": "en-têtes du média (WARC)", "screenshot": "capture d'écran",
                  "har": "requêtes du navigateur (HAR)",
                  "frames": "images comparées", "match": "correspondance d'empreintes",
                  "verify": "contrôle après notification (WARC)"},
    },
}

_ENV = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(default=True, default_for_string=True))


def _day(dt: datetime | str | None) -> str:
    if dt is None:
        return "—"
    if isinstance(dt, str):
        return dt[:16].replace("T", " ")
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def outcome(t: dict[str, str], rows: list[dict[str, Any]]) -> list[str]:
    """One line per host notified about the page: a host that removed the video and a
    link site that keeps its page up are two different outcomes, both said."""
    if not rows:
        return [t["none"]]
    by_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_host[r["host"] or "?"].append(r)
    return [f"{host}: {_one_outcome(t, mine)}" for host, mine in sorted(by_host.items())]


def _one_outcome(t: dict[str, str], rows: list[dict[str, Any]]) -> str:
    removed = [r["removed_at"] for r in rows if r["removed_at"]]
    if removed:
        return t["removed"].format(_day(min(removed)))
    checked = [c["checked_at"] for r in rows for c in r["checks"]]
    if checked:
        return t["live"].format(_day(max(checked)))
    if any(r["sent_at"] for r in rows):
        return t["sent"]
    return t["pending"]


def render_index(*, lang: str, scope: str, now: datetime, cands: list[Candidate], items: list[EvidenceItem],
                 notices: list[Notice], timeline: list[dict[str, Any]], replies: int,
                 unstamped: list[str], unlisted: int) -> str:
    t = TEXT[lang]
    warnings = [t["unstamped"].format(day) for day in unstamped]
    if unlisted:
        warnings.append(t["unlisted"].format(unlisted))
    kinds: dict[int, Counter[str]] = defaultdict(Counter)
    for i in items:
        if i.candidate_id is not None:
            kinds[i.candidate_id][i.kind] += 1
    rows_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in timeline:
        rows_of[r["candidate_id"]].append(r)
    sites: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cands:
        titles = sorted({m.title.title for m in c.matches if m.title is not None
                         and m.decision != Decision.ALLOWED and m.review != ReviewState.REJECTED})
        mine = rows_of[c.id]
        seen_notices = sorted({(r["notice_id"], r["sent_at"], r["host"] or "?") for r in mine})
        sites[c.site.name if c.site else (c.evidence or {}).get("page_host") or "?"].append({
            "url": c.page_url, "titles": titles, "first": _day(c.first_seen), "last": _day(c.last_seen),
            "notices": [t["notice_line"].format(n, _day(sent) if sent else t["not_sent"], host)
                        for n, sent, host in seen_notices],
            "outcome": outcome(t, mine),
            "evidence": [f"{t['kinds'].get(k, k)} × {n}" for k, n in sorted(kinds[c.id].items())],
        })
    return _ENV.get_template("case_index.html").render(
        t=t, lang=lang, scope=scope, made=_day(now), sites=sorted(sites.items()), warnings=warnings,
        replies=replies, notices=len(notices))
