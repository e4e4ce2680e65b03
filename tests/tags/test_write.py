"""write_genre / restore_genre / clean_leftovers on real files: what changes (only the genre),
what does not (other tags, audio, mode, ID3 version), undo, errors, and real kill -9s."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import mutagen
import pytest
import soundfile as sf
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TIME

from conftest import PROJECT_ROOT, ffmpeg_encode, write_tone
from genre_daemon.tags import (
    GenreSnapshot,
    Tags,
    TagWriteError,
    clean_leftovers,
    current_genre,
    read_tags,
    restore_genre,
    write_genre,
)

from .conftest import (
    DATED,
    EXPECTED,
    FFMPEG_KINDS,
    GENRES,
    METADATA,
    UNTAGGED_MP3,
    ffprobe_tags,
    genre_values,
    make_noise_flac,
    pcm_digests,
    raw_tags,
    without_genre,
)
from .test_read import strip_id3v2

NEW = "Musique québécoise"  # not latin-1 only: v2.3 must store it as UTF-16
FORMAT = {"mp3": ("id3", "2.4"), "mp3-v23": ("id3", "2.3"), "aiff": ("id3", "2.4"), "flac": ("vorbis", None),
          "ogg": ("vorbis", None), "opus": ("vorbis", None), "m4a": ("mp4", None)}


def temp_of(path: Path) -> Path:
    """The temporary file's name, as the module promises it: hidden, next to the file."""
    return path.with_name(f".{path.name}.genre-daemon-tag.tmp")


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.genre-daemon-tag.tmp"))


@pytest.mark.parametrize("kind", [*FFMPEG_KINDS, "aiff"])
def test_write_changes_only_the_genre_and_restore_undoes_it(tagged, sources, tmp_path, kind):
    path = tagged(kind)
    original = shutil.copyfile(path, tmp_path / f"original{path.suffix}")
    path.chmod(0o640)
    raw_before, probe_before = raw_tags(path), sources.probe(kind)

    snapshot = write_genre(path, NEW)

    fmt, version = FORMAT[kind]
    assert snapshot == GenreSnapshot(fmt, version, True, ("Rock",), NEW)
    assert genre_values(path) == [NEW]
    assert read_tags(path) == Tags(**{**EXPECTED, "genre": NEW})
    probe_after = ffprobe_tags(path)
    assert probe_after["genre"] == NEW
    assert without_genre(probe_after) == without_genre(probe_before)
    assert without_genre(raw_tags(path)) == without_genre(raw_before)
    before_pcm, after_pcm = pcm_digests(original, path)
    assert before_pcm == after_pcm
    if kind == "flac":
        assert FLAC(path).info.md5_signature == FLAC(original).info.md5_signature != 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []

    stored = json.loads(json.dumps(snapshot.to_json()))  # as the journal keeps it
    assert stored["genre"] == ["Rock"]
    assert restore_genre(path, GenreSnapshot.from_json(stored)) is True
    assert genre_values(path) == ["Rock"] and current_genre(path) == "Rock"
    assert without_genre(raw_tags(path)) == without_genre(raw_before)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind, version", [("mp3", (2, 4, 0)), ("mp3-v23", (2, 3, 0))])
def test_id3_version_and_its_own_frames_are_kept(tagged, kind, version):
    path = tagged(kind, metadata=DATED)
    frames = ID3(path, translate=False)
    assert frames.version == version
    if version == (2, 3, 0):  # a recording time of 12:00, which a trip through v2.4 loses (minute 0)
        frames.add(TIME(encoding=0, text=["1200"]))
        frames.save(v2_version=3)
    snapshot = write_genre(path, NEW)
    assert path.read_bytes()[:4] == b"ID3" + bytes([version[1]])
    after = ID3(path, translate=False)
    assert after.version == version
    if version == (2, 3, 0):  # v2.3 dates stay TYER + TDAT, not a v2.4 TDRC
        assert str(after["TYER"]) == "1999" and str(after["TDAT"]) == "0105" and "TDRC" not in after
        assert str(after["TIME"]) == "1200"
    else:
        assert str(after["TDRC"]) == "1999-05-01"
    assert after["TCON"].text == [NEW]
    restore_genre(path, snapshot)
    assert ID3(path, translate=False).version == version and genre_values(path) == ["Rock"]


