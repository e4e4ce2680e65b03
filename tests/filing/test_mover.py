"""genre_daemon.filing.mover on real files: tmp_path, /dev/shm for a second filesystem, a 1 MB tmpfs
for a full disk, and child processes SIGKILLed at every step of a move. No mocks, except one
fault injection where no real filesystem without hard links is at hand (marked below).

What is checked is what the daemon promises its user: a file is never overwritten unless asked,
never lost, never left partial under a real name, never moved through or as a symlink.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from genre_daemon.filing import mover
from genre_daemon.errors import MoveError
from genre_daemon.filing.destination import destination
from genre_daemon.filing.mover import (
    PARTIAL_MARKER,
    REASON_SUFFIX,
    MoveResult,
    move,
    quarantine,
)
from genre_daemon.filing.recovery import settle, settle_interrupted

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The steps each kind of move takes, in order (the hook sees exactly these).
STEPS = {
    ("same", "rename"): ["start", "linked", "source_removed"],
    ("same", "overwrite"): ["start", "linked", "placed", "source_removed"],
    ("cross", "rename"): ["start", "temp_written", "temp_synced", "placed", "temp_removed",
                          "source_removed"],
    ("cross", "overwrite"): ["start", "temp_written", "temp_synced", "placed", "source_removed"],
}
# The first step after which the file is complete under its final name.
PLACED_AT = {"same": {"rename": "linked", "overwrite": "placed"},
             "cross": {"rename": "placed", "overwrite": "placed"}}


# ---------------------------------------------------------------------------------------------
# Helpers and fixtures.


def payload(n: int = 50_000, seed: int = 1) -> bytes:
    """Deterministic bytes that differ from seed to seed."""
    return random.Random(seed).randbytes(n)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def temps(folder: Path) -> list[str]:
    """Names of the mover's temporary files in ``folder``."""
    return sorted(n for n in os.listdir(folder) if PARTIAL_MARKER in n) if folder.is_dir() else []


def real_files(folder: Path) -> dict[str, bytes]:
    """Every file under a real (non-temporary) name in ``folder``, with its bytes."""
    if not folder.is_dir():
        return {}
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))
            if PARTIAL_MARKER not in n and (folder / n).is_file()}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _other_fs_dir(base: str, than: Path) -> Path | None:
    """A fresh folder under ``base`` when it is on another filesystem than ``than``."""
    if not os.path.isdir(base) or not os.access(base, os.W_OK):
        return None
    if os.stat(base).st_dev == os.stat(than).st_dev:
        return None
    return Path(tempfile.mkdtemp(prefix="genre-daemon-test-", dir=base))


