"""Media resolvers: turn a film page or an embed page into media URLs and embeds to follow.

Crawl stage, between fetching a candidate page and storing it: the match stage needs
the URLs of the video files themselves (MP4, WebM, HLS playlists), which pirate pages
hide behind players. Each resolver knows one way a page points at video; the spider runs
every resolver in ``RESOLVERS`` on every page and follows the embeds they find (to a
bounded depth). A new player trick is a new resolver class added to ``BUILTINS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from parsel import Selector

MEDIA_EXTENSIONS = (".mp4", ".m4v", ".webm", ".mkv", ".mov", ".avi", ".flv", ".m3u8", ".ts", ".mpd")


@dataclass(frozen=True)
class Found:
    """A URL found on a page: ``media`` is a video file or playlist, ``embed`` a player
    page to fetch and resolve in turn."""

    url: str
    kind: Literal["media", "embed"]
    resolver: str


class Resolver:
    """Base of every resolver: a unique ``name`` and ``find`` over one page."""

    name: ClassVar[str] = ""

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        raise NotImplementedError

    def _found(self, url: str | None, kind: Literal["media", "embed"], base_url: str) -> Found | None:
        from urllib.parse import urljoin

        url = (url or "").strip()
        if not url or url.startswith(("data:", "blob:", "javascript:", "about:")):
            return None
        try:
            return Found(urljoin(base_url, url), kind, self.name)
        except ValueError:  # "http://[::1": not a URL; the page's other URLs still count
            return None


def looks_like_media(url: str) -> bool:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(MEDIA_EXTENSIONS)


class VideoTagResolver(Resolver):
    """``<video src>`` and ``<video><source src></video>``."""

    name = "video_tag"

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for url in sel.css("video::attr(src), video source::attr(src)").getall():
            if f := self._found(url, "media", base_url):
                yield f


class IframeResolver(Resolver):
    """``<iframe src>`` (and ``data-src`` for lazy players): a video host's embed page,
    unless the iframe points straight at a file."""

    name = "iframe"

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for url in sel.css("iframe::attr(src), iframe::attr(data-src)").getall():
            f = self._found(url, "embed", base_url)
            if f:
                yield Found(f.url, "media", self.name) if looks_like_media(f.url) else f


class OpenGraphResolver(Resolver):
    """``og:video``, ``og:video:url``, ``og:video:secure_url`` and ``twitter:player``."""

    name = "open_graph"
    PROPS = ("og:video", "og:video:url", "og:video:secure_url")

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for meta in sel.css("meta"):
            # The element's own get(), not parsel's attrib: that copies every attribute,
            # and lxml raises ValueError for a name with a control character, which would
            # hide the whole page's media (found by fuzzing).
            attr = meta.root.get
            prop = (attr("property") or attr("name") or "").strip().lower()
            content = attr("content")
            if prop in self.PROPS:
                f = self._found(content, "media", base_url)
                if f:
                    yield f if looks_like_media(f.url) else Found(f.url, "embed", self.name)
            elif prop == "twitter:player" and (f := self._found(content, "embed", base_url)):
                yield f


class JsonLdResolver(Resolver):
    """JSON-LD ``VideoObject``: ``contentUrl`` is media, ``embedUrl`` an embed page;
    found at any depth (``@graph``, lists, nested ``video`` properties)."""

    name = "json_ld"

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for raw in sel.css('script[type="application/ld+json"]::text').getall():
            try:
                data = json.loads(raw)
            except ValueError:
                continue  # malformed JSON-LD is common; the other resolvers still run
            for obj in _walk(data):
                types = obj.get("@type")
                types = types if isinstance(types, list) else [types]
                if "VideoObject" not in types:
                    continue
                if isinstance(obj.get("contentUrl"), str) and (f := self._found(obj["contentUrl"], "media", base_url)):
                    yield f
                if isinstance(obj.get("embedUrl"), str) and (f := self._found(obj["embedUrl"], "embed", base_url)):
                    yield f


def _walk(data: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 20:
        return
    if isinstance(data, dict):
        yield data
        for v in data.values():
            yield from _walk(v, depth + 1)
    elif isinstance(data, list):
        for v in data:
            yield from _walk(v, depth + 1)


class PlayerConfigResolver(Resolver):
    """A player configured in inline JavaScript: ``"file": "https://.../x.m3u8"``,
    ``file: '/x.mp4'``, ``source: ...``, ``src: ...`` (JW Player, Clappr, Video.js, Plyr)."""

    name = "player_config"
    PATTERN = re.compile(
        r"""["']?(?:file|src|source|hls|url)["']?\s*:\s*["']([^"'\s<>]{1,2000})["']""", re.IGNORECASE
    )

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for script in sel.css("script:not([src])::text").getall():
            for url in self.PATTERN.findall(script):
                url = url.replace("\\/", "/")
                if looks_like_media(url) and (f := self._found(url, "media", base_url)):
                    yield f


class MediaLinkResolver(Resolver):
    """Plain ``<a href>`` links to video files ("download" buttons)."""

    name = "media_link"

    def find(self, sel: Selector, base_url: str) -> Iterator[Found]:
        for url in sel.css("a::attr(href)").getall():
            if looks_like_media(url) and (f := self._found(url, "media", base_url)):
                yield f


BUILTINS: list[type[Resolver]] = [
    VideoTagResolver,
    IframeResolver,
    OpenGraphResolver,
    JsonLdResolver,
    PlayerConfigResolver,
    MediaLinkResolver,
]


def build_registry(classes: list[type[Resolver]]) -> dict[str, Resolver]:
    registry: dict[str, Resolver] = {}
    for cls in classes:
        if not cls.name:
            raise ValueError(f"resolver {cls.__name__} has no name")
        if cls.name in registry:
            raise ValueError(f"resolver name {cls.name!r} is used twice")
        registry[cls.name] = cls()
    return registry


RESOLVERS = build_registry(BUILTINS)


def resolve_page(sel: Selector, base_url: str) -> tuple[list[str], list[str]]:
    """(media URLs, embed URLs) found on one page by every resolver, in page order, once each."""
    media: dict[str, None] = {}
    embeds: dict[str, None] = {}
    for resolver in RESOLVERS.values():
        for f in resolver.find(sel, base_url):
            if not f.url.lower().startswith(("http://", "https://")):
                continue
            (media if f.kind == "media" else embeds)[f.url] = None
    return list(media), [e for e in embeds if e not in media and e != base_url]
