"""The accuracy figures a model carries, each naming the music it was measured on.

Why: a bare "accuracy 0.923" read as "how good the model is" when it was a validation split of the
training collection's own artists. A shipped model's ``model.json`` therefore carries, under
``metrics["held_out"]``, the figures of the same recipe measured on music it did not train on
(written by ``benchmarks/bench_round3.py --stamp MODEL_DIR``, see :func:`stamp`), each with the
words naming that music, its size, per-genre recall, whether the model could have heard its
artists, and the command that measured it. ``model list`` and the page's Models tab show
:func:`figures`: those, else a retrain gate's held-out labels, else the validation figure labelled
as what it is, :data:`VALIDATION`. Light: no torch, so listing models stays fast.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.atomic import atomic_write
from genre_daemon.errors import ModelError

KEY = "held_out"  # metrics[KEY]: a list of entries, the headline first
VALIDATION = "validation split (same artists)"
GATE = "your held-out labels (files you sorted, kept out of its training)"
META_FILE = "model.json"
REQUIRED = ("test_music", "n", "accuracy", "per_genre", "could_have_heard_artists", "measured_by")
# An absolute path, a home-relative one or a Windows drive: a place on the measuring machine.
_MACHINE_PATH = re.compile(r"""(?:^|[\s=("'])(?:/[^\s/]|~/|[A-Za-z]:\\)""")


@dataclass(frozen=True)
class Figure:
    """One accuracy worth showing, with the music it was measured on."""

    accuracy: float
    test_music: str
    n: int | None = None
    could_have_heard_artists: bool | None = None

    def notes(self) -> str:
        """``n=60, artists not heard in training`` (what is known of the test music)."""
        notes = [f"n={self.n}"] if self.n is not None else []
        if self.could_have_heard_artists is not None:
            notes.append("artists heard in training" if self.could_have_heard_artists
                         else "artists not heard in training")
        return ", ".join(notes)

    def text(self) -> str:
        """``0.450 on emotify-dev ... (n=60, artists not heard in training)``."""
        notes = self.notes()
        return f"{self.accuracy:.3f} on {self.test_music}" + (f" ({notes})" if notes else "")

    def to_json(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "test_music": self.test_music, "n": self.n,
                "could_have_heard_artists": self.could_have_heard_artists, "notes": self.notes()}


def entry(test_music: str, n: int, accuracy: float, per_genre: Mapping[str, float], could_have_heard_artists: bool,
          measured_by: str, **extra: Any) -> dict[str, Any]:
    """A checked held-out entry for ``metrics["held_out"]`` (ValueError saying what is wrong)."""
    return check_entry({"test_music": test_music, "n": n, "accuracy": accuracy, "per_genre": dict(per_genre),
                        "could_have_heard_artists": could_have_heard_artists, "measured_by": measured_by, **extra})


def check_entry(e: Any) -> dict[str, Any]:
    """``e`` if it is a complete held-out entry; ValueError naming the first problem. Recall and
    accuracy are fractions; no text names a path of the machine that measured it."""
    if not isinstance(e, Mapping):
        raise ValueError(f"a held-out entry must be an object, got {type(e).__name__}")
    missing = [k for k in REQUIRED if k not in e]
    if missing:
        raise ValueError(f"held-out entry lacks {', '.join(missing)}")
    name = e["test_music"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError("held-out entry: test_music must name the music in words")
    if not isinstance(e["n"], int) or isinstance(e["n"], bool) or e["n"] < 1:
        raise ValueError(f"held-out entry {name!r}: n must be a count >= 1, got {e['n']!r}")
    if not _fraction(e["accuracy"]):
        raise ValueError(f"held-out entry {name!r}: accuracy must be in [0, 1], got {e['accuracy']!r}")
    per = e["per_genre"]
    if not isinstance(per, Mapping) or not all(isinstance(g, str) and _fraction(r) for g, r in per.items()):
        raise ValueError(f"held-out entry {name!r}: per_genre must map genres to recalls in [0, 1]")
    if not isinstance(e["could_have_heard_artists"], bool):
        raise ValueError(f"held-out entry {name!r}: could_have_heard_artists must be true or false")
    if not isinstance(e["measured_by"], str) or not e["measured_by"].strip():
        raise ValueError(f"held-out entry {name!r}: measured_by must be the command that measured it")
    for key, value in e.items():
        if isinstance(value, str) and _MACHINE_PATH.search(value):
            raise ValueError(f"held-out entry {name!r}: {key} names a path of this machine ({value!r}); "
                             "write it relative to the project")
    return dict(e)


def figures(metrics: Mapping[str, Any]) -> list[Figure]:
    """What to show of a model's ``metrics``, best evidence first: its held-out entries (music it
    did not train on); else a retrain gate's held-out labels; else its validation accuracy,
    labelled :data:`VALIDATION`. Malformed entries are left out; empty when there is nothing."""
    out = []
    held = metrics.get(KEY)
    for e in held if isinstance(held, list) else []:
        try:
            e = check_entry(e)
        except ValueError:
            continue
        out.append(Figure(float(e["accuracy"]), e["test_music"], e["n"], e["could_have_heard_artists"]))
    if out:
        return out
    gate = metrics.get("held_out_labels")
    if _fraction(gate):
        return [Figure(float(gate), GATE)]
    val = metrics.get("validation")
    if isinstance(val, Mapping) and _fraction(val.get("accuracy")):
        n = val.get("n")
        return [Figure(float(val["accuracy"]), VALIDATION, n if isinstance(n, int) and n > 0 else None, True)]
    return []


def headline(metrics: Mapping[str, Any]) -> float | None:
    """The first figure's accuracy (the table's sort key and the page's summary), or None."""
    shown = figures(metrics)
    return shown[0].accuracy if shown else None


def stamp(model_dir: str | Path, entries: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``entries`` (checked) as ``metrics["held_out"]`` of the model in ``model_dir``,
    replacing any earlier ones; the rest of ``model.json`` is kept as it is, and the file is
    replaced whole (a reader sees the old or the new one). ModelError naming the file."""
    path = Path(model_dir) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the model to stamp it: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: not a model.json object")
    try:
        checked = [check_entry(e) for e in entries]
    except ValueError as exc:
        raise ModelError(f"{path}: not stamped: {exc}") from exc
    if not checked:
        raise ModelError(f"{path}: not stamped: no held-out figures given")
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    meta["metrics"] = {**metrics, KEY: checked}
    text = json.dumps(meta, indent=2) + "\n"  # as save_model writes it (a history may hold Infinity)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def _fraction(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)
