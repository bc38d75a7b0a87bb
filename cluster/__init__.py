"""Cluster mode: every stage as jobs on procrastinate, the PostgreSQL task queue.

Past one machine, ``vigie worker`` processes on any number of machines pick jobs from
queues in the same PostgreSQL database the pipeline already uses: ``crawl`` (one job per
site), ``match`` (one job per candidate), ``notices``, ``verify``, ``report``, ``index``
and ``maintenance`` (queue pending candidates and due crawls, retry stalled jobs).

* ``cluster.queue``: the job queue's schema, the pending candidates' jobs, queue depths
  (a job is inserted by ``db.jobqueue``, in the caller's transaction);
* ``cluster.matcher``: one candidate matched per job, against an index each long-lived
  worker keeps in memory and swaps when the catalogue changes;
* ``cluster.app``: the procrastinate App, its tasks and periodic tasks.

``vigie run`` (APScheduler, one machine, SQLite or PostgreSQL) stays the default.

An entry point (``vigie worker``). May import: ``scheduler`` (the stages' schedule keys),
the stages, the domain packages, the core and ``foundation``; never the CLI, ``webapp`` or
``demoweb``.
"""
