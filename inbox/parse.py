"""Raw mail bytes -> what Vigie may safely read of them (the hostile-mail boundary).

Replies come from the people who run the pirate sites, so nothing here trusts the mail:

* at most ``max_bytes`` are parsed (the caller keeps the raw bytes); at most
  ``MAX_PARTS`` MIME parts, ``MAX_DEPTH`` levels of nesting, ``MAX_TEXT`` characters of text;
* headers are decoded by us (RFC 2047, any charset, errors replaced) and cleaned with
  ``notices.mail.clean_header_text``: one line, no control or bidi characters, no
  encoded-word markers left to be decoded twice; addresses are kept only when they are
  plain mailboxes (``notices.hosts.valid_email``);
* HTML is never rendered: it is turned into plain text here (tags dropped, scripts and
  styles skipped, no URL fetched), and that text is shown escaped;
* attachments are hashed and described (name, type, size, SHA-256), never decoded
  further, opened or run;
* a delivery status notification (RFC 3464 ``multipart/report; report-type=delivery-status``)
  is read with the stdlib ``email`` package: each recipient's action, status and
  diagnostic, and the Message-ID of the returned message.

``parse_mail`` never raises on bad input: what it could not read is listed in
``problems`` (the fuzz harness ``inbox_reply`` holds it to that).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from notices.hosts import valid_email
from notices.mail import clean_header_text

MAX_PARTS = 200
MAX_DEPTH = 12
MAX_TEXT = 200_000
MAX_IDS = 50
_MSGID = re.compile(r"<[^<>\s]{1,250}>")


@dataclass
class Recipient:
    """One recipient block of a delivery status notification."""

    address: str | None
    action: str            # failed | delayed | delivered | relayed | expanded | ""
    status: str            # e.g. 5.1.1
    diagnostic: str


@dataclass
class Dsn:
    recipients: list[Recipient] = field(default_factory=list)
    original_message_id: str | None = None
    reporting_mta: str = ""

    @property
    def failed(self) -> list[Recipient]:
        return [r for r in self.recipients if r.action == "failed" or r.status.startswith("5.")]


@dataclass
class ParsedMail:
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    from_addr: str | None = None
    reply_to: str | None = None
    subject: str = ""
    date: datetime | None = None
    auto_submitted: str = ""
    # The mail's own text (plain parts, and HTML parts as text), quotes included.
    text: str = ""
    attachments: list[dict[str, object]] = field(default_factory=list)
    dsn: Dsn | None = None
    # Message-IDs and text of messages returned inside this one (a bounce's original).
    returned_ids: list[str] = field(default_factory=list)
    returned_text: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def reply_text(self) -> str:
        """The text the sender wrote: quotes of earlier mail (``>`` lines, "On ... wrote:",
        "Le ... a écrit :", an "Original Message" block and what follows) left out."""
        return strip_quotes(self.text)


# --------------------------------------------------------------------------- headers


def header_text(msg: Message, name: str, limit: int = 500) -> str:
    """One header as clean one-line text ('' when absent or unreadable)."""
    try:
        raw = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the parser cannot even return is absent
        return ""
    if raw is None:
        return ""
    # A header of megabytes (a References line grown by a loop) is cut before decoding.
    raw = str(raw)[: max(4 * limit, 2000)]
    try:
        decoded = str(make_header(decode_header(raw)))
    except Exception:  # noqa: BLE001 - unknown charset, broken encoded word: keep it as sent
        decoded = raw
    return clean_header_text(decoded, limit)


def message_ids(value: str) -> list[str]:
    """The ``<...>`` ids of a Message-ID, In-Reply-To or References header, at most MAX_IDS."""
    return _MSGID.findall(value)[:MAX_IDS]


def address_of(value: str) -> str | None:
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001 - a header getaddresses chokes on has no address
        return None
    for _name, addr in pairs:
        ok = valid_email(addr)
        if ok:
            return ok.lower()
    return None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


# --------------------------------------------------------------------------- bodies


class _TextOfHtml(HTMLParser):
    """The text of an HTML part: tags dropped, script and style skipped, blocks on new lines.
    Nothing is fetched (no image, no stylesheet): the parser only sees the string."""

    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        if tag == "blockquote":
            self.quote += 1
        if tag in self.BLOCKS:
            self.out.append("\n" + "> " * self.quote)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        if tag == "blockquote" and self.quote:
            self.quote -= 1
        if tag in self.BLOCKS:
            self.out.append("\n" + "> " * self.quote)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data.replace("\n", "\n" + "> " * self.quote) if self.quote else data)


def html_to_text(html: str) -> str:
    p = _TextOfHtml()
    try:
        p.feed(html)
        p.close()
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; whatever it read is kept
        pass
    text = "".join(p.out)
    return re.sub(r"\n[ \t>]*\n(?:[ \t>]*\n)+", "\n\n", text).strip()


def _charset(part: Message) -> str:
    try:
        cs = part.get_content_charset() or "utf-8"
        codecs.lookup(cs)
        return cs
    except (LookupError, ValueError, TypeError):
        return "utf-8"


def _decoded(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding: nothing readable
        return b""
    return data if isinstance(data, bytes) else b""


def _text_of(part: Message) -> str:
    data = _decoded(part)[: MAX_TEXT * 4]
    try:
        text = data.decode(_charset(part), "replace")
    except Exception:  # noqa: BLE001 - codecs that raise on odd input (utf-7, punycode...)
        text = data.decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32 and ch != "\x7f")


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001 - an RFC 2231 name in an unknown charset
        name = ""
    return clean_header_text(str(name), 200)


# --------------------------------------------------------------------------- quotes

_QUOTE_START = re.compile(
    r"^\s*(?:on\b.{0,200}\bwrote:|le\b.{0,200}\ba écrit\s?:|-{2,}\s*original message\s*-{2,}"
    r"|-{2,}\s*message d'origine\s*-{2,}|-{2,}\s*forwarded message\s*-{2,}|-{2,}\s*message transféré\s*-{2,}"
    r"|(?:from|de)\s?:\s.{0,200}\b(?:sent|envoyé)\s?:)\s*$", re.I)


def strip_quotes(text: str) -> str:
    out = []
    for line in text.split("\n"):
        if _QUOTE_START.match(line) or re.match(r"^\s*(?:from|de)\s?:\s.+@", line, re.I) and out:
            break
        if line.lstrip().startswith(">"):
            continue
        out.append(line)
    return "\n".join(out).strip()


# --------------------------------------------------------------------------- DSN


def _dsn_of(report: Message) -> Dsn:
    dsn = Dsn()
    for part in report.get_payload() if report.is_multipart() else []:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                # A status part the parser kept as text: read its header blocks ourselves.
                raw = _decoded(part) or str(blocks).encode("utf-8", "replace")
                blocks = [BytesHeaderParser().parsebytes(b.strip() + b"\n")
                          for b in re.split(rb"\r?\n\r?\n", raw) if b.strip()]
            for i, block in enumerate(blocks[:MAX_IDS]):
                if not isinstance(block, Message):
                    continue
                if i == 0 and block.get("Reporting-MTA"):
                    dsn.reporting_mta = header_text(block, "Reporting-MTA", 200)
                # The address we wrote to (an alias may forward to the one that failed).
                recipient = header_text(block, "Original-Recipient") or header_text(block, "Final-Recipient")
                if not recipient:
                    continue
                dsn.recipients.append(Recipient(
                    address=address_of(recipient.split(";", 1)[-1]),
                    action=header_text(block, "Action", 40).lower(),
                    status=(re.findall(r"[245]\.\d{1,3}\.\d{1,3}", header_text(block, "Status", 40)) or [""])[0],
                    diagnostic=header_text(block, "Diagnostic-Code", 500)))
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"):
            original = _returned(part)
            if original is not None:
                ids = message_ids(header_text(original, "Message-ID"))
                dsn.original_message_id = ids[0] if ids else None
    return dsn


def _returned(part: Message) -> Message | None:
    """The returned message (or its header) inside a bounce."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    data = _decoded(part) or (payload.encode("utf-8", "replace") if isinstance(payload, str) else b"")
    try:
        return BytesHeaderParser().parsebytes(data[:200_000])
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- the walk


