"""Shared for the engine tests: real GTZAN clips, bad files, and in-process reference results."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits  # with librosa (the test extra), through scikit-learn

from genre_daemon.engines import Result
from genre_daemon.errors import AudioDecodeError
from genre_daemon.model.inference import Classifier
from genre_daemon.resources import default_model_dir


def clips(gtzan_dir: Path, n: int) -> list[str]:
    """``n`` GTZAN clips spread over every genre (every k-th file by name)."""
    files = sorted(str(p) for p in gtzan_dir.glob("*/*.flac"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def bad_files(folder: Path, real_clip: str) -> list[str]:
    """An empty file, random bytes, and a real FLAC cut to a fifth: three different reasons."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.flac"
    empty.write_bytes(b"")
    noise = folder / "noise.flac"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    data = Path(real_clip).read_bytes()
    cut = folder / "truncated.flac"
    cut.write_bytes(data[: len(data) // 5])
    return [str(empty), str(noise), str(cut)]


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    c = Classifier.from_dir(default_model_dir())
    c.warm_up()
    return c


def reference(classifier: Classifier, paths: list[str]) -> dict[str, Result]:
    """What ``Classifier.classify`` gives, as the engines' Results, computed here as the engines
    compute it: with one BLAS thread. Their workers and actors start with ``OMP_NUM_THREADS=1``
    (``single_threaded`` sets it before numpy is imported; Ray sets it for a 1-CPU actor), so
    numpy's OpenBLAS, which honours it, runs single-threaded there. This process's OpenBLAS has a
    thread per core unless something limited it earlier in the session, and the log-mel's float32
    product split over two threads differs in the last bits for some clips (5 of the 20 Ray
    clips): the Ray test failed when run alone. Torch is single-threaded by ``Classifier`` itself."""
    out = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for p in paths:
            try:
                out[p] = Result(p, classifier.classify(p), None)
            except AudioDecodeError as exc:
                out[p] = Result(p, None, exc.reason, exc.incomplete)
    return out


def assert_same(results: list[Result], expected: dict[str, Result]) -> None:
    """Every path exactly once, each with exactly (==) the reference's prediction or reason."""
    paths = [r.path for r in results]
    assert sorted(paths) == sorted(expected), "each path exactly once"
    for r in results:
        assert r == expected[r.path], r.path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
