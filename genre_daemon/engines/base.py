"""What every engine shares: the :class:`Result` of one file and the :class:`Engine` interface.

An engine turns many paths into results as they finish, in any order, each path exactly once;
a file that cannot be classified is a Result with ``error`` (the decoder's reason), never an
exception that ends the stream. Kept apart from ``engines/__init__`` so the engines import it
without importing the package face that imports them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from genre_daemon.errors import AudioDecodeError

if TYPE_CHECKING:
    from genre_daemon.model.inference import Classifier, Prediction


@dataclass(frozen=True)
class Result:
    """One file's outcome: its prediction, or the reason it could not be classified.

    ``incomplete``: the decoder found the file shorter than its header says (truncated, or
    still being written), as :class:`~genre_daemon.errors.AudioDecodeError` reports it."""

    path: str
    prediction: Prediction | None
    error: str | None
    incomplete: bool = False

    @property
    def ok(self) -> bool:
        return self.prediction is not None


def classify_one(classifier: Classifier, path: str) -> Result:
    """``path`` through ``classifier``, as a Result: the one place an engine's worker turns a
    file into an outcome, so every engine reports a bad file with the same reason text."""
    try:
        return Result(path, classifier.classify(path), None)
    except AudioDecodeError as exc:
        return Result(path, None, exc.reason, exc.incomplete)
    except Exception as exc:  # noqa: BLE001 - one odd file must not end a catalogue's stream
        return Result(path, None, f"unexpected error: {type(exc).__name__}: {exc}")


class Engine:
    """Classifies many files with one model; subclasses run it in processes or on a cluster."""

    model_version: str = ""

    def classify(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Result]:
        """One Result per path, as each finishes (any order)."""
        raise NotImplementedError

    def classify_many(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Prediction | AudioDecodeError]:
        """:meth:`classify` in the shape of ``Classifier.classify_many`` (a Prediction, or the
        file's AudioDecodeError), for callers written against a Classifier; finishing order."""
        for r in self.classify(paths):
            yield r.prediction if r.prediction is not None else AudioDecodeError(
                r.path, r.error or "unknown error", incomplete=r.incomplete)

    def close(self) -> None:
        """Release the workers (idempotent)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
