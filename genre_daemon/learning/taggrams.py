"""Feature-only training clips: MSD-musicnn taggrams (the 50 tags per 3 s patch) with their genre.

Why: the 698 GTZAN clips of ``gtzan-taggrams`` come from hundreds of artists but carry no audio,
only what MSD-musicnn's tag layer said of each patch (musicnn 0.1.0's own extractor, a patch
every second). That is exactly this project's ``msd_tags`` input (the same network, checked to
correlation 0.998), so a model whose inputs are ``("msd_tags",)`` learns from them as from audio.
The folder layout is the shared one: ``taggrams.npz`` (``X`` float32 (rows, 50), ``clip`` int32),
``clips.csv`` (clip, genre, part, first_row, n_rows, in_shared_audio) and ``tags.txt``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from genre_daemon.errors import ModelError
from genre_daemon.learning.fit import Clip
from genre_daemon.model.frontend import OUTPUT_DIMS

INPUTS = ("msd_tags",)
HOP_FRAMES = 63  # a patch every second (62.5 frames of 256 samples at 16 kHz): the taggrams' own hop


def load_taggram_clips(
    directory: str | os.PathLike[str],
    genres: Sequence[str],
    parts: Collection[str] | None = None,
    skip: Collection[str] = (),
) -> list[Clip]:
    """The taggram clips of ``directory`` whose genre is one of ``genres`` (labels in that order),
    of the split ``parts`` (None: every part), leaving out the clip names in ``skip`` (clips whose
    audio is trained on already). ModelError naming the file for anything malformed."""
    root = Path(directory)
    npz, table = root / "taggrams.npz", root / "clips.csv"
    try:
        with np.load(npz, allow_pickle=False) as data:
            x = np.asarray(data["X"], dtype=np.float32)
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{root}: not a taggram folder (taggrams.npz with X, clips.csv): {exc}") from exc
    if x.ndim != 2 or x.shape[1] != OUTPUT_DIMS["tags"]:
        raise ModelError(f"{npz}: X must be (rows, {OUTPUT_DIMS['tags']}) MSD tags, got {x.shape}")
    clips = []
    for i, r in enumerate(rows):
        try:
            name, genre, part = r["clip"], r["genre"], r["part"]
            first, n = int(r["first_row"]), int(r["n_rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{table}: row {i + 2} is malformed ({exc})") from exc
        if n < 1 or first < 0 or first + n > x.shape[0]:
            raise ModelError(f"{table}: row {i + 2} ({name}) points outside taggrams.npz")
        if genre not in genres or (parts is not None and part not in parts) or name in skip:
            continue
        clips.append(Clip(f"taggram:{name}", list(genres).index(genre), [x[first:first + n]]))
    return clips


def per_genre(clips: Sequence[Clip], genres: Sequence[str]) -> dict[str, int]:
    """How many clips of each genre (for ``model.json``'s training summary)."""
    counts = np.bincount([c.label for c in clips], minlength=len(genres))
    return {g: int(n) for g, n in zip(genres, counts) if n}
