"""The learning loop, supervised from the daemon: a promoted (or rolled back) model picked up
without a restart, the library scanned for new labels, the retrain child spawned and polled, and
the review folder classified again after a model switch. Held by
:class:`genre_daemon.daemon.service.Daemon`; the model it loads is the one its filer classifies with."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from genre_daemon.errors import AudioDecodeError, GenreDaemonError
from genre_daemon.filer.core import Filer
from genre_daemon.filing.journal import FileIdentity, State
from genre_daemon.learning.versions import resolve_model_dir
from genre_daemon.model.inference import Classifier

__all__ = ["LearningLoop"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")


class LearningLoop:
    """Model switches, label scans and the retrain child (a file the new model is sure of is
    placed by the filer, as any file is)."""

    def __init__(self, filer: Filer, hashes: Any, classifier: Classifier, model_dir: Path) -> None:
        self.filer = filer
        self.hashes = hashes  # genre_daemon.learning.labels.HashCache, shared with the filer
        self.classifier = classifier
        self.model_dir: Path | None = model_dir  # the pointer last seen (a broken one is not retried)
        self.loaded_dir = model_dir  # the directory of the model in use (a suspect's separate process loads it)
        self.trainer: Any = None  # the retrain child process, while one runs
        self.new_labels = 0
        self._label_scan: threading.Thread | None = None
        filer.classifier = classifier

    def check_model(self) -> None:
        """Pick up a promotion or a rollback (the pointer in state_dir/models) without a restart."""
        try:
            current = resolve_model_dir(self.filer.settings).resolve()
        except OSError:
            return
        if current == self.model_dir:
            return
        try:
            classifier = Classifier.from_dir(current)
            classifier.warm_up()
        except GenreDaemonError as exc:
            log.error("model %s not loaded, keeping %s: %s", current, self.model_dir, exc)
            self.model_dir = current  # do not retry every tick; a new switch is noticed again
            return
        old = self.classifier.version if self.classifier is not None else None
        self.classifier, self.model_dir, self.loaded_dir = classifier, current, current
        self.filer.classifier = classifier
        log.info("model switched: %s -> %s", old, classifier.version)
        threading.Thread(target=self._reclassify_review, name="review", daemon=True).start()

    def label_scan_idle(self) -> bool:
        return self._label_scan is None or not self._label_scan.is_alive()

    def start_label_scan(self) -> None:
        if self.label_scan_idle():
            # A big library takes seconds to walk: not on the main loop.
            self._label_scan = threading.Thread(target=self._maybe_retrain, name="labels", daemon=True)
            self._label_scan.start()

    def _maybe_retrain(self) -> None:
        """At a rescan: count the new labels; start the trainer when a retrain is due."""
        from genre_daemon.learning import retrain
        from genre_daemon.learning.labels import new_labels, scan_labels

        s = self.filer.settings
        if self.filer.journal is None or self.classifier is None:
            return
        try:
            labels = scan_labels(s, self.filer.journal, hasher=self.hashes, known=self.classifier.model.genres)
            if s.use_artist_genre:  # a correction teaches its artist now, before any retrain
                self.filer.artists.refresh(self.filer.journal, labels)
            used = set(self.classifier.model.training.get("label_hashes", []))
            self.new_labels = len(new_labels(labels, used, hasher=self.hashes))
        except OSError as exc:
            log.warning("cannot scan the library for labels: %s", exc)
            return
        last = retrain.read_progress(s) or {}
        if self.trainer is None and retrain.due(self.new_labels, last.get("finished"), time.time(), s):
            log.info("%d new labels: retraining in the background", self.new_labels)
            self.trainer = retrain.spawn(s.source)

    def check_trainer(self) -> None:
        if self.trainer is None or self.trainer.poll() is None:
            return
        from genre_daemon.learning import retrain

        code, self.trainer = self.trainer.returncode, None
        progress = retrain.read_progress(self.filer.settings) or {}
        if code != 0 and progress.get("state") == "running":
            retrain.write_progress(self.filer.settings, state="failed", finished=time.time(),
                                   reason=f"trainer exited with status {code}")
        log.info("retrain finished (status %s): %s", code, progress.get("reason", progress.get("state")))

    def _reclassify_review(self) -> None:
        """After a model switch: files in review that the new model is sure of move on."""
        s, journal = self.filer.settings, self.filer.journal
        if journal is None or not s.review_dir.is_dir():
            return
        for path in sorted(p for p in s.review_dir.iterdir() if p.is_file() and not p.is_symlink()
                           and p.suffix.lower().lstrip(".") in s.extensions and not p.name.startswith(".")):
            classifier = self.classifier
            if self.filer.stop.is_set() or classifier is None:
                return
            try:
                pred = classifier.classify(path)
            except AudioDecodeError:
                continue
            if not pred.confidence >= s.min_confidence:  # not sure (a NaN score included): it stays
                continue
            row, _ = journal.observe(path, FileIdentity.of(path))
            if row.state not in (State.SEEN, State.SETTLING):
                continue
            journal.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
            self.filer.place(journal.get(row.id) or row, pred)

    def close_trainer(self) -> None:
        if self.trainer is not None and self.trainer.poll() is None:
            self.trainer.terminate()
            try:
                self.trainer.wait(5)
            except Exception:
                self.trainer.kill()
