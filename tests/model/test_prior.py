"""AudioSet's prior fused with the LSTM (genre_daemon/model/prior.py): pure arithmetic, no audio."""

from __future__ import annotations

import numpy as np
import pytest

from genre_daemon.model.prior import AudioSetPrior, family_key, family_rows, fit_temperature

LABELS = [f"class {i}" for i in range(527)]
LABELS[216], LABELS[219], LABELS[237], LABELS[239], LABELS[233] = (
    "Pop music", "Rock music", "Classical music", "Electronic music", "Folk music")
for i, name in {222: "Grunge", 223: "Progressive rock", 224: "Rock and roll", 225: "Psychedelic rock",
                221: "Punk rock", 238: "Opera", 240: "House music", 241: "Techno", 242: "Dubstep",
                243: "Drum and bass", 244: "Electronica", 245: "Electronic dance music", 247: "Trance music"}.items():
    LABELS[i] = name
LEARNED = ["classical", "pop", "rock"]


def prior(beta: float = 1.0, prior_only: tuple[str, ...] = ("electronic",)) -> AudioSetPrior:
    fams = family_rows([*LEARNED, *prior_only], LABELS)
    return AudioSetPrior(fams, tau=1.0, beta=beta, prior_only=prior_only, frontend={"weights_sha256": "0" * 64})


def window_logits(**strong: float) -> np.ndarray:
    """Two windows of logits at -6, with the named AudioSet rows set to the given values."""
    x = np.full((2, 527), -6.0, dtype=np.float32)
    for row, value in strong.items():
        x[:, int(row[1:])] = value
    return x


def test_aliases_and_spellings_find_their_audioset_family() -> None:
    assert family_key("Hip-Hop") == family_key("hip hop") == family_key("Rap") == "hiphop"
    assert family_key("EDM") == family_key("Electronica") == "electronic"
    assert family_key("R&B") == "rnb" and family_key("Folk") == "folk"
    assert family_key("my weird genre") is None


def test_scores_sum_to_one_over_learned_and_prior_only_genres() -> None:
    p = prior().combine(LEARNED, np.array([2.0, 0.5, -1.0]), window_logits(r237=3.0))
    assert p.shape == (4,) and p.sum() == pytest.approx(1.0) and (p >= 0).all()


def test_a_song_that_sounds_electronic_goes_to_the_prior_only_genre() -> None:
    # The LSTM, which never saw electronic music, is sure it is pop; AudioSet is sure it is electronic.
    p = prior().combine(LEARNED, np.array([-2.0, 3.0, 0.0]), window_logits(r239=4.0, r240=3.0, r216=-3.0))
    assert int(np.argmax(p)) == 3


def test_without_audioset_evidence_the_lstm_decides_and_prior_only_genres_get_nothing() -> None:
    lstm = np.array([0.1, 2.0, -1.0])
    p = prior().combine(LEARNED, lstm, None)
    assert p[3] == 0.0 and np.allclose(p[:3], np.exp(lstm) / np.exp(lstm).sum())


def test_the_fusion_weight_moves_the_lstm_towards_audioset_and_zero_leaves_it_alone() -> None:
    lstm = np.array([0.0, 1.0, 0.5])  # the LSTM leans pop
    ev = window_logits(r237=2.0, r216=-2.0, r219=-2.0)  # AudioSet hears classical
    off = prior(beta=0.0, prior_only=()).combine(LEARNED, lstm, ev)
    on = prior(beta=2.0, prior_only=()).combine(LEARNED, lstm, ev)
    assert np.allclose(off, np.exp(lstm) / np.exp(lstm).sum())
    assert int(np.argmax(off)) == 1 and int(np.argmax(on)) == 0


def test_a_prior_only_genre_the_user_teaches_becomes_learned_and_a_known_name_gets_its_family() -> None:
    p = prior().with_learned(["electronic"])
    assert p.prior_only == () and "electronic" in p.families
    q = p.extended(["folk", "mine"], LABELS)
    assert q.families["folk"] == (233,) and "mine" not in q.families


def test_round_trip_and_refusals() -> None:
    p = prior()
    assert AudioSetPrior.from_dict(p.to_dict()) == p
    bad = p.to_dict() | {"families": {"pop": [600]}}
    with pytest.raises(ValueError, match="AudioSet output rows"):
        AudioSetPrior.from_dict(bad)
    with pytest.raises(ValueError, match="no AudioSet family"):
        AudioSetPrior({"pop": (216,)}, 1.0, 1.0, prior_only=("electronic",))
    with pytest.raises(ValueError, match="temperature"):
        AudioSetPrior({"pop": (216,)}, 0.0, 1.0)


def test_the_temperature_fitted_is_sharper_when_the_evidence_is_right_more_often() -> None:
    rng = np.random.default_rng(0)
    genres = ["a", "b", "c"]

    def songs(noise: float) -> tuple[list[dict[str, float]], list[str]]:
        ev, lab = [], []
        for i in range(90):
            y = genres[i % 3]
            ev.append({g: (2.0 if g == y else 0.0) + noise * rng.standard_normal() for g in genres})
            lab.append(y)
        return ev, lab

    clean, noisy = fit_temperature(*songs(0.3), genres), fit_temperature(*songs(3.0), genres)
    assert clean > noisy > 0
