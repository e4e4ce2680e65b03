"""``genre-daemon import`` against the daemon, on the same real clips, in the same run.

    python benchmarks/bench_import.py [--data ../shared/data/gtzan] [--files 2000] [--workers 1]

1. The daemon: ``--files`` copies of the shared clips (cycled, distinct names) dropped into its
   inbox at once; files per second from the first arrival to the last placement.
2. import: the same files in a folder, ``genre-daemon import DIR --workers N``, killed with
   SIGKILL once a third of them are placed, then run again to the end; files per second over
   both runs (the restart's model load included), its progress bar's last line, and the check
   that it is resumable: every file placed exactly once with its bytes, none classified twice
   (the second run's plan counts only what the first left), nothing left in the folder.

Prints the ratio import/daemon (target >= 0.80).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDIO = {".flac", ".mp3", ".wav", ".ogg", ".m4a", ".au"}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("genre-daemon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]


def config(root: Path, workers: int) -> Path:
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    cfg = root / "config.yaml"
    cfg.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in {
        "inbox": str(root / "inbox"), "library": str(root / "library"), "review_dir": str(root / "library/_review"),
        "quarantine_dir": str(root / "quarantine"), "state_dir": str(root / "state"), "settle_seconds": 0.5,
        "rescan_interval": 5, "workers": workers}.items()))
    return cfg


def copies(data: Path, n: int, into: Path) -> dict[str, str]:
    clips = sorted(data.glob("*/*.flac"))
    into.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        dst = into / f"{i:05d} {clips[i % len(clips)].name}"
        shutil.copyfile(clips[i % len(clips)], dst)
        out[dst.name] = hashlib.sha256(dst.read_bytes()).hexdigest()
    return out


def placed(root: Path) -> list[Path]:
    return [p for p in (root / "library").rglob("*") if p.is_file() and p.suffix.lower() in AUDIO]


def wait(cond, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)


def daemon_rate(data: Path, work: Path, n: int, workers: int) -> float:
    root = work / "daemon"
    cfg = config(root, workers)
    copies(data, n, root / "staging")
    proc = subprocess.Popen([*cli(), "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(root / "daemon.log", "wb"))
    try:
        wait(lambda: (root / "state" / "daemon.json").exists(), 120)
        t0 = time.monotonic()
        for f in sorted((root / "staging").iterdir()):
            f.rename(root / "inbox" / f.name)
        wait(lambda: len(placed(root)) >= n, 7200)
        elapsed = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    rate = n / elapsed
    print(f"daemon: {n} files in {elapsed:.1f} s = {rate:.2f} files/s (workers {workers})")
    return rate


def import_rate(data: Path, work: Path, n: int, workers: int) -> float:
    root = work / "import"
    cfg = config(root, workers)
    expected = copies(data, n, root / "collection")
    cmd = [*cli(), "import", str(root / "collection"), "--config", str(cfg), "--workers", str(workers)]
    t0 = time.monotonic()
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(root / "import-1.log", "wb"))
    wait(lambda: len(placed(root)) >= n // 3, 7200)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_at_kill = len(placed(root))
    second = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=open(root / "import-2.log", "wb"), text=True)
    elapsed = time.monotonic() - t0
    log2 = (root / "import-2.log").read_text(errors="replace")
    planned = next((line for line in log2.splitlines() if "audio files (" in line), "")
    bar = [seg for seg in log2.replace("\r", "\n").splitlines() if "file/s" in seg or "s/file" in seg]
    names = sorted(p.name for p in placed(root))
    ok = (second.returncode == 0 and names == sorted(expected) and len(set(names)) == len(names)
          and all(hashlib.sha256(p.read_bytes()).hexdigest() == expected[p.name] for p in placed(root))
          and not any(p.is_file() for p in (root / "collection").rglob("*")))
    rate = n / elapsed
    print(f"import: {n} files in {elapsed:.1f} s = {rate:.2f} files/s (workers {workers}; SIGKILL after "
          f"{done_at_kill} placed, then run again)")
    print(f"  second run planned: {planned.split('import ')[-1] if planned else '?'}")
    print(f"  its progress bar, last line: {bar[-1].strip() if bar else '?'}")
    print(f"  every file placed exactly once with its bytes, nothing left: {'OK' if ok else 'FAILED'}; "
          f"{second.stdout.strip()}")
    if not ok:
        sys.exit(1)
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="genre-daemon-import-") as tmp:
        work = Path(tmp)
        d = daemon_rate(args.data, work, args.files, args.workers)
        i = import_rate(args.data, work, args.files, args.workers)
    print(f"import / daemon: {i / d:.2f} (target >= 0.80)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
