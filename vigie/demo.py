"""``vigie demo``: one cycle on the bundled demo world, offline.

The demo world is a small catalogue of real, freely licensed footage shipped in
``vigie/demo_media`` (see its README for attribution) and pirate-style copies made
from it on the spot: re-encoded, cropped, re-timed, mirrored, with a foreign intro.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from db.session import make_engine, sessionmaker_for, upgrade
from vigie import synth
from vigie.catalog import add_title, load_index
from vigie.identify import identify

MEDIA = Path(__file__).parent / "demo_media"

CATALOGUE = [
    {
        "file": "big_buck_bunny_excerpt.mp4",
        "title": "Big Buck Bunny",
        "year": 2008,
        "alt_titles": ["Le Grand Lapin"],
        "offers": ["https://vod.vigie-demo.example/films/big-buck-bunny"],
    },
    {
        "file": "calais_1906.mp4",
        "title": "Grand Prix de l'ACF, Calais 1906",
        "year": 1906,
        "alt_titles": ["French Grand Prix 1906"],
        "offers": ["https://vod.vigie-demo.example/films/calais-1906"],
    },
]


def _crop_bright(img: NDArray[np.uint8], _t: float) -> NDArray[np.uint8]:
    h, w = img.shape[:2]
    dy, dx = int(h * 0.08), int(w * 0.06)
    out = img[dy : h - dy, dx : w - dx].astype(np.float32) * 1.15 + 12
    return np.clip(out, 0, 255).astype(np.uint8)


def _mirror_letterbox(img: NDArray[np.uint8], _t: float) -> NDArray[np.uint8]:
    h, w = img.shape[:2]
    bar = h // 6
    out = np.zeros((h + 2 * bar, w, 3), np.uint8)
    out[bar : bar + h] = img[:, ::-1]
    cv2.putText(out, "FREE-MOVIEZ.example", (8, h + 2 * bar - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return out


def _copies(workdir: Path) -> list[tuple[str, str, Callable[[], str]]]:
    bbb = str(MEDIA / "big_buck_bunny_excerpt.mp4")
    intro = [f for _, f in synth.film_frames(seed=404, duration_s=8, fps=25, size=(320, 180))]
    return [
        ("cropped, brightened, 24->25 fps, with a foreign intro", "Big Buck Bunny",
         lambda: synth.make_copy(bbb, str(workdir / "copy_cropped_25fps.mp4"), start_s=20, duration_s=60,
                                 transform=_crop_bright, speed=25 / 24, fps=25, bit_rate=200_000, intro=intro)),
        ("mirrored, letterboxed, watermarked", "Big Buck Bunny",
         lambda: synth.make_copy(bbb, str(workdir / "copy_mirrored.mp4"), start_s=70, duration_s=40,
                                 transform=_mirror_letterbox, bit_rate=150_000)),
        ("an unrelated video (must match nothing)", "",
         lambda: synth.make_film(str(workdir / "unrelated.mp4"), seed=7, duration_s=30, size=(320, 180))),
    ]


def run_demo(workdir: str, echo: Callable[[str], None] = print) -> None:
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    if db.exists():
        db.unlink()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    Session = sessionmaker_for(engine)
    echo(f"Vigie demo: database {db}")

    echo("\n1. Catalogue: fingerprinting the reference films")
    for item in CATALOGUE:
        started = time.perf_counter()
        with Session.begin() as s:
            res = add_title(s, str(MEDIA / item["file"]), title=item["title"], year=item["year"],
                            alt_titles=item["alt_titles"], offers=item["offers"])
            r = res.reference
            echo(f"   title {res.title.id}: {res.title.title} ({item['year']}), {r.duration_s:.0f} s, "
                 f"{r.frame_count} frame hashes in {time.perf_counter() - started:.1f} s")

    echo("\n2. Pirate-style copies, made now from the references")
    copies = []
    for label, expected, make in _copies(out):
        path = make()
        copies.append((label, expected, path))
        echo(f"   {os.path.basename(path)}: {label}")

    echo("\n3. Identify each copy against the catalogue")
    ok = 0
    with Session.begin() as s:
        index = load_index(s)
        for label, expected, path in copies:
            res = identify(s, path, index=index)
            best = res["matches"][0] if res["matches"] else None
            got = best["title"] if best and best["decision"] == "confirmed" else ""
            ok += got == expected
            verdict = "as expected" if got == expected else "UNEXPECTED"
            if best:
                echo(f"   {os.path.basename(path)}: {best['decision'].upper()} {best['title']!r} "
                     f"score {best['score']:.2f}, {best['matched_s']:.0f} s matched, copy at "
                     f"{best['cand_start_s']:.0f} s = film at {best['ref_start_s']:.0f} s, speed "
                     f"{best['speed']:.3f} ({res['elapsed_s']:.2f} s) - {verdict}")
            else:
                echo(f"   {os.path.basename(path)}: no match ({res['elapsed_s']:.2f} s) - {verdict}")
    engine.dispose()
    echo(f"\nSummary: {ok} of {len(copies)} copies identified as expected. "
         f"Work files are in {out}/.")
