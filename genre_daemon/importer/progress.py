"""An import's progress: files done out of the total, the rate and the time left, on the
terminal (tqdm) and in ``state_dir/import.json``, which ``genre-daemon status`` reads. Light:
nothing here imports the model."""

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

    def __init__(self, settings: Settings, source: Path, total: int, stream: TextIO | None) -> None:
        from tqdm import tqdm

        self.path = settings.state_dir / PROGRESS_FILE
        self.source, self.total, self.done, self.started = source, total, 0, time.time()
        self._bar = tqdm(total=total, unit="file", desc=f"import {source.name}", file=stream or sys.stderr,
                         disable=stream is None, dynamic_ncols=True, smoothing=0.05)
        self._written = 0.0
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
                "started": self.started}

    def write(self) -> None:
        self._written = time.monotonic()
        try:
            text = json.dumps(self.snapshot())
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError:
            pass

    def close(self) -> None:
        self._bar.close()
        self.path.unlink(missing_ok=True)


def read_progress(settings: Settings) -> dict[str, Any] | None:
    """A running import's progress (None when none runs: no file, or its process is gone)."""
    try:
        data = json.loads((settings.state_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None