@pytest.fixture
def other_fs(tmp_path: Path):
    """A folder on another filesystem than tmp_path (/dev/shm), for cross-device moves."""
    folder = _other_fs_dir("/dev/shm", tmp_path)
    if folder is None:
        pytest.skip("/dev/shm is missing, read-only or on the same filesystem as tmp_path")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def inbox_on(tmp_path: Path, request):
    """The inbox for a parametrized ``device``: same filesystem as the library, or another."""
    if request.param == "same":
        yield tmp_path / "inbox"
        return
    folder = _other_fs_dir("/dev/shm", tmp_path)
    if folder is None:
        pytest.skip("/dev/shm is missing, read-only or on the same filesystem as tmp_path")
    yield folder / "inbox"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 1 MB tmpfs mounted in tmp_path (needs root and a kernel that lets us mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -c code args...`` in the project, with the package importable."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT_ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=120, check=False)


devices = pytest.mark.parametrize("inbox_on", ["same", "cross"], indirect=True)


# ---------------------------------------------------------------------------------------------
# Long names: only a suffix added on a clash shortens one (the names: tests/test_names.py and
# tests/filing/test_destination.py).

def test_only_an_added_suffix_shortens_a_long_name(tmp_path: Path) -> None:
    """A 255-byte name placed twice: the first keeps its name, the second is ``... (2).flac``
    cut on a character boundary to fit 255 bytes; NFD and NFC spellings are two names."""
    long = "é" * 125 + ".flac"
    lib = tmp_path / "lib"
    first = move(put(tmp_path / "in" / long, b"1"), lib / long).destination
    second = move(put(tmp_path / "in" / long, b"2"), lib / long).destination
    assert first == lib / long
    assert second.name.endswith(" (2).flac") and len(second.name.encode()) <= 255
    nfd, nfc = (unicodedata.normalize(f, "Café Noël.flac") for f in ("NFD", "NFC"))
    a = move(put(tmp_path / "in" / nfc, b"nfc"), destination(Path(nfc), "j", 1, library=lib, review_dir=lib,
                                                             min_confidence=0)).destination
    b = move(put(tmp_path / "in" / nfd, b"nfd"), destination(Path(nfd), "j", 1, library=lib, review_dir=lib,
                                                             min_confidence=0)).destination
    assert (a.name, b.name) == (nfc, nfd) and a.read_bytes() == b"nfc" and b.read_bytes() == b"nfd"


# ---------------------------------------------------------------------------------------------
# move(): the ordinary cases.


def test_same_device_move_keeps_the_inode(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", payload())
    ino = src.stat().st_ino
    result = move(src, tmp_path / "lib" / "jazz" / "a.mp3")
    dest = tmp_path / "lib" / "jazz" / "a.mp3"
    assert result == MoveResult(src, dest, skipped=False, cross_device=False)
    assert dest.stat().st_ino == ino and dest.stat().st_nlink == 1
    assert not src.exists() and dest.read_bytes() == payload()


def test_cross_device_move_copies_bytes_times_and_mode(tmp_path: Path, other_fs: Path) -> None:
    src = put(other_fs / "a.mp3", payload(3_000_000))
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_600_000_000_123_456_789, 1_600_000_000_987_654_321))
    dest = tmp_path / "lib" / "jazz" / "a.mp3"
    result = move(src, dest)
    assert result == MoveResult(src, dest, skipped=False, cross_device=True)
    assert not src.exists() and dest.read_bytes() == payload(3_000_000)
    assert dest.stat().st_mtime_ns == 1_600_000_000_987_654_321
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert temps(dest.parent) == []


@devices
def test_rename_never_overwrites(inbox_on: Path, tmp_path: Path) -> None:
    jazz = tmp_path / "lib" / "jazz"
    put(jazz / "a.mp3", b"old")
    first = move(put(inbox_on / "a.mp3", b"one"), jazz / "a.mp3")
    second = move(put(inbox_on / "a.mp3", b"two"), jazz / "a.mp3", "rename")
    assert (first.destination, second.destination) == (jazz / "a (2).mp3", jazz / "a (3).mp3")
    assert real_files(jazz) == {"a.mp3": b"old", "a (2).mp3": b"one", "a (3).mp3": b"two"}
    assert temps(jazz) == [] and not (inbox_on / "a.mp3").exists()


@devices
def test_skip_leaves_the_source_and_the_existing_file(inbox_on: Path, tmp_path: Path) -> None:
    jazz = tmp_path / "lib" / "jazz"
    put(jazz / "a.mp3", b"old")
    src = put(inbox_on / "a.mp3", b"new")
    result = move(src, jazz / "a.mp3", "skip")
    assert result.skipped and result.destination is None
    assert src.read_bytes() == b"new" and real_files(jazz) == {"a.mp3": b"old"}
    assert temps(jazz) == []


@devices
def test_overwrite_replaces_only_when_asked(inbox_on: Path, tmp_path: Path) -> None:
    jazz = tmp_path / "lib" / "jazz"
    put(jazz / "a.mp3", b"old")
    result = move(put(inbox_on / "a.mp3", b"new"), jazz / "a.mp3", "overwrite")
    assert result.destination == jazz / "a.mp3" and not result.skipped
    assert real_files(jazz) == {"a.mp3": b"new"} and not (inbox_on / "a.mp3").exists()
    assert temps(jazz) == []


def test_unknown_conflict_policy_is_refused(tmp_path: Path) -> None:
    src = put(tmp_path / "a.mp3", b"x")
    with pytest.raises(ValueError, match="on_conflict"):
        move(src, tmp_path / "b.mp3", "clobber")  # type: ignore[arg-type]
    assert src.read_bytes() == b"x"


