"""The demo web: a pirate link site, a video host and a licensed VOD site on loopback.

Used by the tests and by ``vigie demo``: a real local web (threaded HTTP servers on free
127.0.0.1 ports) serving pirate-style copies of the bundled films, so the crawlers,
the matcher and the takedown verification run against real HTTP. See ``world`` for the
content and ``media`` for how the videos are made.

    web = demoweb.serve("demo-out")        # starts in background threads
    web.register(session)                  # adds its sites and hosts to the database
    ... crawl web.sites() ..., web.take_down(url), web.stop()

Beside the world lives what only the demo, the tests and the benchmark need: the demo
cycle (``cycle``), synthetic films and pirate transforms (``synth``, ``transforms``), a
range-serving HTTP server (``rangeserver``), the benchmarks (``bench``,
``bench_browser``, ``cluster_bench``) and the bundled films (``demo_media/``). Tooling,
out of the product path. May import: everything but the CLI.
"""

from __future__ import annotations

import os

from demoweb.world import DemoWeb


def serve(workdir: str | os.PathLike[str]) -> DemoWeb:
    """Make (or reuse, from ``workdir``) the demo videos and start the demo web.

    Returns the running ``DemoWeb``: ``base_url`` is the link site, ``stop()`` ends it.
    """
    from demoweb.media import prepare

    os.makedirs(workdir, exist_ok=True)
    return DemoWeb(prepare(workdir))


__all__ = ["DemoWeb", "serve"]
