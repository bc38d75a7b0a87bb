"""Scrapy spiders, site configs, embed/host resolvers, item pipelines into the DB.

A domain package. May import: the core (``db``, ``fingerprint``) and ``foundation``;
never ``notices``, ``reports``, the stages or an entry point.
"""
