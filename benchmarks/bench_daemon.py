"""The daemon's targets, measured on the real daemon process with real clips.

    python benchmarks/bench_daemon.py [--data ../shared/data/gtzan] [--parts latency,throughput,kills,album-kills]
                                      [--files 200] [--kills 50] [--albums 20]

1. latency: a 30-second clip dropped into an idle daemon; seconds until it is in its genre
   folder, against ``settle_seconds + 2``.
2. throughput: ``--files`` real clips (the shared clips, cycled, as copies with distinct names)
   dropped at once; files per second of the daemon (first arrival to last placement) against
   one ``genre-daemon classify`` run on the same files in the same run, before and after the
   daemon's (their mean: the machine may be shared).
3. kills: the same batch dropped, the daemon SIGKILLed at random moments exactly ``--kills``
   times, each followed by a restart: one kill in five during start-up (recovery included), the
   others 0-1.5 s after it is ready (when the inbox empties first, another 20 clips are dropped,
   so every kill lands on work in progress); at the end every file must be exactly once in the
   library, review or quarantine with the bytes of its source, none left in the inbox, no
   partial file anywhere, one journal move per file and a journal that passes integrity_check.
4. album-kills: ``--albums`` albums (3-5 real clips each, disc folders in some, with cover art,
   a cue sheet, a log, a playlist and an .nfo) dropped as folders; the daemon SIGKILLed
   ``--kills`` times at random moments, each followed by a restart, more albums dropped whenever
   the inbox empties; at the end every album must be whole in exactly one place (one folder in
   the library or review with every file of its source, bytes equal), nothing left in the inbox
   (not even a folder), no partial or hidden copy anywhere, and a journal that passes
   integrity_check.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDIO = {".flac", ".mp3", ".wav", ".ogg", ".m4a", ".au"}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("genre-daemon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]


class Tree:
    def __init__(self, root: Path, settle: float = 1.0, rescan: float = 5.0) -> None:
        self.root = root
        self.inbox, self.library, self.state = root / "inbox", root / "library", root / "state"
        self.quarantine = self.inbox / ".quarantine"
        self.settle = settle
        for d in (self.inbox, self.library, self.state):
            d.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yaml"
        self.config.write_text(
            f"inbox: {json.dumps(str(self.inbox))}\nlibrary: {json.dumps(str(self.library))}\n"
            f"review_dir: {json.dumps(str(self.library / '_review'))}\n"
            f"quarantine_dir: {json.dumps(str(self.quarantine))}\nstate_dir: {json.dumps(str(self.state))}\n"
            f"settle_seconds: {settle}\nrescan_interval: {rescan}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        (self.state / "daemon.json").unlink(missing_ok=True)  # a killed daemon's: not a sign of life
        self.proc = subprocess.Popen([*cli(), "run", "--config", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "daemon.log", "ab"))
        if not wait:
            return
        deadline = time.monotonic() + 60
        while not (self.state / "daemon.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.root / "daemon.log").read_text()[-2000:])
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)
        self.proc = None

    def placed(self) -> list[Path]:
        return [p for p in self.library.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO]

    def quarantined(self) -> list[Path]:
        return [p for p in self.quarantine.glob("*") if p.is_file() and not p.name.endswith(".reason.txt")]

    def left(self) -> list[Path]:
        return [p for p in self.inbox.rglob("*") if p.is_file() and self.quarantine not in p.parents]

    def partials(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if ".genre-daemon-partial-" in p.name]


def wait_until(cond, timeout: float) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.02)
    return time.monotonic() - t0


def batch(data: Path, n: int, into: Path) -> list[Path]:
    clips = sorted(data.glob("*/*.flac"))
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        c = clips[i % len(clips)]
        dst = into / f"{i:05d} {c.name}"
        shutil.copyfile(c, dst)
        out.append(dst)
    return out


def latency(data: Path, work: Path) -> None:
    tree = Tree(work / "latency", settle=2.0)
    tree.start()
    try:
        clip = sorted(data.glob("*/*.flac"))[0]
        times = []
        for i in range(5):
            shutil.copyfile(clip, tree.root / "x.flac")
            target = tree.inbox / f"drop {i}.flac"
            (tree.root / "x.flac").rename(target)
            times.append(wait_until(lambda: len(tree.placed()) == i + 1, 60))
            print(f"  drop {i}: {times[-1]:.2f} s", flush=True)
            time.sleep(1.0)  # idle again before the next drop
        times.sort()
        print(f"latency, 30 s clip into an idle daemon (settle_seconds {tree.settle}), 5 drops: "
              f"median {times[2]:.2f} s, max {times[-1]:.2f} s; target <= {tree.settle + 2:.1f} s")
    finally:
        tree.stop()


def classify_rate(files: list[Path]) -> float:
    """Files per second of one ``genre-daemon classify --json`` process over ``files``."""
    t0 = time.monotonic()
    subprocess.run([*cli(), "classify", "--json", *map(str, files)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return len(files) / (time.monotonic() - t0)


def throughput(data: Path, work: Path, n: int) -> None:
    """The daemon's rate against ``classify``'s, measured before and after it (their mean), so that
    a change in the machine's load during the run does not favour either."""
    src = batch(data, n, work / "tp-src")
    load0 = os.getloadavg()[0]
    before = classify_rate(src)
    tree = Tree(work / "throughput", settle=0.5)
    tree.start()
    try:
        t0 = time.monotonic()
        for f in src:
            shutil.copyfile(f, tree.root / "tmp.flac")
            (tree.root / "tmp.flac").rename(tree.inbox / f.name)
        wait_until(lambda: len(tree.placed()) + len(tree.quarantined()) >= n, 1800)
        daemon_rate = n / (time.monotonic() - t0)
    finally:
        tree.stop()
    after = classify_rate(src)
    rate = (before + after) / 2
    print(f"throughput on {n} real clips: daemon {daemon_rate:.2f} files/s (settle 0.5 s included), "
          f"classify {rate:.2f} files/s (one process, model loaded once; {before:.2f} before the daemon, "
          f"{after:.2f} after): ratio {daemon_rate / rate:.2f} (target >= 0.80)  "
          f"[load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, {os.cpu_count()} cores]")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop(files: list[Path], tree: Tree) -> None:
    for f in files:
        shutil.copyfile(f, tree.root / "tmp.flac")
        (tree.root / "tmp.flac").rename(tree.inbox / f.name)


