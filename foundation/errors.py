"""Domain errors, all in one place.

Library code raises these; only the CLI (``vigie.cli``) turns them into an exit status
and a one-line message. Each class says who raises it.
"""

from __future__ import annotations


class VigieError(Exception):
    """Base of every handled error: the message is shown to the user as is."""


class ConfigError(VigieError):
    """Raised by ``foundation.config`` for a malformed or invalid configuration file."""


class DatabaseError(VigieError):
    """Raised by ``db.session`` when the database URL is bad or the server unreachable,
    or when the schema is not at the version this code expects."""


class MediaError(VigieError):
    """Raised by ``fingerprint.decode`` / ``fingerprint.sandbox``: a missing, unreadable,
    corrupt, truncated or hostile video, or one with no usable frames."""


class FetchError(MediaError):
    """Raised when a remote video cannot be fetched (dead link, refused address)."""


class NotFound(VigieError):
    """Raised by library lookups when an id or name does not exist (title, site, host)."""


class Duplicate(VigieError):
    """Raised when creating something that already exists under a unique name."""


class InvalidInput(VigieError):
    """Raised for a value that is well-formed for the CLI but wrong for the domain
    (a bad URL for an offer, a negative year, ...)."""


class NoticeInvalid(VigieError):
    """Raised by ``notices.build`` / ``notices.regimes`` when a notice lacks an element its
    legal regime requires (the message names it), and by ``notices.build.approve_notice``
    for a notice that is not awaiting approval."""


class DispatchError(VigieError):
    """Raised by ``notices.dispatch`` when notices cannot be sent at all (no sender address
    configured, no channel for a host); per-notice SMTP failures are recorded instead."""

class UnsafeAddress(VigieError):
    """Raised by ``foundation.netsafe`` (and so by the crawlers, ``identify`` and ``verify``)
    for a URL that must not be fetched: not http(s), unresolvable, or resolving to a
    private, loopback, link-local, CGNAT or otherwise non-public address."""

class CrawlError(VigieError):
    """Raised by ``crawlers`` for a site that cannot be crawled at all: unknown site kind,
    invalid site settings, or a crawler process that could not be started."""


class ReportError(VigieError):
    """Raised by ``reports.daily`` and ``webapp.public`` when the report or the public pages
    cannot be written to their directory, or the report cannot be mailed."""


class SchedulerError(VigieError):
    """Raised by ``stages.runlock`` when another ``vigie run`` holds this database's scheduler
    lock, and by ``scheduler`` for a schedule it cannot read or a ``--once`` run in which
    some job failed (each job's own error is logged and recorded in ``job_runs``)."""


class ClusterError(VigieError):
    """Raised by ``cluster`` when cluster mode cannot run: the database is not PostgreSQL,
    the job queue's schema is missing, or a stage or its arguments are unknown."""


class LoginThrottled(VigieError):
    """Raised by ``webapp.accounts.LoginThrottle`` when an account or a client address has
    had too many failed logins in the window; ``wait_s`` says for how long."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"too many failed logins: try again in {int(wait_s // 60) + 1} min")
        self.wait_s = wait_s


class ServeError(VigieError):
    """Raised by ``webapp.serve`` when the review app cannot listen on its address (a port
    out of range or already in use, an address that is not ours)."""


class EvidenceError(VigieError):
    """evidence: the evidence directory is not set up, a time-stamping authority refused
    or could not be reached, a token or a case file does not verify."""
class InboxError(VigieError):
    """Raised by ``inbox.sources`` when the hosts' replies cannot be fetched at all: no
    ``[inbox]`` server set, the IMAP server unreachable, the login or the folder refused
    (a single unreadable mail is recorded instead)."""
