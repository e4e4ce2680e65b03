"""Rehearsal sets: sampling, the size cap, the file format, and training on them with fit()."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genre_daemon.learning import rehearsal
from genre_daemon.errors import ModelError
from genre_daemon.model.frontend import FrontEnd
from genre_daemon.model.files import REHEARSAL_FILE, Architecture, load_model, read_metadata
from genre_daemon.learning.rehearsal import RehearsalSet
from genre_daemon.learning.workflows import train_from_folder
from genre_daemon.learning.fit import Clip, TrainConfig, fit, predict_clips, predict_probs

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WINDOW = 6  # patches per rehearsed song
GENRES = ["a", "b", "c"]
INPUTS = ("msd_tags",)
D = 50
FRONTEND = FrontEnd.from_directory(INPUTS)


def _traceable_clips(n: int, patches: int = 18, n_variants: int = 2) -> list[Clip]:
    """Clips whose every patch vector says where it came from: column 0 the clip, 1 the variant,
    2 the patch (small integers, exact in float16)."""
    clips = []
    for i in range(n):
        variants = []
        for v in range(n_variants):
            x = np.zeros((patches - v, D), np.float32)
            x[:, 0], x[:, 1], x[:, 2] = i, v, np.arange(patches - v)
            variants.append(x)
        clips.append(Clip(f"clip{i}", i % len(GENRES), variants))
    return clips


def _learnable_clips(n: int, n_classes: int = 3, seed: int = 0, patches: int = 12) -> list[Clip]:
    """Each class a different mean on a different input: easy to learn in a few epochs."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        y = i % n_classes
        x = rng.standard_normal((patches, D)).astype(np.float32)
        x[:, 5 + y] += 4.0
        clips.append(Clip(f"new{i}", y, [x]))
    return clips


def test_sample_spreads_sequences_and_alternates_clean_and_augmented() -> None:
    clips = _traceable_clips(6)
    rs = rehearsal.sample(clips, GENRES, WINDOW, windows_per_clip=4, seed=1, frontend="fe")
    assert rs.windows.dtype == np.float16 and rs.windows.shape == (24, WINDOW, D) and rs.frontend == "fe"
    assert rs.labels.dtype == np.int64 and rs.clip_ids.dtype == np.int64
    for cid in range(6):
        rows = np.flatnonzero(rs.clip_ids == cid)
        assert len(rows) == 4
        assert set(rs.labels[rows].tolist()) == {clips[cid].label}
        w = rs.windows[rows].astype(np.float32)
        assert np.all(w[:, :, 0] == cid)  # every sequence from its own clip
        assert w[:, 0, 1].tolist() == [0, 1, 0, 1]  # clean first, then alternating
        assert np.all(w[:, :, 1] == w[:, :1, 1])  # one variant per sequence
        patches = w[:, :, 2]
        assert np.all(np.diff(patches, axis=1) > 0)  # in time order, no repeats
        assert patches[0].tolist() == [0, 3, 7, 10, 14, 17]  # the first spread over the clip, as inference
        assert len({tuple(p) for p in patches.tolist()}) == 4  # the others different songs of it


def test_sample_of_clips_without_augmentation_uses_the_clean_variant() -> None:
    rs = rehearsal.sample(_traceable_clips(3, n_variants=1), GENRES, WINDOW)
    assert len(rs) == 12 and np.all(rs.windows[:, :, 1] == 0)


def test_a_short_clip_keeps_its_length() -> None:
    """A clip of 2 patches is rehearsed as the 2-patch song inference would see, not padded out."""
    rs = rehearsal.sample(_traceable_clips(2, patches=2, n_variants=1), GENRES, WINDOW)
    assert rs.windows.shape == (8, WINDOW, D) and rs.lengths.tolist() == [2] * 8
    assert rs.windows[0, :2, 2].tolist() == [0, 1] and not rs.windows[0, 2:].any()
    back = rehearsal.to_clips(rs)
    assert all(v.shape == (2, D) for c in back for v in c.variants)


def test_size_cap_takes_fewer_windows_per_clip_then_fewer_clips() -> None:
    clips = _traceable_clips(30)
    per_window = WINDOW * D * 2 + 24
    rs = rehearsal.sample(clips, GENRES, WINDOW, windows_per_clip=4, max_bytes=65 * per_window)
    assert rs.nbytes <= 65 * per_window and len(rs) == 60  # 2 per clip
    assert sorted(set(rs.clip_ids.tolist())) == list(range(30))
    rs = rehearsal.sample(clips, GENRES, WINDOW, max_bytes=9 * per_window, seed=3)
    assert rs.nbytes <= 9 * per_window and len(rs) == 9
    assert len(set(rs.clip_ids.tolist())) == 9
    assert sorted(set(rs.labels.tolist())) == [0, 1, 2]  # every genre kept


