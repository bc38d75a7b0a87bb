"""What a host's mail says: rules, each reading with a confidence.

In order, the first that applies wins:

1. a delivery status notification (RFC 3464, read by ``inbox.parse``): a recipient whose
   action is ``failed`` or whose status is 5.x.x is a **bounce** (0.99); only delays
   are *other* (nothing to do, the server keeps trying);
2. a bounce without a DSN (an old MTA's "Mail delivery failed" from MAILER-DAEMON):
   a bounce at 0.75, so staff confirm it before a contact is marked bad;
3. a known desk template (``DESK_TEMPLATES``: sender and subject of a help desk's
   automatic mail), with its kind and its ticket number pattern;
4. wordings, in English and French, in what the sender wrote (quotes of our notice left
   out): counter-notice (DMCA 512(g), its statutory statements counted), DSA statement
   of reasons, redirect ("not our customer, write to X": X offered as the new contact),
   refused (with the sentence that says why), removed, acknowledgement.

Several kinds can match one mail ("we received your notice and removed the video"):
removal, refusal and redirect outrank an acknowledgement; a mail that says both
"removed" and "refused" is given to staff. Nothing matched: *other*, for staff.
The confidence says how sure the rule is; below ``[inbox] min_confidence`` staff decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from db.models import ReplyKind
from inbox.parse import ParsedMail
from notices.hosts import valid_email


@dataclass
class Reading:
    kind: ReplyKind
    confidence: float
    rule: str
    ticket: str | None = None
    reason: str | None = None
    redirect_to: str | None = None
    regime: str | None = None                       # counter-notices: dmca | dsa
    statements: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class DeskTemplate:
    """A help desk's automatic mail, known by its sender and subject."""

    name: str
    sender: re.Pattern[str]
    subject: re.Pattern[str]
    kind: ReplyKind
    confidence: float
    ticket: re.Pattern[str] | None = None


