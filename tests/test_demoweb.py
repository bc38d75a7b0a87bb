"""The demo web: a real loopback web with byte ranges, HLS, takedowns and bad cases."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import av
import pytest

import demoweb
from demoweb.world import DemoWeb


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWeb]:
    # One cache per test session, shared with the crawl tests: the videos are made once.
    w = demoweb.serve(tmp_path_factory.getbasetemp() / "demoweb-cache")
    yield w
    w.stop()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_link_site_pages(web: DemoWeb) -> None:
    status, _, body = get(web.base_url + "/films?page=1")
    assert status == 200 and b'rel="next"' in body and b"/film/" in body
    assert get(web.base_url + "/robots.txt")[2].startswith(b"User-agent: *\nDisallow: /private/")
    assert b"Contact: mailto:" in get(web.base_url + "/.well-known/security.txt")[2]
    assert b"<urlset" in get(web.base_url + "/sitemap.xml")[2]
    assert b"<rss" in get(web.base_url + "/feed.rss")[2]
    status, _, body = get(web.base_url + "/search?q=grand+lapin")
    assert status == 200 and b"grand-lapin-exclu-720p" in body
    # The search-only post is in no listing.
    listings = b"".join(get(f"{web.base_url}/films?page={n}")[2] for n in range(1, 6))
    assert b"grand-lapin-exclu-720p" not in listings


def test_hostile_title_is_escaped_in_the_page(web: DemoWeb) -> None:
    body = get(web.film_url("xss-title"))[2]
    assert b"<script>alert" not in body and b"&lt;script&gt;" in body


def test_video_files_support_ranges(web: DemoWeb) -> None:
    url = web.host.base + "/v/bbb1.mp4"
    status, headers, full = get(url)
    assert status == 200 and headers["Accept-Ranges"] == "bytes" and len(full) > 10_000
    status, headers, part = get(url, {"Range": "bytes=100-199"})
    assert status == 206 and part == full[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(full)}"
    status, _, tail = get(url, {"Range": "bytes=-50"})
    assert status == 206 and tail == full[-50:]
    assert get(url, {"Range": f"bytes={len(full) + 10}-"})[0] == 416
    with av.open(url) as c:  # a real player reads it over HTTP
        assert c.streams.video[0].width > 0


def test_hls_playlist_and_segments(web: DemoWeb) -> None:
    status, headers, playlist = get(web.host.base + "/hls/cal1/index.m3u8")
    assert status == 200 and playlist.startswith(b"#EXTM3U") and b"#EXT-X-ENDLIST" in playlist
    segments = [ln for ln in playlist.decode().splitlines() if ln and not ln.startswith("#")]
    assert len(segments) >= 2
    status, headers, seg = get(f"{web.host.base}/hls/cal1/{segments[0]}")
    assert status == 200 and headers["Content-Type"] == "video/mp2t" and seg[:1] == b"\x47"  # TS sync byte
    assert get(web.host.base + "/hls/cal1/../../etc/passwd")[0] == 404


def test_take_down_then_restore(web: DemoWeb) -> None:
    embed = web.host.base + "/embed/bbb3"
    media = web.host.base + "/v/bbb3.mp4"
    assert get(embed)[0] == 200 and get(media)[0] == 200
    web.take_down(media)
    web.take_down(embed)
    try:
        assert get(media)[0] == 410
        status, _, body = get(embed)
        assert status == 410 and b"removed" in body
    finally:
        web.restore(media)
        web.restore(embed)
    assert get(media)[0] == 200


def test_bad_cases_behave_badly(web: DemoWeb) -> None:
    assert get(web.film_url("deleted-post"))[0] == 404
    assert get(web.host.base + "/embed/gone1")[0] == 410
    status, headers, body = get(web.host.base + "/v/fake.mp4")
    assert status == 200 and headers["Content-Type"].startswith("text/html")


def test_definitions_for_the_database(web: DemoWeb) -> None:
    from crawlers.sitekinds import validate_settings

    kinds = {s["kind"] for s in web.sites()}
    assert kinds == {"link_site", "site_search", "sitemap"}
    for s in web.sites():
        validate_settings(s["kind"], s["settings"])
    hosts = {h["name"]: h for h in web.hosts()}
    assert any(h.get("licensed_partner") for h in hosts.values())
    assert any(h["abuse_contact"] and "@" in h["abuse_contact"] for h in hosts.values())
    assert {p["kind"] for p in web.planted()} >= {"pirated", "unrelated", "licensed", "hostile"}
