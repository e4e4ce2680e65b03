"""genre_daemon.learning.gate: the pure promotion rule, decided on numbers alone."""

from __future__ import annotations

import math

import pytest

from genre_daemon.learning.gate import DEFAULT_MARGIN, GateResult, accuracy, decide


@pytest.mark.parametrize(
    ("cand_lab", "act_lab", "cand_old", "act_old", "promote", "words"),
    [
        pytest.param(0.80, 0.50, 0.89, 0.90, True, ["promoted", "0.800 > 0.500", "within 0.020"],
                     id="better-on-labels-within-margin"),
        pytest.param(0.80, 0.50, 0.95, 0.90, True, ["promoted"], id="better-everywhere"),
        pytest.param(0.80, 0.50, 0.88, 0.90, True, ["promoted"], id="drop-of-exactly-the-margin"),
        pytest.param(0.60, 0.60, 0.95, 0.90, False, ["refused", "not better on the held-out labels",
                                                     "0.600"], id="equal-on-labels"),
        pytest.param(0.40, 0.60, None, None, False, ["refused", "not better"], id="worse-on-labels"),
        pytest.param(0.90, 0.50, 0.80, 0.90, False, ["refused", "worse on the old genres", "0.800",
                                                     "0.900", "floor 0.880"], id="old-genres-drop-beyond-margin"),
        pytest.param(0.90, 0.50, 0.8799, 0.90, False, ["refused", "old genres"], id="just-beyond-margin"),
        pytest.param(0.55, 0.50, None, None, True, ["promoted", "no held-out data of the old genres"],
                     id="no-old-genre-data-labels-rule-only"),
        pytest.param(1.00, 0.00, 0.0, 0.0, True, ["promoted"], id="new-genre-active-knows-none"),
    ],
)
def test_decide(cand_lab: float, act_lab: float, cand_old: float | None, act_old: float | None,
                promote: bool, words: list[str]) -> None:
    result = decide(cand_lab, act_lab, cand_old, act_old)
    assert isinstance(result, GateResult)
    assert result.promote is promote
    for w in words:
        assert w in result.reason, result.reason
    assert result.candidate == {"labels": cand_lab, "old_genres": cand_old}
    assert result.active == {"labels": act_lab, "old_genres": act_old}
    assert result.margin == DEFAULT_MARGIN


def test_margin_is_a_parameter() -> None:
    assert not decide(0.9, 0.5, 0.85, 0.90).promote
    wide = decide(0.9, 0.5, 0.85, 0.90, margin=0.05)
    assert wide.promote and "within 0.050" in wide.reason
    assert not decide(0.9, 0.5, 0.84, 0.90, margin=0.05).promote


def test_min_gain_requires_a_real_improvement() -> None:
    assert decide(0.55, 0.50, None, None).promote
    refused = decide(0.55, 0.50, None, None, min_gain=0.05)
    assert not refused.promote and "+ 0.050" in refused.reason
    assert decide(0.56, 0.50, None, None, min_gain=0.05).promote


def test_labels_rule_decides_first() -> None:
    """Worse on the labels is refused for that reason even when the old genres also dropped."""
    result = decide(0.4, 0.6, 0.1, 0.9)
    assert not result.promote and "not better on the held-out labels" in result.reason
    assert "old genres" not in result.reason


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1.2, 0.5, None, None), {}, "cand_on_labels"),
        ((0.5, -0.1, None, None), {}, "active_on_labels"),
        ((0.5, 0.4, math.nan, 0.5), {}, "cand_on_old"),
        ((0.5, 0.4, 0.5, None), {}, "both models"),
        ((0.5, 0.4, None, 0.5), {}, "both models"),
        ((0.5, 0.4, None, None), {"margin": -0.01}, "margin"),
        ((0.5, 0.4, None, None), {"min_gain": math.inf}, "min_gain"),
    ],
)
def test_bad_inputs_are_refused_by_name(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(*args, **kwargs)


def test_to_json_is_plain() -> None:
    data = decide(0.7, 0.5, None, None, margin=0.03).to_json()
    assert data == {"promote": True, "reason": data["reason"], "candidate": {"labels": 0.7, "old_genres": None},
                    "active": {"labels": 0.5, "old_genres": None}, "margin": 0.03, "min_gain": 0.0}


def test_accuracy_counts_an_unknown_genre_as_wrong() -> None:
    truth = ["jazz", "jazz", "polka", "polka"]
    old_model = ["jazz", "blues", "jazz", "rock"]  # has no 'polka': can never be right on it
    new_model = ["jazz", "jazz", "polka", "jazz"]
    assert accuracy(old_model, truth) == 0.25
    assert accuracy(new_model, truth) == 0.75
    assert decide(accuracy(new_model, truth), accuracy(old_model, truth), None, None).promote


def test_accuracy_of_nothing_is_none_and_lengths_must_match() -> None:
    assert accuracy([], []) is None
    with pytest.raises(ValueError, match="2 predictions for 1"):
        accuracy(["a", "b"], ["a"])