def classifying(db: Path) -> int:
    """Rows left classifying (read-only; 0 when the journal does not exist yet)."""
    if not db.exists():
        return 0
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return c.execute("SELECT count(*) FROM files WHERE state = 'classifying'").fetchone()[0]
    except sqlite3.OperationalError:  # killed before the schema was made
        return 0
    finally:
        c.close()


def kill_at_random(tree: Tree, rng: random.Random, busy: float) -> bool:
    """Start the daemon and SIGKILL it: one time in five during start-up (recovery included;
    returns True), else 0-``busy`` s after it is ready."""
    during_start = rng.random() < 0.2
    if during_start:
        tree.start(wait=False)
        time.sleep(rng.uniform(0.0, 3.0))
    else:
        tree.start()
        time.sleep(rng.uniform(0.0, busy))
    tree.stop(signal.SIGKILL)
    return during_start


def kills(data: Path, work: Path, n: int, k: int, seed: int) -> None:
    rng = random.Random(seed)
    src = batch(data, n, work / "kill-src")
    tree = Tree(work / "kills", settle=0.3, rescan=2.0)
    drop(src, tree)
    refills = starting = mid_file = 0
    t0 = time.monotonic()
    for _ in range(k):
        if not tree.left():  # all placed: more work, so that the next kill lands on some
            refills += 1
            more = batch(data, 20, work / f"kill-src-{refills}")
            more = [f.rename(f.with_name(f"r{refills:03d}-{f.name}")) for f in more]
            src += more
            drop(more, tree)
        starting += kill_at_random(tree, rng, 1.5)
        mid_file += classifying(tree.state / "journal.sqlite3") > 0  # what the kill interrupted
    tree.start()
    wait_until(lambda: not tree.left(), 1800)
    tree.stop()
    elapsed = time.monotonic() - t0
    landed = [*tree.placed(), *tree.quarantined()]
    names = sorted(p.name for p in landed)
    expected = {f.name: digest(f) for f in src}
    dupes = len(names) - len(set(names))
    missing = sorted(set(expected) - set(names))
    altered = sorted(p.name for p in landed if p.name in expected and digest(p) != expected[p.name])
    with sqlite3.connect(tree.state / "journal.sqlite3") as c:
        integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
        moves = c.execute("SELECT count(*) FROM moves WHERE undone = 0").fetchone()[0]
        reasons = c.execute("SELECT reason, count(*) FROM files WHERE state = 'quarantined' "
                            "GROUP BY reason ORDER BY 2 DESC").fetchall()
    total = len(expected)
    ok = (not dupes and not missing and not altered and not tree.partials() and not tree.left()
          and integrity == "ok" and moves == total)
    print(f"kill stress: {k} SIGKILLs at random moments over {total} real clips ({n} + {refills} refills "
          f"of 20; {starting} during start-up, {mid_file} with a file being classified or moved), "
          f"then a clean run, {elapsed:.0f} s: quarantined {len(tree.quarantined())}, placed {len(names)}/{total}, missing {len(missing)}, "
          f"duplicated {dupes}, altered {len(altered)}, partial files {len(tree.partials())}, "
          f"left in inbox {len(tree.left())}, journal moves {moves}, integrity_check {integrity} "
          f"-> {'OK' if ok else 'FAILED'}")
    for reason, count in reasons:  # every file here is a good clip: a reason says why it was taken for poison
        print(f"  quarantined {count}: {reason}")
    if not ok:
        sys.exit(1)


