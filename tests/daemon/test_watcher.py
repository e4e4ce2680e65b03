"""The inbox watcher: pure filters, the settle state machine, and the real watchdog observer.

Settler tests drive a fake clock and a dict-backed stat; end-to-end tests run the real observer
(inotify, and polling) on a tmp_path tree and wait on a condition with a deadline. To show that
something was *not* handed on without sleeping, a "canary" file is dropped after it and waited
for: once the canary has settled, anything older that could settle has been offered too.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import queue
import shutil
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import write_tone
from genre_daemon.daemon.settling import PARTIAL_SUFFIXES, Settler, is_candidate
from genre_daemon.daemon.watcher import InboxWatcher

SETTLE = 0.2
DEADLINE = 15.0  # generous: the machine is shared; a pass is usually well under a second
EXTENSIONS = ("wav", "mp3", "flac")


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves a thread running after its watchers were stopped."""
    before = set(threading.enumerate())
    yield
    leaked: set[threading.Thread] = set()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        leaked = {t for t in threading.enumerate() if t not in before and t.is_alive()}
        if not leaked:
            return
        threading.Event().wait(0.02)
    pytest.fail(f"threads leaked: {sorted(t.name for t in leaked)}")


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        threading.Event().wait(0.01)


class Collector:
    """An ``on_ready`` that records every offer, and may refuse the first offer of each path."""

    def __init__(self, refuse_first: bool = False) -> None:
        self.refuse_first = refuse_first
        self.cond = threading.Condition()
        self.offers: list[Path] = []
        self.taken: list[Path] = []
        self.sizes: dict[Path, int] = {}

    def __call__(self, path: Path) -> bool:
        with self.cond:
            first = path not in self.offers
            self.offers.append(path)
            self.cond.notify_all()
            if self.refuse_first and first:
                return False
            self.taken.append(path)
            self.sizes[path] = os.lstat(path).st_size
            self.cond.notify_all()
            return True

    def wait_taken(self, *paths: Path, timeout: float = DEADLINE) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: all(p in self.taken for p in paths), timeout)
            missing = [str(p) for p in paths if p not in self.taken]
        assert ok, f"not handed on within {timeout} s: {missing}; taken: {self.taken}"

    def count(self, path: Path) -> int:
        with self.cond:
            return self.taken.count(path)


_canaries = itertools.count()


def drop_canary(inbox: Path, collector: Collector) -> Path:
    """Write a fresh file and wait until it is handed on: a full settle cycle has passed."""
    path = inbox / f"canary-{next(_canaries)}.wav"
    path.write_bytes(b"canary")
    collector.wait_taken(path)
    return path


