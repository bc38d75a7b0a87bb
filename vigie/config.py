"""Configuration: one TOML file, validated at start-up.

``--config FILE``, else ``vigie.toml`` in the working directory, else built-in
defaults. An unknown section or key, or a value of the wrong type, is an error naming
the key: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import math
import os
import re
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
        # Keep the built hash index here (memory-mapped at start-up instead of rebuilt).
        "index_dir": (str,),
    },
    # Cluster mode (cluster/, `vigie worker`, PostgreSQL only): worker heartbeat, when a
    # job of a silent worker counts as stalled, how often the maintenance tick runs
    # (queue pending candidates and due crawls, retry stalled jobs).
    "cluster": {
        "heartbeat_s": (int, float),
        "stalled_after_s": (int, float),
        "tick_every": (str,),
    },
    # The crawl stage (crawlers.run): where page captures go, the robot's name, limits.
    "crawl": {
        "evidence_dir": (str,),
        "allow_loopback": (bool,),
        "user_agent": (str,),
        "timeout_s": (int, float),
    },
    # The scheduler (scheduler.py, `vigie run`): intervals as "30s", "5m", "1h", "1d" (or
    # seconds as a number), the daily report's local time, when a dead scheduler's lock
    # may be taken over, and an optional log file for the one-line-per-job log.
    "schedule": {
        "match_every": (str, int, float),
        "dispatch_every": (str, int, float),
        "verify_every": (str, int, float),
        "resync_every": (str, int, float),
        "report_at": (str,),
        "lock_stale_after": (str, int, float),
        "log_file": (str,),
    },
    # The review web app and public title pages (webapp).
    "web": {
        "host": (str,),
        "port": (int,),
        # Accepted for older configs and unused: sessions live in the database (web_sessions).
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
    schedule: dict[str, Any] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)


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


_INTERVAL = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(value: str | int | float) -> float:
    """Seconds in an interval written "30s", "5m", "1.5h", "1d", "2w" (or a number of
    seconds); ValueError if it is not one, or not positive."""
    if isinstance(value, bool):
        raise ValueError(f"not an interval: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _INTERVAL.fullmatch(value)
        if not m:
            raise ValueError(f"not an interval like 30s, 5m, 6h or 1d: {value!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    # Not "seconds <= 0": TOML has nan and inf, and nan <= 0 is False (found by fuzzing).
    if not 0 < seconds < math.inf:
        raise ValueError(f"an interval must be positive and finite: {value!r}")
    return seconds


def _check_schedule(body: dict[str, Any], path: str) -> dict[str, Any]:
    # Types are checked by _check; here the values, so `vigie run` never starts with an
    # interval it cannot honour.
    for key, value in body.items():
        if key.endswith("_every") or key == "lock_stale_after":
            try:
                parse_interval(value)
            except ValueError as exc:
                raise ConfigError(f"{path}: schedule.{key}: {exc}") from None
    at = body.get("report_at")
    if at is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", at):
        raise ConfigError(f"{path}: schedule.report_at must be a local time HH:MM, not {at!r}")
    return body


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
    except UnicodeDecodeError as exc:
        # tomllib decodes the file itself and lets this through (found by fuzzing).
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
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
        schedule=_check_schedule(dict(data.get("schedule", {})), path),
        match=dict(data.get("match", {})),
        cluster=dict(data.get("cluster", {})),
    )
