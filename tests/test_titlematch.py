"""Title guessing: normalisation and fuzzy matching of pirate page titles."""

from __future__ import annotations

import pytest

from crawlers.titlematch import TitleMatcher, fold, normalise

CATALOGUE = [
    (1, "Big Buck Bunny", 2008),
    (1, "Le Grand Lapin", 2008),
    (2, "Grand Prix de l'ACF, Calais 1906", 1906),
    (2, "French Grand Prix 1906", 1906),
    (3, "Free Willy", 1993),
]


@pytest.fixture(scope="module")
def matcher() -> TitleMatcher:
    return TitleMatcher(CATALOGUE)


def test_fold_removes_accents_case_punctuation_and_controls() -> None:
    assert fold("Élève\r\nÀ L'ÉCOLE!!\x07") == "eleve a l ecole"


def test_normalise_drops_years_and_release_tags() -> None:
    assert normalise("Big.Buck.Bunny.2008.TRUEFRENCH.1080p.WEB-DL.x264") == "big buck bunny"
    assert normalise("Le Grand Lapin (2008) VOSTFR HDRip CAM") == "le grand lapin"


@pytest.mark.parametrize("text, title_id", [
    ("Big.Buck.Bunny.2008.TRUEFRENCH.1080p.WEB-DL.x264", 1),
    ("Regarder Le Grand Lapin (2008) VOSTFR en streaming gratuit", 1),
    ("Big Buk Buny STREAMING VF", 1),                      # odd spelling
    ("Grand Lapin (Le) - EXCLU 720p", 1),                  # reordered words
    ("Calais 1906 Grand Prix de l ACF", 2),
    ("French Grand Prix 1906 [MULTI]", 2),                # "French" is a tag and a title word
    ("<script>alert(1)</script> Big Buck Bunny", 1),
    ("Free Willy 1993 FRENCH DVDRip", 3),                  # "Free" is a tag elsewhere
])
def test_guesses_the_disguised_title(matcher: TitleMatcher, text: str, title_id: int) -> None:
    guess = matcher.guess(text)
    assert guess is not None and guess.title_id == title_id, (text, guess)


@pytest.mark.parametrize("text", [
    "Nos vacances en Bretagne (vlog 2023)",
    "Bunny",                                # a word of a title is not the title
    "Big Buck Bunny 1975",                  # same name, another year: another film
    "Le Grand Prix de Monaco 2019",
    "",
    "1080p x264 VOSTFR",
])
def test_no_guess_for_other_pages(matcher: TitleMatcher, text: str) -> None:
    assert matcher.guess(text) is None


def test_very_long_hostile_title_is_bounded(matcher: TitleMatcher) -> None:
    guess = matcher.guess("Big Buck Bunny " + "A" * 10_000 + " x" * 5_000)
    assert guess is not None and guess.title_id == 1


def test_empty_catalogue_guesses_nothing() -> None:
    assert TitleMatcher([]).guess("Big Buck Bunny") is None
