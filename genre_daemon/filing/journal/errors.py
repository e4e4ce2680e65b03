"""The journal's errors: one for a journal file that cannot be used, one for a move the state
machine does not allow."""

from __future__ import annotations

from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.journal.states import State


class JournalError(GenreDaemonError):
    """The journal file cannot be opened, read or written; names the file and the reason."""


class TransitionError(JournalError):
    """A file row was asked to make a move its state does not allow."""

    def __init__(self, file_id: int, path: str, src: State, dst: State, why: str = "") -> None:
        self.file_id = file_id
        self.path = path
        self.src = src
        self.dst = dst
        detail = f": {why}" if why else ""
        super().__init__(
            f"{path!r} (journal row {file_id}): cannot go from {src.value} to {dst.value}{detail}"
        )
