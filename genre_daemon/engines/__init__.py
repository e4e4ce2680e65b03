"""Engines: classify many files at once, on this machine's cores or on a Ray cluster.

``open_engine("local" | "ray", model_dir, ...)`` gives an :class:`Engine` whose
``classify(paths)`` yields one :class:`Result` per path as each finishes (any order); a file
that cannot be classified is a Result with ``error``, never an exception. The importer and the
``classify`` / ``evaluate`` commands consume it; ``docs/scale.md`` says how to run it on Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from genre_daemon.engines.base import Engine, Result

__all__ = ["Engine", "Result", "open_engine"]


def open_engine(kind: Literal["local", "ray"], model_dir: str | os.PathLike[str] | Path, *,
                workers: int | None = None, ray_address: str | None = None,
                batch_size: int | None = None) -> Engine:
    """An engine of ``kind`` running the model in ``model_dir``.

    ``local``: ``workers`` processes (default: every core; 1: in this process). ``ray``: the
    cluster at ``ray_address`` (else ``$RAY_ADDRESS``, else a local instance), ``workers``
    actors (default: the cluster's CPUs), ``batch_size`` files per actor call."""
    if kind == "local":
        from genre_daemon.engines.local import LocalEngine

        return LocalEngine(model_dir, workers)
    if kind == "ray":
        from genre_daemon.engines.on_ray import RayEngine

        return RayEngine(model_dir, workers, address=ray_address, batch_size=batch_size)
    raise ValueError(f"unknown engine {kind!r}: expected 'local' or 'ray'")
