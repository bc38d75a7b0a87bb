"""Notice building: every regime's required elements, the offers, the evidence, the
machine-readable parts, validation naming what is missing, grouping, partners, approval,
contact discovery and header safety."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import select

from db.models import Decision, Notice, NoticeStatus, ReviewState
from notices.build import approve_notice, make_notice, queue_notices
from notices.hosts import Contact, parse_security_txt
from notices.machine import ACNS_NS
from notices.mail import build_message, clean_header_text
from notices.regimes import DELISTING, DMCA, DSA, REGIMES
from tests.test_notices_support import T0, add_host, add_match, add_title, make_config, web  # noqa: F401
from foundation.errors import NoticeInvalid

REQUIRED_TEXT = {
    ("dmca", "en"): ["17 U.S.C. 512(c)(3)", "good faith belief", "under penalty of perjury",
                     "Signature: /Claire Martin", "+33 1 23 45 67 89", "12 rue de la Paix"],
    ("dmca", "fr"): ["512(c)(3)", "de bonne foi", "sous peine de parjure", "Signature : /Claire Martin",
                     "+33 1 23 45 67 89", "12 rue de la Paix"],
    ("dsa", "en"): ["Article 16", "Why this content is illegal", "accurate and complete",
                    "rights@filmsdunord.example", "Films du Nord SAS"],
    ("dsa", "fr"): ["article 16", "Pourquoi ce contenu est illicite", "exactes et complètes",
                    "rights@filmsdunord.example"],
    ("delisting", "en"): ["delist", "Where to watch it legally", "good faith"],
    ("delisting", "fr"): ["déréférencement", "Où voir l'œuvre légalement", "bonne foi"],
}


@pytest.mark.parametrize("regime", ["dmca", "dsa", "delisting"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_each_regime_renders_every_required_element(Session, regime: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, jurisdiction="FR", language=lang, settings={"regime": regime})
        m1 = add_match(s, t, h, "https://videohost.example/v/1")
        m2 = add_match(s, t, h, "https://videohost.example/v/2", media=["https://cdn.videohost.example/1.mp4"])
        n = make_notice(s, make_config(), host=h, matches=[m1, m2], kind="notice", regime=REGIMES[regime],
                        language=lang, contact=Contact("abuse@videohost.example", "configured"), now=T0)
        assert n.status is NoticeStatus.QUEUED and n.regime == regime and n.language == lang
        text, html = n.body_text, n.body_html
        for needle in REQUIRED_TEXT[(regime, lang)]:
            assert needle in " ".join(text.split()), needle
        for url in ("https://videohost.example/v/1", "https://videohost.example/v/2",
                    "https://cdn.videohost.example/1.mp4"):
            assert url in text and url in html
        # The legitimate offer of the host's territory (FR), not the US-only one.
        assert "https://vod.filmsdunord.example/le-voyage" in text
        assert 'href="https://vod.filmsdunord.example/le-voyage"' in html
        assert "us-stream.example" not in text
        # Evidence per URL: when found, score, matched duration, timecodes, page hash.
        assert "2026-03-02 06:00:00 UTC" in text and "0.97" in text and "412.0 s" in text
        assert "0:20:00.000-0:27:00.000" in text and "ab" * 32 in text
        # Machine-readable parts.
        root = ET.fromstring(n.acns_xml)
        ns = {"a": ACNS_NS}
        assert root.tag == f"{{{ACNS_NS}}}Infringement"
        for path in ("a:Case/a:ID", "a:Complainant/a:Entity", "a:Service_Provider/a:Entity",
                     "a:Source/a:TimeStamp"):
            assert root.find(path, ns) is not None, path
        assert [e.text for e in root.findall("a:Content/a:Item/a:URL", ns)] == [
            "https://videohost.example/v/1", "https://videohost.example/v/2"]
        assert root.find("a:Content/a:Item/a:Hash", ns).get("Type") == "SHA256"  # type: ignore[union-attr]
        assert root.find("a:Content/a:Item/a:Title", ns).text == "Le Voyage"  # type: ignore[union-attr]
        xarf = json.loads(n.xarf_json)
        assert [r["Report"]["Source"] for r in xarf] == ["https://videohost.example/v/1",
                                                         "https://videohost.example/v/2"]
        assert {r["Report"]["ReportType"] for r in xarf} == {"ugc_platform"}
        assert xarf[0]["Version"] == "4" and xarf[0]["Report"]["ReportClass"] == "Copyright"


@pytest.mark.parametrize(("regime", "drop", "named"), [
    (DMCA, "signature", "(i) signature"),
    (DMCA, "phone", "(iv) complainant's telephone number"),
    (DMCA, "address", "(iv) complainant's address"),
    (DSA, "email", "(c) notifier's email address"),
    (DSA, "legal_name", "(c) notifier's name"),
    (DELISTING, "email", "requester's email address"),
])
def test_validation_names_the_missing_element(Session, regime, drop: str, named: str) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config()
    cfg.notifier[drop] = ""
    with Session.begin() as s:
        t = add_title(s)
        if drop == "legal_name":  # the holder's own name comes first: blank it too
            t.rights[0].holder.legal_name = ""
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        with pytest.raises(NoticeInvalid) as err:
            make_notice(s, cfg, host=h, matches=[m], kind="notice", regime=regime, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        assert named in str(err.value)
        assert s.scalar(select(Notice)) is None


def test_validation_delisting_needs_an_authorised_copy_and_evidence(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s, offers=[])
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        m.candidate.evidence = {}
        with pytest.raises(NoticeInvalid) as err:
            make_notice(s, make_config(), host=h, matches=[m], kind="delisting", regime=DELISTING,
                        language="en", contact=Contact("a@b.example", "configured"), now=T0)
        assert "authorised copy" in str(err.value) and "evidence hash" in str(err.value)


def test_validation_refuses_a_template_without_its_sworn_statements() -> None:
    ctx = {"language": "en", "host": {"name": "h"}, "notifier": {}, "works": []}
    missing = DMCA.missing(ctx, text="Please remove this. Signed.")
    assert "statement 'under penalty of perjury' in the rendered text" in missing
    assert "statement 'good faith belief' in the rendered text" in missing


def test_queue_groups_per_host_bounded_and_never_twice(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(max_urls_per_notice=2)
    with Session.begin() as s:
        t = add_title(s)
        a = add_host(s, "alpha", jurisdiction="US", language="en")
        b = add_host(s, "beta")
        for i in range(3):
            add_match(s, t, a, f"https://alpha.example/v/{i}")
        add_match(s, t, b, "https://beta.example/v/1")
        add_match(s, t, b, "https://beta.example/v/review", decision=Decision.REVIEW)
        approved = add_match(s, t, b, "https://beta.example/v/approved", decision=Decision.REVIEW)
        approved.review = ReviewState.APPROVED
        rejected = add_match(s, t, b, "https://beta.example/v/rejected")
        rejected.review = ReviewState.REJECTED
        res = queue_notices(s, cfg, T0)
        assert not res.refused
        by_host = sorted((n.host.name, n.regime, n.language, sorted(i.url for i in n.items)) for n in res.notices)
        assert by_host == [
            ("alpha", "dmca", "en", ["https://alpha.example/v/0", "https://alpha.example/v/1"]),
            ("alpha", "dmca", "en", ["https://alpha.example/v/2"]),
            ("beta", "dsa", "fr", ["https://beta.example/v/1", "https://beta.example/v/approved"]),
        ]
    with Session.begin() as s:
        assert queue_notices(s, cfg, T0).notices == []


def test_licensed_partners_and_own_offers_are_never_notified(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        partner = add_host(s, "partner", licensed_partner=True)
        add_match(s, t, partner, "https://partner.example/film")
        add_match(s, t, None, "https://vod.filmsdunord.example/le-voyage")
        res = queue_notices(s, make_config(), T0)
        assert res.notices == [] and res.partners_skipped == 2


def test_needs_approval_waits_for_staff(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, needs_approval=True)
        add_match(s, t, h, "https://videohost.example/v/1")
        (n,) = queue_notices(s, make_config(), T0).notices
        assert n.status is NoticeStatus.AWAITING_APPROVAL
        approve_notice(s, n.id, actor="claire")
        assert n.status is NoticeStatus.QUEUED and n.approved_at is not None
        with pytest.raises(NoticeInvalid):
            approve_notice(s, n.id)
        # A host that became a partner meanwhile: the approval discards the notice.
        m2 = add_match(s, t, h, "https://videohost.example/v/2")
        (n2,) = queue_notices(s, make_config(), T0).notices
        h.licensed_partner = True
        approve_notice(s, n2.id)
        assert n2.status is NoticeStatus.DISCARDED and "licensed partner" in n2.last_error
        assert m2.id


def test_contact_discovery_security_txt_then_guess_and_no_contact_is_flagged(Session, web) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    pages.set("/.well-known/security.txt", 200,
              "# hi\nContact: https://example/form\nContact: mailto:dmca@pirate-host.example\n")
    cfg = make_config(discover_contacts=True)
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "pirate", abuse_contact=None, domain_patterns=["127.0.0.1"])
        add_match(s, t, h, f"{base}/watch/1")
        (n,) = queue_notices(s, cfg, T0).notices
        assert (n.recipient, n.recipient_source, n.status) == (
            "dmca@pirate-host.example", "security.txt", NoticeStatus.QUEUED)
        # Unregistered domain, no security.txt reachable: RFC 2142 guess, marked as such.
        add_match(s, t, None, "https://films.streamz.example.co.uk/v/9")
        (g,) = queue_notices(s, make_config(), T0).notices
        assert (g.recipient, g.recipient_source) == ("abuse@example.co.uk", "guess")
        # A host on an IP address with no contact at all: kept as a flagged draft.
        ip = add_host(s, "bare-ip", abuse_contact=None, domain_patterns=[])
        add_match(s, t, ip, "http://203.0.113.9/v/1")
        res = queue_notices(s, make_config(), T0)
        assert res.notices[0].status is NoticeStatus.DRAFT and res.flagged
        assert "no abuse contact" in res.notices[0].last_error
    assert parse_security_txt("Contact: mailto:evil@x.example\r\nBcc: y@z.example") == "evil@x.example"
    assert parse_security_txt("Contact: mailto:a@b.example%0d%0aBcc:c@d") is None


HOSTILE = "Film\r\nBcc: victim@evil.example =?UTF-8?Q?=0ABcc:_x@evil.example?= \u202e<script>"


def test_untrusted_text_never_reaches_a_header_and_is_escaped_in_html(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s, HOSTILE)
        h = add_host(s, "host\r\nX-Injected: 1")
        m = add_match(s, t, h, 'https://videohost.example/v/1?"><script>alert(1)</script>')
        n = make_notice(s, make_config(), host=h, matches=[m], kind="notice", regime=DSA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        msg = build_message(n, sender="notices@filmsdunord.example")
        raw = msg.as_bytes()
        back = message_from_bytes(raw, policy=policy.default)
        assert sorted(back.keys()) == sorted(["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
                                              "MIME-Version", "Content-Type"])
        assert back.get_all("Bcc") is None and back.get_all("X-Injected") is None
        subject = str(back["Subject"])
        assert "\n" not in subject and "\r" not in subject and "=?" not in subject
        assert "\u202e" not in subject
        assert back["Message-ID"] == n.message_id and back["Auto-Submitted"] == "auto-generated"
        assert "<script>" not in n.body_html and "&lt;script&gt;" in n.body_html
        names = [p.get_filename() for p in back.iter_attachments()]
        assert names == [f"acns-{n.id}.xml", f"xarf-{n.id}.json"]
        ET.fromstring(next(back.iter_attachments()).get_content())
    assert clean_header_text("a\r\nb\x00c =?utf-8?q?x?= d") == "a b c utf-8?q?x d"
