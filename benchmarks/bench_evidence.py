"""The file's own genre tag and its artist's songs as evidence beside the sound, measured.

    python benchmarks/bench_evidence.py [--data ../shared/data] [--cache /work/cache/evidence-scores.json]
                                        [--seed 0] [--min-confidence 0.4] [--out FILE]

Every clip of ``gtzan`` (150) and ``emotify-dev`` (60; measuring only, never trained on) is
classified once with the shipped model (scores cached in ``--cache``, keyed by the model's
version), then the filing is simulated through the real pure functions
(:func:`genre_daemon.filer.evidence.weigh`) with ``min_confidence`` as the daemon has it. Each
outcome is ``right`` (the genre folder is the clip's genre), ``review`` or ``wrong``; the
reference in the same run is the sound alone (``use_existing_genre: false``, no artist).

1. Tags: each clip tagged with its right genre, a wrong one (a random other genre of the model,
   fixed seed) or none; for each, the sound alone against ``use_existing_genre: true`` with each
   rule ``TAG_RATIO`` of a grid (0: the tag always wins; 1: only a tag the sound's top agrees
   with counts). The chosen rule minimises ``wrong * 2 + review`` summed over the three cases
   (a misfiled song costs the user more than a look in review).
2. The artist's lean: the shared data names **no artists** (``gtzan/splits.csv`` gives only
   each clip's part of the artist-filtered split), so artists are SYNTHETIC: runs of 4
   consecutive clips of one genre (GTZAN's consecutive clips often share an artist; emotify-dev
   numbers are taken the same way). Per artist, the first half is "in the library", the second
   half measured. ``same``: the known songs carry the artist's genre (filed and kept, or put
   there by the user); ``changed``: they carry another genre (an artist who changed genre; the
   measured songs keep their own). Gain: measured songs right with the lean and not without;
   harm: right without and not with. Grid over ``LEAN_MAX`` and ``LEAN_HALF``; the chosen pair
   maximises (gain on ``same``) - (harm on ``changed``) over both collections, the
   changers counted as often as the faithful (a harsh assumption: most artists stay).

GTZAN's 150 clips are the shipped model's training clips: its sound is near perfect there (an
optimistic, in-sample figure); emotify-dev is another collection the model never saw (0.38 on
its own), the honest case for what evidence adds when the sound is unsure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genre_daemon.filer import evidence  # noqa: E402
from genre_daemon.resources import default_model_dir  # noqa: E402

COLLECTIONS = ("gtzan", "emotify-dev")
RATIOS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
LEAN_MOST = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
LEAN_HALVES = (1.0, 2.0, 4.0)
ARTIST_SIZE = 4


def classify_all(data: Path, cache: Path) -> tuple[str, dict[str, dict[str, object]]]:
    """{collection/genre/file: {"genre": truth, "scores": {...}}} for every clip, cached."""
    from genre_daemon.model.inference import Classifier

    model_json = json.loads((default_model_dir() / "model.json").read_text())
    version = str(model_json.get("version"))
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("model") == version:
            return version, stored["clips"]
    clf = Classifier.from_dir(default_model_dir())
    clips: dict[str, dict[str, object]] = {}
    for collection in COLLECTIONS:
        for path in sorted((data / collection).glob("*/*")):
            if path.suffix.lower() not in (".flac", ".mp3"):
                continue
            pred = clf.classify(path)
            clips[f"{collection}/{path.parent.name}/{path.name}"] = {"genre": path.parent.name, "scores": pred.scores}
            print(f"  classified {collection}/{path.parent.name}/{path.name}: {pred.genre} {pred.confidence:.2f}",
                  file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"model": version, "clips": clips}))
    return version, clips


def outcome(w: evidence.Weighed, truth: str, min_confidence: float) -> str:
    """right | review | wrong, as the one decision files it."""
    if w.review is not None or w.genre is None or (not w.vouched and not w.confidence >= min_confidence):
        return "review"
    return "right" if w.genre == truth else "wrong"


def tally(outcomes: list[str]) -> dict[str, float]:
    n = len(outcomes) or 1
    return {k: outcomes.count(k) / n for k in ("right", "review", "wrong")}


def fmt(t: Mapping[str, float]) -> str:
    return f"right {t['right']:.3f}  review {t['review']:.3f}  wrong {t['wrong']:.3f}"


def tag_part(clips: dict[str, dict[str, object]], genres: list[str], min_conf: float, seed: int,
             say: Callable[[str], None]) -> float:
    rng = random.Random(seed)
    wrong_tag = {k: rng.choice([g for g in genres if g != c["genre"]]) for k, c in sorted(clips.items())}
    cases = {"right tag": lambda k, c: str(c["genre"]), "wrong tag": lambda k, c: wrong_tag[k],
             "no tag": lambda k, c: None}
    cost: dict[float, float] = {r: 0.0 for r in RATIOS}
    for collection in COLLECTIONS:
        mine = {k: c for k, c in clips.items() if k.startswith(collection + "/")}
        say(f"\n{collection} ({len(mine)} clips), min_confidence {min_conf}:")
        for case, tag_of in cases.items():
            base = tally([outcome(evidence.weigh(c["scores"]), str(c["genre"]), min_conf) for c in mine.values()])
            say(f"  {case:9s} sound alone (use_existing_genre: false)   {fmt(base)}")
            for r in RATIOS:
                t = tally([outcome(evidence.weigh(c["scores"], tag=tag_of(k, c), use_tag=True, ratio=r),
                                   str(c["genre"]), min_conf) for k, c in mine.items()])
                cost[r] += 2 * t["wrong"] + t["review"]
                mark = " <- shipped" if r == evidence.TAG_RATIO else ""
                say(f"  {case:9s} use_existing_genre, TAG_RATIO {r:<4}     {fmt(t)}  "
                    f"(right x{t['right'] / base['right'] if base['right'] else float('nan'):.2f}){mark}")
    best = min(RATIOS, key=lambda r: (round(cost[r], 9), -r))
    say("\ncost (2 x wrong + review, summed over cases and collections): "
        + ", ".join(f"{r}: {cost[r]:.3f}" for r in RATIOS) + f"; lowest at TAG_RATIO {best}")
    return best


def artists_of(clips: dict[str, dict[str, object]], collection: str) -> list[list[str]]:
    """SYNTHETIC artists: runs of ARTIST_SIZE consecutive clips of one genre."""
    out: list[list[str]] = []
    by_genre: dict[str, list[str]] = {}
    for k in clips:
        if k.startswith(collection + "/"):
            by_genre.setdefault(str(clips[k]["genre"]), []).append(k)

    def number(k: str) -> int:
        digits = "".join(ch for ch in Path(k).stem if ch.isdigit())
        return int(digits or 0)

    for keys in by_genre.values():
        keys.sort(key=number)
        out += [keys[i:i + ARTIST_SIZE] for i in range(0, len(keys) - ARTIST_SIZE + 1, ARTIST_SIZE)]
    return out


def artist_part(clips: dict[str, dict[str, object]], genres: list[str], min_conf: float, seed: int,
                say: Callable[[str], None]) -> tuple[float, float]:
    rng = random.Random(seed + 1)
    score: dict[tuple[float, float], float] = {}
    rows: dict[tuple[float, float], list[str]] = {}
    for collection in COLLECTIONS:
        groups = artists_of(clips, collection)
        other = {tuple(g): rng.choice([x for x in genres if x != clips[g[0]]["genre"]]) for g in groups}
        half = ARTIST_SIZE // 2
        for most, halfway in itertools.product(LEAN_MOST, LEAN_HALVES):
            res = {}
            for case in ("same", "changed"):
                gain = harm = n = 0
                with_lean: list[str] = []
                for g in groups:
                    truth = str(clips[g[0]]["genre"])
                    known = {truth if case == "same" else other[tuple(g)]: half}
                    for k in g[half:]:
                        s = clips[k]["scores"]
                        before = outcome(evidence.weigh(s), truth, min_conf)
                        after = outcome(evidence.weigh(s, artist=known, most=most, half=halfway), truth, min_conf)
                        with_lean.append(after)
                        gain += before != "right" and after == "right"
                        harm += before == "right" and after != "right"
                        n += 1
                res[case] = (gain / n, harm / n, tally(with_lean))
            score[(most, halfway)] = score.get((most, halfway), 0.0) + res["same"][0] - res["changed"][1]
            rows.setdefault((most, halfway), []).append(
                f"  {collection:11s} LEAN_MAX {most:.1f} LEAN_HALF {halfway:.0f} (w {evidence.lean_weight(half, most=most, half=halfway):.2f}):"
                f" same artist gain {res['same'][0]:.3f} harm {res['same'][1]:.3f} [{fmt(res['same'][2])}];"
                f" changed genre gain {res['changed'][0]:.3f} harm {res['changed'][1]:.3f} [{fmt(res['changed'][2])}]")
        base = tally([outcome(evidence.weigh(clips[k]["scores"]), str(clips[k]["genre"]), min_conf)
                      for g in groups for k in g[half:]])
        say(f"\n{collection}: {len(groups)} synthetic artists of {ARTIST_SIZE} clips, {half} known, "
            f"{len(groups) * (ARTIST_SIZE - half)} measured; sound alone: {fmt(base)}")
    best = max(score, key=lambda p: (round(score[p], 9), -p[0]))
    for pair in sorted(rows):
        mark = "  <- shipped" if pair == (evidence.LEAN_MAX, evidence.LEAN_HALF) else ""
        for line in rows[pair]:
            say(line + mark)
    say(f"\nsum over collections of (gain on same) - (harm on changed): best LEAN_MAX {best[0]} LEAN_HALF {best[1]} "
        f"({score[best]:.3f}); shipped LEAN_MAX {evidence.LEAN_MAX} LEAN_HALF {evidence.LEAN_HALF} "
        f"({score[(evidence.LEAN_MAX, evidence.LEAN_HALF)]:.3f})")
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/evidence-scores.json"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-confidence", type=float, default=0.4)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    version, clips = classify_all(args.data, args.cache)
    genres = sorted(next(iter(clips.values()))["scores"])
    say(f"model {version}; genres {', '.join(genres)}")
    ratio = tag_part(clips, genres, args.min_confidence, args.seed, say)
    lean_pair = artist_part(clips, genres, args.min_confidence, args.seed, say)
    say(f"\nchosen: TAG_RATIO {ratio}, LEAN_MAX {lean_pair[0]}, LEAN_HALF {lean_pair[1]}")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
