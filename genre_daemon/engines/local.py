"""The local engine: one model per worker process, on this machine's cores.

``workers=1`` classifies in this process (no pool: today's ``classify``, at today's speed). More
workers are a ``spawn`` process pool (never fork: the parent may already hold torch threads),
each worker loading the model once in its initializer, with OMP/torch threads at 1 (a second
intra-op thread only fights the other workers for the cores: ~30% more CPU per file, measured).

A worker that dies (SIGKILL, OOM killer) breaks a ``ProcessPoolExecutor`` as a whole, so the
engine restarts the pool and resubmits every file that has not come back. Which file was
running in the dead worker is known from a marker file each worker writes before it starts a
file (a synchronous rename, so it survives the kill). Those files are then retried one at a
time with nothing else running, so a file that kills its worker is told apart from the files
that merely ran beside it; after :data:`RETRIES` deaths it gets an error Result instead of
another try. (``multiprocessing.Pool.imap_unordered`` cannot do this: it replaces a killed
worker silently and waits for the lost task for ever.)
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from genre_daemon.engines.base import Engine, Result, classify_one

if TYPE_CHECKING:
    from genre_daemon.model.inference import Classifier

RETRIES = 3  # worker deaths a file may cause before it is reported as an error
CHUNKSIZE = 1  # files per task: a file costs ~0.5 s of CPU, a round trip ~1 ms (see docs/scale.md)

_classifier: Classifier | None = None  # the worker process's model, loaded once by _init_worker
_markers: Path | None = None


def single_threaded() -> None:
    """One intra-op thread for everything torch/BLAS run in this process; before torch work."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


def _init_worker(model_dir: str, markers: str) -> None:
    """Pool initializer: the worker's one model, warmed up, before its first file."""
    global _classifier, _markers
    single_threaded()
    from genre_daemon.model.inference import Classifier

    _classifier = Classifier.from_dir(model_dir)
    _classifier.warm_up()
    _markers = Path(markers)


def _work(paths: tuple[str, ...]) -> list[Result]:
    """Classify a chunk in a worker, naming the file in hand in ``<markers>/<pid>`` first."""
    assert _classifier is not None and _markers is not None
    marker = _markers / str(os.getpid())
    tmp = _markers / f"{os.getpid()}.tmp"
    out = []
    for p in paths:
        tmp.write_bytes(os.fsencode(p))
        os.replace(tmp, marker)
        out.append(classify_one(_classifier, p))
    marker.unlink(missing_ok=True)
    return out


def _harvest(done: Iterable[Future[list[Result]]],
             inflight: dict[Future[list[Result]], tuple[str, ...]]) -> tuple[list[Result], list[str]]:
    """The results of the finished tasks ``done`` (taken out of ``inflight``), and the files of
    those that a broken pool lost."""
    results: list[Result] = []
    lost: list[str] = []
    for f in done:
        chunk = inflight.pop(f)
        try:
            results += f.result()
        except BrokenProcessPool:
            lost += chunk
    return results, lost


def died_reason(deaths: int) -> str:
    return f"the worker classifying it died {deaths} time{'s' if deaths != 1 else ''}"


class LocalEngine(Engine):
    """``workers`` processes (default: every core), or this process when ``workers`` is 1."""

    def __init__(self, model_dir: str | os.PathLike[str], workers: int | None = None, *,
                 chunksize: int = CHUNKSIZE, retries: int = RETRIES) -> None:
        self.model_dir = os.path.abspath(model_dir)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.chunksize = max(1, chunksize)
        self.retries = max(1, retries)
        self.restarts = 0  # pools replaced after a worker died (for tests and benchmarks)
        self._classifier: Classifier | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._markers: Path | None = None
        if self.workers == 1:
            from genre_daemon.model.inference import Classifier

            self._classifier = Classifier.from_dir(self.model_dir)
            self.model_version = self._classifier.version
        else:
            from genre_daemon.model.files import load_model

            self.model_version = load_model(self.model_dir).version  # a bad model fails here, not in a worker
            self._markers = Path(tempfile.mkdtemp(prefix="genre-daemon-workers-"))

    def worker_pids(self) -> list[int]:
        """The pool's live worker processes (empty in-process or before the first file)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in list(procs.values()) if p.is_alive()]

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            assert self._markers is not None
            for stale in self._markers.iterdir():
                stale.unlink(missing_ok=True)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.model_dir, str(self._markers)))
        return self._pool

    def _running(self) -> set[str]:
        """The files the pool's workers had in hand when it broke (their markers)."""
        assert self._markers is not None
        return {os.fsdecode(m.read_bytes()) for m in self._markers.iterdir() if not m.name.endswith(".tmp")}

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
        self.restarts += 1

    def classify(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Result]:
        if self._classifier is not None:
            for p in paths:
                yield classify_one(self._classifier, os.fspath(p))
            return
        yield from self._classify_pooled(iter(paths))

    def _classify_pooled(self, source: Iterator[str | os.PathLike[str]]) -> Iterator[Result]:
        window = 2 * self.workers  # tasks in flight: one running and one queued per worker
        again: deque[str] = deque()  # lost with a broken pool, not suspected: resubmitted first
        suspects: deque[str] = deque()  # were running when a worker died: retried alone
        deaths: dict[str, int] = {}
        inflight: dict[Future[list[Result]], tuple[str, ...]] = {}
        exhausted = False
        try:
            while True:
                pool = self._start()
                if suspects or any(p in deaths for chunk in inflight.values() for p in chunk):
                    if not inflight and suspects:  # a suspect runs with nothing beside it
                        p = suspects.popleft()
                        inflight[pool.submit(_work, (p,))] = (p,)
                else:
                    while len(inflight) < window:
                        chunk: list[str] = []
                        while len(chunk) < self.chunksize and again:
                            chunk.append(again.popleft())
                        while len(chunk) < self.chunksize and not exhausted:
                            try:
                                chunk.append(os.fspath(next(source)))
                            except StopIteration:
                                exhausted = True
                        if not chunk:
                            break
                        inflight[pool.submit(_work, tuple(chunk))] = tuple(chunk)
                if not inflight:
                    return
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                results, lost = _harvest(done, inflight)
                yield from results
                if not lost:
                    continue
                # The pool is broken: every other task in flight fails too (or had finished).
                results, more = _harvest(list(inflight), inflight)
                yield from results
                lost += more
                running = self._running() & set(lost) or set(lost)  # no marker: blame the lot
                self._restart()
                for p in lost:
                    if p not in running:
                        again.append(p)
                        continue
                    deaths[p] = deaths.get(p, 0) + 1
                    if deaths[p] >= self.retries:
                        yield Result(p, None, died_reason(deaths[p]))
                    else:
                        suspects.append(p)
        finally:
            for f in inflight:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._markers is not None:
            shutil.rmtree(self._markers, ignore_errors=True)
            self._markers = None
        self._classifier = None
