"""The hosts' replies, end to end on real mailboxes: a maildir and an mbox written with the
stdlib ``mailbox`` module, notices really sent over SMTP (aiosmtpd on loopback) first, so
the replies answer real Message-IDs and references.

Each kind of reply in English and French, a DSN for a dead address, a DMCA counter-notice
and a DSA statement of reasons, a reply that quotes no reference (threaded by URL), one
that quotes nothing at all (staff queue), a malformed and a huge mail, an HTML-only mail
with a script and a remote image. Then what the readings change: the bounced notice
failed and its contact no longer used, the counter-noticed URL never re-notified by
verification, the redirect accepted by staff, the counter-notice decided.
"""

from __future__ import annotations

import json
import mailbox
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from db.models import (
    AuditLog,
    CounterNotice,
    CounterNoticeState,
    Host,
    InboxMessage,
    InboxState,
    ItemState,
    Notice,
    NoticeItem,
    NoticeStatus,
    ReplyKind,
)
from foundation.config import Config
from foundation.errors import InvalidInput
from inbox import decide
from inbox.sources import import_path
from inbox.store import add_business_days
from inbox.thread import reference_of
from inbox.views import silent_hosts
from notices.build import queue_notices
from notices.dispatch import dispatch
from notices.hosts import resolve_contact
from notices.verify import verify
from tests import inbox_mail as mk
from tests.test_notices_support import T0, add_host, add_match, add_title, make_config, smtp, web  # noqa: F401
from vigie.cli import cli

NOW = mk.DATE + timedelta(hours=1)


def config(smtp_port: int, **inbox: Any) -> Config:
    cfg = make_config(smtp_port)
    cfg.inbox = {"max_bytes": 200_000, **inbox}
    return cfg