def test_plain_wav_gets_an_id3_chunk_and_undo_removes_it(tmp_path):
    path = write_tone(tmp_path / "plain.wav", seconds=2.0, sr=44100)
    old, old_pcm = path.read_bytes(), sf.read(path, dtype="int16")[0]
    snapshot = write_genre(path, NEW)
    assert snapshot == GenreSnapshot("id3", None, False, None, NEW)
    assert read_tags(path) == Tags(genre=NEW)
    assert ffprobe_tags(path)["genre"] == NEW
    assert (sf.read(path, dtype="int16")[0] == old_pcm).all()
    assert restore_genre(path, snapshot) is True
    assert path.read_bytes() == old


def test_untagged_mp3_gets_a_tag_and_undo_removes_it(tagged):
    path = tagged("mp3", metadata={}, extra=UNTAGGED_MP3)
    old = path.read_bytes()
    assert mutagen.File(path).tags is None
    snapshot = write_genre(path, NEW)
    assert snapshot.to_json() == {"format": "id3", "version": None, "had_tags": False, "genre": "absent",
                                  "written": NEW}
    assert ID3(path).version == (2, 4, 0) and genre_values(path) == [NEW]
    assert ffprobe_tags(path)["genre"] == NEW
    assert restore_genre(path, snapshot) is True
    assert path.read_bytes() == old  # not even an empty tag is left


@pytest.mark.parametrize("kind", ["mp3", "opus", "m4a"])
def test_restore_of_a_file_that_had_no_genre(tagged, kind):
    no_genre = {k: v for k, v in METADATA.items() if k != "genre"}
    path = tagged(kind, metadata=no_genre)
    raw_before = raw_tags(path)
    snapshot = write_genre(path, NEW)
    assert snapshot.values is None and snapshot.had_tags and snapshot.to_json()["genre"] == "absent"
    assert genre_values(path) == [NEW]
    assert restore_genre(path, GenreSnapshot.from_json(snapshot.to_json())) is True
    assert genre_values(path) is None and current_genre(path) is None
    assert "genre" not in ffprobe_tags(path)
    assert raw_tags(path) == raw_before


def test_restore_leaves_a_genre_the_user_changed(tagged):
    path = tagged("flac")
    snapshot = write_genre(path, NEW)
    assert current_genre(path) == NEW
    other = FLAC(path)  # another tagger changes the genre afterwards
    other["genre"] = "Blues"
    other.save()
    assert current_genre(path) == "Blues"
    inode = path.stat().st_ino
    assert restore_genre(path, snapshot) is False
    assert current_genre(path) == "Blues" and path.stat().st_ino == inode  # not even rewritten
    assert restore_genre(path, snapshot, only_if_ours=False) is True
    assert current_genre(path) == "Rock"
    assert restore_genre(path, snapshot) is True  # already the original: nothing to do


def test_several_vorbis_genres_come_back_in_place(tagged):
    path = tagged("flac")
    f = FLAC(path)
    f.tags.clear()
    f.tags.extend([("TITLE", "t"), ("GENRE", "Rock"), ("ARTIST", "a"), ("genre", "Pop"), ("DATE", "1999")])
    f.save()
    snapshot = write_genre(path, NEW)
    assert snapshot.values == ("Rock", "Pop")
    assert list(FLAC(path).tags) == [("TITLE", "t"), ("GENRE", NEW), ("ARTIST", "a"), ("DATE", "1999")]
    restore_genre(path, snapshot)
    assert list(FLAC(path).tags) == [("TITLE", "t"), ("GENRE", "Rock"), ("GENRE", "Pop"), ("ARTIST", "a"),
                                     ("DATE", "1999")]


def test_writing_the_genre_it_already_has_touches_nothing(tagged):
    path = tagged("mp3")
    before, data = path.stat(), path.read_bytes()
    snapshot = write_genre(path, "Rock")
    assert snapshot.values == ("Rock",) and snapshot.written == "Rock"
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns) and path.read_bytes() == data


def test_mtime_is_the_write_time_unless_kept(tagged):
    path = tagged("flac")
    old = 1_000_000_000_000_000_000  # 2001-09-09
    os.utime(path, ns=(old, old))
    started = time.time_ns()
    write_genre(path, "Jazz")
    assert path.stat().st_mtime_ns >= started - 2 * 10**9  # file systems round to their clock tick
    os.utime(path, ns=(old, old))
    write_genre(path, "Blues", keep_mtime=True)
    assert path.stat().st_mtime_ns == old and current_genre(path) == "Blues"