def _walk(mail: ParsedMail, part: Message, depth: int, returned: bool, texts: list[str],
          returned_texts: list[str], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        if budget[0] == -1:
            mail.problems.append(f"more than {MAX_PARTS} MIME parts: the rest is not read")
        return
    if depth > MAX_DEPTH:
        mail.problems.append(f"MIME parts nested deeper than {MAX_DEPTH}: not read")
        return
    ctype = part.get_content_type()
    if ctype == "multipart/report" and not returned and mail.dsn is None:
        try:
            if (part.get_param("report-type") or "").lower() == "delivery-status":
                mail.dsn = _dsn_of(part)
                if mail.dsn.original_message_id:
                    mail.returned_ids.append(mail.dsn.original_message_id)
        except Exception as exc:  # noqa: BLE001 - recorded; the rest of the mail is still read
            mail.problems.append(f"unreadable delivery status: {type(exc).__name__}")
    if ctype == "message/delivery-status":
        return  # read above as the DSN's blocks: no text, no attachment
    if part.is_multipart():
        payload = part.get_payload()
        is_attached_message = ctype.startswith("message/")
        if is_attached_message:
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    ids = message_ids(header_text(sub, "Message-ID"))
                    mail.returned_ids.extend(ids[:1])
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _walk(mail, sub, depth + 1, returned or is_attached_message, texts, returned_texts, budget)
        return
    disposition = (part.get_content_disposition() or "").lower()
    name = _filename(part)
    if ctype in ("text/rfc822-headers", "message/delivery-status"):
        original = _returned(part) if ctype == "text/rfc822-headers" else None
        if original is not None:
            mail.returned_ids.extend(message_ids(header_text(original, "Message-ID"))[:1])
        return
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not name:
        text = _text_of(part)
        if ctype == "text/html":
            text = html_to_text(text)
        (returned_texts if returned else texts).append(text)
        return
    data = _decoded(part)
    mail.attachments.append({"filename": name or None, "content_type": clean_header_text(ctype, 100),
                             "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})


def parse_mail(raw: bytes, *, max_bytes: int = 10_000_000) -> ParsedMail:
    """Read ``raw`` (at most ``max_bytes`` of it); never raises."""
    mail = ParsedMail()
    if len(raw) > max_bytes:
        mail.problems.append(f"larger than {max_bytes:,} bytes: only the header is read")
        end = raw.find(b"\r\n\r\n")
        end = raw.find(b"\n\n") if end < 0 else end
        raw = raw[: end if 0 <= end < max_bytes else min(len(raw), 64_000)]
    try:
        msg = message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:  # noqa: BLE001 - the email parser is lenient; this is a last resort
        mail.problems.append(f"unparseable mail: {type(exc).__name__}")
        return mail
    if msg.defects:
        mail.problems.extend(f"malformed: {type(d).__name__}" for d in msg.defects[:5])
    mail.message_id = (message_ids(header_text(msg, "Message-ID", 998)) or [None])[0]
    mail.in_reply_to = message_ids(header_text(msg, "In-Reply-To", 4000))
    mail.references = message_ids(header_text(msg, "References", 20_000))
    mail.from_addr = address_of(header_text(msg, "From", 998))
    mail.reply_to = address_of(header_text(msg, "Reply-To", 998))
    mail.subject = header_text(msg, "Subject", 500)
    mail.date = _date(header_text(msg, "Date", 200))
    mail.auto_submitted = " ".join(filter(None, (header_text(msg, h, 100).lower() for h in
                                                 ("Auto-Submitted", "X-Autoreply", "X-Autorespond",
                                                  "Precedence"))))
    texts: list[str] = []
    returned: list[str] = []
    try:
        _walk(mail, msg, 0, False, texts, returned, [MAX_PARTS])
    except RecursionError:
        mail.problems.append("MIME structure too deep to read")
    except Exception as exc:  # noqa: BLE001 - the parts read so far are kept
        mail.problems.append(f"unreadable MIME part: {type(exc).__name__}: {str(exc)[:100]}")
    mail.text = "\n\n".join(t for t in texts if t.strip())[:MAX_TEXT]
    mail.returned_text = "\n\n".join(returned)[:MAX_TEXT]
    mail.returned_ids = list(dict.fromkeys(mail.returned_ids))[:MAX_IDS]
    return mail
