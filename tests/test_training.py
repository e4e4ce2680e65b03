"""Retraining from a warm start: the old genres' output rows are carried over by name, and
distillation from the warm-start model keeps what it knew when the new data is all of a new genre."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from genre_daemon.features import FeatureParams
from genre_daemon.model import Architecture
from genre_daemon.training import Clip, TrainConfig, clip_windows, fit, predict_probs

ARCH = Architecture(n_features=33, n_classes=2, hidden=8, dropout=0.0)
CFG = TrainConfig(window_frames=24, epochs=6, crops_per_clip=8, batch_size=32, val_fraction=0.0, gain_db=0.0,
                  noise_floor_db=None, seed=0, threads=1)


def _clips(label: int, centre: np.ndarray, n: int, seed: int) -> list[Clip]:
    rng = np.random.default_rng(seed)
    return [Clip(f"c{label}-{i}", label, [(centre + rng.normal(0, 1.0, (60, 33))).astype(np.float32)])
            for i in range(n)]


def _centres() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(0, 1.5, 33) for _ in range(3)]


def _old_probs(model, clips: list[Clip]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Each clip's probabilities over the genres "a" and "b", renormalised."""
    p = np.stack(predict_probs(model.net, [clip_windows(c.variants[0], 24, 4) for c in clips]))
    cols = [model.genres.index(g) for g in ("a", "b")]
    p = p[:, cols]
    return p / p.sum(axis=1, keepdims=True)


def _last_linear(model) -> torch.nn.Linear:  # type: ignore[no-untyped-def]
    return [m for m in model.net.head.modules() if isinstance(m, torch.nn.Linear)][-1]


def _teacher():  # type: ignore[no-untyped-def]
    a, b, _ = _centres()
    old = _clips(0, a, 12, 2) + _clips(1, b, 12, 3)
    model, _ = fit(old, [], ["a", "b"], ARCH, replace(CFG, epochs=10), FeatureParams())
    return model


def test_warm_start_carries_the_old_rows_by_genre_name() -> None:
    teacher = _teacher()
    _, _, c = _centres()
    # Zero epochs of training: the student is the teacher with a fresh row for the new genre "0new",
    # which sorts first, so the old rows must be matched by name, not position.
    student, _ = fit(_clips(0, c, 4, 4), [], ["0new", "a", "b"], replace(ARCH, n_classes=3), replace(CFG, epochs=0),
                     FeatureParams(), warm_start=teacher)
    tw, sw = _last_linear(teacher).weight.detach(), _last_linear(student).weight.detach()
    assert torch.equal(sw[1], tw[0]) and torch.equal(sw[2], tw[1])
    a, b, _ = _centres()
    probe = np.stack([clip_windows(cl.variants[0], 24, 1)[0] for cl in _clips(0, a, 6, 5) + _clips(1, b, 6, 6)])
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
        student, _ = fit(new, [], genres, arch, replace(cfg, distill_weight=weight), FeatureParams(), warm_start=teacher)
        got = _old_probs(student, probe)
        return float(np.mean(np.sum(target * (np.log(target) - np.log(got)), axis=1)))  # KL(teacher || student)

    without, with_kd = drift(0.0), drift(1.0)
    assert with_kd < 0.5 * without, (with_kd, without)
