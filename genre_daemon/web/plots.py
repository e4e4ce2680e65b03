"""The confusion matrix of a model as a PNG, drawn server-side (matplotlib, Agg, no pyplot: the
web server's threads may draw at once)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

__all__ = ["find_confusion", "confusion_png"]


def find_confusion(metrics: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first stored evaluation in ``metrics`` with a square confusion matrix matching its
    genre list, as ``(key, result)``: ``validation`` (a first training's held-out clips) or any
    other entry in the :func:`genre_daemon.learning.metrics.report` shape."""
    keys = sorted(metrics, key=lambda k: (k != "validation", str(k)))
    for key in keys:
        value = metrics[key]
        if not isinstance(value, Mapping):
            continue
        cm, genres = value.get("confusion"), value.get("genres")
        if not isinstance(cm, list) or not isinstance(genres, list) or not genres or len(cm) != len(genres):
            continue
        if all(isinstance(r, list) and len(r) == len(genres) and all(isinstance(x, (int, float)) for x in r)
               for r in cm):
            return str(key), dict(value)
    return None


def confusion_png(result: Mapping[str, Any], title: str = "") -> bytes:
    """``result["confusion"]`` (rows: true genre, columns: predicted) labelled with
    ``result["genres"]``, as PNG bytes."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(result["confusion"], dtype=float)
    genres = [str(g) for g in result["genres"]]
    size = 1.5 + 0.55 * len(genres)
    fig = Figure(figsize=(size + 1.6, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(genres)), genres, rotation=45, ha="right")
    ax.set_yticks(range(len(genres)), genres)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = result.get("accuracy")
    n = result.get("n")
    bits = [title] if title else []
    if isinstance(acc, (int, float)):
        bits.append(f"accuracy {acc:.3f}" + (f" (n={n})" if isinstance(n, int) else ""))
    ax.set_title("\n".join(bits), fontsize=9)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, f"{cm[i, j]:g}", ha="center", va="center",
                        color="white" if cm[i, j] > threshold else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
