"""Fetching for the evidence file: a media URL's response headers, address-checked.

The match stage reads a media URL through FFmpeg, which keeps no headers; the evidence
needs them (server, type, length, dates) and the server's address. One GET asking for
the first bytes only (``Range: bytes=0-N``), to the address checked by
``foundation.netsafe`` (no second DNS answer), no redirects followed silently: each hop
is its own record.
"""

from __future__ import annotations

import http.client
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

from foundation.errors import UnsafeAddress
from foundation.netsafe import check_url, pin
from evidence.store import Fetch

USER_AGENT = "Vigie-evidence/1.0 (+evidence of infringement)"
# Enough of the body to show what the file is (a container's header), not the film.
HEAD_BYTES = 64 * 1024
MAX_HOPS = 5


def fetch_head(url: str, *, allow_loopback: bool, timeout: float = 15.0) -> list[Fetch]:
    """The exchanges of one ranged GET of ``url``, redirects included (each checked)."""
    out: list[Fetch] = []
    for _ in range(MAX_HOPS):
        fetch = _one(url, allow_loopback=allow_loopback, timeout=timeout)
        out.append(fetch)
        location = dict((k.lower(), v) for k, v in fetch.response_headers).get("location")
        if fetch.status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        break
    return out


def _one(url: str, *, allow_loopback: bool, timeout: float) -> Fetch:
    at = datetime.now(timezone.utc)
    headers = [("User-Agent", USER_AGENT), ("Range", f"bytes=0-{HEAD_BYTES - 1}"), ("Accept", "*/*")]
    try:
        addresses = check_url(url, allow_loopback=allow_loopback)
    except UnsafeAddress as exc:
        return Fetch(url, at, None, request_headers=headers, error=f"refused: {exc}")
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
    conn = pin(cls(parts.hostname or "", parts.port, timeout=timeout), addresses[0])
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", target, headers=dict(headers))
        resp = conn.getresponse()
        body = resp.read(HEAD_BYTES)
        more = bool(resp.read(1))
        return Fetch(url, at, resp.status, resp.reason, headers, list(resp.getheaders()), body,
                     ip=addresses[0], truncated="length" if more else None)
    except (OSError, http.client.HTTPException) as exc:
        return Fetch(url, at, None, request_headers=headers, ip=addresses[0],
                     error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