def _re(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


DESK_TEMPLATES: tuple[DeskTemplate, ...] = (
    # Request Tracker's autoreply: "[example.net #12345] AutoReply: ..."
    DeskTemplate("request-tracker", _re(r".*"), _re(r"\[[^\]#]{1,60}#\d+\]\s*AutoReply:"), ReplyKind.ACK, 0.95,
                 _re(r"\[[^\]#]{1,60}#(\d+)\]")),
    # Zendesk-style desks: "[Request received] ..." / "Demande reçue", ticket "#12345".
    DeskTemplate("zendesk", _re(r".*"), _re(r"^\s*\[?(?:request received|demande reçue)\]?"), ReplyKind.ACK, 0.95,
                 _re(r"(?:request|demande|ticket)\s*#\s*(\d{3,})")),
    DeskTemplate("cloudflare", _re(r"@(?:[\w-]+\.)*cloudflare\.com$"),
                 _re(r"cloudflare received your (?:abuse|dmca|copyright) report"), ReplyKind.ACK, 0.97,
                 _re(r"\b([0-9a-f]{16})\b")),
)

# --------------------------------------------------------------------------- wordings

COUNTER_CUES = _re(r"counter[- ]?notic(?:e|ation)|512\s*\(g\)|contre[- ]notifi?cation|contre[- ]notice")
DMCA_STATEMENTS = {
    # 512(g)(3)(C): under penalty of perjury, removed by mistake or misidentification.
    "perjury_mistake": _re(r"(?:penalty of perjury|sous peine de (?:parjure|sanctions pénales)).{0,400}"
                           r"(?:mistake|misidentif|erreur|identification erronée)"),
    # 512(g)(3)(D): consent to the jurisdiction of a federal district court.
    "consent_jurisdiction": _re(r"consent to (?:the )?jurisdiction|federal district court|"
                                r"accepte la compétence|consens à la compétence"),
    "service_of_process": _re(r"accept service of process|accepte (?:la )?signification"),
    "signature": _re(r"(?:^|\s)/s/\s*\S|electronic signature|signature électronique|signed:|signé\s?:"),
}
DSA_CUES = _re(r"statement of reasons|art(?:icle|\.)?\s*17\b.{0,40}(?:DSA|digital services|2022/2065)"
               r"|exposé des motifs|(?:DSA|règlement sur les services numériques).{0,60}art(?:icle|\.)?\s*17\b")
REINSTATED = _re(r"reinstat|restor|put back|not (?:be )?remov|no action|will not|won't|decided to keep|"
                 r"remis en ligne|rétabli|ne (?:sera|sont|seront) pas (?:retir|supprim)|maintenu")

REDIRECT = (
    (_re(r"not (?:a |one of )?our (?:customer|client)|is not hosted (?:by|with|on) us|we (?:do not|don't) host|"
         r"we are (?:only|merely) (?:the|a) (?:registrar|cdn|proxy|dns)"), 0.85),
    (_re(r"(?:please|kindly) (?:contact|write to|forward (?:your|this) (?:notice|complaint|report) to|"
         r"send (?:your|this) (?:notice|complaint|report) to)|you (?:should|must|may) contact"), 0.75),
    (_re(r"(?:n'est|ne sont) pas (?:un de )?(?:nos|notre) client|n'est pas hébergé chez nous|"
         r"nous n'hébergeons pas"), 0.85),
    (_re(r"veuillez (?:contacter|écrire à|vous adresser à|transmettre)|adressez[- ]vous à|écrivez à|"
         r"merci de contacter"), 0.75),
)
REFUSED = (
    (_re(r"(?:we|i) (?:will not|won't|cannot|can't|are unable to|decline to|refuse to) "
         r"(?:take (?:any )?action|remove|act|comply|process|delete|disable)"), 0.85),
    (_re(r"(?:not|no) (?:an? )?(?:infring|copyright violation)|fair use|does not (?:violate|infringe)|"
         r"insufficient (?:information|evidence)|(?:notice|request) is (?:incomplete|invalid|deficient)|"
         r"(?:has|have) not been (?:removed|taken down)|rejected your (?:notice|request)"), 0.8),
    (_re(r"nous (?:ne (?:pouvons|donnerons|retirerons|supprimerons)|refusons)|ne donnerons pas suite|"
         r"(?:notification|demande) (?:est )?(?:incomplète|irrecevable|non recevable)|"
         r"pas (?:de |une )?contrefaçon|n'a pas été (?:retiré|supprimé)|refus"), 0.8),
)
REMOVED = (
    (_re(r"(?:has|have|had) been (?:removed|deleted|taken down|disabled|blocked)|"
         r"(?:we|i) (?:have )?(?:removed|deleted|disabled|taken down|took down)|access (?:has been )?disabled|"
         r"\b(?:have|has) (?:now |already )?(?:removed|deleted|disabled|taken down|blocked)|"
         r"(?:content|video|file|material|link)s? (?:is|are|was|were) (?:removed|deleted|no longer available)"),
     0.85),
    (_re(r"(?:a|ont) été (?:supprimée?s?|retirée?s?|désactivée?s?|bloquée?s?|rendue?s? inaccessibles?)|"
         r"nous avons (?:supprimé|retiré|désactivé|bloqué)|(?:contenu|vidéo|fichier|lien)s? (?:supprimé|retiré)"),
     0.85),
)
ACK = (
    (_re(r"(?:we|i) (?:have )?received your|(?:your )?(?:report|notice|request|complaint|message) "
         r"(?:has been|was|is) (?:received|logged|registered|recorded)|thank you for (?:your|contacting)|"
         r"this is an automat(?:ic|ed) (?:reply|response|message)|will (?:review|investigate|look into)"), 0.8),
    (_re(r"nous avons (?:bien )?reçu|accusé de réception|(?:votre )?(?:demande|signalement|notification) "
         r"(?:a été|est) (?:bien )?(?:reçue?|enregistrée?|prise en compte)|réponse automatique|"
         r"merci pour votre (?:message|signalement)|sera (?:examinée?|traitée?)"), 0.8),
)
NEGATED_REMOVAL = _re(r"(?:not|never) (?:been |be )?(?:removed|deleted|taken down)|n'a pas été (?:supprimé|retiré)|"
                      r"ne (?:sera|seront) pas (?:supprimé|retiré)")
BOUNCE_SENDER = _re(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@")
BOUNCE_SUBJECT = _re(r"undeliver|delivery (?:status notification|failure|has failed)|returned mail|"
                     r"mail delivery (?:failed|failure|system)|failure notice|non remis|"
                     r"échec de (?:la )?(?:remise|distribution)|message non délivré")
TICKET = (
    _re(r"\[(?:[^\]#]{0,40})#\s?([A-Za-z0-9][\w-]{1,40})\]"),
    _re(r"\b(?:ticket|case|request|incident|report|reference|ref|dossier|demande|signalement|référence)"
        r"\s*(?:id|number|no\.?|n[°o]\.?|nr\.?|numéro|#)?\s*[:#]?\s*([A-Za-z]{0,8}[-#]?\d[\w-]{2,40})"),
)
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+")


def ticket_of(*texts: str) -> str | None:
    """The host's ticket number: the first token with a digit, not one of our references."""
    for text in texts:
        for pattern in TICKET:
            for m in pattern.finditer(text[:50_000]):
                token = m.group(1).strip("-#")
                if any(c.isdigit() for c in token) and not token.upper().startswith("VIGIE"):
                    return token[:100]
    return None


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    stops = [i for i in (text.find(".", end), text.find("\n", end)) if i >= 0]
    right = min(stops) + 1 if stops else len(text)
    return " ".join(text[left:right].split())[:500]


def _best(rules: Iterable[tuple[re.Pattern[str], float]], text: str) -> tuple[float, re.Match[str] | None]:
    best: tuple[float, re.Match[str] | None] = (0.0, None)
    for pattern, conf in rules:
        m = pattern.search(text)
        if m and conf > best[0]:
            best = (conf, m)
    return best


def addresses_in(text: str, exclude: Iterable[str] = ()) -> list[str]:
    out = []
    skip = {a.lower() for a in exclude if a}
    for m in _EMAIL_IN_TEXT.finditer(text[:100_000]):
        addr = valid_email(m.group(0).strip(".-"))
        if addr and addr.lower() not in skip and addr.lower() not in out:
            out.append(addr.lower())
    return out


def classify(mail: ParsedMail, *, ours: Iterable[str] = ()) -> Reading:
    """The reading of ``mail``. ``ours``: our own addresses (never offered as a contact)."""
    ours = [a.lower() for a in ours if a]
    dsn = mail.dsn
    if dsn is not None and dsn.recipients:
        failed = dsn.failed
        if failed:
            r = failed[0]
            why = f"{r.status or r.action} {r.diagnostic}".strip()
            return Reading(ReplyKind.BOUNCE, 0.99, "dsn", reason=why[:500],
                           statements={"recipients": [x.address for x in failed if x.address]})
        return Reading(ReplyKind.OTHER, 0.95, "dsn-not-failed",
                       reason=f"delivery status: {dsn.recipients[0].action or 'unknown'} (nothing to do)")
    sender = mail.from_addr or ""
    if BOUNCE_SENDER.match(sender) or (dsn is not None) or BOUNCE_SUBJECT.search(mail.subject) and not mail.in_reply_to:
        if BOUNCE_SUBJECT.search(mail.subject) or dsn is not None:
            return Reading(ReplyKind.BOUNCE, 0.75, "bounce-without-dsn",
                           reason=" ".join(mail.text.split())[:300] or mail.subject)

    for t in DESK_TEMPLATES:
        if t.sender.search(sender) and t.subject.search(mail.subject):
            ticket = None
            if t.ticket is not None:
                m = t.ticket.search(mail.subject) or t.ticket.search(mail.text[:20_000])
                ticket = m.group(1) if m else None
            return Reading(t.kind, t.confidence, f"desk:{t.name}", ticket=ticket or ticket_of(mail.subject, mail.text))

    reply = mail.reply_text
    text = f"{mail.subject}\n{reply}"
    ticket = ticket_of(mail.subject, reply)

    counter = COUNTER_CUES.search(text)
    found = {k: bool(p.search(reply)) for k, p in DMCA_STATEMENTS.items()}
    if counter or sum(found.values()) >= 3:
        n = sum(found.values())
        conf = 0.95 if counter and n >= 2 else 0.8 if n >= 3 else 0.7
        return Reading(ReplyKind.COUNTER_NOTICE, conf, "dmca-512g", ticket=ticket, regime="dmca",
                       statements={**found, "text": reply[:4000]})
    if DSA_CUES.search(text) and REINSTATED.search(reply):
        m = REINSTATED.search(reply)
        assert m is not None
        return Reading(ReplyKind.COUNTER_NOTICE, 0.85, "dsa-statement-of-reasons", ticket=ticket, regime="dsa",
                       reason=_sentence(reply, m.start(), m.end()),
                       statements={"statement_of_reasons": reply[:4000]})

    redirect_c, redirect_m = _best(REDIRECT, reply)
    refused_c, refused_m = _best(REFUSED, reply)
    removed_c, removed_m = _best(REMOVED, reply)
    if NEGATED_REMOVAL.search(reply):
        removed_c = 0.0
    ack_c, _ = _best(ACK, reply)
    if "auto-replied" in mail.auto_submitted or "auto_reply" in mail.auto_submitted or \
            "auto-generated" in mail.auto_submitted:
        ack_c = max(ack_c, 0.7) + (0.15 if ack_c else 0.0)

    if redirect_c and redirect_m is not None:
        tail = reply[redirect_m.start():]
        targets = addresses_in(tail, [*ours, sender]) or addresses_in(reply, [*ours, sender])
        if targets:
            return Reading(ReplyKind.REDIRECT, redirect_c, "wording:redirect", ticket=ticket,
                           redirect_to=targets[0], reason=_sentence(reply, redirect_m.start(), redirect_m.end()))
        if not (refused_c or removed_c):
            return Reading(ReplyKind.REDIRECT, 0.5, "wording:redirect-without-address", ticket=ticket,
                           reason=_sentence(reply, redirect_m.start(), redirect_m.end()))
    if refused_c and removed_c:
        return Reading(ReplyKind.REFUSED if refused_c >= removed_c else ReplyKind.REMOVED, 0.5,
                       "wording:removed-and-refused", ticket=ticket,
                       reason="the mail says both that content was removed and that the notice is refused")
    if refused_c and refused_m is not None:
        return Reading(ReplyKind.REFUSED, refused_c, "wording:refused", ticket=ticket,
                       reason=_sentence(reply, refused_m.start(), refused_m.end()))
    if removed_c and removed_m is not None:
        return Reading(ReplyKind.REMOVED, removed_c, "wording:removed", ticket=ticket,
                       reason=_sentence(reply, removed_m.start(), removed_m.end()))
    if ack_c:
        return Reading(ReplyKind.ACK, min(ack_c, 0.95), "wording:ack", ticket=ticket)
    return Reading(ReplyKind.OTHER, 0.3, "nothing-matched", ticket=ticket)
