"""Golden files of the rendered notices: per regime and language (US DMCA, EU DSA and the
search-engine delisting request, in English and French) and per kind of host (a video
host's own copy, a link site's page embedding a video stored elsewhere, a file host),
plus a reminder and an upstream notice, the text and the HTML compared byte for byte
with the files committed under ``tests/golden/notices/``.

A change to a template shows up here as a diff to read, not as a surprise in an abuse
desk's inbox. After an intended change, regenerate the files and review them with git:

    VIGIE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_notices_golden.py

No database: the rows are built in memory, the reference and dates are fixed.
"""

from __future__ import annotations

import difflib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from db.models import Candidate, Host, ItemRole, Match, Offer, OfferKind, Title
from notices.regimes import REGIMES
from notices.render import Target, build_context, render
from tests.test_notices_support import NOTIFIER

GOLDEN = Path(__file__).parent / "golden" / "notices"
UPDATE = os.environ.get("VIGIE_UPDATE_GOLDEN") == "1"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

# host kind -> (host name, jurisdiction, page URL, media URL or None, role of the URL notified)
HOSTS = {
    "video_host": ("streamtube", "US", "https://streamtube.example/watch/le-voyage", None, ItemRole.HOSTING),
    "link_site": ("free-moviez", "FR", "https://free-moviez.example/film/le-voyage",
                  "https://cdn.streamtube.example/v/abc.mp4", ItemRole.LINKING),
    "cyberlocker": ("lockerz", "NL", "https://lockerz.example/f/abc123/le.voyage.2024.mkv", None,
                    ItemRole.HOSTING),
    "search_engine": ("search", "US", "https://free-moviez.example/film/le-voyage", None, ItemRole.HOSTING),
}
CASES = [
    *((regime, lang, kind, "notice") for regime in ("dmca", "dsa") for lang in ("en", "fr")
      for kind in ("video_host", "link_site", "cyberlocker")),
    *(("delisting", lang, "search_engine", "delisting") for lang in ("en", "fr")),
    ("dmca", "en", "video_host", "reminder"),
    ("dsa", "fr", "link_site", "upstream"),
]


def _context(regime: str, lang: str, kind: str, notice_kind: str) -> dict:  # type: ignore[type-arg]
    name, jurisdiction, page, media, role = HOSTS[kind]
    title = Title(id=1, title="Le Voyage", year=2024, rights_owner="Films du Nord SAS")
    title.offers = [Offer(url="https://vod.filmsdunord.example/le-voyage", provider="vod.filmsdunord.example",
                          kind=OfferKind.VOD_RENTAL, territory="FR,BE"),
                    Offer(url="https://us-stream.example/the-journey", provider="us-stream.example",
                          kind=OfferKind.SVOD, territory="US")]
    seen = T0 - timedelta(hours=3)
    cand = Candidate(id=7, canonical_url=page, page_url=page, media_urls=[media] if media else [],
                     first_seen=seen, last_seen=seen,
                     evidence={"sha256": "ab" * 32, "fetched_at": seen.isoformat(), "ip_address": "203.0.113.7"})
    match = Match(id=12, candidate=cand, title=title, title_id=1, score=0.97, matched_s=412.0, offset_s=1200.0,
                  speed=1.0, cand_start_s=0.0, cand_end_s=420.0, ref_start_s=1200.0, ref_end_s=1620.0,
                  media_url=media, details={})
    host = Host(id=3, name=name, jurisdiction=jurisdiction, language=lang, kind=kind)
    r = REGIMES[regime]
    return build_context(regime=r.name, regime_title=r.title, kind=notice_kind, language=lang, host=host,
                         recipient_label=f"{name} <abuse@{name}.example>", notifier=NOTIFIER,
                         targets=[Target(match, page, role)], reference="VIGIE-GOLDEN000001", date=T0,
                         first_sent=T0 - timedelta(days=3) if notice_kind in ("reminder", "upstream") else None)


def _compare(path: Path, got: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden file {path}: run with VIGIE_UPDATE_GOLDEN=1 to create it, then review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    want = path.read_text(encoding="utf-8")
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                            fromfile=f"{path.name} (golden)", tofile=f"{path.name} (rendered)"))
        pytest.fail(f"rendered notice differs from {path} (VIGIE_UPDATE_GOLDEN=1 to accept):\n{diff}")


@pytest.mark.parametrize(("regime", "lang", "kind", "notice_kind"), CASES,
                         ids=[f"{r}-{lang}-{k}-{n}" for r, lang, k, n in CASES])
def test_rendered_notice_matches_its_golden_file(regime: str, lang: str, kind: str, notice_kind: str) -> None:
    ctx = _context(regime, lang, kind, notice_kind)
    rendered = render(ctx)
    REGIMES[regime].validate(ctx, rendered.text)
    stem = f"{regime}.{lang}.{kind}.{notice_kind}"
    _compare(GOLDEN / f"{stem}.txt", rendered.text)
    _compare(GOLDEN / f"{stem}.html", rendered.html)


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("regime", ["dmca", "dsa", "delisting"])
def test_heading_stands_on_its_own_line(regime: str, lang: str) -> None:
    """The heading is followed by a blank line, never run into ``Reference:``."""
    text = render(_context(regime, lang, "video_host", "notice")).text
    lines = text.splitlines()
    ref = "Reference:" if lang == "en" else "Référence :"
    i = next(n for n, line in enumerate(lines) if line.startswith(ref))
    assert i == 2 and lines[1] == "" and lines[0].strip() and ref not in lines[0], lines[:4]
