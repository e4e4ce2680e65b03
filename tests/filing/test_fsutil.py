"""genre_daemon.filing.fsutil.inside: strictly below a folder, judged on normalised absolute names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genre_daemon.filing.fsutil import inside


@pytest.mark.parametrize("path, folder", [
    ("/a/b/c", "/a/b"),
    ("/a/b/c/d.mp3", "/a/b"),
    ("/a/b/c", "/a/b/"),  # a trailing separator on the folder changes nothing
    ("/a/b//c", "/a//b"),  # nor doubled ones
    ("/a/b/./c", "/a/b"),
    ("/a/b/x/../c", "/a/b"),  # lexically /a/b/c
    ("/a", "/"),
])
def test_below_the_folder_is_inside(path: str, folder: str) -> None:
    assert inside(path, folder)
    assert inside(Path(path), Path(folder))  # str and Path alike


@pytest.mark.parametrize("path, folder", [
    ("/a/b", "/a/b"),  # the folder itself is not inside itself
    ("/a/b/", "/a/b"),
    ("/a/b/.", "/a/b"),
    ("/a/b/c/..", "/a/b"),
    ("/", "/"),
    ("/a/bc", "/a/b"),  # a sibling sharing a prefix of the name
    ("/a/bc/d", "/a/b"),
    ("/a", "/a/b"),  # above
    ("/x/y", "/a/b"),
    ("/a/b/../c", "/a/b"),  # .. escapes
    ("/a/b/../../etc/passwd", "/a/b"),
    ("/a/b/c/../../bc", "/a/b"),
])
def test_the_folder_itself_siblings_and_escapes_are_not_inside(path: str, folder: str) -> None:
    assert not inside(path, folder)
    assert not inside(Path(path), Path(folder))


def test_relative_paths_are_taken_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert inside("x/y.mp3", "x")
    assert inside("x", tmp_path) and inside(tmp_path / "x", ".")
    assert inside("x", os.curdir) and not inside(os.curdir, tmp_path)
    assert not inside("../x", ".")
    assert not inside("x", "x/.") and not inside("xy/z", "x")
