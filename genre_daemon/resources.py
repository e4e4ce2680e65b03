"""Where the shipped files are: the checkout's own folder, else the copy installed under
``<prefix>/share/genre-daemon`` (the wheel's data files). The one place that knows both."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
INSTALLED = Path(sys.prefix) / "share" / "genre-daemon"


def shipped(relative: str, marker: str, env: str | None = None) -> Path:
    """``$env`` if set, else the first of the checkout's and the installed ``relative`` folder
    that holds ``marker``; the checkout's when neither does (so an error names a real place)."""
    if env and os.environ.get(env):
        return Path(os.environ[env])
    candidates = [CHECKOUT / relative, INSTALLED / relative]
    for c in candidates:
        if (c / marker).is_file():
            return c
    return candidates[0]


def default_model_dir() -> Path:
    """The shipped genre model: ``$GENRE_DAEMON_MODEL``, or ``models/default``."""
    return shipped("models/default", "model.json", env="GENRE_DAEMON_MODEL")


def musicnn_dir() -> Path:
    """The shipped musicnn weights: ``$GENRE_DAEMON_MUSICNN``, or ``models/musicnn``."""
    return shipped("models/musicnn", "provenance.json", env="GENRE_DAEMON_MUSICNN")
