"""Fresh HTTP fetches for verification and contact discovery, after address checks.

Every URL here came from a pirate page or a pirate host, so each one (and each redirect
target) goes through ``foundation.netsafe`` first, caching is disabled, and the body read
is bounded. Used by ``notices.verify`` and ``notices.hosts``.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

from foundation.errors import UnsafeAddress
from foundation.netsafe import pin

MAX_BODY = 2_000_000
MAX_REDIRECTS = 5
USER_AGENT = "Vigie-verify/1.0 (+takedown verification)"


@dataclass(frozen=True)
class Response:
    url: str
    status: int | None      # None: no HTTP answer at all (connection refused, timeout, DNS)
    body: bytes
    error: str | None = None
    # What the evidence file keeps of the exchange (the verify stage's WARC records).
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    request_headers: tuple[tuple[str, str], ...] = ()
    address: str | None = None          # the server's address we connected to
    fetched_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # we follow redirects ourselves, checking each target first


def _pinned(conn_cls: type) -> Any:
    """A connection class for urllib that connects to the request's checked address."""
    def make(host: str, *args: Any, address: str, **kw: Any) -> Any:
        return pin(conn_cls(host, *args, **kw), address)
    return make


class _PinnedHTTP(urllib.request.HTTPHandler):
    def http_open(self, req: Any) -> Any:
        return self.do_open(_pinned(http.client.HTTPConnection), req, address=req.vigie_address)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req: Any) -> Any:
        return self.do_open(_pinned(http.client.HTTPSConnection), req, address=req.vigie_address,
                            context=self._context)


_OPENER = urllib.request.build_opener(_NoRedirect, _PinnedHTTP, _PinnedHTTPS)


def fetch(url: str, *, timeout: float, allow_loopback: bool) -> Response:
    """GET ``url`` without cache, following redirects only to checked addresses."""
    from foundation.netsafe import check_url

    for _ in range(MAX_REDIRECTS + 1):
        try:
            addresses = check_url(url, allow_loopback=allow_loopback)
        except UnsafeAddress as exc:
            return Response(url, None, b"", f"refused: {exc}")
        asked = {"User-Agent": USER_AGENT, "Cache-Control": "no-cache", "Pragma": "no-cache"}
        req = urllib.request.Request(url, headers=asked)
        # Connect to the address just checked, not to a second DNS answer (rebinding).
        req.vigie_address = addresses[0]  # type: ignore[attr-defined]
        seen = {"request_headers": tuple(asked.items()), "address": addresses[0],
                "fetched_at": datetime.now(timezone.utc)}
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return Response(url, resp.status, resp.read(MAX_BODY), reason=resp.reason or "",
                                headers=tuple(resp.headers.items()), **seen)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                url = urljoin(url, exc.headers["Location"])
                continue
            body = exc.read(MAX_BODY) if exc.fp else b""
            return Response(url, exc.code, body, reason=str(exc.reason or ""),
                            headers=tuple(exc.headers.items()) if exc.headers else (), **seen)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return Response(url, None, b"", f"{type(exc).__name__}: {reason}", **seen)
    return Response(url, None, b"", f"more than {MAX_REDIRECTS} redirects")
