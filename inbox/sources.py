"""Where the hosts' replies come from: an IMAP folder, a maildir, an mbox file.

Each source hands every mail to ``inbox.store.ingest`` as raw bytes, one transaction per
mail, so a bad mail is recorded (or reported) and the rest of the run goes on.

IMAP (``imapclient``): the folder is opened read-only and mail fetched with
``BODY.PEEK[]``, so nothing is marked seen or moved and the mail team's own client is
undisturbed. Where to start is read from the database: the highest UID stored for this
folder and UIDVALIDITY (a new UIDVALIDITY reads the folder again; content hashes keep
that from storing anything twice). A mail larger than ``[inbox] max_bytes`` is fetched
as its header only (``RFC822.SIZE`` first). Login is refused without TLS unless
``[inbox] allow_plaintext`` (loopback tests).
"""

from __future__ import annotations

import mailbox
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import InboxMessage
from foundation.config import Config
from foundation.errors import InboxError, InvalidInput
from foundation.timeutil import utc_now
from inbox.store import IngestResult, ingest

MAX_PATH_MAILS = 100_000


@dataclass
class FetchOutcome:
    result: IngestResult
    source: str
    seen: int = 0
    skipped_configured: bool = False


def _ingest_one(sessions: sessionmaker[Session], raw: bytes, config: Config, *, source: str, now: datetime,
                result: IngestResult, size: int | None = None, imap: tuple[str, int, int] | None = None) -> None:
    try:
        with sessions.begin() as s:
            result.add(ingest(s, raw, config, source=source, now=now, size=size, imap=imap))
    except Exception as exc:  # noqa: BLE001 - one mail never stops the run; it is reported
        result.errors.append(f"{source}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


# --------------------------------------------------------------------------- files


def _read_limited(f: object, limit: int) -> tuple[bytes, int]:
    data = f.read(limit + 1)  # type: ignore[attr-defined]
    if len(data) <= limit:
        return data, len(data)
    size = len(data)
    while chunk := f.read(1 << 20):  # type: ignore[attr-defined]
        size += len(chunk)
    return data, size


def mails_at(path: str | Path, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
    """(source, bytes, real size) of every mail of a maildir or mbox file at ``path``."""
    p = Path(path)
    if p.is_dir():
        if not all((p / d).is_dir() for d in ("cur", "new")):
            raise InvalidInput(f"{path}: a directory but not a maildir (no cur/ and new/)")
        box: mailbox.Mailbox = mailbox.Maildir(str(p), factory=None, create=False)
        kind = "maildir"
    elif p.is_file():
        with open(p, "rb") as f:
            head = f.read(5)
        if head and head != b"From ":
            raise InvalidInput(f"{path}: not an mbox file (it does not start with 'From ')")
        box = mailbox.mbox(str(p), factory=None, create=False)
        kind = "mbox"
    else:
        raise InvalidInput(f"{path}: no such maildir or mbox file")
    try:
        for n, key in enumerate(sorted(box.keys(), key=str)):
            if n >= MAX_PATH_MAILS:
                break
            with box.get_file(key) as f:
                data, size = _read_limited(f, max_bytes)
            yield f"{kind}:{os.path.basename(os.path.abspath(p))}:{key}", data, size
    finally:
        box.close()


def import_path(sessions: sessionmaker[Session], config: Config, path: str | Path, *,
                now: datetime | None = None, on_item: Callable[[str], None] | None = None) -> FetchOutcome:
    """Store and read every mail of the maildir or mbox file at ``path``."""
    now = now or utc_now()
    result = IngestResult()
    out = FetchOutcome(result, str(path))
    for source, data, size in mails_at(path, int(config.get("inbox", "max_bytes"))):
        out.seen += 1
        if on_item:
            on_item(source)
        _ingest_one(sessions, data, config, source=source, now=now, result=result,
                    size=size if size > len(data) else None)
    return out


# --------------------------------------------------------------------------- IMAP


def _last_uid(sessions: sessionmaker[Session], folder: str, uidvalidity: int) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.max(InboxMessage.imap_uid)).where(
            InboxMessage.imap_folder == folder, InboxMessage.imap_uidvalidity == uidvalidity)) or 0)


