"""What ``status`` says about learning: the new labels since the last retrain (counted by the
running daemon at each rescan) and the genres waiting for examples (label folders of a genre the
model's network does not have yet, with fewer than ``retrain.min_per_genre`` files).

The waiting genres are counted here, from the library and the journal, with the labels code the
retrain uses (:func:`~genre_daemon.learning.labels.scan_labels`,
:func:`~genre_daemon.learning.labels.trainable_genres`), so ``status`` says them with the daemon
stopped too. Light: the model's genres are read from its ``model.json``, no weights, no torch.
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["label_lines", "waiting_genres"]

log = logging.getLogger("genre_daemon.commands.labels")


def _model_genres(settings: Any) -> tuple[list[str], list[str]]:
    """The daemon's model's genres, and those its network learned (the rest are prior-only)."""
    from genre_daemon.learning.versions import resolve_model_dir

    meta = json.loads((resolve_model_dir(settings) / "model.json").read_text(encoding="utf-8"))
    genres = [str(g) for g in meta["genres"]]
    return genres, genres[:int(meta["architecture"].get("n_classes", len(genres)))]


def waiting_genres(settings: Any) -> dict[str, int]:
    """{genre: labels so far} of each new genre below ``retrain.min_per_genre``; empty when
    there is none, no journal yet, or the model or library cannot be read (said at debug level:
    ``status`` still answers)."""
    if not settings.journal_path.exists():
        return {}
    from genre_daemon.filing.journal import Journal
    from genre_daemon.learning.labels import scan_labels, trainable_genres

    try:
        genres, learned = _model_genres(settings)
        with Journal(settings.journal_path) as journal:
            labels = scan_labels(settings, journal, known=genres)
        return trainable_genres(labels, learned, settings.retrain.min_per_genre)[1]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("status: cannot count the labels: %s", exc)
        return {}


def label_lines(settings: Any, new_labels: int | None, waiting: dict[str, int]) -> list[str]:
    """The lines of text ``status``: new labels (known while the daemon runs) and each genre
    waiting for examples, by the user's names for them."""
    from genre_daemon.config.names import shown_name

    lines = []
    if new_labels is not None:
        lines.append(f"new labels: {new_labels} since the last retrain "
                     f"(a retrain starts at {settings.retrain.min_new_labels})")
    if waiting:
        need = settings.retrain.min_per_genre
        lines.append("genres waiting for examples: " + ", ".join(
            f"{shown_name(settings, g)} {n} of {need}" for g, n in sorted(waiting.items())))
    return lines
