"""The engines on this machine, every ratio from one run (docs/scale.md reads its output).

    python benchmarks/bench_engines.py [--data ../shared/data/gtzan] [--files 150] [--sweep 40]

1. One ``genre-daemon classify --json`` process over ``--files`` real clips (the baseline:
   what a user runs today), then the local engine with 2 workers on the same files: wall time
   from start (process / pool start and model loads included) to the last result, time to the
   first result, and that the predictions are the same. Target: local/classify >= 1.7x.
2. Local chunk size (files per task) 1 vs 4 on ``--sweep`` files.
3. Ray on the same 2 cores: a 2-node cluster on loopback (``ray start``, 1 CPU each), the Ray
   engine with 2 actors: wall, first result, identical predictions, and each actor's memory
   (its RSS after every batch, and PSS sampled while it runs): the model is loaded once per
   actor, not per batch. Target: ray/local >= 0.8x. Then batch size 1/2/4/8 on ``--sweep`` files.
4. Per-track costs for the 1,000,000-track projection: decode alone vs the whole classify on
   30-s clips and on 4-minute tracks (8 clips joined, FLAC and MP3: a long track is read as
   one short span per patch and, for a model with AudioSet's prior, one 10 s window each, all
   through one opening of the file), bytes per track, and the filing side alone (``import``'s
   journal and mover with classification free: an engine that answers at once).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genre_daemon.engines import Result, open_engine  # noqa: E402
from genre_daemon.engines.on_ray import RAY_ENVIRONMENT  # noqa: E402
from genre_daemon.resources import default_model_dir  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
EXE = Path(sys.executable).with_name("genre-daemon")


def clips(data: Path, n: int) -> list[str]:
    files = sorted(str(p) for p in data.glob("*/*.flac"))
    return [files[i % len(files)] for i in range(n)] if n > len(files) else files[:: max(1, len(files) // n)][:n]


def others() -> str:
    """CPU use of processes this run did not start (the machine may be shared), over 1 s."""
    mine = {os.getpid(), *(int(p) for p in subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True,
                                                          text=True).stdout.split())}

    def ticks() -> dict[int, int]:
        out = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) not in mine:
                try:
                    f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                    out[int(d.name)] = int(f[11]) + int(f[12])
                except (OSError, IndexError):
                    pass
        return out

    a = ticks()
    time.sleep(1.0)
    b = ticks()
    busy = sum(b[p] - a.get(p, b[p]) for p in b) / os.sysconf("SC_CLK_TCK")
    return f"load {os.getloadavg()[0]:.2f}, other processes using {busy:.2f} cores"


def busy_cores_s() -> float:
    """CPU seconds the whole machine has been busy (every process, /proc/stat), since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def wait_quiet(limit: float) -> str:
    """Wait (up to ``limit`` s) until the rest of the machine uses under 0.2 cores for 5 s: the
    ratios compare runs that each should have the 2 cores to themselves."""
    t0 = time.perf_counter()
    calm = 0
    while calm < 5 and time.perf_counter() - t0 < limit:
        b0 = busy_cores_s()
        time.sleep(1.0)
        calm = calm + 1 if busy_cores_s() - b0 < 0.2 else 0
    return f"waited {time.perf_counter() - t0:.0f} s for a quiet machine ({'quiet' if calm >= 5 else 'still busy'})"


def same(a: dict[str, dict], b: dict[str, dict]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def as_json(results: list[Result]) -> dict[str, dict]:
    return {r.path: r.prediction.to_json() if r.prediction else {"path": r.path, "error": r.error} for r in results}


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the classify process, pool workers)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(engine_factory, paths: list[str]) -> tuple[float, float, list[Result], object]:
    """(wall s, first result s, results, engine) with the engine's start-up inside the wall time."""
    t0 = time.perf_counter()
    first = None
    with engine_factory() as engine:
        results = []
        for r in engine.classify(paths):
            first = first if first is not None else time.perf_counter() - t0
            results.append(r)
    return time.perf_counter() - t0, first or 0.0, results, engine


def baseline(paths: list[str]) -> tuple[float, float, dict[str, dict]]:
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "genre_daemon.cli"]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, "classify", "--json", *paths], stdout=subprocess.PIPE, text=True)
    first, out = None, {}
    assert proc.stdout is not None
    for line in proc.stdout:
        first = first if first is not None else time.perf_counter() - t0
        d = json.loads(line)
        d.pop("tags", None)
        out[d["path"]] = d
    proc.wait()
    return time.perf_counter() - t0, first or 0.0, out


