"""The notice as an email: headers only from our own fields, bodies and attachments.

Untrusted text never reaches a header: recipients are checked against a plain-mailbox
pattern (``notices.hosts.valid_email``), the subject is built from our own reference,
regime and catalogue titles and then stripped of control characters and of anything
that looks like an RFC 2047 encoded word (CPython's parser decodes ``=?UTF-8?Q?=0A?=``
into a line break). Message-ID and Date are fixed when the notice is queued, so a resend
of an in-doubt notice is byte-for-byte the same message. Used by ``notices.build`` (the
subject), ``notices.dispatch`` (sending and ``--dry-run`` .eml files).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from db.models import Notice
from notices.hosts import valid_email
from notices.machine import ACNS_END, ACNS_START, machine_problems, split_xarf
from foundation.timeutil import as_utc
from foundation.errors import DispatchError

SUBJECT_MAX = 180
_ENCODED_WORD = re.compile(r"=\?|\?=")


def clean_header_text(text: str, limit: int = SUBJECT_MAX) -> str:
    """One line of printable text, no encoded-word markers, at most ``limit`` characters."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        # Cc/Cf/Zl/Zp: control, format (bidi overrides), line and paragraph separators.
        out.append(" " if cat in ("Cc", "Cf", "Zl", "Zp") else ch)
    flat = _ENCODED_WORD.sub(" ", "".join(out))
    flat = " ".join(flat.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def new_message_id(sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1]
    return f"<vigie.{uuid.uuid4().hex}@{domain}>"


def sender_address(smtp_from: str | None, notifier_email: str | None) -> str:
    addr = valid_email(smtp_from) or valid_email(notifier_email)
    if addr is None:
        raise DispatchError("no sender address: set [smtp] from or [notifier] email to a plain "
                            "email address")
    return addr


def text_with_acns(text: str, acns: str | None) -> str:
    """The plain-text body with the ACNS XML after it between the marker lines that
    AbuseIO-style parsers look for (many read the body, not the attachments)."""
    if not acns:
        return text
    return f"{text.rstrip()}\n\n{ACNS_START}\n{acns.strip()}\n{ACNS_END}\n"


def build_message(notice: Notice, *, sender: str, parent_message_id: str | None = None) -> EmailMessage:
    """The EmailMessage of ``notice``, from its stored fields only."""
    to = valid_email(notice.recipient)
    if to is None:
        raise DispatchError(f"notice {notice.id}: recipient {notice.recipient!r} is not a plain address")
    if not notice.message_id or not re.fullmatch(r"<[A-Za-z0-9.\-_]+@[A-Za-z0-9.\-]+>", notice.message_id):
        raise DispatchError(f"notice {notice.id}: missing or malformed Message-ID")
    broken = machine_problems(notice.acns_xml, notice.xarf_json)
    if broken:
        # A document a desk's parser would reject (built before a schema change, edited
        # by hand) must not go out as if it were sound: the notice fails, saying why.
        raise DispatchError(f"notice {notice.id}: invalid machine-readable part(s), rebuild it: "
                            + "; ".join(broken[:5]))
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    subject = clean_header_text(notice.subject or f"Notice {notice.id}")
    if subject.isascii() and len("Subject: ") + len(subject) <= 78:
        msg["Subject"] = subject  # one line, nothing to fold
    else:
        # Encoded by us, set as is: CPython's folder can leave a space before a line
        # break and add the fold's ("a b ¡" read back as "a b  ¡") or start a long
        # subject with a space; encoded words read back exactly.
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())
    msg["Date"] = format_datetime(as_utc(notice.created_at))  # type: ignore[arg-type]
    msg["Message-ID"] = notice.message_id
    msg["Auto-Submitted"] = "auto-generated"
    if parent_message_id and re.fullmatch(r"<[A-Za-z0-9.\-_]+@[A-Za-z0-9.\-]+>", parent_message_id):
        msg["In-Reply-To"] = parent_message_id
        msg["References"] = parent_message_id
    msg.set_content(text_with_acns(notice.body_text or "", notice.acns_xml), subtype="plain", charset="utf-8")
    if notice.body_html:
        msg.add_alternative(notice.body_html, subtype="html", charset="utf-8")
    if notice.acns_xml:
        msg.add_attachment(notice.acns_xml.encode("utf-8"), maintype="application", subtype="xml",
                           filename=f"acns-{notice.id}.xml")
    reports = split_xarf(notice.xarf_json)
    for i, report in enumerate(reports, 1):
        # One X-ARF v4 report per file: the format is one report per source.
        name = f"xarf-{notice.id}.json" if len(reports) == 1 else f"xarf-{notice.id}-{i}.json"
        msg.add_attachment(json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"),
                           maintype="application", subtype="json", filename=name)
    # Fixed MIME boundaries (the email package draws random ones): a resend of an
    # in-doubt notice must be the same bytes, not just the same Message-ID.
    token = re.sub(r"[^A-Za-z0-9]", "", notice.message_id)[:40]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_vigie_{token}_{i}")
    return msg
