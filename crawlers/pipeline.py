"""Item pipeline: candidate items from the spiders into the database.

Crawl stage, inside the crawler's child process. Each item is one transaction of its
own (a crash mid-crawl keeps every candidate stored before it): the candidate is
upserted by canonical URL (``first_seen`` kept, ``last_seen`` moved), attributed to a
host (the host of its first media URL, the one that can remove the file, else the
page's), given a guessed title, and its evidence stored. A candidate on a licensed
partner's domain is stored as SKIPPED and never matched. Items that cannot be stored
are dropped with ``DropItem`` and counted as errors.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crawlers.evidence import store_blob, store_body
from crawlers.titlematch import TitleMatcher, matcher_from_db
from crawlers.urls import canonical_url
from db.hosts import find_host, host_for, host_key, locate_host
from db.models import Candidate, CandidateStatus, EvidenceItem

# Statuses a re-crawl may send back to the match stage when new media URLs appear.
_RETRY_ON_NEW_MEDIA = (CandidateStatus.NO_MATCH, CandidateStatus.FAILED, CandidateStatus.NEEDS_BROWSER)


class DatabasePipeline:
    def __init__(self, db_url: str, evidence_dir: str | None, stats: Any = None) -> None:
        self.db_url = db_url
        self.stats = stats
        self.evidence_dir = evidence_dir
        self.new = 0
        self.seen = 0
        self.matcher: TitleMatcher | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DatabasePipeline:
        pipeline = cls(crawler.settings.get("VIGIE_DB_URL"), crawler.settings.get("VIGIE_EVIDENCE_DIR") or None,
                       crawler.stats)
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self, spider: Any = None) -> None:
        from db.session import make_engine, sessionmaker_for

        self.engine = make_engine(self.db_url)
        self.Session = sessionmaker_for(self.engine)
        with self.Session() as s:
            self.matcher = matcher_from_db(s)
        from db.jobqueue import queue_in_use

        # Cluster mode: a new pending candidate's match job is queued in its own transaction.
        self.queue_jobs = queue_in_use(self.engine)

    def close_spider(self, spider: Any = None) -> None:
        self.engine.dispose()

    def process_item(self, item: dict[str, Any], spider: Any = None) -> dict[str, Any]:
        page_url = item.get("page_url") or ""
        if not page_url.lower().startswith(("http://", "https://")):
            raise DropItem(f"not an http(s) page URL: {page_url[:200]!r}")
        try:
            evidence = store_body(item["evidence"], self.evidence_dir)
            if item.get("browser"):
                evidence["browser"] = dict(item["browser"])
                if item.get("screenshot"):
                    evidence["browser"]["screenshot"] = store_blob(item["screenshot"], self.evidence_dir, ".png")
                if item.get("har"):
                    evidence["browser"]["har"] = store_blob(item["har"], self.evidence_dir, ".har.gz")
        except OSError as exc:
            raise DropItem(f"cannot store evidence for {page_url[:200]}: {exc}") from None
        for attempt in (1, 2):
            try:
                with self.Session.begin() as s:
                    created = self._upsert(s, item, evidence)
                break
            except IntegrityError:
                # Another crawler inserted the same canonical URL between our select and
                # insert: the second attempt finds it and updates.
                if attempt == 2:
                    raise DropItem(f"cannot store {page_url[:200]}: concurrent insert kept failing") from None
        item["stored"] = "new" if created else "seen"
        if created:
            self.new += 1
        else:
            self.seen += 1
        if self.stats is not None:
            self.stats.inc_value("vigie/candidates_new" if created else "vigie/candidates_seen")
        spider = spider or getattr(getattr(self, "crawler", None), "spider", None)
        if spider is not None and hasattr(spider, "emit"):
            spider.emit("candidate", url=page_url, new=created, title=(item.get("title_text") or "")[:200],
                        media=len(item["media_urls"]))
        return item

    def _upsert(self, s: Any, item: dict[str, Any], evidence: dict[str, Any]) -> bool:
        now = datetime.now(timezone.utc)
        page_url = item["page_url"]
        media = [str(m)[:2000] for m in item["media_urls"]]
        canon = canonical_url(page_url)[:2000]
        host = host_for(s, media[0] if media else page_url)
        page_host = find_host(s, page_url)
        if page_host is not None:
            locate_host(page_host, page_url, evidence.get("language"))
        licensed = host.licensed_partner or bool(page_host and page_host.licensed_partner) or any(
            (h := find_host(s, m)) is not None and h.licensed_partner for m in media)
        guess = self.matcher.guess(item.get("title_text")) if self.matcher else None
        evidence = {**evidence, "page_host": host_key(page_url), "embeds": item.get("embeds", []),
                    "problems": item.get("problems", []), "title_truncated": item.get("title_truncated", False)}
        if item.get("needs_browser"):
            evidence["needs_browser"] = item["needs_browser"]
        problems = "; ".join(item.get("problems", [])) or None

        cand = s.scalar(select(Candidate).where(Candidate.canonical_url == canon))
        created = cand is None
        if cand is None:
            cand = Candidate(canonical_url=canon, first_seen=now, media_urls=[], evidence={})
            s.add(cand)
            evidence["first_capture"] = {"sha256": evidence["sha256"], "fetched_at": evidence["fetched_at"]}
            evidence["captures"] = 1
        else:
            old = cand.evidence or {}
            evidence["first_capture"] = old.get("first_capture") or {
                "sha256": old.get("sha256"), "fetched_at": old.get("fetched_at")}
            evidence["captures"] = int(old.get("captures", 1)) + 1
        old_media = list(cand.media_urls or [])
        added = [m for m in media if m not in old_media]
        cand.page_url = page_url[:2000]
        cand.media_urls = old_media + added
        cand.site_id = item.get("site_id") if created or cand.site_id is None else cand.site_id
        cand.host_id = host.id
        cand.title_text = item.get("title_text")
        cand.guessed_title_id = guess.title_id if guess else None
        cand.guess_score = guess.score if guess else None
        cand.evidence = evidence
        cand.last_seen = now
        cand.error = problems if not cand.media_urls else None
        needs_browser = item.get("needs_browser")
        if licensed:
            cand.status = CandidateStatus.SKIPPED
            cand.error = "licensed partner: never matched or notified"
        elif needs_browser and not cand.media_urls:
            # Its player is built by a script and no browser ran here: not matchable yet.
            cand.status = CandidateStatus.NEEDS_BROWSER
            cand.error = "; ".join(filter(None, [f"needs the browser resolver ({needs_browser})",
                                                 problems]))[:2000]
        elif created:
            cand.status = CandidateStatus.PENDING
        elif added and cand.status in _RETRY_ON_NEW_MEDIA:
            cand.status = CandidateStatus.PENDING
        s.flush()
        # The evidence file's rows of this fetch (WARC records, screenshot), written by an
        # earlier pipeline when the stage asked for one (evidence.crawl): a new capture is
        # a new row, never a replaced one.
        for row in item.get("evidence_items") or []:
            s.add(EvidenceItem(candidate_id=cand.id, **row))
        if cand.status == CandidateStatus.PENDING and getattr(self, "queue_jobs", False):
            from db.jobqueue import defer_match

            defer_match(s, [cand.id])
        return created
