"""The ``genre-daemon`` command line: thin sub-commands over the library.

Heavy modules (torch, matplotlib) are imported inside the commands that need them, so
``--help`` and light commands start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from genre_daemon import __version__
from genre_daemon.resources import default_model_dir
from genre_daemon.system.exits import Parser, count, finish

if TYPE_CHECKING:
    from genre_daemon.filing.journal import HistoryEntry
    from genre_daemon.filing.undo import UndoResult

log = logging.getLogger("genre_daemon")
T = TypeVar("T")


def _progress(stream: TextIO) -> Any:
    from tqdm import tqdm

    def factory(total: int, desc: str) -> Any:
        return tqdm(total=total, desc=desc, file=stream, disable=None, leave=False, dynamic_ncols=True)

    return factory


def cmd_classify(args: argparse.Namespace, out: TextIO) -> int:
    """Each file (a directory: every audio file under it) through the chosen engine; results are
    printed as they finish (in the order given with the default, one local worker)."""
    from genre_daemon.tags import tags_dict

    failed = 0
    rows: list[tuple[str, str, str]] = []
    with _engine(args) as engine:
        for r in engine.classify(_audio_files(args.files)):
            if (result := r.prediction) is not None:
                if args.json:
                    print(json.dumps({**result.to_json(), "tags": tags_dict(result.path)}, ensure_ascii=False),
                          file=out, flush=True)
                else:
                    top = sorted(result.scores.items(), key=lambda kv: -kv[1])[1:3]
                    also = ", ".join(f"{g} {p:.2f}" for g, p in top)
                    rows.append((result.path, f"{result.genre} {result.confidence:.2f}", also))
            else:
                failed += 1
                if args.json:
                    print(json.dumps({"path": r.path, "error": r.error}, ensure_ascii=False), file=out, flush=True)
                else:
                    rows.append((r.path, "ERROR", str(r.error)))
    if not args.json:
        _print_table(("file", "genre", "runners-up / reason"), rows, out)
    return 1 if failed else 0


def _engine(args: argparse.Namespace) -> Any:
    """The engine of ``--engine`` / ``--workers`` / ``--ray-address`` (local: one worker, in this
    process, unless ``--workers`` says more; ray: one actor per cluster CPU by default)."""
    from genre_daemon.engines import open_engine

    workers = args.workers if args.workers is not None else (1 if args.engine == "local" else None)
    return open_engine(args.engine, args.model or default_model_dir(), workers=workers, ray_address=args.ray_address)


def _audio_files(args: Sequence[str]) -> list[str]:
    """The arguments, each directory replaced by the audio files under it (recursively, sorted;
    by extension, as the daemon's defaults); a file is kept whatever its name."""
    from genre_daemon.config import DEFAULT_EXTENSIONS

    files: list[str] = []
    for arg in args:
        if Path(arg).is_dir():
            files += sorted(str(p) for p in Path(arg).rglob("*")
                            if p.suffix[1:].lower() in DEFAULT_EXTENSIONS and p.is_file())
        else:
            files.append(arg)
    return files


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[-1] = 0
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.learning.dataset import check_augment
    from genre_daemon.learning.cache import FeatureCache
    from genre_daemon.model.files import Architecture
    from genre_daemon.learning.workflows import train_from_folder

    inputs = [i for i in args.inputs.split(",") if i] if args.inputs is not None else None
    augment = [a for a in args.augment.split(",") if a]
    overrides = {k: v for k, v in {
        "inputs": tuple(inputs) if inputs is not None else None, "hidden": args.hidden, "lstm_layers": args.layers,
        "bidirectional": args.bidirectional, "pooling": args.pooling, "skip_mean": args.skip_mean, "head": args.head,
        "dropout": args.dropout,
    }.items() if v is not None}
    try:  # refused before anything is decoded
        check_augment(augment)
        Architecture(**overrides)
    except ValueError as exc:
        print(f"genre-daemon: error: train: {exc}", file=sys.stderr)
        return 2
    result = train_from_folder(
        data_dir=args.data,
        out_dir=args.out,
        seed=args.seed,
        epochs=args.epochs,
        patches=args.patches,
        augment=augment,
        arch_overrides=overrides,
        val_fraction=args.val_fraction,
        threads=args.threads,
        progress=_progress(sys.stderr),
        cache=FeatureCache(args.cache) if args.cache else None,
        taggrams=args.taggrams,
        taggram_parts=[p for p in args.taggram_parts.split(",") if p] if args.taggram_parts else None,
        prior_only=[g for g in args.prior_only.split(",") if g],
        fusion_weight=args.fusion_weight if args.prior else None,
        train_overrides={"train_hop_frames": args.hop_frames} if args.hop_frames else None,
    )
    print(json.dumps(result, indent=2), file=out)
    return 0


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    """Accuracy on a folder of genre sub-folders; with ``--config`` they are read by the user's
    names (``genre_names``) and the model is the daemon's unless ``--model`` says otherwise."""
    from genre_daemon.config.names import NO_NAMES, HasNames
    from genre_daemon.learning.workflows import evaluate_folder

    names: HasNames = NO_NAMES
    model = args.model
    if args.config is not None:
        from genre_daemon.learning.versions import resolve_model_dir

        settings = _settings(args)
        names, model = settings, model or resolve_model_dir(settings)
        args.model = model  # the engine classifies with the model whose genres are read
    with _engine(args) as engine:
        result = evaluate_folder(args.data, model or default_model_dir(), progress=_progress(sys.stderr),
                                 classify_many=engine.classify_many, names=names)
    skipped = result.get("skipped_unknown_genres") or {}
    if skipped:
        print("genre-daemon: evaluate: skipped " + ", ".join(f"{f!r} ({n} files)" for f, n in skipped.items())
              + ": not a genre of the model" + ("" if args.config else " (your names for its genres: --config)"),
              file=sys.stderr)
    if args.plot:
        from genre_daemon.learning.metrics import plot_confusion

        plot_confusion(result, args.plot)
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print(f"accuracy {result['accuracy']:.4f} on {result['n']} files", file=out)
        rows = [(g, f"{m['precision']:.3f}", f"{m['recall']:.3f}", str(m["n"])) for g, m in result["per_genre"].items()]
        _print_table(("genre", "precision", "recall", "n"), rows, out)
        for path, reason in result.get("failures", []):
            print(f"failed: {path}: {reason}", file=out)
    return 0


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from genre_daemon.config import load_settings

    return load_settings(args.config)


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.daemon.service import Daemon

    return Daemon(_settings(args)).run()


def cmd_check_config(args: argparse.Namespace, out: TextIO) -> int:
    """Validate the config and print every resolved setting; a folder that does not exist is a
    warning on stderr (a typo would otherwise mean a new, empty folder), not a failure."""
    from genre_daemon.config import DEFAULT_FOLDERS, default_config_path, describe, load_settings, missing_folders

    settings = load_settings(args.path)
    print(f"{settings.source or args.path or default_config_path()}: OK", file=out)
    for key, path in missing_folders(settings):
        shown = str(path) if str(path).isprintable() else repr(str(path))
        then = ("the daemon will create it at start" if key in DEFAULT_FOLDERS
                else "no labels are read from it until it exists")
        print(f"warning: {key} {shown} does not exist; {then} \N{EM DASH} check the path", file=sys.stderr)
    print(describe(settings), file=out)
    for line in _template_example(settings.path_template, args.sample):
        print(line, file=out)
    return 0


SAMPLE_TAGS: dict[str, object] = {"artist": "Miles Davis", "albumartist": "Miles Davis", "album": "Kind of Blue",
                                  "title": "So What", "track": 1, "disc": 1, "year": 1959}


def _template_example(template: str | None, sample: str | None) -> list[str]:
    """Comment lines showing where path_template puts a sample file and a sample album: the
    file given with --sample (its own tags), else a made-up jazz track."""
    from genre_daemon.path_template import Template, album_values, file_values

    if sample:
        from genre_daemon.tags import read_tags

        path = Path(sample)
        tags: dict[str, object] = dict(read_tags(path).to_json())
        genre = str(tags.get("genre") or "jazz")
    else:
        path, tags, genre = Path("01 So What.flac"), SAMPLE_TAGS, "jazz"
    t = Template.parse(template)
    album_folder = path.parent.name if sample and path.parent.name else "Kind of Blue (1959)"
    loose = t.file_path(file_values(path, genre, tags), path.suffix)
    album = t.album_path(album_values(album_folder, genre, [tags]))
    return [
        f"# path_template {t.text!r}, for {path.name} ({genre}; tags: "
        + (", ".join(f"{k}={v}" for k, v in tags.items() if k != "genre") or "none") + "):",
        f"#   a loose file goes to  <library>/{loose}",
        f"#   its album folder to   <library>/{album}/  (the album's files keep their names and layout)",
    ]


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.filing.daemon_status import file_counts, read_status
    from genre_daemon.filing.journal import Journal

    settings = _settings(args)
    running = read_status(settings)
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


def cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    """Sort an existing collection into the library (the daemon's journal and mover), or print
    the plan with --dry-run."""
    from genre_daemon.importer.dry_run import dry_run
    from genre_daemon.importer.runner import Importer

    settings = _settings(args)
    engine = _collection_engine(args, settings)
    if args.dry_run:
        return dry_run(settings, args.dir, engine, out)
    importer = Importer(settings, args.dir, engine, progress=sys.stderr)
    c = _stoppable(importer.run, importer.request_stop)
    stopped = " (stopped: run it again to go on)" if importer.filer.stop.is_set() else ""
    print(f"imported {args.dir}: {c.placed} placed, {c.review} to review, {c.quarantined} quarantined{stopped}",
          file=out)
    return 130 if stopped else 0


def cmd_tag(args: argparse.Namespace, out: TextIO) -> int:
    """Write genre tags where the files are (moving nothing), or print them with --dry-run."""
    from genre_daemon.importer.tag_in_place import TagRun, dry_run, summary

    settings = _settings(args)
    engine = _collection_engine(args, settings)
    if args.dry_run:
        return dry_run(settings, args.dir, engine, out)
    run = TagRun(settings, args.dir, engine, progress=sys.stderr)
    try:
        c = _stoppable(run.run, run.request_stop)
    finally:
        for line in run.report:  # what was left untagged or failed, after the progress bar
            print(line, file=out)
    print(summary(c, run.source, run.stop.is_set()), file=out)
    return 130 if run.stop.is_set() else 1 if c.failed else 0


def _collection_engine(args: argparse.Namespace, settings: Any) -> Callable[[], Any]:
    """The engine of ``import`` and ``tag`` (--engine, --workers, --ray-address) with the model
    the daemon uses, opened when the run asks."""
    from genre_daemon.engines import open_engine
    from genre_daemon.learning.versions import resolve_model_dir

    model_dir = resolve_model_dir(settings)

    def engine() -> Any:
        return open_engine(args.engine, model_dir, workers=args.workers, ray_address=args.ray_address)

    return engine


def _stoppable(run: Callable[[], T], stop: Callable[[], None]) -> T:
    """``run()`` with SIGINT and SIGTERM calling ``stop`` (the run ends after the file in hand,
    its work recorded) instead of killing it."""
    import signal

    previous = {sig: signal.signal(sig, lambda *_: stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _import_progress(settings: Any) -> dict[str, Any] | None:
    from genre_daemon.importer.progress import read_progress

    return read_progress(settings)


def cmd_retrain(args: argparse.Namespace, out: TextIO) -> int:
    from genre_daemon.learning.retrain import run

    summary = run(_settings(args))
    print(json.dumps(summary, indent=2), file=out)
    return 0


def _duration(seconds: float) -> str:
    """Whole seconds as ``1d 2h 3m 4s``, from the largest non-zero unit down (``44s``, ``1m 0s``,
    ``0s``): the units below the largest one stay, so the numbers line up as time passes."""
    s = max(int(seconds), 0)
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{n}{unit}" for n, unit in parts)


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


def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine, --workers, --ray-address: where classification runs (docs/scale.md)."""
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: processes on this machine (default); ray: a Ray cluster (pip install 'genre-daemon[ray]')")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local: worker processes (default 1, in this process); ray: actors (default: the cluster's CPUs)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster's head, host:port (default: $RAY_ADDRESS, else a local Ray instance)")


def _add_collection_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine, --workers, --ray-address of the commands that go through a collection (import,
    tag): a process pool over every core by default."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="who classifies: local (a process pool over this machine's cores, default) or ray "
                        "(a Ray cluster: pip install 'genre-daemon[ray]')")
    p.add_argument("--workers", type=int, metavar="N", help="classifying processes or Ray actors (default: "
                   "the machine's cores for local, the cluster's CPUs for ray)")
    p.add_argument("--ray-address", metavar="ADDR", help="a running Ray cluster (host:port; default $RAY_ADDRESS, "
                   "else a local one is started)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="genre-daemon", description="Sort music into genre folders by its sound.")
    parser.add_argument("--version", action="version", version=f"genre-daemon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("classify", help="print the genre of audio files (moves nothing)")
    p.add_argument("--model", type=Path, help="model directory (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_engine_arguments(p)
    p.add_argument("files", nargs="+", metavar="FILE_OR_DIR", help="audio files; a directory: every audio file under it")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("train", help="train a model from a folder with one sub-folder per genre")
    p.add_argument("--data", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--patches", type=int, default=None, help="3-s patches per song at inference (default 8)")
    p.add_argument("--augment", default="mp3",
                   help="comma-separated audio augmentations: mp3, sr11k (empty: none)")
    p.add_argument("--inputs", default=None, help="comma-separated front-end outputs per patch, e.g. "
                   "msd_penultimate,msd_tags (also mtt_*, *_pooled)")
    p.add_argument("--hidden", type=int, default=None, help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=None, help="LSTM layers")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--pooling", choices=["attention", "mean", "last"], default=None, help="over the LSTM outputs")
    p.add_argument("--skip-mean", action=argparse.BooleanOptionalAction, default=None,
                   help="also feed the mean input vector to the head")
    p.add_argument("--head", choices=["linear", "mlp"], default=None)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--val-fraction", type=float, default=None, help="held-out clips for early stopping")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="feature cache folder: a second run on the same files skips decoding and the front end")
    p.add_argument("--taggrams", type=Path, default=None, metavar="DIR",
                   help="also train on the feature-only clips of this taggram folder (needs --inputs msd_tags)")
    p.add_argument("--taggram-parts", default=None, help="only these parts of the taggrams' split, e.g. train")
    p.add_argument("--hop-frames", type=int, default=None,
                   help="embed training audio every this many log-mel frames (63: a patch a second, as taggrams)")
    p.add_argument("--prior", action=argparse.BooleanOptionalAction, default=True,
                   help="fuse AudioSet's genre evidence (EfficientAT mn04) with the LSTM (default: on)")
    p.add_argument("--fusion-weight", type=float, default=1.5, help="weight of AudioSet's evidence on the LSTM")
    p.add_argument("--prior-only", default="electronic",
                   help="comma-separated genres with no examples, learned from AudioSet alone (default: electronic)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy of a model on a folder with one sub-folder per genre")
    p.add_argument("--data", type=Path, required=True, metavar="DIR")
    p.add_argument("--model", type=Path, help="model directory (default: the shipped model)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="draw the confusion matrix to this PNG file")
    p.add_argument("--config", type=Path, help="read the sub-folders by your genre_names, and use the daemon's "
                                               "model unless --model says otherwise")
    _add_engine_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    config_help = "config file (default: $GENRE_DAEMON_CONFIG, then ~/.config/genre-daemon/config.yaml)"
    p = sub.add_parser("run", help="the daemon, in the foreground: watch the inbox, sort into the library")
    p.add_argument("--config", type=Path, help=config_help)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check-config", help="validate a config file and show the resolved settings",
        description="Validate a config file and print every resolved setting. Exit status 0 when it can be used "
                    "(folders that do not exist yet are warned about on stderr: the daemon would create them), "
                    "2 when it cannot (each problem on stderr, naming the file and the key).")
    p.add_argument("path", nargs="?", type=Path, help=config_help)
    p.add_argument("--sample", metavar="AUDIO", help="show where path_template puts this file (its own tags) "
                   "and its folder as an album; default: a made-up jazz track")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("status", help="counts per state, queue depth, model, the running daemon's pid and uptime")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "history", help="what the daemon moved, newest first: one entry per file, one per album",
        description="What the daemon moved, newest first. Each file it moved is one entry; an album is one entry "
                    "(its track count and album id), the same entries `undo --last N` counts. An entry's id is a "
                    "move id for `undo ID`.")
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
                    "status 0 when as many entries were undone as asked, 1 otherwise.")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("id", nargs="?", type=int, help="an entry's id from `history`, or any move id of `history --json` "
                   "(an album's track undoes its album); default: the newest entry that can be undone")
    p.add_argument("--last", type=int, metavar="N", help="undo the newest N entries of `history` that can be undone "
                   "(an album, all its tracks, is one entry)")
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser(
        "import", help="sort an existing collection into the library (resumable; --dry-run prints the plan)",
        description="Sort every audio file under DIR into the library through the daemon's journal and careful "
                    "mover: albums filed whole, loose files by path_template, every move in history and undoable. "
                    "A progress bar shows files done, rate and time left (also in `status`). Killed or stopped, "
                    "run it again: it goes on where it stopped and never classifies what was placed. "
                    "--dry-run prints where each album and file would go and changes nothing.")
    p.add_argument("dir", type=Path, metavar="DIR", help="the folder of music to sort (it is emptied into the library)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--dry-run", action="store_true", help="print the plan; move nothing, record nothing")
    _add_collection_engine_arguments(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "tag", help="write genre tags where the files are, moving nothing (resumable; --dry-run prints them)",
        description="Classify every audio file under DIR (albums get one genre, as the daemon files them) and "
                    "write the genre into each file's genre tag where it is; nothing moves. Every tag written is "
                    "in `history` and `undo` puts the old one back. Files below min_confidence and albums too "
                    "mixed are left untagged and listed. Killed or stopped, run it again: it goes on where it "
                    "stopped and never classifies what it tagged. Exit status 0 when every file was judged, 1 when "
                    "some failed.")
    p.add_argument("dir", type=Path, metavar="DIR", help="the folder of music to tag (the library, or any folder "
                   "of yours; not the inbox)")
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--dry-run", action="store_true", help="print what would be written; change nothing")
    _add_collection_engine_arguments(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("retrain", help="retrain now from your labels, with the same gate as the automatic retrain")
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
