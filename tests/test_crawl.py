"""The crawl stage end to end: real spiders in a real child process, crawling the demo
web on loopback, into SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import demoweb
from crawlers.evidence import load_body
from crawlers.run import crawl, crawl_site
from crawlers.sites import add_site
from db.models import AltTitle, Candidate, CandidateStatus, CrawlRun, Host, Title
from demoweb.world import DemoWeb


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWeb]:
    w = demoweb.serve(tmp_path_factory.getbasetemp() / "demoweb-cache")
    yield w
    w.stop()


@pytest.fixture
def world(Session, web: DemoWeb):  # type: ignore[no-untyped-def]
    """A catalogue (names only: crawling needs no fingerprints) and the demo's sites and hosts."""
    with Session.begin() as s:
        s.add(Title(title="Big Buck Bunny", year=2008, alt_titles=[AltTitle(name="Le Grand Lapin")]))
        s.add(Title(title="Grand Prix de l'ACF, Calais 1906", year=1906,
                    alt_titles=[AltTitle(name="French Grand Prix 1906")]))
        web.register(s)
    return web


def _by_url(Session) -> dict[str, Candidate]:  # type: ignore[no-untyped-def]
    with Session() as s:
        rows = list(s.scalars(select(Candidate)))
        for c in rows:
            _ = c.host, c.site  # load before the session closes
        return {c.canonical_url: c for c in rows}