ODD_NAMES = [
    "with spaces  and  more.mp3",
    "ünïcödé ☃ 雨.flac",
    "new\nline.mp3",
    "a" * 196 + ".mp3",  # 200 bytes
    "é" * 125 + ".ogg",  # 254 bytes
    "quote'\"both.wav",
    "-looks-like-an-option.mp3",
    os.fsdecode(b"latin1-caf\xe9.mp3"),
]


@devices
@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_odd_names_move_intact(inbox_on: Path, tmp_path: Path, name: str) -> None:
    src = put(inbox_on / "sub dir" / name, payload(seed=7))
    dest = tmp_path / "lib" / "jazz" / name
    assert move(src, dest).destination == dest
    assert dest.read_bytes() == payload(seed=7) and not src.exists()
    assert os.listdir(dest.parent) == [name]


def test_moving_a_file_onto_its_own_second_link_just_removes_the_source(tmp_path: Path) -> None:
    """An earlier move stopped after the link: moving again must not make "a (2).mp3"."""
    src = put(tmp_path / "inbox" / "a.mp3", b"x")
    dest = tmp_path / "lib" / "a.mp3"
    dest.parent.mkdir()
    os.link(src, dest)
    assert move(src, dest).destination == dest
    assert not src.exists() and real_files(dest.parent) == {"a.mp3": b"x"}


@devices
def test_parallel_moves_to_one_name_lose_nothing(inbox_on: Path, tmp_path: Path) -> None:
    jazz = tmp_path / "lib" / "jazz"
    sources = [put(inbox_on / str(i) / "a.mp3", payload(2_000, seed=i)) for i in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda s: move(s, jazz / "a.mp3"), sources))
    assert len({r.destination for r in results}) == 24
    assert sorted(real_files(jazz).values()) == sorted(payload(2_000, seed=i) for i in range(24))
    assert temps(jazz) == [] and not any(s.exists() for s in sources)


@pytest.mark.parametrize(("device", "policy"), list(STEPS))
def test_hook_sees_every_step_in_order(tmp_path: Path, device: str, policy: str) -> None:
    inbox = tmp_path / "inbox"
    if device == "cross":
        shm = _other_fs_dir("/dev/shm", tmp_path)
        if shm is None:
            pytest.skip("/dev/shm is missing or on the same filesystem as tmp_path")
        inbox = shm
    try:
        seen: list[str] = []
        put(tmp_path / "lib" / "a.mp3", b"old")
        move(put(inbox / "a.mp3", b"new"), tmp_path / "lib" / "a.mp3", policy, hook=seen.append)
        assert seen == STEPS[device, policy]
    finally:
        if device == "cross":
            shutil.rmtree(inbox, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# move(): refusals and errors. The source is always left as it was.


def test_symlink_source_is_refused_and_not_followed(tmp_path: Path) -> None:
    outside = put(tmp_path / "outside" / "secret.mp3", b"secret")
    link = tmp_path / "inbox" / "a.mp3"
    link.parent.mkdir()
    link.symlink_to(outside)
    with pytest.raises(MoveError, match="symbolic link"):
        move(link, tmp_path / "lib" / "jazz" / "a.mp3")
    assert link.is_symlink() and outside.read_bytes() == b"secret"
    assert real_files(tmp_path / "lib" / "jazz") == {}


def test_symlink_to_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    link = tmp_path / "inbox" / "album"
    link.parent.mkdir()
    link.symlink_to(tmp_path / "outside")
    with pytest.raises(MoveError, match="symbolic link"):
        move(link, tmp_path / "lib" / "album")
    assert link.is_symlink()


@devices
def test_symlinked_destination_folder_is_refused(inbox_on: Path, tmp_path: Path) -> None:
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    outside.mkdir()
    lib.mkdir()
    (lib / "jazz").symlink_to(outside)
    src = put(inbox_on / "a.mp3", b"x")
    with pytest.raises(MoveError, match="symbolic link") as info:
        move(src, lib / "jazz" / "deeper" / "a.mp3", root=lib)
    assert str(lib / "jazz") in str(info.value)
    assert src.read_bytes() == b"x" and os.listdir(outside) == []


def test_destination_outside_root_is_refused(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"x")
    with pytest.raises(MoveError, match="outside"):
        move(src, tmp_path / "lib" / ".." / "elsewhere" / "a.mp3", root=tmp_path / "lib")
    assert src.exists() and not (tmp_path / "elsewhere").exists()


def test_missing_destination_folders_are_made_below_root(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"x")
    move(src, tmp_path / "lib" / "new genre" / "a.mp3", root=tmp_path / "lib")
    assert (tmp_path / "lib" / "new genre").is_dir()
    assert (tmp_path / "lib" / "new genre" / "a.mp3").read_bytes() == b"x"


def test_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "inbox" / "pipe.mp3"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(MoveError, match="not a regular file"):
        move(fifo, tmp_path / "lib" / "pipe.mp3")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_missing_source_names_both_paths_and_keeps_errno(tmp_path: Path) -> None:
    src, dest = tmp_path / "inbox" / "gone.mp3", tmp_path / "lib" / "gone.mp3"
    with pytest.raises(MoveError) as info:
        move(src, dest)
    assert str(info.value) == (
        f"cannot move {str(src)!r} to {str(dest)!r}: No such file or directory")
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_destination_folder_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"x")
    put(tmp_path / "lib" / "jazz", b"a file, not a folder")
    with pytest.raises(MoveError, match="not a folder"):
        move(src, tmp_path / "lib" / "jazz" / "a.mp3", root=tmp_path / "lib")
    assert src.read_bytes() == b"x"


