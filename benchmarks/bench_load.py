"""Load: N distinct real-audio files dropped at once into a real ``genre-daemon run``.

    python benchmarks/bench_load.py --files 1000 [--data ../shared/data/gtzan] [--seconds 3,8]
                                    [--sample 200] [--rescan-interval S] [--unseen K] [--seed 0]
                                    [--work DIR] [--json OUT]

1. Staging: N snippets cut from the GTZAN clips (``--seconds`` long at random offsets, a random
   gain of +-3 dB, half WAV and half FLAC), every one different by content hash. 90 % are loose
   files, 10 % sit in ten sub-folders that all use the same names (clashes in the library).
   They are written on the same filesystem as the inbox, so the drop is renames only.
2. Reference, in the same run: one ``genre-daemon classify --json`` process on ``--sample`` of
   the same files; files per second with its start-up included (as for the daemon) and without
   (a one-file run's time taken off).
3. The daemon, default config except the paths (and ``rescan_interval`` when given), started
   and idle; then every file is renamed into the inbox as fast as possible (sub-folders as one
   rename each). Measured: seconds until the daemon knows of every file (its watcher's pending
   count plus its queue plus what it placed; events lost to an inotify overflow show up here as
   a wait for the next rescan), seconds until every file is placed, files per second, and the
   peak resident memory of the daemon plus all its descendants (VmRSS from /proc, every 0.2 s).
   ``--unseen K`` (root): K more files appear where no inotify event reaches the daemon (a tmpfs
   mounted over a folder of the inbox after the start), as if the events had been dropped; the
   time until they are placed shows the periodic rescan catching what the events missed.
4. Verification after a clean stop: library + review + quarantine hold exactly the N staged
   contents (sha256, none missing, none twice), nothing is left in the inbox, no partial file,
   and the journal has exactly one terminal row (moved, review or quarantined) and one move per
   file, whose destinations are the files on disk.

Exit status 0 when everything was placed exactly once and the peak memory is <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
AUDIO = {".flac", ".mp3", ".wav", ".ogg", ".m4a", ".au"}
SR = 22050
MEMORY_LIMIT = 1.5e9
SUBFOLDERS = 10


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("genre-daemon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------- memory
def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc/<pid>/task/<tid>/children."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Sums VmRSS over a process and its descendants every ``interval`` s; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_procs = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = tree_pids(self.pid)
            total = sum(rss_bytes(p) for p in pids)
            self.peak = max(self.peak, total)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# --------------------------------------------------------------------------------- staging
def stage(data: Path, n: int, into: Path, seconds: tuple[float, float], seed: int) -> dict[str, str]:
    """Write ``n`` distinct snippets under ``into``; returns {sha256: relative path}."""
    rng = random.Random(seed)
    clips = sorted(data.glob("*/*.flac"))
    if not clips:
        raise SystemExit(f"{data}: no <genre>/*.flac clips")
    decoded: dict[Path, np.ndarray] = {}
    n_sub = n // 10
    per_sub = max(1, -(-n_sub // SUBFOLDERS))
    out: dict[str, str] = {}
    i = 0
    while len(out) < n:
        clip = clips[i % len(clips)]
        if clip not in decoded:
            y, sr = sf.read(str(clip), dtype="float32", always_2d=True)
            if sr != SR:
                raise SystemExit(f"{clip}: {sr} Hz, expected {SR}")
            decoded[clip] = y.mean(axis=1)
        y = decoded[clip]
        length = int(rng.uniform(*seconds) * SR)
        start = rng.randrange(0, max(1, len(y) - length))
        gain = 10 ** (rng.uniform(-3.0, 3.0) / 20)
        piece = np.clip(y[start:start + length] * gain, -1.0, 1.0)
        ext = "wav" if i % 2 == 0 else "flac"
        k = len(out)
        if k < n_sub:  # the same names in every sub-folder
            rel = f"batch {k % SUBFOLDERS:02d}/take {k // SUBFOLDERS:04d}.{ext}"
            if k // SUBFOLDERS >= per_sub:
                rel = f"batch {k % SUBFOLDERS:02d}/extra {k:05d}.{ext}"
        else:
            rel = f"{clip.parent.name} snippet {k:05d} ({clip.stem}).{ext}"
        path = into / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), piece, SR, subtype="PCM_16")
        digest = sha256(path)
        i += 1
        if digest in out:  # same clip, offset and gain: astronomically rare, but never count it twice
            path.unlink()
            continue
        out[digest] = rel
    return out


def drop(stage_dir: Path, inbox: Path) -> int:
    """Rename everything staged into the inbox: loose files one by one, sub-folders whole."""
    moved = 0
    for entry in sorted(os.scandir(stage_dir), key=lambda e: e.name):
        os.rename(entry.path, inbox / entry.name)
        moved += 1
    return moved


# --------------------------------------------------------------------------------- the daemon
class Daemon:
    def __init__(self, root: Path, rescan_interval: float | None) -> None:
        self.root = root
        self.inbox, self.library, self.state = root / "inbox", root / "library", root / "state"
        self.review, self.quarantine = self.library / "_review", self.inbox / ".quarantine"
        for d in (self.inbox, self.library, self.state):
            d.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yaml"
        lines = {"inbox": self.inbox, "library": self.library, "review_dir": self.review,
                 "quarantine_dir": self.quarantine, "state_dir": self.state}
        text = "".join(f"{k}: {json.dumps(str(v))}\n" for k, v in lines.items())
        if rescan_interval is not None:
            text += f"rescan_interval: {rescan_interval}\n"
        self.config.write_text(text)
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([*cli(), "run", "--config", str(self.config)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 120
        while not (self.state / "daemon.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log.read_text()[-2000:])
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.proc = None
        return code

    def status(self) -> dict[str, object] | None:
        try:
            return json.loads((self.state / "daemon.json").read_text())
        except (OSError, ValueError):
            return None

    def outputs(self) -> list[Path]:
        placed = [p for p in self.library.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO]
        quarantined = [p for p in self.quarantine.glob("*")
                       if p.is_file() and not p.name.endswith(".reason.txt")]
        return placed + quarantined

    def left(self) -> list[Path]:
        return [p for p in self.inbox.rglob("*") if p.is_file() and self.quarantine not in p.parents]

    def partials(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if ".genre-daemon-partial-" in p.name]


def journal_check(db: Path, on_disk: list[Path]) -> dict[str, object]:
    """States, terminal rows and moves from the journal (read-only, after the daemon stopped)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        states = dict(conn.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall())
        dests = [os.fsdecode(bytes(r[0])) if isinstance(r[0], (bytes, memoryview)) else r[0]
                 for r in conn.execute("SELECT destination FROM files WHERE state IN "
                                       "('moved', 'review', 'quarantined')")]
        moves = conn.execute("SELECT count(*) FROM moves WHERE undone = 0").fetchone()[0]
    finally:
        conn.close()
    disk = {str(p) for p in on_disk}
    return {"states": states, "terminal_rows": len(dests), "distinct_destinations": len(set(dests)),
            "moves": moves, "terminal_rows_matching_disk": len(set(dests) & disk)}


