"""The hosts' replies: acknowledgements, removals, refusals, redirects, bounces, counter-notices.

Abuse desks answer notices by mail. This package reads that mail and ties it to the
notices it answers, as library functions over the database:

* ``inbox.sources``: where mail comes from (an IMAP folder read with ``imapclient``, a
  maildir or an mbox file); each mail is handed to ``inbox.store.ingest`` as raw bytes;
* ``inbox.parse``: raw bytes -> a :class:`~inbox.parse.ParsedMail` (the hostile-mail
  boundary: size limits, headers decoded and cleaned, HTML turned into text, attachments
  hashed and never opened, delivery status notifications read);
* ``inbox.thread``: which notice a mail answers (In-Reply-To/References, the notice's
  ``VIGIE-...`` reference, the infringing URLs it quotes);
* ``inbox.classify``: what it says (rules: DSN, known desk templates, English and French
  wordings), each reading with a confidence;
* ``inbox.store``: stores each mail once with its raw bytes, and applies a sure reading
  (a bounce fails the notice and marks the contact bad, a counter-notice opens a case);
  anything unmatched or unsure goes to the staff queue;
* ``inbox.decide``: what staff decide (accept a new contact, close a refusal, decide a
  counter-notice, file a mail under a notice);
* ``inbox.views``: the timeline of a notice and the figures ``vigie status`` and the
  web app show.

A domain package beside ``notices``, one layer above it. May import: ``notices``, the
core (``db``) and ``foundation``; never ``crawlers``, ``reports``, the stages or an
entry point.
"""
