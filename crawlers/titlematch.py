"""Guess which catalogue title a pirate page shows, from its title text.

Crawl stage: every candidate gets a guessed title (or none) so staff can sort pages
before the fingerprints speak. Pirates disguise titles with release tags
("Big.Buck.Bunny.2008.TRUEFRENCH.1080p.WEB-DL.x264"), site boilerplate ("Regarder ...
en streaming gratuit") and odd spelling ("Big Buk Buny"), so both sides are normalised
(accents, case, punctuation, years, release tags) and compared with rapidfuzz over
word windows of the page text the length of the title, so extra words around the title
cost nothing while a short page text is never "contained" in a long title.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# A score out of 100 over the best word window. 85 accepts one or two typos in a
# three-word title ("big buk buny" vs "big buck bunny" scores 92) and rejects a page that
# shares one word with a title (a window "bunny vlog" vs "big buck bunny" scores 58).
MIN_SCORE = 85.0
# Years on both sides that differ by more than this make the guess weaker: a remake or
# another film of the same name, not a typo.
YEAR_TOLERANCE = 1
YEAR_PENALTY = 20.0
# Only this many candidates from the cheap pre-filter get the window scoring.
PREFILTER = 10
# Page texts are cut to this many words: a 10,000-character hostile title must not cost
# a quadratic amount of matching.
MAX_WORDS = 60

RELEASE_TAGS = frozenset(
    """
    vostfr vostf vost vostfr-hd vf vff vfq vfi vo vost-fr french truefrench subfrench multi
    multi-vf fr en eng english dubbed subbed
    2160p 1080p 1080i 720p 576p 480p 360p 4k uhd hd fhd sd hdr hdr10 10bit 8bit
    x264 x265 h264 h265 hevc avc xvid divx av1 vp9
    webdl web-dl webrip web dl rip bdrip brrip bluray blu-ray bdremux remux dvdrip dvdscr dvd
    hdrip hdtv hdcam cam camrip ts telesync tc telecine scr screener r5 hdts
    aac ac3 eac3 dts dd5 ddp5 atmos mp3 5 1 7 1 2 0
    proper repack extended unrated remastered limited internal complete
    streaming stream film complet gratuit regarder voir telecharger download watch online
    free full movie
    """.split()
)

_YEAR = re.compile(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, accents removed, punctuation and control characters to spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def years(text: str) -> list[int]:
    return [int(y) for y in _YEAR.findall(text)]


def normalise(text: str, keep: frozenset[str] = frozenset()) -> str:
    """The words of ``text`` that can name a film: folded, without years or release tags.

    Tags in ``keep`` stay: a catalogue that has "French Grand Prix" or "Free Willy" needs
    those words, while "TRUEFRENCH" or "FREE STREAMING" around other titles are noise.
    """
    words = [w for w in fold(_YEAR.sub(" ", text)).split() if w not in RELEASE_TAGS or w in keep]
    return " ".join(words[:MAX_WORDS])


@dataclass(frozen=True)
class Guess:
    title_id: int
    name: str          # the title or alternative title that matched
    score: float       # 0-100


@dataclass(frozen=True)
class _Name:
    title_id: int
    name: str
    norm: str
    year: int | None


class TitleMatcher:
    """Fuzzy matcher over the catalogue's titles and alternative titles.

    Built once per crawl from ``(title_id, name, year)`` rows; ``guess`` is pure.
    """

    def __init__(self, names: list[tuple[int, str, int | None]], min_score: float = MIN_SCORE) -> None:
        self.min_score = min_score
        # Catalogue names lose only their years: their own words are never noise.
        self.names = [_Name(tid, n, fold(_YEAR.sub(" ", n)), y) for tid, n, y in names]
        self.names = [n for n in self.names if n.norm]
        self.vocabulary = frozenset(w for n in self.names for w in n.norm.split())
        self._norms = [n.norm for n in self.names]

    def guess(self, text: str | None) -> Guess | None:
        if not text or not self.names:
            return None
        page = normalise(text, self.vocabulary)
        if not page:
            return None
        page_years = years(text)
        shortlist = process.extract(page, self._norms, scorer=fuzz.token_set_ratio, limit=PREFILTER)
        best: Guess | None = None
        for _, _, idx in shortlist:
            name = self.names[idx]
            score = _window_score(name.norm, page)
            if name.year and page_years and all(abs(y - name.year) > YEAR_TOLERANCE for y in page_years):
                score -= YEAR_PENALTY
            if score >= self.min_score and (best is None or score > best.score):
                best = Guess(name.title_id, name.name, round(score, 1))
        return best


def _window_score(title: str, page: str) -> float:
    """Best ratio between ``title`` and a run of page words of about its length."""

    t_words, p_words = title.split(), page.split()
    n = len(t_words)
    def score(window: str) -> float:
        # token_sort_ratio forgives reordered words ("Grand Lapin (Le)").
        return max(fuzz.ratio(title, window), fuzz.token_sort_ratio(title, window))

    if len(p_words) <= n:
        return score(page)
    best = 0.0
    for size in {max(1, n - 1), n, n + 1}:
        for i in range(0, len(p_words) - size + 1):
            best = max(best, score(" ".join(p_words[i : i + size])))
    return best


def matcher_from_db(session) -> TitleMatcher:  # type: ignore[no-untyped-def]
    """A matcher over every title and alternative title in the catalogue."""
    from sqlalchemy import select

    from db.models import AltTitle, Title

    rows: list[tuple[int, str, int | None]] = []
    for t in session.scalars(select(Title)):
        rows.append((t.id, t.title, t.year))
    for a in session.scalars(select(AltTitle)):
        rows.append((a.title_id, a.name, a.title.year))
    return TitleMatcher(rows)
