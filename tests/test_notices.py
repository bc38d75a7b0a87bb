"""Notice building: every regime's required elements, the offers, the evidence, the
machine-readable parts, validation naming what is missing, grouping, partners, approval,
contact discovery and header safety."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import select

from db.models import Decision, ItemRole, Notice, NoticeStatus, ReviewState
from notices.build import approve_notice, make_notice, queue_notices
from notices.hosts import Contact, parse_security_txt
from notices.machine import ACNS_NS
from notices.mail import build_message, clean_header_text
from notices.regimes import DELISTING, DMCA, DSA, REGIMES
from notices.render import Target
from tests.test_notices_support import T0, machine_documents_valid, add_host, add_match, add_title, make_config, smtp, web  # noqa: F401
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
        # Machine-readable parts (each also validated against its schema by the autouse
        # fixture ``machine_documents_valid``).
        root = ET.fromstring(n.acns_xml)
        ns = {"a": ACNS_NS}
        assert root.tag == f"{{{ACNS_NS}}}Infringement"
        assert [child.tag.split("}")[1] for child in root] == [
            "Case", "Complainant", "Service_Provider", "Source", "Content", "Notes", "Type", "Detection"]
        assert root.findtext("a:Case/a:ID", namespaces=ns) == n.subject[1:].split("]")[0]
        assert root.findtext("a:Service_Provider/a:Email", namespaces=ns) == "abuse@videohost.example"
        src = root.find("a:Source", ns)
        assert (src.findtext("a:IP_Address", namespaces=ns), src.findtext("a:Port", namespaces=ns),  # type: ignore[union-attr]
                src.findtext("a:Type", namespaces=ns)) == ("203.0.113.7", "443", "HTTP")  # type: ignore[union-attr]
        assert src.findtext("a:TimeStamp", namespaces=ns) == "2026-03-02T06:00:00Z"  # type: ignore[union-attr]
        items = root.findall("a:Content/a:Item", ns)
        assert [[c.tag.split("}")[1] for c in it] for it in items] == [
            ["TimeStamp", "Title", "FileName", "URL", "Type", "ExplicitType"]] * 2
        assert [it.findtext("a:URL", namespaces=ns) for it in items] == [
            "https://videohost.example/v/1", "https://videohost.example/v/2"]
        assert [it.findtext("a:FileName", namespaces=ns) for it in items] == ["1", "2"]
        # No media file was read whole: no hash (the page's SHA-256 is not the content's).
        assert root.find("a:Content/a:Item/a:Hash", ns) is None and "ab" * 32 not in n.acns_xml
        assert items[0].findtext("a:Title", namespaces=ns) == "Le Voyage"
        det = root.find("a:Detection", ns)
        assert det.findtext("a:Asset/a:OriginalAssetName", namespaces=ns) == "Le Voyage (2024)"  # type: ignore[union-attr]
        matched = det.find("a:ContentMatched", ns)  # type: ignore[union-attr]
        assert matched.get("Fingerprint") == "true" and matched.get("MatchThreshold") == "50"  # type: ignore[union-attr]
        xarf = json.loads(n.xarf_json)
        assert [r["infringing_url"] for r in xarf] == ["https://videohost.example/v/1",
                                                       "https://videohost.example/v/2"]
        assert {(r["category"], r["type"], r["platform_name"]) for r in xarf} == {
            ("copyright", "ugc_platform", "videohost")}
        r = xarf[0]
        assert r["xarf_version"].startswith("4.") and r["timestamp"] == "2026-03-02T06:00:00Z"
        assert r["source_identifier"] == "203.0.113.7" and r["source_port"] == 443
        assert (r["work_title"], r["rights_holder"], r["work_category"]) == ("Le Voyage", "Films du Nord SAS", "movie")
        assert "(2024)" in r["description"]
        assert r["match_details"] == {"match_confidence": 0.97, "match_duration": 412,
                                      "reference_id": "title 1, 0:20:00.000-0:27:00.000"}
        assert r["reporter"]["contact"] == r["sender"]["contact"] == "rights@filmsdunord.example"
        assert len({x["report_id"] for x in xarf}) == 2


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
        assert names == [f"acns-{n.id}.xml", f"xarf-{n.id}.json"]  # one URL: one X-ARF report
        ET.fromstring(next(back.iter_attachments()).get_content())
    assert clean_header_text("a\r\nb\x00c =?utf-8?q?x?= d") == "a b c utf-8?q?x d"


@pytest.mark.parametrize(("kind", "xtype", "service_field"), [
    ("video_host", "ugc_platform", "platform_name"),
    ("cyberlocker", "cyberlocker", "hosting_service"),
    ("file_host", "cyberlocker", "hosting_service"),
    ("link_site", "link_site", "site_name"),  # a link site playing a copy it stores itself
    (None, "copyright", None),             # registered on first sight, kind unknown
])
def test_xarf_type_and_media_hash_follow_the_host(Session, kind, xtype: str, service_field) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "lockerz", kind=kind, domain_patterns=["lockerz.example"])
        m = add_match(s, t, h, "https://lockerz.example/f/abc/le.voyage.mkv")
        m.details = {"media_sha256": "cd" * 32}   # the matcher read the whole file
        n = make_notice(s, make_config(), host=h, matches=[m], kind="notice", regime=DMCA, language="en",
                        contact=Contact("abuse@lockerz.example", "configured"), now=T0)
        (report,) = json.loads(n.xarf_json)
        assert (report["category"], report["type"]) == ("copyright", xtype)
        if service_field:
            assert report[service_field] == "lockerz"
        if xtype == "cyberlocker":
            assert report["file_info"] == {"filename": "le.voyage.mkv", "file_hash": "sha256:" + "cd" * 32}
        if xtype == "copyright":
            assert report["original_url"] == "https://vod.filmsdunord.example/le-voyage"
        # The media's own hash is the content's hash in ACNS, stated as such.
        root = ET.fromstring(n.acns_xml)
        ns = {"a": ACNS_NS}
        assert root.findtext("a:Content/a:Item/a:FileName", namespaces=ns) == "le.voyage.mkv"
        assert root.find("a:Content/a:Item/a:Hash", ns).text == "cd" * 32  # type: ignore[union-attr]
        assert root.findtext("a:Detection/a:HashMatched", namespaces=ns) == "true"


def test_without_a_known_server_address_no_acns_and_the_text_says_so(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s, "cdnhost", domain_patterns=["cdn.example"])
        page = add_match(s, t, None, "https://links.example/film/1", media=["https://cdn.example/v/1.mp4"])
        page.media_url = "https://cdn.example/v/1.mp4"
        n = make_notice(s, make_config(), host=h, targets=[Target(page, page.media_url, ItemRole.HOSTING)],
                        kind="notice", regime=DMCA, language="en",
                        contact=Contact("abuse@cdn.example", "configured"), now=T0)
        assert n.acns_xml is None
        assert "attached (X-ARF v4 JSON)" in " ".join(n.body_text.split())
        (report,) = json.loads(n.xarf_json)
        assert report["source_identifier"] == "cdn.example" and report["infringing_url"] == page.media_url
        msg = build_message(n, sender="notices@filmsdunord.example")
        assert [p.get_filename() for p in msg.iter_attachments()] == [f"xarf-{n.id}.json"]
        assert "----Start ACNS XML" not in msg.get_body(("plain",)).get_content()


def test_acns_is_inline_between_the_markers_and_several_urls_give_several_xarf_files(Session) -> None:  # type: ignore[no-untyped-def]
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s)
        ms = [add_match(s, t, h, f"https://videohost.example/v/{i}") for i in (1, 2)]
        n = make_notice(s, make_config(), host=h, matches=ms, kind="notice", regime=DMCA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        msg = build_message(n, sender="notices@filmsdunord.example")
        names = [p.get_filename() for p in msg.iter_attachments()]
        assert names == [f"acns-{n.id}.xml", f"xarf-{n.id}-1.json", f"xarf-{n.id}-2.json"]
        body = msg.get_body(("plain",)).get_content()
        lines = body.splitlines()
        start, end = lines.index("----Start ACNS XML"), lines.index("----End ACNS XML")
        assert start < end and "\n".join(lines[start + 1:end]) == n.acns_xml.strip()
        assert "Machine-readable copies" in "\n".join(lines[:start])


def test_an_invalid_stored_document_is_refused_before_sending(Session, smtp) -> None:  # type: ignore[no-untyped-def]
    from notices.dispatch import dispatch

    rec, port = smtp
    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        n = make_notice(s, make_config(port), host=h, matches=[m], kind="notice", regime=DMCA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        # Edited by hand, or built by an older version: no IP_Address, no infringing_url.
        n.acns_xml = n.acns_xml.replace("<IP_Address>203.0.113.7</IP_Address>", "")
        reports = json.loads(n.xarf_json)
        del reports[0]["infringing_url"]
        n.xarf_json = json.dumps(reports)
        nid = n.id
    r = dispatch(Session, make_config(port), now=T0)
    assert r.failed == [nid] and rec.received == []
    with Session() as s:
        n = s.get(Notice, nid)
        assert n.status is NoticeStatus.FAILED
        assert "invalid machine-readable part(s)" in n.last_error and "IP_Address" in n.last_error
        assert "infringing_url" in n.last_error


def test_xarf_match_details_name_the_reference_and_the_share_of_the_work(Session) -> None:  # type: ignore[no-untyped-def]
    from db.models import ReferenceVideo

    with Session.begin() as s:
        t = add_title(s)
        ref = ReferenceVideo(title_id=t.id, sha256="ef" * 32, duration_s=5400.0, fps=25.0, width=1280, height=720,
                             size_bytes=1, algorithm="test", frame_count=0, hashes=b"", times=b"")
        s.add(ref)
        s.flush()
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        m.reference_id, m.matched_s = ref.id, 5200.0
        n = make_notice(s, make_config(), host=h, matches=[m], kind="notice", regime=DMCA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        (report,) = json.loads(n.xarf_json)
        assert report["match_details"] == {
            "match_confidence": 0.97, "match_duration": 5200, "match_percentage": 96.3,
            "reference_id": f"title {t.id} reference {ref.id}, 0:20:00.000-0:27:00.000"}
        assert report["infringement_type"] == "full_work"


def test_a_notice_whose_machine_parts_fail_their_schema_is_refused_when_built(Session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from notices import machine

    with Session.begin() as s:
        t = add_title(s)
        h = add_host(s)
        m = add_match(s, t, h, "https://videohost.example/v/1")
        # A notifier address the X-ARF schema refuses (it must be a mailbox).
        cfg = make_config()
        cfg.notifier["email"] = "rights at filmsdunord"
        with pytest.raises(NoticeInvalid) as err:
            make_notice(s, cfg, host=h, matches=[m], kind="notice", regime=DSA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        assert "X-ARF report of https://videohost.example/v/1 is invalid" in str(err.value)
        assert "reporter.contact" in str(err.value)
        # An ACNS builder gone wrong (here: Item without its required FileName).
        real = machine.acns_xml
        monkeypatch.setattr(machine, "acns_xml", lambda *a, **kw: real(*a, **kw).replace(
            "<FileName>1</FileName>", ""))
        with pytest.raises(NoticeInvalid) as err:
            make_notice(s, make_config(), host=h, matches=[m], kind="notice", regime=DSA, language="en",
                        contact=Contact("abuse@videohost.example", "configured"), now=T0)
        assert "ACNS document of the notice to 'videohost' is invalid" in str(err.value)
        assert "FileName" in str(err.value)
        assert s.scalar(select(Notice)) is None


def test_the_test_validators_reject_the_old_formats() -> None:
    """The checks every notices test runs on what it builds can fail: the old abusix-style
    X-ARF and an ACNS without IP_Address or with URL before FileName are refused."""
    from tests.test_notices_support import assert_acns_valid, assert_xarf_valid

    old_xarf = {"Version": "4", "ReporterInfo": {"ReporterOrg": "A"}, "Disclosure": True,
                "Report": {"ReportClass": "Copyright", "ReportType": "ugc_platform", "Source": "https://x.example/"}}
    with pytest.raises(AssertionError):
        assert_xarf_valid(old_xarf)
    old_acns = (f'<Infringement xmlns="{ACNS_NS}"><Case><ID>x</ID></Case><Complainant><Entity>a</Entity>'
                "<Email>a@b.example</Email></Complainant><Service_Provider><Entity>h</Entity><Email>h@b.example</Email>"
                "</Service_Provider><Source><TimeStamp>2026-03-02T06:00:00Z</TimeStamp><Type>HTTP</Type></Source>"
                "<Content><Item><TimeStamp>2026-03-02T06:00:00Z</TimeStamp><URL>https://x.example/</URL>"
                "<FileName>x</FileName></Item></Content></Infringement>")
    with pytest.raises(AssertionError) as err:
        assert_acns_valid(old_acns)
    assert "IP_Address" in str(err.value)
