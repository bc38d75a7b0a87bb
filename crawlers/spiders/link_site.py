"""Site kind ``link_site``: listing pages with pagination, leading to film pages.

Crawl stage. The shape of most pirate link sites: a paginated list of posts, each post
a film page with embedded players. Per-site settings say which links are film pages
(``film_link_pattern`` regex or ``film_link_css`` region) and which lead to the next
listing page (``pagination_css``, default ``rel="next"`` links); ``max_pages`` bounds
the listing pages visited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse

from crawlers.spiders.base import CandidateSpider

DEFAULT_PAGINATION_CSS = 'a[rel~="next"]::attr(href), link[rel~="next"]::attr(href)'


class LinkSiteSpider(CandidateSpider):
    name = "link_site"
    SETTINGS = {"pagination_css": (str,)}
    REQUIRED = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listing_pages = 0

    async def start(self) -> AsyncIterator[Any]:
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse_listing, errback=self.on_error)

    def parse_listing(self, response: Response) -> Iterator[Any]:
        self.listing_pages += 1
        self.emit("listing", url=response.url, status=response.status)
        if not isinstance(response, TextResponse):
            self.record_error(response.url, "listing page is not HTML")
            return
        for url in self.page_links(response):
            yield self.film_request(url)
        if self.listing_pages >= self.max_pages:
            return
        css = self.conf.get("pagination_css", DEFAULT_PAGINATION_CSS)
        for href in response.css(css).getall():
            yield response.follow(href, callback=self.parse_listing, errback=self.on_error)
