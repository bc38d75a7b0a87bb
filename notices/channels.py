"""Notice channels: how a rendered notice reaches a host.

A channel takes the finished EmailMessage and either delivers it or raises one of the
outcomes below, which ``notices.dispatch`` turns into outbox states. Only channels that
really work are registered: email over SMTP (standard library ``smtplib``). Hosts whose
``Host.channel`` has no entry here (API, web form) get their notices as submission tasks
that staff submit by hand and then mark submitted (``notices.workflow``).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol
from foundation.config import Config
from foundation.errors import DispatchError


class TemporaryFailure(Exception):
    """Not delivered, worth retrying later (4xx reply, connection error before DATA)."""


class PermanentFailure(Exception):
    """Not delivered and retrying will not help (5xx reply): flagged for staff."""


class InDoubt(Exception):
    """The connection broke after DATA started: the host may or may not have it."""


class Channel(Protocol):
    name: str

    def send(self, message: EmailMessage, *, on_data: Callable[[], None]) -> str:
        """Deliver ``message``; call ``on_data`` just before the point of no return.

        Returns the server's acknowledgement; raises TemporaryFailure, PermanentFailure
        or InDoubt; raises DispatchError when the channel itself is misconfigured.
        """
        ...


def _classify(code: int, what: str, resp: bytes | str) -> Exception:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    msg = f"{what}: {code} {' '.join(text.split())[:300]}"
    return PermanentFailure(msg) if 500 <= code < 600 else TemporaryFailure(msg)


class EmailChannel:
    """SMTP with optional implicit TLS or STARTTLS and AUTH, one connection per notice
    (a notice is one transaction, so a failure never leaves a half-known batch)."""

    name = "email"

    def __init__(self, config: Config) -> None:
        self.host = str(config.get("smtp", "host"))
        self.port = int(config.get("smtp", "port"))
        self.starttls = bool(config.get("smtp", "starttls"))
        self.ssl = bool(config.get("smtp", "ssl"))
        self.username = config.get("smtp", "username")
        self.password = config.get("smtp", "password")
        self.timeout = float(config.get("smtp", "timeout"))

    def send(self, message: EmailMessage, *, on_data: Callable[[], None]) -> str:
        sender = str(message["From"])
        rcpt = str(message["To"])
        payload = message.as_bytes()
        data_started = False
        try:
            if self.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(str(self.username), str(self.password or ""))
                code, resp = smtp.mail(sender)
                if code != 250:
                    raise _classify(code, "MAIL FROM", resp)
                code, resp = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise _classify(code, "RCPT TO", resp)
                on_data()
                data_started = True
                code, resp = smtp.data(payload)
                # smtplib returns the final reply to "." rather than raising: a 4xx or
                # 5xx there means the server refused the message, so it was not sent.
                if code != 250:
                    raise _classify(code, "DATA", resp)
                ack = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
            return f"{code} {' '.join(ack.split())[:200]}"
        except smtplib.SMTPAuthenticationError as exc:
            raise DispatchError(f"SMTP login to {self.host}:{self.port} refused: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DispatchError(f"SMTP server {self.host}:{self.port}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            # A reply to DATA itself (354 refused, or the final reply) is definite.
            raise _classify(exc.smtp_code, "DATA" if data_started else "SMTP", exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if data_started:
                raise InDoubt(f"connection lost after DATA: {reason}") from None
            raise TemporaryFailure(f"SMTP {self.host}:{self.port}: {reason}") from None


ChannelFactory = Callable[[Config], Channel]

BUILTIN_CHANNELS: tuple[tuple[str, ChannelFactory], ...] = (("email", EmailChannel),)


def _registry(entries: tuple[tuple[str, ChannelFactory], ...]) -> dict[str, ChannelFactory]:
    out: dict[str, ChannelFactory] = {}
    for name, factory in entries:
        if name in out:
            raise RuntimeError(f"notice channel {name!r} is registered twice")
        out[name] = factory
    return out


CHANNELS: dict[str, ChannelFactory] = _registry(BUILTIN_CHANNELS)
