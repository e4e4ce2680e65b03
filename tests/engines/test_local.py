"""The local engine: a pool of worker processes gives exactly what one Classifier gives, and a
worker killed in the middle of a file loses nothing (the file is retried; a file that kills its
worker every time is reported after RETRIES deaths)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from genre_daemon.engines import Result, open_engine
from genre_daemon.engines.local import RETRIES, LocalEngine, died_reason
from genre_daemon.resources import default_model_dir

from .conftest import alive, assert_same, bad_files, clips, reference


@pytest.fixture(scope="module")
def engine():
    with open_engine("local", default_model_dir(), workers=2) as e:
        yield e


def test_two_workers_give_exactly_the_in_process_results(engine: LocalEngine, gtzan_dir: Path, classifier,
                                                         tmp_path: Path) -> None:
    paths = clips(gtzan_dir, 10)
    paths[3:3] = bad_files(tmp_path, paths[0])
    expected = reference(classifier, paths)
    assert [r.error is not None for r in expected.values()].count(True) == 3
    assert expected[str(tmp_path / "truncated.flac")].incomplete
    results = list(engine.classify(Path(p) if i % 2 else p for i, p in enumerate(paths)))  # str or PathLike
    assert_same(results, expected)
    assert all(isinstance(r, Result) for r in results)
    assert engine.model_version == classifier.version
    assert len(set(engine.worker_pids())) == 2


def test_one_worker_runs_in_this_process(tmp_path: Path) -> None:
    with open_engine("local", default_model_dir(), workers=1) as e:
        [r] = e.classify([str(tmp_path / "missing.flac")])
        assert e.worker_pids() == [] and r.error and r.prediction is None


class Killer(threading.Thread):
    """SIGKILLs the worker whose marker says it has ``target`` in hand, up to ``times`` times:
    the worker dies in the middle of that very file (no sleep guesses when)."""

    def __init__(self, engine: LocalEngine, target: str, times: int) -> None:
        super().__init__(daemon=True)
        self.engine, self.target, self.times = engine, os.fsencode(target), times
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while len(self.killed) < self.times and not self.stop.is_set():
            markers = self.engine._markers
            for m in list(markers.iterdir()) if markers else []:
                try:
                    if m.name.isdigit() and m.read_bytes() == self.target and int(m.name) not in self.killed:
                        os.kill(int(m.name), signal.SIGKILL)
                        self.killed.append(int(m.name))
                except (FileNotFoundError, ProcessLookupError):
                    pass
            time.sleep(0.005)


def test_a_worker_killed_mid_file_loses_nothing(gtzan_dir: Path, classifier) -> None:
    paths = clips(gtzan_dir, 8)
    expected = reference(classifier, paths)
    with open_engine("local", default_model_dir(), workers=2) as e:
        killer = Killer(e, paths[3], times=1)
        killer.start()
        results = list(e.classify(paths))
        killer.stop.set()
        assert len(killer.killed) == 1 and not alive(killer.killed[0])
        assert e.restarts == 1
    assert_same(results, expected)


def test_a_file_that_kills_its_worker_every_time_is_reported_after_the_retries(gtzan_dir: Path, classifier) -> None:
    paths = clips(gtzan_dir, 5)
    poison = paths[1]
    expected = reference(classifier, paths)
    expected[poison] = Result(poison, None, died_reason(RETRIES))
    with open_engine("local", default_model_dir(), workers=2) as e:
        killer = Killer(e, poison, times=RETRIES)
        killer.start()
        results = list(e.classify(paths))
        killer.stop.set()
        assert len(killer.killed) == RETRIES and e.restarts == RETRIES
    assert_same(results, expected)
    assert died_reason(RETRIES) == "the worker classifying it died 3 times"


def test_a_consumer_may_stop_early_and_go_on_later(engine: LocalEngine, gtzan_dir: Path) -> None:
    paths = clips(gtzan_dir, 6)
    first = next(iter(engine.classify(paths)))
    assert first.path in paths
    assert sorted(r.path for r in engine.classify(paths[:2])) == sorted(paths[:2])
