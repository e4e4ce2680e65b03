"""The front end as the model sees it: identity by sha256, refusal of other weights, patch vectors
that are musicnn's own outputs, and where patches are taken."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from genre_daemon.audio import decode as audio
from genre_daemon.errors import ModelError
from genre_daemon.model.frontend import (
    DEFAULT_INPUTS,
    PATCH_FRAMES,
    PATCH_SECONDS,
    FrontEnd,
    cut_patches,
    hop_starts,
    input_dim,
    load_embedder,
    spread_starts,
)
from genre_daemon.model.musicnn import melspec
from genre_daemon.resources import musicnn_dir
from genre_daemon.model.musicnn.inference import embed
from genre_daemon.model.musicnn.weights import load_musicnn

MUSICNN = musicnn_dir()


def test_identity_is_the_sha256_of_the_shipped_weights_and_survives_model_json() -> None:
    prov = json.loads((MUSICNN / "provenance.json").read_text())
    fe = FrontEnd.from_directory(("msd_penultimate", "mtt_tags"))
    assert fe.sha256 == {w: prov["models"][w]["safetensors_sha256"] for w in ("msd", "mtt")}
    assert fe.licence == "ISC" and fe.wheel_sha256 == prov["wheel_sha256"]
    assert FrontEnd.from_dict(json.loads(json.dumps(fe.to_dict()))) == fe
    assert FrontEnd.from_directory(DEFAULT_INPUTS).sha256.keys() == {"msd"}  # only the nets the inputs need
    assert PATCH_SECONDS == pytest.approx(2.976)


def test_weights_other_than_the_models_are_refused_naming_the_file(tmp_path: Path) -> None:
    fe = FrontEnd.from_directory(DEFAULT_INPUTS)
    other = tmp_path / "musicnn"
    shutil.copytree(MUSICNN, other)
    data = bytearray((other / "msd.safetensors").read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (other / "msd.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"msd\.safetensors: sha256 .* not the msd front end"):
        load_embedder(fe, DEFAULT_INPUTS, other)


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_in_place_of_the_front_end_weights_is_refused_never_executed(tmp_path: Path) -> None:
    other = tmp_path / "musicnn"
    shutil.copytree(MUSICNN, other)
    marker = tmp_path / "pwned"
    (other / "msd.safetensors").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ModelError, match="msd.safetensors"):
        load_embedder(FrontEnd.from_directory(DEFAULT_INPUTS), DEFAULT_INPUTS, other)
    assert not marker.exists()
    with pytest.raises(ModelError, match="msd.safetensors"):  # nor when the model names this very file
        load_embedder(FrontEnd.from_directory(DEFAULT_INPUTS, other), DEFAULT_INPUTS, other)
    assert not marker.exists()


def test_missing_weights_say_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="GENRE_DAEMON_MUSICNN"):
        load_embedder(FrontEnd.from_directory(DEFAULT_INPUTS), DEFAULT_INPUTS, tmp_path)


def test_patch_vectors_are_musicnns_outputs_in_input_order(gtzan_files: list[Path]) -> None:
    metal = next(f for f in gtzan_files if f.parent.name == "metal")
    y = audio.load(metal, sr=16000, duration=8.0)
    patches = melspec.patches(melspec.log_mel(y))
    inputs = ("mtt_tags", "msd_penultimate", "msd_tags")
    emb = load_embedder(FrontEnd.from_directory(inputs), inputs)
    got = emb.patch_vectors(patches)
    assert got.shape == (2, input_dim(inputs)) == (2, 300) and got.dtype == np.float32
    msd_pen, msd_tags = embed(load_musicnn(MUSICNN, "msd"), patches)
    _, mtt_tags = embed(load_musicnn(MUSICNN, "mtt"), patches)
    np.testing.assert_allclose(got, np.concatenate([mtt_tags, msd_pen, msd_tags], axis=1), atol=1e-6)
    # The tags of a real clip are not noise: a metal clip is tagged metal among the MSD net's top five.
    top = np.argsort(-msd_tags.mean(axis=0))[:5]
    names = [load_musicnn(MUSICNN, "msd").tags_labels[i].lower() for i in top]
    assert any("metal" in n for n in names), names


def test_audio_vectors_follow_the_hop() -> None:
    emb = load_embedder(FrontEnd.from_directory(DEFAULT_INPUTS), DEFAULT_INPUTS)
    y = (0.1 * np.random.default_rng(0).standard_normal(16000 * 6)).astype(np.float32)
    n_frames = melspec.log_mel(y).shape[0]
    assert emb.audio_vectors(y, 94).shape == (len(hop_starts(n_frames, 94)), 250)
    assert len(hop_starts(n_frames, 94)) == 1 + (n_frames - PATCH_FRAMES) // 94


@pytest.mark.parametrize("n_frames, count", [(100, 8), (187, 8), (188, 8), (1876, 8), (1876, 1), (60_000, 8),
                                             (400, 8)])
def test_spread_starts_cover_the_song_without_leaving_it(n_frames: int, count: int) -> None:
    starts = spread_starts(n_frames, count)
    assert 1 <= len(starts) <= count and starts == sorted(set(starts))
    assert all(0 <= s and (s + PATCH_FRAMES <= n_frames or n_frames < PATCH_FRAMES) for s in starts)
    if n_frames > 4 * PATCH_FRAMES and count > 1:
        assert starts[0] == 0 and starts[-1] == n_frames - PATCH_FRAMES  # first and last patch at the ends
        assert len(starts) == count
    assert all(b - a >= PATCH_FRAMES // 4 for a, b in zip(starts, starts[1:]))  # never mostly the same audio


def test_cut_patches_tiles_a_short_log_mel() -> None:
    logmel = np.arange(50 * 96, dtype=np.float32).reshape(50, 96)
    p = cut_patches(logmel, [0])
    assert p.shape == (1, PATCH_FRAMES, 96)
    np.testing.assert_array_equal(p[0, 50:100], logmel)


def test_the_package_ships_the_front_end_and_its_weights() -> None:
    """An installed genre-daemon finds musicnn: the subpackage is packaged and models/musicnn/*
    ship inside the package (genre_daemon.resources.SHIPPED, which musicnn_dir looks in)."""
    from genre_daemon.resources import SHIPPED

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[2]
    conf = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "genre_daemon.*" in conf["packages"]["find"]["include"]
    assert sorted(SHIPPED["models/musicnn"]) == sorted(p.name for p in (root / "models" / "musicnn").iterdir())
