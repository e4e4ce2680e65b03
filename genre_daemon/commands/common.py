"""What the sub-commands share: the exit statuses of the table in docs/cli.md, the ``--config``
help, the settings of ``--config``, a plain table and a duration."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["CONFIG_HELP", "FAILED", "NOT_RUNNING", "OK", "USAGE", "add_engine_arguments", "duration", "print_table",
           "settings_of"]

# The exit statuses a script can trust (docs/cli.md, DESIGN.md): every command uses these.
OK = 0  # success
FAILED = 1  # some files failed (classify, tag, run --once), or nothing could be done to them
USAGE = 2  # bad usage or config: a wrong option, a missing file, a config that does not load
NOT_RUNNING = 3  # status: no daemon runs for this config (as `systemctl status` and LSB scripts say)

CONFIG_HELP = "config file (default: $GENRE_DAEMON_CONFIG, then ~/.config/genre-daemon/config.yaml)"


def settings_of(args: argparse.Namespace) -> Any:
    """The settings of ``--config`` (the default path when it is not given)."""
    from genre_daemon.config import load_settings

    return load_settings(args.config)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Left-aligned columns; the last one is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[-1] = 0
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def duration(seconds: float) -> str:
    """Whole seconds as ``1d 2h 3m 4s``, from the largest non-zero unit down (``44s``, ``1m 0s``,
    ``0s``): the units below the largest one stay, so the numbers line up as time passes."""
    s = max(int(seconds), 0)
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts)


def add_engine_arguments(p: argparse.ArgumentParser, *, local_workers: str) -> None:
    """--engine, --workers, --ray-address: where classification runs (docs/scale.md);
    ``local_workers`` says the command's default number of local processes."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: processes on this machine (default); ray: a Ray cluster "
                        "(pip install 'genre-daemon[ray]')")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"local: worker processes (default {local_workers}); ray: actors (default: the cluster's CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster's head, host:port (default: $RAY_ADDRESS, else a local Ray instance)")
