"""A suspect file runs alone: :class:`SoloLock`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SoloLock"]


class SoloLock:
    """Shared for ordinary files, exclusive for a suspect (one a stop interrupted before): a
    suspect waits for the others to finish and runs alone; a waiting suspect goes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._solo = False
        self._solo_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._solo and not self._solo_waiting)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def solo(self) -> Iterator[None]:
        with self._cond:
            self._solo_waiting += 1
            self._cond.wait_for(lambda: not self._solo and not self._active)
            self._solo_waiting -= 1
            self._solo = True
        try:
            yield
        finally:
            with self._cond:
                self._solo = False
                self._cond.notify_all()
