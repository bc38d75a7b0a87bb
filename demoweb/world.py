"""The demo web's content: a pirate link site, a video host and a licensed VOD site.

Everything a crawler meets in the wild, on loopback: paginated listings, film pages
with disguised titles (release tags, odd spelling), players behind iframes, ``og:video``,
JSON-LD, inline player configs, an HLS stream, a search page that finds a post no
listing shows, a sitemap and an RSS feed, ``robots.txt`` and ``security.txt``; and the
bad cases: a dead link, a removed video, a dead host, a redirect loop, a huge page, a
slow page, malformed HTML, a "video" that is an HTML page, hostile titles (markup,
CR/LF and control characters, 10,000 characters), an unrelated video, and an official
trailer embedded from the licensed VOD site. ``take_down`` makes any URL answer 410
afterwards, so the verify stage can watch a takedown happen.
"""

from __future__ import annotations

import html
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from demoweb.http import Reply, Site
from demoweb.players import PLAYERS, film_page, host_page

LINK_SITE = "Free-Moviez"
VIDEO_HOST = "StreamHub"
VOD_SITE = "CineVOD"
FILM_LINK_PATTERN = r"/(film|private)/[^/?#]+"

# id on the video host -> (media file name in the cache, how the embed page shows it)
VIDEOS: dict[str, tuple[str, str]] = {
    "bbb1": ("bbb_cropped_25fps.mp4", "video_tag"),
    "bbb2": ("bbb_mirrored.mp4", "json_ld"),
    "bbb3": ("bbb_logo.mp4", "og_video"),
    "bbb4": ("bbb_exclu.mp4", "video_tag"),
    "cal1": ("hls", "player_js"),
    "cal2": ("calais_cam.mp4", "video_tag"),
    "oth1": ("unrelated.mp4", "video_tag"),
}


@dataclass
class Post:
    """A film page on the link site and what a crawler should conclude from it."""

    slug: str
    title: str                     # the raw title text, as the page shows it
    body: str                      # player markup; {host}, {vod}, {dead} are filled in
    expect_title: str | None       # catalogue title a guess should give, None for no guess
    listed: bool = True            # on the paginated listing
    in_feed: bool = False          # in the RSS feed
    in_sitemap: bool = True
    search_words: str = ""         # extra words the site search finds it by
    expect_media: list[str] = field(default_factory=list)  # paths on the video host
    kind: str = "pirated"          # pirated | unrelated | licensed | broken | hostile
    raw_title_html: bool = False   # title already HTML (control characters kept raw)