def test_mp4_gnre_atom_is_replaced_by_text(gnre_m4a, tmp_path):
    original = shutil.copyfile(gnre_m4a, tmp_path / "original.m4a")
    snapshot = write_genre(gnre_m4a, NEW)
    assert snapshot.values == ("Rock",)  # mutagen reads the gnre number as its name
    data = gnre_m4a.read_bytes()
    assert b"gnre" not in data and b"\xa9gen" in data
    assert ffprobe_tags(gnre_m4a)["genre"] == NEW
    assert mutagen.File(gnre_m4a).tags["\xa9gen"] == [NEW]
    before_pcm, after_pcm = pcm_digests(original, gnre_m4a)
    assert before_pcm == after_pcm
    restore_genre(gnre_m4a, snapshot)
    assert mutagen.File(gnre_m4a).tags["\xa9gen"] == ["Rock"]  # as text now


PLAIN = {"artist": "Plain Artist", "album": "Plain Album", "title": "Plain Title", "track": "3", "date": "1999",
         "genre": "Rock"}


def test_id3v1_tag_follows_the_genre(tagged):
    path = tagged("mp3", metadata=PLAIN, extra=("-write_id3v1", "1"))
    write_genre(path, "Jazz")
    v1 = path.read_bytes()[-128:]
    assert v1[:3] == b"TAG" and v1[3:14] == b"Plain Title" and v1[127] == GENRES.index("Jazz")
    assert ID3(path).version == (2, 4, 0) and genre_values(path) == ["Jazz"]


def test_id3v1_only_mp3_gets_a_v2_tag_and_keeps_its_v1(tagged):
    path = tagged("mp3", metadata=PLAIN, extra=("-write_id3v1", "1"))
    strip_id3v2(path)
    snapshot = write_genre(path, "Jazz")
    assert (snapshot.format, snapshot.version, snapshot.values) == ("id3", "1.1", ("Rock",))
    assert path.read_bytes()[:4] == b"ID3\x04" and path.read_bytes()[-1] == GENRES.index("Jazz")
    assert read_tags(path).to_json() == {"artist": "Plain Artist", "album": "Plain Album", "title": "Plain Title",
                                         "track": 3, "year": 1999, "genre": "Jazz"}
    assert ffprobe_tags(path)["genre"] == "Jazz"
    restore_genre(path, snapshot)
    assert genre_values(path) == ["Rock"] and path.read_bytes()[-1] == GENRES.index("Rock")


@pytest.mark.parametrize("genre, number", [("jazz", GENRES.index("Jazz")), ("hiphop", GENRES.index("Hip-Hop")),
                                           (NEW, GENRES.index("Rock"))])
def test_id3v1_keeps_its_comment_and_bytes_its_genre_mapped_and_undo_puts_it_back_exactly(tagged, genre, number):
    """Issue 19 T1: only the v1 genre byte changes (to the list's number for a name it has, in
    any case or punctuation; kept for one it lacks, not 0xff); undo restores the exact bytes."""
    path = tagged("mp3", metadata={**PLAIN, "comment": "Kept comment"}, extra=("-write_id3v1", "1"))
    old = path.read_bytes()[-128:]
    assert old[:3] == b"TAG" and old[97:109] == b"Kept comment" and old[127] == GENRES.index("Rock")
    snapshot = write_genre(path, genre)
    v1 = path.read_bytes()[-128:]
    assert v1[:127] == old[:127] and v1[127] == number
    assert genre_values(path) == [genre]
    stored = GenreSnapshot.from_json(json.loads(json.dumps(snapshot.to_json())))  # as the journal keeps it
    assert restore_genre(path, stored) is True
    assert path.read_bytes()[-128:] == old and genre_values(path) == ["Rock"]


def test_symlink_stays_a_link_to_the_tagged_file(tagged, tmp_path):
    target = tagged("ogg")
    link = tmp_path / "link.ogg"
    link.symlink_to(target)
    write_genre(link, NEW)
    assert link.is_symlink() and current_genre(target) == NEW


def test_long_file_name(tagged):
    path = tagged("opus", name="n" * 240 + ".opus")
    write_genre(path, NEW)
    assert current_genre(path) == NEW and leftovers(path.parent) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_owner_is_kept(tagged):
    path = tagged("m4a")
    os.chown(path, 65534, 65534)
    write_genre(path, NEW)
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