def test_sample_refuses_labels_outside_the_genres() -> None:
    with pytest.raises(ValueError, match="outside the 2 genres"):
        rehearsal.sample(_traceable_clips(3), ["a", "b"], WINDOW)


def test_save_load_round_trip(tmp_path: Path) -> None:
    rs = rehearsal.sample(_traceable_clips(5), GENRES, WINDOW)
    rehearsal.save(rs, tmp_path)
    back = rehearsal.load(tmp_path)
    assert back is not None
    assert back.genres == GENRES
    np.testing.assert_array_equal(back.windows, rs.windows)
    np.testing.assert_array_equal(back.labels, rs.labels)
    np.testing.assert_array_equal(back.clip_ids, rs.clip_ids)
    np.testing.assert_array_equal(back.lengths, rs.lengths)
    assert back.windows.dtype == np.float16
    assert [p.name for p in tmp_path.iterdir()] == [REHEARSAL_FILE]  # no temporary file left
    assert (tmp_path / REHEARSAL_FILE).stat().st_mode & 0o044 == 0o044  # readable by a service account


def test_load_without_a_rehearsal_set_is_none(tmp_path: Path) -> None:
    assert rehearsal.load(tmp_path) is None


def _bad_set(kind: str) -> RehearsalSet:
    rs = rehearsal.sample(_traceable_clips(3), GENRES, WINDOW)
    if kind == "label":
        rs.labels[0] = 7
    elif kind == "dtype":
        rs.windows = rs.windows.astype(np.float32)
    elif kind == "length":
        rs.clip_ids = rs.clip_ids[:-1]
    return rs


@pytest.mark.parametrize("kind", ["label", "dtype", "length"])
def test_save_refuses_an_inconsistent_set(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ModelError, match="malformed rehearsal set"):
        rehearsal.save(_bad_set(kind), tmp_path)
    assert not (tmp_path / REHEARSAL_FILE).exists()


