"""Notices: from confirmed matches to takedowns verified.

The flow, each step a library function over the database:

* ``notices.build.queue_notices(session, config, now)`` renders and validates one notice
  per host (regime and language of the host, legitimate offers of its territory,
  evidence per URL, ACNS 2.0 XML and X-ARF v4 attachments) into the outbox;
* ``notices.build.approve_notice(session, notice_id, ...)`` releases a notice held for
  staff approval;
* ``notices.dispatch.dispatch(sessionmaker, config, now=...)`` sends the outbox over the
  host's channel (SMTP), exactly once as far as we control it;
* ``notices.verify.verify(session, config, now=...)`` re-checks notified URLs and queues
  reminders, upstream notices and delisting requests for the overdue ones;
* ``notices.exports`` writes the search engines' daily bulk delisting files and Lumen's
  submission JSON (``vigie notices export``).

``notices.machine`` builds the ACNS 2.0 and X-ARF v4 parts and validates them against
the published schemas (``notices/schemas/acns/``, the ``xarf`` package's own).
* ``notices.workflow`` is what staff do with the notices no machine sends: submission
  tasks of web-form and API hosts (fields, export, marked submitted with the host's
  ticket), retries of failed notices and drafts, rebuilds after a host's channel changed.

A domain package. May import: the core (``db``, ``fingerprint``) and ``foundation``;
never ``crawlers``, ``reports``, the stages or an entry point.
"""