def test_source_changed_during_copy_is_not_placed(tmp_path: Path, other_fs: Path) -> None:
    src = put(other_fs / "a.mp3", b"first half")

    def still_downloading(step: str) -> None:
        if step == "temp_written":
            with open(src, "ab") as f:
                f.write(b" and the rest")

    with pytest.raises(MoveError, match="changed while it was being copied"):
        move(src, tmp_path / "lib" / "a.mp3", hook=still_downloading)
    assert src.read_bytes() == b"first half and the rest"
    assert os.listdir(tmp_path / "lib") == []


# Issue 10 D1: nothing that changed since it settled, or that a writer still holds, is placed.


@devices
@pytest.mark.parametrize("policy", ["rename", "overwrite"])
def test_a_file_a_writer_holds_open_is_not_placed(inbox_on: Path, tmp_path: Path, policy: str) -> None:
    """A writer holds the inbox file open (it paused mid-file): the move is refused just before
    the source's name goes, the name it placed is removed again, and every byte the writer
    writes afterwards still lands in the one inbox file."""
    src = put(inbox_on / "held.flac", payload(100_000))
    lib = tmp_path / "lib"
    with open(src, "ab") as writer:
        with pytest.raises(mover.SourceChangedError, match="holds it open for writing"):
            move(src, lib / "held.flac", policy, expect=mover.signature(os.lstat(src)))
        writer.write(b"the rest")
    assert src.read_bytes() == payload(100_000) + b"the rest"
    assert real_files(lib) == {} and temps(lib) == []


@devices
def test_a_file_that_changed_after_it_settled_is_not_moved(inbox_on: Path, tmp_path: Path) -> None:
    """``expect`` is the signature the file had when it settled: a file appended to since
    (``write, pause, append``) is refused before anything is made."""
    src = put(inbox_on / "a.flac", b"first part")
    settled = mover.signature(os.lstat(src))
    with open(src, "ab") as f:
        f.write(b" then more")
    with pytest.raises(mover.SourceChangedError, match="changed after it settled"):
        move(src, tmp_path / "lib" / "a.flac", expect=settled)
    assert src.read_bytes() == b"first part then more"
    assert not (tmp_path / "lib").exists() or real_files(tmp_path / "lib") == {}


@devices
def test_a_file_appended_to_during_the_move_is_not_placed(inbox_on: Path, tmp_path: Path) -> None:
    """A writer re-opens the file and appends while it is being moved (after the link or the
    copy is placed, before the old name goes): the placed name is removed, the file whole in
    the inbox."""
    src = put(inbox_on / "a.flac", payload(200_000))
    placed_at = "linked" if inbox_on.parent == tmp_path else "placed"

    def writer_returns(step: str) -> None:
        if step == placed_at:
            with open(src, "ab") as f:
                f.write(b"tail")

    with pytest.raises(mover.SourceChangedError, match="changed while it was being moved"):
        move(src, tmp_path / "lib" / "a.flac", hook=writer_returns)
    assert src.read_bytes() == payload(200_000) + b"tail"
    assert real_files(tmp_path / "lib") == {} and temps(tmp_path / "lib") == []