class Cluster:
    """A head and a second node on loopback, 1 CPU each (as the tests start it)."""

    def __init__(self) -> None:
        self.temp = tempfile.mkdtemp(prefix="gd-ray-")
        self.env = {**os.environ, **RAY_ENVIRONMENT}
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
            self.address = f"127.0.0.2:{s.getsockname()[1]}"

    def __enter__(self) -> Cluster:
        common = ["--num-cpus=1", "--object-store-memory=300000000", "--disable-usage-stats", f"--temp-dir={self.temp}"]
        t0 = time.perf_counter()
        subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.2", f"--port={self.address.split(':')[1]}",
                        "--include-dashboard=false", *common], env=self.env, check=True, capture_output=True)
        subprocess.run([RAY, "start", f"--address={self.address}", "--node-ip-address=127.0.0.3", *common],
                       env=self.env, check=True, capture_output=True)
        self.start_s = time.perf_counter() - t0
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True)
        shutil.rmtree(self.temp, ignore_errors=True)


class PssSampler(threading.Thread):
    """The largest PSS (MiB) seen per actor process while the run goes on."""

    def __init__(self, engine) -> None:
        super().__init__(daemon=True)
        self.engine, self.peak, self.cpu, self.stop = engine, {}, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pid in list(self.engine.actors):
                try:
                    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.cpu[pid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
                pss = next(int(x.split()[1]) for x in text.splitlines() if x.startswith("Pss:")) / 1024
                self.peak[pid] = max(self.peak.get(pid, 0.0), pss)


def read_bytes() -> int:
    """Bytes this process and its reaped children (ffmpeg, ffprobe) have read, from /proc."""
    text = Path("/proc/self/io").read_text()
    return next(int(x.split()[1]) for x in text.splitlines() if x.startswith("rchar:"))


def decode_share(paths: list[str]) -> tuple[float, float, float]:
    """Medians per file: seconds to decode only (probe + what classify reads: musicnn's spans and,
    with AudioSet's prior, the tagger's windows, in one opening), seconds of a whole classify,
    and the bytes that classify read."""
    from genre_daemon.audio import decode as audio
    from genre_daemon.engines.local import single_threaded
    from genre_daemon.model.inference import Classifier

    single_threaded()
    c = Classifier.from_dir(default_model_dir())
    c.warm_up()
    dec, whole, nbytes = [], [], []
    for p in paths:
        t0 = time.perf_counter()
        info = audio.probe(p)
        audio.load_spans(p, c.plan_reads(info.duration)[1])
        t1, b0 = time.perf_counter(), read_bytes()
        c.classify(p)
        dec.append(t1 - t0)
        whole.append(time.perf_counter() - t1)
        nbytes.append(read_bytes() - b0)
    return statistics.median(dec), statistics.median(whole), statistics.median(nbytes)


def long_tracks(paths: list[str], into: Path) -> list[str]:
    """A 4-minute FLAC and MP3: 8 clips joined by ffmpeg."""
    listing = into / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in paths[:8]))
    out = []
    for ext, codec in (("flac", ["-c:a", "flac"]), ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"])):
        dst = into / f"long.{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), *codec, str(dst)],
                       check=True)
        out.append(str(dst))
    return out


