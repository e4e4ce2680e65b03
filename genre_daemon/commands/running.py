"""``run``: the daemon in the foreground, or one pass over the inbox (``--once``), or the plan of
that pass (``--dry-run``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.commands.collection import stoppable
from genre_daemon.commands.common import settings_of

__all__ = ["add_parsers", "cmd_run"]


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    """The daemon until SIGTERM/SIGINT; with --once one pass over the inbox; with --dry-run
    (with or without --once) the plan of that pass (:mod:`genre_daemon.importer.once`)."""
    settings = settings_of(args)
    if args.dry_run or args.once:
        from genre_daemon.importer.once import dry_run_inbox, run_once

        return dry_run_inbox(settings, out) if args.dry_run else run_once(settings, out, stoppable=stoppable)
    from genre_daemon.daemon.service import Daemon

    return Daemon(settings).run()


def add_parsers(sub: Any, config_help: str) -> None:
    """The parser of run."""
    p = sub.add_parser(
        "run", help="the daemon, in the foreground: watch the inbox, sort into the library",
        description="Run the daemon in the foreground: watch the inbox and file each song and album into the "
                    "library, logging to stderr (each line timestamped) or to the journal under systemd. It runs "
                    "until SIGTERM or SIGINT (exit status 0); SIGHUP reloads the config. Exit status 2 when it "
                    "cannot start (a bad config, another daemon on the inbox). --once files what is in the inbox "
                    "now and exits without watching: 0, or 1 when some files were quarantined. --dry-run prints "
                    "where each file and album in the inbox would go, moves and records nothing, and exits after "
                    "that one pass (so --dry-run alone is --once --dry-run).",
        epilog="examples: genre-daemon run --config ~/gd.yaml --dry-run;  "
               "*/15 * * * * genre-daemon run --once   (a crontab line)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--once", action="store_true",
                   help="file what is in the inbox now, then exit; no watching (for cron, or to try a config)")
    p.add_argument("--dry-run", action="store_true",
                   help="print where each file and album in the inbox would go, and why; move nothing, record "
                        "nothing; exits after this one pass")
    p.set_defaults(func=cmd_run)
