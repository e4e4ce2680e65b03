"""What the daemon tests share: a tree of folders with a real ``genre-daemon run`` subprocess
(:class:`Tree`), waiting on a condition with a deadline (:func:`wait_for`), a test tone, and the
mark that skips a module when the shipped model is absent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import write_tone
from genre_daemon.resources import default_model_dir

pytestmark = pytest.mark.skipif(not (default_model_dir() / "model.json").is_file(), reason="no shipped model")

AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".au", ".m4a", ".opus", ".aiff", ".aif"}


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``cond`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Tree:
    """An inbox/library/state layout with a config file, and the daemon process running on it."""

    def __init__(self, root: Path, inbox: Path | None = None, **overrides: object) -> None:
        self.root = root
        self.inbox = inbox or root / "inbox"
        self.library = root / "library"
        self.review = root / "library" / "_review"
        self.quarantine = self.inbox / ".quarantine"
        self.state = root / "state"
        self.config = root / "config.yaml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.settings: dict[str, object] = {
            "inbox": str(self.inbox), "library": str(self.library), "review_dir": str(self.review),
            "quarantine_dir": str(self.quarantine), "state_dir": str(self.state),
            "model": str(default_model_dir()), "settle_seconds": 0.3, "rescan_interval": 2,
            "min_confidence": 0.0, "folder_quiet_seconds": 1.0, **overrides,
        }
        self.write_config()
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.log = root / "daemon.log"

    def write_config(self) -> None:
        self.config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in self.settings.items()))

    def start(self, umask: int = -1) -> None:
        """Start the daemon (``umask``: the child's, e.g. 0o077 as under the shipped user unit;
        -1 keeps this process's)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"), umask=umask,
        )
        wait_for(lambda: (self.state / "daemon.json").exists() or self.proc.poll() is not None,
                 60, "the daemon to start")
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def reap(self) -> None:
        """After a test, pass or fail: a daemon still running is killed and waited for."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "genre_daemon.cli", *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=60)

    def placed(self) -> list[Path]:
        """Audio files in the library (genre folders and review) whose move has finished.

        A move links the file into place, then removes the inbox name: a library file whose
        name is still in the inbox is mid-move, not yet placed (waiting on it and then checking
        the inbox would race that last step)."""
        moving = self._inbox_names()
        return sorted(p for p in files_under(self.library) if p.suffix.lower() in AUDIO_EXT and p.name not in moving)

    def quarantined(self) -> list[Path]:
        """Files in quarantine whose move has finished (see :meth:`placed`)."""
        moving = self._inbox_names()
        return sorted(p for p in self.quarantine.glob("*")
                      if not p.name.endswith(".reason.txt") and p.name not in moving)

    def _inbox_names(self) -> set[str]:
        return {p.name for p in self.in_inbox()}

    def in_inbox(self) -> list[Path]:
        return sorted(p for p in files_under(self.inbox) if self.quarantine not in p.parents)

    def history(self) -> list[dict[str, object]]:
        out = self.cli("history", "--json")
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    def no_partials(self) -> bool:
        return not [p for p in files_under(self.root) if ".genre-daemon-partial-" in p.name]


def files_under(top: Path) -> list[Path]:
    """Every file under ``top`` as it is now. The daemon moves files and removes emptied folders
    while a test looks: a folder that vanishes mid-walk is skipped, never an error (``rglob``
    raised ``FileNotFoundError`` there)."""
    found = [Path(folder) / name for folder, _, names in os.walk(top) for name in names]
    return [p for p in found if p.is_file()]


def tone(path: Path, seconds: float = 4.0, freq: float = 440.0) -> Path:
    return write_tone(path, seconds=seconds, sr=22050, freq=freq)
