"""AudioSet's genre evidence beside the LSTM: a calibrated zero-shot prior, fused late.

Why late fusion, and why a prior: EfficientAT mn04_as learned 50 music genres from AudioSet's
two million clips (thousands of artists each), but the training music this project has with
audio (150 GTZAN clips) is too little to learn a mapping from its 527 outputs, and the 698
taggram clips have no audio at all. So the mapping is fixed by name (each genre of the model
-> the AudioSet classes that mean it, :data:`FAMILIES`), and only two numbers are learned from
data: a temperature ``tau`` (how sharp AudioSet's evidence is, fitted on the training audio)
and a fusion weight ``beta`` (how much that evidence moves the LSTM, chosen by measurement:
``benchmarks/bench_round3.py``). A genre the model has no examples of (``prior_only``, e.g.
``electronic``) takes its probability from the zero-shot prior alone; the genres the LSTM learned
share the rest. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAME = "audioset"

# Each genre -> the AudioSet classes (display names of class_labels_indices.csv) that mean it.
# The built-in genres first; then names a user's folder may carry (a folder "folk/" learned by
# a retrain gets AudioSet's Folk evidence too). Grouping follows AudioSet's ontology, where each
# listed class is a child of the family named first (Rock music: Grunge, Progressive rock, ...).
FAMILIES: dict[str, tuple[str, ...]] = {
    "blues": ("Blues",),
    "classical": ("Classical music", "Opera"),
    "country": ("Country", "Bluegrass"),
    "disco": ("Disco", "Funk"),
    "hiphop": ("Hip hop music",),
    "jazz": ("Jazz", "Swing music"),
    "metal": ("Heavy metal",),
    "pop": ("Pop music",),
    "reggae": ("Reggae", "Ska"),
    "rock": ("Rock music", "Grunge", "Progressive rock", "Rock and roll", "Psychedelic rock", "Punk rock"),
    "electronic": ("Electronic music", "House music", "Techno", "Dubstep", "Drum and bass", "Electronica",
                   "Electronic dance music", "Trance music"),
    # Names users give folders (matched without case, spaces or punctuation, see family_key).
    "folk": ("Folk music",),
    "soul": ("Soul music", "Rhythm and blues"),
    "rnb": ("Rhythm and blues", "Soul music"),
    "punk": ("Punk rock",),
    "latin": ("Music of Latin America", "Salsa music", "Flamenco"),
    "ambient": ("Ambient music", "New-age music"),
    "funk": ("Funk",),
    "gospel": ("Gospel music", "Christian music"),
    "ska": ("Ska",),
    "house": ("House music",),
    "techno": ("Techno",),
    "trance": ("Trance music",),
    "dubstep": ("Dubstep",),
    "drumandbass": ("Drum and bass",),
    "opera": ("Opera",),
    "swing": ("Swing music",),
    "bluegrass": ("Bluegrass",),
    "grunge": ("Grunge",),
    "afrobeat": ("Afrobeat",),
    "newage": ("New-age music",),
}
ALIASES: dict[str, str] = {
    "hiphop": "hiphop", "rap": "hiphop", "edm": "electronic", "electronica": "electronic", "electro": "electronic",
    "dance": "electronic", "heavymetal": "metal", "rhythmandblues": "rnb", "randb": "rnb", "classic": "classical",
    "dnb": "drumandbass", "rocknroll": "rock", "rockandroll": "rock",
}


def family_key(genre: str) -> str | None:
    """The :data:`FAMILIES` key a genre name means (case, spaces and punctuation ignored, a few
    aliases: "Hip-Hop", "R&B", "EDM"), or None when AudioSet has no class for it."""
    key = re.sub(r"[^0-9a-z]+", "", genre.casefold().replace("&", "and"))
    key = ALIASES.get(key, key)
    return key if key in FAMILIES else None


def family_rows(genres: Sequence[str], labels: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """For each genre with an AudioSet family, the output rows of its classes in ``labels`` (the
    tagger's 527 class names); ValueError naming a class the label list does not have."""
    index = {name: i for i, name in enumerate(labels)}
    out: dict[str, tuple[int, ...]] = {}
    for g in genres:
        key = family_key(g)
        if key is None:
            continue
        missing = [c for c in FAMILIES[key] if c not in index]
        if missing:
            raise ValueError(f"AudioSet class list lacks {missing} (genre {g!r})")
        out[g] = tuple(index[c] for c in FAMILIES[key])
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class AudioSetPrior:
    """The fused model's AudioSet part, stored in ``model.json`` under ``prior``.

    ``families``: genre -> AudioSet output rows; ``tau``: the temperature of the zero-shot
    softmax over the family genres; ``beta``: the fusion weight on the LSTM's logits;
    ``prior_only``: genres with no LSTM output (the model's genre list ends with them);
    ``frontend``: the tagger's identity (weights and class-list sha256, source, licence).
    """

    families: Mapping[str, tuple[int, ...]]
    tau: float
    beta: float
    prior_only: tuple[str, ...] = ()
    windows: int = 3
    frontend: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"prior temperature must be > 0, got {self.tau!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"prior fusion weight must be >= 0, got {self.beta!r}")
        if self.windows < 1:
            raise ValueError(f"prior windows must be >= 1, got {self.windows!r}")
        for g in self.prior_only:
            if g not in self.families:
                raise ValueError(f"prior-only genre {g!r} has no AudioSet family")

    def evidence(self, logits: np.ndarray) -> dict[str, float]:
        """Each family genre's AudioSet evidence from ``(windows, 527)`` logits: the strongest of
        its classes' logits averaged over the windows."""
        mean = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1]).mean(axis=0)
        return {g: float(mean[list(rows)].max()) for g, rows in self.families.items()}

    def combine(self, learned: Sequence[str], lstm_logits: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
        """Probabilities over ``learned + prior_only`` from the LSTM's logits over ``learned`` and
        the tagger's window logits (None: no AudioSet evidence, the LSTM alone).

        A learned genre AudioSet has no class for (a user's "chiptune") is neither pushed up nor
        down by it: it takes the best evidence of the learned genres AudioSet knows, so only the LSTM
        weighs it against them; and the prior-only genres' zero-shot mass (a share among the family
        genres alone) shrinks by the LSTM's share for such genres, else a genre AudioSet hears as,
        say, electronic could never be learned beside a prior-only electronic."""
        lstm = np.asarray(lstm_logits, dtype=np.float64)
        if logits is None:
            return np.concatenate([_softmax(lstm), np.zeros(len(self.prior_only))])
        s = self.evidence(logits)
        fam = [g for g in (*learned, *self.prior_only) if g in s]
        zs = dict(zip(fam, _softmax(self.tau * np.array([s[g] for g in fam]))))
        neutral = max((s[g] for g in learned if g in s), default=0.0)
        p = _softmax(lstm + np.array([self.beta * self.tau * s.get(g, neutral) for g in learned]))
        outside = sum(pg for g, pg in zip(learned, _softmax(lstm)) if g not in s)
        mass = (1.0 - outside) * sum(zs[g] for g in self.prior_only)
        return np.concatenate([(1.0 - mass) * p, [(1.0 - outside) * zs[g] for g in self.prior_only]])

    def with_learned(self, genres: Sequence[str]) -> "AudioSetPrior":
        """The same prior once ``genres`` have LSTM outputs: they leave ``prior_only``."""
        return AudioSetPrior(self.families, self.tau, self.beta, tuple(g for g in self.prior_only if g not in genres),
                             self.windows, self.frontend)

    def extended(self, genres: Sequence[str], labels: Sequence[str]) -> "AudioSetPrior":
        """The prior with the families of new ``genres`` (a user's folder named "folk") added."""
        fams = dict(self.families)
        for g, rows in family_rows([g for g in genres if g not in fams], labels).items():
            fams[g] = rows
        return AudioSetPrior(fams, self.tau, self.beta, self.prior_only, self.windows, self.frontend)

    def to_dict(self) -> dict[str, Any]:
        return {"name": NAME, "temperature": self.tau, "fusion_weight": self.beta, "prior_only": list(self.prior_only),
                "windows": self.windows, "families": {g: list(r) for g, r in self.families.items()},
                "frontend": dict(self.frontend)}

    @classmethod
    def from_dict(cls, data: Any) -> "AudioSetPrior":
        """Parse ``model.json`` ``prior``; ValueError saying what is wrong."""
        if not isinstance(data, dict) or data.get("name") != NAME:
            raise ValueError(f"prior must be {NAME!r}")
        fams = data.get("families")
        if not isinstance(fams, dict) or not fams:
            raise ValueError("prior names no genre families")
        families = {}
        for g, rows in fams.items():
            if not isinstance(rows, list) or not rows or not all(isinstance(r, int) and 0 <= r < 527 for r in rows):
                raise ValueError(f"prior family of {g!r} must be AudioSet output rows")
            families[str(g)] = tuple(rows)
        front = data.get("frontend")
        if not isinstance(front, dict) or not isinstance(front.get("weights_sha256"), str):
            raise ValueError("prior names no tagger weights sha256")
        return cls(families, float(data["temperature"]), float(data["fusion_weight"]),
                   tuple(str(g) for g in data.get("prior_only", [])), int(data.get("windows", 3)), front)


def fit_temperature(evidence: Sequence[Mapping[str, float]], labels: Sequence[str], genres: Sequence[str]) -> float:
    """The ``tau`` that makes the zero-shot softmax over ``genres`` (each with a family) most
    likely to give each song its label: a 1-D search over a log grid (robust on 100 songs)."""
    idx = {g: i for i, g in enumerate(genres)}
    rows = [(np.array([e[g] for g in genres]), idx[y]) for e, y in zip(evidence, labels) if y in idx]
    if not rows:
        raise ValueError("no labelled song with AudioSet evidence to fit the prior's temperature on")
    best = (math.inf, 1.0)
    for tau in np.exp(np.linspace(np.log(0.1), np.log(8.0), 61)):
        nll = -float(np.mean([np.log(_softmax(tau * s)[y] + 1e-12) for s, y in rows]))
        best = min(best, (nll, float(tau)))
    return round(best[1], 4)
