"""The model directory format (3; format 2 still served): round trip, the round-1 refusal, and
refusal of anything that is not safetensors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_daemon.errors import ModelError
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd
from genre_daemon.model.files import (
    FORMAT_VERSION,
    Architecture,
    GenreModel,
    GenreNet,
    load_model,
    parameter_count,
    read_metadata,
    save_model,
)

FRONTEND = FrontEnd.from_directory(DEFAULT_INPUTS)
SMALL = Architecture(n_classes=3, hidden=8)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _model(arch: Architecture = SMALL) -> GenreModel:
    torch.manual_seed(0)
    m = GenreModel(net=GenreNet(arch), genres=["a", "b", "c"][: arch.n_classes],
                   frontend=FrontEnd.from_directory(arch.inputs), patches=5,
                   version="test-1", metrics={"accuracy": 0.5})
    d = arch.n_inputs
    m.set_normalisation(np.arange(d, dtype=np.float32), np.full(d, 2.0, dtype=np.float32))
    m.net.eval()
    return m


@pytest.mark.parametrize("arch", [
    SMALL,
    Architecture(n_classes=3, hidden=8, bidirectional=False, pooling="mean", skip_mean=False),
    Architecture(n_classes=3, hidden=8, lstm_layers=2, pooling="last", head="mlp", head_hidden=16),
    Architecture(inputs=("msd_tags", "mtt_tags", "mtt_penultimate"), n_classes=3, hidden=8, input_dropout=0.2),
])
def test_round_trip_gives_identical_outputs(tmp_path: Path, arch: Architecture) -> None:
    m = _model(arch)
    save_model(m, tmp_path / "m")
    back = load_model(tmp_path / "m")
    for patches in (1, 3, 8):  # any song length
        x = torch.randn(4, patches, arch.n_inputs)
        with torch.inference_mode():
            assert torch.equal(m.net(x), back.net(x))
    assert back.genres == m.genres and back.inputs == arch.inputs
    assert back.version == "test-1" and back.metrics == {"accuracy": 0.5}
    assert back.patches == 5 and back.frontend == m.frontend
    meta = read_metadata(tmp_path / "m")
    assert meta["format_version"] == FORMAT_VERSION == 3
    assert meta["normalisation"]["mean"][:3] == [0.0, 1.0, 2.0]
    assert meta["architecture"]["inputs"] == list(arch.inputs)
    assert meta["frontend"]["licence"] == "ISC" and meta["frontend"]["wheel"].startswith("musicnn-0.1.0")
    assert set(meta["frontend"]["nets"]) == {i.split("_")[0] for i in arch.inputs}
    assert meta["created"]


@pytest.mark.parametrize("arch", [
    SMALL,
    Architecture(n_classes=3, hidden=8, pooling="attention", skip_mean=True),
    Architecture(n_classes=3, hidden=8, pooling="last", lstm_layers=2),
    Architecture(n_classes=3, hidden=8, pooling="last", bidirectional=False),
])
def test_a_padded_batch_scores_each_song_as_it_alone_would(arch: Architecture) -> None:
    """Training batches songs of different lengths (zero-padded); the padding must change nothing."""
    net = _model(arch).net
    torch.manual_seed(1)
    songs = [torch.randn(n, arch.n_inputs) for n in (1, 4, 2, 4)]
    batch = torch.zeros(4, 4, arch.n_inputs)
    for i, song in enumerate(songs):
        batch[i, :len(song)] = song
    with torch.inference_mode():
        together = net(batch, torch.tensor([len(s) for s in songs]))
        alone = torch.cat([net(s[None]) for s in songs])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_the_input_vector_length_follows_the_inputs() -> None:
    assert Architecture().n_inputs == 250
    assert Architecture(inputs=("msd_penultimate", "mtt_penultimate", "msd_tags", "mtt_tags")).n_inputs == 500
    assert Architecture(inputs=("msd_pooled",)).n_inputs == 1506
    small = GenreNet(Architecture(n_classes=10))
    assert 20_000 < parameter_count(small) < 200_000  # a head, not a second front end


@pytest.mark.parametrize("bad, message", [
    ({"inputs": ("msd_penultimate", "msd_penultimate")}, "repeat"),
    ({"inputs": ("spectrogram",)}, "unknown input"),
    ({"inputs": ()}, "at least one input"),
    ({"pooling": "max"}, "pooling"),
    ({"head": "transformer"}, "head"),
    ({"hidden": 0}, "hidden"),
    ({"dropout": 1.0}, "dropout"),
])
def test_impossible_architectures_are_refused(bad: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        Architecture(**bad)


def test_directory_holds_only_safetensors_and_json(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]


class _Boom:
    """Unpickling this would create a marker file: proof that a pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_pickle_in_place_of_weights_is_refused_never_executed(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m")
    marker = tmp_path / "pwned"
    (tmp_path / "m" / "weights.safetensors").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_torch_save_file_in_place_of_weights_is_refused(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m")
    torch.save(_model().net.state_dict(), tmp_path / "m" / "weights.safetensors")
    with pytest.raises(ModelError, match="safetensors"):
        load_model(tmp_path / "m")


def _round1(directory: Path) -> Path:
    """A round-1 model directory as the previous release wrote it: format 1, librosa features,
    a conv/LSTM over 130-frame windows (the weights file is a real safetensors file)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True)
    meta = {"format_version": 1, "version": "default-4b0d451d8a", "created": "2026-11-26T02:25:52+00:00",
            "architecture": {"n_features": 33, "n_classes": 2, "conv_channels": 0, "hidden": 32, "stats_pool": True},
            "genres": ["blues", "jazz"], "window_frames": 130, "noise_floor_db": -40.0,
            "features": {"sample_rate": 22050, "n_fft": 2048, "hop_length": 512, "n_mfcc": 13, "n_mels": 128},
            "normalisation": {"mean": [0.0] * 33, "std": [1.0] * 33}}
    (directory / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    save_file({"feat_mean": torch.zeros(33), "feat_std": torch.ones(33)}, str(directory / "weights.safetensors"))
    return directory


def test_a_round1_model_is_refused_saying_what_it_is_and_what_to_do(tmp_path: Path) -> None:
    old = _round1(tmp_path / "old model")
    with pytest.raises(ModelError) as info:
        load_model(old)
    text = str(info.value)
    assert str(old) in text and "round-1 model" in text and "format_version 1" in text
    assert "genre-daemon train" in text and "shipped model" in text


def test_a_round1_model_is_refused_by_classify_with_exit_status_2(tmp_path: Path) -> None:
    from conftest import write_tone

    old = _round1(tmp_path / "old")
    song = write_tone(tmp_path / "a.wav", 4.0)
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "classify", "--model", str(old), str(song)],
                         capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert out.returncode == 2 and "round-1 model" in out.stderr and str(old) in out.stderr, out.stderr


def test_an_unknown_future_format_is_refused(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = 4
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format_version 4.*reads 2 and 3"):
        load_model(tmp_path / "m")


def test_a_round2_model_is_served_as_it_is_and_the_log_says_so_once(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Format 2 (round 2: musicnn only) loads without a prior, and the log says so once per model."""
    m = _model()
    save_model(m, tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = 2
    path.write_text(json.dumps(meta))
    with caplog.at_level("INFO", logger="genre_daemon.model.files"):
        for _ in range(3):
            back = load_model(tmp_path / "m")
    assert back.prior is None and back.genres == m.genres == back.learned
    said = [r.getMessage() for r in caplog.records if "format 2" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path / "m") in said[0] and "without AudioSet" in said[0], caplog.text


@pytest.mark.parametrize("edit, message", [
    (lambda meta: meta.update(genres=["a", "b"]), "genres"),
    (lambda meta: meta.update(genres=["a", "a", "b"]), "duplicates"),
    (lambda meta: meta["architecture"].update(hidden=16), "do not fit"),
    (lambda meta: meta["architecture"].update(inputs=["msd_penultimate"]), "do not fit"),
    (lambda meta: meta["architecture"].update(evil=1), "unknown architecture"),
    (lambda meta: meta["architecture"].update(head="gru"), "head"),
    (lambda meta: meta.pop("frontend"), "malformed"),
    (lambda meta: meta["frontend"].update(patch_frames=100), "patch_frames"),
    (lambda meta: meta["frontend"]["nets"]["msd"].update(sha256="x"), "sha256"),
    (lambda meta: meta["architecture"].update(inputs=["mtt_penultimate", "mtt_tags"]), "does not name"),
    (lambda meta: meta["patches"].update(per_song=0), "patches per song"),
])
def test_inconsistent_metadata_is_refused(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    save_model(_model(), tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        load_model(tmp_path / "m")


def test_missing_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        load_model(tmp_path / "nothing")


def test_truncated_weights_are_refused(tmp_path: Path) -> None:
    save_model(_model(), tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(ModelError):
        load_model(tmp_path / "m")


def test_shipped_model_loads_without_pickle_module_use(tmp_path: Path) -> None:
    """Loading the shipped model and its front end in a fresh interpreter must not call pickle."""
    if not (PROJECT_ROOT / "models" / "default" / "model.json").is_file():
        pytest.skip("models/default not built yet")
    code = (
        "import pickle, sys\n"
        "def boom(*a, **k): raise SystemExit('pickle used')\n"
        "pickle.load = pickle.loads = pickle.Unpickler = boom\n"
        "from genre_daemon.model.inference import Classifier\n"
        f"c = Classifier.from_dir({str(PROJECT_ROOT / 'models' / 'default')!r}); print(len(c.model.genres))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 2


def test_the_shipped_model_is_format_3_on_the_shipped_front_ends() -> None:
    from genre_daemon.model.tagging import tagger_identity

    model = load_model(PROJECT_ROOT / "models" / "default")
    assert read_metadata(PROJECT_ROOT / "models" / "default")["format_version"] == 3
    assert model.frontend == FrontEnd.from_directory(model.inputs)  # the sha256 of models/musicnn/*
    assert model.prior is not None and model.prior.frontend["weights_sha256"] == tagger_identity()["weights_sha256"]
    assert "electronic" in model.genres and model.learned == model.genres[:model.net.arch.n_classes]
    assert model.training["data"]["clips"] >= 100
    assert "emotify" not in json.dumps(model.training)  # measured on, never trained on
