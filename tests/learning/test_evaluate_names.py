"""``evaluate --config``: data folders read by the user's names (``genre_names``, or alike a
genre's own name), on real GTZAN clips with the shipped model; folders that name no genre are an
error naming them, never "accuracy 0 on 0 files"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from genre_daemon.cli import main
from genre_daemon.resources import default_model_dir

CLIPS = 3


def excerpts(gtzan: Path, data: Path, layout: dict[str, str]) -> Path:
    """``layout``: {folder name: GTZAN genre}; 10 s of the first clips of each (kept short)."""
    for folder, genre in layout.items():
        (data / folder).mkdir(parents=True)
        for clip in sorted((gtzan / genre).glob("*.flac"))[:CLIPS]:
            y, sr = sf.read(clip, dtype="float32", frames=10 * 22050, start=10 * 22050)
            sf.write(data / folder / clip.name, y, sr)
    return data


def config(tmp_path: Path, **names: str) -> Path:
    path = tmp_path / "config.yaml"
    folders = {k: str(tmp_path / k) for k in ("inbox", "library", "state")}
    path.write_text(json.dumps({"inbox": folders["inbox"], "library": folders["library"],
                                "review_dir": str(tmp_path / "library" / "_review"),
                                "quarantine_dir": str(tmp_path / "inbox" / ".q"), "state_dir": folders["state"],
                                "model": str(default_model_dir()), "genre_names": names}))
    return path


def evaluate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["evaluate", "--workers", "1", "--json", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out.strip() else {}, out.err


def test_user_named_folders_score_as_the_genres_they_name(gtzan_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    own = excerpts(gtzan_dir, tmp_path / "own", {"hiphop": "hiphop", "classical": "classical"})
    users = excerpts(gtzan_dir, tmp_path / "users", {"Hip-Hop": "hiphop", "Classical": "classical"})
    code, baseline, _ = evaluate(capsys, "--data", str(own))
    assert code == 0 and baseline["n"] == 2 * CLIPS
    cfg = config(tmp_path, hiphop="Hip-Hop", classical="Classical")
    code, named, _ = evaluate(capsys, "--data", str(users), "--config", str(cfg))
    assert code == 0, named
    assert named["n"] == 2 * CLIPS and named["accuracy"] == baseline["accuracy"] > 0.5
    assert named["per_genre"]["Hip-Hop"]["n"] == CLIPS and named["per_genre"]["Classical"]["n"] == CLIPS
    assert named["per_genre"]["Hip-Hop"]["recall"] == baseline["per_genre"]["hiphop"]["recall"]
    assert "hiphop" not in named["genres"] and "Hip-Hop" in named["genres"]
    assert named["folders"] == {"Classical": "Classical", "Hip-Hop": "Hip-Hop"}
    # With no mapping, the same folders are still read as the genres they are alike.
    code, alike, _ = evaluate(capsys, "--data", str(users))
    assert code == 0 and alike["n"] == 2 * CLIPS and alike["accuracy"] == baseline["accuracy"]


def test_folders_that_name_no_genre_are_an_error_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import write_tone

    data = tmp_path / "data"
    write_tone(data / "Tunes" / "a.wav", seconds=1.0)
    write_tone(data / "Stuff" / "b.wav", seconds=1.0)
    cfg = config(tmp_path, hiphop="Hip-Hop")
    code, result, err = evaluate(capsys, "--data", str(data), "--config", str(cfg))
    assert code == 2 and result == {}
    [line] = err.strip().splitlines()
    assert "'Stuff', 'Tunes'" in line and "no sub-folder names a genre" in line
    assert "Hip-Hop" in line and "classical" in line  # the model's genres, by the user's names


def test_only_the_folders_that_name_a_genre_are_scored_the_rest_said(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import write_tone

    data = tmp_path / "data"
    write_tone(data / "Hip Hop" / "a.wav", seconds=3.0)
    write_tone(data / "Tunes" / "b.wav", seconds=1.0)
    code, result, err = evaluate(capsys, "--data", str(data))
    assert code == 0 and result["n"] == 1 and result["skipped_unknown_genres"] == {"Tunes": 1}
    assert result["per_genre"]["hiphop"]["n"] == 1
    assert "skipped 'Tunes' (1 files)" in err
