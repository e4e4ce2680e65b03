"""An import's progress: files done out of the total, the rate and the time left, on the
terminal (tqdm) and in ``state_dir/import.json``, which ``genre-daemon status`` reads. An import
that was stopped (SIGINT, or killed) leaves the file behind, so ``status`` can say which files
wait for the next ``import`` of that folder (the daemon leaves them alone). Light: nothing here
imports the model."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.atomic import atomic_write
from genre_daemon.config import Settings

PROGRESS_FILE = "import.json"


class Progress:
    """Files done out of the total, the rate and the time left: on the terminal (tqdm) and in
    ``state_dir/import.json`` for ``genre-daemon status``."""

    def __init__(self, settings: Settings, source: Path, total: int, stream: TextIO | None, *,
                 command: str = "import") -> None:
        """``command``: the bar's label; only ``import`` keeps the progress file (``status``
        reads it as the import's)."""
        from tqdm import tqdm

        self.path = settings.state_dir / PROGRESS_FILE
        self.record = command == "import"
        self.source, self.total, self.done, self.started = source, total, 0, time.time()
        self._bar = tqdm(total=total, unit="file", desc=f"{command} {source.name}", file=stream or sys.stderr,
                         disable=True if stream is None else None,  # None: only on a terminal, as the others
                         dynamic_ncols=True, smoothing=0.05)
        self._written = 0.0
        self.stopped = False
        self.write()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        if time.monotonic() - self._written >= 1.0:
            self.write()

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.time() - self.started)
        rate = self.done / elapsed
        left = self.total - self.done
        return {"pid": os.getpid(), "source": str(self.source), "total": self.total, "done": self.done,
                "rate": round(rate, 3), "eta_seconds": round(left / rate, 1) if rate > 0 else None,
                "started": self.started, "stopped": self.stopped}

    def write(self) -> None:
        self._written = time.monotonic()
        if not self.record:
            return
        try:
            text = json.dumps(self.snapshot())
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError:
            pass

    def close(self, finished: bool = True) -> None:
        """The run ended: the file goes when it finished, and stays marked stopped otherwise."""
        self._bar.close()
        if not self.record:
            return
        if finished:
            self.path.unlink(missing_ok=True)
            return
        self.stopped = True
        self.write()


def read_progress(settings: Settings) -> dict[str, Any] | None:
    """The import of this state_dir, for ``status``: a running one's progress (``state``
    "running"), or one that was stopped or killed with files still waiting for it (``state``
    "stopped", ``waiting``: how many); None when there is neither."""
    try:
        data = json.loads((settings.state_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return None
        if not data.get("stopped") and _alive(int(data["pid"])):
            return {**data, "state": "running"}
        waiting = _waiting(settings, Path(data["source"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not waiting:
        return None
    return {**data, "state": "stopped", "waiting": waiting, "rate": 0.0, "eta_seconds": None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


def _waiting(settings: Settings, source: Path) -> int:
    """Files of ``source`` recorded in the journal and not yet placed: the next import's work."""
    from genre_daemon.filing.journal import Journal, JournalError

    if not settings.journal_path.exists():
        return 0
    try:
        with Journal(settings.journal_path) as journal:
            return len(journal.recoverable(under=source))
    except JournalError:
        return 0
