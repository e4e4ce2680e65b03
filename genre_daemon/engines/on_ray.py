"""The Ray engine: the same classification on a Ray cluster, one model per actor.

A pool of Ray actors (one CPU each, spread over the nodes) each loads the model once, in
``__init__``, and classifies the batches it is sent with
:func:`~genre_daemon.engines.base.classify_one`, so a bad file gets the same reason text as on
the local engine. Each actor has one batch in hand at a time and gets the next as soon as it
answers; results are yielded as they come back.

An actor whose process or node dies is restarted by Ray (``max_restarts=-1``) but its batch is
not retried there (``max_task_retries=0``: Ray would retry it for ever, and a file that kills
its actor would never let the run end). The engine blames the files of that batch once and
retries each of them alone, as the local engine does its suspects, so a file that kills its
actor is told apart from the one that merely shared its batch; after
:data:`~genre_daemon.engines.local.RETRIES` deaths a file gets an error Result instead of
another try. An actor gets work only once it has answered a ping (started, or restarted after
a death), so an actor that cannot be placed (its node gone, no CPU free elsewhere) never holds
up the run; one that died for good (it could not start) is replaced, :data:`RETRIES` times per
place in the pool. While an actor classifies a file, its process title names the file
(``ps``: which file a slow or dying actor had in hand).

Every path must be readable by every node under the same name (a shared mount), and the
nodes must run this same genre-daemon version. Named ``on_ray`` so it never shadows ``ray``;
``ray`` is imported only here, and only when an engine is opened.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from genre_daemon.engines.base import Engine, Result, classify_one
from genre_daemon.engines.local import RETRIES, died_reason
from genre_daemon.errors import GenreDaemonError

PING_AGAIN = 1.0  # seconds before an unreachable actor (its node may be going down) is asked again
BATCH_SIZE = 2  # files per actor call: small batches give the first result soonest and balance best
INSTALL_HINT = "pip install 'genre-daemon[ray]'"
# Set before ray is imported, in this process and (through the environment) any it starts:
# no usage reporting, and no token auth (a token file left by one local ray.init() otherwise
# turns auth on for some processes of a cluster and not others, and nodes cannot join).
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


class RayUnavailableError(GenreDaemonError):
    """The ray engine was asked for and Ray is not installed."""


def import_ray() -> Any:
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(f"the ray engine needs Ray, which is not installed ({exc}); "
                                  f"install it with: {INSTALL_HINT}") from exc
    return ray


class GenreActor:
    """A Ray actor: one model, loaded once; a batch of paths in, one JSON result each out."""

    def __init__(self, model_dir: str) -> None:
        from genre_daemon.engines.local import single_threaded

        single_threaded()
        from genre_daemon.model.inference import Classifier

        self.classifier = Classifier.from_dir(model_dir)
        self.classifier.warm_up()

    def classify(self, paths: list[str]) -> tuple[list[str], int, int]:
        """Each path's result as JSON text, and this actor's pid and resident set (KiB) after
        the batch (benchmarks: the model is loaded once, not per batch)."""
        results = []
        for p in paths:
            show_in_hand(p)
            results.append(encode(classify_one(self.classifier, p)))
        return results, os.getpid(), resident_kb()

    def ready(self) -> int:
        """Answers once the actor is up (again): its pid."""
        return os.getpid()


def show_in_hand(path: str) -> None:
    """Name the file this actor classifies in its process title; Ray sets its own title back
    when the call returns."""
    try:
        from ray._raylet import setproctitle  # Ray's own title setter: it has no public one
    except ImportError:
        return
    setproctitle(f"ray::GenreActor {path}")


def resident_kb() -> int:
    """This process's resident set (VmRSS) in KiB; 0 where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def encode(r: Result) -> str:
    """A Result as JSON text; floats survive exactly (``repr`` round-trips)."""
    p = r.prediction
    return json.dumps({"error": r.error, "incomplete": r.incomplete, "prediction": None if p is None else {
        "genre": p.genre, "confidence": p.confidence, "scores": p.scores, "model_version": p.model_version,
        "windows": p.windows, "duration": p.duration}})


def decode(path: str, text: str) -> Result:
    from genre_daemon.model.inference import Prediction

    d = json.loads(text)
    p = d["prediction"]
    return Result(path, None if p is None else Prediction(path=path, **p), d["error"], bool(d["incomplete"]))


