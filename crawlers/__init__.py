"""Scrapy spiders, site configs, embed/host resolvers, item pipelines into the DB."""
