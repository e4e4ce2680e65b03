"""``classify``, ``train`` and ``evaluate``: audio files and model folders, no daemon needed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.commands.common import FAILED, OK, USAGE, add_engine_arguments, print_table
from genre_daemon.resources import default_model_dir

__all__ = ["add_parsers", "cmd_classify", "cmd_evaluate", "cmd_train", "progress"]

MODEL_HELP = "model directory (default: the shipped model)"


def progress(stream: TextIO) -> Any:
    """A tqdm bar factory on ``stream``, shown only when it is a terminal. Log lines never break
    the bar: the log handler clears it around each line (:mod:`genre_daemon.system.logs`)."""
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
    with engine_of(args) as engine:
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
        print_table(("file", "genre", "runners-up / reason"), rows, out)
    return FAILED if failed else OK


def engine_of(args: argparse.Namespace) -> Any:
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


def cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    """Train a model folder from a folder of genre sub-folders; prints the training summary."""
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
        return USAGE
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
        progress=progress(sys.stderr),
        cache=FeatureCache(args.cache) if args.cache else None,
        taggrams=args.taggrams,
        taggram_parts=[p for p in args.taggram_parts.split(",") if p] if args.taggram_parts else None,
        prior_only=[g for g in args.prior_only.split(",") if g],
        fusion_weight=args.fusion_weight if args.prior else None,
        train_overrides={"train_hop_frames": args.hop_frames} if args.hop_frames else None,
    )
    print(json.dumps(result, indent=2), file=out)
    return OK


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    """Accuracy on a folder of genre sub-folders; with ``--config`` they are read by the user's
    names (``genre_names``) and the model is the daemon's unless ``--model`` says otherwise.

    Exit status: 0 with a score (files that failed are listed, and in ``failures``), 1 when
    every file failed (no score), 2 when the folder holds nothing to evaluate (said by
    :func:`~genre_daemon.learning.dataset.scan_labelled` and ``NoGenreFolders``)."""
    from genre_daemon.config.names import NO_NAMES, HasNames
    from genre_daemon.learning.workflows import evaluate_folder

    names: HasNames = NO_NAMES
    model = args.model
    if args.config is not None:
        from genre_daemon.commands.common import settings_of
        from genre_daemon.learning.versions import resolve_model_dir

        settings = settings_of(args)
        names, model = settings, model or resolve_model_dir(settings)
        args.model = model  # the engine classifies with the model whose genres are read
    with engine_of(args) as engine:
        result = evaluate_folder(args.data, model or default_model_dir(), progress=progress(sys.stderr),
                                 classify_many=engine.classify_many, names=names)
    skipped = result.get("skipped_unknown_genres") or {}
    if skipped:
        print("genre-daemon: evaluate: skipped " + ", ".join(f"{f!r} ({n} files)" for f, n in skipped.items())
              + ": not a genre of the model" + ("" if args.config else " (your names for its genres: --config)"),
              file=sys.stderr)
    failures = result.get("failures", [])
    if not result["n"]:
        for path, reason in failures:
            print(f"failed: {path}: {reason}", file=sys.stderr)
        print(f"genre-daemon: error: evaluate: {args.data}: evaluated nothing: "
              f"{'every one of its files failed (listed above)' if failures else 'no audio file in a genre folder'}",
              file=sys.stderr)
        return FAILED if failures else USAGE
    if args.plot:
        from genre_daemon.learning.metrics import plot_confusion

        plot_confusion(result, args.plot)
        print(f"genre-daemon: evaluate: wrote the confusion matrix to {os.path.abspath(args.plot)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print(f"accuracy {result['accuracy']:.4f} on {result['n']} files", file=out)
        rows = [(g, f"{m['precision']:.3f}", f"{m['recall']:.3f}", str(m["n"])) for g, m in result["per_genre"].items()]
        print_table(("genre", "precision", "recall", "n"), rows, out)
        for path, reason in failures:
            print(f"failed: {path}: {reason}", file=out)
    return OK


def add_parsers(sub: Any, config_help: str) -> None:
    """The parsers of classify, train and evaluate."""
    p = sub.add_parser(
        "classify", help="print the genre of audio files (moves nothing)",
        description="Classify audio files and print each one's genre, confidence and runners-up; nothing is "
                    "moved or recorded. Exit status 0 when every file was classified, 1 when some failed (each "
                    "one's reason is printed).",
        epilog="example: genre-daemon classify --json ~/Music/Inbox/song.mp3 | jq .genre")
    p.add_argument("--model", type=Path, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per line: path, genre, confidence, scores, "
                   "model, tags (or path and error)")
    add_engine_arguments(p, local_workers="1, in this process")
    p.add_argument("files", nargs="+", metavar="FILE_OR_DIR", help="audio files; a directory: every audio file under it")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "train", help="train a model from a folder with one sub-folder per genre",
        description="Train a model on DIR's genre sub-folders (each audio file under genre/ is an example of it) "
                    "and write the model folder to --out; prints the training summary as JSON. The shipped model "
                    "was made this way (docs/model.md).",
        epilog="example: genre-daemon train --data ~/gtzan --out models/mine --seed 1 --cache ~/.cache/gd-features")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="the training data: one sub-folder per genre")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the new model folder is written")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed of splits, augmentation and "
                   "initial weights (default 0): the same seed gives the same model")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="training epochs (default: the "
                   "training recipe's, with early stopping on the held-out clips)")
    p.add_argument("--patches", type=int, default=None, metavar="N",
                   help="3-s patches per song at inference (default 8)")
    p.add_argument("--augment", default="mp3", metavar="LIST",
                   help="comma-separated audio augmentations: mp3, sr11k (empty: none; default mp3)")
    p.add_argument("--inputs", default=None, metavar="LIST", help="comma-separated front-end outputs per patch, "
                   "e.g. msd_penultimate,msd_tags (also mtt_*, *_pooled)")
    p.add_argument("--hidden", type=int, default=None, metavar="N", help="LSTM hidden size")
    p.add_argument("--layers", type=int, default=None, metavar="N", help="LSTM layers")
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="a bidirectional LSTM (default: the recipe's)")
    p.add_argument("--pooling", choices=["attention", "mean", "last"], default=None, help="over the LSTM outputs")
    p.add_argument("--skip-mean", action=argparse.BooleanOptionalAction, default=None,
                   help="also feed the mean input vector to the head")
    p.add_argument("--head", choices=["linear", "mlp"], default=None,
                   help="the classifier on the pooled LSTM output: one linear layer, or a small MLP")
    p.add_argument("--dropout", type=float, default=None, metavar="P", help="dropout before the head (0 to 1)")
    p.add_argument("--val-fraction", type=float, default=None, metavar="F", help="held-out clips for early stopping")
    p.add_argument("--threads", type=int, default=0, metavar="N", help="torch threads (0: all cores)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="feature cache folder: a second run on the same files skips decoding and the front end")
    p.add_argument("--taggrams", type=Path, default=None, metavar="DIR",
                   help="also train on the feature-only clips of this taggram folder (needs --inputs msd_tags)")
    p.add_argument("--taggram-parts", default=None, metavar="LIST",
                   help="only these parts of the taggrams' split, e.g. train")
    p.add_argument("--hop-frames", type=int, default=None, metavar="N",
                   help="embed training audio every this many log-mel frames (63: a patch a second, as taggrams)")
    p.add_argument("--prior", action=argparse.BooleanOptionalAction, default=True,
                   help="fuse AudioSet's genre evidence (EfficientAT mn04) with the LSTM (default: on)")
    p.add_argument("--fusion-weight", type=float, default=1.5, metavar="W",
                   help="weight of AudioSet's evidence on the LSTM (default 1.5)")
    p.add_argument("--prior-only", default="electronic", metavar="LIST",
                   help="comma-separated genres with no examples, learned from AudioSet alone (default: electronic)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="accuracy of a model on a folder with one sub-folder per genre",
        description="Classify every audio file under DIR's genre sub-folders and score the model by folder: "
                    "accuracy, precision and recall per genre, the confusion matrix. Exit status 0 with a score "
                    "(files that could not be decoded are listed), 1 when every file failed (no score), 2 when "
                    "DIR holds nothing to evaluate (no genre sub-folder of the model with audio in it).",
        epilog="example: genre-daemon evaluate --data ~/gtzan-test --json --plot confusion.png")
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="the labelled files: one sub-folder per genre, named as the model's genres (or yours: --config)")
    p.add_argument("--model", type=Path, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object: accuracy, n, "
                   "per_genre, confusion, genres (and failures, when some files failed)")
    p.add_argument("--plot", metavar="PNG", help="draw the confusion matrix to this PNG file (its path is said on "
                   "stderr)")
    p.add_argument("--config", type=Path, help="read the sub-folders by your genre_names, and use the daemon's "
                                               "model unless --model says otherwise")
    add_engine_arguments(p, local_workers="1, in this process")
    p.set_defaults(func=cmd_evaluate)
