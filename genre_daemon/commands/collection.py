"""``import`` and ``tag``: going through a whole collection with an engine classifying ahead
(a process pool over every core by default), resumable after a stop."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from genre_daemon.commands.common import add_engine_arguments
from genre_daemon.commands.common import settings_of as _settings

__all__ = ["add_parsers", "cmd_import", "cmd_tag", "collection_engine", "stoppable"]

T = TypeVar("T")


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    """Sort an existing collection into the library (the daemon's journal and mover), or print
    the plan with --dry-run."""
    from genre_daemon.importer.dry_run import dry_run
    from genre_daemon.importer.runner import Importer

    settings = _settings(args)
    engine = collection_engine(args, settings)
    if args.dry_run:
        return dry_run(settings, args.dir, engine, out)
    importer = Importer(settings, args.dir, engine, progress=sys.stderr)
    c = stoppable(importer.run, importer.request_stop)
    stopped = " (stopped: run it again to go on)" if importer.filer.stop.is_set() else ""
    print(f"imported {args.dir}: {c.placed} placed, {c.review} to review, {c.quarantined} quarantined{stopped}",
          file=out)
    return 130 if stopped else 0


def cmd_tag(args: argparse.Namespace, out: TextIO) -> int:
    """Write genre tags where the files are (moving nothing), or print them with --dry-run."""
    from genre_daemon.importer.tag_in_place import TagRun, dry_run, summary

    settings = _settings(args)
    engine = collection_engine(args, settings)
    if args.dry_run:
        return dry_run(settings, args.dir, engine, out)
    run = TagRun(settings, args.dir, engine, progress=sys.stderr)
    try:
        c = stoppable(run.run, run.request_stop)
    finally:
        for line in run.report:  # what was left untagged or failed, after the progress bar
            print(line, file=out)
    print(summary(c, run.source, run.stop.is_set()), file=out)
    return 130 if run.stop.is_set() else 1 if c.failed else 0


def collection_engine(args: argparse.Namespace, settings: Any) -> Callable[[], Any]:
    """The engine of ``import`` and ``tag`` (--engine, --workers, --ray-address) with the model
    the daemon uses, opened when the run asks."""
    from genre_daemon.engines import open_engine
    from genre_daemon.learning.versions import resolve_model_dir

    model_dir = resolve_model_dir(settings)

    def engine() -> Any:
        return open_engine(args.engine, model_dir, workers=args.workers, ray_address=args.ray_address)

    return engine


def stoppable(run: Callable[[], T], stop: Callable[[], None]) -> T:
    """``run()`` with SIGINT and SIGTERM calling ``stop`` (the run ends after the file in hand,
    its work recorded) instead of killing it."""
    import signal

    previous = {sig: signal.signal(sig, lambda *_: stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_parsers(sub: Any, config_help: str) -> None:
    """The parsers of import and tag."""
    p = sub.add_parser(
        "import", help="sort an existing collection into the library (resumable; --dry-run prints the plan)",
        description="Sort every audio file under DIR into the library through the daemon's journal and careful "
                    "mover: albums filed whole, loose files by path_template, every move in history and undoable. "
                    "A progress bar shows files done, rate and time left (also in `status`). Killed or stopped, "
                    "run it again: it goes on where it stopped and never classifies what was placed. "
                    "--dry-run prints where each album and file would go and changes nothing. Exit status 0 when "
                    "done, 130 when stopped (run it again to go on).",
        epilog="example: genre-daemon import --dry-run ~/old-music | less; genre-daemon import ~/old-music")
    p.add_argument("dir", type=Path, metavar="DIR", help="the folder of music to sort (it is emptied into the library)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--dry-run", action="store_true", help="print the plan; move nothing, record nothing")
    add_engine_arguments(p, local_workers="the machine's cores")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "tag", help="write genre tags where the files are, moving nothing (resumable; --dry-run prints them)",
        description="Classify every audio file under DIR (albums get one genre, as the daemon files them) and "
                    "write the genre into each file's genre tag where it is; nothing moves. Every tag written is "
                    "in `history` and `undo` puts the old one back. Files below min_confidence and albums too "
                    "mixed are left untagged and listed. Killed or stopped, run it again: it goes on where it "
                    "stopped and never classifies what it tagged. Exit status 0 when every file was judged, 1 when "
                    "some failed, 130 when stopped.",
        epilog="example: genre-daemon tag --dry-run ~/Music/Library/jazz")
    p.add_argument("dir", type=Path, metavar="DIR", help="the folder of music to tag (the library, or any folder "
                   "of yours; not the inbox)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--dry-run", action="store_true", help="print what would be written; change nothing")
    add_engine_arguments(p, local_workers="the machine's cores")
    p.set_defaults(func=cmd_tag)
