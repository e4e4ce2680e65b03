"""Learning from the user (issue 4, "Targets"), measured with the project's real commands.

    python benchmarks/bench_learning.py [--data ../shared/data/gtzan] [--parts newgenre,corrections,time]
                                        [--work DIR] [--seed 0]

1. newgenre: jazz held out; ``genre-daemon train`` on a seeded ~75 % per-clip split of the nine
   other genres (the base model); a daemon tree whose version store is seeded with the base model;
   22 jazz clips put in ``library/jazz/`` (a user-made genre folder: labels); ``genre-daemon
   retrain``; then ``genre-daemon evaluate`` of the active model on the 13 other jazz clips (recall,
   target >= 0.60) and on the nine old genres' test clips before/after (drop, target <= 5 points).
2. corrections: the base model's most frequent confusion A->B on the nine genres' test clips (plus
   MP3 128k / 16 kHz re-encodes of them when the originals give too few errors); 20 clips of A from
   the train split, re-encoded the same way, are put in ``library/A/`` ("added" labels: the same
   training signal as a correction, i.e. "this is A"); ``genre-daemon retrain``; A->B count on the
   held-out pool before/after (target: falls by at least half). Skipped, and said so, when the top
   confusion has fewer than 4 errors.
3. time: 1,000 label files (10-second pieces of the 150 clips, small random gains so their content
   hashes differ) in ``library/<genre>/`` of a tree on the shipped model; ``genre-daemon retrain``
   once (fills the feature cache), then again, timed (target <= 5 min on 2 cores). Around and during
   the second one, a daemon on a second tree (own state_dir, retrain disabled) gets 30 s clips dropped
   into its inbox: seconds until placed, idle vs. during the retrain (target: at most doubles).

Everything happens in a temporary folder (``--work`` keeps it, and reuses a base model found there).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AUDIO = {".flac", ".mp3", ".wav", ".ogg", ".m4a", ".au"}
NEW_GENRE = "jazz"
N_JAZZ_LABELS = 22
N_CORRECTIONS = 20
MIN_CONFUSION = 4
SMALL_PER_GENRE = 3  # clips per genre of the small base model of part 2
N_CORRECTION_CLIPS = 14  # clips of the confused genre whose pieces go through the daemon
PIECES_PER_CLIP = 4
N_TIME_LABELS = 1000


def cli() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "genre-daemon"
    if exe.exists():
        return [str(exe)]
    exe = Path(sys.executable).with_name("genre-daemon")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genre_daemon.cli"]


def show(cmd: list[str]) -> str:
    return " ".join(c if " " not in c else repr(c) for c in ["genre-daemon", *cmd])


def run_cli(args: list[str], log: Path, timeout: float = 3600) -> tuple[str, float]:
    """Run ``genre-daemon ARGS``; stdout and the wall time. stderr goes to ``log``."""
    print(f"  $ {show(args)}", flush=True)
    t0 = time.monotonic()
    with open(log, "ab") as err:
        proc = subprocess.run([*cli(), *args], stdout=subprocess.PIPE, stderr=err, timeout=timeout)
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"genre-daemon {' '.join(args)} exited {proc.returncode} after {dt:.0f} s:\n{tail}")
    return proc.stdout.decode(), dt


def evaluate(data: Path, model: Path, log: Path) -> dict[str, Any]:
    out, _ = run_cli(["evaluate", "--data", str(data), "--model", str(model), "--json"], log)
    return json.loads(out)


def write_config(root: Path, *, retrain_enabled: bool = True, settle: float = 1.0) -> Path:
    dirs = {k: root / v for k, v in (("inbox", "inbox"), ("library", "library"), ("review_dir", "review"),
                                     ("quarantine_dir", "quarantine"), ("state_dir", "state"))}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    cfg = root / "config.yaml"
    lines = [f"{k}: {json.dumps(str(v))}" for k, v in dirs.items()]
    lines += ["model: null", f"settle_seconds: {settle}", "rescan_interval: 5", "retrain:",
              f"  enabled: {'true' if retrain_enabled else 'false'}", "  min_new_labels: 20",
              "  min_per_genre: 10", "  min_interval: 0"]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def seed_store(tree: Path, model_dir: Path) -> None:
    from genre_daemon.learning.versions import ModelStore, seed_default

    seed_default(ModelStore(tree / "state" / "models"), model_dir)


def active_dir(tree: Path) -> Path:
    from genre_daemon.learning.versions import ModelStore

    d = ModelStore(tree / "state" / "models").active_dir()
    if d is None:
        raise RuntimeError(f"{tree}: no active model in the version store")
    return d


def retrain(tree: Path, cfg: Path) -> tuple[dict[str, Any], float]:
    out, dt = run_cli(["retrain", "--config", str(cfg)], tree / "retrain.log")
    summary = json.loads(out)
    print(f"  retrain ({dt:.0f} s): promoted={summary.get('promoted')} ({summary.get('reason')}); "
          f"labels {summary.get('labels')}, new {summary.get('new_labels')}, genres {summary.get('genres')}, "
          f"candidate {summary.get('candidate')}, active {summary.get('active')}", flush=True)
    if summary.get("failed"):
        print(f"  retrain: {len(summary['failed'])} label files failed: {summary['failed'][:3]}")
    listing, _ = run_cli(["model", "list", "--config", str(cfg), "--json"], tree / "retrain.log")
    for line in listing.splitlines():
        v = json.loads(line)
        print(f"  model list: {v.get('version')} active={v.get('active')} n_labels={v.get('n_labels')}")
    return summary, dt


# --- data --------------------------------------------------------------------------------------


def clips_by_genre(data: Path) -> dict[str, list[Path]]:
    return {g.name: sorted(g.glob("*.flac")) for g in sorted(data.iterdir()) if g.is_dir() and any(g.glob("*.flac"))}


def split(data: Path, seed: int) -> dict[str, tuple[list[Path], list[Path]]]:
    """Per genre, by clip: (train ~75 %, test ~25 %), seeded."""
    rng = random.Random(seed)
    out = {}
    for g, clips in clips_by_genre(data).items():
        c = list(clips)
        rng.shuffle(c)
        n_test = max(1, round(len(c) * 0.25))
        out[g] = (sorted(c[n_test:]), sorted(c[:n_test]))
    return out


def copy_into(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, folder / f.name)


def reencode(src: Path, dst: Path, start: float | None = None, length: float | None = None) -> None:
    """MP3 128 kbit/s at 16 kHz (optionally a piece), with ffmpeg."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if start is not None:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += ["-i", str(src)]
    if length is not None:
        cmd += ["-t", f"{length:.3f}"]
    cmd += ["-ar", "16000", "-b:a", "128k", str(dst)]
    subprocess.run(cmd, check=True)