POSTS: list[Post] = [
    Post("big-buck-bunny-2008-truefrench-1080p", "Big.Buck.Bunny.2008.TRUEFRENCH.1080p.WEB-DL.x264",
         '<iframe src="{host}/embed/bbb1" width="640" height="360" allowfullscreen></iframe>',
         "Big Buck Bunny", expect_media=["/v/bbb1.mp4"], in_feed=True),
    Post("le-grand-lapin-vostfr", "Le Grand Lapin (2008) VOSTFR HDRip",
         '<div class="player"><iframe data-src="{host}/embed/bbb2" class="lazy"></iframe></div>',
         "Big Buck Bunny", expect_media=["/v/bbb2.mp4"]),
    Post("grand-prix-calais-1906-cam", "Grand Prix de l'ACF - Calais 1906 [FRENCH] CAM",
         '<iframe src="{host}/embed/cal1"></iframe>',
         "Grand Prix de l'ACF, Calais 1906", expect_media=["/hls/cal1/index.m3u8"], in_feed=True),
    Post("big-buk-buny-streaming-vf", "Big Buk Buny STREAMING VF",
         "", "Big Buck Bunny", expect_media=["/v/bbb3.mp4"]),  # og:video in <head>, see _film_page
    Post("grand-lapin-exclu-720p", "Grand Lapin (Le) - EXCLU 720p",
         '<div id="player"></div><script>var cfg = {{"file": "{host}/v/bbb4.mp4", "autostart": false}};'
         'jwplayer("player").setup(cfg);</script>',
         "Big Buck Bunny", listed=False, in_sitemap=False, search_words="big buck bunny grand lapin exclu",
         expect_media=["/v/bbb4.mp4"]),
    Post("french-grand-prix-1906-multi", "French Grand Prix 1906 [MULTI] - nouveau",
         '<iframe src="{host}/embed/cal2"></iframe>',
         "Grand Prix de l'ACF, Calais 1906", listed=False, in_feed=True, in_sitemap=False,
         expect_media=["/v/cal2.mp4"]),
    Post("nos-vacances-en-bretagne-vlog", "Nos vacances en Bretagne (vlog 2023)",
         '<iframe src="{host}/embed/oth1"></iframe>', None, expect_media=["/v/oth1.mp4"], kind="unrelated"),
    Post("big-buck-bunny-bande-annonce", "Big Buck Bunny - bande-annonce officielle",
         '<iframe src="{vod}/embed/bbb-trailer"></iframe>', "Big Buck Bunny", kind="licensed"),
    Post("big-buck-bunny-removed", "Big Buck Bunny FRENCH DVDRip",
         '<iframe src="{host}/embed/gone1"></iframe>', "Big Buck Bunny", kind="broken"),
    Post("le-grand-lapin-miroir", "Le Grand Lapin - lecteur 2",
         '<iframe src="{dead}/embed/x1"></iframe><iframe src="{host}/embed/bbb1"></iframe>',
         "Big Buck Bunny", expect_media=["/v/bbb1.mp4"], kind="broken"),
    Post("big-buck-bunny-cam-fake", "Big Buck Bunny CAM",
         '<p>Lecteur HD</p>', "Big Buck Bunny", expect_media=["/v/fake.mp4"], kind="broken"),
    Post("calais-1906-malformed", "Calais 1906 Grand Prix de l ACF",
         '<div><p><b>Lecteur<video controls><source src="{host}/v/cal2.mp4" type="video/mp4"'
         '></video></div></p></b><table><tr><td>oops</div>',
         "Grand Prix de l'ACF, Calais 1906", expect_media=["/v/cal2.mp4"], kind="broken"),
    Post("xss-title", "<script>alert('xss')</script> Big Buck Bunny <img src=x onerror=alert(1)>",
         '<iframe src="{host}/embed/bbb1"></iframe>', "Big Buck Bunny", expect_media=["/v/bbb1.mp4"], kind="hostile"),
    Post("crlf-title", "Big Buck Bunny\r\nBcc: victim@example.com\r\nX-Injected: yes\x07\x1b[31m",
         '<iframe src="{host}/embed/bbb1"></iframe>', "Big Buck Bunny", expect_media=["/v/bbb1.mp4"],
         kind="hostile", raw_title_html=True),
    Post("very-long-title", "Big Buck Bunny " + "A" * 10_000,
         '<iframe src="{host}/embed/bbb1"></iframe>', "Big Buck Bunny", expect_media=["/v/bbb1.mp4"], kind="hostile"),
]
# Linked from the listing, but robots.txt forbids it: a polite crawler never asks.
PRIVATE_SLUG = "big-buck-bunny-leak"
# Linked from the listing, broken on purpose.
BAD_LINKS = ["/film/deleted-post", "/film/redirect-loop", "/film/huge-page", "/film/slow-page"]
PER_PAGE = 5
HUGE_BYTES = 3 * 1024 * 1024
SLOW_S = 3.0


def _page(title: str, body: str, head: str = "") -> bytes:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>{head}</head>"
            f"<body>{body}</body></html>").encode("utf-8")