def test_crawl_finds_every_planted_copy_with_evidence(Session, db_url: str, world: DemoWeb,
                                                     tmp_path: Path) -> None:
    evidence_dir = tmp_path / "evidence"
    events: list[dict] = []
    results = crawl(db_url, None, allow_loopback=True, evidence_dir=str(evidence_dir), progress=events.append)
    assert {r.site for r in results} == {"free-moviez", "free-moviez-search", "free-moviez-feeds"}
    assert any(e["event"] == "candidate" for e in events)

    cands = _by_url(Session)
    with Session() as s:
        titles = {t.title: t.id for t in s.scalars(select(Title))}
    embeds_fetched = 0
    for p in world.planted():
        c = cands.get(p["page_url"])
        assert c is not None, f"not found: {p['slug']}"
        # every planted media URL, the HLS playlist and the search-only post's included
        for m in p["media_urls"]:
            assert m in c.media_urls, (p["slug"], c.media_urls)
        expected = titles[p["title"]] if p["title"] else None
        assert c.guessed_title_id == expected, (p["slug"], c.title_text, c.guess_score)
        ev = c.evidence
        assert ev["status"] == 200 and ev["ip_address"] == "127.0.0.1"
        # Each player page or video the crawl followed keeps its server's address too
        # (the notice to the video host names it in ACNS).
        fetched = [e for e in ev.get("embeds", []) if "error" not in e]
        assert all(e["ip_address"] == "127.0.0.1" for e in fetched), ev["embeds"]
        embeds_fetched += len(fetched)
        assert ev["headers"]["Content-Type"].startswith("text/html")
        body = load_body(ev)
        assert hashlib.sha256(body).hexdigest() == ev["sha256"]
        assert Path(ev["body_path"]).is_relative_to(evidence_dir)
        assert gzip.decompress(Path(ev["body_path"]).read_bytes()) == body

    assert embeds_fetched > 0
    # tracking parameters do not make duplicates; robots-forbidden and broken pages are not candidates
    assert all("utm_" not in u and "ref=" not in u for u in cands)
    assert not any("/private/" in u or "deleted-post" in u or "huge-page" in u for u in cands)
    assert len(cands) == len(world.planted())

    hls = cands[world.film_url("grand-prix-calais-1906-cam")]
    assert hls.media_urls == [world.host.base + "/hls/cal1/index.m3u8"]
    assert hls.host.name == "StreamHub" and hls.host.abuse_contact == "abuse@streamhub.example"
    assert hls.status == CandidateStatus.PENDING

    # the licensed partner's official trailer is kept as SKIPPED, never to be matched
    trailer = cands[world.film_url("big-buck-bunny-bande-annonce")]
    assert trailer.status == CandidateStatus.SKIPPED and trailer.host.licensed_partner
    assert sum(c.host is not None and c.host.licensed_partner and c.status != CandidateStatus.SKIPPED
               for c in cands.values()) == 0

    # hostile titles: stored as text, no control characters, bounded
    xss = cands[world.film_url("xss-title")]
    assert xss.title_text.startswith("<script>alert('xss')</script>")
    crlf = cands[world.film_url("crlf-title")]
    assert not any(ch in crlf.title_text for ch in "\r\n\x07\x1b")
    long = cands[world.film_url("very-long-title")]
    assert len(long.title_text) <= 500 and long.evidence["title_truncated"] is True

    # a removed embed and a dead host are recorded on the candidate, the crawl went on
    removed = cands[world.film_url("big-buck-bunny-removed")]
    assert removed.media_urls == [] and "HTTP 410" in (removed.error or "")
    mirror = cands[world.film_url("le-grand-lapin-miroir")]
    assert any("ConnectionRefused" in p for p in mirror.evidence["problems"])

    # the link site's run counted its broken links
    link_run = next(r for r in results if r.site == "free-moviez")
    errors = {e["url"].split("?")[0].rsplit("/", 1)[-1]: e["error"] for e in link_run.error_log}
    assert errors.keys() >= {"deleted-post", "huge-page", "slow-page", "redirect-loop"}, errors
    assert "404" in errors["deleted-post"] and "max size" in errors["huge-page"]
    assert "took longer" in errors["slow-page"] and "redirect" in errors["redirect-loop"]
    assert link_run.status == "completed_with_errors" and link_run.errors == len(link_run.error_log)
    assert link_run.pages > 10 and link_run.candidates_new > 10

    # robots.txt obeyed, and the robot said who it is
    assert not any(r.path.startswith("/private/") for r in world.links.log)
    assert all(r.user_agent.startswith("VigieBot/") for r in world.links.log)

    # a second crawl: no duplicates, last_seen moves, first_seen stays
    first = {u: (c.first_seen, c.last_seen) for u, c in cands.items()}
    again = crawl_site(db_url, "free-moviez", allow_loopback=True, evidence_dir=str(evidence_dir))
    assert again.candidates_new == 0 and again.candidates_seen > 10
    after = _by_url(Session)
    assert set(after) == set(cands)
    seen_again = [u for u in after if after[u].last_seen > first[u][1]]
    assert len(seen_again) == again.candidates_seen
    assert all(after[u].first_seen == first[u][0] for u in after)
    assert all(after[u].evidence["captures"] >= 2 for u in seen_again)
    with Session() as s:
        assert s.scalar(select(func.count(CrawlRun.id))) == 4
        unknown = s.scalars(select(Host).where(Host.name.not_in([h["name"] for h in world.hosts()]))).all()
    # hosts met for the first time are created by domain, with no abuse contact
    assert unknown == [] or all(h.abuse_contact is None for h in unknown)


def test_robots_switch_and_loopback_refusal(Session, db_url: str, world: DemoWeb) -> None:
    b = world.base_url
    with Session.begin() as s:
        add_site(s, "no-robots", [f"{b}/films?page=1"],
                 settings={"film_link_pattern": r"/private/", "obey_robots": False, "download_delay": 0.0,
                           "max_pages": 10, "timeout_s": 2.0, "retries": 0})
    res = crawl_site(db_url, "no-robots", allow_loopback=True)
    cands = _by_url(Session)
    assert any("/private/" in u for u in cands), res
    # Without the loopback switch nothing on 127.0.0.1 is fetched at all.
    refused = crawl_site(db_url, "no-robots", allow_loopback=False)
    assert refused.pages == 0 and refused.errors >= 1
    assert "loopback" in refused.error_log[0]["error"]