class RayEngine(Engine):
    """Classify on the cluster at ``address`` (else ``RAY_ADDRESS``, else a local instance of
    ``workers`` CPUs started for this engine); ``workers`` actors (default: the cluster's CPUs)."""

    def __init__(self, model_dir: str | os.PathLike[str], workers: int | None = None, *,
                 address: str | None = None, batch_size: int | None = None) -> None:
        from genre_daemon.model.files import load_model

        self.model_dir = os.path.abspath(model_dir)  # actors do not run in this process's cwd
        self.model_version = load_model(self.model_dir).version
        self.batch_size = max(1, batch_size or BATCH_SIZE)
        self.retries = RETRIES  # actor deaths a file may cause before it is reported as an error
        self.ray = ray = import_ray()
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owns = not ray.is_initialized()
        if self._owns:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
        self.workers = max(1, workers or int(ray.cluster_resources().get("CPU", 1)))
        self.actors: dict[int, list[int]] = {}  # actor pid -> its RSS (KiB) after each batch (benchmarks)
        self.deaths = 0  # actor deaths seen (tests and benchmarks)
        self._pool: list[Any] = []  # one actor per place; None: given up (it could not start)
        self._pings: dict[int, Any] = {}  # place -> the ping of its actor: it gets work once answered
        self._later: dict[int, float] = {}  # place -> when to ping its unreachable actor again
        self._replaced: dict[int, int] = {}

    def classify(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Result]:
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError

        if not self._pool:
            self._pool = [None] * self.workers
            for i in range(self.workers):
                self._start(i)
        source = (os.fspath(p) for p in paths)
        ahead = list(islice(source, self.batch_size))
        inflight: dict[Any, tuple[int, tuple[str, ...]]] = {}  # call -> (place, its files)
        suspects: deque[str] = deque()  # files of a batch whose actor died: retried one by one
        deaths: dict[str, int] = {}
        try:
            while True:
                busy = {i for i, _ in inflight.values()}
                for i, actor in enumerate(self._pool):
                    if actor is None or i in busy or i in self._pings or i in self._later:
                        continue
                    if suspects:
                        chunk: tuple[str, ...] = (suspects.popleft(),)
                    elif ahead:
                        chunk, ahead = tuple(ahead), list(islice(source, self.batch_size))
                    else:
                        break
                    inflight[actor.classify.remote(list(chunk))] = (i, chunk)
                if not inflight and not suspects and not ahead:
                    return
                ref = self._next(list(inflight))
                if ref is None:
                    continue
                i, chunk = inflight.pop(ref)
                try:
                    texts, pid, rss = ray.get(ref)
                except RayActorError:  # the actor died with this batch in hand (or became unreachable)
                    self.deaths += 1
                    self._pings[i] = self._pool[i].ready.remote()
                    for p in chunk:
                        deaths[p] = deaths.get(p, 0) + 1
                        if deaths[p] >= self.retries:
                            yield Result(p, None, died_reason(deaths[p]))
                        else:
                            suspects.append(p)
                    continue
                except RayTaskError as exc:  # classify_one catches the file's errors: this is the actor's
                    for p in chunk:
                        yield Result(p, None, f"unexpected error on the Ray actor: {exc.cause!r}")
                    continue
                self.actors.setdefault(pid, []).append(rss)
                for p, text in zip(chunk, texts):
                    yield decode(p, text)
        finally:  # a consumer that stops early: the calls not started yet are dropped
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort; an answer nobody reads is harmless
                    pass

    def _start(self, i: int) -> None:
        """A new actor in place ``i``; it gets work once it answers its ping (the model loaded)."""
        remote = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0, scheduling_strategy="SPREAD")
        self._pool[i] = remote(GenreActor).remote(self.model_dir)
        self._pings[i] = self._pool[i].ready.remote()

    def _next(self, calls: list[Any]) -> Any:
        """The next call that finished; None when a ping was answered instead (or a wait for
        pinging an unreachable actor again ran out)."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        now = time.monotonic()
        for i, at in list(self._later.items()):
            if at <= now:
                del self._later[i]
                self._pings[i] = self._pool[i].ready.remote()
        timeout = min((at - now for at in self._later.values()), default=None)
        waiting = [*calls, *self._pings.values()]
        if not waiting:
            if timeout is None:
                raise GenreDaemonError("no Ray actor could be started to classify on")
            time.sleep(timeout)
            return None
        ready, _ = self.ray.wait(waiting, num_returns=1, timeout=timeout)
        if not ready:
            return None
        i = next((i for i, ping in self._pings.items() if ping == ready[0]), None)
        if i is None:
            return ready[0]
        del self._pings[i]
        try:
            self.ray.get(ready[0])
        except ActorUnavailableError:  # not reachable now (its node may be going down): ask again soon
            self._later[i] = time.monotonic() + PING_AGAIN
        except RayActorError as exc:  # dead for good, e.g. it could not start: a new one, a few times
            self._replaced[i] = self._replaced.get(i, 0) + 1
            if self._replaced[i] <= self.retries:
                self._start(i)
            else:
                self._pool[i] = None
                if all(a is None for a in self._pool):
                    raise GenreDaemonError(f"no Ray actor could be started to classify on: {exc}") from exc
        return None

    def close(self) -> None:
        for actor in self._pool:
            if actor is not None:
                self.ray.kill(actor)
        self._pool, self._pings, self._later = [], {}, {}
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns = False