def test_a_file_that_grows_after_a_same_filesystem_move_is_put_back(tmp_path: Path) -> None:
    """A writer's descriptor follows the inode into the library: if the file grows in the
    instant after the last check, it goes back to the inbox (its old name) and is not placed."""
    src = put(tmp_path / "inbox" / "a.flac", payload(10_000))
    lib = tmp_path / "lib"

    def late_write(step: str) -> None:
        if step == "source_removed":
            with open(lib / "a.flac", "ab") as f:  # the writer's open descriptor, in effect
                f.write(b"late")

    with pytest.raises(mover.SourceChangedError, match="put back") as info:
        move(src, lib / "a.flac", hook=late_write)
    assert info.value.returned == src
    assert src.read_bytes() == payload(10_000) + b"late"
    assert real_files(lib) == {}


@pytest.mark.parametrize("policy", ["rename", "overwrite"])
def test_full_disk_is_enospc_and_leaves_everything(small_fs: Path, tmp_path: Path,
                                                   policy: str) -> None:
    src = put(tmp_path / "inbox" / "big.mp3", payload(2_000_000))
    put(small_fs / "jazz" / "big.mp3", b"the old one")
    with pytest.raises(MoveError, match="No space left on device") as info:
        move(src, small_fs / "jazz" / "big.mp3", policy)
    assert info.value.errno == errno.ENOSPC
    assert src.read_bytes() == payload(2_000_000)
    assert real_files(small_fs / "jazz") == {"big.mp3": b"the old one"}
    assert temps(small_fs / "jazz") == []


EFBIG_CHILD = r"""
import json, resource, signal, sys
from pathlib import Path
from genre_daemon.errors import MoveError
from genre_daemon.filing.mover import move
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    move(Path(sys.argv[1]), Path(sys.argv[2]))
except MoveError as e:
    print(json.dumps({"errno": e.errno, "message": str(e)}))
"""


def test_write_error_midway_leaves_the_source_and_no_temp(tmp_path: Path, other_fs: Path) -> None:
    """A file-size limit (EFBIG) stands in for any write error in the middle of a copy."""
    src = put(other_fs / "a.mp3", payload(300_000))
    dest = tmp_path / "lib" / "a.mp3"
    proc = run_child(EFBIG_CHILD, str(src), str(dest))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errno"] == errno.EFBIG and str(src) in report["message"]
    assert src.read_bytes() == payload(300_000)
    assert os.listdir(dest.parent) == []


