"""What the second front end (EfficientAT mn04_as) costs per 30 s of audio on one core, next to musicnn's.

    python benchmarks/bench_efficientat.py [--data ../shared/data] [--clips 10] [--rounds 5]
                                           [--out benchmarks/results-efficientat.txt]

Both front ends run in this one process, single-threaded (``torch.set_num_threads(1)``, as the
daemon's classifier runs), on the same real 30 s GTZAN clips (one or more per genre), decoded
once at each front end's rate before timing:

* EfficientAT: :meth:`EfficientAT.windows` with three 10 s windows (the whole 30 s clip): log-mel
  and network, the logits (527) and embeddings (384) of each window;
* musicnn: the shipped model's front end (:func:`genre_daemon.model.frontend.load_embedder` with
  the default inputs, MSD penultimate and tags) over the clip's ten 3 s patches: log-mel and network.

The runs alternate (EfficientAT, musicnn, EfficientAT, ...) so that a busy machine slows both
alike; each clip's time is its median over ``--rounds`` rounds, the figure the median over clips.
Decoding is timed too, apart (at 32 kHz and at 16 kHz). The ratio is EfficientAT / musicnn.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def clips(data: Path, n: int) -> list[Path]:
    """``n`` GTZAN clips, taken round-robin over the genres (first files of each)."""
    per = {g: sorted((data / "gtzan" / g).glob("*.flac")) for g in GENRES}
    out: list[Path] = []
    i = 0
    while len(out) < n and any(len(v) > i for v in per.values()):
        out += [per[g][i] for g in GENRES if len(per[g]) > i][: n - len(out)]
        i += 1
    return out


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-efficientat.txt")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from genre_daemon.audio import decode
    from genre_daemon.model.efficientat.tagger import EfficientAT
    from genre_daemon.model.frontend import DEFAULT_INPUTS, PATCH_FRAMES, FrontEnd, load_embedder

    torch.set_num_threads(1)
    paths = clips(args.data, args.clips)
    if not paths:
        print(f"no GTZAN clips under {args.data / 'gtzan'}", file=sys.stderr)
        return 1
    eat = EfficientAT.load()
    mus = load_embedder(FrontEnd.from_directory(DEFAULT_INPUTS), DEFAULT_INPUTS)

    rows = []
    for p in paths:
        t32, y32 = timed(decode.load, p, sr=32000)
        t16, y16 = timed(decode.load, p, sr=16000)
        seconds = len(y16) / 16000
        eat.windows(y32, 3)  # warm: first-call allocations are not the steady cost
        mus.audio_vectors(y16, PATCH_FRAMES)
        te, tm = [], []
        for _ in range(args.rounds):
            te.append(timed(eat.windows, y32, 3)[0])
            tm.append(timed(mus.audio_vectors, y16, PATCH_FRAMES)[0])
        windows = len(eat.windows(y32, 3).starts)
        patches = len(mus.audio_vectors(y16, PATCH_FRAMES))
        scale = 30.0 / seconds
        rows.append((p.stem, seconds, windows, patches, statistics.median(te) * scale,
                     statistics.median(tm) * scale, t32 * scale, t16 * scale))
        print(f"{p.stem:16s} {seconds:5.1f} s  efficientat {rows[-1][4]:.3f} s ({windows} windows)  "
              f"musicnn {rows[-1][5]:.3f} s ({patches} patches)", flush=True)

    med = lambda i: statistics.median(r[i] for r in rows)  # noqa: E731
    e, m = med(4), med(5)
    lines = [
        "bench_efficientat.py: seconds per 30 s of audio, one core (torch.set_num_threads(1)), same process, same clips",
        f"machine: {platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, numpy {np.__version__}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (the machine is shared: absolute figures are "
        "upper bounds, the ratio is the steadier number)",
        f"{len(rows)} GTZAN clips (30 s), {args.rounds} alternating rounds each; per clip the median, below the median over clips",
        "",
        f"{'clip':16s} {'sec':>5s} {'EfficientAT':>12s} {'musicnn':>9s} {'ratio':>6s}",
        *(f"{r[0]:16s} {r[1]:5.1f} {r[4]:12.3f} {r[5]:9.3f} {r[4] / r[5]:6.2f}" for r in rows),
        "",
        f"EfficientAT mn04_as, 3 windows of 10 s (log-mel + network): {e:.3f} s per 30 s",
        f"musicnn MSD (shipped model's inputs), 10 patches of 3 s (log-mel + network): {m:.3f} s per 30 s",
        f"ratio EfficientAT / musicnn: {e / m:.2f}",
        f"decoding apart: {med(6):.3f} s per 30 s at 32 kHz, {med(7):.3f} s at 16 kHz",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
