"""Schedules: the one parser of intervals ("30s", "6h", "2w") and cron lines.

Every place that reads a schedule goes through here: ``vigie sites add --schedule``,
the admin site form (``webapp.actions``), ``vigie config check`` and the config loader
(``[schedule] *_every``, ``[cluster] tick_every``), the scheduler (``scheduler.py``), the
cluster tick (``cluster.app``) and the daily report's "late sites". So a schedule that one
of them accepts, every other one can honour. The rules built on it live here too: when a
site is due for a crawl (:func:`next_due`, :func:`is_due`: the scheduler and the cluster
tick) and when it is late (:func:`late_reason`: the daily report and ``vigie status``).

Bounds: an interval is at least 1 s (a tighter loop is a typo, and hammers the sites)
and at most a year (APScheduler's interval arithmetic overflows on larger ones: a site
with ``--schedule 999999999w`` once stopped every crawl). A cron line is five fields,
read by APScheduler's ``CronTrigger.from_crontab``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from foundation.errors import InvalidInput

# A site is late when its last crawl is older than this many of its intervals (with a
# cron line: when the run after next was due): one missed run is a hiccup, two a fault.
LATE_FACTOR = 2.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 365 * 86400.0

_INTERVAL = re.compile(r"\s*(\d{1,15}(?:\.\d{1,9})?)\s*([smhdw])\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(value: str | int | float) -> float:
    """Seconds in an interval written "30s", "5m", "1.5h", "1d", "2w" (or a number of
    seconds). ValueError if it is not one, or outside [1 s, 1 year]."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not an interval: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _INTERVAL.fullmatch(value)
        if not m:
            raise ValueError(f"not an interval like 30s, 5m, 6h or 1d: {value!r}")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    # Not "seconds < MIN": TOML has nan, and every comparison with nan is False.
    if not (math.isfinite(seconds) and MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S):
        raise ValueError(f"an interval must be between 1 s and 1 year (365d): {value!r}")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """A parsed site schedule: an interval in seconds, or a cron line."""

    text: str
    interval_s: float | None = None
    cron: str | None = None

    def trigger(self, tz: tzinfo | None = None) -> Any:
        """The APScheduler trigger of this schedule in zone ``tz``."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.interval_s is not None:
            return IntervalTrigger(seconds=self.interval_s, timezone=tz or timezone.utc)
        return CronTrigger.from_crontab(self.cron, timezone=tz or timezone.utc)

    @property
    def interval(self) -> timedelta | None:
        return timedelta(seconds=self.interval_s) if self.interval_s is not None else None

    def next_after(self, last: datetime, tz: tzinfo | None = None) -> datetime | None:
        """When the run after one at ``last`` is due (None: a cron line that never fires)."""
        if self.interval_s is not None:
            return last + timedelta(seconds=self.interval_s)
        trigger = self.trigger(tz)
        return trigger.get_next_fire_time(None, last + timedelta(microseconds=1))  # type: ignore[no-any-return]


def parse_schedule(text: str) -> Schedule:
    """A site's schedule: an interval ("6h") or a five-field cron line ("0 3 * * *").
    ValueError, saying what is wrong, for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a schedule is an interval like 6h or a cron expression like '0 3 * * *'")
    text = text.strip()
    if len(text) > 200:
        raise ValueError("schedule too long (at most 200 characters)")
    if _INTERVAL.fullmatch(text):
        return Schedule(text, interval_s=parse_interval(text))
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text, timezone=timezone.utc)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"schedule {text!r} is neither an interval like 6h (1 s to 1 year) "
                         f"nor a cron expression like '0 3 * * *': {exc}") from None
    return Schedule(text, cron=text)


def check_schedule(text: str | None) -> str | None:
    """A site schedule as stored: None for none, else the checked text (InvalidInput if
    it is not one). What ``vigie sites add`` and the admin site form both call."""
    if text is None or isinstance(text, str) and not text.strip():
        return None
    try:
        return parse_schedule(text).text
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def next_due(schedule: str, last: datetime | None, tz: tzinfo | None = None) -> datetime | None:
    """When a site crawled last at ``last`` (None: never) is next due; None for at once.

    ValueError when the schedule cannot be read; ``datetime.max`` (UTC) for a cron line
    that never fires (31 February)."""
    parsed = parse_schedule(schedule)
    if last is None:
        return None
    last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
    nxt = parsed.next_after(last, tz or timezone.utc)
    return nxt if nxt is not None else datetime.max.replace(tzinfo=timezone.utc)


def is_due(schedule: str, last: datetime | None, now: datetime, tz: tzinfo | None = None) -> bool:
    """Whether a site with ``schedule``, crawled last at ``last``, is due at ``now``."""
    due = next_due(schedule, last, tz)
    return due is None or due <= now


def late_reason(schedule: str, last: datetime | None, end: datetime, tz: tzinfo) -> str | None:
    """Why a site with this schedule is late at ``end``, or None if it is not."""
    try:
        parsed = parse_schedule(schedule)
    except ValueError:
        return f"schedule {schedule!r} not understood"
    if last is None:
        return "never crawled"
    last = last if last.tzinfo else last.replace(tzinfo=timezone.utc)
    every = parsed.interval
    if every is not None:
        if end - last > every * LATE_FACTOR:
            return f"last crawl {(end - last).total_seconds() / 3600:.0f} h ago, schedule every {schedule.strip()}"
        return None
    # Late when the run after next was due before ``end``.
    trigger = parsed.trigger(tz)
    nxt = trigger.get_next_fire_time(None, last)
    nxt2 = trigger.get_next_fire_time(nxt, nxt + timedelta(seconds=1)) if nxt else None
    if nxt2 is not None and nxt2 < end:
        return f"last crawl {(end - last).total_seconds() / 3600:.0f} h ago, schedule {schedule.strip()!r}"
    return None