def test_load_refuses_malformed_files(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / REHEARSAL_FILE
    path.write_bytes(pickle.dumps({"windows": np.zeros(3)}))
    with pytest.raises(ModelError, match="not a safetensors file"):
        rehearsal.load(tmp_path)
    rs = rehearsal.sample(_traceable_clips(3), GENRES, WINDOW)
    save_file({"windows": rs.windows, "labels": rs.labels, "clip_ids": rs.clip_ids}, str(path))
    with pytest.raises(ModelError, match="not a rehearsal set"):
        rehearsal.load(tmp_path)
    save_file({"windows": rs.windows, "labels": rs.labels, "clip_ids": rs.clip_ids}, str(path),
              metadata={"format": rehearsal.FORMAT, "genres": '["a", "b", "c"]'})
    with pytest.raises(ModelError, match="expected tensors"):  # a round-1 set has no lengths
        rehearsal.load(tmp_path)
    save_file({"windows": rs.windows, "labels": rs.labels + 5, "clip_ids": rs.clip_ids, "lengths": rs.lengths},
              str(path), metadata={"format": rehearsal.FORMAT, "genres": '["a", "b", "c"]'})
    with pytest.raises(ModelError, match="labels outside"):
        rehearsal.load(tmp_path)
    save_file({"windows": rs.windows, "labels": rs.labels, "clip_ids": rs.clip_ids, "lengths": rs.lengths + 99},
              str(path), metadata={"format": rehearsal.FORMAT, "genres": '["a", "b", "c"]'})
    with pytest.raises(ModelError, match="lengths outside"):
        rehearsal.load(tmp_path)
    save_file({"windows": rs.windows, "labels": rs.labels, "clip_ids": rs.clip_ids, "lengths": rs.lengths}, str(path),
              metadata={"format": rehearsal.FORMAT, "genres": "not json"})
    with pytest.raises(ModelError, match="genre list"):
        rehearsal.load(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelError, match=REHEARSAL_FILE):
        rehearsal.load(tmp_path)


def test_load_does_not_follow_a_symlink(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    rehearsal.save(rehearsal.sample(_traceable_clips(3), GENRES, WINDOW), other)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / REHEARSAL_FILE).symlink_to(other / REHEARSAL_FILE)
    with pytest.raises(ModelError, match="refusing to follow"):
        rehearsal.load(model_dir)


def test_to_clips_groups_windows_by_source_clip() -> None:
    clips = _traceable_clips(6)
    rs = rehearsal.sample(clips, GENRES, WINDOW, windows_per_clip=3)
    back = rehearsal.to_clips(rs)
    assert len(back) == 6
    for original, clip in zip(clips, back):
        assert clip.label == original.label and len(clip.variants) == 3
        assert all(v.shape == (WINDOW, D) and v.dtype == np.float32 for v in clip.variants)
        assert clip.variants[0][0, 1] == 0  # the first variant is clean, as Clip promises
        assert clip.frames == WINDOW
        assert clip.name.startswith(f"rehearsal:{GENRES[original.label]}:")


def test_to_clips_reindexes_into_a_new_genre_list() -> None:
    rs = rehearsal.sample(_traceable_clips(6), GENRES, WINDOW)
    back = rehearsal.to_clips(rs, ["new", "c", "b", "a"])
    assert [c.label for c in back] == [3, 2, 1, 3, 2, 1]
    with pytest.raises(ValueError, match=r"\['c'\]"):
        rehearsal.to_clips(rs, ["a", "b"])


def test_fit_on_rehearsal_and_new_clips_learns_old_and_new_genres() -> None:
    """A retrain's shape: rehearsed old genres (0-2) plus clips of a new genre (3) in one fit."""
    old = _learnable_clips(24, seed=1)
    rs = rehearsal.sample(old, ["a", "b", "c"], WINDOW, windows_per_clip=2)
    genres = ["a", "b", "c", "new"]
    new = [c for c in _learnable_clips(24, seed=2, n_classes=4) if c.label == 3]
    train = rehearsal.to_clips(rs, genres) + new[:4]
    cfg = TrainConfig(patches=WINDOW, epochs=5, crops_per_clip=64, batch_size=32, seed=0, threads=1)
    model, history = fit(train, [], genres, Architecture(inputs=INPUTS, n_classes=4, hidden=8, dropout=0.1), cfg,
                         FRONTEND)
    assert model.genres == genres and history.epochs_run == 5
    test = _learnable_clips(12, seed=3) + new[4:]
    predicted = predict_clips(model, test)
    assert np.mean(np.array(predicted[:12]) == [c.label for c in test[:12]]) >= 0.75  # old genres kept
    assert predicted[12:] == [3, 3]  # the new genre learnt


def _tone_folder(root: Path) -> Path:
    sr = 22050
    t = np.arange(int(3.2 * sr)) / sr
    for g, genre in enumerate(["low", "high"]):
        for i in range(2):
            y = 0.3 * np.sin(2 * np.pi * (150 + 2000 * g + 40 * i) * t)
            (root / genre).mkdir(parents=True, exist_ok=True)
            sf.write(root / genre / f"{i}.wav", y.astype(np.float32), sr)
    return root


def test_train_from_folder_writes_a_rehearsal_set_next_to_the_model(tmp_path: Path) -> None:
    out = tmp_path / "model"
    train_from_folder(_tone_folder(tmp_path / "data"), out, epochs=1, patches=WINDOW,
                      arch_overrides={"hidden": 8, "inputs": INPUTS}, val_fraction=0.0, threads=1)
    model = load_model(out)  # the extra file does not bother the loader
    rs = rehearsal.load(out)
    assert rs is not None and rs.genres == model.genres == ["high", "low"]
    assert rs.windows.shape[1:] == (WINDOW, D)
    assert rs.frontend == model.frontend.identity(model.inputs)
    assert sorted(set(rs.clip_ids.tolist())) == list(range(4))


def test_the_shipped_default_model_carries_a_rehearsal_set_it_recognises() -> None:
    """The default model's own rehearsal sequences, fed back to it, come out mostly right: they
    were made with its front end, inputs and augmentations, not something else."""
    model_dir = PROJECT_ROOT / "models" / "default"
    path = model_dir / REHEARSAL_FILE
    assert path.is_file(), f"{path} is missing: python -m genre_daemon.learning.rehearsal --data ... --model {model_dir}"
    assert path.stat().st_size <= 8 << 20
    model = load_model(model_dir)
    rs = rehearsal.load(model_dir)
    assert rs is not None and rs.genres == model.learned  # the network's genres (not the prior-only ones)
    assert rs.windows.shape[1:] == (model.patches, model.n_inputs)
    assert rs.frontend == model.frontend.identity(model.inputs)
    assert set(rs.labels.tolist()) == set(range(len(model.learned)))
    assert read_metadata(model_dir)["training"]["data"]["clips"] == len(set(rs.clip_ids.tolist()))
    labels = rs.labels
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine made 2 threads 400x slower here
    try:
        probs = predict_probs(model.net, [rs.sequence(i) for i in range(len(rs))])
    finally:
        torch.set_num_threads(threads)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == labels))
    assert accuracy >= 0.8, accuracy  # these are songs it was trained on
