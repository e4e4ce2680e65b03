"""Clip-split k-fold cross-validation of the training recipe, clean and degraded test audio.

    python benchmarks/crossval.py [--data ../shared/data/gtzan] [--folds 5] [--seed 0] [--json OUT]

Every clip is decoded once with its augmented copies (the same ``sr16k``, ``sr11k`` and ``mp3``
round trips that ``train`` uses); each fold trains on the other clips, then scores its own clips
three ways: as they are, re-encoded as 128 kbps MP3, and resampled to 16 kHz. Splits are by clip,
never by window. Prints song-level accuracy per fold and overall, and the drop for each
degradation in points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genre_daemon.dataset import build_clips, scan_labelled  # noqa: E402
from genre_daemon.features import FeatureParams  # noqa: E402
from genre_daemon.model import Architecture  # noqa: E402
from genre_daemon.trainer import cross_validate  # noqa: E402
from genre_daemon.training import TrainConfig  # noqa: E402

AUGMENT = ["sr16k", "mp3"]  # what `train` uses by default
TEST_VARIANTS = {"clean": 0, "mp3_128k": 2, "resampled_16k": 1}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the full result here")
    ap.add_argument("--arch", type=json.loads, default={}, help='architecture overrides, JSON: \'{"hidden": 64}\'')
    ap.add_argument("--train", type=json.loads, default={}, help="TrainConfig overrides, JSON")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR with one sub-folder per genre", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    params = FeatureParams()
    cfg = replace(TrainConfig(), seed=args.seed, threads=args.threads, **args.train)
    genres, files = scan_labelled(args.data)
    min_seconds = (cfg.window_frames - 1) * params.hop_length / params.sample_rate
    clips, failures = build_clips(files, genres, params, AUGMENT, min_seconds, cfg.noise_floor_db)
    if failures:
        print(f"{len(failures)} files failed to decode: {failures[:3]}", file=sys.stderr)
    if any(len(c.variants) != len(AUGMENT) + 1 for c in clips):
        print("ffmpeg missing: the mp3 variant could not be made", file=sys.stderr)
        return 2
    print(f"{len(clips)} clips, {len(genres)} genres, features in {time.perf_counter() - t0:.0f} s", flush=True)
    arch = Architecture(n_features=params.n_features, n_classes=len(genres), **args.arch)
    results = cross_validate(clips, genres, arch, cfg, params, k=args.folds, test_variants=TEST_VARIANTS,
                             log=lambda s: print(s, flush=True))
    clean = results["clean"]["accuracy"]
    print(f"\n{args.folds}-fold clip-split song-level accuracy on {len(clips)} clips:")
    for name, r in results.items():
        drop = "" if name == "clean" else f"  (drop {100 * (clean - r['accuracy']):.1f} points)"
        print(f"  {name:14s} {r['accuracy']:.4f}{drop}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"config": asdict(cfg), "architecture": asdict(arch), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
