"""The project's exceptions: one root, one subclass per kind of failure a caller handles."""

from __future__ import annotations

import os


class GenreDaemonError(Exception):
    """Root of every error genre-daemon raises on purpose."""


class ConfigError(GenreDaemonError):
    """A config file is missing, unreadable or holds a bad key or value."""


class AudioDecodeError(GenreDaemonError):
    """A file could not be turned into audio samples; names the file and the reason.

    ``incomplete``: the file holds less than its header promises (truncated), which is also
    what a file still being written looks like; the daemon holds such a file back for a while
    instead of quarantining it at once. By default it is read off the reason ("truncated...").
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, *, incomplete: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.incomplete = reason.startswith("truncated") if incomplete is None else incomplete
        super().__init__(f"{self.path}: {reason}")


class ModelError(GenreDaemonError):
    """A model directory is missing, malformed, or refers to something unsafe."""


class MoveError(GenreDaemonError):
    """A file could not be moved where it belongs; the source is left in place."""


class SourceChangedError(MoveError):
    """The file changed (or a writer held it open) between settling and the end of its move:
    it was not placed, and is back in the inbox to settle again. ``returned`` is its inbox name
    when a move had to be reversed and its old name was taken meanwhile (else None)."""

    def __init__(self, message: str, returned: os.PathLike[str] | str | None = None) -> None:
        super().__init__(message)
        self.returned = returned
