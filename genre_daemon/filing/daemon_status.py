"""Reading what a running daemon reports: its status file ``state_dir/daemon.json`` and the
journal's files per state, as ``genre-daemon status`` and the review page both show them.

Low in the package (beside the journal) so the page reads the same file and the same numbers as
the command line without importing the daemon's service; the daemon writes the file
(:func:`genre_daemon.daemon.status.write_status`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.filing.journal import Journal

__all__ = ["STATUS_FILE", "file_counts", "read_status", "status_path"]

STATUS_FILE = "daemon.json"


def status_path(settings: Settings) -> Path:
    """Where the daemon of ``settings`` keeps its status file."""
    return settings.state_dir / STATUS_FILE


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The running daemon's status file, or None when no daemon is running for this state_dir
    (no file, a file that is not a JSON object, or its pid gone)."""
    try:
        data = json.loads(status_path(settings).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def file_counts(journal: Journal) -> dict[str, int]:
    """Files per state, with ``held`` beside ``seen``: the files you undid wait in the inbox as
    ``seen`` rows, but are left alone until they change, so they are not counted as waiting."""
    counts = journal.counts()
    held = journal.held_count()
    out: dict[str, int] = {}
    for state, n in counts.items():
        if state == "seen":
            out["seen"], out["held"] = n - held, held
        else:
            out[state] = n
    return out
