"""The crawl's evidence: a Scrapy item pipeline writing each page fetch as WARC records.

The crawl stage adds it to the crawler's pipelines when ``[evidence] dir`` is set
(``stages.table.crawl``); it runs in the crawler process before the database pipeline.
For each candidate item it appends the link page's and every player page's request and
response to this process's daily WARC file (one gzip member per record, no lock, no
fsync: a few hundred microseconds a page), keeps the browser's screenshot as a
content-addressed file (and the HAR of its requests), and hands the database pipeline the ``evidence_items`` rows to
store with the candidate, in the same transaction.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timezone
from typing import Any

from evidence.capture import HAR, PAGE, PLAYER, SCREENSHOT
from evidence.store import EvidenceStore, Fetch, day_of


class WarcPipeline:
    """Scrapy pipeline (``VIGIE_WARC_DIR``: the evidence directory)."""

    def __init__(self, root: str) -> None:
        self.store = EvidenceStore(root)

    @classmethod
    def from_crawler(cls, crawler: Any) -> WarcPipeline:
        from scrapy.exceptions import NotConfigured

        root = crawler.settings.get("VIGIE_WARC_DIR")
        if not root:
            raise NotConfigured("no evidence directory")
        return cls(root)

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        from scrapy.exceptions import DropItem

        page_url = str(item.get("page_url") or "")
        try:
            rows = [self._fetch_row(item["evidence"], PAGE)]
            rows += [self._fetch_row(c, PLAYER) for c in item.pop("captures", None) or []]
            # What the browser resolver saw, when it rendered the page.
            at = datetime.now(timezone.utc)
            for key, kind, suffix in (("screenshot", SCREENSHOT, ".png"), ("har", HAR, ".har.gz")):
                if item.get(key):
                    stored = self.store.put_blob(item[key], suffix)
                    rows.append({"kind": kind, "captured_at": at, "day": day_of(at), "url": page_url[:2000],
                                 "ip": None, "meta": {}, **stored.row()})
        except OSError as exc:
            # Evidence that cannot be kept is no reason to keep quiet: the item goes, said.
            raise DropItem(f"cannot write the evidence of {page_url[:200]}: {exc}") from None
        item["evidence_items"] = rows
        return item

    def _fetch_row(self, cap: dict[str, Any], kind: str) -> dict[str, Any]:
        body = gzip.decompress(cap["body_gz"]) if cap.get("body_gz") else cap.pop("body", b"")
        at = _when(cap.get("fetched_at")) or datetime.now(timezone.utc)
        fetch = Fetch(url=cap["url"], fetched_at=at, status=cap.get("status"), reason=cap.get("reason") or "",
                      request_headers=[tuple(h) for h in cap.get("request_headers") or []],
                      response_headers=[tuple(h) for h in cap.get("header_list") or
                                        list((cap.get("headers") or {}).items())],
                      body=body, ip=cap.get("ip_address"), truncated=cap.get("truncated"))
        stored = self.store.append_warc(fetch)
        return {"kind": kind, "captured_at": at, "day": day_of(at), "url": str(cap["url"])[:2000],
                "ip": cap.get("ip_address"), "meta": {"status": cap.get("status")}, **stored.row()}


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