def _free_dead_port() -> int:
    """A loopback port with nothing listening (a dead host)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoWeb:
    """The running demo web. ``serve()`` builds one; ``stop()`` ends it."""

    def __init__(self, media: dict[str, str]) -> None:
        self.media = media
        self._removed: set[str] = set()
        self._lock = threading.Lock()
        self.dead = f"http://127.0.0.1:{_free_dead_port()}"
        self.vod = Site(self._vod_route)
        self.host = Site(self._host_route)
        self.links = Site(self._links_route)

    # ------------------------------------------------------------------ public API

    @property
    def base_url(self) -> str:
        return self.links.base

    def stop(self) -> None:
        for site in (self.links, self.host, self.vod):
            site.stop()

    def __enter__(self) -> DemoWeb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_down(self, url: str) -> None:
        """From now on ``url`` (any of the three sites) answers 410 Gone."""
        with self._lock:
            self._removed.add(self._key(url))

    def restore(self, url: str) -> None:
        with self._lock:
            self._removed.discard(self._key(url))

    def is_removed(self, url: str) -> bool:
        with self._lock:
            return self._key(url) in self._removed

    @staticmethod
    def _key(url: str) -> str:
        p = urlsplit(url)
        return f"{p.port}{p.path}"

    def film_url(self, slug: str) -> str:
        return f"{self.links.base}/film/{slug}"

    def sites(self) -> list[dict[str, Any]]:
        """The Site definitions to crawl this web: for ``crawlers.sites.add_site(**site)``."""
        polite = {"download_delay": 0.0, "concurrency": 4, "timeout_s": 2.0, "retries": 1,
                  "max_size_bytes": 2 * 1024 * 1024, "max_pages": 10}
        b = self.links.base
        return [
            {"name": "free-moviez", "kind": "link_site", "start_urls": [f"{b}/films?page=1"],
             "settings": {**polite, "film_link_pattern": FILM_LINK_PATTERN}},
            {"name": "free-moviez-search", "kind": "site_search", "start_urls": [f"{b}/search"],
             "settings": {**polite, "search_url": f"{b}/search?q={{query}}", "film_link_pattern": FILM_LINK_PATTERN}},
            {"name": "free-moviez-feeds", "kind": "sitemap", "start_urls": [f"{b}/sitemap.xml", f"{b}/feed.rss"],
             "settings": {**polite, "film_link_pattern": FILM_LINK_PATTERN}},
        ]

    def player_site(self, render: str = "auto") -> dict[str, Any]:
        """The site of the scripted players (``demoweb.players``): only the browser
        resolver finds their media."""
        return {"name": "free-moviez-lecteurs", "kind": "link_site", "start_urls": [f"{self.links.base}/lecteurs"],
                "settings": {"download_delay": 0.0, "concurrency": 4, "timeout_s": 5.0, "retries": 0,
                             "film_link_pattern": r"/lecteur/[^/?#]+", "render": render,
                             "render_timeout_s": 15.0, "render_max_pages": 2}}

    def planted_players(self) -> list[dict[str, Any]]:
        """What the browser resolver must find: one entry per scripted player."""
        return [{"page_url": f"{self.links.base}/lecteur/{x.slug}", "slug": x.slug, "kind": x.kind,
                 "title": x.expect_title, "media_urls": [self.host.base + x.media]} for x in PLAYERS]

    def hosts(self) -> list[dict[str, Any]]:
        """Host definitions: for ``crawlers.sites.upsert_host(session, **host)``."""
        return [
            {"name": VIDEO_HOST, "domain_patterns": [f"127.0.0.1:{self.host.port}"],
             "abuse_contact": "abuse@streamhub.example", "kind": "video_host", "language": "en"},
            {"name": LINK_SITE, "domain_patterns": [f"127.0.0.1:{self.links.port}"],
             "abuse_contact": "dmca@free-moviez.example", "kind": "link_site", "language": "fr"},
            {"name": VOD_SITE, "domain_patterns": [f"127.0.0.1:{self.vod.port}"],
             "abuse_contact": None, "kind": "vod", "licensed_partner": True, "channel": "none"},
        ]

    def offers(self) -> dict[str, str]:
        """Catalogue title -> its legitimate offer on the licensed VOD site."""
        return {"Big Buck Bunny": f"{self.vod.base}/films/big-buck-bunny",
                "Grand Prix de l'ACF, Calais 1906": f"{self.vod.base}/films/calais-1906"}

    def planted(self) -> list[dict[str, Any]]:
        """What a complete crawl must find: one entry per film page."""
        return [{"page_url": self.film_url(p.slug), "slug": p.slug, "kind": p.kind,
                 "title": p.expect_title, "media_urls": [self.host.base + m for m in p.expect_media],
                 "listed": p.listed, "in_feed": p.in_feed, "in_sitemap": p.in_sitemap}
                for p in POSTS]

    def register(self, session: Any) -> None:
        """Add this web's sites and hosts to the database (replacing older demo ports)."""
        from crawlers.sites import add_site, upsert_host

        for host in self.hosts():
            upsert_host(session, **host)
        for site in self.sites():
            add_site(session, site["name"], site["start_urls"], kind=site["kind"], settings=site["settings"],
                     replace=True)

    # ------------------------------------------------------------------ link site

    def _links_route(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        parts = urlsplit(path)
        p, q = parts.path, parse_qs(parts.query)
        if self.is_removed(self.links.base + p):
            return Reply(410, _page("Gone", "<h1>Ce contenu a été supprimé</h1>"))
        if p == "/robots.txt":
            return Reply(200, f"User-agent: *\nDisallow: /private/\nSitemap: {self.links.base}/sitemap.xml\n".encode(),
                         "text/plain")
        if p == "/.well-known/security.txt":
            return Reply(200, b"Contact: mailto:dmca@free-moviez.example\nPreferred-Languages: fr, en\n", "text/plain")
        if p == "/":
            return Reply(302, b"", headers={"Location": "/films?page=1"})
        if p == "/films":
            return self._listing(int((q.get("page") or ["1"])[0] or 1))
        if p == "/search":
            return self._search((q.get("q") or [""])[0])
        if p == "/sitemap.xml":
            urls = "".join(f"<url><loc>{html.escape(self.film_url(x.slug))}</loc></url>" for x in POSTS if x.in_sitemap)
            return Reply(200, (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns='
                               f'"http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>').encode(),
                         "application/xml")
        if p == "/feed.rss":
            items = "".join(f"<item><title>{html.escape(x.title[:200])}</title><link>{html.escape(self.film_url(x.slug))}"
                            f"?utm_source=rss&amp;utm_medium=feed</link></item>" for x in POSTS if x.in_feed)
            return Reply(200, (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                               f"<title>{LINK_SITE}</title><link>{self.links.base}/</link>{items}</channel></rss>").encode(),
                         "application/rss+xml")
        if p == "/film/redirect-loop":
            # Every hop is a new URL, as real loops are: only a redirect limit ends it.
            n = int((q.get("n") or ["0"])[0] or 0)
            return Reply(302, b"", headers={"Location": f"/film/redirect-loop?n={n + 1}"})
        if p == "/film/huge-page":
            return Reply(200, b"<html><body>" + b"<p>spam</p>" * (HUGE_BYTES // 11) + b"</body></html>")
        if p == "/film/slow-page":
            return Reply(200, _page("Slow", "<h1>Big Buck Bunny (slow)</h1>"), delay_s=SLOW_S)
        if p.startswith("/private/"):
            return Reply(200, _page("Leak", '<h1>Big Buck Bunny LEAK</h1><iframe src="'
                                    f'{self.host.base}/embed/bbb1"></iframe>'))
        if p == "/lecteurs":
            items = "".join(f'<li><a class="post" href="/lecteur/{x.slug}">{html.escape(x.title)}</a></li>'
                            for x in PLAYERS)
            return Reply(200, _page(f"{LINK_SITE} - lecteurs", f"<h1>Nouveaux lecteurs</h1><ul>{items}</ul>"))
        if p.startswith("/api/source/"):
            api = host_page(p, method, headers, self.host.base)
            if api is not None:
                return Reply(api[0], api[1].encode("utf-8"), api[2])
        if p.startswith("/lecteur/"):
            player = next((x for x in PLAYERS if x.slug == p[len("/lecteur/"):]), None)
            if player is not None:
                return Reply(200, _page(f"{html.escape(player.title)} - {LINK_SITE}",
                                        film_page(player, self.host.base)))
        if p.startswith("/film/"):
            post = next((x for x in POSTS if x.slug == p[len("/film/"):]), None)
            if post is not None:
                return Reply(200, self._film_page(post))
        return Reply(404, _page("404", "<h1>Page introuvable</h1>"))

    def _listing(self, page: int) -> Reply:
        listed = [x for x in POSTS if x.listed]
        links = [f"/film/{x.slug}" for x in listed] + [f"/private/{PRIVATE_SLUG}"] + BAD_LINKS
        pages = max(1, -(-len(links) // PER_PAGE))
        if page < 1 or page > pages:
            return Reply(404, _page("404", "<h1>Page introuvable</h1>"))
        chunk = links[(page - 1) * PER_PAGE : page * PER_PAGE]
        items = "".join(f'<li><a class="post" href="{href}?utm_source=home&amp;ref=listing">post</a></li>'
                        for href in chunk)
        nav = f'<a rel="next" href="/films?page={page + 1}">Page suivante</a>' if page < pages else ""
        return Reply(200, _page(f"{LINK_SITE} - page {page}",
                                f"<h1>{LINK_SITE}: films en streaming</h1><ul>{items}</ul><nav>{nav}"
                                f'<a href="/">Accueil</a><a href="{self.vod.base}/">Publicité</a></nav>'))

    def _search(self, query: str) -> Reply:
        from crawlers.titlematch import fold

        words = set(fold(query).split())
        hits = [x for x in POSTS if words and words <= set(fold(x.title + " " + x.search_words).split())]
        items = "".join(f'<li><a class="post" href="/film/{x.slug}">{html.escape(x.title[:80])}</a></li>' for x in hits)
        return Reply(200, _page(f"Recherche: {html.escape(query)}",
                                f"<h1>Résultats pour {html.escape(query)}</h1><ul>{items or '<li>Aucun résultat</li>'}</ul>"))

    def _film_page(self, post: Post) -> bytes:
        shown = post.title if post.raw_title_html else html.escape(post.title)
        body = post.body.format(host=self.host.base, vod=self.vod.base, dead=self.dead)
        head = ""
        if post.slug == "big-buk-buny-streaming-vf":
            head = f'<meta property="og:video" content="{self.host.base}/v/bbb3.mp4">'
        if post.slug == "big-buck-bunny-cam-fake":
            head = f'<meta property="og:video:url" content="{self.host.base}/v/fake.mp4">'
        return _page(f"{shown[:300]} - {LINK_SITE}",
                     f"<h1>{shown}</h1>{body}<p>Regarder gratuitement en HD.</p>"
                     f'<a href="{self.vod.base}/">Pub</a>', head)

    # ------------------------------------------------------------------ video host

    def _host_route(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        p = urlsplit(path).path
        if self.is_removed(self.host.base + p):
            if p.startswith("/embed/"):
                return Reply(410, _page("Video removed", "<h1>This video has been removed "
                                        "following a copyright notice.</h1>"))
            return Reply(410, b"gone", "text/plain")
        if p == "/robots.txt":
            return Reply(200, b"User-agent: *\nDisallow:\n", "text/plain")
        if p == "/.well-known/security.txt":
            return Reply(200, b"Contact: mailto:abuse@streamhub.example\n", "text/plain")
        if p == "/v/fake.mp4":
            # Claims to be a video, is an HTML page: the match stage must say so.
            return Reply(200, _page("Not a video", "<h1>Click here to download the HD player</h1>"))
        scripted = host_page(p, method, headers, self.host.base)
        if scripted is not None:
            return Reply(scripted[0], scripted[1].encode("utf-8"), scripted[2])
        if p.startswith("/embed/"):
            vid = p[len("/embed/"):]
            if vid not in VIDEOS:
                return Reply(410, _page("Video removed", "<h1>This video does not exist or was removed.</h1>"))
            return Reply(200, self._embed_page(vid))
        if p.startswith("/v/") and p.endswith(".mp4"):
            vid = p[len("/v/"):-len(".mp4")]
            if vid in VIDEOS and VIDEOS[vid][0] != "hls":
                return Reply(200, file=self.media[VIDEOS[vid][0]], content_type="video/mp4")
        if p.startswith("/hls/"):
            _, _, vid, name = (p.split("/") + [""])[:4]
            if vid in VIDEOS and VIDEOS[vid][0] == "hls" and name and "/" not in name and not name.startswith("."):
                f = os.path.join(self.media["hls"], name)
                if os.path.isfile(f):
                    ctype = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp2t"
                    return Reply(200, file=f, content_type=ctype)
        return Reply(404, b"not found", "text/plain")

    def _embed_page(self, vid: str) -> bytes:
        style = VIDEOS[vid][1]
        h = self.host.base
        mp4 = f"{h}/v/{vid}.mp4"
        if style == "video_tag":
            body = f'<video controls width="640"><source src="/v/{vid}.mp4" type="video/mp4"></video>'
            return _page(f"{VIDEO_HOST} - {vid}", body)
        if style == "json_ld":
            ld = {"@context": "https://schema.org", "@graph": [{"@type": "WebPage", "name": vid},
                  {"@type": "VideoObject", "name": vid, "contentUrl": mp4, "embedUrl": f"{h}/embed/{vid}",
                   "uploadDate": "2024-01-01"}]}
            return _page(f"{VIDEO_HOST} - {vid}", '<div id="p">player</div>',
                         f'<script type="application/ld+json">{json.dumps(ld)}</script>')
        if style == "og_video":
            return _page(f"{VIDEO_HOST} - {vid}", "<div>player</div>", f'<meta property="og:video" content="{mp4}">')
        # player_js: an HLS stream configured in inline JavaScript.
        src = f"{h}/hls/{vid}/index.m3u8".replace("/", "\\/")
        return _page(f"{VIDEO_HOST} - {vid}", '<div id="player"></div>'
                     f'<script>var player = new Clappr.Player({{"file": "{src}", "parentId": "#player"}});</script>')

    # ------------------------------------------------------------------ licensed VOD

    def _vod_route(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        p = urlsplit(path).path
        films = {"big-buck-bunny": ("Big Buck Bunny", "reference_bbb"),
                 "calais-1906": ("Grand Prix de l'ACF, Calais 1906", "reference_calais")}
        if p == "/robots.txt":
            return Reply(200, b"User-agent: *\nDisallow:\n", "text/plain")
        if p == "/":
            items = "".join(f'<li><a href="/films/{k}">{html.escape(t)}</a> - 3,99 EUR</li>' for k, (t, _) in films.items())
            return Reply(200, _page(VOD_SITE, f"<h1>{VOD_SITE}: la VOD légale</h1><ul>{items}</ul>"))
        if p.startswith("/films/") and p[len("/films/"):] in films:
            title, key = films[p[len("/films/"):]]
            return Reply(200, _page(f"{html.escape(title)} - {VOD_SITE}",
                                    f"<h1>{html.escape(title)}</h1><p>Louer 3,99 EUR</p>"
                                    f'<video controls src="/media/{quote(key)}.mp4"></video>'))
        if p == "/embed/bbb-trailer":
            return Reply(200, _page("Bande-annonce", '<video controls src="/media/reference_bbb.mp4"></video>'))
        if p.startswith("/media/") and p.endswith(".mp4") and p[7:-4] in ("reference_bbb", "reference_calais"):
            return Reply(200, file=self.media[p[7:-4]], content_type="video/mp4")
        return Reply(404, b"not found", "text/plain")
