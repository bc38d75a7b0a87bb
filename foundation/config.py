"""Configuration: one TOML file, validated at start-up.

``--config FILE``, else ``vigie.toml`` in the working directory, else built-in
defaults. An unknown section or key, or a value of the wrong type or out of its range,
is an error naming the key: a typo must not silently fall back to a default, and a port
of -1 or a timeout of nan must not reach the code that uses them. ``SCHEMA`` is the one
list of keys, types and ranges: the loader, ``vigie config check`` and the README's table
(``config_table``) all read it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from foundation.errors import ConfigError
from foundation.netsafe import http_url as parse_http_url
from foundation.schedules import parse_interval

__all__ = ["SCHEMA", "Config", "ConfigError", "Key", "check_value", "config_table", "load_config", "parse_interval",
           "read_small_file"]

DEFAULT_FILE = "vigie.toml"

MAX_CONFIG_BYTES = 1_000_000  # a config file is a few kB; more is a mistake (or /dev/zero)


# --------------------------------------------------------------------------- value checks
# Each takes a value of the right type and raises ValueError saying what is wrong.

def port(v: int) -> None:
    if not 1 <= v <= 65535:
        raise ValueError(f"must be a port number from 1 to 65535, not {v}")


def positive(v: float) -> None:
    # Not "v <= 0": TOML has nan and inf, and nan <= 0 is False.
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"must be a positive finite number, not {v}")


def at_least_one(v: int) -> None:
    if v < 1:
        raise ValueError(f"must be at least 1, not {v}")


def one_line(v: str) -> None:
    if not v.strip() or any(ord(c) < 32 or c in "\x7f\x85\u2028\u2029" for c in v):
        raise ValueError("must be one non-empty line of text")


def text(v: str) -> None:
    if "\x00" in v:
        raise ValueError("must not hold a NUL character")


def http_url(v: str) -> None:
    parse_http_url(v)


def mailbox(v: str) -> None:
    if not _MAILBOX.fullmatch(v):
        raise ValueError(f"not a mail address: {v!r}")


def mailboxes(v: list[Any]) -> None:
    bad = [a for a in v if not isinstance(a, str) or not _MAILBOX.fullmatch(a)]
    if bad:
        raise ValueError(f"not mail addresses: {', '.join(map(str, bad))}")


def database_url(v: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    one_line(v)
    try:
        url = make_url(v)
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a database URL: {exc}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"must be an sqlite:/// or postgresql:// URL, not {url.get_backend_name()!r}")


def interval(v: str | int | float) -> None:
    parse_interval(v)


def local_time(v: str) -> None:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
        raise ValueError(f"must be a local time HH:MM, not {v!r}")


def time_zone(v: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}") from None


def networks(v: list[Any]) -> None:
    for item in v:
        try:
            ipaddress.ip_network(item)
        except (TypeError, ValueError):
            raise ValueError(f"not an IP address or network: {item!r}") from None


_MAILBOX = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+")


def country_code(v: str) -> None:
    if not re.fullmatch(r"[A-Za-z]{2}", v):
        raise ValueError(f"must be an ISO 3166-1 alpha-2 country code (FR, US...), not {v!r}")


@dataclass(frozen=True)
class Key:
    """One configuration key: its types, the check of its value, and what it means."""

    types: tuple[type, ...]
    check: Callable[[Any], None] | None = None
    about: str = ""
    # What a config without the key means: the only place a default is written.
    default: Any = None

    def rule(self) -> str:
        """The key's type and range in words (the README table's middle column)."""
        names = " or ".join({"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                             "list": "list"}[t.__name__] for t in self.types)
        return f"{names}: {RULES[self.check]}" if self.check in RULES else names


RULES: dict[Any, str] = {
    port: "1-65535", positive: "> 0, finite", at_least_one: ">= 1", one_line: "one line",
    text: "text", http_url: "http(s) URL", mailbox: "mail address", mailboxes: "mail addresses",
    database_url: "sqlite:/// or postgresql:// URL", interval: "interval 1s-365d (30s, 5m, 6h, 1d)",
    local_time: "HH:MM", time_zone: "IANA zone", country_code: "ISO 3166-1 alpha-2", networks: "IP addresses or CIDR networks",
}

STR, INT, NUM, BOOL, LIST = (str,), (int,), (int, float), (bool,), (list,)
INTERVAL = (str, int, float)

# section -> key -> Key. The one place that says what a config may hold: the loader,
# `vigie config check` and the README's configuration table (tests/test_config.py) use it.
SCHEMA: dict[str, dict[str, Key]] = {
    "database": {"url": Key(STR, database_url, "database URL (`--db` and VIGIE_DATABASE_URL win)")},
    # Who sends the notices: their identity goes into every notice.
    "notifier": {
        "legal_name": Key(STR, one_line, "legal name of the notifier"),
        "address": Key(STR, text, "postal address"),
        "phone": Key(STR, one_line, "phone number"),
        "email": Key(STR, mailbox, "reply address of notices"),
        "signature": Key(STR, text, "signature under notices"),
        "country": Key(STR, one_line, "country of the notifier"),
    },
    "general": {"timezone": Key(STR, time_zone, "local zone of reports and schedules", "Europe/Paris")},
    # Outgoing mail for notices (notices.dispatch).
    "smtp": {
        "host": Key(STR, one_line, "SMTP server", "localhost"),
        "port": Key(INT, port, "SMTP port", 25),
        "starttls": Key(BOOL, None, "STARTTLS after connecting", False),
        "ssl": Key(BOOL, None, "TLS from the start (SMTPS)", False),
        "username": Key(STR, one_line, "SMTP login"),
        "password": Key(STR, text, "SMTP password"),
        "from": Key(STR, mailbox, "sender address of notices and reports"),
        "timeout": Key(NUM, positive, "SMTP timeout in seconds", 30.0),
    },
    # Notice building, dispatch and verification (notices package). grace_hours and
    # rate_per_hour can be set per host too (Host.settings).
    "notices": {
        "max_urls_per_notice": Key(INT, at_least_one, "URLs per notice", 50),
        "grace_hours": Key(NUM, positive, "hours a host has before escalation", 48.0),
        "max_attempts": Key(INT, at_least_one, "sending attempts before a notice fails", 6),
        "retry_base_s": Key(NUM, positive, "first retry delay, doubled each time", 60.0),
        "rate_per_hour": Key(INT, at_least_one, "notices per host per rolling hour", 20),
        "lease_s": Key(NUM, positive, "when a sender's claim on a notice expires", 600.0),
        "http_timeout": Key(NUM, positive, "timeout of verification fetches in seconds", 10.0),
        "allow_loopback": Key(BOOL, None, "let verification fetch 127.0.0.1 (demo, tests)", False),
        "discover_contacts": Key(BOOL, None, "look up abuse contacts (security.txt)", True),
        "delisting_dir": Key(STR, one_line, "where the notices stage writes the day's bulk delisting "
                                            "file per search engine (unset: not written)"),
        # A host's jurisdiction when neither staff, its ccTLD nor its pages' language
        # gave one (db.hosts): picks the regime of its notices. None: DMCA, as before.
        "default_jurisdiction": Key(STR, country_code, "jurisdiction of hosts nothing else locates"),
        # An RFC 2142 abuse@domain address nobody confirmed: its notices wait for staff
        # approval unless this is true.
        "allow_guessed_contacts": Key(BOOL, None, "send to guessed abuse@domain contacts unseen", False),
    },
    # The daily report (reports.daily): who gets it by mail, where files go.
    "report": {
        "staff": Key(LIST, mailboxes, "who gets the daily report by mail"),
        "out_dir": Key(STR, one_line, "where report files go", "./reports"),
    },
    # The match stage and identify (stages.match, stages.identify): media URLs found
    # on pages are fetched only at public addresses unless allow_loopback (demo, tests).
    "match": {
        "allow_loopback": Key(BOOL, None, "let media fetches reach 127.0.0.1 (demo, tests)", False),
        # Keep the built hash index here (memory-mapped at start-up instead of rebuilt).
        "index_dir": Key(STR, one_line, "where the built hash index is kept"),
    },
    # Cluster mode (cluster/, `vigie worker`, PostgreSQL only): worker heartbeat, when a
    # job of a silent worker counts as stalled, how often the maintenance tick runs
    # (queue pending candidates and due crawls, retry stalled jobs).
    "cluster": {
        "heartbeat_s": Key(NUM, positive, "worker heartbeat in seconds", 10.0),
        "stalled_after_s": Key(NUM, positive, "a silent worker's job is retried after this", 30.0),
        "tick_every": Key(STR, interval, "the maintenance tick", "30s"),
    },
    # The crawl stage (crawlers.run): where page captures go, the robot's name, limits.
    "crawl": {
        "evidence_dir": Key(STR, one_line, "where page captures go"),
        "allow_loopback": Key(BOOL, None, "let crawls reach 127.0.0.1 (demo, tests)", False),
        "user_agent": Key(STR, one_line, "the crawler's User-Agent"),
        "timeout_s": Key(NUM, positive, "a crawl running longer is killed", 3600.0),
    },
    # The evidence file (evidence/): WARC captures, screenshots, frames and match records
    # kept by content under ``dir``; each day's manifest timestamped by an RFC 3161
    # authority; kept keep_days (five years: the limitation period of an infringement
    # action in France), longer when an open case cites them.
    "evidence": {
        "dir": Key(STR, one_line, "where evidence is kept (none: no WARC, no case files)"),
        "tsa_url": Key(STR, http_url, "RFC 3161 time-stamping authority (none: manifests unstamped)"),
        "tsa_cert": Key(STR, one_line, "PEM file: the TSA's certificate and its chain to the root"),
        "tsa_timeout": Key(NUM, positive, "timeout of a time-stamp request in seconds", 30.0),
        "keep_days": Key(INT, at_least_one, "days evidence is kept when no open case cites it", 1825),
    },
    # The scheduler (scheduler.py, `vigie run`): intervals as "30s", "5m", "1h", "1d" (or
    # seconds as a number), the daily report's local time, when a dead scheduler's lock
    # may be taken over, and an optional log file for the one-line-per-job log.
    "schedule": {
        "match_every": Key(INTERVAL, interval, "match stage", "5m"),
        "dispatch_every": Key(INTERVAL, interval, "notices stage", "5m"),
        "verify_every": Key(INTERVAL, interval, "verification", "1h"),
        "inbox_every": Key(INTERVAL, interval, "reading the hosts' replies (`vigie inbox fetch`)", "10m"),
        "resync_every": Key(INTERVAL, interval, "re-read the sites table", "1m"),
        "report_at": Key(STR, local_time, "daily report, local time", "07:00"),
        "evidence_every": Key(INTERVAL, interval, "evidence stage: stamp the daily manifests, purge", "1d"),
        "lock_stale_after": Key(INTERVAL, interval, "a silent scheduler's lock may be taken", "2m"),
        "log_file": Key(STR, one_line, "one JSON line per job run"),
    },
    # The hosts' replies (inbox/, `vigie inbox fetch`): an IMAP mailbox read without
    # marking mail seen; the rules' confidence under which a reading goes to staff.
    "inbox": {
        "host": Key(STR, one_line, "IMAP server of the notices' reply address (unset: no fetch)"),
        "port": Key(INT, port, "IMAP port", 993),
        "tls": Key(BOOL, None, "TLS from the start (IMAPS); false: STARTTLS when offered", True),
        "ca_file": Key(STR, one_line, "CA certificates trusted for the IMAP server (default: the system's)"),
        "user": Key(STR, one_line, "IMAP login"),
        "password": Key(STR, text, "IMAP password"),
        "folder": Key(STR, one_line, "IMAP folder read", "INBOX"),
        "timeout": Key(NUM, positive, "IMAP timeout in seconds", 30.0),
        "max_bytes": Key(INT, at_least_one, "a larger mail keeps its header only", 10_000_000),
        "max_per_run": Key(INT, at_least_one, "mails read per fetch at most", 500),
        "min_confidence": Key(NUM, positive, "readings less sure than this go to staff", 0.8),
        "allow_plaintext": Key(BOOL, None, "log in without TLS (loopback tests only)", False),
    },
    # The review web app and public title pages (webapp).
    "web": {
        "host": Key(STR, one_line, "address `vigie serve` listens on", "127.0.0.1"),
        "port": Key(INT, port, "port `vigie serve` listens on", 8080),
        # Accepted for older configs and unused: sessions live in the database (web_sessions).
        "secret_key": Key(STR, text, "unused (sessions live in the database)"),
        "secure_cookies": Key(BOOL, None, "Secure cookies (default: when public_base_url is https)"),
        "public_base_url": Key(STR, http_url, "the app's public URL (links in mails, public pages)"),
        "brand": Key(STR, one_line, "name shown on public pages"),
        # Who may set X-Forwarded-For/-Proto: a reverse proxy's address. None by default,
        # so a client cannot pick the address the login throttle counts.
        "trusted_proxies": Key(LIST, networks, "proxies whose X-Forwarded-* headers are believed", []),
    },
}


def config_table() -> str:
    """The README's configuration table, made from SCHEMA."""
    rows = ["| key | type and range | meaning (default) |", "|---|---|---|"]
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            rows.append(f"| `{section}.{key}` | {spec.rule()} | {spec.about}{_shown(spec.default)} |")
    return "\n".join(rows)


