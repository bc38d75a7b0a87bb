"""The stages of the flow (catalogue, crawl, match, notices, verify, report) and the
services they share (identify, the job log, the scheduler lock).

May import: the domain packages (``crawlers``, ``notices``, ``reports``), the core
(``fingerprint``, ``db``) and ``foundation``; never an entry point.
"""
