"""Both parties of a pirated film are notified: the host storing the video gets its media
URL, the link site whose page links to or embeds it gets the page URL, each in its own
notice and language, saying what the URL is to them; partners on either side stop the
whole match; nothing is notified twice; verification judges each party by its own URL,
against a real HTTP server and a real SMTP server."""

from __future__ import annotations

import json

from datetime import timedelta

from sqlalchemy import select

from db.models import Host, ItemRole, ItemState, Notice, NoticeItem, NoticeStatus
from notices.build import approve_notice, notifiable_matches, queue_notices
from notices.dispatch import dispatch
from notices.verify import verify
from tests.test_notices_support import T0, machine_documents_valid, add_host, add_match, add_title, make_config, smtp, web  # noqa: F401

PAGE = "https://linkz.example/film/le-voyage-vf"
MEDIA = "https://tube.example/v/abc.mp4"
EMBED = "https://tube.example/embed/abc"
TUBE_IP = "198.51.100.20"


def _parties(s):  # type: ignore[no-untyped-def]
    t = add_title(s)
    linkz = add_host(s, "linkz", kind="link_site", language="fr", jurisdiction="FR")
    tube = add_host(s, "tube", kind="video_host", language="en", jurisdiction="US")
    return t, linkz, tube


def _embedded(s, t, host, page: str, media: str, embed: str | None = None):  # type: ignore[no-untyped-def]
    # As the crawler stores it: the candidate attributed to the video host, the match on
    # the media URL that was fingerprinted.
    m = add_match(s, t, host, page, media=[u for u in (embed, media) if u])
    m.media_url = media
    if embed:
        # The crawler followed the player page and recorded the video host's address.
        m.candidate.evidence = {**m.candidate.evidence,
                                "embeds": [{"url": embed, "status": 200, "ip_address": TUBE_IP}]}
    return m


def _sent_items(s) -> dict[str, list[tuple[str, ItemRole]]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[tuple[str, ItemRole]]] = {}
    for n in s.scalars(select(Notice).where(Notice.kind == "notice").order_by(Notice.id)):
        out.setdefault(n.host.name, []).extend((i.url, i.role) for i in n.items)
    return out