def write_file(path: Path, size: int = 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture(params=["inotify", "polling"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def make_watcher(mode: str) -> Iterator[Callable[..., InboxWatcher]]:
    """Build (not start) watchers in this test's mode; all are stopped at teardown."""
    made: list[InboxWatcher] = []

    def make(inbox: Path, on_ready: Callable[[Path], bool], **kw: object) -> InboxWatcher:
        kw.setdefault("polling", mode == "polling")
        kw.setdefault("poll_interval", 0.05)
        watcher = InboxWatcher(inbox, EXTENSIONS, SETTLE, on_ready, **kw)  # type: ignore[arg-type]
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.stop()


@pytest.fixture
def started(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> tuple[InboxWatcher, Collector]:
    collector = Collector()
    watcher = make_watcher(inbox, collector)
    watcher.start()
    assert watcher.is_alive()
    return watcher, collector


# -- is_candidate ----------------------------------------------------------------------------

IN = Path("/srv/inbox")
REVIEW = IN / "_review"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (IN / "song.mp3", True),
        (IN / "SONG.MP3", True),
        (IN / "song.Wav", True),
        (IN / "a" / "b" / "c" / "deep.flac", True),
        (IN / "with space and ünïcödé.mp3", True),
        (IN / "new\nline.mp3", True),
        (IN / ("x" * 196 + ".mp3"), True),
        (IN / "song.txt", False),
        (IN / "mp3", False),
        (IN / "song.", False),
        (IN / ".song.mp3", False),
        (IN / ".hidden" / "song.mp3", False),
        (IN / "a" / ".hidden" / "song.mp3", False),
        (IN / ".." / "elsewhere" / "song.mp3", False),
        (Path("/srv/elsewhere/song.mp3"), False),
        (Path("/srv/inbox2/song.mp3"), False),
        (IN, False),
        (REVIEW / "song.mp3", False),
        (REVIEW / "deeper" / "song.mp3", False),
        (IN / "_review2" / "song.mp3", True),
        (IN / "song.mp3.PART", False),
        *[(IN / f"song.mp3{suffix}", False) for suffix in PARTIAL_SUFFIXES],
    ],
    ids=repr,
)
def test_is_candidate(path: Path, expected: bool) -> None:
    assert is_candidate(path, IN, ["mp3", "wav", "flac"], excluded=[REVIEW]) is expected


def test_is_candidate_accepts_extensions_with_dots_and_capitals() -> None:
    assert is_candidate(IN / "a.mp3", IN, [".MP3"])
    assert not is_candidate(IN / "a.wav", IN, [".MP3"])


@pytest.mark.parametrize("suffix", PARTIAL_SUFFIXES)
def test_partial_name_is_refused_even_if_its_suffix_is_a_configured_extension(suffix: str) -> None:
    assert not is_candidate(IN / f"x.mp3{suffix}", IN, ["mp3", suffix])


def test_renamed_partial_becomes_a_candidate() -> None:
    assert not is_candidate(IN / "x.mp3.part", IN, ["mp3"])
    assert is_candidate(IN / "x.mp3", IN, ["mp3"])


# -- Settler ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeFS:
    """A dict of path -> stat result standing in for ``os.lstat``."""

    def __init__(self) -> None:
        self.files: dict[Path, os.stat_result] = {}
        self.errors: dict[Path, OSError] = {}
        self._inodes = itertools.count(100)

    def put(self, path: Path, size: int, mtime_ns: int = 1, *, mode: int = stat.S_IFREG,
            inode: int | None = None) -> None:
        ino = next(self._inodes) if inode is None else inode
        fields = (mode | 0o644, ino, 1, 1, 0, 0, size, 0, mtime_ns // 10**9, 0)
        self.files[path] = os.stat_result(fields, {"st_mtime_ns": mtime_ns})

    def grow(self, path: Path, by: int) -> None:
        st = self.files[path]
        self.put(path, st.st_size + by, st.st_mtime_ns + 1, inode=st.st_ino)

    def __call__(self, path: Path) -> os.stat_result:
        if path in self.errors:
            raise self.errors[path]
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "No such file", str(path)) from None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fs() -> FakeFS:
    return FakeFS()


@pytest.fixture
def settler(clock: FakeClock, fs: FakeFS) -> Settler:
    return Settler(settle_seconds=2.0, clock=clock, stat=fs)


A, B, C = Path("/in/a.mp3"), Path("/in/b.mp3"), Path("/in/c.mp3")


def test_settles_after_settle_seconds_of_unchanged_observations(
    settler: Settler, clock: FakeClock, fs: FakeFS
) -> None:
    fs.put(A, 1000)
    settler.touch(A)
    assert settler.due() == []  # first observation
    clock.advance(1.9)
    assert settler.due() == []
    assert len(settler) == 1
    clock.advance(0.1)
    assert settler.due() == [A]
    assert len(settler) == 0 and A not in settler
    assert settler.due() == []  # handed out once


def test_the_quiet_period_counts_from_the_first_observation_not_the_event(
    settler: Settler, clock: FakeClock, fs: FakeFS
) -> None:
    fs.put(A, 10)
    settler.touch(A)
    clock.advance(5)
    assert settler.due() == []  # never observed before: the window starts now
    clock.advance(2)
    assert settler.due() == [A]


def test_a_growing_file_does_not_settle(settler: Settler, clock: FakeClock, fs: FakeFS) -> None:
    fs.put(A, 0)
    settler.touch(A)
    for _ in range(20):
        settler.due()
        clock.advance(1.5)
        fs.grow(A, 4096)
        assert settler.due() == []
    clock.advance(1.9)
    assert settler.due() == []
    clock.advance(0.1)
    assert settler.due() == [A]


def test_an_mtime_change_alone_restarts_the_window(
    settler: Settler, clock: FakeClock, fs: FakeFS
) -> None:
    fs.put(A, 10, mtime_ns=1)
    settler.touch(A)
    settler.due()
    clock.advance(1.5)
    fs.put(A, 10, mtime_ns=2, inode=fs.files[A].st_ino)
    assert settler.due() == []
    clock.advance(1.5)
    assert settler.due() == []
    clock.advance(0.5)
    assert settler.due() == [A]


def test_a_file_replaced_by_another_inode_restarts_the_window(
    settler: Settler, clock: FakeClock, fs: FakeFS
) -> None:
    fs.put(A, 10, mtime_ns=7)
    settler.touch(A)
    settler.due()
    clock.advance(1.5)
    fs.put(A, 10, mtime_ns=7)  # same size and mtime, new inode: renamed over
    assert settler.due() == []
    clock.advance(2)
    assert settler.due() == [A]


def test_open_for_writing_blocks_until_closed(settler: Settler, clock: FakeClock, fs: FakeFS) -> None:
    fs.put(A, 10)
    settler.touch(A, writing=True)
    settler.due()
    clock.advance(30)
    assert settler.due() == []  # unchanged for long, but a writer holds it
    settler.touch(A, writing=None)  # a rescan knows nothing about writers: still held
    clock.advance(1)
    assert settler.due() == []
    settler.touch(A, writing=False)  # close-after-write; unchanged for >= settle already
    assert settler.due() == [A]


def test_a_write_event_restarts_the_window_even_without_a_visible_change(
    settler: Settler, clock: FakeClock, fs: FakeFS
) -> None:
    fs.put(A, 10)
    settler.touch(A)
    settler.due()
    clock.advance(1.9)
    settler.touch(A, writing=True)  # rewritten in place within one timestamp tick
    settler.touch(A, writing=False)
    clock.advance(0.2)
    assert settler.due() == []
    clock.advance(2)
    assert settler.due() == [A]


def test_a_lost_close_event_does_not_strand_a_file(clock: FakeClock, fs: FakeFS) -> None:
    settler = Settler(settle_seconds=2.0, clock=clock, stat=fs, open_timeout=60.0)
    fs.put(A, 10)
    settler.touch(A, writing=True)
    settler.due()
    clock.advance(59)
    assert settler.due() == []
    clock.advance(1)
    assert settler.due() == [A]


def test_a_readers_close_does_not_end_a_writers_write(clock: FakeClock, fs: FakeFS) -> None:
    """Issue 10 D1: a writer holds the file open (written, no close-after-write); a reader
    opens and closes it (a thumbnailer, ``cat``). The file stays held until the writer closes."""
    settler = Settler(settle_seconds=2.0, clock=clock, stat=fs, writers=lambda p: None)
    fs.put(A, 10)
    settler.touch(A)
    settler.opened(A)  # the writer's open
    settler.touch(A, writing=True)  # its first write
    settler.due()
    clock.advance(1)
    settler.opened(A)  # a reader
    settler.closed_unwritten(A)
    clock.advance(10)
    assert settler.due() == []
    settler.touch(A, writing=False)  # the writer's close-after-write
    assert settler.due() == [A]


def test_a_file_opened_and_not_closed_is_held_even_unwritten(clock: FakeClock, fs: FakeFS) -> None:
    """An open that no close has matched yet (``exec 3>>file`` before any write) holds it."""
    settler = Settler(settle_seconds=2.0, clock=clock, stat=fs, writers=lambda p: None)
    fs.put(A, 10)
    settler.touch(A)
    settler.opened(A)
    settler.due()
    clock.advance(5)
    assert settler.due() == []
    settler.closed_unwritten(A)
    assert settler.due() == [A]


def test_the_kernels_writer_count_overrides_the_events(clock: FakeClock, fs: FakeFS) -> None:
    """The lease probe says a writer holds the file: held however quiet and whatever the events
    said; it says none does: a quiet file goes even with an unmatched open (a reader holding it)."""
    held = {A: True}
    settler = Settler(settle_seconds=2.0, clock=clock, stat=fs, writers=lambda p: held[p])
    fs.put(A, 10)
    settler.touch(A)
    settler.due()
    for _ in range(5):
        clock.advance(100)
        assert settler.due() == []  # no event at all, but a writer holds it
    held[A] = False
    settler.opened(A)  # a reader keeps it open
    clock.advance(2)  # the window restarted when the probe last said "held"
    assert settler.due() == [A]


def test_the_real_probe_sees_a_writer_a_reader_does_not_hide(tmp_path: Path) -> None:
    """The kernel's answer on a real file, on disk and on tmpfs: a writer's descriptor holds
    it, a reader beside it changes nothing, and nothing open means free."""
    from genre_daemon.filing.writers import open_for_writing

    for folder in (tmp_path, Path("/dev/shm")):
        if not folder.is_dir():
            continue
        path = folder / f"probe-{os.getpid()}.bin"
        try:
            with open(path, "wb") as writer:
                writer.write(b"x")
                assert open_for_writing(path) is True
                with open(path, "rb"):
                    assert open_for_writing(path) is True
            with open(path, "rb"):
                assert open_for_writing(path) is False
            assert open_for_writing(path) is False
        finally:
            path.unlink()
    assert open_for_writing(tmp_path / "missing.mp3") is None


def test_vanished_paths_are_dropped(settler: Settler, clock: FakeClock, fs: FakeFS) -> None:
    fs.put(A, 10)
    settler.touch(A)
    settler.due()
    del fs.files[A]
    clock.advance(5)
    assert settler.due() == []
    assert len(settler) == 0


@pytest.mark.parametrize("mode", [stat.S_IFLNK, stat.S_IFDIR, stat.S_IFIFO])
def test_symlinks_and_non_regular_files_are_dropped(
    settler: Settler, clock: FakeClock, fs: FakeFS, mode: int
) -> None:
    fs.put(A, 10, mode=mode)
    settler.touch(A)
    assert settler.due() == []
    assert len(settler) == 0


def test_a_transient_stat_error_keeps_the_path(settler: Settler, clock: FakeClock, fs: FakeFS) -> None:
    fs.put(A, 10)
    fs.errors[A] = OSError(errno.EIO, "I/O error")
    settler.touch(A)
    clock.advance(5)
    assert settler.due() == []
    assert A in settler
    del fs.errors[A]
    settler.due()
    clock.advance(2)
    assert settler.due() == [A]


def test_forget_and_order(settler: Settler, clock: FakeClock, fs: FakeFS) -> None:
    for path in (C, A, B):
        fs.put(path, 10)
        settler.touch(path)
    settler.forget(A)
    settler.forget(Path("/in/never-seen.mp3"))
    settler.due()
    clock.advance(2)
    assert settler.due() == [C, B]


def test_settle_seconds_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="settle_seconds"):
        Settler(settle_seconds=-1)


def test_default_stat_does_not_follow_symlinks(tmp_path: Path, clock: FakeClock) -> None:
    real = write_file(tmp_path / "outside" / "real.mp3")
    link = tmp_path / "inbox" / "link.mp3"
    link.parent.mkdir()
    link.symlink_to(real)
    plain = write_file(tmp_path / "inbox" / "plain.mp3")
    settler = Settler(settle_seconds=1.0, clock=clock)
    settler.touch(link)
    settler.touch(plain)
    settler.due()
    clock.advance(1)
    assert settler.due() == [plain]
    assert len(settler) == 0


# -- rescan (no threads) ---------------------------------------------------------------------


def test_rescan_finds_candidates_without_following_links(tmp_path: Path, inbox: Path) -> None:
    outside = tmp_path / "outside"
    write_file(outside / "o1.wav")
    write_file(outside / "deep" / "o2.wav")
    expected = {
        write_file(inbox / "a.wav"),
        write_file(inbox / "B.MP3"),
        write_file(inbox / "x" / "y" / "c.flac"),
    }
    write_file(inbox / "notes.txt")
    write_file(inbox / "d.wav.part")
    write_file(inbox / ".hidden.wav")
    write_file(inbox / ".stash" / "e.wav")
    write_file(inbox / "_review" / "f.wav")
    (inbox / "linked-dir").symlink_to(outside, target_is_directory=True)
    (inbox / "linked.wav").symlink_to(outside / "o1.wav")
    watcher = InboxWatcher(inbox, EXTENSIONS, 0.0, lambda p: True, excluded=[inbox / "_review"])
    assert watcher.rescan() == len(expected)
    assert watcher.pending() == len(expected)
    assert watcher.rescan() == len(expected)  # idempotent: still one entry per file
    assert watcher.pending() == len(expected)


def test_rescan_of_a_missing_inbox_finds_nothing(tmp_path: Path) -> None:
    watcher = InboxWatcher(tmp_path / "nope", EXTENSIONS, SETTLE, lambda p: True)
    assert watcher.rescan() == 0
    assert not watcher.is_alive()
    assert watcher.ensure_running() is False  # never started


# -- end to end: the real observer -----------------------------------------------------------


def test_copied_file_is_handed_on_once_complete(
    tmp_path: Path, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    watcher, collector = started
    src = write_tone(tmp_path / "src" / "tone.wav", seconds=0.5)
    dst = inbox / "tone.wav"
    shutil.copy(src, dst)
    collector.wait_taken(dst)
    assert collector.sizes[dst] == src.stat().st_size
    drop_canary(inbox, collector)
    assert collector.count(dst) == 1
    assert watcher.pending() == 0


def test_slow_writer_is_not_handed_on_while_open(
    mode: str, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    if mode == "polling":
        pytest.skip("only inotify reports close-after-write; polling relies on stability alone")
    watcher, collector = started
    path = inbox / "slow.wav"
    chunk = os.urandom(8192)
    orders: queue.Queue[str] = queue.Queue()
    acks: queue.Queue[str] = queue.Queue()

    def writer() -> None:
        with open(path, "wb") as f:
            while (order := orders.get(timeout=DEADLINE)) == "write":
                f.write(chunk)
                f.flush()
                acks.put("written")
        acks.put("closed")

    thread = threading.Thread(target=writer, name="slow-writer")
    thread.start()
    try:
        for _ in range(3):
            orders.put("write")
            assert acks.get(timeout=DEADLINE) == "written"
            # The canary is newer than the last write: had the open file been taken for
            # complete, it would have been offered no later than the canary.
            drop_canary(inbox, collector)
            assert path not in collector.offers
    finally:
        orders.put("close")
        thread.join(DEADLINE)
    assert acks.get(timeout=DEADLINE) == "closed"
    collector.wait_taken(path)
    assert collector.sizes[path] == 3 * len(chunk)
    assert collector.count(path) == 1


def test_part_file_is_taken_only_after_the_rename(
    inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    _, collector = started
    part = write_file(inbox / "download.mp3.part", 10_000)
    drop_canary(inbox, collector)
    final = inbox / "download.mp3"
    part.rename(final)
    collector.wait_taken(final)
    assert collector.sizes[final] == 10_000
    assert part not in collector.offers


def test_browser_placeholder_waits_for_its_part_file(
    inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    _, collector = started
    final = inbox / "song.mp3"
    final.write_bytes(b"")  # Firefox: an empty placeholder beside the real download
    part = write_file(inbox / "song.mp3.part", 5000)
    drop_canary(inbox, collector)
    assert final not in collector.offers
    os.replace(part, final)
    collector.wait_taken(final)
    assert collector.sizes[final] == 5000
    assert collector.count(final) == 1


def test_files_in_new_nested_folders(inbox: Path, started: tuple[InboxWatcher, Collector]) -> None:
    _, collector = started
    deep = write_file(inbox / "a" / "b" / "c" / "deep.flac")
    shallow = write_file(inbox / "a" / "top.wav")
    collector.wait_taken(deep, shallow)


def test_file_and_folder_moved_in_from_outside(
    tmp_path: Path, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    _, collector = started
    single = write_file(tmp_path / "elsewhere" / "single.mp3")
    album = tmp_path / "elsewhere" / "album"
    tracks = [write_file(album / f"{n:02d} track.flac") for n in range(1, 4)]
    single.rename(inbox / "single.mp3")
    album.rename(inbox / "album")
    collector.wait_taken(inbox / "single.mp3", *(inbox / "album" / t.name for t in tracks))


def test_file_moved_out_before_settling_is_forgotten(
    tmp_path: Path, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    watcher, collector = started
    path = write_file(inbox / "fleeting.wav")
    path.rename(tmp_path / "fleeting.wav")
    drop_canary(inbox, collector)
    assert path not in collector.offers
    assert watcher.pending() == 0


def test_symlinks_are_never_handed_on_nor_followed(
    tmp_path: Path,
    inbox: Path,
    make_watcher: Callable[..., InboxWatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="genre_daemon.daemon.watcher")
    outside = tmp_path / "outside"
    target = write_file(outside / "target.wav")
    write_file(outside / "already-there.wav")
    (inbox / "linked-dir").symlink_to(outside, target_is_directory=True)
    collector = Collector()
    watcher = make_watcher(inbox, collector)
    watcher.start()
    (inbox / "link.wav").symlink_to(target)
    write_file(outside / "new-outside.wav")  # would show up if the linked folder were watched
    (inbox / "real").mkdir()
    (inbox / "real" / "nested-link").symlink_to(outside, target_is_directory=True)
    drop_canary(inbox, collector)
    offered = {p for p in collector.offers if not p.name.startswith("canary-")}
    assert offered == set()
    # Not even an event came from inside the linked folders: the observer does not follow them.
    assert "new-outside" not in caplog.text
    assert "canary-" in caplog.text  # (the event log is on)


def test_hidden_partial_and_excluded_files_are_never_handed_on(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    collector = Collector()
    watcher = make_watcher(inbox, collector, excluded=[inbox / "_review"])
    watcher.start()
    write_file(inbox / ".hidden.wav")
    write_file(inbox / ".stash" / "in-hidden-folder.wav")
    write_file(inbox / "_review" / "being-reviewed.wav")
    write_file(inbox / "notes.txt")
    write_file(inbox / "x.wav.crdownload")
    drop_canary(inbox, collector)
    offered = {p for p in collector.offers if not p.name.startswith("canary-")}
    assert offered == set()


def test_fifty_files_at_once_are_each_handed_on_exactly_once(
    inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    watcher, collector = started
    paths = [write_file(inbox / f"batch {i:02d}.wav", 2048) for i in range(50)]
    collector.wait_taken(*paths)
    drop_canary(inbox, collector)
    counts = Counter(collector.taken)
    assert all(counts[p] == 1 for p in paths), counts
    assert watcher.pending() == 0


def test_a_refused_file_is_offered_again_and_not_lost(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    collector = Collector(refuse_first=True)
    watcher = make_watcher(inbox, collector)
    watcher.start()
    paths = [write_file(inbox / f"queued-{i}.mp3") for i in range(3)]
    collector.wait_taken(*paths)
    for path in paths:
        assert collector.offers.count(path) == 2
        assert collector.count(path) == 1
    assert watcher.pending() == 0


def test_startup_rescan_takes_files_that_were_already_there(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    before = [write_file(inbox / "old.wav"), write_file(inbox / "sub" / "older.mp3")]
    collector = Collector()
    make_watcher(inbox, collector).start()
    collector.wait_taken(*before)


def test_inbox_deleted_and_recreated(
    mode: str, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    watcher, collector = started
    shutil.rmtree(inbox)
    wait_until(lambda: not watcher.is_alive(), "the watcher to notice the inbox is gone")
    assert watcher.ensure_running() is False  # nothing to watch yet; never recreated by us
    assert not inbox.exists()
    assert watcher.rescan() == 0
    inbox.mkdir()
    # The daemon calls ensure_running() periodically. A polling observer may never have seen
    # the gap (it watches by path) and an inotify emitter may learn of the deletion a moment
    # later, so call it until the watcher is alive again.
    restarts: list[bool] = []

    def recovered() -> bool:
        restarts.append(watcher.ensure_running())
        # inotify's watch died with the deleted folder: only a restart brings it back.
        return watcher.is_alive() and (mode == "polling" or any(restarts))

    wait_until(recovered, "the watcher to watch the new inbox")
    assert watcher.ensure_running() is False  # already running
    path = write_file(inbox / "after.wav")
    collector.wait_taken(path)


def test_inbox_missing_at_start_is_watched_once_it_appears(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    inbox.rmdir()
    collector = Collector()
    watcher = make_watcher(inbox, collector)
    watcher.start()
    assert not watcher.is_alive()
    assert watcher.ensure_running() is False
    inbox.mkdir()
    early = write_file(inbox / "early.wav")  # before the observer: found by the rescan
    assert watcher.ensure_running() is True
    late = write_file(inbox / "late.wav")
    collector.wait_taken(early, late)


def test_symlinked_inbox_hands_on_paths_under_the_inbox_as_given(
    tmp_path: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    real = tmp_path / "real-inbox"
    real.mkdir()
    inbox = tmp_path / "inbox-link"
    inbox.symlink_to(real, target_is_directory=True)
    collector = Collector()
    watcher = make_watcher(inbox, collector, excluded=[real / "_review"])
    watcher.start()
    assert watcher.is_alive()
    path = write_file(real / "via-real-path.wav")
    write_file(real / "_review" / "excluded-through-the-real-path.wav")
    collector.wait_taken(inbox / "via-real-path.wav")
    drop_canary(inbox, collector)
    assert all(p.is_relative_to(inbox) for p in collector.offers)
    assert not any("_review" in p.parts for p in collector.offers)
    assert path.exists()


def test_an_exception_in_on_ready_does_not_stop_the_watcher(
    inbox: Path, make_watcher: Callable[..., InboxWatcher]
) -> None:
    collector = Collector()
    failed: list[Path] = []

    def flaky(path: Path) -> bool:
        if not failed:
            failed.append(path)
            raise RuntimeError("daemon bug")
        return collector(path)

    watcher = make_watcher(inbox, flaky)
    watcher.start()
    path = write_file(inbox / "survivor.wav")
    collector.wait_taken(path)
    assert failed == [path]
    assert watcher.is_alive()


def test_stop_is_idempotent_and_a_stopped_watcher_can_start_again(
    inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    watcher, collector = started
    watcher.stop()
    watcher.stop()
    assert not watcher.is_alive()
    assert watcher.ensure_running() is False  # stopped on purpose: not restarted behind our back
    path = write_file(inbox / "while-stopped.wav")
    watcher.start()  # the start-up rescan finds what arrived meanwhile
    collector.wait_taken(path)


def test_a_folder_swapped_for_a_symlink_is_not_followed(
    tmp_path: Path, inbox: Path, started: tuple[InboxWatcher, Collector]
) -> None:
    _, collector = started
    sub = inbox / "sub"
    path = write_file(sub / "swapped.wav")
    moved = tmp_path / "moved-out"
    sub.rename(moved)  # the folder leaves the inbox...
    sub.symlink_to(moved, target_is_directory=True)  # ...and a link to it takes its place
    drop_canary(inbox, collector)
    assert path not in collector.offers
    assert (moved / "swapped.wav").exists()


def test_track_offers_a_file_again(inbox: Path, started: tuple[InboxWatcher, Collector]) -> None:
    watcher, collector = started
    path = write_file(inbox / "again.wav")
    collector.wait_taken(path)
    watcher.track(path)  # the daemon found it changed after taking it
    watcher.track(inbox / ".hidden.wav")  # not a candidate: ignored
    with collector.cond:
        assert collector.cond.wait_for(lambda: collector.taken.count(path) == 2, DEADLINE)
    assert watcher.pending() == 0
