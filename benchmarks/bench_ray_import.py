"""``genre-daemon import --engine ray`` on a real multi-process Ray cluster on this machine.

    python benchmarks/bench_ray_import.py [--data ../shared/data/gtzan] [--files 2000] [--kill-at 0.4]

A head and a second node are started with ``ray start`` as separate processes (1 CPU each, on
loopback addresses). ``--files`` real clips (the shared clips, cycled as copies with distinct
names) are imported through the cluster; when ``--kill-at`` of them are placed, the second
node's raylet is SIGKILLed. Checked at the end:

* the job finished (exit 0) and the dead node's batches were retried (every file placed);
* every file placed exactly once: the content hashes of the library equal the input set;
* the predictions are identical to local ``classify``: each placed file's recorded genre and
  scores (the journal's history) equal ``genre-daemon classify --json`` of its source clip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AUDIO = {".flac", ".mp3", ".wav", ".ogg", ".m4a", ".au"}
HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"  # 127.0.0.1 is replaced by the eth0 address


def exe(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def raylet_pid(node_id: str) -> int:
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    for line in ps.splitlines():
        if "raylet" in line and f"--node_id={node_id}" in line:
            return int(line.split()[0])
    raise LookupError(node_id)


def second_node(address: str, env: dict[str, str]) -> str:
    code = ("import ray, json; ray.init(address=%r, logging_level='error', log_to_driver=False); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive'] and n['NodeManagerAddress'] == %r]))"
            % (address, NODE_IP))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])[0]


def placed(library: Path) -> list[Path]:
    return [p for p in library.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO]


def main() -> int:
    from genre_daemon.engines.on_ray import RAY_ENVIRONMENT

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--kill-at", type=float, default=0.4)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: absent; pass --data DIR", file=sys.stderr)
        return 2
    clips = sorted(args.data.glob("*/*.flac"))
    work = Path(tempfile.mkdtemp(prefix="gd-rayimp-"))
    env = {**os.environ, **RAY_ENVIRONMENT, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    address = f"{HEAD_IP}:{free_port(HEAD_IP)}"
    common = ["--num-cpus=1", "--object-store-memory=500000000", "--disable-usage-stats", f"--temp-dir={work}/ray"]
    ok = False
    try:
        src = work / "collection"
        src.mkdir()
        origin: dict[str, Path] = {}
        for i in range(args.files):
            dst = src / f"{i:05d} {clips[i % len(clips)].name}"
            shutil.copyfile(clips[i % len(clips)], dst)
            origin[dst.name] = clips[i % len(clips)]
        inputs = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir())
        cfg = work / "config.yaml"
        cfg.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in {
            "inbox": str(work / "inbox"), "library": str(work / "library"), "review_dir": str(work / "library/_review"),
            "quarantine_dir": str(work / "quarantine"), "state_dir": str(work / "state")}.items()))
        t0 = time.monotonic()
        subprocess.run([exe("ray"), "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={address.split(':')[1]}",
                        "--include-dashboard=false", *common], env=env, check=True, capture_output=True, timeout=180)
        subprocess.run([exe("ray"), "start", f"--address={address}", f"--node-ip-address={NODE_IP}", *common],
                       env=env, check=True, capture_output=True, timeout=180)
        node = second_node(address, env)
        print(f"cluster: head {HEAD_IP} + node {NODE_IP} ({node[:12]}), started in {time.monotonic() - t0:.1f} s")
        t1 = time.monotonic()
        job = subprocess.Popen([exe("genre-daemon"), "import", str(src), "--config", str(cfg), "--engine", "ray",
                                "--ray-address", address], env=env, stdout=subprocess.PIPE,
                               stderr=open(work / "import.log", "wb"), text=True)
        killed_at = None
        while job.poll() is None:
            if killed_at is None and len(placed(work / "library")) >= args.kill_at * args.files:
                os.kill(raylet_pid(node), signal.SIGKILL)
                killed_at = len(placed(work / "library"))
                print(f"SIGKILL of the second node's raylet after {killed_at} files placed "
                      f"({time.monotonic() - t1:.0f} s in)")
            time.sleep(0.5)
        elapsed = time.monotonic() - t1
        out = job.stdout.read() if job.stdout else ""
        files = placed(work / "library")
        library = Counter(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)
        # the predictions the import recorded, against local classify of each distinct source clip
        hist = subprocess.run([exe("genre-daemon"), "history", "--json", "--config", str(cfg)],
                              capture_output=True, text=True, check=True).stdout
        recorded = {Path(h["source"]).name: h for h in map(json.loads, hist.splitlines())}
        local_out = subprocess.run([exe("genre-daemon"), "classify", "--json", *map(str, clips)],
                                   capture_output=True, text=True).stdout
        local = {d["path"]: d for d in map(json.loads, local_out.splitlines())}
        def rounded(scores: dict[str, float]) -> dict[str, float]:  # classify --json gives 4 decimals
            return {g: round(p, 4) for g, p in scores.items()}

        differ = [name for name, h in recorded.items()
                  if (h.get("genre"), rounded(h.get("scores") or {})) != (local[str(origin[name])]["genre"],
                                                                          local[str(origin[name])]["scores"])]
        ok = (job.returncode == 0 and killed_at is not None and library == inputs and len(files) == args.files
              and not differ and len(recorded) == args.files)
        print(f"import --engine ray: {args.files} real clips in {elapsed:.0f} s = {args.files / elapsed:.2f} files/s; "
              f"{out.strip()}")
        print(f"  library content hashes equal the input set (as a multiset): {library == inputs} "
              f"({len(files)} files; the inputs are {len(set(inputs))} distinct clips, cycled)")
        print(f"  predictions identical to local classify: {len(recorded) - len(differ)}/{len(recorded)}")
        print(f"  -> {'OK' if ok else 'FAILED'}")
    finally:
        subprocess.run([exe("ray"), "stop", "--force"], env=env, capture_output=True, timeout=180)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