# --------------------------------------------------------------------------------- the run
def classify(files: list[Path], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds for one ``genre-daemon classify --json`` process on ``files``, and how many it
    classified."""
    t0 = time.monotonic()
    out = subprocess.run([*cli(), "classify", "--json", *map(str, files)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=False, env=env)
    elapsed = time.monotonic() - t0
    return elapsed, sum(1 for line in out.stdout.splitlines() if "genre" in json.loads(line))


def reference(files: list[Path], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Files per second of one classify process on ``files`` (start-up included), the same with
    the start-up (a one-file run) taken out, and how many it classified."""
    one, _ = classify(files[:1], env)
    elapsed, ok = classify(files, env)
    return len(files) / elapsed, (len(files) - 1) / max(1e-9, elapsed - one), ok


def mount_tmpfs(folder: Path) -> bool:
    """A small tmpfs over ``folder`` (root only): files written there after the daemon started
    raise no inotify event on the watched folder it covers, as if the events had been lost."""
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", str(folder)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"cannot mount a tmpfs on {folder} ({out.stderr.strip()}); no unseen files", file=sys.stderr)
    return out.returncode == 0


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    n = args.files
    lo, hi = (float(x) for x in args.seconds.split(","))
    stage_dir, unseen_stage = work / "stage", work / "stage-unseen"
    t0 = time.monotonic()
    staged = stage(args.data, n, stage_dir, (lo, hi), args.seed)
    print(f"staged {n} distinct snippets ({lo:g}-{hi:g} s, WAV/FLAC, {n // 10} in {SUBFOLDERS} sub-folders "
          f"with clashing names) in {time.monotonic() - t0:.1f} s", flush=True)
    unseen = stage(args.data, args.unseen, unseen_stage, (lo, hi), args.seed + 7) if args.unseen else {}

    rng = random.Random(args.seed + 1)
    sample = rng.sample(sorted(staged.values()), min(args.sample, n))
    classify_rate, steady_rate, classify_ok = reference([stage_dir / rel for rel in sample])
    print(f"reference: one `genre-daemon classify --json` process on {len(sample)} of the files: "
          f"{classify_rate:.2f} files/s, {steady_rate:.2f} files/s without its start-up "
          f"({classify_ok} classified)", flush=True)
    # torch's default of one thread per core spins badly when the cores are shared with other
    # work; the same run with one thread shows how much of the gap is that.
    one_thread = dict(os.environ, OMP_NUM_THREADS="1")
    classify1_rate, steady1_rate, _ = reference([stage_dir / rel for rel in sample], one_thread)
    print(f"reference with OMP_NUM_THREADS=1: {classify1_rate:.2f} files/s, {steady1_rate:.2f} files/s "
          f"without its start-up", flush=True)

    daemon = Daemon(work / "tree", args.rescan_interval)
    hidden = daemon.inbox / "unseen"
    if unseen:
        hidden.mkdir()
    daemon.start()
    assert daemon.proc is not None
    mounted = bool(unseen) and mount_tmpfs(hidden)
    if not mounted:
        unseen = {}
    if set(unseen) & set(staged):
        raise SystemExit("an unseen snippet equals a dropped one; change --seed")
    total = n + len(unseen)
    sampler = MemorySampler(daemon.proc.pid)
    sampler.start()
    idle_rss = 0
    t_known = t_done = t_unseen_done = None
    drop_seconds = 0.0
    try:
        time.sleep(1.0)  # a baseline for the idle daemon
        idle_rss = sampler.peak
        t_drop = time.monotonic()
        drop(stage_dir, daemon.inbox)
        drop_seconds = time.monotonic() - t_drop
        print(f"dropped {n} files in {drop_seconds:.2f} s (renames)", flush=True)
        if mounted:  # copied into the tmpfs (hidden name first, then renamed): no event reaches the daemon
            shutil.copytree(unseen_stage, hidden / ".copy")
            for entry in os.scandir(hidden / ".copy"):
                os.rename(entry.path, hidden / entry.name)
            os.rmdir(hidden / ".copy")
            print(f"  and {len(unseen)} more where inotify cannot see them (a tmpfs mounted over "
                  f"{hidden.relative_to(work)} after the start): only a rescan finds them", flush=True)
        deadline = t_drop + args.timeout
        last_print = t_drop
        done = 0
        while time.monotonic() < deadline:
            st = daemon.status() or {}
            done = int(st.get("placed", 0)) + int(st.get("review", 0)) + int(st.get("quarantined", 0))
            # Recorded and waiting: the in-memory queue plus the journal's backlog beyond it.
            known = done + int(st.get("pending", 0)) + int(st.get("waiting", st.get("queue_depth", 0)))
            now = time.monotonic()
            if t_known is None and known >= total - 2:  # up to `workers` files in hand are in no count
                t_known = now - t_drop
                print(f"  all {total} files known to the daemon after {t_known:.1f} s", flush=True)
            if mounted and t_unseen_done is None and not any(
                    e.is_file() for e in os.scandir(hidden) if not e.name.startswith(".")):
                t_unseen_done = now - t_drop
                print(f"  the {len(unseen)} unseen files placed after {t_unseen_done:.1f} s", flush=True)
            if done >= total and not daemon.left():
                t_done = now - t_drop
                break
            if now - last_print >= 30:
                last_print = now
                print(f"  {now - t_drop:6.0f} s: {done}/{total} placed, known {known}, "
                      f"peak memory so far {sampler.peak / 1e6:.0f} MB", flush=True)
            if daemon.proc.poll() is not None:
                print("daemon died", file=sys.stderr)
                break
            time.sleep(0.5)
    finally:
        code = daemon.stop() if daemon.proc is not None and daemon.proc.poll() is None else -1
        sampler.stop()
        outputs = daemon.outputs()
        left = daemon.left()
        if mounted:
            subprocess.run(["umount", str(hidden)], check=False)

    expected = {**staged, **{h: f"unseen/{rel}" for h, rel in unseen.items()}}
    hashes = Counter(sha256(p) for p in outputs)
    missing = [expected[h] for h in expected if h not in hashes]
    duplicated = sum(c - 1 for c in hashes.values() if c > 1)
    unexpected = sum(c for h, c in hashes.items() if h not in expected)
    partials = daemon.partials()
    jr = journal_check(daemon.state / "journal.sqlite3", outputs)
    where = Counter("quarantine" if daemon.quarantine in p.parents else
                    "review" if daemon.review in p.parents else "genre" for p in outputs)
    overflow = "overflow" in daemon.log.read_text(errors="replace").lower()
    ok = (not missing and not duplicated and not unexpected and not left and not partials
          and len(outputs) == total and jr["terminal_rows"] == total and jr["distinct_destinations"] == total
          and jr["terminal_rows_matching_disk"] == total and jr["moves"] == total and t_done is not None)
    result = {
        "files": n, "unseen_files": len(unseen), "seconds": [lo, hi], "nice": os.nice(0), "cpus": os.cpu_count(),
        "rescan_interval": args.rescan_interval if args.rescan_interval is not None else "default (300)",
        "inotify_max_queued_events": int(Path("/proc/sys/fs/inotify/max_queued_events").read_text()),
        "drop_seconds": round(drop_seconds, 2),
        "all_known_after_s": None if t_known is None else round(t_known, 1),
        "unseen_placed_after_s": None if t_unseen_done is None else round(t_unseen_done, 1),
        "all_placed_after_s": None if t_done is None else round(t_done, 1),
        "daemon_files_per_s": None if t_done is None else round(total / t_done, 2),
        "classify_files_per_s": round(classify_rate, 2),
        "classify_files_per_s_without_startup": round(steady_rate, 2),
        "ratio": None if t_done is None else round(total / t_done / classify_rate, 2),
        "ratio_without_startup": None if t_done is None else round(total / t_done / steady_rate, 2),
        "classify_1thread_files_per_s": round(classify1_rate, 2),
        "classify_1thread_files_per_s_without_startup": round(steady1_rate, 2),
        "ratio_1thread": None if t_done is None else round(total / t_done / classify1_rate, 2),
        "peak_rss_mb": round(sampler.peak / 1e6), "idle_rss_mb": round(idle_rss / 1e6),
        "peak_processes": sampler.peak_procs, "memory_samples": sampler.samples,
        "placed": dict(where), "missing": len(missing), "duplicated": duplicated, "unexpected": unexpected,
        "left_in_inbox": len(left), "partials": len(partials), "journal": jr,
        "overflow_in_log": overflow, "daemon_exit": code,
        "ok": ok and sampler.peak <= MEMORY_LIMIT,
    }
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seconds", default="3,8", help="snippet length range in seconds, 'lo,hi'")
    ap.add_argument("--sample", type=int, default=200, help="files for the classify reference")
    ap.add_argument("--rescan-interval", type=float, default=None, help="default: the daemon's (300 s)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unseen", type=int, default=0,
                    help="also this many files the daemon gets no event for (root: a tmpfs mounted over a "
                         "folder of the inbox after the start); only its rescan can find them")
    ap.add_argument("--work", type=Path, default=None, help="keep the tree here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=False)
        result = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="genre-daemon-load-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result, indent=1))
    r = result
    print(f"\nload, {r['files']} files at once (nice {r['nice']}, {r['cpus']} CPUs): "
          f"(+{r['unseen_files']} without events, placed after {r['unseen_placed_after_s']} s), "
          f"placed {sum(r['placed'].values())}/{r['files'] + r['unseen_files']} ({r['placed']}), "
          f"missing {r['missing']}, "
          f"duplicated {r['duplicated']}, left in inbox {r['left_in_inbox']}, partial {r['partials']}; "
          f"all known after {r['all_known_after_s']} s, all placed after {r['all_placed_after_s']} s: "
          f"daemon {r['daemon_files_per_s']} files/s vs classify {r['classify_files_per_s']} files/s, "
          f"ratio {r['ratio']} ({r['ratio_without_startup']} against classify without its start-up; "
          f"{r['ratio_1thread']} against classify with OMP_NUM_THREADS=1, "
          f"{r['classify_1thread_files_per_s']} files/s); "
          f"peak memory (daemon + children) {r['peak_rss_mb']} MB "
          f"(idle {r['idle_rss_mb']} MB; target <= 1500) -> {'OK' if r['ok'] else 'FAILED'}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