def sent_world(Session, cfg: Config, base: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two hosts notified for real: ``us`` (DMCA, English, on the loopback web server) and
    ``tube`` (DSA, French)."""
    with Session.begin() as s:
        t = add_title(s)
        us = add_host(s, "usvid", domain_patterns=["127.0.0.1"], jurisdiction="US", language="en",
                      abuse_contact="dmca@usvid.example")
        tube = add_host(s, "tube", domain_patterns=["tube.example"])
        add_match(s, t, us, f"{base}/watch/a")
        add_match(s, t, us, f"{base}/watch/b")
        add_match(s, t, tube, "https://tube.example/v/1")
        add_match(s, t, tube, "https://tube.example/v/2")
        queue_notices(s, cfg, T0)
    r = dispatch(Session, cfg, now=T0)
    assert len(r.sent) == 2, r
    with Session() as s:
        out = {}
        for n in s.scalars(select(Notice)):
            out[n.host.name] = {"id": n.id, "mid": n.message_id, "ref": reference_of(n),
                                "subject": n.subject, "body": n.body_text, "urls": [i.url for i in n.items]}
        return out


def replies(w: dict[str, Any]) -> dict[str, bytes]:
    us, fr = w["usvid"], w["tube"]
    return {
        "ack_en": mk.reply(frm="Abuse Desk <noreply@usvid.example>", subject=f"Re: {us['subject']}",
                           in_reply_to=us["mid"], headers={"Auto-Submitted": "auto-replied"},
                           body="Thank you for contacting us. Your report has been received and logged "
                                "under ticket number USV-2026-88121. This is an automated response."),
        "ack_fr": mk.reply(frm="support@tube.example", subject=f"Accusé de réception [Ticket#2026031044] {fr['ref']}",
                           body="Bonjour,\n\nNous avons bien reçu votre notification. Votre dossier sera traité "
                                "dans les meilleurs délais.\n\nL'équipe abuse"),
        "removed_en": mk.reply(frm="dmca@usvid.example", subject=f"Re: {us['subject']}", in_reply_to=us["mid"],
                               body="Hello,\n\nWe have removed the videos you reported.\n\nOn Mon, 2 Mar 2026, "
                                    "notices@filmsdunord.example wrote:\n" + mk.quoted(us["body"])),
        # No In-Reply-To, no reference: only the URLs it quotes tie it to its notice.
        "removed_fr": mk.reply(frm="abuse@tube.example", subject="Contenus signalés",
                               body="Bonjour,\n\nLes contenus suivants ont été supprimés :\n"
                                    + "\n".join(fr["urls"]) + "\n\nCordialement"),
        "refused_en": mk.reply(frm="dmca@usvid.example", subject=f"Re: {us['ref']}",
                               body="We will not take action on this request: the content is fair use."),
        "refused_fr": mk.reply(frm="abuse@tube.example", subject=f"RE: {fr['subject']}", in_reply_to=fr["mid"],
                               body="Madame, Monsieur,\n\nNous ne donnerons pas suite à votre demande : "
                                    "la notification est incomplète.\n"),
        "redirect_en": mk.reply(frm="abuse@cdn.example", subject=f"Re: {us['subject']}", in_reply_to=us["mid"],
                                body="This site is not our customer; we are only the CDN. Please write to "
                                     "abuse@origin-host.example with your complaint.\n"),
        "redirect_fr": mk.reply(frm="abuse@tube.example", subject=f"Re: {fr['subject']}", in_reply_to=fr["mid"],
                                body="Bonjour, ce site n'est pas un de nos clients. Veuillez contacter "
                                     "abuse@hebergeur-reel.example.\n"),
        "dsn": mk.dsn(notice_message_id=fr["mid"], dead="abuse@tube.example"),
        "counter_dmca": mk.reply(
            frm="dmca@usvid.example", subject=f"DMCA Counter-Notice regarding {us['ref']}",
            body="We received the following counter-notification under 17 U.S.C. 512(g) from our user:\n\n"
                 f"The material at {us['urls'][0]} was removed.\n"
                 "I swear, under penalty of perjury, that I have a good faith belief that the material was "
                 "removed or disabled as a result of mistake or misidentification.\n"
                 "I consent to the jurisdiction of the Federal District Court for the judicial district in which "
                 "my address is located, and I will accept service of process from the complainant.\n"
                 "/s/ John Uploader, 1 Main St, Springfield\n"),
        "dsa_statement": mk.reply(
            frm="abuse@tube.example", subject=f"Exposé des motifs - {fr['ref']}",
            body="Exposé des motifs (article 17 du règlement sur les services numériques) :\n"
                 "Après examen de la réclamation de l'utilisateur, le contenu a été rétabli : "
                 f"{fr['urls'][1]}\nVous pouvez contester cette décision (article 20)."),
        "no_reference": mk.reply(frm="someone@elsewhere.example", subject="hello?",
                                 body="Hi, I got a mail from you but what is this about?"),
        "html_only": mk.reply(frm="abuse@tube.example", subject=f"Re: {fr['subject']}", in_reply_to=fr["mid"],
                              body="", html="<html><head><style>p{}</style><script>alert('x')</script></head>"
                                            "<body><p>Nous avons bien re&ccedil;u votre signalement.</p>"
                                            "<img src='https://tracker.example/pixel.gif'></body></html>"),
        "malformed": mk.malformed(),
        "huge": mk.huge(frm="dmca@usvid.example", in_reply_to=us["mid"], size=400_000),
    }


def write_maildir(path: Path, mails: dict[str, bytes]) -> dict[str, str]:
    box = mailbox.Maildir(str(path), create=True)
    keys = {name: box.add(raw) for name, raw in mails.items()}
    box.close()
    return keys


def by_name(Session, keys: dict[str, str]) -> dict[str, InboxMessage]:  # type: ignore[no-untyped-def]
    with Session() as s:
        rows = {m.source.rsplit(":", 1)[1]: m for m in s.scalars(select(InboxMessage))}
        for m in rows.values():
            s.expunge(m)
    return {name: rows[key] for name, key in keys.items() if key in rows}


EXPECTED = {
    # name: (kind, state, host, threaded_by)
    "ack_en": (ReplyKind.ACK, InboxState.FILED, "usvid", "in-reply-to"),
    "ack_fr": (ReplyKind.ACK, InboxState.FILED, "tube", "reference"),
    "removed_en": (ReplyKind.REMOVED, InboxState.FILED, "usvid", "in-reply-to"),
    "removed_fr": (ReplyKind.REMOVED, InboxState.FILED, "tube", "url"),
    "refused_en": (ReplyKind.REFUSED, InboxState.STAFF, "usvid", "reference"),
    "refused_fr": (ReplyKind.REFUSED, InboxState.STAFF, "tube", "in-reply-to"),
    "redirect_en": (ReplyKind.REDIRECT, InboxState.STAFF, "usvid", "in-reply-to"),
    "redirect_fr": (ReplyKind.REDIRECT, InboxState.STAFF, "tube", "in-reply-to"),
    "dsn": (ReplyKind.BOUNCE, InboxState.STAFF, "tube", "returned-message"),
    "counter_dmca": (ReplyKind.COUNTER_NOTICE, InboxState.STAFF, "usvid", "reference"),
    "dsa_statement": (ReplyKind.COUNTER_NOTICE, InboxState.STAFF, "tube", "reference"),
    "no_reference": (ReplyKind.OTHER, InboxState.STAFF, None, None),
    "html_only": (ReplyKind.ACK, InboxState.FILED, "tube", "in-reply-to"),
    "malformed": (ReplyKind.OTHER, InboxState.STAFF, None, None),
    "huge": (ReplyKind.OTHER, InboxState.STAFF, "usvid", "in-reply-to"),
}
OWN = {"own_copy": (ReplyKind.OTHER, InboxState.CLOSED, "first", "own-message")}


def test_every_kind_of_reply_from_a_maildir(Session, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    # A copy of our own notice, as the SMTP server received it, lands in the mailbox too.
    mails["own_copy"] = rec.received[0].raw
    keys = write_maildir(tmp_path / "Maildir", mails)

    out = import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    assert out.seen == len(mails) and not out.result.errors, out.result.errors
    assert len(out.result.stored) == len(mails)
    got = by_name(Session, keys)
    notice_ids = {"usvid": w["usvid"]["id"], "tube": w["tube"]["id"]}
    wrong = {}
    first = min(notice_ids.values())       # the notice the SMTP server received first
    for name, (kind, state, host, how) in {**EXPECTED, **OWN}.items():
        m = got[name]
        seen = (m.kind, m.state, m.notice_id, m.threaded_by)
        want = (kind, state, first if host == "first" else notice_ids.get(host or "", None), how)
        if seen != want:
            wrong[name] = (seen, want, m.rule, m.confidence, m.staff_reason)
    assert not wrong, wrong

    # Every mail stored with its raw bytes (the huge one: its header only, flagged).
    for name, m in got.items():
        if name == "huge":
            assert m.truncated and m.size > 400_000 and len(m.raw) < 5_000
            assert "max_bytes" in (m.staff_reason or "")
        else:
            assert m.raw == mails[name] and not m.truncated
    # Tickets kept: the desk's own number, never our reference.
    assert got["ack_en"].ticket == "USV-2026-88121"
    assert got["ack_fr"].ticket == "2026031044"
    assert got["refused_fr"].reason and "incomplète" in got["refused_fr"].reason
    assert got["redirect_en"].redirect_to == "abuse@origin-host.example"
    assert got["redirect_fr"].redirect_to == "abuse@hebergeur-reel.example"
    assert got["ack_en"].confidence >= 0.8 and got["no_reference"].confidence < 0.8
    # HTML shown as text only: the script and the remote image are gone, the words kept.
    html = got["html_only"]
    assert "bien reçu votre signalement" in (html.text or "")
    assert "alert" not in (html.text or "") and "tracker.example" not in (html.text or "")
    assert got["malformed"].details["problems"]

    with Session() as s:
        fr_notice = s.get(Notice, w["tube"]["id"])
        us_notice = s.get(Notice, w["usvid"]["id"])
        # The bounce: notice failed with the reason, the address marked bad and no longer used.
        assert fr_notice.status is NoticeStatus.FAILED
        assert "5.1.1" in (fr_notice.last_error or "") and f"#{got['dsn'].id}" in fr_notice.last_error
        assert "abuse@tube.example" in fr_notice.host.settings["bad_contacts"]
        contact = resolve_contact(fr_notice.host, origin=None, discover=False, timeout=1, allow_loopback=False)
        assert contact.address is None and "bounced" in contact.detail
        assert us_notice.status is NoticeStatus.SENT
        # The redirects are offered, not applied.
        assert us_notice.host.abuse_contact == "dmca@usvid.example"
        assert fr_notice.host.settings["suggested_contact"]["address"] == "abuse@hebergeur-reel.example"
        # The counter-notices: DMCA with its statements and put-back window, DSA with its reasons.
        cns = {c.regime: c for c in s.scalars(select(CounterNotice))}
        dmca, dsa = cns["dmca"], cns["dsa"]
        assert dmca.notice_id == us_notice.id and dmca.urls == [w["usvid"]["urls"][0]]
        assert dmca.statements["perjury_mistake"] and dmca.statements["consent_jurisdiction"]
        assert dmca.putback_from == add_business_days(mk.DATE.date(), 10) == date(2026, 3, 24)
        assert dmca.putback_until == date(2026, 3, 30)
        assert dsa.notice_id == fr_notice.id and dsa.urls == [w["tube"]["urls"][1]] and dsa.putback_from is None
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.actor == "inbox")) >= 3

    # Stored once: the same maildir again stores nothing; a re-delivered copy neither.
    again = import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    assert again.result.stored == [] and again.result.duplicates == len(mails)
    copy = b"Received: from relay2.example by mx; Tue, 10 Mar 2026 15:00:00 +0000\r\n" + mails["ack_en"]
    write_maildir(tmp_path / "Copy", {"copy": copy})
    assert import_path(Session, cfg, tmp_path / "Copy", now=NOW).result.duplicates == 1


def test_counter_noticed_url_is_never_renotified_by_verification(Session, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    keys = write_maildir(tmp_path / "Maildir", {k: mails[k] for k in ("counter_dmca", "ack_en", "redirect_en")})
    import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    with Session.begin() as s:   # staff accept the desk's "write to X"
        decide.accept_contact(s, by_name(Session, keys)["redirect_en"].id, "ana")
    contested, other = w["usvid"]["urls"]
    pages.set("/watch/a", 200, "<video src='/v.mp4'></video>")
    pages.set("/watch/b", 200, "<video src='/v.mp4'></video>")
    later = T0 + timedelta(days=5)     # both overdue: a reminder is due
    with Session.begin() as s:
        r = verify(s, cfg, now=later)
    with Session() as s:
        reminders = list(s.scalars(select(Notice).where(Notice.kind == "reminder")))
        assert len(reminders) == 1 and [i.url for i in reminders[0].items] == [other]
        # The desk's ticket from its acknowledgement is in the reminder's subject.
        assert "] (ticket USV-2026-88121) REMINDER" in reminders[0].subject, reminders[0].subject
        assert reminders[0].recipient == "abuse@origin-host.example"      # the contact staff accepted
        item = s.scalar(select(NoticeItem).where(NoticeItem.url == contested))
        assert item.state is ItemState.LIVE and item.escalation_level == 0
    assert r.checked >= 2
    # Staff decide: a court action was filed; the URL stays out of automatic notices.
    with Session.begin() as s:
        cn = s.scalar(select(CounterNotice))
        with pytest.raises(InvalidInput, match="accepted, court_action"):
            decide.decide_counter_notice(s, cn.id, "complaint", "ana")   # a DSA answer, not DMCA
    with Session.begin() as s:
        cn = decide.decide_counter_notice(s, s.scalar(select(CounterNotice.id)), "court_action", "ana",
                                          "filed in N.D. Cal.")
        assert cn.state is CounterNoticeState.COURT_ACTION and cn.message.state is InboxState.CLOSED
    assert keys


def test_staff_accept_a_redirect_and_file_an_unmatched_mail(Session, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    keys = write_maildir(tmp_path / "Maildir", {k: mails[k] for k in ("redirect_fr", "no_reference", "dsn")})
    import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    got = by_name(Session, keys)
    with Session.begin() as s:
        decide.accept_contact(s, got["redirect_fr"].id, "ana")
    with Session() as s:
        host = s.scalar(select(Host).where(Host.name == "tube"))
        assert host.abuse_contact == "abuse@hebergeur-reel.example"
        assert "suggested_contact" not in host.settings
        # The new contact is good again even though the old one bounced.
        assert resolve_contact(host, origin=None, discover=False, timeout=1,
                               allow_loopback=False).address == "abuse@hebergeur-reel.example"
        assert s.get(InboxMessage, got["redirect_fr"].id).state is InboxState.CLOSED
        # The notice that bounced never reached anyone: its URLs go to the new contact.
        bounced = s.get(Notice, w["tube"]["id"])
        assert bounced.status is NoticeStatus.DISCARDED and bounced.last_error.startswith("refused after a bounce")
    with Session.begin() as s:
        q = queue_notices(s, cfg, NOW)
        assert [(n.recipient, sorted(i.url for i in n.items)) for n in q.notices] == \
            [("abuse@hebergeur-reel.example", sorted(w["tube"]["urls"]))]
    with Session.begin() as s:
        m = decide.file_message(s, got["no_reference"].id, w["usvid"]["id"], "refused", "ana")
        assert m.notice_id == w["usvid"]["id"] and m.threaded_by == "staff" and m.state is InboxState.STAFF
        decide.close_message(s, m.id, "ana", "answered by phone")
    with Session() as s:
        assert s.get(InboxMessage, got["no_reference"].id).state is InboxState.CLOSED
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.actor == "ana")) >= 4


def test_cli_import_an_mbox_and_list(Session, db_url, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    box = mailbox.mbox(str(tmp_path / "replies.mbox"), create=True)
    for k in ("ack_en", "no_reference", "counter_dmca", "malformed"):
        box.add(mails[k])
    box.close()
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", db_url, "inbox", "import", str(tmp_path / "replies.mbox"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert len(out["stored"]) == 4 and out["for_staff"] == 3 and out["by_kind"]["ack"] == 1
    r = runner.invoke(cli, ["--db", db_url, "inbox", "list"])
    assert r.exit_code == 0 and "3 mail(s) for staff" in r.output and "1 counter-notice(s) open" in r.output
    # The CLI runs today: the March date of the mail is implausible, so the window counts from now.
    assert re.search(r"put-back window \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(in \d+ days\)", r.output)
    r = runner.invoke(cli, ["--db", db_url, "inbox", "import", str(tmp_path / "nothing-here")])
    assert r.exit_code == 2    # click: the path does not exist
    (tmp_path / "notmail").write_text("hello")
    r = runner.invoke(cli, ["--db", db_url, "inbox", "import", str(tmp_path / "notmail")])
    assert r.exit_code == 1 and "not an mbox" in r.output
    r = runner.invoke(cli, ["--db", db_url, "inbox", "fetch"])
    assert r.exit_code == 0 and "no [inbox] host configured" in r.output
    r = runner.invoke(cli, ["--db", db_url, "status", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output)["queues"]["inbox_for_staff"] == 3


def test_daily_report_shows_replies_silent_hosts_and_open_counter_notices(Session, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reports.daily import collect, render_html

    rec, port = smtp
    pages, base = web
    cfg = config(port)
    w = sent_world(Session, cfg, base)
    mails = replies(w)
    # Only the US host answers; the French host stays silent.
    write_maildir(tmp_path / "Maildir", {k: mails[k] for k in ("ack_en", "removed_en", "counter_dmca")})
    import_path(Session, cfg, tmp_path / "Maildir", now=NOW)
    with Session() as s:
        data = collect(s, Config(timezone="UTC"), mk.DATE.date(), now=NOW)
        html = render_html(data)
    assert data.replies["ack"] == 1 and data.replies["removed"] == 1 and data.replies["counter_notice"] == 1
    assert [h["host"] for h in data.silent_hosts] == ["tube"]
    with Session() as s:
        assert [h["host"] for h in silent_hosts(s)] == ["tube"]      # what the Inbox page shows
    assert len(data.counter_notices) == 1 and data.counter_notices[0]["window"].startswith("2026-03-24 to 2026-03-30")
    assert data.headline["replies from hosts"] == 3 and data.headline["counter-notices open"] == 1
    assert 'id="replies"' in html and "Hosts that never answered" in html and "2026-03-24 to 2026-03-30" in html


def test_url_threading_picks_the_senders_notice_when_page_and_video_were_both_notified(
        Session, smtp, web, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rec, port = smtp
    pages, base = web
    cfg = config(port)
    page, video = f"{base}/watch/linked", "https://tube.example/v/9.mp4"
    with Session.begin() as s:
        t = add_title(s)
        us = add_host(s, "usvid", domain_patterns=["127.0.0.1"], jurisdiction="US", language="en",
                      abuse_contact="dmca@usvid.example")
        add_host(s, "tube", domain_patterns=["tube.example"])
        add_match(s, t, us, page, media=[video]).media_url = video
        queue_notices(s, cfg, T0)
    assert len(dispatch(Session, cfg, now=T0).sent) == 2
    both = f"Bonjour, concernant {page} et {video} : les contenus ont été supprimés."
    keys = write_maildir(tmp_path / "M", {"fr": mk.reply(frm="abuse@tube.example", subject="Signalement", body=both),
                                          "stranger": mk.reply(frm="x@elsewhere.example", subject="?", body=both)})
    import_path(Session, cfg, tmp_path / "M", now=NOW)
    got = by_name(Session, keys)
    with Session() as s:
        tube_notice = s.scalar(select(Notice.id).join(Host).where(Host.name == "tube"))
    assert (got["fr"].notice_id, got["fr"].threaded_by, got["fr"].kind) == (tube_notice, "url", ReplyKind.REMOVED)
    assert got["stranger"].notice_id is None and got["stranger"].state is InboxState.STAFF


def test_status_names_a_counter_notice_whose_putback_window_has_begun(Session) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    from stages.ops import collect_status

    now = datetime(2026, 3, 25, 9, 0, tzinfo=timezone.utc)
    with Session.begin() as s:
        s.add(CounterNotice(regime="dmca", received_at=mk.DATE, urls=["https://tube.example/v/1"],
                            putback_from=date(2026, 3, 24), putback_until=date(2026, 3, 30)))
        s.add(CounterNotice(regime="dmca", received_at=mk.DATE, urls=["https://tube.example/v/2"],
                            putback_from=date(2026, 4, 24), putback_until=date(2026, 4, 30)))
        s.add(CounterNotice(regime="dmca", received_at=mk.DATE, urls=["https://tube.example/v/3"],
                            putback_from=date(2026, 3, 1), putback_until=date(2026, 3, 5),
                            state=CounterNoticeState.ACCEPTED))
    with Session() as s:
        st = collect_status(s, Config(), stale_after_s=120, now=now)
    due = [line for line in st.overdue if line.startswith("counter-notice")]
    assert due == ["counter-notice 1 (notice None): undecided, put-back window 2026-03-24 to 2026-03-30 (open now)"]
    assert st.queues["counter_notices_open"] == 2
