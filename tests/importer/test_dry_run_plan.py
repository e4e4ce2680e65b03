"""``import --dry-run`` prints what the run does (issue 21): the same placement decision, with the
duplicates policy (against the journal and within the folder), name clashes (the disk and the
names planned before), review, quarantine and albums; every planned line is where the run then
puts the file, and nothing else moves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, pytestmark  # noqa: F401  (pytestmark: needs the model)

def run_import(tree: Tree, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", "import", *args, "--config", str(tree.config),
                           "--workers", "1"], capture_output=True, text=True, timeout=600)


def plan_of(out: str) -> dict[str, str]:
    """source -> what the dry run says becomes of it (the text after `` -> ``)."""
    plan: dict[str, str] = {}
    for line in out.splitlines():
        if not line.startswith("dry run:"):
            source, arrow, what = line.partition(" -> ")
            assert arrow, f"a line that is not a plan: {line!r}"
            plan[source.removesuffix("/")] = what
    return plan


def said(tree: Tree, where: str | None, album: bool) -> str:
    """How the dry run says a file or album ends at ``where`` (None: it stays where it is)."""
    if where is None:
        return "stays ("
    kind = ("review: " if where.startswith(f"{tree.review}/") else
            "quarantine: " if where.startswith(f"{tree.quarantine}/") else "")
    return f"{kind}{where}{'/' if album else ''} ("


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, duplicates="quarantine", min_confidence=0.5,
             path_template="{artist|Unknown}/{album_folder}/{filename}")
    yield t
    t.reap()


def test_the_dry_run_plan_is_what_the_import_then_does(tree: Tree, tmp_path: Path) -> None:
    first = tmp_path / "first"
    write_tone(first / "song.wav", seconds=4.0, freq=300.0)
    for i in range(2):
        write_tone(first / "Alb" / f"{i + 1:02}.wav", seconds=4.0, freq=500.0 + 90 * i)
    done = run_import(tree, str(first))
    assert done.returncode == 0, done.stderr

    second = tmp_path / "second"
    write_tone(second / "song.wav", seconds=4.0, freq=300.0, amplitude=0.4)  # a clash: another song, same name
    shutil.copy(_placed(tree, "song.wav"), second / "copy.wav")  # a duplicate of a placed song
    write_tone(second / "x.wav", seconds=4.0, freq=800.0)
    shutil.copy(second / "x.wav", second / "y.wav")  # a duplicate of a song planned before it
    (second / "bad.mp3").write_bytes(b"not audio at all")
    (second / "Dup").mkdir()
    for i in range(2):
        write_tone(second / "Alb" / f"{i + 1:02}.wav", seconds=4.0, freq=650.0 + 70 * i)  # a folder clash
        shutil.copy(_placed(tree, f"{i + 1:02}.wav"), second / "Dup" / f"{i + 1:02}.wav")  # all duplicates
    before = sorted(p for p in tree.library.rglob("*"))

    dry = run_import(tree, str(second), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sorted(p for p in tree.library.rglob("*")) == before  # the dry run changed nothing
    plan = plan_of(dry.stdout)
    assert set(plan) == {str(second / n) for n in ("song.wav", "copy.wav", "x.wav", "y.wav", "bad.mp3", "Alb", "Dup")}
    assert plan[str(second / "copy.wav")].startswith(f"quarantine: {tree.quarantine}/copy.wav (duplicate of ")
    assert plan[str(second / "Dup")].startswith(f"quarantine: {tree.quarantine}/Dup/ (every track is already")
    assert " (2)" in dry.stdout  # a name taken on the disk: the run numbers it, the plan says so

    run = run_import(tree, str(second))
    assert run.returncode == 0, run.stderr
    moved = {str(h["source"]): str(h["destination"]) for h in tree.history()}
    for source, what in plan.items():
        if source.endswith(("Alb", "Dup")):
            folders = {str(Path(d).parent) for s, d in moved.items() if s.startswith(source + "/")}
            assert len(folders) == 1, (source, folders)  # the album whole
            assert what.startswith(said(tree, folders.pop(), album=True)), (source, what)
        else:
            assert what.startswith(said(tree, moved.get(source), album=False)), (source, what, moved.get(source))
            assert Path(source).exists() == (source not in moved)


def _placed(tree: Tree, name: str) -> Path:
    (found,) = [p for p in tree.library.rglob(name) if p.is_file()]
    return found
