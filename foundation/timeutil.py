"""Time: UTC now, reading stored datetimes as UTC, and the configured local zone.

Everything Vigie stores is UTC. SQLite hands timezone-aware columns back naive; they are
read here as UTC, so every comparison and every printed time agrees on both databases.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foundation.errors import ConfigError

if TYPE_CHECKING:
    from foundation.config import Config


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(dt: datetime | None) -> datetime | None:
    """``dt`` in UTC: a naive datetime (SQLite's) is taken to be UTC already."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def zone(config: Config) -> ZoneInfo:
    """The configured local zone (``[general] timezone``) of reports and schedules."""
    try:
        return ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {config.timezone!r} in general.timezone") from None


def local_today(config: Config, now: datetime | None = None) -> date:
    return (now or utc_now()).astimezone(zone(config)).date()
