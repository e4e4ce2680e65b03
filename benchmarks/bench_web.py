"""How fast the review page answers with a long review queue.

Builds a real tree (``tests/web/test_web.py``'s ``WebTree``): a real SQLite journal with ``--songs``
review rows (each one a real WAV file recorded and moved the way the daemon does) and
``--placed`` songs placed in genre folders, starts the real server on a loopback port, and
measures ``GET /`` (the review page, first of its pages) and ``GET /api/review`` (the whole
list as JSON) over ``--requests`` sequential requests each, after a warm-up. Prints median and
p95 against the 100 ms target.

    .venv/bin/python benchmarks/bench_web.py [--songs 1000] [--placed 0] [--requests 50] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "web")]

from test_web import Client, WebTree  # noqa: E402

from genre_daemon.web import start_in_thread  # noqa: E402

TARGET_MS = 100.0


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=1000, help="songs waiting in review")
    ap.add_argument("--placed", type=int, default=0, help="songs already placed in genre folders (journal history)")
    ap.add_argument("--requests", type=int, default=50, help="timed requests per URL")
    ap.add_argument("--work", type=Path, default=None, help="build the tree here (default: a temporary folder)")
    args = ap.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    tree = WebTree(work / f"tree-{int(time.time())}")
    t0 = time.perf_counter()
    for i in range(args.songs):
        tree.unsure(f"review song {i:05d}.wav", seconds=0.2, sr=8000)
    for i in range(args.placed):
        tree.sure(f"placed song {i:05d}.wav", "rock", seconds=0.2, sr=8000)
    built = time.perf_counter() - t0
    print(f"tree: {args.songs} songs in review, {args.placed} placed, built in {built:.1f} s at {tree.root}")

    server = start_in_thread(tree.settings)
    client = Client.of(server)
    try:
        results: dict[str, list[float]] = {}
        for path in ("/", "/api/review"):
            for _ in range(5):  # warm-up: templates compiled, history read once
                assert client.get(path).status == 200
            times: list[float] = []
            size = 0
            for _ in range(args.requests):
                start = time.perf_counter()
                reply = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert reply.status == 200, reply
                size = len(reply.body)
            results[path] = times
            med, p95 = statistics.median(times), _p95(times)
            print(f"GET {path:<12} median {med:6.1f} ms  p95 {p95:6.1f} ms  max {max(times):6.1f} ms  "
                  f"({size} bytes)  median/target {med / TARGET_MS:.2f}  p95/target {_p95(times) / TARGET_MS:.2f}")
        n_items = len(client.get("/api/review").json())
        assert n_items == args.songs, n_items
        worst = max(_p95(t) for t in results.values())
        print(f"target: <= {TARGET_MS:.0f} ms; worst p95 {worst:.1f} ms: {'met' if worst <= TARGET_MS else 'MISSED'}")
        return 0 if worst <= TARGET_MS else 1
    finally:
        server.stop()
        tree.close()


if __name__ == "__main__":
    sys.exit(main())