def test_leftover_blocks_a_write_until_cleaned(tagged):
    path = tagged("flac")
    temp_of(path).write_bytes(b"half a copy")
    data = path.read_bytes()
    with pytest.raises(TagWriteError, match="clean_leftovers") as err:
        write_genre(path, NEW)
    assert err.value.path == str(path) and path.read_bytes() == data
    assert clean_leftovers(path.parent) == [temp_of(path)]
    write_genre(path, NEW)
    assert current_genre(path) == NEW


def test_clean_leftovers_removes_only_its_own_files(tmp_path):
    sub = tmp_path / "Rock" / "deeper"
    sub.mkdir(parents=True)
    mine = [tmp_path / ".a.mp3.genre-daemon-tag.tmp", sub / ".b.flac.genre-daemon-tag.tmp"]
    others = [tmp_path / "a.mp3", tmp_path / ".hidden", sub / ".b.flac.partial.x.tmp",
              tmp_path / "genre-daemon-tag.tmp", tmp_path / "x.genre-daemon-tag.tmp"]
    for p in mine + others:
        p.write_bytes(b"x")
    (tmp_path / ".dir.genre-daemon-tag.tmp").mkdir()  # not a file: left alone
    assert clean_leftovers(tmp_path, recursive=False) == [mine[0]]
    assert clean_leftovers(tmp_path) == [mine[1]]
    assert not any(p.exists() for p in mine) and all(p.exists() for p in others)
    assert clean_leftovers(tmp_path / "missing") == []


# ---- files whose tags cannot be written: a clear error naming the file, the file untouched ----

def assert_refused(path: Path, match: str) -> TagWriteError:
    data = path.read_bytes() if path.is_file() else None
    with pytest.raises(TagWriteError, match=match) as err:
        write_genre(path, NEW)
    assert err.value.path == str(path) and str(path) in str(err.value)
    assert (path.read_bytes() if path.is_file() else None) == data
    assert leftovers(path.parent) == []
    return err.value


def test_read_only_file_in_read_only_folder(tagged, tmp_path):
    path = tagged("mp3")
    path.chmod(0o444)
    tmp_path.chmod(0o444)
    try:
        with pytest.raises(TagWriteError, match="read-only|Permission denied") as err:
            write_genre(path, NEW)
        assert err.value.path == str(path) and str(path) in str(err.value)
    finally:
        tmp_path.chmod(0o755)
    assert current_genre(path) == "Rock" and leftovers(tmp_path) == []


def test_not_audio_and_corrupt_and_unsupported_files(tagged, sources, tmp_path):
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(b"this is no mp3 " * 200)
    assert_refused(fake, "not an audio format")
    cut = tagged("flac", name="cut.flac")
    cut.write_bytes(cut.read_bytes()[:60])
    assert_refused(cut, "corrupt header")
    wavpack = ffmpeg_encode(sources.tone, tmp_path / "song.wv", "-metadata", "genre=Rock")
    assert_refused(wavpack, "APEv2 tags are not supported")
    folder = tmp_path / "folder.mp3"
    folder.mkdir()
    assert_refused(folder, "not a regular file")
    with pytest.raises(FileNotFoundError):
        write_genre(tmp_path / "gone.mp3", NEW)
    with pytest.raises(ValueError):
        write_genre(fake, "  ")


NOBODY = 65534


