"""Retraining from a warm start: the old genres' output rows are carried over by name, and
distillation from the warm-start model keeps what it knew when the new data is all of a new genre."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from genre_daemon.model.frontend import FrontEnd
from genre_daemon.model.files import Architecture
from genre_daemon.learning.fit import Clip, TrainConfig, fit, predict_probs, song_sequence, spread_indices

INPUTS = ("msd_tags",)  # 50-d patch vectors: small and quick
D = 50
FRONTEND = FrontEnd.from_directory(INPUTS)
ARCH = Architecture(inputs=INPUTS, n_classes=2, hidden=8, dropout=0.0)
CFG = TrainConfig(patches=4, epochs=6, crops_per_clip=8, batch_size=32, lr=3e-3, val_fraction=0.0, seed=0, threads=1)


def _clips(label: int, centre: np.ndarray, n: int, seed: int) -> list[Clip]:
    rng = np.random.default_rng(seed)
    return [Clip(f"c{label}-{i}", label, [(centre + rng.normal(0, 1.0, (12, D))).astype(np.float32)])
            for i in range(n)]


def _centres() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(0, 0.5, D) for _ in range(3)]


def _old_probs(model, clips: list[Clip]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Each clip's probabilities over the genres "a" and "b", renormalised."""
    p = np.stack(predict_probs(model.net, [song_sequence(c.variants[0], 4) for c in clips]))
    cols = [model.genres.index(g) for g in ("a", "b")]
    p = p[:, cols]
    return p / p.sum(axis=1, keepdims=True)


def _last_linear(model) -> torch.nn.Linear:  # type: ignore[no-untyped-def]
    return [m for m in model.net.head.modules() if isinstance(m, torch.nn.Linear)][-1]


def _teacher():  # type: ignore[no-untyped-def]
    a, b, _ = _centres()
    old = _clips(0, a, 12, 2) + _clips(1, b, 12, 3)
    model, _ = fit(old, [], ["a", "b"], ARCH, replace(CFG, epochs=10), FRONTEND)
    return model


def test_warm_start_carries_the_old_rows_by_genre_name() -> None:
    teacher = _teacher()
    _, _, c = _centres()
    # Zero epochs of training: the student is the teacher with a fresh row for the new genre "0new",
    # which sorts first, so the old rows must be matched by name, not position.
    student, _ = fit(_clips(0, c, 4, 4), [], ["0new", "a", "b"], replace(ARCH, n_classes=3), replace(CFG, epochs=0),
                     FRONTEND, warm_start=teacher)
    tw, sw = _last_linear(teacher).weight.detach(), _last_linear(student).weight.detach()
    assert torch.equal(sw[1], tw[0]) and torch.equal(sw[2], tw[1])
    a, b, _ = _centres()
    probe = np.stack([song_sequence(cl.variants[0], 4) for cl in _clips(0, a, 6, 5) + _clips(1, b, 6, 6)])
    with torch.inference_mode():
        got, want = student.net(torch.from_numpy(probe))[:, 1:], teacher.net(torch.from_numpy(probe))
    torch.testing.assert_close(got, want)


def test_distillation_keeps_the_old_genres_when_only_new_examples_are_given() -> None:
    teacher = _teacher()
    a, b, c = _centres()
    probe = _clips(0, a, 10, 7) + _clips(1, b, 10, 8)
    target = _old_probs(teacher, probe)
    assert np.mean(np.argmax(target, axis=1) == [cl.label for cl in probe]) >= 0.9  # the teacher knows a and b
    # The retrain sees the new genre and a single clip of an old one: nothing else reminds it of a vs b.
    new = _clips(2, c, 12, 9) + _clips(0, a, 1, 10)
    genres, arch = ["a", "b", "c"], replace(ARCH, n_classes=3)
    cfg = replace(CFG, epochs=20, lr=3e-2, balance=False)

    def drift(weight: float) -> float:
        student, _ = fit(new, [], genres, arch, replace(cfg, distill_weight=weight), FRONTEND, warm_start=teacher)
        got = _old_probs(student, probe)
        return float(np.mean(np.sum(target * (np.log(target) - np.log(got)), axis=1)))  # KL(teacher || student)

    without, with_kd = drift(0.0), drift(1.0)
    assert with_kd < 0.5 * without, (with_kd, without)