def connect(config: Config) -> object:
    """A logged-in IMAPClient (InboxError when it cannot connect or log in)."""
    import imapclient
    from imapclient.exceptions import IMAPClientError, LoginError

    get = config.inbox.get
    host, user = get("host"), get("user")
    if not host or not user:
        raise InboxError("[inbox] host and user must be set to fetch mail")
    port = int(config.get("inbox", "port"))
    tls = bool(config.get("inbox", "tls"))
    timeout = float(config.get("inbox", "timeout"))
    try:
        context = ssl.create_default_context(cafile=get("ca_file") or None)
    except (OSError, ssl.SSLError) as exc:
        raise InboxError(f"[inbox] ca_file {get('ca_file')!r}: {exc}") from None
    try:
        client = imapclient.IMAPClient(host, port=port, ssl=tls, ssl_context=context if tls else None,
                                       timeout=timeout)
    except (OSError, IMAPClientError) as exc:
        raise InboxError(f"IMAP server {host}:{port}: cannot connect: {exc}") from None
    try:
        if not tls:
            if b"STARTTLS" in client.capabilities():
                client.starttls(context)
            elif not config.get("inbox", "allow_plaintext"):
                raise InboxError(f"IMAP server {host}:{port} offers no TLS: refusing to send the password "
                                 "in clear (set [inbox] tls = true, or allow_plaintext for a loopback test)")
        client.login(user, config.get("inbox", "password") or "")
    except LoginError as exc:
        client.shutdown()
        raise InboxError(f"IMAP login refused for {user!r}: {exc}") from None
    except (OSError, IMAPClientError, ssl.SSLError) as exc:
        client.shutdown()
        raise InboxError(f"IMAP server {host}:{port}: {exc}") from None
    except InboxError:
        client.shutdown()
        raise
    return client


def fetch_imap(sessions: sessionmaker[Session], config: Config, *, now: datetime | None = None,
               stop: object = None) -> FetchOutcome:
    """Store and read the new mail of ``[inbox] folder`` (see the module docstring)."""
    from imapclient.exceptions import IMAPClientError

    now = now or utc_now()
    folder = str(config.get("inbox", "folder"))
    result = IngestResult()
    out = FetchOutcome(result, f"imap:{folder}")
    if not config.inbox.get("host"):
        out.skipped_configured = True
        return out
    max_bytes = int(config.get("inbox", "max_bytes"))
    limit = int(config.get("inbox", "max_per_run"))
    client = connect(config)
    try:
        try:
            status = client.select_folder(folder, readonly=True)  # type: ignore[attr-defined]
        except IMAPClientError as exc:
            raise InboxError(f"IMAP folder {folder!r}: {exc}") from None
        uidvalidity = int(status.get(b"UIDVALIDITY", 0))
        last = _last_uid(sessions, folder[:200], uidvalidity)
        uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)  # type: ignore[attr-defined]
        for uid in uids[:limit]:
            if stop is not None and getattr(stop, "is_set", lambda: False)():
                break
            out.seen += 1
            size_info = client.fetch([uid], ["RFC822.SIZE"]).get(uid, {})  # type: ignore[attr-defined]
            size = int(size_info.get(b"RFC822.SIZE", 0))
            part = b"BODY[]" if size <= max_bytes else b"BODY[HEADER]"
            data = client.fetch([uid], [part.replace(b"BODY", b"BODY.PEEK").decode()]).get(uid, {})  # type: ignore[attr-defined]
            raw = data.get(part) or b""
            _ingest_one(sessions, raw, config, source=f"imap:{folder}:{uidvalidity}:{uid}", now=now,
                        result=result, size=size if size > len(raw) else None,
                        imap=(folder[:200], uidvalidity, uid))
    except (OSError, IMAPClientError) as exc:
        raise InboxError(f"IMAP fetch from {folder!r} stopped: {exc}") from None
    finally:
        try:
            client.logout()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass
    return out
