"""What a model says of itself (issue 20 item 5): held-out figures stamped into a real model
directory (a copy of the shipped one), ``genre-daemon model list`` run as a real subprocess on it,
and the bench's ``--stamp`` command. No mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.errors import ModelError
from genre_daemon.learning.heldout import VALIDATION, entry, figures, stamp
from genre_daemon.model.files import load_model
from genre_daemon.resources import default_model_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = default_model_dir()
pytestmark = pytest.mark.skipif(not (SHIPPED / "model.json").is_file(), reason="no shipped model")

EMOTIFY = "emotify-dev, 60 songs of another collection (Magnatune: classical, pop, rock)"
GTZAN = "GTZAN artist-filtered test part, the 19 shared clips with audio"


def held_out() -> list[dict[str, object]]:
    return [entry(EMOTIFY, 60, 0.45, {"classical": 0.95, "pop": 0.1, "rock": 0.3}, False,
                  "benchmarks/bench_round3.py: genre-daemon evaluate --data ../shared/data/emotify-dev"),
            entry(GTZAN, 19, 0.8947, {"blues": 0.93, "pop": 0.5}, False, "benchmarks/bench_round3.py")]


def shipped_copy(tmp_path: Path, metrics: dict[str, object]) -> Path:
    """The shipped model, copied, with exactly ``metrics`` (independent of what is shipped today)."""
    d = tmp_path / "model"
    shutil.copytree(SHIPPED, d)
    meta = json.loads((d / "model.json").read_text(encoding="utf-8"))
    meta["metrics"] = metrics
    (d / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return d


def model_list(tmp_path: Path, model: Path, *extra: str) -> str:
    """``genre-daemon model list`` in a child process, with an empty state_dir: the shipped model
    (``$GENRE_DAEMON_MODEL``) is what it lists."""
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"inbox": str(tmp_path / "inbox"), "library": str(tmp_path / "library"),
                                  "state_dir": str(tmp_path / "state")}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "model", "list", "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                          env={**os.environ, "GENRE_DAEMON_MODEL": str(model)})
    assert done.returncode == 0, done.stderr
    return done.stdout


VALIDATION_ONLY = {"validation": {"accuracy": 0.9231, "n": 26}}


def test_model_list_shows_held_out_figures_naming_their_music_not_the_validation_split(tmp_path: Path) -> None:
    model = shipped_copy(tmp_path, VALIDATION_ONLY)
    version = load_model(model).version
    stamp(model, held_out())
    reloaded = load_model(model)  # the stamped model still loads, as the same version
    assert reloaded.version == version and reloaded.metrics["held_out"] == held_out()
    assert reloaded.metrics["validation"] == VALIDATION_ONLY["validation"], "the rest of metrics is kept"
    out = model_list(tmp_path, model)
    assert f"0.450 on {EMOTIFY} (n=60, artists not heard in training)" in out
    assert f"0.895 on {GTZAN} (n=19, artists not heard in training)" in out
    assert "0.923" not in out and "validation" not in out, "a same-artists figure is not shown beside held-out ones"
    rows = [json.loads(line) for line in model_list(tmp_path, model, "--json").splitlines()]
    assert rows[0]["metrics"]["held_out"] == held_out()


def test_model_list_labels_a_bare_validation_figure_as_same_artists(tmp_path: Path) -> None:
    out = model_list(tmp_path, shipped_copy(tmp_path, VALIDATION_ONLY))
    assert f"0.923 on {VALIDATION} (n=26, artists heard in training)" in out


def test_a_bad_figure_is_refused_with_one_reason_and_the_model_is_left_as_it_was(tmp_path: Path) -> None:
    model = shipped_copy(tmp_path, VALIDATION_ONLY)
    before = (model / "model.json").read_bytes()
    good = held_out()[0]
    for bad, reason in [({**good, "measured_by": "bench --work /home/me/bench"}, "path of this machine"),
                        ({**good, "accuracy": 1.2}, "accuracy must be in"),
                        ({**good, "could_have_heard_artists": "no"}, "true or false"),
                        ({k: v for k, v in good.items() if k != "test_music"}, "lacks test_music"),
                        ({**good, "per_genre": {"rock": -0.1}}, "per_genre")]:
        with pytest.raises(ModelError, match=reason) as caught:
            stamp(model, [bad])
        assert str(model / "model.json") in str(caught.value) and "\n" not in str(caught.value)
    assert (model / "model.json").read_bytes() == before
    assert figures({"held_out": [{**good, "accuracy": float("nan")}], **VALIDATION_ONLY})[0].test_music == VALIDATION


def test_the_bench_stamps_the_figures_of_its_results(tmp_path: Path) -> None:
    """``bench_round3.py --stamp MODEL_DIR`` writes the ``held_out`` of its results JSON, measuring nothing."""
    model = shipped_copy(tmp_path, VALIDATION_ONLY)
    results = tmp_path / "results-round3.txt"
    results.with_suffix(".json").write_text(json.dumps({"held_out": held_out()}), encoding="utf-8")
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "benchmarks" / "bench_round3.py"), "--stamp", str(model),
                           "--out", str(results)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_model(model).metrics["held_out"] == held_out()
