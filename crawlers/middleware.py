"""Downloader middleware that refuses unsafe addresses before any request leaves.

Crawl stage. Every request the spiders make (start URLs, links found on pages, embeds,
redirects, robots.txt) passes here first and goes through ``foundation.netsafe``: only
http(s), and only hosts that resolve to public addresses, unless the crawl allows
loopback (the demo web and the tests). Answers are cached per host and port for the
crawl, so a page with a hundred links to one host resolves it once.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver

from foundation.errors import UnsafeAddress
from foundation.netsafe import address_problem, check_url


class UnsafeRequest(IgnoreRequest):
    """A request refused by the address check; its message says why."""


class NetSafeMiddleware:
    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self._cache: dict[tuple[str, str, int | None], str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NetSafeMiddleware:
        return cls(crawler.settings.getbool("VIGIE_ALLOW_LOOPBACK"))

    def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        from scrapy.utils.httpobj import urlparse_cached

        parts = urlparse_cached(request)
        key = (parts.scheme, parts.hostname or "", parts.port)
        if key not in self._cache:
            try:
                check_url(request.url, allow_loopback=self.allow_loopback)
                self._cache[key] = None
            except UnsafeAddress as exc:
                self._cache[key] = str(exc)
        problem = self._cache[key]
        if problem:
            raise UnsafeRequest(problem)
        return None


class SafeResolver(CachingThreadedResolver):
    """Scrapy's DNS resolver, refusing unsafe answers: the address checked is the one used.

    The middleware checks a host before the request is scheduled, but Scrapy resolves it
    again when it connects; a host that answers a public address to the first lookup and
    127.0.0.1 or 169.254.169.254 to the second (DNS rebinding) would slip through. Here
    the answer Twisted connects to is checked itself (cached answers too). Installed by
    ``crawlers.child`` through the ``DNS_RESOLVER`` setting.
    """

    allow_loopback = False

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> SafeResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.allow_loopback = crawler.settings.getbool("VIGIE_ALLOW_LOOPBACK")
        return resolver

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 - Twisted API
        from twisted.internet.error import DNSLookupError

        allow = self.allow_loopback

        def check(address: str) -> str:
            problem = address_problem(address, allow_loopback=allow)
            if problem:
                # Twisted reports any failed lookup as "no results": log the real reason.
                why = f"refused {name}: resolves to {address}, a {problem}"
                logging.getLogger(__name__).warning(why)
                raise DNSLookupError(why)
            return address

        return super().getHostByName(name, timeout).addCallback(check)


class BrowserMiddleware:
    """Renders the requests a spider marks ``meta["vigie_render"]`` in the browser resolver.

    The film page is loaded by ``crawlers.browser.BrowserPool`` (started on the first
    such request, closed with the spider) instead of Scrapy's downloader; the response
    carries the rendered DOM and ``meta["vigie_rendered"]`` what the browser recorded.
    Placed right after ``NetSafeMiddleware``, so the page's address is checked first like
    any other request. No browser: the request fails with ``BrowserUnavailable``.
    """

    def __init__(self, crawler: Crawler) -> None:
        from scrapy import signals

        self.crawler = crawler
        self.allow_loopback = crawler.settings.getbool("VIGIE_ALLOW_LOOPBACK")
        self.pool: Any = None
        crawler.signals.connect(self.close, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BrowserMiddleware:
        return cls(crawler)

    def _pool(self) -> Any:
        from crawlers.browser import DEFAULT_MAX_PAGES, BrowserPool, Budget

        if self.pool is None:
            conf = dict(getattr(self.crawler.spider, "conf", None) or {})
            self.pool = BrowserPool(allow_loopback=self.allow_loopback, budget=Budget.from_settings(conf),
                                    max_pages=int(conf.get("render_max_pages", DEFAULT_MAX_PAGES)),
                                    user_agent=self.crawler.settings.get("USER_AGENT"))
        return self.pool

    async def process_request(self, request: Request, spider: Spider | None = None) -> Any:
        import asyncio

        from scrapy.http import HtmlResponse

        if not request.meta.get("vigie_render"):
            return None
        referer = request.headers.get("Referer")
        future = self._pool().submit(request.url, referer.decode("latin-1") if referer else None)
        rendered = await asyncio.wrap_future(future)
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("vigie/browser_pages")
        request.meta["vigie_rendered"] = rendered
        return HtmlResponse(url=request.url, body=rendered.html.encode("utf-8"), encoding="utf-8",
                            request=request)

    def close(self, spider: Any = None) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
