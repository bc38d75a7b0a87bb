"""Jinja2 notice templates per legal regime and language, rendering, validation,
dispatch and verification."""