def prepare_split(data: Path, work: Path, seed: int) -> dict[str, tuple[list[Path], list[Path]]]:
    sp = split(data, seed)
    old = [g for g in sp if g != NEW_GENRE]
    if not (work / "split").exists():
        for g in old:
            copy_into(sp[g][0], work / "split" / "train" / g)
            copy_into(sp[g][1], work / "split" / "test" / g)
    return sp


def base_model(data: Path, work: Path, seed: int) -> Path:
    prepare_split(data, work, seed)
    out = work / "base-model"
    if (out / "model.json").is_file():
        print(f"  base model: reusing {out}")
        return out
    _, dt = run_cli(["train", "--data", str(work / "split" / "train"), "--out", str(out), "--seed", "0",
                     "--threads", "2"], work / "train.log")
    print(f"  base model (nine genres, no {NEW_GENRE}) trained in {dt:.0f} s", flush=True)
    return out


# --- 1. a new genre ----------------------------------------------------------------------------


def part_newgenre(data: Path, work: Path, seed: int) -> None:
    print("== 1. learning a new genre", flush=True)
    base = base_model(data, work, seed)
    rng = random.Random(seed + 1)
    jazz = list(clips_by_genre(data)[NEW_GENRE])
    rng.shuffle(jazz)
    labels, held = sorted(jazz[:N_JAZZ_LABELS]), sorted(jazz[N_JAZZ_LABELS:])
    tree = work / "newgenre"
    if tree.exists():
        shutil.rmtree(tree)
    cfg = write_config(tree)
    seed_store(tree, base)
    copy_into(labels, tree / "library" / NEW_GENRE)
    copy_into(held, work / "jazz-held" / NEW_GENRE)
    summary, dt = retrain(tree, cfg)
    new = active_dir(tree)
    jz = evaluate(work / "jazz-held", new, tree / "eval.log")
    recall = jz["per_genre"].get(NEW_GENRE, {}).get("recall", 0.0) if jz["n"] else 0.0
    n_held = jz["n"] if jz["n"] else len(held)
    before = evaluate(work / "split" / "test", base, tree / "eval.log")
    after = evaluate(work / "split" / "test", new, tree / "eval.log")
    drop = 100 * (before["accuracy"] - after["accuracy"])
    ok1, ok2 = recall >= 0.60, drop <= 5.0
    print(f"  where the held-out jazz clips went: "
          f"{_where(jz, NEW_GENRE) if jz['n'] else 'not classified (active model has no jazz)'}")
    print(f"RESULT new genre ({NEW_GENRE}): {'promoted' if summary.get('promoted') else 'NOT promoted'} "
          f"({N_JAZZ_LABELS} labels, retrain {dt:.0f} s); recall {recall:.2f} on {n_held} held-out clips "
          f"(target >= 0.60: {'met' if ok1 else 'MISSED'}); old genres {before['accuracy']:.3f} -> "
          f"{after['accuracy']:.3f} on {after['n']} test clips (drop {drop:.1f} points, target <= 5: "
          f"{'met' if ok2 else 'MISSED'})", flush=True)


