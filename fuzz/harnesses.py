"""One harness per parser of hostile text: bytes in, the parser run, its contract checked.

Each ``Harness`` turns fuzzer bytes into the parser's input, calls it, and checks what
the parser promises (a clean mailbox, no control character in a title, a positive
interval...). An exception listed in ``allowed`` is the parser's documented refusal;
any other exception, or a broken promise (``AssertionError``), is a crash. The same
harnesses run under atheris (``fuzz.run``) and, where atheris is missing, under
Hypothesis (tests/test_hardening_fuzz.py).

Multi-field inputs are split on ``\\x1f`` (the ASCII unit separator), so seeds stay
readable text files.
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

SEP = "\x1f"


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def fields(data: bytes, n: int) -> list[str]:
    """``n`` text fields of ``data`` (missing ones empty)."""
    parts = text(data).split(SEP, n - 1)
    return parts + [""] * (n - len(parts))


@dataclass(frozen=True)
class Harness:
    name: str
    target: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]
    about: str

    def one(self, data: bytes) -> None:
        """Run one input; documented refusals pass, anything else propagates (a crash)."""
        try:
            self.target(data)
        except self.allowed:
            pass


# --- crawlers.urls: the URL canonicaliser and host keys ------------------------------

def url_identity(data: bytes) -> None:
    from crawlers.urls import TRACKING_PARAMS, canonical_url
    from db.hosts import host_key, host_names, matches_patterns

    url = text(data)
    # Host keys are taken of every URL found on a page (media URLs included): total.
    key = host_key(url)
    names = host_names(url)
    assert isinstance(key, str) and all(isinstance(n, str) and n for n in names)
    matches_patterns(url, ["*.example.com", "127.0.0.1:*", "example.org"])
    canon = canonical_url(url)  # ValueError: not a URL at all
    parts = urlsplit(canon)
    assert not parts.fragment, canon
    names_left = [kv.split("=", 1)[0] for kv in parts.query.split("&") if kv]
    assert not [n for n in names_left if TRACKING_PARAMS.match(n)], canon


# --- foundation.netsafe: address checks of URLs from pages ---------------------------------

def _offline_resolve(host: str, port: int | None = None) -> list[str]:
    """Literal addresses as the C library reads them (0x7f.1, 2130706433, ...); every
    name stands for one public address. No DNS query leaves the fuzzer."""
    try:
        infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP,
                                   flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        if not host or "\x00" in host:
            from foundation.errors import UnsafeAddress

            raise UnsafeAddress(f"cannot resolve host {host!r}") from None
        return ["93.184.216.34"]
    return sorted({str(i[4][0]).split("%", 1)[0] for i in infos})


def netsafe_url(data: bytes) -> None:
    import foundation.netsafe as netsafe
    from foundation.errors import FetchError

    flag, url = fields(data, 2) if SEP in text(data) else ("", text(data))
    allow = flag.startswith("1")
    netsafe.media_loopback_allowed(url)
    real, netsafe.resolve = netsafe.resolve, _offline_resolve  # no DNS query from a fuzzer
    try:
        try:  # the media reader's check of a URL FFmpeg opens (a playlist's segment)
            checked = netsafe.MediaOpener(allow_loopback=allow).address(url)
        except FetchError:
            checked = None
        addresses = netsafe.check_url(url, allow_loopback=allow)  # UnsafeAddress: refused
    finally:
        netsafe.resolve = real
    assert checked in addresses, (url, checked, addresses)
    assert addresses and urlsplit(url).scheme.lower() in netsafe.ALLOWED_SCHEMES
    for a in addresses:
        assert netsafe.address_problem(a, allow_loopback=allow) is None, (url, a)
        ip = ipaddress.ip_address(a)
        mapped = getattr(ip, "ipv4_mapped", None) or ip
        assert not mapped.is_private or (allow and mapped.is_loopback), (url, a)


# --- notices.hosts: security.txt and abuse-contact discovery ---------------------------

def _plain_mailbox(addr: str) -> bool:
    return addr.isascii() and not any(c.isspace() or ord(c) < 32 or c in "<>,;\"'\\()" for c in addr) \
        and addr.count("@") == 1 and len(addr) <= 254


def security_txt(data: bytes) -> None:
    from notices.hosts import parse_security_txt, valid_email

    body = text(data)
    addr = parse_security_txt(body)
    assert addr is None or (_plain_mailbox(addr) and valid_email(addr) == addr), addr
    for line in body.splitlines()[:20]:
        got = valid_email(line)
        assert got is None or _plain_mailbox(got), got


def abuse_contact(data: bytes) -> None:
    from db.models import Host
    from db.hosts import matches_patterns
    from notices.hosts import resolve_contact, valid_email

    contact, patterns, origin, cached = fields(data, 4)
    host = Host(name="fuzz", abuse_contact=contact or None,
                domain_patterns=[p for p in patterns.split(",") if p][:8],
                settings={"discovered_contact": cached} if cached else {})
    found = resolve_contact(host, origin=origin or None, discover=False, timeout=1.0,
                            allow_loopback=False)
    assert found.address is None or (valid_email(found.address) == found.address
                                     and _plain_mailbox(found.address)), found
    assert found.source in ("configured", "security.txt", "guess", "none") or cached, found
    matches_patterns(origin, list(host.domain_patterns))


# --- foundation.config: the TOML configuration ---------------------------------------------

def _load(raw: bytes) -> object:
    from foundation.config import load_config, parse_interval

    fd, path = tempfile.mkstemp(suffix=".toml", prefix="vigie-fuzz-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        config = load_config(path)  # ConfigError: refused, with the reason
    finally:
        os.unlink(path)
    for key, value in config.schedule.items():  # type: ignore[attr-defined]
        if key.endswith("_every") or key == "lock_stale_after":
            seconds = parse_interval(value)
            assert math.isfinite(seconds) and 1 <= seconds <= 365 * 86400, (key, value)
    # What the loader let through meets the schema (ports in range, finite numbers...).
    from foundation.config import SCHEMA, check_value
    from foundation.errors import ConfigError

    for section in SCHEMA:
        for key, value in (getattr(config, section, None) or {}).items():
            try:
                check_value(SCHEMA[section][key], value, f"{section}.{key}")
            except ConfigError as exc:  # loaded, yet out of the schema: a broken promise
                raise AssertionError(str(exc)) from None
    return config


def config_file(data: bytes) -> None:
    _load(data)


def config_value(data: bytes) -> None:
    """A value of a key the schema knows: the section and key picked by the first two
    bytes, the rest is the TOML text of the value (reaches the type and value checks
    that random files rarely get to)."""
    from foundation.config import SCHEMA

    if len(data) < 2:
        return
    sections = sorted(SCHEMA)
    section = sections[data[0] % len(sections)]
    keys = sorted(SCHEMA[section])
    key = keys[data[1] % len(keys)]
    value = data[2:].split(b"\n", 1)[0]
    _load(b"[%s]\n%s = %s\n" % (section.encode(), key.encode(), value))


# --- crawlers: title text from pages --------------------------------------------------

_CATALOGUE = [(1, "Big Buck Bunny", 2008), (2, "Le Grand Lapin", 2008), (3, "French Grand Prix", 1906),
              (4, "Free Willy", 1993), (5, "\u00c9t\u00e9", None), (6, "M", 1931)]
_MATCHER = None


def title_text(data: bytes) -> None:
    from crawlers.spiders.base import MAX_TITLE_CHARS, clean_title
    from crawlers.titlematch import TitleMatcher, fold, normalise

    global _MATCHER
    if _MATCHER is None:
        _MATCHER = TitleMatcher(_CATALOGUE)
    raw = text(data)
    cleaned, _ = clean_title(raw)
    if cleaned is not None:
        assert len(cleaned) <= MAX_TITLE_CHARS and cleaned == cleaned.strip()
        assert not any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in cleaned), cleaned
    folded = fold(raw)
    assert folded == folded.strip() and "  " not in folded
    normalise(raw)
    guess = _MATCHER.guess(cleaned)
    assert guess is None or (0 <= guess.score <= 100 and guess.title_id in {t for t, _, _ in _CATALOGUE})


# --- crawlers.resolvers: media URLs in film and embed pages ---------------------------

def page_media(data: bytes) -> None:
    from parsel import Selector

    from crawlers.resolvers import looks_like_media, resolve_page

    base, html = fields(data, 2) if SEP in text(data) else ("", text(data))
    base_url = base if base.startswith(("http://", "https://")) else "https://pirate.example/film/1"
    media, embeds = resolve_page(Selector(text=html or "<html></html>", type="html"), base_url)
    for u in media + embeds:
        assert u.lower().startswith(("http://", "https://")), u
    assert not set(media) & set(embeds)
    looks_like_media(html)


# --- foundation.netsafe: the media reader's reading of HTTP answers -----------------------

class _FakeSock:
    """A socket that answers with canned bytes (no network)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str, *args: object, **kw: object) -> object:
        import io

        return io.BytesIO(self.raw)

    def sendall(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def media_response(data: bytes) -> None:
    """HTTP answers (split on the separator: one per request, redirects and later range
    requests included) read by ``RemoteFile`` through a few reads and seeks."""
    import http.client

    import foundation.netsafe as netsafe

    answers = data.split(SEP.encode())[:8]

    class Canned(http.client.HTTPConnection):
        def connect(self) -> None:
            if not answers:
                raise ConnectionRefusedError("no more answers")
            self.sock = _FakeSock(answers.pop(0))  # type: ignore[assignment]

    class Opener(netsafe.MediaOpener):
        def connection(self, url: str) -> tuple[tuple[str, str, int | None], http.client.HTTPConnection, bool]:
            self.address(url)  # the real check (offline resolver)
            return ("http", "fuzz", None), Canned("fuzz.example", timeout=1), False

    real, netsafe.resolve = netsafe.resolve, _offline_resolve
    try:
        f = Opener(allow_loopback=True, request_size=4096 if data[:1] == b"H" else None)(
            "http://127.0.0.1:8080/v.mp4", 0, {})
        for step in (0, 100, -1, 5000, 0):
            if step >= 0 and f.seekable():
                f.seek(step)
            pos = f.tell()
            got = f.read(3000)
            assert isinstance(got, bytes) and f.tell() == pos + len(got), (pos, len(got), f.tell())
            assert f.size is None or f.size >= 0
        f.close()
    finally:
        netsafe.resolve = real


# --- foundation.schedules: site schedules (CLI, admin form, scheduler, cluster tick) --------

def schedule_text(data: bytes) -> None:
    """Every schedule the parser accepts can be honoured: an interval within its bounds,
    a trigger APScheduler builds, a next run after the last one (never an OverflowError)."""
    from datetime import datetime, timezone

    from foundation.errors import InvalidInput
    from foundation.schedules import MAX_INTERVAL_S, MIN_INTERVAL_S, check_schedule, parse_schedule

    raw = text(data)
    try:
        parsed = parse_schedule(raw)  # ValueError: refused, with the reason
    except ValueError:
        try:
            check_schedule(raw)
        except InvalidInput:
            return
        assert not raw.strip(), f"check_schedule accepted what parse_schedule refused: {raw!r}"
        return
    assert check_schedule(raw) == parsed.text
    if parsed.interval_s is not None:
        assert MIN_INTERVAL_S <= parsed.interval_s <= MAX_INTERVAL_S, parsed
    parsed.trigger(timezone.utc)
    last = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
    nxt = parsed.next_after(last, timezone.utc)
    assert nxt is None or nxt > last, (parsed, nxt)


# --- staff input and page text shown to staff -----------------------------------------

def staff_input(data: bytes) -> None:
    """A host contact, an offer URL and a page title: what the CLI and the admin forms
    accept is header-safe, and hostile page text is shown without control, bidi or
    zero-width characters."""
    from notices.hosts import check_contact
    from reports.daily import one_line
    from stages.catalog import validate_offer_url
    from foundation.errors import InvalidInput

    contact, url, title = fields(data, 3)
    try:
        ok = check_contact(contact, allow_empty=True)
        assert ok is None or not any(unicodedata.category(c)[0] in "CZ" for c in ok), ok
    except InvalidInput:
        pass
    try:
        ok = validate_offer_url(url)
        assert urlsplit(ok).scheme in ("http", "https") and "\n" not in ok and "\r" not in ok, ok
    except InvalidInput:
        pass
    shown = one_line(title)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in shown), shown