def test_link_site_gets_the_page_and_video_host_the_media_each_once(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config()
    with Session.begin() as s:
        t, linkz, tube = _parties(s)
        first = _embedded(s, t, tube, PAGE, MEDIA, EMBED)
        res = queue_notices(s, cfg, T0)
        assert not res.refused and res.partners_skipped == 0
        by_host = {n.host.name: n for n in res.notices}
        assert sorted(by_host) == ["linkz", "tube"]
        to_links, to_tube = by_host["linkz"], by_host["tube"]
        assert [(i.url, i.role) for i in to_links.items] == [(PAGE, ItemRole.LINKING)]
        assert [(i.url, i.role) for i in to_tube.items] == [(MEDIA, ItemRole.HOSTING)]
        assert (to_links.recipient, to_links.language, to_links.regime) == ("abuse@linkz.example", "fr", "dsa")
        assert (to_tube.recipient, to_tube.language, to_tube.regime) == ("abuse@tube.example", "en", "dmca")

        # Each says what the URL is to its recipient, in its language, text and HTML.
        link_text = " ".join(to_links.body_text.split())
        assert f"- {PAGE} une page de votre site qui renvoie vers la vidéo ou l'intègre" in link_text
        assert f"média : {MEDIA}" in link_text
        assert "une page de votre site qui renvoie vers la vidéo ou l'intègre" in to_links.body_html
        tube_text = " ".join(to_tube.body_text.split())
        assert f"- {MEDIA} the video file hosted on your service (found on {PAGE})" in tube_text
        assert f"the video file hosted on your service (found on {PAGE})" in to_tube.body_html
        assert PAGE not in [i.url for i in to_tube.items] and MEDIA not in [i.url for i in to_links.items]
        assert f"<URL>{MEDIA}</URL>" in to_tube.acns_xml and f"<URL>{PAGE}</URL>" in to_links.acns_xml
        # Each ACNS names the server the URL is served from: the video host's address (seen
        # when the crawler fetched its player page), the link site's page address.
        assert f"<IP_Address>{TUBE_IP}</IP_Address>" in to_tube.acns_xml
        assert "<IP_Address>203.0.113.7</IP_Address>" in to_links.acns_xml
        assert 'BaseType="LINK"' in to_links.acns_xml and 'BaseType="SERVER"' in to_tube.acns_xml
        # X-ARF: the link site's page is a link_site report pointing at the video; the video
        # host's own copy a ugc_platform report.
        (link_report,) = json.loads(to_links.xarf_json)
        assert (link_report["type"], link_report["site_name"], link_report["infringing_url"]) == (
            "link_site", "linkz", PAGE)
        assert [c["target_url"] for c in link_report["linked_content"]] == [EMBED, MEDIA]
        (tube_report,) = json.loads(to_tube.xarf_json)
        assert (tube_report["type"], tube_report["platform_name"], tube_report["source_identifier"]) == (
            "ugc_platform", "tube", TUBE_IP)

        # A second page embedding the same video: only the new page is notified.
        page2 = "https://linkz.example/film/le-voyage-hd"
        _embedded(s, t, tube, page2, MEDIA)
        (n2,) = queue_notices(s, cfg, T0).notices
        assert n2.host.name == "linkz" and [(i.url, i.role) for i in n2.items] == [(page2, ItemRole.LINKING)]

        # The crawler meets the page again under a tracking URL, the match stage picks the
        # embed instead of the file: the same infringement, not notified again.
        first.candidate.page_url = PAGE + "?utm_source=rss&utm_medium=feed"
        first.media_url = EMBED
        watch = _embedded(s, t, tube, "https://tube.example/watch/abc", MEDIA)
        assert [n.host.name for n in queue_notices(s, cfg, T0).notices] == ["tube"]
        watch.candidate.page_url = "https://tube.example/watch/abc?si=x"
        assert queue_notices(s, cfg, T0).notices == []

        # Nothing left, nothing twice.
        assert notifiable_matches(s) == []
        assert queue_notices(s, cfg, T0).notices == []
        assert _sent_items(s) == {"linkz": [(PAGE, ItemRole.LINKING), (page2, ItemRole.LINKING)],
                                  "tube": [(MEDIA, ItemRole.HOSTING),
                                           ("https://tube.example/watch/abc", ItemRole.HOSTING)]}
    with Session.begin() as s:
        assert queue_notices(s, cfg, T0 + timedelta(days=1)).notices == []


def test_same_host_is_one_item_and_unknown_video_host_is_registered(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config()
    with Session.begin() as s:
        t, linkz, tube = _parties(s)
        watch = "https://tube.example/watch/abc"
        _embedded(s, t, tube, watch, MEDIA)
        # Media on a host nobody registered: it gets a Host row by its domain.
        _embedded(s, t, None, "https://linkz.example/film/2", "https://cdn.newtube.example/x/2.mp4")
        res = queue_notices(s, cfg, T0)
        items = _sent_items(s)
        assert items["tube"] == [(watch, ItemRole.HOSTING)]
        (to_tube,) = [n for n in res.notices if n.host.name == "tube"]
        text = " ".join(to_tube.body_text.split())
        assert f"- {watch} a page of your service playing the video" in text and f"media: {MEDIA}" in text
        assert items["linkz"] == [("https://linkz.example/film/2", ItemRole.LINKING)]
        new = s.scalar(select(Host).where(Host.name == "cdn.newtube.example"))
        assert new is not None and new.domain_patterns == ["cdn.newtube.example"]
        assert items["cdn.newtube.example"] == [("https://cdn.newtube.example/x/2.mp4", ItemRole.HOSTING)]
        assert notifiable_matches(s) == []
        assert queue_notices(s, cfg, T0).notices == []


def test_a_partner_on_either_side_stops_the_whole_match(Session) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config()
    with Session.begin() as s:
        t, linkz, tube = _parties(s)
        add_host(s, "cinevod", kind="vod", licensed_partner=True)
        # A link site embedding the partner's player points to a licensed copy.
        _embedded(s, t, None, "https://linkz.example/film/trailer", "https://cinevod.example/embed/bbb.mp4")
        # A partner's page playing a video stored elsewhere is the partner's business.
        _embedded(s, t, None, "https://cinevod.example/films/1", MEDIA)
        # A video on the domain of the title's own offer.
        _embedded(s, t, None, "https://linkz.example/film/3", "https://vod.filmsdunord.example/media/1.mp4")
        res = queue_notices(s, cfg, T0)
        assert res.notices == [] and res.partners_skipped == 3
        assert s.scalar(select(NoticeItem)) is None

        # A video host that becomes a partner after queueing: the link site's notice,
        # waiting for approval, is discarded at approval.
        linkz.needs_approval = True
        _embedded(s, t, tube, PAGE, MEDIA)
        queued = {n.host.name: n for n in queue_notices(s, cfg, T0).notices}
        assert queued["linkz"].status is NoticeStatus.AWAITING_APPROVAL
        tube.licensed_partner = True
        approve_notice(s, queued["linkz"].id)
        assert queued["linkz"].status is NoticeStatus.DISCARDED
        assert "licensed partner 'tube'" in queued["linkz"].last_error


def test_verify_judges_each_party_by_its_own_url(Session, web, smtp) -> None:  # type: ignore[no-untyped-def]
    pages, base = web
    rec, port = smtp
    cfg = make_config(port)
    port_no = base.rsplit(":", 1)[1]
    # One real server, two hosts: the link site answers as localhost, the video host as 127.0.0.1.
    page, media = f"http://localhost:{port_no}/film/1", f"{base}/v/1.mp4"
    page2, media2 = f"http://localhost:{port_no}/film/2", f"{base}/v/2.mp4"
    with Session.begin() as s:
        t = add_title(s)
        add_host(s, "linkz", domain_patterns=["localhost"], language="fr", settings={"grace_hours": 48})
        tube = add_host(s, "tube", domain_patterns=["127.0.0.1"], language="en", settings={"grace_hours": 48})
        _embedded(s, t, tube, page, media)
        _embedded(s, t, tube, page2, media2)
        assert len(queue_notices(s, cfg, T0).notices) == 2
    assert len(dispatch(Session, cfg, now=T0).sent) == 2
    assert sorted(r.rcpts[0] for r in rec.received) == ["abuse@linkz.example", "abuse@tube.example"]

    # The video host removes both videos; the link site keeps page 1 up and drops page 2.
    pages.set("/v/1.mp4", 410, "gone")
    pages.set("/film/1", 200, f"<iframe src='{media}'></iframe>")
    pages.set("/v/2.mp4", 410, "gone")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=5))
        assert r.checked == 4
        assert sorted(u for u, _ in r.removed) == sorted([media, media2, page2])
        assert r.live == [page]
        states = {(i.url, i.role): i.state for i in s.scalars(select(NoticeItem))}
        assert states == {(media, ItemRole.HOSTING): ItemState.REMOVED, (media2, ItemRole.HOSTING): ItemState.REMOVED,
                          (page, ItemRole.LINKING): ItemState.LIVE, (page2, ItemRole.LINKING): ItemState.REMOVED}

    # Past the deadline, only the link site is reminded, and only of its live page.
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=49))
        (rid,) = r.escalations
        reminder = s.get(Notice, rid)
        assert reminder.kind == "reminder" and reminder.host.name == "linkz"
        assert [(i.url, i.role) for i in reminder.items] == [(page, ItemRole.LINKING)]
        assert "une page de votre site qui renvoie vers la vidéo" in " ".join(reminder.body_text.split())
    assert dispatch(Session, cfg, now=T0 + timedelta(hours=49)).sent == [rid]
    assert rec.received[-1].rcpts == ["abuse@linkz.example"]

    # The video comes back at the same URL: a re-upload, notified to the video host again.
    pages.set("/v/1.mp4", 200, "video bytes")
    with Session.begin() as s:
        r = verify(s, cfg, now=T0 + timedelta(hours=50))
        assert r.reuploads == [media]
        (nid,) = r.escalations
        again = s.get(Notice, nid)
        assert again.host.name == "tube" and [(i.url, i.role) for i in again.items] == [(media, ItemRole.HOSTING)]