def python_for_nobody() -> list[str]:
    """A Python that the unprivileged user can start, with this project and mutagen importable
    (the venv's interpreter may live in a folder only root can enter)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), sysconfig.get_paths()["purelib"]])}
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3") or sys.executable]):
        try:
            subprocess.run([python, "-c", "import genre_daemon.tags"], user=NOBODY, group=NOBODY, extra_groups=[],
                           cwd="/", env=env, capture_output=True, check=True, timeout=60)
        except (OSError, subprocess.CalledProcessError):
            continue
        return [python]
    pytest.skip("no Python interpreter that 'nobody' may run can import genre_daemon.tags here")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the write as another user")
def test_permission_errors_as_an_ordinary_user(sources):
    """The daemon's user may not write the folder, or the file: run the write as 'nobody'."""
    python = python_for_nobody()
    with tempfile.TemporaryDirectory() as top:
        top_path = Path(top)
        top_path.chmod(0o755)
        song = sources.copy("flac", top_path, name="song.flac")
        song.chmod(0o666)  # writable file, but the folder is root's: no temporary file may go there
        theirs = sources.copy("flac", top_path, name="theirs.flac")  # 0644, root's
        code = (
            "import json, sys\n"
            "from genre_daemon.tags import write_genre, TagWriteError\n"
            "out = {}\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n"
            "        write_genre(p, 'Jazz'); out[p] = 'written'\n"
            "    except TagWriteError as e:\n"
            "        out[p] = [e.path, e.reason]\n"
            "print(json.dumps(out))\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), sysconfig.get_paths()["purelib"]])}
        proc = subprocess.run([*python, "-c", code, str(song), str(theirs)], user=NOBODY, group=NOBODY,
                              extra_groups=[], cwd="/", env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out[str(song)][0] == str(song) and "temporary file" in out[str(song)][1]
        assert out[str(theirs)] == [str(theirs), "the file is read-only"]
        assert current_genre(song) == current_genre(theirs) == "Rock" and leftovers(top_path) == []


def test_snapshot_from_json_rejects_junk():
    for junk in [{}, {"format": "id3"}, {"format": "id3", "version": None, "had_tags": "yes", "genre": "absent"},
                 {"format": "id3", "version": None, "had_tags": True, "genre": "Rock"}, []]:
        with pytest.raises(ValueError):
            GenreSnapshot.from_json(junk)


# ---- kill -9 in the middle of a write ----

LONGER = "Jazz fusion"  # longer than "Rock"
CHILD = "import sys\nfrom genre_daemon.tags import write_genre\nwrite_genre(sys.argv[1], sys.argv[2])\n"


def test_kill_9_leaves_the_old_file_or_the_tagged_one(tmp_path):
    """SIGKILL a real write at stages chosen at random (before the copy, during it, after it,
    after the rename), waiting on what the file system shows, not on sleeps."""
    big = make_noise_flac(tmp_path, seconds=20.0)
    FLAC(big).save(padding=lambda info: 0)  # no room: the longer genre must move all the audio
    old = big.read_bytes()
    assert len(old) > 3_000_000
    old_pcm, _ = sf.read(big, dtype="int16")
    old_md5 = FLAC(big).info.md5_signature
    raw_before = without_genre(raw_tags(big))
    temp = temp_of(big)
    rng = random.Random()
    stages = ["start", "renamed"] + ["temp", "half", "full"] * 2
    rng.shuffle(stages)
    mid_write_kills = 0
    for stage in stages:
        big.write_bytes(old)
        inode = big.stat().st_ino
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(big), LONGER], cwd=PROJECT_ROOT,
                                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        try:
            wait_for_stage(proc, stage, big, temp, inode, len(old))
            for _ in range(rng.randrange(200)):  # a random few more moments
                os.path.exists(temp)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
        left = temp.exists()
        mid_write_kills += left
        data = big.read_bytes()
        if data != old:  # then it must be the whole tagged file
            assert genre_values(big) == [LONGER], stage
            assert without_genre(raw_tags(big)) == raw_before, stage
            assert FLAC(big).info.md5_signature == old_md5
        pcm, _ = sf.read(big, dtype="int16")  # decodes, and to the same samples
        assert (pcm == old_pcm).all(), stage
        assert clean_leftovers(tmp_path) == ([temp] if left else [])
        assert leftovers(tmp_path) == []
    assert mid_write_kills >= 3, f"only {mid_write_kills} kills landed while a copy was being made"
    write_genre(big, "Jazz")  # nothing left behind blocks the next write
    assert current_genre(big) == "Jazz"
    assert leftovers(tmp_path) == []


def wait_for_stage(proc: subprocess.Popen, stage: str, path: Path, temp: Path, inode: int, size: int) -> None:
    """Return once the write reached ``stage`` (or the child finished first)."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if stage == "start":
            return
        try:
            if stage == "renamed":
                if path.stat().st_ino != inode:
                    return
                continue
            got = os.stat(temp).st_size
        except FileNotFoundError:
            continue
        if stage == "temp" or (stage == "half" and got >= size // 2) or (stage == "full" and got >= size):
            return
    assert proc.poll() is not None, f"the write never reached {stage!r}"
