"""How fast the review page answers with a thousand items waiting in review.

Builds a real tree (``tests/web/test_web.py``'s ``WebTree``): a real SQLite journal with
``--songs`` loose songs and ``--albums`` albums (``--tracks`` each) in review, every file a real
small FLAC carrying real tags written by mutagen (title, artist, album, date, track number), every
album folder with a real ``cover.jpg`` and every tenth loose song with an embedded picture, each
recorded and moved the way the daemon does; plus ``--placed`` songs placed in genre folders. It
serves the real app with the real uvicorn on a loopback port and measures, over ``--requests``
sequential requests each after a warm-up: ``GET /`` (the review page, first of its pages),
``GET /api/review`` (the whole list, the API's default), ``GET /api/review?limit=50`` (one page),
``GET /recent``, and the reference ``GET /assets/app.css`` (a static answer through the same
server, guard and connection set-up) measured in the same run. Prints median and p95 in ms,
each median's ratio to the reference, and whether the medians stay within the 100 ms target.

    .venv/bin/python benchmarks/bench_web.py [--songs 900] [--albums 100] [--tracks 3] [--placed 200]
        [--requests 50] [--work DIR] [--out benchmarks/results-web.txt]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "web")]

import mutagen.flac  # noqa: E402
from PIL import Image  # noqa: E402
from test_web import Client, WebTree  # noqa: E402

from genre_daemon.web import start_in_thread  # noqa: E402

TARGET_MS = 100.0
REFERENCE = "/assets/app.css"
URLS = ("/", "/api/review", "/api/review?limit=50", "/recent", REFERENCE)


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def _jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(out, "JPEG")
    return out.getvalue()


def build(root: Path, songs: int, albums: int, tracks: int, placed: int) -> WebTree:
    """The tree: tagged loose songs and albums with covers in review, songs placed."""
    tree = WebTree(root)
    for i in range(songs):
        fid = tree.unsure(f"review song {i:05d}.flac", seconds=0.2, sr=8000,
                          tags={"title": f"Song {i}", "artist": f"Artist {i % 37}", "album": f"Album {i % 11}",
                                "date": str(1960 + i % 60), "tracknumber": str(1 + i % 12)})
        if i % 10 == 0:
            audio = mutagen.flac.FLAC(tree.journal.get(fid).destination)  # type: ignore[union-attr]
            pic = mutagen.flac.Picture()
            pic.type, pic.mime, pic.data = 3, "image/jpeg", _jpeg((i % 255, 80, 80))
            audio.add_picture(pic)
            audio.save()
        # (a tag write after filing changes the file in place: same inode, still the row's file)
    for a in range(albums):
        tree.album(f"Album {a:04d}", [f"{t + 1:02d} Track.flac" for t in range(tracks)],
                   tags={"album": f"Album {a}", "albumartist": f"Band {a % 23}", "artist": f"Band {a % 23}",
                         "date": str(1970 + a % 50)}, others={"cover.jpg": _jpeg((80, a % 255, 80))})
    for i in range(placed):
        tree.sure(f"placed song {i:05d}.flac", "rock", seconds=0.2, sr=8000,
                  tags={"title": f"Placed {i}", "artist": f"Artist {i % 19}"})
    return tree


def measure(client: Client, path: str, requests: int) -> tuple[list[float], int]:
    """Times (ms) of ``requests`` sequential GETs of ``path`` after a warm-up, and the answer's size."""
    for _ in range(5):  # warm-up: templates compiled, history and tags read once into the caches
        assert client.get(path).status == 200
    times: list[float] = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        reply = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert reply.status == 200, reply
        size = len(reply.body)
    return times, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=900, help="loose songs waiting in review")
    ap.add_argument("--albums", type=int, default=100, help="albums waiting in review")
    ap.add_argument("--tracks", type=int, default=3, help="tracks per album")
    ap.add_argument("--placed", type=int, default=200, help="songs already placed in genre folders (Recent)")
    ap.add_argument("--requests", type=int, default=50, help="timed requests per URL")
    ap.add_argument("--work", type=Path, default=None, help="build the tree here (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    args = ap.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tree = build(work / f"tree-{int(time.time())}", args.songs, args.albums, args.tracks, args.placed)
    lines = [f"tree: {args.songs} loose songs + {args.albums} albums x {args.tracks} tracks in review "
             f"({args.songs + args.albums} items), {args.placed} placed; built in {time.perf_counter() - t0:.1f} s"]
    print(lines[0], flush=True)

    server = start_in_thread(tree.settings)
    client = Client.of(server)
    try:
        start = time.perf_counter()
        items = client.get("/api/review").json()  # cold: every file's tags read once into the cache
        lines.append(f"GET /api/review, first (cold cache, {server.data._media.reads} files' tags read): "
                     f"{(time.perf_counter() - start) * 1000:.0f} ms")
        print(lines[-1], flush=True)
        assert len(items) == args.songs + args.albums, len(items)
        assert sum(1 for i in items if i["cover"]) == args.albums + (args.songs + 9) // 10
        results = {path: measure(client, path, args.requests) for path in URLS}
        ref = statistics.median(results[REFERENCE][0])
        for path, (times, size) in results.items():
            med = statistics.median(times)
            lines.append(f"GET {path:<22} median {med:6.1f} ms  p95 {_p95(times):6.1f} ms  ({size:>7} bytes)  "
                         f"median/reference {med / ref:5.1f}x")
            print(lines[-1], flush=True)
        worst = max(statistics.median(results[p][0]) for p in URLS if p != REFERENCE)
        lines.append(f"target: median <= {TARGET_MS:.0f} ms for every page; worst median {worst:.1f} ms: "
                     f"{'met' if worst <= TARGET_MS else 'MISSED'}; tag reads from files: {server.data._media.reads}")
        print(lines[-1])
        if args.out is not None:
            command = "nice -n 10 .venv/bin/python benchmarks/bench_web.py " + " ".join(argv or sys.argv[1:])
            args.out.write_text("\n".join([f"$ {command.strip()}", *lines]) + "\n")
        return 0 if worst <= TARGET_MS else 1
    finally:
        server.stop()
        tree.close()


if __name__ == "__main__":
    sys.exit(main())
