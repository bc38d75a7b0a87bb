"""The base of every site-kind spider: film pages in, candidate items out.

Crawl stage. A site kind only decides how to reach film pages (listings, a search
form, a sitemap); what happens on a film page is the same everywhere and lives here:
capture the evidence, read the title text, run the media resolvers, follow embedded
players to a bounded depth (one request after another, carrying the item along, so
the item is complete when it leaves), then hand the item to the database pipeline.
A failure anywhere is recorded against its URL and the crawl goes on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, ClassVar

from http.client import responses as HTTP_REASONS

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from crawlers.browser import DEFAULT_RENDER, RENDER_SETTINGS, BrowserUnavailable
from crawlers.resolvers import resolve_page

# Titles longer than this are cut (and flagged): a 10,000-character title is an attack
# or an accident, and nothing downstream needs more than a few hundred characters.
MAX_TITLE_CHARS = 500
# A player URL that serves the video itself: its capture keeps the headers and this much
# of the body (what the file is, not the film).
MEDIA_HEAD_BYTES = 64 * 1024
# A crawl keeps at most this many error entries; the count is kept in full.
MAX_ERROR_LOG = 200
# Every site kind understands these keys in ``Site.settings`` (with these types).
COMMON_SETTINGS: dict[str, tuple[type, ...]] = {
    "allowed_domains": (list,),
    "obey_robots": (bool,),
    "download_delay": (int, float),
    "concurrency": (int,),
    "timeout_s": (int, float),
    "retries": (int,),
    "max_size_bytes": (int,),
    "max_redirects": (int,),
    "depth_limit": (int,),
    "max_pages": (int,),
    "embed_depth": (int,),
    "title_css": (str,),
    "film_link_pattern": (str,),
    "film_link_css": (str,),
    "user_agent": (str,),
    # The browser resolver (crawlers.browser): when to render film pages, and its budget.
    **RENDER_SETTINGS,
}

_SPACES = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_title(raw: str | None) -> tuple[str | None, bool]:
    """Title text with every control character and run of whitespace made one space
    (no CR/LF can ever reach a mail header from here), cut to ``MAX_TITLE_CHARS``.
    Markup stays as text: escaping is the job of whoever renders it."""
    if raw is None:
        return None, False
    text = _SPACES.sub(" ", raw).strip()
    if not text:
        return None, False
    if len(text) > MAX_TITLE_CHARS:
        return text[:MAX_TITLE_CHARS].rstrip(), True
    return text, False


_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)", re.I)


def page_language(body: bytes, headers: dict[str, str]) -> str | None:
    """The page's language tag: ``<html lang>``, else the ``Content-Language`` header
    (the host's jurisdiction may follow it: ``db.hosts.note_page_language``)."""
    m = _HTML_LANG.search(body[:65536])
    if m:
        return m.group(1).decode("ascii")[:35]
    header = next((v for k, v in headers.items() if k.lower() == "content-language"), "")
    tag = header.split(",", 1)[0].strip()
    return tag[:35] if re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", tag) else None


def capture(response: Response, max_body: int | None = None) -> dict[str, Any]:
    """The evidence of one fetched page (the pipeline stores ``body_gz``): what was asked
    (``request_headers``) and answered, from which address. With ``max_body`` (a player
    URL that serves the video itself) only the body's first bytes are kept, flagged."""
    body = response.body
    truncated = max_body is not None and len(body) > max_body
    if truncated:
        body = body[:max_body]
    headers = {
        k.decode("latin-1"): b", ".join(v).decode("latin-1")[:2000]
        for k, v in list(response.headers.items())[:100]
    }
    request = response.request
    asked = [] if request is None else [
        (k.decode("latin-1"), b", ".join(v).decode("latin-1")[:2000]) for k, v in list(request.headers.items())[:100]]
    ip = getattr(response, "ip_address", None)
    return {
        "url": response.url,
        "fetched_at": datetime.now(timezone.utc).isoformat(),
        "status": response.status,
        "reason": HTTP_REASONS.get(response.status, ""),
        "headers": headers,
        "request_headers": asked,
        "ip_address": str(ip) if ip is not None else None,
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        **({"truncated": "length"} if truncated else {}),
        "language": page_language(body, headers),
        "body_gz": gzip.compress(body, mtime=0, compresslevel=6),
    }


class CandidateSpider(scrapy.Spider):
    """Base of the site-kind spiders; a subclass sets ``name`` (the site kind), its own
    ``SETTINGS``/``REQUIRED`` keys, and yields ``film_request``s from ``start``."""

    name: ClassVar[str] = ""  # type: ignore[misc]
    SETTINGS: ClassVar[dict[str, tuple[type, ...]]] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    DEFAULT_EMBED_DEPTH: ClassVar[int] = 2
    DEFAULT_MAX_PAGES: ClassVar[int] = 50

    def __init__(self, site: dict[str, Any], queries: list[str] | None = None,
                 progress: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.site = site
        self.conf: dict[str, Any] = dict(site.get("settings") or {})
        self.start_urls = list(site.get("start_urls") or [])
        self.queries = list(queries or [])
        self.progress = progress
        self.allowed_domains = self.conf.get("allowed_domains") or _hostnames(self.start_urls)
        self.error_count = 0
        self.error_log: list[dict[str, str]] = []
        self.robots_skipped: list[str] = []
        self.embed_depth = int(self.conf.get("embed_depth", self.DEFAULT_EMBED_DEPTH))
        self.max_pages = int(self.conf.get("max_pages", self.DEFAULT_MAX_PAGES))
        self.render = str(self.conf.get("render", DEFAULT_RENDER))

    # ------------------------------------------------------------------ bookkeeping

    def emit(self, event: str, **data: Any) -> None:
        """One progress line for the parent process (JSON on stdout)."""
        if not self.progress:
            return
        try:
            sys.stdout.write(json.dumps({"event": event, **data}, ensure_ascii=True) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError):
            # The parent is gone (killed scheduler): progress has no reader, but the
            # crawl's results still go to the database, so carry on without it.
            self.progress = False

    def record_error(self, url: str, message: str) -> None:
        self.error_count += 1
        message = _SPACES.sub(" ", message)[:500]
        if len(self.error_log) < MAX_ERROR_LOG:
            self.error_log.append({"url": url[:2000], "error": message})
        self.emit("error", url=url[:2000], error=message)

    def describe(self, failure: Failure) -> str | None:
        """A one-line reason for a failed request, or None when it is no error
        (robots.txt said no: that is politeness working)."""
        exc = failure.value
        if isinstance(exc, IgnoreRequest) and "robots.txt" in str(exc):
            return None
        response = getattr(exc, "response", None)
        if response is not None:
            return f"HTTP {response.status}"
        if type(exc).__name__ == "DownloadCancelledError" and not str(exc):
            # Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE (an endless chunked
            # body, say) without a message; say which limit that was.
            limit = self.settings.getint("DOWNLOAD_MAXSIZE") if getattr(self, "settings", None) else 0
            return (f"DownloadCancelledError: body over the size limit ({limit} bytes) "
                    "or the crawl stopping; download cancelled")
        text = str(exc) or type(exc).__name__
        return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text

    def on_error(self, failure: Failure) -> None:
        url = failure.request.url if hasattr(failure, "request") else "?"
        reason = self.describe(failure)
        if reason is None:
            self.robots_skipped.append(url)
            return
        self.record_error(url, reason)

    # ------------------------------------------------------------------ film pages

    def film_request(self, url: str, **kw: Any) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_film, errback=self.on_error, **kw)

    def page_links(self, response: Response, pattern_key: str = "film_link_pattern",
                   css_key: str = "film_link_css") -> list[str]:
        """Links on a listing page that lead to film pages, per the site's settings."""
        from scrapy.linkextractors import LinkExtractor

        pattern = self.conf.get(pattern_key)
        css = self.conf.get(css_key)
        extractor = LinkExtractor(allow=pattern or (), restrict_css=css or (), unique=True)
        return [link.url for link in extractor.extract_links(response)]

    def title_of(self, response: TextResponse) -> str | None:
        css = self.conf.get("title_css")
        candidates = (
            [" ".join(response.css(css).getall())] if css else
            [" ".join(response.xpath("//h1[1]//text()").getall()),
             response.css('meta[property="og:title"]::attr(content)').get(),
             " ".join(response.xpath("//title//text()").getall())]
        )
        return next((c for c in candidates if c and c.strip()), None)

    def parse_film(self, response: Response) -> Iterator[Any]:
        self.emit("page", url=response.url, status=response.status)
        if not isinstance(response, TextResponse):
            self.record_error(response.url, f"not an HTML page ({response.headers.get('Content-Type', b'?').decode('latin-1')})")
            return
        title, truncated = clean_title(self.title_of(response))
        media, embeds = resolve_page(response.selector, response.url)
        item: dict[str, Any] = {
            "site_id": self.site.get("id"),
            "page_url": response.url,
            "title_text": title,
            "title_truncated": truncated,
            "media_urls": media,
            "embeds": [],
            "problems": [],
            "evidence": capture(response),
            # The player pages' captures, for the evidence file (evidence.crawl), never stored
            # in the candidate's JSON.
            "captures": [],
        }
        referer = response.request.headers.get("Referer") if response.request is not None else None
        item["_referer"] = referer.decode("latin-1") if isinstance(referer, bytes) else None
        yield from self._next_embed(item, [(e, 1) for e in embeds], set(embeds))

    def _next_embed(self, item: dict[str, Any], queue: list[tuple[str, int]], seen: set[str]) -> Iterator[Any]:
        if not queue:
            yield from self._maybe_render(item)
            return
        url, depth = queue.pop(0)
        yield scrapy.Request(
            url, callback=self.parse_embed, errback=self.embed_failed, dont_filter=True,
            # Embeds live on video hosts, outside the site's allowed domains.
            meta={"item": item, "queue": queue, "seen": seen, "embed_depth": depth, "allow_offsite": True},
        )

    def parse_embed(self, response: Response) -> Iterator[Any]:
        meta = response.meta
        item, queue, seen, depth = meta["item"], meta["queue"], meta["seen"], meta["embed_depth"]
        ip = getattr(response, "ip_address", None)
        # The server's address, as for the page: the notice to this host names it (ACNS).
        entry: dict[str, Any] = {"url": response.url, "status": response.status,
                                 "ip_address": str(ip) if ip is not None else None}
        if isinstance(response, TextResponse):
            media, embeds = resolve_page(response.selector, response.url)
            for m in media:
                if m not in item["media_urls"]:
                    item["media_urls"].append(m)
            entry["media"] = media
            if depth < self.embed_depth:
                for e in embeds:
                    if e not in seen:
                        seen.add(e)
                        queue.append((e, depth + 1))
        else:
            # A player URL that serves the video itself.
            item["media_urls"].append(response.url)
        item["captures"].append(capture(response, None if isinstance(response, TextResponse) else MEDIA_HEAD_BYTES))
        item["embeds"].append(entry)
        yield from self._next_embed(item, queue, seen)

    # ------------------------------------------------------------------ the browser

    def _maybe_render(self, item: dict[str, Any]) -> Iterator[Any]:
        """The finished item, or first a visit by the browser resolver when the site's
        ``render`` setting asks for one (``always``; ``auto`` when nothing was found)."""
        referer = item.pop("_referer", None)
        if self.render == "never" or (self.render == "auto" and item["media_urls"]):
            yield item
            return
        # The film page again, through the browser (crawlers.middleware.BrowserMiddleware);
        # the address check runs on it first like on any request.
        yield scrapy.Request(
            item["page_url"], callback=self.parse_rendered, errback=self.render_failed, dont_filter=True,
            headers={"Referer": referer} if referer else None,
            # The visitor's Referer (the listing that linked here), not the last embed's.
            meta={"item": item, "vigie_render": True, "allow_offsite": True,
                  **({} if referer else {"referrer_policy": "no-referrer"})})

    def parse_rendered(self, response: Response) -> Iterator[Any]:
        item = response.meta["item"]
        rendered = response.meta["vigie_rendered"]
        self.emit("rendered", url=item["page_url"], media=len(rendered.media), clicks=rendered.clicks,
                  over_budget=rendered.over_budget)
        for m in rendered.media_urls:
            if m not in item["media_urls"]:
                item["media_urls"].append(m)
        item["browser"] = rendered.summary()
        item["screenshot"] = rendered.screenshot
        item["har"] = rendered.har
        if rendered.over_budget:
            item["problems"].append(f"browser: over budget: {rendered.over_budget}")
        if rendered.error:
            item["problems"].append(f"browser: {rendered.error}")
        if rendered.refused:
            item["problems"].append(f"browser: {len(rendered.refused)} request(s) refused by the address "
                                    f"policy, first: {rendered.refused[0]['why'][:200]}")
        if not item["media_urls"]:
            item["problems"].append("no media URL found on the page, even in the browser")
        yield item

    def render_failed(self, failure: Failure) -> Iterator[Any]:
        item = failure.request.meta["item"]
        if isinstance(failure.value, BrowserUnavailable):
            # Stored as needs_browser: a crawl on a machine with Chromium will find it.
            item["needs_browser"] = str(failure.value)
        else:
            item["problems"].append(f"browser: {self.describe(failure) or 'refused'}")
        yield item

    def embed_failed(self, failure: Failure) -> Iterator[Any]:
        meta = failure.request.meta
        item = meta["item"]
        reason = self.describe(failure) or "forbidden by robots.txt"
        item["embeds"].append({"url": failure.request.url, "error": reason})
        item["problems"].append(f"embed {failure.request.url[:300]}: {reason}")
        yield from self._next_embed(item, meta["queue"], meta["seen"])


def _hostnames(urls: list[str]) -> list[str]:
    from urllib.parse import urlsplit

    return sorted({h for u in urls if (h := urlsplit(u).hostname)})