def _where(result: dict[str, Any], genre: str) -> str:
    g = result["genres"]
    row = result["confusion"][g.index(genre)]
    return ", ".join(f"{g[j]} {n}" for j, n in sorted(enumerate(row), key=lambda t: -t[1]) if n)


# --- 2. corrections ----------------------------------------------------------------------------


def _pairs(results: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for r in results:
        g = r["genres"]
        for i, row in enumerate(r["confusion"]):
            for j, n in enumerate(row):
                if i != j and n:
                    counts[(g[i], g[j])] = counts.get((g[i], g[j]), 0) + n
    return counts


def _confusions(results: list[dict[str, Any]], a: str, b: str) -> tuple[int, int]:
    """(A->B count, number of A clips) over the results."""
    n_ab = n_a = 0
    for r in results:
        g = r["genres"]
        if a in g:
            row = r["confusion"][g.index(a)]
            n_a += sum(row)
            if b in g:
                n_ab += row[g.index(b)]
    return n_ab, n_a


def part_corrections(data: Path, work: Path, seed: int) -> None:
    """Real corrections of a real confusion. The nine-genre base model of part 1 makes too few
    errors to measure a halving, so this part starts from a deliberately small base model (a few
    clips per genre, all ten genres): its top confusion A -> B (A a genre with enough clips) is
    measured on held-out clips of A; pieces of other clips of A go through a real daemon, and the
    ones it puts in B/ are moved by hand into A/ (labels of kind "correction")."""
    print("== 2. learning from corrections", flush=True)
    rng = random.Random(seed + 2)
    small, held, pool = work / "small" / "train", work / "small" / "held", {}
    for g, clips in clips_by_genre(data).items():
        c = list(clips)
        rng.shuffle(c)
        train, rest = c[:SMALL_PER_GENRE], c[SMALL_PER_GENRE:]
        big = len(rest) >= 2 * N_CORRECTION_CLIPS
        pool[g] = rest[:N_CORRECTION_CLIPS] if big else []
        if not (small / g).exists():
            copy_into(train, small / g)
            copy_into(rest[N_CORRECTION_CLIPS:] if big else rest, held / g)
    log = work / "corrections.log"
    base = work / "small-base"
    if not (base / "model.json").is_file():
        _, dt = run_cli(["train", "--data", str(small), "--out", str(base), "--seed", "0", "--threads", "2"], log)
        print(f"  small base model ({SMALL_PER_GENRE} clips per genre, ten genres) trained in {dt:.0f} s", flush=True)
    before = evaluate(held, base, log)
    pairs = {k: v for k, v in _pairs([before]).items() if pool[k[0]]}
    print(f"  small base model on {before['n']} held-out clips: accuracy {before['accuracy']:.3f}; confusions "
          f"{sorted(pairs.items(), key=lambda kv: -kv[1])[:5]}", flush=True)
    top = max(pairs.items(), key=lambda kv: kv[1]) if pairs else None
    if top is None or top[1] < MIN_CONFUSION:
        print(f"RESULT corrections: SKIPPED: no confusion large enough to measure (top {top}, need >= {MIN_CONFUSION})")
        return
    (a, b), _ = top
    tree = work / "corrections"
    if tree.exists():
        shutil.rmtree(tree)
    cfg = write_config(tree, retrain_enabled=False)
    seed_store(tree, base)
    stage = tree / "stage"
    stage.mkdir()
    piece = 30.0 / PIECES_PER_CLIP
    for f in pool[a]:
        for k in range(PIECES_PER_CLIP):
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{k * piece:.3f}", "-i", str(f),
                            "-t", f"{piece:.3f}", str(stage / f"{f.stem}-{k}.flac")], check=True)
    pieces = sorted(stage.iterdir())
    daemon = PlaceTree(tree, cfg)
    daemon.start()
    try:
        for p in pieces:
            p.rename(tree / "inbox" / p.name)
        deadline = time.monotonic() + 600
        while daemon.placed() + _count(tree / "review") + _count(tree / "quarantine") < len(pieces):
            if time.monotonic() > deadline:
                raise TimeoutError("the daemon did not place the pieces within 600 s")
            time.sleep(0.5)
    finally:
        daemon.stop()
    misplaced = sorted((tree / "library" / b).glob("*.flac")) if (tree / "library" / b).is_dir() else []
    where = {d.name: _count(d) for d in sorted((tree / "library").iterdir()) if d.is_dir()}
    print(f"  the daemon (small base model) placed {len(pieces)} {piece:.1f}-s pieces of {len(pool[a])} other {a} "
          f"clips: {where}, review {_count(tree / 'review')}", flush=True)
    corrections = misplaced[:N_CORRECTIONS]
    if len(corrections) < N_CORRECTIONS:  # top up from review, then other genre folders; said below
        others = sorted((tree / "review").glob("*.flac")) + sorted(
            p for d in (tree / "library").iterdir() if d.is_dir() and d.name not in (a, b) for p in d.glob("*.flac"))
        corrections += others[: N_CORRECTIONS - len(corrections)]
    (tree / "library" / a).mkdir(exist_ok=True)
    for p in corrections:
        p.rename(tree / "library" / a / p.name)  # the user's correction: out of B/ (or another genre) into A/
    n_from_b = sum(1 for p in corrections if p in misplaced)
    n_review = sum(1 for p in corrections if p.parent == tree / "review")
    print(f"  {len(corrections)} corrections moved into library/{a}/: {n_from_b} out of {b}/, {n_review} out of "
          f"review, {len(corrections) - n_from_b - n_review} out of other genre folders", flush=True)
    summary, dt = retrain(tree, cfg)
    after = evaluate(held, active_dir(tree), log)
    n_before, n_a = _confusions([before], a, b)
    n_after, _ = _confusions([after], a, b)
    ok = n_after <= n_before / 2
    print(f"RESULT corrections ({a} -> {b}): {'promoted' if summary.get('promoted') else 'NOT promoted'} "
          f"(retrain {dt:.0f} s, {len(corrections)} corrections, {n_from_b} of them {a} -> {b}); confusion "
          f"{n_before} -> {n_after} of {n_a} held-out {a} clips (target: falls by at least half: "
          f"{'met' if ok else 'MISSED'}); {a} recall {_recall(before, a):.2f} -> {_recall(after, a):.2f}; "
          f"accuracy over all {after['n']} held-out clips {before['accuracy']:.3f} -> {after['accuracy']:.3f}",
          flush=True)


