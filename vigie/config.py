"""Configuration: one TOML file, validated at start-up.

``--config FILE``, else ``vigie.toml`` in the working directory, else built-in
defaults. An unknown section or key, or a value of the wrong type, is an error naming
the key: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from vigie.errors import ConfigError

DEFAULT_FILE = "vigie.toml"

# section -> key -> expected type(s). The one place that says what a config may hold.
SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "database": {"url": (str,)},
    "notifier": {
        "legal_name": (str,),
        "address": (str,),
        "phone": (str,),
        "email": (str,),
        "signature": (str,),
        "country": (str,),
    },
    "general": {"timezone": (str,)},
    # Outgoing mail for notices (notices.dispatch).
    "smtp": {
        "host": (str,),
        "port": (int,),
        "starttls": (bool,),
        "ssl": (bool,),
        "username": (str,),
        "password": (str,),
        "from": (str,),
        "timeout": (int, float),
    },
    # Notice building, dispatch and verification (notices package); defaults in
    # notices.settings.DEFAULTS.
    "notices": {
        "max_urls_per_notice": (int,),
        "grace_hours": (int, float),
        "max_attempts": (int,),
        "retry_base_s": (int, float),
        "rate_per_hour": (int,),
        "lease_s": (int, float),
        "http_timeout": (int, float),
        "allow_loopback": (bool,),
        "discover_contacts": (bool,),
    },
    # The daily report (reports.daily): who gets it by mail, where files go.
    "report": {
        "staff": (list,),
        "out_dir": (str,),
    },
    # The match stage and identify (vigie.match_stage, vigie.identify): media URLs found
    # on pages are fetched only at public addresses unless allow_loopback (demo, tests).
    "match": {
        "allow_loopback": (bool,),
    },
    # The crawl stage (crawlers.run): where page captures go, the robot's name, limits.
    "crawl": {
        "evidence_dir": (str,),
        "allow_loopback": (bool,),
        "user_agent": (str,),
        "timeout_s": (int, float),
    },
    # The review web app and public title pages (webapp).
    "web": {
        "host": (str,),
        "port": (int,),
        "secret_key": (str,),
        "secure_cookies": (bool,),
        "public_base_url": (str,),
        "brand": (str,),
    },
}


@dataclass
class Config:
    database_url: str | None = None
    notifier: dict[str, str] = field(default_factory=dict)
    timezone: str = "Europe/Paris"
    path: str | None = None
    smtp: dict[str, Any] = field(default_factory=dict)
    notices: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)
    crawl: dict[str, Any] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)


def _check(data: dict[str, Any], path: str) -> None:
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in body.items():
            expected = SCHEMA[section].get(key)
            if expected is None:
                raise ConfigError(f"{path}: unknown key {section}.{key}")
            if not isinstance(value, expected):
                names = " or ".join(t.__name__ for t in expected)
                raise ConfigError(f"{path}: {section}.{key} must be a {names}, not {type(value).__name__}")


def load_config(path: str | None = None) -> Config:
    explicit = path is not None
    path = path or DEFAULT_FILE
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"config file not found: {path}")
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    _check(data, path)
    return Config(
        database_url=data.get("database", {}).get("url"),
        notifier=dict(data.get("notifier", {})),
        timezone=data.get("general", {}).get("timezone", "Europe/Paris"),
        path=path,
        smtp=dict(data.get("smtp", {})),
        notices=dict(data.get("notices", {})),
        report=dict(data.get("report", {})),
        web=dict(data.get("web", {})),
        crawl=dict(data.get("crawl", {})),
        match=dict(data.get("match", {})),
    )