def test_evidence_in_the_database_and_a_dead_child(Session, db_url: str, world: DemoWeb) -> None:
    with Session.begin() as s:
        add_site(s, "feed-only", [f"{world.base_url}/feed.rss"], kind="sitemap",
                 settings={"download_delay": 0.0, "retries": 0})
    res = crawl_site(db_url, "feed-only", allow_loopback=True)  # no evidence dir
    assert res.status == "ok" and res.candidates_new == 3
    for c in _by_url(Session).values():
        assert hashlib.sha256(load_body(c.evidence)).hexdigest() == c.evidence["sha256"]
    # A crawl killed by its time limit still leaves a failed CrawlRun behind.
    dead = crawl_site(db_url, "feed-only", allow_loopback=True, timeout_s=0.05)
    assert dead.status == "failed" and "killed" in dead.error_log[-1]["error"]
    with Session() as s:
        assert s.get(CrawlRun, dead.run_id).finished_at is not None


def test_a_child_killed_before_it_read_its_job() -> None:
    # `vigie crawl` with timeout_s = 0.001 once exited 1 saying nothing: the timer killed
    # the child while the job was still being written, and the broken pipe went up to
    # click, which exits 1 quietly on EPIPE. A job bigger than a pipe's buffer (64 KiB)
    # keeps the write blocked until the kill, every time.
    from crawlers.run import _run_child

    job = {"padding": "x" * (4 << 20)}
    rc, _tail, timed_out = _run_child(job, None, timeout_s=0.05)
    assert timed_out and rc != 0


def test_cli_sites_and_crawl(db_url: str, world: DemoWeb, tmp_path: Path) -> None:
    from vigie.cli import cli

    runner = CliRunner()
    base = ["--db", db_url]
    assert runner.invoke(cli, [*base, "init"]).exit_code == 0
    r = runner.invoke(cli, [*base, "sites", "add", "feeds", f"{world.base_url}/feed.rss", "--kind", "sitemap",
                            "--set", "download_delay=0", "--set", 'film_link_pattern="/film/"'])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*base, "sites", "add", "feeds", f"{world.base_url}/x"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli, [*base, "sites", "add", "bad", f"{world.base_url}/", "--set", "obey_robots=3"])
    assert r.exit_code == 1 and "obey_robots" in r.output
    toml = tmp_path / "sites.toml"
    toml.write_text(f'[sites.search]\nkind = "site_search"\nstart_urls = ["{world.base_url}/search"]\n'
                    f'settings = {{ search_url = "{world.base_url}/search?q={{query}}", film_link_pattern = "/film/" }}\n')
    r = runner.invoke(cli, [*base, "sites", "import", str(toml)])
    assert r.exit_code == 0 and "search" in r.output, r.output
    r = runner.invoke(cli, [*base, "crawl", "feeds", "--allow-loopback"])
    assert r.exit_code == 0, r.output
    assert "feeds: ok" in r.output and "3 new candidates" in r.output
    r = runner.invoke(cli, [*base, "sites", "list", "--json"])
    rows = {x["name"]: x for x in json.loads(r.output)}
    assert rows["feeds"]["last_crawl"]["candidates_new"] == 3 and rows["search"]["kind"] == "site_search"
    r = runner.invoke(cli, [*base, "crawl", "nope"])
    assert r.exit_code == 1 and "no site named" in r.output


def test_site_numbers_must_be_finite_and_not_negative() -> None:
    # render_timeout_s = nan passed the "<= 0" check (nan <= 0 is False), as did inf;
    # a 400-digit integer overflows where it becomes a float.
    from crawlers.sitekinds import validate_settings
    from foundation.errors import InvalidInput

    for key, value in (("render_timeout_s", math.nan), ("download_delay", math.inf), ("timeout_s", -1.0),
                       ("retries", -1), ("max_pages", 10**400), ("concurrency", 2**63)):
        with pytest.raises(InvalidInput, match=key):
            validate_settings("sitemap", {key: value})
    assert validate_settings("sitemap", {"download_delay": 0, "timeout_s": 7.5, "retries": 0, "max_pages": 2**62})
