"""The status file: what ``genre-daemon status`` (and the web page) read of a running daemon,
the counters it reports, and the journal's files per state as ``status`` shows them."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.filing.journal import Journal

__all__ = ["STATUS_FILE", "Counters", "file_counts", "read_status", "status_path", "write_status"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")

STATUS_FILE = "daemon.json"


def status_path(settings: Settings) -> Path:
    return settings.state_dir / STATUS_FILE


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The running daemon's status file, or None when no daemon is running for this state_dir."""
    try:
        data = json.loads(status_path(settings).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


@dataclass
class Counters:
    """Files placed, sent to review and quarantined since the start, and the last one taken."""

    placed: int = 0
    review: int = 0
    quarantined: int = 0
    last_file: str = ""


def write_status(settings: Settings, status: dict[str, Any]) -> None:
    """Replace the status file atomically (0o600); a failure is only logged (debug)."""
    path = status_path(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(status, fh)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)


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
