"""The ``genre-daemon`` command line: one parser, thin sub-commands over the library.

The commands live in :mod:`genre_daemon.commands` by area; ``status``, ``retrain`` and ``web``
stay here. Heavy modules (torch, matplotlib) are imported inside the commands that need them, so
``--help``, ``completion`` and light commands start fast. Every command ends the same way
(:func:`main`): the exit statuses of docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from genre_daemon import __version__
from genre_daemon.commands import collection, completion, config_check, journal, models, running
from genre_daemon.commands.common import CONFIG_HELP, NOT_RUNNING, OK
from genre_daemon.commands.common import duration as _duration
from genre_daemon.commands.common import settings_of as _settings
from genre_daemon.commands.labels import label_lines, waiting_genres
from genre_daemon.system.exits import Parser, finish

__all__ = ["build_parser", "main"]


def cmd_status_checked(args: argparse.Namespace, out: TextIO) -> int:
    """``status``, then its exit status: 3 when no daemon runs for this config (as `systemctl
    status` and LSB scripts say), after printing all it knows (text and ``--json`` alike)."""
    code = cmd_status(args, out)
    return NOT_RUNNING if code == OK and not args.daemon_running else code


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.filing.daemon_status import file_counts, read_status
    from genre_daemon.filing.journal import Journal

    settings = _settings(args)
    running = read_status(settings)
    args.daemon_running = running is not None  # cmd_status_checked: exit status 3 when not
    counts: dict[str, int] = {}
    if settings.journal_path.exists():
        with Journal(settings.journal_path) as journal:
            counts = file_counts(journal)
    result = {
        "running": running is not None,
        "pid": running["pid"] if running else None,
        "uptime": round(time.time() - running["started"], 1) if running else None,
        "queue_depth": running["queue_depth"] if running else 0,
        "model_version": running["model_version"] if running else None,
        "last_file": running.get("last_file") if running else None,
        "left_alone": running.get("left_alone") if running else None,
        "counts": counts,
        "new_labels": running.get("new_labels") if running else None,
        "waiting_genres": waiting_genres(settings),
        "retrain": _retrain_progress(settings),
        "import": _import_progress(settings),
    }
    from genre_daemon.web.signin import web_status

    web, web_fields = web_status(settings)  # a fresh one-time sign-in link while the page is served
    result.update(web_fields)
    if args.json:
        print(json.dumps(result), file=out)
        return 0
    if running:
        print(f"running: pid {result['pid']}, up {_duration(result['uptime'])}, model {result['model_version']}, "
              f"queue {result['queue_depth']}", file=out)
    else:
        print("not running", file=out)
    print("  ".join(f"{k} {v}" for k, v in counts.items()) or "journal empty", file=out)
    if counts.get("held"):
        print(f"held: {counts['held']} undone by you, waiting in the inbox; left alone until they change", file=out)
    if result["left_alone"]:
        print(f"left alone: {result['left_alone']} (see the log)", file=out)
    for line in label_lines(settings, result["new_labels"], result["waiting_genres"]):
        print(line, file=out)
    r = result["retrain"]
    if r:
        step = f"{r.get('step', '')} {r.get('done', '')}/{r.get('total', '')}" if r.get("state") == "running" else r.get("reason", "")
        print(f"retrain: {r.get('state')}: {step}".rstrip(), file=out)
    if (i := result["import"]) is not None and i.get("state") == "stopped":
        print(f"import: {i['source']}: stopped; {i['waiting']} files wait for `genre-daemon import {i['source']}` "
              "(the daemon leaves them alone)", file=out)
    elif i is not None:
        eta = "" if i.get("eta_seconds") is None else f", {_duration(i['eta_seconds'])} left"
        print(f"import: {i['source']}: {i['done']}/{i['total']} files, {i['rate']:.2f} files/s{eta}", file=out)
    if web is not None:
        print(web, file=out)
    return 0


def cmd_web(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the review page alone, against the state files of a running (or stopped) daemon."""
    from genre_daemon.web import serve

    return serve(_settings(args))


def _retrain_progress(settings: Any) -> dict[str, Any] | None:
    from genre_daemon.learning.retrain import read_progress

    return read_progress(settings)


def cmd_retrain(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.learning.retrain import run

    summary = run(_settings(args))
    print(json.dumps(summary, indent=2), file=out)
    return 0


def _import_progress(settings: Any) -> dict[str, Any] | None:
    from genre_daemon.importer.progress import read_progress

    return read_progress(settings)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: the one ``main`` runs and ``completion`` walks."""
    parser = Parser(prog="genre-daemon", description="Sort music into genre folders by its sound.",
                    epilog="Exit status: 0 success, 1 some files failed, 2 bad usage or config, 3 from status when "
                           "the daemon is not running (docs/cli.md). `genre-daemon COMMAND --help` tells more.")
    parser.add_argument("--version", action="version", version=f"genre-daemon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = CONFIG_HELP
    models.add_parsers(sub, config_help)
    running.add_parsers(sub, config_help)
    config_check.add_parsers(sub, config_help)

    p = sub.add_parser(
        "status", help="counts per state, queue depth, model, the running daemon's pid and uptime",
        description="What the daemon of this config is doing: whether it runs (pid, uptime, model, queue), files "
                    "per journal state, new labels and the genres waiting for examples, a retrain's or an "
                    "import's progress. Exit status 0 when the daemon runs, 3 when it does not (everything else "
                    "is still printed), 2 for a config that does not load.",
        epilog="example: genre-daemon status --json | jq .counts;  genre-daemon status >/dev/null || echo stopped")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--json", action="store_true", help="one JSON object: running, pid, uptime, queue_depth, "
                   "model_version, counts, new_labels, waiting_genres, retrain, import, ...")
    p.set_defaults(func=cmd_status_checked)
    journal.add_parsers(sub, config_help)
    collection.add_parsers(sub, config_help)

    p = sub.add_parser("retrain", help="retrain now from your labels, with the same gate as the automatic retrain",
                       description="Retrain now from your labels (files you put or moved in the library's genre "
                                   "folders, and retrain.labelled_dirs), with the same held-out gate as the "
                                   "automatic retrain: the candidate is promoted only if it is not worse. Prints "
                                   "the summary as JSON.")
    p.add_argument("--config", type=Path, help=config_help)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser(
        "web", help="serve the review page alone (the daemon serves it itself with web.enabled: true)",
        description="Serve the review page (listen, file songs from review, correct and undo placements, status, "
                    "models) on web.listen, against the journal and status files of the daemon of this config. "
                    "Open the one-time sign-in link it prints (`genre-daemon status` prints a new one): it works "
                    "once, for 10 minutes, and never carries the token of state_dir/web-token (API clients send "
                    "that as Authorization: Bearer).")
    p.add_argument("--config", type=Path, help=config_help)
    p.set_defaults(func=cmd_web)

    from genre_daemon.system.units import add_service_parser
    from genre_daemon.learning.model_command import add_model_parser

    add_service_parser(sub, config_help)
    add_model_parser(sub, config_help)
    completion.add_parsers(sub, config_help, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; how it ends is the same for every command (:mod:`genre_daemon.system.exits`):
    a bad input is one line on stderr and a non-zero status (2 for bad usage), a closed stdout
    (``status | head -1``) ends quietly with 141."""
    args = build_parser().parse_args(argv)
    from genre_daemon.system.logs import setup_logging

    setup_logging(args.verbose)
    return finish(lambda: args.func(args, sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
