"""The promotion gate: should a freshly trained candidate replace the active model?

Pure: accuracies in, a decision and its reason out. The rule (README, "Learning from you"):

1. on the held-out labels (the user's own files, a stratified split with a fixed seed) the
   candidate must be strictly better than the active model, by more than ``min_gain``; a
   genre the active model lacks is simply never predicted by it, so those files count as wrong
   for it (:func:`accuracy` does exactly that);
2. on the held-out rehearsal data of the genres the active model already knew, the candidate
   may be worse by at most ``margin`` (absolute accuracy). Without such data only rule 1 applies.

Both models are measured on the same data, so the comparison is fair even when the data is small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_MARGIN = 0.02
# Accuracies are ratios of small counts; a drop of exactly ``margin`` must not be refused
# because 0.9 - 0.02 is 0.8799999999999999 in floating point.
_EPS = 1e-9


@dataclass(frozen=True)
class GateResult:
    """The gate's decision. ``candidate``/``active``: ``{"labels": acc, "old_genres": acc|None}``."""

    promote: bool
    reason: str
    candidate: dict[str, float | None]
    active: dict[str, float | None]
    margin: float = DEFAULT_MARGIN
    min_gain: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A plain dict for a version's metrics or the retrain summary."""
        return {"promote": self.promote, "reason": self.reason, "candidate": dict(self.candidate),
                "active": dict(self.active), "margin": self.margin, "min_gain": self.min_gain}


def decide(
    cand_on_labels: float,
    active_on_labels: float,
    cand_on_old: float | None,
    active_on_old: float | None,
    *,
    margin: float = DEFAULT_MARGIN,
    min_gain: float = 0.0,
) -> GateResult:
    """Promote only if better on the held-out labels and not worse by more than ``margin`` on the
    old genres (see the module docstring). The reason names the rule that decided, with numbers.

    Raises ``ValueError`` for an accuracy outside [0, 1], a negative margin or gain, or old-genre
    accuracy given for one model but not the other (they must be measured on the same data).
    """
    for name, value in (("cand_on_labels", cand_on_labels), ("active_on_labels", active_on_labels),
                        ("cand_on_old", cand_on_old), ("active_on_old", active_on_old)):
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value!r}")
    for name, value in (("margin", margin), ("min_gain", min_gain)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if (cand_on_old is None) != (active_on_old is None):
        raise ValueError("old-genre accuracy must be given for both models or for neither "
                         f"(candidate {cand_on_old!r}, active {active_on_old!r})")

    cand = {"labels": float(cand_on_labels), "old_genres": _opt(cand_on_old)}
    act = {"labels": float(active_on_labels), "old_genres": _opt(active_on_old)}

    def result(promote: bool, reason: str) -> GateResult:
        return GateResult(promote, reason, cand, act, margin, min_gain)

    needed = active_on_labels + min_gain
    gain = f" + {min_gain:.3f}" if min_gain else ""
    if not cand_on_labels > needed + _EPS:
        return result(False, f"refused: not better on the held-out labels (candidate {cand_on_labels:.3f}, "
                             f"active {active_on_labels:.3f}; needs more than {active_on_labels:.3f}{gain})")
    labels_ok = f"better on the held-out labels ({cand_on_labels:.3f} > {active_on_labels:.3f}{gain})"
    if cand_on_old is None or active_on_old is None:
        return result(True, f"promoted: {labels_ok}; no held-out data of the old genres to compare")
    floor = active_on_old - margin
    if cand_on_old < floor - _EPS:
        return result(False, f"refused: {labels_ok} but worse on the old genres by more than {margin:.3f} "
                             f"(candidate {cand_on_old:.3f}, active {active_on_old:.3f}, floor {floor:.3f})")
    return result(True, f"promoted: {labels_ok} and within {margin:.3f} on the old genres "
                        f"(candidate {cand_on_old:.3f}, active {active_on_old:.3f})")


def accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float | None:
    """Share of ``predicted`` genre names equal to ``truth``; ``None`` when there is nothing to
    measure. A true genre that a model does not know can never match, so it counts as wrong."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} true labels")
    if not truth:
        return None
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


__all__ = ["DEFAULT_MARGIN", "GateResult", "accuracy", "decide"]
