"""The reply reader's rules on their own (no database): wordings in English and French,
the tricky cases (a negated removal, an acknowledgement that also says removed, our own
notice quoted back), tickets, redirects, and the parser's limits on hostile MIME."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from db.models import ReplyKind
from inbox.classify import classify, ticket_of
from inbox.parse import MAX_PARTS, parse_mail, strip_quotes
from tests import inbox_mail as mk

OURS = ["notices@filmsdunord.example"]


def read(body: str, subject: str = "Re: your notice", frm: str = "abuse@host.example", **kw: object):  # type: ignore[no-untyped-def]
    return classify(parse_mail(mk.reply(frm=frm, subject=subject, body=body, **kw)), ours=OURS)  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "kind"), [
    ("The video has been removed.", ReplyKind.REMOVED),
    ("We received your notice and have removed the video.", ReplyKind.REMOVED),
    ("Le fichier a été supprimé de nos serveurs.", ReplyKind.REMOVED),
    ("Nous avons retiré la vidéo signalée.", ReplyKind.REMOVED),
    ("The content has not been removed: it is licensed.", ReplyKind.REFUSED),
    ("We cannot take action without a court order.", ReplyKind.REFUSED),
    ("Votre notification est irrecevable.", ReplyKind.REFUSED),
    ("Nous avons bien reçu votre demande, elle sera traitée.", ReplyKind.ACK),
    ("Thank you for your report, we will review it shortly.", ReplyKind.ACK),
    ("We do not host this site. Please contact abuse@real.example", ReplyKind.REDIRECT),
    ("Adressez-vous à abuse@hebergeur.example, nous ne sommes que le registrar.", ReplyKind.REDIRECT),
    ("Lovely weather today.", ReplyKind.OTHER),
])
def test_wordings(body: str, kind: ReplyKind) -> None:
    assert read(body).kind is kind


def test_quoted_notice_does_not_count() -> None:
    # Our notice asks for removal; quoted back under a bare "thanks", it says nothing.
    body = "Thanks.\n\nOn Mon, 2 Mar 2026 Vigie wrote:\n> Please remove the content; it has been removed elsewhere."
    r = read(body)
    assert r.kind is ReplyKind.OTHER or r.confidence < 0.8
    assert strip_quotes(body) == "Thanks."
    fr = "Merci.\n\nLe lun. 2 mars 2026, Vigie a écrit :\nLes contenus ont été supprimés"
    assert strip_quotes(fr) == "Merci."


def test_removed_and_refused_together_go_to_staff() -> None:
    r = read("Some videos have been removed. For the others we will not take action.")
    assert r.confidence < 0.8 and r.rule == "wording:removed-and-refused"


def test_redirect_never_offers_our_own_or_the_senders_address() -> None:
    r = read("Please write to notices@filmsdunord.example or abuse@host.example or legal@upstream.example")
    assert r.kind is ReplyKind.REDIRECT and r.redirect_to == "legal@upstream.example"
    r = read("Please contact our upstream provider.")
    assert r.kind is ReplyKind.REDIRECT and r.redirect_to is None and r.confidence < 0.8


def test_tickets_are_the_desks_never_ours() -> None:
    assert ticket_of("Re: [VIGIE-0123456789AB] notice [Ticket #88121]") == "88121"
    assert ticket_of("Your case number: CS-2026-0042 has been opened") == "CS-2026-0042"
    assert ticket_of("Référence : 2026/3344") is not None
    assert ticket_of("[VIGIE-0123456789AB] reference VIGIE-0123456789AB") is None
    r = classify(parse_mail(mk.reply(frm="rt@desk.example", subject="[desk.example #4711] AutoReply: DMCA",
                                      body="Greetings, this message has been automatically generated.")))
    assert r.kind is ReplyKind.ACK and r.ticket == "4711" and r.rule == "desk:request-tracker"


def test_dmca_counter_notice_needs_its_statements_to_be_sure() -> None:
    bare = read("This is a counter-notice.")
    assert bare.kind is ReplyKind.COUNTER_NOTICE and bare.confidence < 0.8
    full = read("Counter-notice. Under penalty of perjury, removed by mistake. I consent to the jurisdiction "
                "of the Federal District Court. /s/ Jane")
    assert full.kind is ReplyKind.COUNTER_NOTICE and full.confidence >= 0.9 and full.regime == "dmca"
    assert full.statements["perjury_mistake"] and full.statements["signature"]


def test_delayed_dsn_is_not_a_bounce_and_old_style_bounce_is_unsure() -> None:
    raw = mk.dsn(notice_message_id="<vigie.x@y.example>", dead="a@b.example").replace(
        b"Action: failed", b"Action: delayed").replace(b"Status: 5.1.1", b"Status: 4.4.1")
    r = classify(parse_mail(raw))
    assert r.kind is ReplyKind.OTHER and "delayed" in (r.reason or "")
    old = classify(parse_mail(mk.reply(frm="MAILER-DAEMON@mx.example", subject="Mail delivery failed",
                                       body="550 no such user")))
    assert old.kind is ReplyKind.BOUNCE and old.confidence < 0.8


def test_parser_limits_on_hostile_mime() -> None:
    # Thousands of parts: only MAX_PARTS are read, and it says so.
    m = EmailMessage()
    m["From"] = "x@y.example"
    m["Subject"] = "parts"
    m.set_content("hello")
    for i in range(MAX_PARTS + 50):
        m.add_attachment(b"x", maintype="application", subtype="octet-stream", filename=f"f{i}.bin")
    mail = parse_mail(m.as_bytes())
    assert len(mail.attachments) < MAX_PARTS and any("MIME parts" in p for p in mail.problems)
    # Deep nesting: refused below the limit, no RecursionError.
    raw = b"From: x@y.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 60):
        raw += f"--b{i - 1}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n".encode()
    mail = parse_mail(raw + b"--b59\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
    assert any("nested" in p or "deep" in p for p in mail.problems)
    # A header that hides a line break in an encoded word stays one line.
    mail = parse_mail(b"From: x@y.example\r\nSubject: =?UTF-8?Q?a=0D=0ABcc:_victim@z.example?=\r\n\r\nhi")
    assert "\n" not in mail.subject and "\r" not in mail.subject
    # An address with a display-name trick is kept only as a plain mailbox, or not at all.
    mail = parse_mail(b'From: "abuse@trusted.example" <evil@pirate.example>\r\n\r\nhi')
    assert mail.from_addr == "evil@pirate.example"
    # Huge: header only.
    mail = parse_mail(b"From: x@y.example\r\nSubject: big\r\n\r\n" + b"a" * 5000, max_bytes=1000)
    assert mail.subject == "big" and mail.text == "" and mail.problems
