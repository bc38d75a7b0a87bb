"""Defaults of the ``[notices]`` and ``[smtp]`` config sections, in one place.

Every stage of the notices package reads its knobs through :func:`setting` so a value
left out of ``vigie.toml`` falls back to the documented default below.
"""

from __future__ import annotations

from typing import Any

from foundation.config import Config

DEFAULTS: dict[str, Any] = {
    # Hosts read long notices badly and some abuse desks reject huge mails.
    "max_urls_per_notice": 50,
    # How long a host has to take content down before we escalate (per host:
    # Host.settings["grace_hours"]).
    "grace_hours": 48.0,
    # Temporary SMTP failures are retried this many times with exponential backoff
    # from retry_base_s, then flagged for staff (status failed).
    "max_attempts": 6,
    "retry_base_s": 60.0,
    # Notices sent to one host per rolling hour (per host: Host.settings["rate_per_hour"]).
    "rate_per_hour": 20,
    # A notice claimed by a sender that has not finished after this long belongs to a
    # dead sender: it is recovered (requeued, or in_doubt if DATA had started).
    "lease_s": 600.0,
    "http_timeout": 10.0,
    # Verification and contact discovery fetch URLs from pirate sites: private,
    # loopback and link-local addresses are refused (foundation.netsafe); loopback is let
    # through when this is set (the demo web and the tests live on 127.0.0.1).
    "allow_loopback": False,
    "discover_contacts": True,
}

SMTP_DEFAULTS: dict[str, Any] = {
    "host": "localhost",
    "port": 25,
    "starttls": False,
    "ssl": False,
    "username": None,
    "password": None,
    "from": None,
    "timeout": 30.0,
}


def setting(config: Config, key: str) -> Any:
    return config.notices.get(key, DEFAULTS[key])


def smtp_setting(config: Config, key: str) -> Any:
    return config.smtp.get(key, SMTP_DEFAULTS[key])
