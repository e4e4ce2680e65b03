"""Speed and memory of ``classify`` against references measured in the same run.

    python benchmarks/bench_classify.py [--data ../shared/data/gtzan] [--files 6] [--work DIR]

1. Steady-state cost per file on real 4-minute MP3s (eight shared clips of one genre joined,
   44.1 kHz stereo, 192 kbps, as a downloaded song would be): genre-daemon's whole ``classify``
   (plan, decode in one opening of the file the 16 kHz spans of musicnn's patches and, for a
   model with AudioSet's prior, the 32 kHz 10 s windows of the tagger; log-mels, musicnn,
   EfficientAT, the LSTM head, the fusion) against the report's pipeline doing only feature
   extraction (``librosa.load`` then ``mfcc``, ``spectral_centroid``, ``chroma_stft``,
   ``spectral_contrast``). Both are warmed up first (librosa's numba JIT is not counted) and
   run on one core (torch and BLAS at one thread, as ``classify`` runs), alternating file by
   file so that a change in the machine's load hits both alike; wall and CPU medians.
   Target: >= 4x faster.
2. Cold start: one-file ``genre-daemon classify`` in a new process against a bare
   ``python -c "import torch"`` (median of several runs each, alternating).
3. Memory: peak resident size of ``genre-daemon classify`` on a 60-minute file (MP3 and WAV).

Prints each figure and its ratio to the reference (``--out FILE`` also writes them there), and
the machine's load (the ratios hold under load, the absolute figures do not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=600)


def make_long_mp3s(data: Path, work: Path, count: int) -> list[Path]:
    """``count`` 4-minute 44.1 kHz stereo MP3s, each eight clips of one genre joined."""
    out = []
    genres = sorted(p for p in data.iterdir() if p.is_dir())
    for i in range(count):
        genre = genres[i % len(genres)]
        clips = sorted(genre.glob("*.flac"))[(i // len(genres)) * 8:][:8]
        target = work / f"long_{i:02d}_{genre.name}.mp3"
        if not target.exists():
            listing = work / f"list_{i}.txt"
            listing.write_text("".join(f"file '{c.resolve()}'\n" for c in clips))
            _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-ar", "44100", "-ac", "2",
                    "-b:a", "192k", str(target))
        out.append(target)
    return out


def reference_features(path: Path) -> None:
    """The report's pipeline: load, then four librosa feature calls, each with its own STFT."""
    import librosa

    y, sr = librosa.load(str(path))
    librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, hop_length=512)
    librosa.feature.spectral_centroid(y=y, sr=sr, hop_length=512)
    librosa.feature.chroma_stft(y=y, sr=sr, hop_length=512)
    librosa.feature.spectral_contrast(y=y, sr=sr, hop_length=512)


def per_file_seconds(fns: dict[str, Callable[[Path], object]], files: list[Path]) -> dict[str, tuple[float, float]]:
    """Median (wall s, CPU s) per file of each of ``fns``, each warmed up on the first file, then
    all run on every file in turn (the order alternating), so a load change hits them alike."""
    for fn in fns.values():
        fn(files[0])  # warm-up: JIT, caches, lazy imports
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for i, f in enumerate(files):
        for name in (list(fns) if i % 2 == 0 else list(reversed(fns))):
            t0, c0 = time.perf_counter(), time.process_time()
            fns[name](f)
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("genre-daemon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]


def wall(cmds: list[list[str]], runs: int) -> list[float]:
    """Median wall time of each command, run ``runs`` times in turn."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def machine_load() -> str:
    """The machine's load, for the record (other engineers' jobs may share it)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} cores"


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident set of one child process, from wait4's rusage (Linux keeps the pre-exec
    peak, so call this while the benchmark process itself is still small)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_maxrss / 1024  # KiB on Linux


class _Tee:
    """stdout that is also appended, line by line, to a results file."""

    def __init__(self, stream, path: Path) -> None:  # type: ignore[no-untyped-def]
        self.stream, self.file = stream, open(path, "w", encoding="utf-8")

    def write(self, text: str) -> int:
        self.file.write(text)
        self.file.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5, help="cold-start runs of each command")
    ap.add_argument("--work", type=Path, default=None, help="keep generated audio here")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: speed,cold,memory")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args()
    if args.out is not None:
        sys.stdout = _Tee(sys.stdout, args.out)
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    if not shutil.which("ffmpeg"):
        print("ffmpeg is needed to make the MP3s", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-daemon-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = make_long_mp3s(args.data, work, args.files)

    from genre_daemon.resources import default_model_dir  # light: no torch in this process yet

    model_dir = default_model_dir()
    # Memory first, while this process is small: a child's peak RSS counts the parent's pages
    # it was forked from, so measuring after torch is imported here would report our size.
    if "memory" not in skip:
        hour_mp3 = work / "hour.mp3"
        hour_wav = work / "hour.wav"
        if not hour_mp3.exists():
            listing = work / "hour.txt"
            listing.write_text("".join(f"file '{f.resolve()}'\n" for f in files[:1]) * 15)
            _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(hour_mp3))
        if not hour_wav.exists():
            _ffmpeg("-i", str(hour_mp3), "-ar", "44100", "-ac", "2", str(hour_wav))
        base = peak_rss_mb([sys.executable, "-c", "import torch"])
        print(f"peak resident memory of classify on a 60-minute file; {machine_load()}:")
        print(f"  python -c 'import torch' (reference): {base:6.0f} MB")
        for f in (hour_mp3, hour_wav):
            rss = peak_rss_mb([*cli(), "classify", "--model", str(model_dir), str(f)])
            print(f"  {f.suffix[1:]:4s} ({f.stat().st_size / 2**20:.0f} MB file): {rss:6.0f} MB  (target < 500 MB)")
    from genre_daemon.model.inference import Classifier

    if "speed" not in skip:
        classifier = Classifier.from_dir(model_dir)
        classifier.warm_up()  # one thread for torch and BLAS in this process, as classify runs
        what = f"{classifier.patches} patches"
        if classifier.model.prior is not None:
            what += f" + {classifier.model.prior.windows} AudioSet windows"
        print(f"steady state, {len(files)} x 4-min MP3 (44.1 kHz stereo 192k), median per file, one core each; {machine_load()}:")
        got = per_file_seconds({"ref": reference_features, "ours": classifier.classify}, files)
        (ref, ref_cpu), (ours, ours_cpu) = got["ref"], got["ours"]
        print(f"  report pipeline (librosa.load + 4 feature calls): {ref * 1000:8.0f} ms wall, {ref_cpu * 1000:6.0f} ms CPU")
        print(f"  genre-daemon classify (model {classifier.version}, {what}): {ours * 1000:8.0f} ms wall, "
              f"{ours_cpu * 1000:6.0f} ms CPU")
        print(f"  speed-up: {ref / ours:.1f}x wall, {ref_cpu / ours_cpu:.1f}x CPU  (target >= 4x)")

    if "cold" not in skip:
        print(f"cold start, median of {args.runs} (alternating); {machine_load()}:")
        torch_s, cold_s = wall([[sys.executable, "-c", "import torch"],
                                [*cli(), "classify", "--model", str(model_dir), str(files[0])]], args.runs)
        print(f"  python -c 'import torch':       {torch_s:6.2f} s")
        print(f"  genre-daemon classify one file: {cold_s:6.2f} s")
        print(f"  ratio: {cold_s / torch_s:.2f}x  (target <= 2.5x)")

    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