# --- inbox: the hosts' replies -----------------------------------------------------------

def _clean_line(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def inbox_reply(data: bytes) -> None:
    """Any bytes as a mail from a host: parsed without raising, every header one clean
    line, addresses plain or absent, text without NUL, attachments described, and a
    reading of a known kind with a confidence in [0, 1] whose ticket and contact are safe."""
    from db.models import ReplyKind
    from inbox.classify import classify
    from inbox.parse import MAX_TEXT, parse_mail
    from inbox.thread import urls_in
    from notices.hosts import valid_email

    mail = parse_mail(data, max_bytes=64_000)
    assert _clean_line(mail.subject) and "=?" not in mail.subject, mail.subject
    for addr in (mail.from_addr, mail.reply_to):
        assert addr is None or valid_email(addr) == addr, addr
    for mid in [mail.message_id, *mail.in_reply_to, *mail.references, *mail.returned_ids]:
        assert mid is None or (mid.startswith("<") and mid.endswith(">") and _clean_line(mid)), mid
    assert "\x00" not in mail.text and len(mail.text) <= MAX_TEXT
    for a in mail.attachments:
        assert isinstance(a["size"], int) and len(str(a["sha256"])) == 64
        assert a["filename"] is None or _clean_line(str(a["filename"])), a
    mail.reply_text  # noqa: B018 - the quote stripper is total too
    urls_in(mail.text)
    reading = classify(mail, ours=["notices@filmsdunord.example"])
    assert isinstance(reading.kind, ReplyKind) and 0.0 <= reading.confidence <= 1.0, reading
    assert reading.ticket is None or (_clean_line(reading.ticket) and len(reading.ticket) <= 100), reading.ticket
    assert reading.redirect_to is None or valid_email(reading.redirect_to) == reading.redirect_to


BUILTINS = [
    Harness("url", url_identity, (ValueError,),
            "crawlers.urls: canonical_url (ValueError: not a URL), host_key, host_names, "
            "matches_patterns (total)"),
    Harness("netsafe", netsafe_url, (),
            "foundation.netsafe.check_url over literal addresses (UnsafeAddress: refused)"),
    Harness("security_txt", security_txt, (),
            "notices.hosts: parse_security_txt and valid_email (total)"),
    Harness("abuse_contact", abuse_contact, (),
            "notices.hosts.resolve_contact without fetching, db.hosts.matches_patterns (total)"),
    Harness("config", config_file, (),
            "foundation.config.load_config on any file (ConfigError: refused)"),
    Harness("config_value", config_value, (),
            "foundation.config: any value of every known key (ConfigError: refused)"),
    Harness("media_response", media_response, (OSError,),
            "foundation.netsafe.RemoteFile reading canned HTTP answers (FetchError, OSError: refused)"),
    Harness("title", title_text, (),
            "crawlers: clean_title and the title matcher's fold/normalise/guess (total)"),
    Harness("page_media", page_media, (),
            "crawlers.resolvers.resolve_page over any HTML (total)"),
    Harness("schedule", schedule_text, (),
            "foundation.schedules.parse_schedule and check_schedule (ValueError, InvalidInput: refused)"),
    Harness("staff_input", staff_input, (),
            "notices.hosts.check_contact, stages.catalog.validate_offer_url, reports.daily.one_line (total)"),
    Harness("inbox_reply", inbox_reply, (),
            "inbox.parse.parse_mail and inbox.classify.classify over any mail (total)"),
]


def _registry(harnesses: list[Harness]) -> dict[str, Harness]:
    out: dict[str, Harness] = {}
    for h in harnesses:
        if h.name in out:
            raise ValueError(f"harness name {h.name!r} is used twice")
        out[h.name] = h
    return out


def _with_domain_errors(harnesses: list[Harness]) -> list[Harness]:
    # Documented domain errors, imported late so that importing this module stays cheap.
    from foundation.errors import ConfigError, FetchError, UnsafeAddress

    extra = {"netsafe": (UnsafeAddress,), "config": (ConfigError,), "config_value": (ConfigError,),
             "media_response": (FetchError,)}
    return [Harness(h.name, h.target, h.allowed + extra.get(h.name, ()), h.about) for h in harnesses]


HARNESSES = _registry(_with_domain_errors(BUILTINS))

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def seeds(name: str) -> list[tuple[str, bytes]]:
    """The committed seeds of harness ``name``: (file name, bytes)."""
    d = os.path.join(CORPUS, name)
    if not os.path.isdir(d):
        return []
    out = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f), "rb") as fh:
            out.append((f, fh.read()))
    return out
