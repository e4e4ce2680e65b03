"""Classification metrics as pure functions of labels, in the JSON shape DESIGN.md pins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int], n_classes: int) -> np.ndarray:
    """Rows are the true class, columns the predicted one."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, p in zip(truth, predicted):
        cm[t, p] += 1
    return cm


def report(truth: Sequence[int], predicted: Sequence[int], genres: Sequence[str]) -> dict[str, Any]:
    """``{"accuracy", "n", "per_genre": {g: {"precision", "recall", "n"}}, "confusion", "genres"}``."""
    cm = confusion_matrix(truth, predicted, len(genres))
    n = int(cm.sum())
    per_genre: dict[str, dict[str, float | int]] = {}
    for i, genre in enumerate(genres):
        tp = int(cm[i, i])
        col, row = int(cm[:, i].sum()), int(cm[i, :].sum())
        per_genre[genre] = {
            "precision": round(tp / col, 4) if col else 0.0,
            "recall": round(tp / row, 4) if row else 0.0,
            "n": row,
        }
    return {
        "accuracy": round(float(np.trace(cm)) / n, 4) if n else 0.0,
        "n": n,
        "per_genre": per_genre,
        "confusion": cm.tolist(),
        "genres": list(genres),
    }


def plot_confusion(result: dict[str, Any], png_path: str, title: str = "") -> None:
    """Draw the confusion matrix of a :func:`report` result to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(result["confusion"])
    genres = result["genres"]
    size = 1.0 + 0.6 * len(genres)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(genres)), genres, rotation=45, ha="right")
    ax.set_yticks(range(len(genres)), genres)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {result['accuracy']:.3f} (n={result['n']})")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > threshold else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
