"""Clip-split k-fold cross-validation of the training recipe, clean and MP3 test audio.

    python benchmarks/crossval.py [--data ../shared/data/gtzan] [--folds 5] [--split stratified|blocked]
                                  [--cache DIR] [--arch JSON] [--train JSON] [--measure DIR] [--json OUT]

Every clip is decoded once with its augmented copies (the MP3 round trip that ``train`` uses)
and embedded by the model's front end (cached in ``--cache``: a second run costs no decode and
no musicnn pass); each fold trains on the other clips, then scores its own clips as they are
and re-encoded as 128 kbps MP3. Splits are by clip, never by patch: ``stratified`` spreads each
genre's clips over the folds at random; ``blocked`` holds out contiguous clip numbers of each
genre together (consecutive GTZAN clips often share an artist, so fewer artists are shared
across the split: the honester figure). A 16 kHz test variant is not scored: the front end
hears 16 kHz audio, so it is the clean clip.

``--measure DIR`` then trains on every clip and classifies each file of DIR (one sub-folder per
genre) through the real pipeline: for a collection kept for measuring only (such as
emotify-dev), never trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genre_daemon.learning.dataset import build_clips, scan_labelled  # noqa: E402
from genre_daemon.learning.cache import FeatureCache  # noqa: E402
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd, load_embedder  # noqa: E402
from genre_daemon.model.files import Architecture, save_model  # noqa: E402
from genre_daemon.learning.workflows import cross_validate, evaluate_folder, train_clips  # noqa: E402
from genre_daemon.learning.fit import TrainConfig  # noqa: E402

AUGMENT = ["mp3"]  # what `train` uses by default
TEST_VARIANTS = {"clean": 0, "mp3_128k": 1}


def blocked_folds(names: list[str], labels: list[int], k: int) -> list[list[int]]:
    """Per genre, the clips in name order cut into ``k`` contiguous blocks; fold i takes block i."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for cls in sorted(set(labels)):
        idx = sorted((i for i, y in enumerate(labels) if y == cls), key=lambda i: names[i])
        for j, i in enumerate(idx):
            folds[j * k // len(idx)].append(i)
    return [sorted(f) for f in folds]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--split", choices=["stratified", "blocked"], default="stratified")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, help="feature cache folder (reused across runs)")
    ap.add_argument("--json", type=Path, help="write the full result here")
    ap.add_argument("--arch", type=json.loads, default={}, help='architecture overrides, JSON: \'{"hidden": 64}\'')
    ap.add_argument("--train", type=json.loads, default={}, help="TrainConfig overrides, JSON")
    ap.add_argument("--measure", type=Path, help="after CV, train on all clips and classify this folder")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: all cores)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR with one sub-folder per genre", file=sys.stderr)
        return 2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg = replace(TrainConfig(), seed=args.seed, threads=args.threads, **args.train)
    arch_overrides = dict(args.arch)
    inputs = tuple(arch_overrides.pop("inputs", DEFAULT_INPUTS))
    frontend = FrontEnd.from_directory(inputs)
    embedder = load_embedder(frontend, inputs)
    genres, files = scan_labelled(args.data)
    cache = FeatureCache(args.cache) if args.cache else None
    clips, failures = build_clips(files, genres, embedder, frontend, cfg.train_hop_frames, AUGMENT, cache=cache)
    if failures:
        print(f"{len(failures)} files failed to decode: {failures[:3]}", file=sys.stderr)
    if any(len(c.variants) != len(AUGMENT) + 1 for c in clips):
        print("ffmpeg missing: the mp3 variant could not be made", file=sys.stderr)
        return 2
    print(f"{len(clips)} clips, {len(genres)} genres, features in {time.perf_counter() - t0:.0f} s", flush=True)
    arch = Architecture(inputs=inputs, n_classes=len(genres), **arch_overrides)
    folds = None
    if args.split == "blocked":
        folds = blocked_folds([Path(c.name).name for c in clips], [c.label for c in clips], args.folds)
    results = cross_validate(clips, genres, arch, cfg, frontend, k=args.folds, test_variants=TEST_VARIANTS,
                             log=lambda s: print(s, flush=True), folds=folds)
    clean = results["clean"]["accuracy"]
    print(f"\n{args.folds}-fold {args.split} clip-split song-level accuracy on {len(clips)} clips:")
    for name, r in results.items():
        drop = "" if name == "clean" else f"  (drop {100 * (clean - r['accuracy']):.1f} points)"
        print(f"  {name:14s} {r['accuracy']:.4f}{drop}")
    out: dict[str, object] = {"config": asdict(cfg), "architecture": arch.to_dict(), "split": args.split,
                              "results": results}
    if args.measure:
        model, _ = train_clips(clips, genres, arch, cfg, frontend)
        with tempfile.TemporaryDirectory() as tmp:
            model.version = "crossval-all"
            save_model(model, Path(tmp) / "m")
            measured = evaluate_folder(args.measure, Path(tmp) / "m")
        print(f"  trained on all {len(clips)}, classifying {args.measure}: {measured['accuracy']:.4f} "
              f"on {measured['n']} files")
        out["measure"] = {"folder": str(args.measure), **measured}
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