class Instant:
    """An engine that answers at once from results measured before: the filing side alone."""

    def __init__(self, by_name: dict[str, Result], version: str) -> None:
        self.by_name, self.model_version = by_name, version

    def classify(self, paths):
        from dataclasses import replace

        for p in paths:
            r = self.by_name[Path(p).name.split(" ", 1)[1]]
            yield Result(str(p), replace(r.prediction, path=str(p)) if r.prediction else None, r.error, r.incomplete)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def filing_rate(results: list[Result], version: str, n: int, root: Path) -> float:
    """Files per second through ``import``'s journal and mover, classification free."""
    from genre_daemon.config import load_settings
    from genre_daemon.importer.runner import Importer

    src = root / "collection"
    src.mkdir(parents=True)
    by_name = {Path(r.path).name: r for r in results}
    names = sorted(by_name)
    for i in range(n):
        shutil.copyfile(next(r.path for r in results if Path(r.path).name == names[i % len(names)]),
                        src / f"{i:05d} {names[i % len(names)]}")
    cfg = root / "config.yaml"
    cfg.write_text("".join(f"{k}: {json.dumps(str(root / v))}\n" for k, v in {
        "inbox": "inbox", "library": "library", "review_dir": "library/_review", "quarantine_dir": "quarantine",
        "state_dir": "state"}.items()))
    for folder in ("inbox", "library"):
        (root / folder).mkdir()
    t0 = time.perf_counter()
    counters = Importer(load_settings(cfg), src, lambda: Instant(by_name, version), progress=None).run()
    wall = time.perf_counter() - t0
    assert counters.placed + counters.review + counters.quarantined == n, counters
    return n / wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--sweep", type=int, default=40)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--wait-quiet", type=float, default=300.0, metavar="S",
                    help="before each timed comparison, wait up to S s for the rest of the machine to go idle")
    args = ap.parse_args()
    paths, sweep = clips(args.data, args.files), clips(args.data, args.sweep)
    model = default_model_dir()
    version = json.loads((model / "model.json").read_text())["version"]
    print(f"# {len(paths)} real clips from {args.data}; model {version}; {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; at start: {others()}", flush=True)

    print(wait_quiet(args.wait_quiet), flush=True)
    c0, m0 = children_cpu(), busy_cores_s()
    wall1, first1, ref = baseline(paths)
    c1, m1 = children_cpu(), busy_cores_s()
    print(f"classify (one process, --json): {wall1:.1f} s, {len(paths) / wall1:.2f} files/s, first result {first1:.1f} s; "
          f"CPU {c1 - c0:.0f} s = {(c1 - c0) / len(paths):.2f} s/file, cores it got {(c1 - c0) / wall1:.2f}, "
          f"the rest of the machine {(m1 - m0 - (c1 - c0)) / wall1:.2f}", flush=True)
    print(wait_quiet(args.wait_quiet), flush=True)
    c1, m1 = children_cpu(), busy_cores_s()
    wall2, first2, res2, _ = timed(lambda: open_engine("local", model, workers=2), paths)
    c2, m2 = children_cpu(), busy_cores_s()
    ok2 = same(as_json(res2), ref)
    print(f"local engine, 2 workers: {wall2:.1f} s, {len(paths) / wall2:.2f} files/s, first result {first2:.1f} s, "
          f"predictions identical: {ok2}; CPU {c2 - c1:.0f} s = {(c2 - c1) / len(paths):.2f} s/file, "
          f"cores it got {(c2 - c1) / wall2:.2f}, the rest of the machine {(m2 - m1 - (c2 - c1)) / wall2:.2f}", flush=True)
    print(f"RATIO local(2 workers)/classify = {wall1 / wall2:.2f}x (target >= 1.7x)  [{others()}]", flush=True)

    from genre_daemon.engines.local import LocalEngine

    for chunk in (1, 4):
        w, f, _, _ = timed(lambda: LocalEngine(model, 2, chunksize=chunk), sweep)
        print(f"  local chunksize {chunk}: {len(sweep)} files {w:.1f} s, first result {f:.1f} s", flush=True)

    if not args.skip_ray and Path(RAY).exists():
        with Cluster() as cluster:
            print(f"ray cluster (2 nodes x 1 CPU, loopback) up in {cluster.start_s:.1f} s", flush=True)
            sampler: list[PssSampler] = []

            def ray_engine(bs: int | None = None, sample: bool = False):
                e = open_engine("ray", model, workers=2, ray_address=cluster.address, batch_size=bs)
                if sample:
                    sampler.append(PssSampler(e))
                    sampler[0].start()
                return e

            print(wait_quiet(args.wait_quiet), flush=True)
            m2 = busy_cores_s()
            wall3, first3, res3, eng = timed(lambda: ray_engine(sample=True), paths)
            m3 = busy_cores_s()
            sampler[0].stop.set()
            ok3 = same(as_json(res3), ref)
            cpu3 = sum(sampler[0].cpu.values())
            print(f"ray engine, 2 actors, batch {eng.batch_size}: {wall3:.1f} s, {len(paths) / wall3:.2f} files/s, "
                  f"first result {first3:.1f} s, predictions identical: {ok3}; actors' CPU {cpu3:.0f} s = "
                  f"{cpu3 / len(paths):.2f} s/file, cores they got {cpu3 / wall3:.2f}, the whole machine busy "
                  f"{(m3 - m2) / wall3:.2f} cores (Ray's own processes and everyone else)", flush=True)
            print(f"RATIO ray/local = {wall2 / wall3:.2f}x (target >= 0.8x)  [{others()}]", flush=True)
            for pid, rss in sorted(eng.actors.items()):
                print(f"  actor {pid}: {len(rss)} batches, RSS after first {rss[0] / 1024:.0f} MiB, median "
                      f"{statistics.median(rss) / 1024:.0f} MiB, last {rss[-1] / 1024:.0f} MiB, max {max(rss) / 1024:.0f} MiB; "
                      f"peak PSS {sampler[0].peak.get(pid, 0):.0f} MiB", flush=True)
            for bs in (1, 2, 4, 8):
                w, f, _, _ = timed(lambda: ray_engine(bs), sweep)
                print(f"  ray batch {bs}: {len(sweep)} files {w:.1f} s, first result {f:.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        dec, whole, nb = decode_share(paths[:20])
        size = statistics.mean(os.path.getsize(p) for p in paths)
        print(f"30-s clip: classify {whole * 1000:.0f} ms, of which decode {dec * 1000:.0f} ms ({dec / whole:.0%}); "
              f"mean file {size / 1e6:.2f} MB, read by a classify {nb / 1e6:.2f} MB", flush=True)
        for p in long_tracks(paths, Path(tmp)):
            d, w, nb = decode_share([p] * 3)
            print(f"4-min {Path(p).suffix[1:]}: classify {w * 1000:.0f} ms, of which decode {d * 1000:.0f} ms "
                  f"({d / w:.0%}); file {os.path.getsize(p) / 1e6:.1f} MB, read by a classify {nb / 1e6:.2f} MB",
                  flush=True)
        rate = filing_rate(res2, res2[0].prediction.model_version if res2[0].prediction else "", len(paths),
                           Path(tmp) / "filing")
        print(f"filing alone (import's journal + mover, classification free): {rate:.1f} files/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
