"""The project's exceptions: one root, one subclass per kind of failure a caller handles."""

from __future__ import annotations

import os


class GenreDaemonError(Exception):
    """Root of every error genre-daemon raises on purpose."""


class ConfigError(GenreDaemonError):
    """A config file is missing, unreadable or holds a bad key or value."""


class AudioDecodeError(GenreDaemonError):
    """A file could not be turned into audio samples; names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(GenreDaemonError):
    """A model directory is missing, malformed, or refers to something unsafe."""


class MoveError(GenreDaemonError):
    """A file could not be moved where it belongs; the source is left in place."""
