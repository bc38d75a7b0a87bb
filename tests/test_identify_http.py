"""identify over HTTP against a real local server that counts the bytes it served."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fingerprint.extract import fingerprint_query, fingerprint_reference, index_entries
from fingerprint.index import HashIndex
from fingerprint.matching import match
from demoweb import synth
from foundation.errors import MediaError
from stages.identify import identify_source
from demoweb.rangeserver import RangeServer


@pytest.fixture(scope="module")
def long_film(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("long")
    # Long enough to be sampled by seeking (REMOTE_SEEK_MIN_S), with a keyframe every
    # 2 s as streaming encodes have.
    path = str(d / "long.mp4")
    frames = synth.iter_film_frames(seed=31, duration_s=150, fps=10, size=(480, 270))
    with synth.VideoWriter(path, 10, bit_rate=1_500_000) as w:
        w.gop = 20
        for _, f in frames:
            w.write(f)
    return path


def test_full_length_remote_copy_reads_a_small_share(long_film: str) -> None:
    ref = fingerprint_reference(long_film)
    index = HashIndex.build(index_entries(1, ref))
    with RangeServer(str(Path(long_film).parent)) as srv:
        fp = fingerprint_query(srv.url("long.mp4"))
        share = srv.bytes_sent / os.path.getsize(long_film)
    res = match(fp, index, {1: 1})
    assert res and res[0].decision == "confirmed" and abs(res[0].offset_s) <= 1.0
    assert share < 0.5, share


def test_remote_excerpt_matches(media: dict[str, str], tmp_path: Path) -> None:
    ref = fingerprint_reference(media["film_a"])
    index = HashIndex.build(index_entries(1, ref))
    shutil.copy(media["copy_a"], tmp_path / "c.mp4")
    with RangeServer(str(tmp_path)) as srv:
        res = identify_source(srv.url("c.mp4"), index, {1: 1}, fingerprint=fingerprint_query)[1]
        assert srv.bytes_sent > 0
    assert res and res[0].decision == "confirmed" and abs(res[0].offset_s - 20) <= 1.0


def test_remote_playlist_cannot_open_local_files(tmp_path: Path) -> None:
    (tmp_path / "evil.m3u8").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    with RangeServer(str(tmp_path)) as srv, pytest.raises(MediaError):
        fingerprint_query(srv.url("evil.m3u8"))