def _shown(default: Any) -> str:
    if default is None:
        return ""
    if default == []:
        return " (none)"
    if isinstance(default, bool):
        return f" ({str(default).lower()})"
    if isinstance(default, float) and default.is_integer():
        return f" ({int(default)})"
    return f" ({default})"


@dataclass
class Config:
    database_url: str | None = None
    notifier: dict[str, str] = field(default_factory=dict)
    timezone: str = SCHEMA["general"]["timezone"].default
    path: str | None = None
    smtp: dict[str, Any] = field(default_factory=dict)
    notices: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    web: dict[str, Any] = field(default_factory=dict)
    crawl: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, Any] = field(default_factory=dict)
    match: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    inbox: dict[str, Any] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        """``[section] key`` as configured, else its default from SCHEMA (KeyError for a
        key SCHEMA does not know: a typo in the code, not in the file)."""
        spec = SCHEMA[section][key]
        return getattr(self, section).get(key, spec.default)

    def with_values(self, section: str, **values: Any) -> Config:
        """A copy with ``values`` set in ``[section]`` (a CLI flag over the file's value);
        None leaves a key as it was."""
        merged = {**getattr(self, section), **{k: v for k, v in values.items() if v is not None}}
        return replace(self, **{section: merged})


def _check(data: dict[str, Any], path: str) -> None:
    for section, body in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in body.items():
            spec = SCHEMA[section].get(key)
            if spec is None:
                raise ConfigError(f"{path}: unknown key {section}.{key}")
            check_value(spec, value, f"{path}: {section}.{key}")