def _count(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO) if folder.is_dir() else 0


def _recall(result: dict[str, Any], genre: str) -> float:
    g = result["genres"]
    row = result["confusion"][g.index(genre)]
    return row[g.index(genre)] / max(1, sum(row))


# --- 3. retrain time and placement under load --------------------------------------------------


def make_pieces(data: Path, library: Path, n: int, seed: int) -> int:
    import numpy as np
    import soundfile as sf

    rng = random.Random(seed)
    clips = [c for cs in clips_by_genre(data).values() for c in cs]
    base, extra = divmod(n, len(clips))
    made = 0
    for i, c in enumerate(clips):
        k = base + (1 if i < extra else 0)
        y, sr = sf.read(c, dtype="float32", always_2d=True)
        L = 10 * sr
        span = max(0, len(y) - L)
        out = library / c.parent.name
        out.mkdir(parents=True, exist_ok=True)
        for j in range(k):
            s = int(span * j / max(1, k - 1))
            gain = 10 ** (rng.uniform(-2.0, 2.0) / 20)
            piece = np.clip(y[s:s + L] * gain, -1.0, 1.0)
            sf.write(out / f"{c.stem}-p{j}.flac", piece, sr)
            made += 1
    return made


class PlaceTree:
    def __init__(self, root: Path, cfg: Path | None = None) -> None:
        self.root = root
        self.cfg = cfg or write_config(root, retrain_enabled=False, settle=1.0)
        self.inbox, self.library, self.state = root / "inbox", root / "library", root / "state"
        self.proc: subprocess.Popen[bytes] | None = None
        self.n = 0

    def start(self) -> None:
        print(f"  $ {show(['run', '--config', str(self.cfg)])}  (placement tree, retrain disabled)", flush=True)
        self.proc = subprocess.Popen([*cli(), "run", "--config", str(self.cfg)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "daemon.log", "ab"))
        deadline = time.monotonic() + 120
        while not (self.state / "daemon.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.root / "daemon.log").read_text()[-2000:])
            time.sleep(0.05)
        time.sleep(2.0)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def placed(self) -> int:
        return sum(1 for p in self.library.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO)

    def drop(self, clip: Path) -> float:
        before = self.placed()
        tmp = self.root / "x.flac"
        shutil.copyfile(clip, tmp)
        self.n += 1
        t0 = time.monotonic()
        tmp.rename(self.inbox / f"drop {self.n}.flac")
        while self.placed() <= before:
            if time.monotonic() - t0 > 120:
                raise TimeoutError("a dropped file was not placed within 120 s")
            time.sleep(0.02)
        return time.monotonic() - t0


def _cache_files(state: Path) -> int:
    d = state / "features"
    return sum(1 for p in d.rglob("*") if p.is_file()) if d.is_dir() else 0


def part_time(data: Path, work: Path, seed: int) -> None:
    print("== 3. retrain time on 1,000 labels, and placement while it runs", flush=True)
    tree = work / "time"
    if tree.exists():
        shutil.rmtree(tree)
    cfg = write_config(tree)
    n = make_pieces(data, tree / "library", N_TIME_LABELS, seed)
    print(f"  {n} label files (10 s pieces, gain +-2 dB) in {tree / 'library'}; model: the shipped default", flush=True)
    s1, t1 = retrain(tree, cfg)
    c1 = _cache_files(tree / "state")
    print(f"  first retrain (fills the feature cache): {t1:.0f} s; feature cache files {c1}", flush=True)

    place = PlaceTree(work / "place")
    clip = sorted(data.glob("*/*.flac"))[0]
    place.start()
    try:
        idle = []
        for _ in range(4):
            idle.append(place.drop(clip))
            time.sleep(1.0)
        print(f"  placement, no retrain running: {', '.join(f'{t:.2f}' for t in idle)} s", flush=True)
        args = ["retrain", "--config", str(cfg)]
        print(f"  $ {show(args)}  (timed; drops into the placement tree meanwhile)", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen([*cli(), *args], stdout=subprocess.PIPE, stderr=open(tree / "retrain.log", "ab"))
        busy: list[tuple[float, str]] = []
        time.sleep(3.0)
        while proc.poll() is None:
            step = _step(tree / "state")
            dt = place.drop(clip)
            if proc.poll() is None:
                busy.append((dt, step))
            time.sleep(2.0 if len(busy) < 6 else 15.0)
        out = proc.stdout.read().decode() if proc.stdout else ""
        t2 = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"second retrain exited {proc.returncode}:\n{(tree / 'retrain.log').read_text()[-3000:]}")
        s2 = json.loads(out)
        c2 = _cache_files(tree / "state")
        print(f"  second retrain: promoted={s2.get('promoted')} ({s2.get('reason')}); feature cache files "
              f"{c1} -> {c2}{' (it decoded again: not all features came from the cache)' if c2 > c1 else ''}")
        for dt, step in busy:
            print(f"    drop during retrain ({step}): {dt:.2f} s")
    finally:
        place.stop()
    ok = t2 <= 300
    mi = statistics.median(idle)
    mb = statistics.median([d for d, _ in busy]) if busy else float("nan")
    ratio = mb / mi if busy else float("nan")
    print(f"RESULT retrain time: {n} labelled clips, cached features: {t2:.0f} s ({t2 / 60:.1f} min; target <= 5 min "
          f"on 2 cores: {'met' if ok else 'MISSED'}); first run filling the cache {t1:.0f} s", flush=True)
    print(f"RESULT placement while retraining: median {mb:.2f} s over {len(busy)} drops (max "
          f"{max((d for d, _ in busy), default=float('nan')):.2f}) vs {mi:.2f} s idle over {len(idle)} drops: "
          f"x{ratio:.2f} (target <= x2: {'met' if ratio <= 2 else 'MISSED'}; settle_seconds 1)", flush=True)


def _step(state: Path) -> str:
    try:
        d = json.loads((state / "retrain.json").read_text())
        return str(d.get("step", d.get("state", "?")))
    except (OSError, ValueError):
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--parts", default="newgenre,corrections,time")
    ap.add_argument("--work", type=Path, help="keep the working tree here (reuses a base model found there)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - {"newgenre", "corrections", "time"}
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    work = args.work or Path(tempfile.mkdtemp(prefix="genre-daemon-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}", flush=True)
    status = 0
    try:
        for name, fn in (("newgenre", part_newgenre), ("corrections", part_corrections), ("time", part_time)):
            if name in parts:
                try:
                    fn(args.data, work, args.seed)
                except Exception as exc:  # report and go on with the next part
                    status = 1
                    print(f"RESULT {name}: FAILED: {exc}", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
