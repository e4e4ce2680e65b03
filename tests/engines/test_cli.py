"""``classify`` on a directory through a two-worker pool prints, file by file, exactly what the
default ``classify`` (one worker, in process) prints for the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genre_daemon.cli import main

from .conftest import bad_files, clips


def test_a_directory_through_two_workers_equals_classify_file_by_file(gtzan_dir: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "music"
    for i, p in enumerate(clips(gtzan_dir, 6)):
        dest = folder / ("deep/er" if i % 2 else "") / Path(p).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(p)
    bad = bad_files(folder / "bad", clips(gtzan_dir, 1)[0])
    (folder / "notes.txt").write_text("not audio, not an audio extension")
    files = sorted(str(p) for p in folder.rglob("*.flac"))
    assert len(files) == 9
    assert main(["classify", "--json", *files]) == 1
    one = capsys.readouterr().out.splitlines()
    assert main(["classify", "--json", "--engine", "local", "--workers", "2", str(folder)]) == 1
    pooled = capsys.readouterr().out.splitlines()
    assert sorted(pooled) == sorted(one) and len(one) == 9  # the same lines, byte for byte
    errors = {d["path"]: d["error"] for d in map(json.loads, one) if "error" in d}
    assert sorted(errors) == sorted(bad)
