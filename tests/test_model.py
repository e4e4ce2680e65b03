"""The model directory format: round trip, and refusal of anything that is not safetensors."""

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
from genre_daemon.features import FeatureParams
from genre_daemon.model import Architecture, GenreModel, GenreNet, load_model, read_metadata, save_model

SMALL = Architecture(n_features=33, n_classes=3, conv_channels=8, hidden=8)


def _model(arch: Architecture = SMALL) -> GenreModel:
    torch.manual_seed(0)
    m = GenreModel(net=GenreNet(arch), genres=["a", "b", "c"][: arch.n_classes], feature_params=FeatureParams(),
                   window_frames=32, version="test-1", metrics={"accuracy": 0.5})
    m.set_normalisation(np.arange(33, dtype=np.float32), np.full(33, 2.0, dtype=np.float32))
    m.net.eval()
    return m


@pytest.mark.parametrize("arch", [
    SMALL,
    Architecture(n_features=33, n_classes=3, conv_channels=0, hidden=8, bidirectional=False, attention=False),
    Architecture(n_features=33, n_classes=3, conv_channels=8, hidden=8, lstm_layers=2, pool=1),
])
def test_round_trip_gives_identical_outputs(tmp_path: Path, arch: Architecture) -> None:
    m = _model(arch)
    save_model(m, tmp_path / "m")
    back = load_model(tmp_path / "m")
    x = torch.randn(4, 32, 33)
    with torch.inference_mode():
        assert torch.equal(m.net(x), back.net(x))
    assert back.genres == m.genres
    assert back.version == "test-1"
    assert back.metrics == {"accuracy": 0.5}
    assert back.window_frames == 32
    assert back.feature_params == FeatureParams()
    meta = read_metadata(tmp_path / "m")
    assert meta["normalisation"]["mean"][:3] == [0.0, 1.0, 2.0]
    assert meta["architecture"]["hidden"] == 8
    assert meta["created"]


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


@pytest.mark.parametrize("edit, message", [
    (lambda meta: meta.update(genres=["a", "b"]), "genres"),
    (lambda meta: meta.update(genres=["a", "a", "b"]), "duplicates"),
    (lambda meta: meta["architecture"].update(hidden=16), "do not fit"),
    (lambda meta: meta["architecture"].update(evil=1), "unknown architecture"),
    (lambda meta: meta.pop("features"), "malformed"),
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
    """Loading the shipped model in a fresh interpreter must not call pickle at all."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "models" / "default" / "model.json").is_file():
        pytest.skip("models/default not built yet")
    code = (
        "import pickle, sys\n"
        "def boom(*a, **k): raise SystemExit('pickle used')\n"
        "pickle.load = pickle.loads = pickle.Unpickler = boom\n"
        "from genre_daemon.model import load_model\n"
        f"m = load_model({str(root / 'models' / 'default')!r}); print(len(m.genres))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 2
