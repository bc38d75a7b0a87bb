"""The evidence file: what was seen, where, when, and proof that it was not altered.

Every capture of the flow is kept here as an ``EvidenceItem`` whose bytes never change:
the crawl's link and player pages as WARC request/response records (``evidence.crawl``,
appended to a daily WARC file, one gzip member per record), the browser's screenshot,
the media URL's response headers, the matched frames side by side and the fingerprint
match (``evidence.capture``, from the match stage), every verification fetch (from the
verify stage). The evidence stage (``evidence.manifest``) writes each day's manifest
(the SHA-256 of every item) and has it timestamped by an RFC 3161 authority
(``evidence.timestamp``); ``evidence.export`` builds a self-contained case file and
``evidence.verify`` re-checks one; ``evidence.purge`` applies the retention policy.

Sits beside ``crawlers``, ``notices`` and ``reports``; the stages call it.
May import: db, foundation.
"""
