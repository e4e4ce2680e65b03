"""The Ray engine: the same classification on a Ray cluster, one model per actor.

Ray Data streams the paths through a pool of actors (``map_batches`` with an
``ActorPoolStrategy``); each actor loads the model once, in ``__init__``, and classifies its
batches with :func:`~genre_daemon.engines.base.classify_one`, so a bad file gets the same
reason text as on the local engine. Results come back with ``iter_batches`` as blocks finish.
Ray Data restarts an actor whose process or node dies and retries its batch (measured: a
SIGKILLed raylet costs ~10 s and loses nothing).

Every path must be readable by every node under the same name (a shared mount), and the
nodes must run this same genre-daemon version. Named ``on_ray`` so it never shadows ``ray``;
``ray`` is imported only here, and only when an engine is opened.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from genre_daemon.engines.base import Engine, Result, classify_one
from genre_daemon.errors import GenreDaemonError

BATCH_SIZE = 2  # files per actor call: small batches give the first result soonest and balance best
INSTALL_HINT = "pip install 'genre-daemon[ray]'"
# Set before ray is imported, in this process and (through the environment) any it starts:
# no usage reporting, and no token auth (a token file left by one local ray.init() otherwise
# turns auth on for some processes of a cluster and not others, and nodes cannot join).
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


class RayUnavailableError(GenreDaemonError):
    """The ray engine was asked for and Ray (with Ray Data) is not installed."""


def import_ray() -> Any:
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise RayUnavailableError(f"the ray engine needs Ray Data, which is not installed ({exc}); "
                                  f"install it with: {INSTALL_HINT}") from exc
    return ray


class GenreActor:
    """A Ray Data actor: one model, loaded once; a batch of paths in, one JSON result each out."""

    def __init__(self, model_dir: str) -> None:
        from genre_daemon.engines.local import single_threaded

        single_threaded()
        from genre_daemon.model.inference import Classifier

        self.classifier = Classifier.from_dir(model_dir)
        self.classifier.warm_up()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        paths = [str(p) for p in batch["path"]]
        results = [encode(classify_one(self.classifier, p)) for p in paths]
        rss = f"{os.getpid()}:{resident_kb()}"  # per batch: shows the model is loaded once, not per batch
        return {"path": paths, "result": results, "actor": [rss] * len(paths)}


def resident_kb() -> int:
    """This process's resident set (VmRSS) in KiB; 0 where /proc is not there."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def encode(r: Result) -> str:
    """A Result as JSON text; floats survive exactly (``repr`` round-trips), unlike a table column."""
    p = r.prediction
    return json.dumps({"error": r.error, "incomplete": r.incomplete, "prediction": None if p is None else {
        "genre": p.genre, "confidence": p.confidence, "scores": p.scores, "model_version": p.model_version,
        "windows": p.windows, "duration": p.duration}})


def decode(path: str, text: str) -> Result:
    from genre_daemon.model.inference import Prediction

    d = json.loads(text)
    p = d["prediction"]
    return Result(path, None if p is None else Prediction(path=path, **p), d["error"], bool(d["incomplete"]))


def quiet(ray: Any) -> None:
    """Ray Data's progress bars and per-run INFO lines off; its warnings and errors stay."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING if name == "ray" else logging.ERROR)


class RayEngine(Engine):
    """Classify on the cluster at ``address`` (else ``RAY_ADDRESS``, else a local instance of
    ``workers`` CPUs started for this engine); ``workers`` actors (default: the cluster's CPUs)."""

    def __init__(self, model_dir: str | os.PathLike[str], workers: int | None = None, *,
                 address: str | None = None, batch_size: int | None = None) -> None:
        from genre_daemon.model.files import load_model

        self.model_dir = os.path.abspath(model_dir)  # actors do not run in this process's cwd
        self.model_version = load_model(self.model_dir).version
        self.batch_size = max(1, batch_size or BATCH_SIZE)
        self.ray = ray = import_ray()
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._owns = not ray.is_initialized()
        if self._owns:
            if address:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
        quiet(ray)
        self.workers = max(1, workers or int(ray.cluster_resources().get("CPU", 1)))
        self.actors: dict[int, list[int]] = {}  # actor pid -> its RSS (KiB) after each batch (benchmarks)

    def classify(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Result]:
        items = [{"path": os.fspath(p)} for p in paths]
        if not items:
            return
        ray = self.ray
        blocks = max(1, -(-len(items) // self.batch_size))  # one block per batch: they stream one by one
        ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            GenreActor,
            fn_constructor_args=(self.model_dir,),
            compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks)),
            batch_size=self.batch_size,
            num_cpus=1,
            batch_format="numpy",
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for pid, rss in {tuple(map(int, str(a).split(":"))) for a in batch["actor"]}:
                self.actors.setdefault(pid, []).append(rss)
            for path, text in zip(batch["path"], batch["result"]):
                yield decode(str(path), str(text))

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns = False
