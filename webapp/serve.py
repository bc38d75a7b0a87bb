"""Running the review app (``vigie serve``): the listening socket and uvicorn's settings.

The socket is bound here, before uvicorn starts, so a port out of range or already in
use is one clear error (``ServeError``) instead of uvicorn's log and exit status 3.

Forwarded headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from
the proxies named in ``[web] trusted_proxies`` (addresses or networks; none by default).
Believing them from anyone, even from 127.0.0.1 only, lets a client behind a local proxy
or on the same machine pick the address the login throttle counts.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

from foundation.config import Config
from foundation.config import port as check_port
from foundation.errors import ServeError


def address(config: Config, host: str | None, port: int | None) -> tuple[str, int]:
    """The host and port to listen on: the options, else ``[web]``, else the defaults."""
    host = host or config.get("web", "host")
    if port is None:
        port = int(config.get("web", "port"))
    try:
        check_port(port)
    except ValueError as exc:
        raise ServeError(f"cannot listen on port {port}: {exc}") from None
    return host, port


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ServeError saying why if there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def trusted_proxies(config: Config) -> list[str]:
    """``[web] trusted_proxies`` as uvicorn reads them (checked by the config schema)."""
    return [str(ipaddress.ip_network(p)) if "/" in p else p for p in config.web.get("trusted_proxies") or []]


def uvicorn_config(app: Any, config: Config, **kw: Any) -> Any:
    """uvicorn's settings for the app: forwarded headers only from trusted proxies."""
    import uvicorn

    proxies = trusted_proxies(config)
    return uvicorn.Config(app, proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [],
                          log_level=kw.pop("log_level", "info"), **kw)


def run(app: Any, config: Config, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, config)).run(sockets=[sock])
