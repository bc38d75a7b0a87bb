"""Replies of abuse desks, built with the stdlib ``email`` package for the inbox tests.

Each builder returns raw bytes as a host's mail server would deliver them: the kinds of
reply (acknowledgement, removed, refused, redirect, counter-notice), in English and in
French, a delivery status notification for a dead address, a reply that quotes no
reference, a malformed and a huge one.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

DATE = datetime(2026, 3, 10, 14, 0, tzinfo=timezone.utc)


def reply(*, frm: str, subject: str, body: str, in_reply_to: str | None = None, html: str | None = None,
          headers: dict[str, str] | None = None, date: datetime = DATE) -> bytes:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = "notices@filmsdunord.example"
    m["Subject"] = subject
    m["Date"] = format_datetime(date)
    m["Message-ID"] = make_msgid(domain=frm.rsplit("@", 1)[-1].strip(">"))
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
    return m.as_bytes()


def quoted(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def dsn(*, notice_message_id: str, dead: str, mta: str = "mx.tube.example") -> bytes:
    """An RFC 3464 bounce: the dead address, 5.1.1, the notice's header returned."""
    m = EmailMessage()
    m["From"] = f"Mail Delivery System <MAILER-DAEMON@{mta}>"
    m["To"] = "notices@filmsdunord.example"
    m["Subject"] = "Undelivered Mail Returned to Sender"
    m["Date"] = format_datetime(DATE)
    m["Message-ID"] = make_msgid(domain=mta)
    m["Auto-Submitted"] = "auto-replied"
    m.set_content(f"This is the mail system at host {mta}.\n\nI'm sorry to have to inform you that your "
                  f"message could not be delivered to one or more recipients.\n\n<{dead}>: host {mta} said: "
                  "550 5.1.1 User unknown\n")
    m.make_mixed()
    m.set_type("multipart/report")
    m.set_param("report-type", "delivery-status")
    status = EmailMessage()
    status.set_type("message/delivery-status")
    status.set_payload([_block({"Reporting-MTA": f"dns; {mta}", "Arrival-Date": format_datetime(DATE)}),
                        _block({"Final-Recipient": f"rfc822; {dead}", "Original-Recipient": f"rfc822;{dead}",
                                "Action": "failed", "Status": "5.1.1",
                                "Diagnostic-Code": "smtp; 550 5.1.1 <" + dead + ">: Recipient address "
                                                   "rejected: User unknown in virtual mailbox table"})])
    m.attach(status)
    headers = EmailMessage()
    headers.set_type("text/rfc822-headers")
    headers.set_payload(f"From: notices@filmsdunord.example\nTo: {dead}\nSubject: [VIGIE-X] DSA notice\n"
                        f"Message-ID: {notice_message_id}\n")
    m.attach(headers)
    return m.as_bytes()


def _block(fields: dict[str, str]) -> EmailMessage:
    b = EmailMessage()
    for k, v in fields.items():
        b[k] = v
    return b


def malformed() -> bytes:
    """Broken MIME: a boundary never closed, a charset nobody knows, encoded words that
    hide a line break and a NUL, a base64 part that is not base64, 8-bit bytes in headers."""
    return (b"From: =?x-unknown?B?QUJD?= <abuse@\xff\xfehost.example>\r\n"
            b"Subject: =?UTF-8?Q?Re=3A_hello=0AInjected:_header?= \xe9t\xe9\r\n"
            b"Message-ID: <broken@@host>\r\n"
            b"In-Reply-To: <not closed\r\n"
            b"Date: Tue, 99 Foo 20260 25:61:61 +9999\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
            b"--zz\r\nContent-Type: text/plain; charset=x-does-not-exist\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\x00\r\n"
            b"--zz\r\nContent-Type: text/html; charset=utf-7\r\n\r\n+ADw-script+AD4-alert(1)+ADw-/script+AD4-\r\n"
            b"--zz\r\nContent-Type: message/rfc822\r\n\r\nnot really a message\r\n")


def huge(*, frm: str, in_reply_to: str, size: int) -> bytes:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = "notices@filmsdunord.example"
    m["Subject"] = "Re: your notice (with our full logs)"
    m["Message-ID"] = make_msgid(domain="tube.example")
    m["In-Reply-To"] = in_reply_to
    m.set_content("We have removed the video. Logs attached.")
    m.add_attachment(b"\x00" * size, maintype="application", subtype="octet-stream", filename="logs.bin")
    return m.as_bytes()
