"""Site kind ``sitemap``: sitemap.xml (and sitemap indexes) and RSS/Atom feeds.

Crawl stage. The cheapest way to see every new post of a site: its sitemap and its
feed of new posts. Start URLs may mix both; the kind is told by the document itself.
``film_link_pattern`` (a regex), when set, keeps only the URLs that are film pages.
Sitemap parsing is Scrapy's (``scrapy.utils.sitemap``), which refuses XML entities.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.selector import Selector
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from crawlers.spiders.base import CandidateSpider


class SitemapFeedSpider(CandidateSpider):
    name = "sitemap"
    SETTINGS: dict[str, tuple[type, ...]] = {}
    REQUIRED = ()

    async def start(self) -> AsyncIterator[Any]:
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse_document, errback=self.on_error)

    def _wanted(self, url: str) -> bool:
        pattern = self.conf.get("film_link_pattern")
        return url.startswith(("http://", "https://")) and (not pattern or re.search(pattern, url) is not None)

    def parse_document(self, response: Response) -> Iterator[Any]:
        self.emit("listing", url=response.url, status=response.status)
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.settings.getint("DOWNLOAD_MAXSIZE"))
            except Exception as exc:  # noqa: BLE001 - any decompression failure is this document's error
                self.record_error(response.url, f"bad gzip sitemap: {exc}")
                return
        head = body[:2000].lower()
        if b"<urlset" in head or b"<sitemapindex" in head:
            yield from self._sitemap(response, body)
        elif b"<rss" in head or b"<feed" in head or b"<rdf" in head:
            yield from self._feed(response, body)
        else:
            self.record_error(response.url, "neither a sitemap nor an RSS/Atom feed")

    def _sitemap(self, response: Response, body: bytes) -> Iterator[Any]:
        try:
            sitemap = Sitemap(body)
        except Exception as exc:  # noqa: BLE001 - lxml raises several types on bad XML
            self.record_error(response.url, f"malformed sitemap: {exc}")
            return
        for entry in sitemap:
            loc = response.urljoin(entry.get("loc", "").strip())
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(loc, callback=self.parse_document, errback=self.on_error)
            elif self._wanted(loc):
                yield self.film_request(loc)

    def _feed(self, response: Response, body: bytes) -> Iterator[Any]:
        sel = Selector(body=body, type="xml")
        sel.remove_namespaces()
        links = sel.xpath("//item/link/text()").getall()
        links += sel.xpath("//entry/link[not(@rel) or @rel='alternate']/@href").getall()
        for link in links:
            url = response.urljoin(link.strip())
            if self._wanted(url):
                yield self.film_request(url)