def check_value(spec: Key, value: Any, name: str) -> None:
    """ConfigError naming ``name`` when ``value`` is not of the key's type and range."""
    # bool is an int to Python, never to us (smtp.port = true).
    if isinstance(value, bool) and bool not in spec.types or not isinstance(value, spec.types):
        names = " or ".join(t.__name__ for t in spec.types)
        raise ConfigError(f"{name} must be a {names}, not {type(value).__name__}")
    # TOML's integers are 64-bit; tomllib reads any size, and one past a float's range
    # once crashed the checks (OverflowError, found by fuzzing).
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ConfigError(f"{name}: a number out of range (TOML integers are 64-bit)")
    if spec.check is not None:
        try:
            spec.check(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None


def read_small_file(path: str) -> bytes:
    """The bytes of a config file (the config, a sites file): a regular file of at most
    MAX_CONFIG_BYTES (a FIFO would block, /dev/zero never ends); ConfigError otherwise."""
    # O_NONBLOCK: opening a FIFO with no writer must not hang before fstat can refuse it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: too large for a config file (over {MAX_CONFIG_BYTES:,} bytes)")
    return data


def load_config(path: str | None = None) -> Config:
    explicit = path is not None
    path = path or DEFAULT_FILE
    if not os.path.exists(path):
        if explicit:
            raise ConfigError(f"config file not found: {path}")
        return Config()
    try:
        data = tomllib.loads(read_small_file(path).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        # tomllib decodes the file itself and lets this through (found by fuzzing).
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except ValueError:  # tomllib's int() of a number of more digits than Python converts
        raise ConfigError(f"{path}: not valid TOML: a number of more than 4,300 digits") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    _check(data, path)
    return Config(
        database_url=data.get("database", {}).get("url"),
        notifier=dict(data.get("notifier", {})),
        timezone=data.get("general", {}).get("timezone", SCHEMA["general"]["timezone"].default),
        path=path,
        smtp=dict(data.get("smtp", {})),
        notices=dict(data.get("notices", {})),
        report=dict(data.get("report", {})),
        web=dict(data.get("web", {})),
        crawl=dict(data.get("crawl", {})),
        schedule=dict(data.get("schedule", {})),
        match=dict(data.get("match", {})),
        cluster=dict(data.get("cluster", {})),
        evidence=dict(data.get("evidence", {})),
        inbox=dict(data.get("inbox", {})),
    )