def test_a_prior_only_genre_joins_the_head_with_a_fresh_row() -> None:
    """A format-3 model's genre list is longer than its head (the prior-only genres at the end): a
    retrain that learns one of them copies the head's rows by name, starts the newcomer's row
    fresh, and distils only the genres the teacher's network has an output for."""
    from genre_daemon.model.prior import AudioSetPrior

    teacher = _teacher()
    teacher.prior = AudioSetPrior({"a": (1,), "electronic": (2,)}, 1.0, 1.0, ("electronic",), frontend={})
    teacher.genres = ["a", "b", "electronic"]  # the network has two outputs: "electronic" is prior-only
    a, b, c = _centres()
    genres, arch = ["a", "b", "electronic"], replace(ARCH, n_classes=3)
    student, _ = fit(_clips(2, c, 4, 4), [], genres, arch, replace(CFG, epochs=0), FRONTEND, warm_start=teacher)
    tw, sw = _last_linear(teacher).weight.detach(), _last_linear(student).weight.detach()
    assert torch.equal(sw[:2], tw) and not torch.equal(sw[2], tw[1])
    trained, _ = fit(_clips(2, c, 12, 9) + _clips(0, a, 2, 10) + _clips(1, b, 2, 11), [], genres, arch,
                     replace(CFG, epochs=20, lr=3e-2, distill_weight=1.0), FRONTEND, warm_start=teacher)
    probe = _clips(2, c, 6, 12)
    assert np.mean(np.argmax(predict_probs(trained.net, [song_sequence(cl.variants[0], 4) for cl in probe]), axis=1)
                   == 2) >= 0.8


def test_a_warm_started_mlp_head_copies_its_hidden_layer_whole() -> None:
    """Only the output layer is per genre; an MLP head's hidden layer is carried over as it is."""
    arch = replace(ARCH, head="mlp", head_hidden=16)
    a, b, c = _centres()
    teacher, _ = fit(_clips(0, a, 6, 2) + _clips(1, b, 6, 3), [], ["a", "b"], arch, CFG, FRONTEND)
    student, _ = fit(_clips(0, c, 4, 4), [], ["0new", "a", "b"], replace(arch, n_classes=3), replace(CFG, epochs=0),
                     FRONTEND, warm_start=teacher)
    t, s = teacher.net.state_dict(), student.net.state_dict()
    assert torch.equal(t["head.1.weight"], s["head.1.weight"])
    assert torch.equal(s["head.4.weight"][1:], t["head.4.weight"])


def test_spread_indices_include_both_ends_and_never_repeat() -> None:
    assert spread_indices(18, 8).tolist() == [0, 2, 5, 7, 10, 12, 15, 17]
    assert spread_indices(3, 8).tolist() == [0, 1, 2]
    assert spread_indices(1, 8).tolist() == [0]


def test_training_learns_songs_of_any_length() -> None:
    """Trained on sequences of 2 to 4 patches, the model also judges 1- and 8-patch songs."""
    a, b, _ = _centres()
    model, history = fit(_clips(0, a, 10, 2) + _clips(1, b, 10, 3), [], ["a", "b"], ARCH, replace(CFG, epochs=20),
                         FRONTEND)
    assert history.epochs_run == 20
    test = _clips(0, a, 5, 11) + _clips(1, b, 5, 12)
    for n in (1, 8):
        probs = predict_probs(model.net, [song_sequence(c.variants[0], n) for c in test])
        assert np.mean(np.argmax(probs, axis=1) == [c.label for c in test]) >= 0.9


def test_a_constant_input_does_not_blow_up_its_rounding_error() -> None:
    """A musicnn unit that never fires is a constant; the float16 cache rounds it by ~1e-4, and
    that difference must stay small once standardised."""
    from genre_daemon.learning.fit import normalisation_stats

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, D)).astype(np.float32)
    x[:, 3] = 0.7431  # dead unit: the same value on every patch
    x[:, 4] = 0.0
    mean, std = normalisation_stats([Clip("c", 0, [x])])
    assert abs(std[0] - 1) < 0.3  # ordinary inputs keep their spread
    assert std[3] >= 0.007 and std[4] >= 1e-3
    assert abs((np.float16(0.7431) - np.float32(0.7431)) / std[3]) < 0.05
