"""A user's new genres on a model with AudioSet's prior (format 3): which genres the retrained network
has, which AudioSet evidence each gets, and how a genre AudioSet has no class for is fused.

Pure: the real AudioSet class list and the real :class:`AudioSetPrior`, arrays in, arrays out (the
retrain around them runs for real in ``test_retrain.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from genre_daemon.learning.retrain import candidate_prior
from genre_daemon.model.efficientat.tagger import EfficientAT
from genre_daemon.model.efficientat.weights import model_dir
from genre_daemon.model.prior import AudioSetPrior, family_rows

BUILT_IN = ["blues", "classical", "rock"]


@pytest.fixture(scope="module")
def labels() -> list[str]:
    return list(EfficientAT.load(model_dir()).labels)


@pytest.fixture(scope="module")
def prior(labels: list[str]) -> AudioSetPrior:
    """A shipped-like prior: three learned genres and electronic from AudioSet alone."""
    families = family_rows([*BUILT_IN, "electronic"], labels)
    return AudioSetPrior(families, tau=1.4, beta=1.5, prior_only=("electronic",), frontend={"weights_sha256": "x"})


def _song(prior: AudioSetPrior, labels: list[str], strong: dict[str, float], floor: float = -8.0) -> np.ndarray:
    """AudioSet window logits where the named classes have the given logits and the rest ``floor``."""
    logits = np.full((3, len(labels)), floor, dtype=np.float32)
    for name, value in strong.items():
        logits[:, labels.index(name)] = value
    return logits


def test_the_candidate_keeps_the_prior_and_learns_named_genres(prior: AudioSetPrior, labels: list[str]) -> None:
    head = [*BUILT_IN, "Hip-Hop", "chiptune", "electronic", "folk"]
    cand = candidate_prior(prior, head, labels)
    assert (cand.tau, cand.beta, cand.windows, cand.frontend) == (prior.tau, prior.beta, prior.windows, prior.frontend)
    assert cand.prior_only == ()  # a folder named like the prior-only genre moved it into the network
    assert cand.families["folk"] == (labels.index("Folk music"),)
    assert cand.families["Hip-Hop"] == (labels.index("Hip hop music"),)
    assert cand.families["electronic"] == prior.families["electronic"]
    assert "chiptune" not in cand.families  # AudioSet has no class for it
    assert candidate_prior(prior, [*BUILT_IN, "chiptune"], labels).prior_only == ("electronic",)


def test_a_genre_audioset_does_not_know_can_be_learned_beside_a_prior_only_genre(
        prior: AudioSetPrior, labels: list[str]) -> None:
    """Square-wave chiptune sounds electronic to AudioSet; once the network has learned chiptune and
    is sure of it, the prior-only electronic must not take the song."""
    cand = candidate_prior(prior, [*BUILT_IN, "chiptune"], labels)
    song = _song(cand, labels, {"Electronic music": -1.8, "Rock music": -6.0})
    lstm = np.array([-2.0, -2.0, -1.0, 4.0])  # blues, classical, rock, chiptune
    p = cand.combine([*BUILT_IN, "chiptune"], lstm, song)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert int(np.argmax(p)) == 3 and p[3] > 0.8, p
    unsure = cand.combine([*BUILT_IN, "chiptune"], np.zeros(4), song)
    assert int(np.argmax(unsure)) == 4, unsure  # the network unsure: AudioSet's electronic stands


def test_a_genre_audioset_does_not_know_gets_no_head_start_on_the_old_genres(
        prior: AudioSetPrior, labels: list[str]) -> None:
    """A rock song the network leans to rock: AudioSet's evidence for rock is weak in absolute terms
    (a negative logit) but the best it has; the new genre must not win on AudioSet's silence."""
    cand = candidate_prior(prior, [*BUILT_IN, "chiptune"], labels)
    song = _song(cand, labels, {"Rock music": -2.0})
    p = cand.combine([*BUILT_IN, "chiptune"], np.array([-3.0, -3.0, 1.0, 0.5]), song)
    assert int(np.argmax(p)) == 2, p


def test_genres_that_audioset_all_knows_are_fused_as_before(prior: AudioSetPrior, labels: list[str]) -> None:
    """The built-in genres all have a family: the fusion is the plain formula (so the shipped model's
    scores do not change)."""
    song = _song(prior, labels, {"Classical music": 1.0, "Electronic music": -1.0, "Blues": -4.0})
    lstm = np.array([0.3, 1.2, -0.5])
    s = prior.evidence(song)
    fam = [*BUILT_IN, "electronic"]
    z = np.exp(prior.tau * np.array([s[g] for g in fam]))
    zs = z / z.sum()
    fused = np.exp(lstm + prior.beta * prior.tau * np.array([s[g] for g in BUILT_IN]))
    want = np.concatenate([(1 - zs[3]) * fused / fused.sum(), [zs[3]]])
    np.testing.assert_allclose(prior.combine(BUILT_IN, lstm, song), want, rtol=1e-9)
