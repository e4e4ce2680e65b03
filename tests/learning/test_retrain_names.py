"""A retrain on a library whose folders carry the user's names (``genre_names``) learns the model's
genres, never a new genre per name: the real retrain command on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from genre_daemon.model.files import load_model
from genre_daemon.resources import default_model_dir
from test_retrain import chiptune, learning_tree, pytestmark  # noqa: F401  (pytestmark: the rehearsal set)


def test_a_retrain_learns_the_users_named_folders_as_the_genres_they_name(tmp_path: Path) -> None:
    shipped = load_model(default_model_dir())
    assert "hiphop" in shipped.genres
    tree = learning_tree(tmp_path, min_new_labels=4, min_per_genre=4)
    tree.settings["genre_names"] = {"hiphop": "Hip-Hop"}
    tree.write_config()
    for i in range(4):
        chiptune(tree.library / "Hip-Hop" / f"mine{i}.wav", i)  # the user's name for hiphop
        chiptune(tree.library / "hip hop" / f"alike{i}.wav", 10 + i)  # alike it: hiphop too
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "retrain", "--config", str(tree.config)],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["labels"] == 8 and summary["waiting_genres"] == {}
    assert "Hip-Hop" not in summary["genres"] and "hip hop" not in summary["genres"]
    assert "hiphop" in summary["genres"] and set(summary["genres"]) <= set(shipped.genres)
