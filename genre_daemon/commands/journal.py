"""``history`` and ``undo``: what the daemon moved, read from its journal, and putting it back."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from genre_daemon.commands.common import settings_of as _settings
from genre_daemon.system.exits import count

if TYPE_CHECKING:
    from genre_daemon.filing.journal import HistoryEntry
    from genre_daemon.filing.undo import UndoResult

__all__ = ["add_parsers", "cmd_history", "cmd_undo"]


def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    """The newest ``--limit`` entries, newest first: a file's move is one, an album (all its
    tracks) one, the same entries ``undo --last N`` counts. ``--json``: their moves, one object
    each, with ``album_id`` (null for a file on its own)."""
    from genre_daemon.filing.journal import Journal

    settings = _settings(args)
    if not settings.journal_path.exists():
        return 0
    from genre_daemon.config.names import shown_name

    with Journal(settings.journal_path) as journal:
        entries = journal.history_entries(args.limit)
    for e in entries:
        if args.json:
            for m in e.moves:
                record = {"id": m.id, "time": m.time, "source": m.source, "destination": m.destination,
                          "kind": m.kind, "genre": m.genre,
                          "name": None if m.genre is None else shown_name(settings, m.genre),
                          "confidence": m.confidence, "scores": m.scores,
                          "model": m.model_version, "reason": m.reason, "undone": m.undone, "album_id": m.album_id}
                print(json.dumps(record, ensure_ascii=False), file=out)
        else:
            print(_history_line(e, lambda g: shown_name(settings, g)), file=out)
    return 0


def _history_line(e: HistoryEntry, named: Callable[[str], str] = str) -> str:
    """One entry of ``history``: id, time, kind, genre (``named``: by the user's name for it) and
    confidence (or why), from -> to."""
    from genre_daemon.filing.undo import counted

    m = e.moves[0]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.time))
    genre, confidence, reason, source, dest = m.genre, m.confidence, m.reason, m.source, m.destination
    what = ""
    if e.album is not None:
        a = e.album
        genre, confidence, reason, source, dest = a.genre, a.confidence, a.reason, a.source, a.destination
        what = f"  album {Path(a.source).name} ({counted(len(e.moves), 'track')}; album {a.id})"
    verdict = f"{named(genre)} {confidence:.2f}" if confidence is not None and genre else (reason or m.kind)
    flag = ""
    if e.undone:
        kept = sum(1 for t in e.moves if not t.undone)
        flag = " (undone" + (f"; {counted(kept, 'track')} stayed in the library)" if kept else ")")
    where = f"{source} (genre tag written in place)" if m.kind == "tag" else f"{source} -> {dest}"
    return f"{m.id:6d}  {when}  {m.kind:10s} {verdict}{what}  {where}{flag}"


def cmd_undo(args: argparse.Namespace, out: TextIO) -> int:
    """Undo one entry by move id (an album's track: the album), or the newest undoable entry,
    or the newest ``--last N`` undoable entries of ``history`` (an album is one).

    Entries that cannot be undone are reported one line each on stderr and skipped (never first
    in line for ever); exit status 0 when as many entries were undone as asked, 1 otherwise."""
    from genre_daemon.filing.journal import Journal
    from genre_daemon.filing.undo import Undoer, counted

    settings = _settings(args)
    if args.last is not None and args.last < 1:
        print(f"genre-daemon: error: undo --last: expected a number >= 1, got {args.last}", file=sys.stderr)
        return 2
    if not settings.journal_path.exists():
        print("nothing to undo: the journal is empty", file=sys.stderr)
        return 1
    with Journal(settings.journal_path) as journal:
        undoer = Undoer(journal, settings)
        if args.id is not None:
            move = journal.move(args.id)
            if move is None:
                print(f"no such move: {args.id}", file=sys.stderr)
                return 1
            result = undoer.undo(move)
            if result.error:
                print(f"cannot undo {result.error}", file=sys.stderr)
                return 1
            _print_undone(result, out)
            return 0
        wanted = args.last or 1
        done = skipped = 0
        for result in undoer.newest(wanted):
            if result.error:
                skipped += 1
                print(f"skipped {result.error}", file=sys.stderr)
            else:
                done += 1
                _print_undone(result, out)
    if done == wanted:
        return 0
    if done == 0 and skipped == 0:
        print("nothing to undo", file=sys.stderr)
    else:
        cannot = f"{counted(skipped, 'entry', 'entries')} cannot be undone (listed above)" if skipped else ""
        print(f"undid {done} of {counted(wanted, 'entry', 'entries')} asked for"
              + (f"; {cannot}" if cannot else "; no more entries to undo"), file=sys.stderr)
    return 1


def _print_undone(result: UndoResult, out: TextIO) -> None:
    """One line per undone move: where its file was taken from and where it is now."""
    m = result.move
    if m.kind == "tag":  # a genre tag put back where the file is: nothing moved
        print(f"move {m.id}: {result.note}", file=out)
        return
    if result.album:
        print(f"move {m.id}: {result.note}", file=out)
    elif result.taken_from is not None:
        print(f"{result.note}; its file was found at {result.taken_from}", file=sys.stderr)
    print(f"{result.taken_from or m.destination} -> {result.restored}", file=out)


def add_parsers(sub: Any, config_help: str) -> None:
    """The parsers of history and undo."""
    p = sub.add_parser(
        "history", help="what the daemon moved, newest first: one entry per file, one per album",
        description="What the daemon moved, newest first. Each file it moved is one entry; an album is one entry "
                    "(its track count and album id), the same entries `undo --last N` counts. An entry's id is a "
                    "move id for `undo ID`.",
        epilog="example: genre-daemon history --limit 5; genre-daemon history --json | jq -r .destination")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--json", action="store_true",
                   help="one JSON object per move (an album: one per track), each with its album_id (null for a file)")
    p.add_argument("--limit", type=count, default=None, metavar="N", help="the newest N entries (an album is one)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "undo", help="put moved files back where they came from",
        description="Put moved files back where they came from. Only what a move placed is moved (same inode or "
                    "same content, at its address or where you moved it in the library); an album's files go back "
                    "to its inbox folder, while files you added to it and tracks you moved elsewhere (corrections) "
                    "stay, and the output says which. An entry that cannot be undone is reported and skipped. Exit "
                    "status 0 when as many entries were undone as asked, 1 otherwise.",
        epilog="example: genre-daemon undo --last 3   (the three newest entries of `history`)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("id", nargs="?", type=int, help="an entry's id from `history`, or any move id of `history --json` "
                   "(an album's track undoes its album); default: the newest entry that can be undone")
    p.add_argument("--last", type=int, metavar="N", help="undo the newest N entries of `history` that can be undone "
                   "(an album, all its tracks, is one entry)")
    p.set_defaults(func=cmd_undo)
