"""Logging: journal-aware when JOURNAL_STREAM names our stderr, plain lines otherwise.

Child processes get a real file as stderr, with JOURNAL_STREAM set (or not) to that file's
device and inode, exactly as systemd would set it for the journal's stream."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.system.logs import (
    JournalFieldHandler,
    PriorityFormatter,
    file_fields,
    journal_entry,
    setup_logging,
    stream_is_journal,
    syslog_priority,
)

CHILD = """
import logging, sys
from genre_daemon.system.logs import setup_logging, file_fields
setup_logging(verbose={verbose}, journal_socket=sys.argv[1])
log = logging.getLogger("genre_daemon.daemon.service")
log.debug("debugging")
log.info("song.wav -> jazz (0.87)", extra=file_fields("/in/song.wav", "jazz", 0.87))
log.warning("bad.wav -> quarantine: not audio", extra=file_fields("/in/bad.wav"))
try:
    raise RuntimeError("boom")
except RuntimeError:
    log.exception("internal error")
"""


def run_child(tmp_path: Path, journal_stream: str | None, verbose: bool = False) -> list[str]:
    """Run CHILD with stderr on a real file; ``journal_stream``: "match" sets JOURNAL_STREAM to
    that file's dev:ino, "other" to another file's, anything else is used as the value."""
    err = tmp_path / "stderr.txt"
    other = tmp_path / "other.txt"
    other.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with open(err, "wb") as fh:
        if journal_stream is not None:
            st = os.fstat(fh.fileno()) if journal_stream == "match" else os.stat(other)
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}" if journal_stream in ("match", "other") \
                else journal_stream
        # no journald socket at this path, so the journal mode falls back to <N> lines on stderr
        subprocess.run([sys.executable, "-c", CHILD.format(verbose=verbose), str(tmp_path / "no-journal.sock")],
                       stderr=fh, stdout=subprocess.DEVNULL, env=env, check=True, timeout=60)
    return err.read_text().splitlines()


def test_stderr_that_is_the_journal_gets_priority_prefixed_lines(tmp_path: Path) -> None:
    lines = run_child(tmp_path, "match")
    assert lines[0] == "<6>INFO song.wav -> jazz (0.87)"
    assert lines[1] == "<4>WARNING bad.wav -> quarantine: not audio"
    assert lines[2] == "<3>ERROR internal error"
    # every traceback line keeps the error priority (journald takes each line as one entry)
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines[2:])
    assert lines[-1] == "<3>RuntimeError: boom"
    assert not any("debugging" in line for line in lines)


def test_verbose_journal_mode_includes_debug_at_priority_7(tmp_path: Path) -> None:
    lines = run_child(tmp_path, "match", verbose=True)
    assert lines[0] == "<7>DEBUG debugging"


@pytest.mark.parametrize("journal_stream", [None, "other", "garbage", "1:2:3", ""])
def test_anything_else_gets_lines_with_time_and_level(tmp_path: Path, journal_stream: str | None) -> None:
    """Not under journald (a terminal, a log file): nothing else stamps the lines, so each has its time."""
    lines = run_child(tmp_path, journal_stream)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    assert re.fullmatch(stamp + r"INFO song\.wav -> jazz \(0\.87\)", lines[0]), lines
    assert re.fullmatch(stamp + r"WARNING bad\.wav -> quarantine: not audio", lines[1]), lines
    assert re.fullmatch(stamp + r"ERROR internal error", lines[2]), lines
    assert lines[-1] == "RuntimeError: boom"
    assert not any(line.startswith("<") for line in lines)


def test_verbose_plain_lines_carry_time_and_level(tmp_path: Path) -> None:
    lines = run_child(tmp_path, None, verbose=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} DEBUG debugging", lines[0])
    assert re.fullmatch(r"\S+ \S+ INFO song\.wav -> jazz \(0\.87\)", lines[1])


# ---------------------------------------------------------------- pieces
def test_stream_is_journal_compares_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as fh:
        st = os.fstat(fh.fileno())
        assert stream_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fh)
        assert not stream_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fh)
        assert not stream_is_journal({}, fh)
        assert not stream_is_journal({"JOURNAL_STREAM": "x:y"}, fh)
    assert not stream_is_journal({"JOURNAL_STREAM": "1:2"}, io.StringIO())  # no file descriptor


def test_file_fields() -> None:
    assert file_fields("/in/a.wav", "jazz", 0.8666) == {
        "journal_fields": {"FILE": "/in/a.wav", "GENRE": "jazz", "CONFIDENCE": "0.867"}}
    assert file_fields("/in/a.wav") == {"journal_fields": {"FILE": "/in/a.wav"}}


@pytest.mark.parametrize(("level", "priority"), [
    (logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3), (logging.CRITICAL, 2),
    (logging.INFO + 5, 4), (5, 7),
])
def test_syslog_priority(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority


def _record(level: int = logging.INFO, msg: str = "hello", **extra: object) -> logging.LogRecord:
    record = logging.getLogger("genre_daemon.test").makeRecord(
        "genre_daemon.test", level, __file__, 42, msg, (), None, func="f")
    record.__dict__.update(extra)
    return record


def test_journal_entry_carries_file_fields_and_drops_invalid_names() -> None:
    fields = file_fields("/in/a.wav", "blues", 0.5)["journal_fields"]
    entry = journal_entry(_record(logging.WARNING, journal_fields={**fields, "bad name": "x",
                                                                       "_PID": "1", "lower": "x"}), "hello")
    assert entry["FILE"] == "/in/a.wav" and entry["GENRE"] == "blues" and entry["CONFIDENCE"] == "0.500"
    assert entry["PRIORITY"] == "4"
    assert entry["SYSLOG_IDENTIFIER"] == "genre-daemon"
    assert entry["LOGGER"] == "genre_daemon.test" and entry["CODE_LINE"] == 42
    assert not {"bad name", "_PID", "lower"} & entry.keys()  # journald would reject or trust them


def test_priority_formatter_prefixes_every_line() -> None:
    text = PriorityFormatter("%(levelname)s %(message)s").format(_record(logging.ERROR, "a\nb"))
    assert text == "<3>ERROR a\n<3>b"


def test_journal_handler_sends_fields_over_a_real_socket(tmp_path: Path) -> None:
    """The handler with a sender speaking journald's native protocol to a socket in tmp_path."""
    path = str(tmp_path / "journal.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)

    def send(message: str, fields: dict[str, object]) -> None:
        lines = [f"MESSAGE={message}", *(f"{k}={v}" for k, v in fields.items())]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto("\n".join(lines).encode() + b"\n", path)

    stream = io.StringIO()
    handler = JournalFieldHandler(send, stream)
    try:
        handler.handle(_record(logging.INFO, "a.wav -> jazz (0.90)", **file_fields("/in/a.wav", "jazz", 0.9)))
        got = dict(line.split("=", 1) for line in receiver.recv(65536).decode().splitlines())
    finally:
        receiver.close()
    assert got["MESSAGE"] == "a.wav -> jazz (0.90)"
    assert (got["FILE"], got["GENRE"], got["CONFIDENCE"], got["PRIORITY"]) == ("/in/a.wav", "jazz", "0.900", "6")
    assert stream.getvalue() == ""


def test_journal_handler_falls_back_to_stderr_when_the_journal_refuses(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.sock")

    def send(message: str, fields: dict[str, object]) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), gone)  # FileNotFoundError: nobody listens there

    stream = io.StringIO()
    JournalFieldHandler(send, stream).handle(_record(logging.WARNING, "not lost"))
    assert stream.getvalue() == "<4>WARNING not lost\n"


def test_setup_logging_twice_replaces_its_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    stream = io.StringIO()
    try:
        first = setup_logging(stream=stream, environ={})
        second = setup_logging(stream=stream, environ={})
        assert first not in root.handlers and second in root.handlers
        assert [h for h in root.handlers if h not in before] == [second]
        logging.getLogger("genre_daemon.test").info("once")
        assert stream.getvalue().endswith(" INFO once\n") and stream.getvalue().count("\n") == 1
    finally:
        root.removeHandler(second)
        root.setLevel(level)
