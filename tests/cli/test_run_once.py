"""``run --dry-run`` and ``run --once`` on real audio in a real inbox, through the real command:
the dry run says where each loose file and album would go and changes nothing; ``--once`` then
files exactly there, with the daemon's journal (history, undo), and exits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, files_under, pytestmark  # noqa: F401  (pytestmark: needs the shipped model)


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path)
    yield t
    t.reap()


def snapshot(top: Path) -> dict[str, tuple[int, float]]:
    """Every file under ``top`` with its size and mtime."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in files_under(top)}


def plan_of(out: str) -> dict[str, str]:
    """source -> destination of the dry run's lines (review and quarantine named so)."""
    plan = {}
    for line in out.splitlines():
        if line.startswith("dry run:"):
            continue
        source, arrow, what = line.partition(" -> ")
        assert arrow, f"not a line of the plan: {line!r}"
        plan[source.removesuffix("/")] = what.split(" (")[0].removeprefix("quarantine: ").removesuffix("/")
    return plan


def test_dry_run_changes_nothing_and_once_files_where_it_said(tree: Tree) -> None:
    write_tone(tree.inbox / "song.wav", seconds=4.0, sr=22050, freq=300.0)
    for i in range(2):
        write_tone(tree.inbox / "Alb" / f"{i + 1:02}.wav", seconds=4.0, sr=22050, freq=500.0 + 90 * i)
    (tree.inbox / "broken.mp3").write_bytes(b"not audio at all" * 64)
    before = snapshot(tree.root)

    dry = tree.cli("run", "--dry-run")
    assert dry.returncode == 0, dry
    assert snapshot(tree.root) == before  # nothing moved, nothing recorded: no journal, no folder made
    assert not (tree.state / "journal.sqlite3").exists() and not tree.library.exists()
    plan = plan_of(dry.stdout)
    assert set(plan) == {str(tree.inbox / "song.wav"), str(tree.inbox / "Alb"), str(tree.inbox / "broken.mp3")}
    assert "would go" in dry.stderr and dry.stdout.splitlines()[-1].endswith("nothing was changed")

    once = tree.cli("run", "--once")
    assert once.returncode == 1, once  # broken.mp3 could not be read: some files failed
    assert once.stdout == f"run --once: {tree.inbox}: 3 placed, 0 to review, 1 quarantined\n"
    assert tree.in_inbox() == []
    for source, where in plan.items():
        if source.endswith("Alb"):
            assert sorted(p.name for p in Path(where).iterdir()) == ["01.wav", "02.wav"]
        else:
            assert os.path.isfile(where), (source, where)
    moves = {m["source"]: m["destination"] for m in tree.history()}
    assert moves[str(tree.inbox / "song.wav")] == plan[str(tree.inbox / "song.wav")]
    assert moves[str(tree.inbox / "Alb" / "01.wav")] == str(Path(plan[str(tree.inbox / "Alb")]) / "01.wav")

    again = tree.cli("run", "--once")  # nothing left: success, and it exits
    assert again.returncode == 0 and again.stdout.endswith(": 0 placed, 0 to review, 0 quarantined\n"), again


def test_once_logs_each_file_with_its_time_when_not_under_journald(tree: Tree) -> None:
    write_tone(tree.inbox / "song.wav", seconds=4.0, sr=22050, freq=300.0)
    once = tree.cli("run", "--once")
    assert once.returncode == 0, once
    placed = [line for line in once.stderr.splitlines() if "song.wav ->" in line]
    assert len(placed) == 1, once.stderr
    date, clock, level, _ = placed[0].split(" ", 3)
    assert len(date) == 10 and date[4] == "-" and clock.count(":") == 2 and level == "INFO", placed
    assert "\r" not in once.stderr and "file/s" not in once.stderr  # no progress bar off a terminal