SIDECARS = ("cover.jpg", "album.cue", "rip.log", "playlist.m3u", "info.nfo")


def make_albums(data: Path, n: int, into: Path, rng: random.Random, tag: str) -> dict[str, dict[str, str]]:
    """``n`` album folders under ``into``; returns album name -> relative path -> sha256."""
    clips = sorted(data.glob("*/*.flac"))
    albums: dict[str, dict[str, str]] = {}
    for a in range(n):
        name = f"{tag}Album {a:03d} ({1990 + a % 30})"
        folder = into / name
        tracks = rng.randint(3, 5)
        discs = rng.random() < 0.3
        for t in range(tracks):
            sub = folder / (f"CD{1 + t % 2}" if discs else "")
            sub.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clips[rng.randrange(len(clips))], sub / f"{t + 1:02} - Track.flac")
        for side in SIDECARS:
            (folder / side).write_bytes(f"{name} {side} ".encode() + rng.randbytes(rng.randint(10, 5000)))
        albums[name] = {p.relative_to(folder).as_posix(): digest(p) for p in folder.rglob("*") if p.is_file()}
    return albums


def album_kills(data: Path, work: Path, n: int, k: int, seed: int) -> None:
    rng = random.Random(seed)
    tree = Tree(work / "album-kills", settle=0.5, rescan=2.0)
    staging = work / "album-src"
    expected = make_albums(data, n, staging, rng, "")
    for name in expected:
        (staging / name).rename(tree.inbox / name)
    refills = starting = 0
    t0 = time.monotonic()
    for i in range(k):
        if not [p for p in tree.inbox.iterdir() if p != tree.quarantine]:
            refills += 1
            more = make_albums(data, 4, staging, rng, f"r{refills:02d} ")
            for name in more:
                (staging / name).rename(tree.inbox / name)
            expected |= more
        starting += kill_at_random(tree, rng, 2.5)
    tree.start()
    wait_until(lambda: not [p for p in tree.inbox.iterdir() if p != tree.quarantine], 1800)
    tree.stop()
    elapsed = time.monotonic() - t0
    found: dict[str, list[Path]] = {}
    for cue in [*tree.library.rglob("album.cue"), *tree.quarantine.rglob("album.cue")]:
        name = cue.read_bytes().split(b" album.cue ")[0].decode()
        found.setdefault(name, []).append(cue.parent)
    whole = sum(1 for name, where in found.items() if len(where) == 1 and name in expected and
                {p.relative_to(where[0]).as_posix(): digest(p) for p in where[0].rglob("*") if p.is_file()}
                == expected[name])
    twice = sum(1 for where in found.values() if len(where) > 1)
    missing = len(set(expected) - set(found))
    hidden = [p for p in tree.root.rglob("*") if ".genre-daemon-" in p.name]
    with sqlite3.connect(tree.state / "journal.sqlite3") as c:
        integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
        states = dict(c.execute("SELECT state, count(*) FROM albums GROUP BY state").fetchall())
    left = [p for p in tree.inbox.rglob("*") if tree.quarantine not in p.parents and p != tree.quarantine]
    ok = whole == len(expected) and not twice and not missing and not hidden and not left and integrity == "ok"
    for name, where in sorted(found.items()):
        if len(where) == 1 and name in expected:
            got = {p.relative_to(where[0]).as_posix(): digest(p) for p in where[0].rglob("*") if p.is_file()}
            if got != expected[name]:
                lost = sorted(set(expected[name]) - set(got))
                print(f"  {name}: at {where[0].relative_to(tree.root)} without {lost}, "
                      f"extra {sorted(set(got) - set(expected[name]))}")
    with sqlite3.connect(tree.state / "journal.sqlite3") as c:
        for reason, count in c.execute("SELECT reason, count(*) FROM files WHERE state = 'quarantined' "
                                       "GROUP BY reason").fetchall():
            print(f"  quarantined {count}: {reason}")
    print(f"album kill stress: {k} SIGKILLs at random moments over {len(expected)} albums of real clips "
          f"({n} + {refills} refills of 4; {starting} during start-up), then a clean run, {elapsed:.0f} s: "
          f"whole in exactly one place {whole}/{len(expected)}, in two places {twice}, missing {missing}, "
          f"hidden copies left {len(hidden)}, left in the inbox {len(left)}, album rows {states}, "
          f"integrity_check {integrity} -> {'OK' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--parts", default="latency,throughput,kills")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--albums", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="genre-daemon-bench-") as tmp:
        work = Path(tmp)
        if "latency" in parts:
            latency(args.data, work)
        if "throughput" in parts:
            throughput(args.data, work, args.files)
        if "kills" in parts:
            kills(args.data, work, args.files, args.kills, args.seed)
        if "album-kills" in parts:
            album_kills(args.data, work, args.albums, args.kills, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
