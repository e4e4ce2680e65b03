"""``genre-daemon run --once`` and ``run --dry-run``: one pass over the inbox as it is now, then exit
(for cron, and for trying a config before the daemon runs on it).

``--once`` files every file and album in the inbox with the filer every way of filing shares
(:mod:`genre_daemon.filer`, through ``import``'s runner with the inbox as its folder): the same
grouping into albums, the one placement decision, the journal (history, undo), the recovery of
what a kill interrupted. It holds the inbox lock while it runs, so it never races a daemon on the
same inbox (one running is refused, exit status 2). It does not watch: a file still arriving is
left for the next pass.

``--dry-run`` prints (and logs) the plan that pass would carry out, with the import dry run's
planner (:mod:`genre_daemon.importer.dry_run`): where each file or album would go, and why; it
moves nothing and records nothing.

It lives beside import's runner, which it drives (import sits above the daemon's layer: the daemon
never imports it). Classification runs in this process, with ``workers`` local processes when the config says more
than one (the daemon's ``workers``), on the model the daemon would load.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

from genre_daemon.config import Settings

__all__ = ["dry_run_inbox", "run_once"]

log = logging.getLogger("genre_daemon.importer.once")

STOPPED = 130  # SIGINT/SIGTERM ended the pass after the file in hand (as import)


def _engine(settings: Settings) -> Callable[[], Any]:
    """The engine of the pass: the daemon's model, ``workers`` local processes (1: this one)."""
    from genre_daemon.engines import open_engine
    from genre_daemon.learning.versions import resolve_model_dir

    model_dir = resolve_model_dir(settings)
    return lambda: open_engine("local", model_dir, workers=settings.workers)


def run_once(settings: Settings, out: TextIO, progress: TextIO | None = sys.stderr,
             stoppable: Callable[[Callable[[], Any], Callable[[], None]], Any] | None = None) -> int:
    """File what is in the inbox now; 0, 1 when some files were quarantined (could not be read
    or decoded), 130 when stopped. ``stoppable(run, stop)`` runs the pass with signals calling
    ``stop`` (the command line's); one line of counts goes to ``out``."""
    from genre_daemon.importer.runner import Importer

    log.info("run --once: filing what is in %s now", settings.inbox)
    sorter = Importer(settings, settings.inbox, _engine(settings), progress=progress, inbox_pass=True)
    c = (stoppable or (lambda run, _stop: run()))(sorter.run, sorter.request_stop)
    stopped = sorter.filer.stop.is_set()
    print(f"run --once: {settings.inbox}: {c.placed} placed, {c.review} to review, {c.quarantined} quarantined"
          + (" (stopped: the rest waits for the next pass)" if stopped else ""), file=out)
    return STOPPED if stopped else 1 if c.quarantined else 0


def dry_run_inbox(settings: Settings, out: TextIO) -> int:
    """Print where each file and album of the inbox would go; change nothing. 0."""
    from genre_daemon.importer.dry_run import dry_run

    log.info("run --dry-run: where the files in %s would go; nothing is moved or recorded", settings.inbox)
    return dry_run(settings, settings.inbox, _engine(settings), out, inbox_pass=True)