def test_inbox_file_owned_by_someone_else_is_copied(tmp_path: Path) -> None:
    """With fs.protected_hardlinks, a daemon cannot hard-link another user's file (EPERM):
    the move falls back to copying on the same filesystem."""
    try:
        protected = Path("/proc/sys/fs/protected_hardlinks").read_text().strip() == "1"
    except OSError:
        protected = False
    if os.geteuid() != 0 or not protected:
        pytest.skip("needs root (to become nobody in a child) and fs.protected_hardlinks=1")
    base = Path(tempfile.mkdtemp(prefix="genre-daemon-test-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        inbox, lib = base / "inbox", base / "lib"
        for folder in (inbox, lib):
            folder.mkdir(mode=0o777)
            os.chmod(folder, 0o777)
        src = put(inbox / "a.mp3", payload())
        os.chmod(src, 0o644)  # root's, readable by all, writable by root only
        # Imports as root, then drops to nobody: the move itself runs as another user.
        code = ("import os, sys; from pathlib import Path; from genre_daemon.filing.mover import move; "
                "os.setgid(65534); os.setuid(65534); "
                "r = move(Path(sys.argv[1]), Path(sys.argv[2])); print(r.cross_device)")
        proc = run_child(code, str(src), str(lib / "jazz" / "a.mp3"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "True"  # took the copy path
        assert not src.exists() and (lib / "jazz" / "a.mp3").read_bytes() == payload()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("target", "flag", "copied"), [
    ("folder", "+a", False),  # append-only inbox: links work, unlinking the source does not
    ("file", "+i", True),  # immutable file: cannot be linked either, so it is copied
])
def test_source_that_cannot_be_removed_leaves_no_second_copy(
    tmp_path: Path, target: str, flag: str, copied: bool
) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", payload())
    locked = src.parent if target == "folder" else src
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", flag, str(locked)], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"cannot set chattr {flag} here")
    seen: list[str] = []
    try:
        with pytest.raises(MoveError, match="Operation not permitted") as info:
            move(src, tmp_path / "lib" / "a.mp3", hook=seen.append)
    finally:
        subprocess.run(["chattr", "-" + flag[1:], str(locked)], check=True)
    assert info.value.errno == errno.EPERM
    assert ("temp_written" in seen) == copied
    assert src.read_bytes() == payload() and os.listdir(tmp_path / "lib") == []


def test_filesystem_without_hard_links_still_never_clobbers(tmp_path: Path, monkeypatch) -> None:
    """Fault injection (no vfat here): every link() fails with EPERM, as on vfat."""

    def no_links(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(mover.os, "link", no_links)
    jazz = tmp_path / "lib" / "jazz"
    put(jazz / "a.mp3", b"old")
    first = move(put(tmp_path / "inbox" / "a.mp3", b"new"), jazz / "a.mp3")
    skipped = move(put(tmp_path / "inbox" / "a.mp3", b"newer"), jazz / "a.mp3", "skip")
    assert first.destination == jazz / "a (2).mp3" and first.cross_device
    assert skipped.skipped and (tmp_path / "inbox" / "a.mp3").read_bytes() == b"newer"
    assert real_files(jazz) == {"a.mp3": b"old", "a (2).mp3": b"new"} and temps(jazz) == []


# ---------------------------------------------------------------------------------------------
# Crash points: a child process is SIGKILLed right after each step; then settle() finishes.

KILL_CHILD = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.filing.mover import move, PARTIAL_MARKER
src, dest, policy, kill_at, truncate = sys.argv[1:6]

def hook(step):
    if step != kill_at:
        return
    if truncate == "1":  # what a kill in the middle of the copy leaves: a short temp file
        for name in os.listdir(Path(dest).parent):
            if PARTIAL_MARKER in name:
                os.truncate(Path(dest).parent / name, 1000)
    os.kill(os.getpid(), signal.SIGKILL)

move(Path(src), Path(dest), policy, hook=hook)
sys.exit(3)  # never reached: every step named is taken
"""

CRASH_CASES = [
    pytest.param(device, policy, conflict, step, id=f"{device}-{policy}-{label}-{step}")
    for (device, policy), steps in STEPS.items()
    for conflict, label in ([(False, "free"), (True, "taken")] if policy == "rename"
                            else [(True, "taken")])
    for step in steps
]


@pytest.mark.parametrize(("device", "policy", "conflict", "step"), CRASH_CASES)
def test_sigkill_at_every_step_leaves_one_complete_copy(
    tmp_path: Path, device: str, policy: str, conflict: bool, step: str
) -> None:
    inbox = tmp_path / "inbox"
    shm = None
    if device == "cross":
        shm = _other_fs_dir("/dev/shm", tmp_path)
        if shm is None:
            pytest.skip("/dev/shm is missing or on the same filesystem as tmp_path")
        inbox = shm / "inbox"
    try:
        check_crash(tmp_path, inbox, device, policy, conflict, step)
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def check_crash(tmp_path: Path, inbox: Path, device: str, policy: str, conflict: bool,
                step: str) -> None:
    data, old = payload(400_000, seed=3), payload(400_000, seed=4)  # same size, other bytes
    src = put(inbox / "song.mp3", data)
    src_stat = src.stat()
    jazz = tmp_path / "lib" / "jazz"
    jazz.mkdir(parents=True)
    if conflict:
        put(jazz / "song.mp3", old)
        os.utime(jazz / "song.mp3", ns=(1, 1))
    dest = jazz / "song.mp3"

    proc = run_child(KILL_CHILD, str(src), str(dest), policy, step, "0")
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    # Right after the crash: complete copies only, under real names; at least one of them.
    copies = [p for p in [src, *map(jazz.joinpath, real_files(jazz))]
              if p.exists() and p.read_bytes() == data]
    assert copies, "the file is lost"
    for name, content in real_files(jazz).items():
        assert content in (data, old), f"{name!r} is partial"
    if src.exists():
        assert src.read_bytes() == data
    if device == "same" and len(copies) == 2:
        assert copies[0].stat().st_ino == copies[1].stat().st_ino
    if conflict and policy == "rename":
        assert (jazz / "song.mp3").read_bytes() == old

    # The next start settles it: exactly one complete copy, no temporary file.
    placed = STEPS[device, policy].index(step) >= STEPS[device, policy].index(
        PLACED_AT[device][policy])
    settled = settle(src, dest, size=src_stat.st_size, mtime_ns=src_stat.st_mtime_ns)
    assert settled.state == ("moved" if placed else "not_moved")
    assert temps(jazz) == []
    copies = [p for p in [src, *map(jazz.joinpath, real_files(jazz))]
              if p.exists() and p.read_bytes() == data]
    if placed:
        final = jazz / ("song (2).mp3" if conflict and policy == "rename" else "song.mp3")
        assert not src.exists() and settled.destination == final and copies == [final]
    else:
        assert copies == [src] and settled.destination is None
        assert move(src, dest, policy).destination is not None  # and the retry completes
    if conflict and policy == "rename":
        assert (jazz / "song.mp3").read_bytes() == old


@pytest.mark.parametrize("step", ["temp_written", "temp_synced"])
def test_sigkill_midway_through_the_copy_leaves_only_a_hidden_partial(
    tmp_path: Path, other_fs: Path, step: str
) -> None:
    data = payload(400_000)
    src = put(other_fs / "song.mp3", data)
    dest = tmp_path / "lib" / "song.mp3"
    proc = run_child(KILL_CHILD, str(src), str(dest), "rename", step, "1")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (partial,) = temps(dest.parent)
    assert partial.startswith(".") and (dest.parent / partial).stat().st_size == 1000
    assert real_files(dest.parent) == {} and src.read_bytes() == data
    assert settle_interrupted(src, dest) == "not_moved"
    assert os.listdir(dest.parent) == [] and src.read_bytes() == data


# ---------------------------------------------------------------------------------------------
# quarantine().


@devices
def test_quarantine_moves_the_file_and_writes_the_reason(inbox_on: Path, tmp_path: Path) -> None:
    src = put(inbox_on / "broken.mp3", b"not audio at all")
    qdir = tmp_path / "inbox-quarantine"
    final = quarantine(src, qdir, "not audio: no MPEG frames found")
    assert final == qdir / "broken.mp3" and final.read_bytes() == b"not audio at all"
    note = (qdir / ("broken.mp3" + REASON_SUFFIX)).read_text()
    assert "not audio: no MPEG frames found" in note and str(src) in note
    assert not src.exists() and temps(qdir) == []


def test_quarantine_never_deletes_or_clobbers(tmp_path: Path) -> None:
    qdir = tmp_path / "q"
    for i in range(3):
        quarantine(put(tmp_path / "inbox" / f"d{i}" / "bad.mp3", f"broken {i}".encode()), qdir,
                   f"reason {i}")
    files = real_files(qdir)
    assert {n: c for n, c in files.items() if not n.endswith(REASON_SUFFIX)} == {
        "bad.mp3": b"broken 0", "bad (2).mp3": b"broken 1", "bad (3).mp3": b"broken 2"}
    assert b"reason 2" in files["bad (3).mp3" + REASON_SUFFIX]


def test_quarantine_refuses_a_symlink(tmp_path: Path) -> None:
    target = put(tmp_path / "elsewhere" / "x.mp3", b"x")
    link = tmp_path / "inbox" / "x.mp3"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(MoveError, match="symbolic link"):
        quarantine(link, tmp_path / "q", "whatever")
    assert link.is_symlink() and target.read_bytes() == b"x"
    assert real_files(tmp_path / "q") == {}


def test_reason_file_for_a_200_byte_name_fits(tmp_path: Path) -> None:
    name = "a" * 196 + ".mp3"
    qdir = tmp_path / "q"
    put(qdir / name, b"earlier")
    final = quarantine(put(tmp_path / "inbox" / name, b"x"), qdir, "too short")
    assert final.name == "a" * 196 + " (2).mp3"
    assert (qdir / (final.name + REASON_SUFFIX)).is_file()

