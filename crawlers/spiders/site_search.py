"""Site kind ``site_search``: ask the site's own search for every catalogue title.

Crawl stage. Some pirate sites hide posts from their listings and sitemaps; their
search still finds them. ``search_url`` is a template with ``{query}`` (URL-encoded
for you); the queries are the catalogue's titles and alternative titles, passed in by
the crawl runner. Result links are film pages per ``film_link_pattern`` or
``film_link_css``; result pagination follows ``pagination_css`` up to ``max_pages``
per query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote_plus

import scrapy
from scrapy.http import Response, TextResponse

from crawlers.spiders.base import CandidateSpider
from crawlers.spiders.link_site import DEFAULT_PAGINATION_CSS


class SiteSearchSpider(CandidateSpider):
    name = "site_search"
    SETTINGS = {"search_url": (str,), "pagination_css": (str,)}
    REQUIRED = ("search_url",)
    DEFAULT_MAX_PAGES = 3

    async def start(self) -> AsyncIterator[Any]:
        template = self.conf["search_url"]
        for query in self.queries:
            url = template.replace("{query}", quote_plus(query))
            yield scrapy.Request(url, callback=self.parse_results, errback=self.on_error,
                                 cb_kwargs={"query": query, "page": 1})

    def parse_results(self, response: Response, query: str, page: int) -> Iterator[Any]:
        self.emit("search", url=response.url, query=query)
        if not isinstance(response, TextResponse):
            self.record_error(response.url, "search results are not HTML")
            return
        for url in self.page_links(response):
            yield self.film_request(url)
        if page < self.max_pages:
            for href in response.css(self.conf.get("pagination_css", DEFAULT_PAGINATION_CSS)).getall():
                yield response.follow(href, callback=self.parse_results, errback=self.on_error,
                                      cb_kwargs={"query": query, "page": page + 1})
