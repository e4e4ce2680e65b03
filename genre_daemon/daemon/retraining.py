"""The learning loop, supervised from the daemon: a promoted (or rolled back) model picked up
without a restart, the library scanned for new labels, the retrain child spawned and polled, and
the review folder classified again after a model switch. A mixin of
:class:`genre_daemon.daemon.service.Daemon`."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.errors import AudioDecodeError, GenreDaemonError
from genre_daemon.filing.journal import FileIdentity, Journal, State
from genre_daemon.learning.versions import resolve_model_dir
from genre_daemon.model.inference import Classifier

__all__ = ["Retraining"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")


class Retraining:
    """Model switches, label scans and the retrain child (the state: see the Daemon; a file
    the new model is sure of is placed by :meth:`FileHandling._place`, the Daemon's other half)."""

    settings: Settings
    journal: Journal | None
    classifier: Classifier | None
    _model_dir: Path | None
    _trainer: Any  # the retrain child process, while one runs
    _new_labels: int
    _label_scan: threading.Thread | None
    _hashes: Any  # genre_daemon.learning.labels.HashCache
    _stop: threading.Event

    def _check_model(self) -> None:
        """Pick up a promotion or a rollback (the pointer in state_dir/models) without a restart."""
        try:
            current = resolve_model_dir(self.settings).resolve()
        except OSError:
            return
        if current == self._model_dir:
            return
        try:
            classifier = Classifier.from_dir(current)
            classifier.warm_up()
        except GenreDaemonError as exc:
            log.error("model %s not loaded, keeping %s: %s", current, self._model_dir, exc)
            self._model_dir = current  # do not retry every tick; a new switch is noticed again
            return
        old = self.classifier.version if self.classifier is not None else None
        self.classifier, self._model_dir = classifier, current
        log.info("model switched: %s -> %s", old, classifier.version)
        threading.Thread(target=self._reclassify_review, name="review", daemon=True).start()

    def _label_scan_idle(self) -> bool:
        return self._label_scan is None or not self._label_scan.is_alive()

    def _start_label_scan(self) -> None:
        if self._label_scan_idle():
            # A big library takes seconds to walk: not on the main loop.
            self._label_scan = threading.Thread(target=self._maybe_retrain, name="labels", daemon=True)
            self._label_scan.start()

    def _maybe_retrain(self) -> None:
        """At a rescan: count the new labels; start the trainer when a retrain is due."""
        from genre_daemon.learning import retrain
        from genre_daemon.learning.labels import new_labels, scan_labels

        s = self.settings
        if self.journal is None or self.classifier is None:
            return
        try:
            labels = scan_labels(s, self.journal, hasher=self._hashes, known=self.classifier.model.genres)
            used = set(self.classifier.model.training.get("label_hashes", []))
            self._new_labels = len(new_labels(labels, used, hasher=self._hashes))
        except OSError as exc:
            log.warning("cannot scan the library for labels: %s", exc)
            return
        last = retrain.read_progress(s) or {}
        if self._trainer is None and retrain.due(self._new_labels, last.get("finished"), time.time(), s):
            log.info("%d new labels: retraining in the background", self._new_labels)
            self._trainer = retrain.spawn(s.source)

    def _check_trainer(self) -> None:
        if self._trainer is None or self._trainer.poll() is None:
            return
        from genre_daemon.learning import retrain

        code, self._trainer = self._trainer.returncode, None
        progress = retrain.read_progress(self.settings) or {}
        if code != 0 and progress.get("state") == "running":
            retrain.write_progress(self.settings, state="failed", finished=time.time(),
                                   reason=f"trainer exited with status {code}")
        log.info("retrain finished (status %s): %s", code, progress.get("reason", progress.get("state")))

    def _reclassify_review(self) -> None:
        """After a model switch: files in review that the new model is sure of move on."""
        s, journal = self.settings, self.journal
        if journal is None or not s.review_dir.is_dir():
            return
        for path in sorted(p for p in s.review_dir.iterdir() if p.is_file() and not p.is_symlink()
                           and p.suffix.lower().lstrip(".") in s.extensions and not p.name.startswith(".")):
            classifier = self.classifier
            if self._stop.is_set() or classifier is None:
                return
            try:
                pred = classifier.classify(path)
            except AudioDecodeError:
                continue
            if pred.confidence < s.min_confidence:
                continue
            row, _ = journal.observe(path, FileIdentity.of(path))
            if row.state not in (State.SEEN, State.SETTLING):
                continue
            journal.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
            self._place(journal.get(row.id) or row, pred)

    def close_trainer(self) -> None:
        if self._trainer is not None and self._trainer.poll() is None:
            self._trainer.terminate()
            try:
                self._trainer.wait(5)
            except Exception:
                self._trainer.kill()
