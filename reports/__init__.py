"""Daily match report: one self-contained HTML file and CSV files per day (``vigie report``).

A domain package. May import: the core (``db``, ``fingerprint``) and ``foundation``;
never ``crawlers``, ``notices``, the stages or an entry point.
"""
