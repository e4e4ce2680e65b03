"""train -> evaluate -> classify on a tiny synthetic set, through the real command line; and on a few
real clips, the round-3 way (msd_tags a patch a second, fused with AudioSet's genre prior)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre_daemon.cli import main
from genre_daemon.learning.dataset import trained_augment
from genre_daemon.model.files import load_model, read_metadata

SR = 22050


def _synthetic_genre(kind: str, seed: int, seconds: float = 3.5) -> np.ndarray:
    """Three easily told apart 'genres': low drones, high beeps, noise bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    if kind == "drone":
        f = rng.uniform(80, 160)
        y = np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * 1.5 * f * t)
    elif kind == "beeps":
        f = rng.uniform(2000, 4000)
        y = np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * rng.uniform(3, 6) * t) > 0)
    else:
        y = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * rng.uniform(1, 2) * t) > 0.3)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    for g, kind in enumerate(["drone", "beeps", "noise"]):
        (root / kind).mkdir()
        for i in range(6):
            sf.write(root / kind / f"{kind}{i}.wav", _synthetic_genre(kind, 100 * g + i), SR)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for the module: the second training reads its vectors from it."""
    return tmp_path_factory.mktemp("cache")


def _train(data: Path, out: Path, cache: Path) -> int:
    return main(["train", "--data", str(data), "--out", str(out), "--epochs", "80", "--patches", "4",
                 "--inputs", "msd_penultimate,msd_tags,mtt_tags", "--hidden", "16", "--head", "mlp",
                 "--augment", "sr11k", "--seed", "1", "--threads", "1", "--cache", str(cache),
                 "--no-prior"])  # made-up genres: AudioSet has no class to calibrate a prior on


@pytest.fixture(scope="module")
def trained(synth_data: Path, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    assert _train(synth_data, out, cache_dir) == 0
    return out


def test_train_writes_a_complete_model_directory(trained: Path) -> None:
    meta = read_metadata(trained)
    assert meta["format_version"] == 3 and "prior" not in meta
    assert meta["genres"] == ["beeps", "drone", "noise"]
    assert meta["patches"]["per_song"] == 4
    assert meta["architecture"]["inputs"] == ["msd_penultimate", "msd_tags", "mtt_tags"]
    assert meta["architecture"]["head"] == "mlp" and meta["architecture"]["hidden"] == 16
    assert set(meta["frontend"]["nets"]) == {"msd", "mtt"}
    assert meta["training"]["data"]["clips"] == 18
    assert trained_augment(meta["training"]) == ["sr11k"]  # what a retrain embeds its labels with
    assert "validation" in meta["metrics"]
    assert len(meta["normalisation"]["mean"]) == 300
    assert meta["version"].startswith("m-")


def test_train_is_reproducible_with_seed(synth_data: Path, trained: Path, tmp_path: Path, cache_dir: Path) -> None:
    again = tmp_path / "m"
    assert _train(synth_data, again, cache_dir) == 0  # from the cache: same vectors, same weights
    assert read_metadata(again)["version"].split("-")[1] == read_metadata(trained)["version"].split("-")[1]


def test_evaluate_json_and_plot(trained: Path, synth_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cm.png"
    assert main(["evaluate", "--data", str(synth_data), "--model", str(trained), "--json", "--plot", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"accuracy", "n", "per_genre", "confusion", "genres"}
    assert result["n"] == 18
    assert np.asarray(result["confusion"]).sum() == 18
    assert set(result["per_genre"]["drone"]) == {"precision", "recall", "n"}
    assert result["accuracy"] >= 0.9, result  # three trivially separable classes
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classify_json_and_exit_status(trained: Path, synth_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = synth_data / "drone" / "drone0.wav"
    assert main(["classify", "--model", str(trained), "--json", str(good)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["path"] == str(good)
    assert row["genre"] == "drone"
    assert set(row["scores"]) == {"beeps", "drone", "noise"}
    assert abs(sum(row["scores"].values()) - 1) < 1e-3
    assert row["model"] == load_model(trained).version

    bad = tmp_path / "broken.mp3"
    bad.write_text("not audio")
    assert main(["classify", "--model", str(trained), "--json", str(good), str(bad)]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["genre"] == "drone"
    assert lines[1]["path"] == str(bad) and "error" in lines[1] and lines[1]["error"]


def test_classify_table_names_each_file(trained: Path, synth_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(synth_data / "noise" / "noise1.wav"), str(synth_data / "beeps" / "beeps2.wav")]
    assert main(["classify", "--model", str(trained), *files]) == 0
    out = capsys.readouterr().out
    assert "noise1.wav" in out and "beeps2.wav" in out
    assert not out.lstrip().startswith("{")


def test_console_script_runs_as_a_subprocess(trained: Path, synth_data: Path) -> None:
    exe = Path(sys.executable).with_name("genre-daemon")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]
    out = subprocess.run([*cmd, "classify", "--model", str(trained), "--json", str(synth_data / "beeps" / "beeps0.wav")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["genre"] == "beeps"


def test_missing_model_is_a_clear_error(tmp_path: Path, synth_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--model", str(tmp_path / "nope"), str(synth_data / "beeps" / "beeps0.wav")]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_train_evaluate_classify_on_real_music_with_the_prior(gtzan_dir: Path, tmp_path: Path) -> None:
    """Real clips of three genres (10 s excerpts, to keep it quick), a few epochs, the round-3
    recipe (msd_tags every second; AudioSet's prior fitted on the clips, electronic from it alone):
    the whole path runs on real audio, the model beats chance on the clips it trained on, and
    classify scores the prior-only genre too."""
    data = tmp_path / "data"
    for genre in ("classical", "metal", "reggae"):
        (data / genre).mkdir(parents=True)
        for clip in sorted((gtzan_dir / genre).glob("*.flac"))[:3]:
            y, sr = sf.read(clip, dtype="float32", frames=10 * 22050, start=10 * 22050)
            sf.write(data / genre / clip.name, y, sr)
    out = tmp_path / "m"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "6", "--hidden", "16",
                 "--patches", "3", "--augment", "", "--seed", "0", "--threads", "1", "--inputs", "msd_tags",
                 "--hop-frames", "63"]) == 0
    meta = read_metadata(out)
    assert meta["format_version"] == 3 and meta["prior"]["prior_only"] == ["electronic"]
    assert meta["genres"] == ["classical", "metal", "reggae", "electronic"] and meta["architecture"]["n_classes"] == 3
    result = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "evaluate", "--data", str(data),
                             "--model", str(out), "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 9
    assert report["accuracy"] > 1 / 3
    song = next((data / "metal").iterdir())
    out_json = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "classify", "--model", str(out), "--json",
                               str(song)], capture_output=True, text=True, timeout=300)
    assert out_json.returncode == 0, out_json.stderr
    row = json.loads(out_json.stdout)
    assert set(row["scores"]) == set(meta["genres"]) and abs(sum(row["scores"].values()) - 1) < 1e-3


@pytest.mark.parametrize("args, message", [
    (["--augment", "sr16k"], "'sr16k' would copy the clean signal"),
    (["--inputs", "msd_penultimate,spectrogram"], "unknown input 'spectrogram'"),
])
def test_train_refuses_bad_options_before_decoding_anything(synth_data: Path, tmp_path: Path, args: list[str],
                                                            message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(synth_data), "--out", str(tmp_path / "m"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
