"""The accuracy machinery of ``vigie bench`` on tiny generated media (no corpus), so
the benchmark cannot rot: every kind of row is made and scored, and the scoring is
checked against matchers whose answers are known (an oracle, one that confirms
everything, one that finds nothing). Structure and logic only: nothing is timed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from demoweb import bench, synth
from demoweb.transforms import BY_NAME, POSITIONS

FILM_S = 60.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("bench")
    films = []
    for i in (1, 2):
        path = synth.make_film(str(root / f"film{i}.mp4"), seed=300 + i, duration_s=FILM_S, fps=8, size=(240, 136))
        films.append(bench.Reference(i, path, i))
    # Non-catalogue footage: a person (the other half of a reaction video) and a film.
    person = root / "clip__single_face.mp4"
    synth.write_video(str(person), synth.iter_person_frames(5, 4.0, 10, (320, 240)), 10)
    other = synth.make_film(str(root / "clip__other.mp4"), seed=99, duration_s=5, fps=10, size=(320, 180))
    negs = [person, Path(other)]
    work = root / "work"
    trailers = bench.make_trailers(films, work, echo=lambda _m: None, min_film_s=30.0)
    rows = ["pip_45", "reaction", "app_window", "logo"]
    plan = bench.Plan([BY_NAME[r] for r in rows], excerpt_s=10.0, negative_transforms=("mirror",),
                      static_classes=bench.STATIC_CLASSES, static_cases=1, static_duration_s=(3.0, 4.0))
    return {"films": films, "trailers": trailers, "negs": negs, "work": work, "plan": plan, "rows": rows}


def _title_of(path: str, films: list[bench.Reference]) -> int:
    """The film a query was made of, read from its name (``film1__pip_45__3.mp4``,
    ``allowed_only__film1__0.mp4``)."""
    parts = Path(path).stem.split("__")
    stem = parts[1] if parts[0] in bench.ALLOWED_ROWS else parts[0]
    return next(f.title_id for f in films if Path(f.path).stem == stem)


def test_trailers_are_allowed_material_of_their_film(world: dict) -> None:  # type: ignore[type-arg]
    films, trailers = world["films"], world["trailers"]
    assert len(trailers) == len(films)
    assert {t.ref_id for t in trailers}.isdisjoint(f.ref_id for f in films)
    for t in trailers:
        assert t.allowed and t.title_id in {f.title_id for f in films}
        assert 5 <= len(t.stretches) <= 8 and all(2.0 <= n <= 4.0 for _, n in t.stretches)
        # Film plus allowed: the trailer's material in the middle, the rest outside it.
        parts = bench.film_plus_allowed_stretches("x", FILM_S, t.stretches)
        middle = [p for p in parts if p in t.stretches]
        i = parts.index(middle[0])
        assert len(middle) == 2 and parts[i + 1] == middle[1] and 0 < i and i + 2 < len(parts)
        rest = [p for p in parts if p not in t.stretches]
        assert sum(n for _, n in rest) >= 14.0 - 1e-6
        for start, n in rest:
            assert n >= 2.0 and start >= 0 and start + n <= FILM_S
            assert all(start + n <= a or start >= a + m for a, m in t.stretches)


def test_accuracy_rows_and_scoring(world: dict) -> None:  # type: ignore[type-arg]
    films, trailers, negs, work, plan = (world[k] for k in ("films", "trailers", "negs", "work", "plan"))

    def oracle(path: str) -> bench.Found:
        name = Path(path).name
        if name.startswith(("static__", "neg__")):
            return []
        title = _title_of(path, films)
        if name.startswith("allowed_only"):
            return [(title, "allowed", math.nan, 0.0, 1.0, math.nan)]
        return [(title, "confirmed", math.nan, 0.0, 1.0, math.nan)]

    def everything(path: str) -> bench.Found:
        return [(f.title_id, "confirmed", math.nan, 0.0, 1.0, math.nan) for f in films]

    catalogue = [*films, *trailers]
    vigie, ingest_s, ingest_cpu_s = bench.vigie_matcher(catalogue, work)
    matchers = {"vigie": vigie, "oracle": oracle, "everything": everything, "nothing": lambda _p: []}
    lines: list[str] = []
    res = bench.bench_accuracy(work, matchers, films, trailers, negs, lines.append, plan)
    assert ingest_s > 0 and ingest_cpu_s > 0 and set(res) == set(matchers)

    for name, r in res.items():
        assert set(r["per_transform"]) == set(world["rows"]), name
        # Every position of a picture-in-picture scale is made, with only two films.
        assert r["per_transform"]["pip_45"]["queries"] == len(POSITIONS)
        assert r["per_transform"]["reaction"]["queries"] == len(films)
        assert set(r["non_catalogue"]) == {*bench.STATIC_CLASSES, "corpus_footage"}
        assert all(row["queries"] == 1 for k, row in r["non_catalogue"].items() if k != "corpus_footage")
        assert r["non_catalogue"]["corpus_footage"]["queries"] == 2 * len(negs)
        assert {k: v["queries"] for k, v in r["allowed"].items()} == {
            "allowed_only": bench.ALLOWED_QUERIES * len(trailers),
            "film_plus_allowed": bench.ALLOWED_QUERIES * len(trailers)}
        assert r["identify_s"]["all"]["queries"] == (
            sum(v["queries"] for v in r["per_transform"].values())
            + r["overall"]["non_catalogue_queries"] + 2 * bench.ALLOWED_QUERIES * len(trailers))
        assert {"picture_in_picture", "transform", "non_catalogue", "allowed"} <= set(r["identify_s"])
        assert r["identify_cpu_s"]["all"]["queries"] == r["identify_s"]["all"]["queries"]
    qdir = work / f"queries-v{bench.QUERY_VERSION}"
    made = sorted(qdir.glob("*__pip_45__*.mp4"))
    assert sorted(p.stem.rsplit("__p", 1)[1] for p in made) == [str(v) for v in range(len(POSITIONS))]

    ok = res["oracle"]
    assert ok["overall"]["confirmed_recall"] == 1.0
    assert ok["overall"]["false_confirmations"] == 0
    assert ok["allowed"]["allowed_only"]["allowed"] == ok["allowed"]["allowed_only"]["queries"]
    assert all(ok["meets"].values()), ok["meets"]

    bad = res["everything"]
    assert bad["overall"]["non_catalogue_confirmed"] == bad["overall"]["non_catalogue_queries"]
    assert bad["overall"]["false_confirmations"] > bad["overall"]["non_catalogue_confirmed"]  # the other film too
    assert bad["meets"]["false_confirmations"] is False
    assert bad["meets"]["allowed_only_not_confirmed"] is False
    assert bad["meets"]["confirmed_recall"] is True

    none = res["nothing"]
    assert none["overall"]["confirmed_recall"] == 0.0 and none["overall"]["false_confirmations"] == 0
    assert none["meets"]["picture_in_picture_rows"] is False
    assert none["meets"]["allowed_only_not_confirmed"] is True
    assert none["meets"]["film_plus_allowed_confirmed"] is False

    figures = {n: {"identify_s": r["identify_s"], "identify_cpu_s": r["identify_cpu_s"], "ingest_s": 2.0 * k,
                   "ingest_cpu_s": 3.0 * k} for k, (n, r) in enumerate(res.items(), start=1)}
    speed = bench.peer_speed(figures, ours="vigie", peer="oracle")
    assert speed["ratios"]["ingest"] == 0.5 and speed["meets"]["ingest"] is True
    assert speed["ratios"]["ingest_cpu"] == 0.5
    assert "picture_in_picture" in speed["ratios"]["identify_median_by_group"]
    assert "picture_in_picture" in speed["ratios"]["identify_cpu_median_by_group"]
    # One echo line per row.
    for row in (*world["rows"], *bench.STATIC_CLASSES, "corpus_footage", *bench.ALLOWED_ROWS):
        assert any(row in line for line in lines), row


def test_non_catalogue_classes_are_made_from_their_names(tmp_path: Path) -> None:
    # Same name, same clip; another name, another clip.
    a, b, c = (str(tmp_path / f"{n}.mp4") for n in "abc")
    bench.make_static("title_slide", bench.Case("title_slide/0"), a, (2.0, 3.0))
    bench.make_static("title_slide", bench.Case("title_slide/0"), b, (2.0, 3.0))
    bench.make_static("title_slide", bench.Case("title_slide/1"), c, (2.0, 3.0))
    def frames(path: str) -> list[bytes]:
        return [img.tobytes() for _, img in synth.iter_video_frames(path)]

    assert frames(a) == frames(b)
    assert frames(a) != frames(c)
    with pytest.raises(ValueError):
        bench.make_static("no_such_class", bench.Case("x"), str(tmp_path / "x.mp4"), (2.0, 3.0))


def test_help_and_readme_name_every_section() -> None:
    from click.testing import CliRunner

    from vigie.cli import BENCH_SECTIONS, cli

    res = CliRunner().invoke(cli, ["bench", "--help"], terminal_width=200)
    assert res.exit_code == 0
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("### `vigie bench"):]
    section = section[: section.index("\n### ")]
    for name in BENCH_SECTIONS:
        assert name in res.output and f"`{name}`" in section, name
    for option in ("--rows", "--limit", "--only", "--corpus"):
        assert option in res.output and option in section, option


def test_still_excerpts_are_told_from_the_reference_alone(tmp_path: Path) -> None:
    # A film whose last 10 s are one held picture (an end card): an excerpt inside the
    # card is scored apart from the recall (it must not confirm), one across the moving
    # pictures is a copy to find.
    fps, size = 8.0, (240, 136)
    frames = [f for _, f in synth.film_frames(310, 20.0, fps, size)]
    frames += [frames[-1]] * int(10 * fps)
    path = str(tmp_path / "card.mp4")
    synth.write_video(path, ((i / fps, f) for i, f in enumerate(frames)), fps)
    assert bench.excerpt_is_still(path, 21.0, 8.0)
    assert not bench.excerpt_is_still(path, 2.0, 12.0)
