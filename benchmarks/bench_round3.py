"""Round 3's honest figures: the held-out measurements, the ablation, and what the model says of itself.

    nice -n 5 .venv/bin/python benchmarks/bench_round3.py --work /tmp/r3bench [--cache DIR] [--seeds 2]
    .venv/bin/python benchmarks/bench_round3.py --stamp models/default    # then: write the figures into a model

The "honest" models are the shipped recipe (``genre-daemon train --inputs msd_tags --hop-frames 63
--taggrams ... --fusion-weight 1.5 --prior-only electronic``, default augmentation) trained only on
music whose artists the test music does not share: the taggram clips of GTZAN's artist-filtered
``train`` part, plus the shared audio clips whose part is ``train`` or ``valid`` (copied into
``WORK/sets/train-audio/<genre>/``; never ``test`` or ``none``, never emotify-dev). Measured:

(a) the 275 taggram clips of the ``test`` part: the LSTM alone (taggrams have no audio, so no
    AudioSet evidence), against the floor, a logistic regression on the clip-mean log tags;
(b) the 19 shared audio clips of the ``test`` part and (c) emotify-dev (60, another collection)
    through the real ``genre-daemon evaluate`` (a subprocess, the full pipeline), per-genre recall;
(d) the ablation on (b) and (c): the LSTM alone, AudioSet zero-shot alone, late fusion at several
    fusion weights, and AudioSet as *inputs* (a logistic regression on clip-mean tags + AudioSet's
    50 genre logits, trainable only on the 121 training clips that have audio). The classifier's
    own features of each file are computed once (``Classifier.patch_vectors``/``window_logits``) and
    every variant scored from them; the fused row at the trained weight is checked to equal
    ``evaluate``'s accuracy, so the ablation is the pipeline's arithmetic, not a re-implementation;
(e) (b) and (c) re-encoded by ffmpeg as 128 kbps MP3 and as 16 kHz WAV: the drop against clean
    (emotify-dev is 128 kbps MP3 already: its MP3 row is a second generation);
(f) how often each prior-only candidate genre (AudioSet family, no examples) wins on music that is
    not that genre: the 150 shared GTZAN clips and emotify-dev.

``--work`` keeps everything (copied sets, re-encodes, models, evaluate outputs, features) and a
rerun reuses what is there. Prints a table; writes ``--out`` (.txt) and the same path with .json,
whose ``held_out`` list is what ``--stamp MODEL_DIR`` writes into a model's ``metrics``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genre_daemon.learning import heldout  # noqa: E402

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
CANDIDATES = ("electronic", "folk", "soul", "latin", "ambient", "punk")
BETAS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
CONDITIONS = ("clean", "mp3", "16k")
TRAIN_PARTS = ("train", "valid")
AS_GENRE_ROWS = slice(216, 266)  # AudioSet's 50 music-genre outputs
RECIPE = ["--inputs", "msd_tags", "--hop-frames", "63", "--taggram-parts", "train", "--fusion-weight", "1.5",
          "--prior-only", "electronic", "--threads", "1"]
TEST_NAMES = {
    "gtzan-test": "GTZAN artist-filtered test part, the 19 shared clips with audio",
    "emotify": "emotify-dev, 60 songs of another collection (Magnatune: classical, pop, rock)",
    "taggram-test": "GTZAN artist-filtered test part, 275 clips as taggrams (the LSTM alone: no audio for AudioSet)",
}
LSTM_KEY = "LSTM of the honest models"
TRAINED_ON = "the same recipe trained on GTZAN's artist-filtered train part (taggrams) and the train/valid audio clips"


@dataclass
class Song:
    """One test file's features as the classifier computes them."""

    name: str
    genre: str
    part: str  # GTZAN's artist-filtered part, or "emotify"
    tags: np.ndarray  # (patches, 50) msd_tags
    logits: np.ndarray  # (windows, 527) AudioSet


def run(cmd: list[str], what: str) -> str:
    """Run a command of the project; its stdout, or exit naming what failed."""
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    print(f"  {what}: {time.perf_counter() - t:.0f} s", flush=True)
    return done.stdout


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "genre_daemon.cli", *args]


# --- (0) the music ------------------------------------------------------------------------------------


def splits(data: Path) -> dict[str, str]:
    with open(data / "gtzan" / "splits.csv", newline="") as fh:
        return {r["clip"]: r["split"] for r in csv.DictReader(fh)}


def prepare(work: Path, data: Path) -> dict[tuple[str, str], Path]:
    """The training folder and every test folder, ``(condition, set) -> folder``; made once."""
    part = splits(data)
    sets = work / "sets"
    for f in sorted((data / "gtzan").glob("*/*.flac")):
        p = part.get(f.stem, "none")
        dest = sets / ("train-audio" if p in TRAIN_PARTS else "gtzan-test" if p == "test" else "") / f.parent.name
        if p in (*TRAIN_PARTS, "test") and not (dest / f.name).exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest / f.name)
    folders = {("clean", "gtzan-test"): sets / "gtzan-test", ("clean", "emotify"): data / "emotify-dev",
               ("clean", "gtzan-all"): data / "gtzan"}
    for cond, (suffix, opts) in {"mp3": (".mp3", ["-codec:a", "libmp3lame", "-b:a", "128k"]),
                                 "16k": (".wav", ["-ar", "16000", "-codec:a", "pcm_s16le"])}.items():
        for name in ("gtzan-test", "emotify"):
            src = folders[("clean", name)]
            out = sets / f"{name}-{cond}"
            for f in sorted(src.glob("*/*.*")):
                dest = out / f.parent.name / (f.stem + suffix)
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.with_name(".tmp-" + dest.name)
                    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(f), *opts, str(tmp)],
                                   check=True)
                    os.replace(tmp, dest)
            folders[(cond, name)] = out
    return folders


# --- (1) the honest models and the real evaluate ------------------------------------------------------


def train(work: Path, data: Path, seed: int, cache: Path) -> Path:
    """The honest model of ``seed`` (trained once; a finished one is reused)."""
    out = work / "models" / f"honest-s{seed}"
    if (out / "model.json").is_file():
        return out
    tmp = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent if out.parent.is_dir() else _mkdir(out.parent)))
    run(cli("train", "--data", str(work / "sets" / "train-audio"), "--out", str(tmp / out.name), "--seed", str(seed),
            "--taggrams", str(data / "gtzan-taggrams"), "--cache", str(cache), *RECIPE), f"train seed {seed}")
    os.replace(tmp / out.name, out)
    shutil.rmtree(tmp)
    return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def evaluate(work: Path, model: Path, folder: Path, key: str) -> dict[str, Any]:
    """``genre-daemon evaluate --json`` of ``model`` on ``folder`` (kept in WORK/eval)."""
    path = _mkdir(work / "eval") / f"{key}.json"
    if not path.is_file():
        out = run(cli("evaluate", "--data", str(folder), "--model", str(model), "--json"), f"evaluate {key}")
        path.write_text(out)
    return json.loads(path.read_text())


# --- (2) the classifier's own features, once per file --------------------------------------------------


def features(work: Path, folders: dict[tuple[str, str], Path], model: Path, data: Path) -> dict[tuple[str, str], list[Song]]:
    """Per ``(condition, set)``, each file's patch vectors and AudioSet window logits, computed by
    the real Classifier (kept in WORK/features/*.npz, arrays only)."""
    from genre_daemon.learning.dataset import scan_labelled

    part = splits(data)
    classifier = None
    out = {}
    for key, folder in folders.items():
        path = _mkdir(work / "features") / f"{key[0]}-{key[1]}.npz"
        if not path.is_file():
            if classifier is None:
                from genre_daemon.model.inference import Classifier

                classifier = Classifier.from_dir(model)
            _, files = scan_labelled(folder)
            arrays: dict[str, np.ndarray] = {"names": np.array([f.path.stem for f in files]),
                                             "genres": np.array([f.genre for f in files])}
            t = time.perf_counter()
            for i, f in enumerate(files):
                vectors, duration = classifier.patch_vectors(f.path)
                arrays[f"{i}.tags"], arrays[f"{i}.as"] = vectors, classifier.window_logits(f.path, duration)
            print(f"  features {key}: {len(files)} files, {time.perf_counter() - t:.0f} s", flush=True)
            np.savez(path, **arrays)
        with np.load(path, allow_pickle=False) as z:
            out[key] = [Song(str(n), str(g), part.get(str(n), "none") if "gtzan" in key[1] else "emotify",
                             z[f"{i}.tags"], z[f"{i}.as"]) for i, (n, g) in enumerate(zip(z["names"], z["genres"]))]
    return out


# --- (3) scoring --------------------------------------------------------------------------------------


def score(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, per-genre recall (genres present in the truth) and the electronic wins."""
    t, p = np.array(truth), np.array(predicted)
    return {"accuracy": float(np.mean(t == p)), "n": len(t),
            "per_genre": {g: float(np.mean(p[t == g] == g)) for g in sorted(set(truth))},
            "electronic_wins": int(np.sum(p == "electronic"))}


def mean_scores(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean over seeds, with each seed's accuracy kept."""
    return {"accuracy": float(np.mean([r["accuracy"] for r in runs])), "n": runs[0]["n"],
            "per_seed": [round(r["accuracy"], 4) for r in runs],
            "per_genre": {g: float(np.mean([r["per_genre"][g] for r in runs])) for g in runs[0]["per_genre"]},
            "electronic_wins": float(np.mean([r["electronic_wins"] for r in runs]))}


def lstm_logits(model: Any, sequences: list[np.ndarray]) -> np.ndarray:
    from genre_daemon.learning.fit import predict_logits

    return np.stack(predict_logits(model.net, sequences))


def variants(model: Any, songs: list[Song]) -> dict[str, list[str]]:
    """Each late-fusion variant's genre for each song: LSTM alone, zero-shot alone, fused at BETAS."""
    learned, prior = model.learned, model.prior
    lstm = lstm_logits(model, [s.tags for s in songs])
    out = {"LSTM alone (--no-prior)": [learned[int(np.argmax(z))] for z in lstm],
           "AudioSet zero-shot alone": [max(model.genres, key=prior.evidence(s.logits).get) for s in songs]}
    for beta in BETAS:
        p = replace(prior, beta=beta)
        out[f"fused, beta {beta:g}"] = [model.genres[int(np.argmax(p.combine(learned, z, s.logits)))]
                                        for z, s in zip(lstm, songs)]
    return out


def clip_means(songs: list[Song]) -> tuple[np.ndarray, np.ndarray]:
    """Clip-mean log tags and clip-mean AudioSet genre logits."""
    tags = np.stack([np.log(np.clip(s.tags, 1e-4, 1.0)).mean(0) for s in songs])
    return tags, np.stack([s.logits[:, AS_GENRE_ROWS].mean(0) for s in songs])


def logistic(x: np.ndarray, y: list[str]) -> Any:
    """A plain standardised logistic regression (the floor and the inputs-fusion probe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)


def inputs_fusion(train_songs: list[Song], tests: dict[tuple[str, str], list[Song]]) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """AudioSet as inputs: regressions on the 121 training clips with audio (the only clips with
    both tags and AudioSet logits), on tags, on AudioSet's genre logits, and on both."""
    tr_tags, tr_as = clip_means(train_songs)
    y = [s.genre for s in train_songs]
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for name, pick in {"LR on tags (121 audio clips)": lambda t, a: t,
                       "LR on AudioSet genre logits (121)": lambda t, a: a,
                       "AudioSet as inputs: LR on tags + AudioSet (121)": lambda t, a: np.hstack([t, a])}.items():
        clf = logistic(pick(tr_tags, tr_as), y)
        out[name] = {}
        for key, songs in tests.items():
            t, a = clip_means(songs)
            out[name][key] = score([s.genre for s in songs], list(clf.predict(pick(t, a))))
    return out


def taggram_test(data: Path, models: list[Any], train_songs: list[Song]) -> dict[str, Any]:
    """(a): the LSTM of each seed and the floors on the 275 taggram clips of the test part."""
    from genre_daemon.learning.fit import song_sequence

    root = data / "gtzan-taggrams"
    with np.load(root / "taggrams.npz", allow_pickle=False) as z:
        x = z["X"]
    with open(root / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    clip = {p: [(x[int(r["first_row"]):int(r["first_row"]) + int(r["n_rows"])], r["genre"]) for r in rows
                if r["part"] == p] for p in ("train", "test")}
    truth = [g for _, g in clip["test"]]
    res: dict[str, Any] = {"n": len(truth)}
    runs = []
    for m in models:
        lg = lstm_logits(m, [song_sequence(v, m.patches) for v, _ in clip["test"]])
        runs.append(score(truth, [m.learned[int(np.argmax(z))] for z in lg]))
    res[LSTM_KEY] = mean_scores(runs)

    def mean_log(v: np.ndarray) -> np.ndarray:
        return np.log(np.clip(v, 1e-4, 1.0)).mean(0)

    test_x = np.stack([mean_log(v) for v, _ in clip["test"]])
    tr_x, tr_y = [mean_log(v) for v, _ in clip["train"]], [g for _, g in clip["train"]]
    res["floor: LR on clip-mean log tags, taggram train part (423)"] = score(
        truth, list(logistic(np.stack(tr_x), tr_y).predict(test_x)))
    valid = [s for s in train_songs if s.part == "valid"]  # the LSTM's other training clips
    res["floor: LR, the LSTM's own 485 training clips"] = score(
        truth, list(logistic(np.stack(tr_x + [mean_log(s.tags) for s in valid]), tr_y + [s.genre for s in valid])
                    .predict(test_x)))
    return res


def candidates(models: list[Any], songs: list[Song]) -> dict[str, Any]:
    """(f): each prior-only candidate alone beside the learned genres, at the trained weight: how
    many songs (none of them of that genre) it wins, and from which genres."""
    from genre_daemon.model.prior import AudioSetPrior, family_rows
    from genre_daemon.model.tagging import load_tagger

    labels = load_tagger().labels
    out = {}
    for cand in CANDIDATES:
        wins, stolen = [], Counter()
        for m in models:
            p = m.prior
            fams = {**{g: p.families[g] for g in m.learned}, **family_rows([cand], labels)}
            prior = AudioSetPrior(fams, p.tau, p.beta, (cand,), p.windows, p.frontend)
            genres = [*m.learned, cand]
            lstm = lstm_logits(m, [s.tags for s in songs])
            won = [s.genre for z, s in zip(lstm, songs) if genres[int(np.argmax(prior.combine(m.learned, z, s.logits)))] == cand]
            wins.append(len(won))
            stolen.update(won)
        out[cand] = {"wins_per_seed": wins, "of": len(songs), "taken_from": dict(stolen.most_common())}
    return out


# --- (4) the report -----------------------------------------------------------------------------------


def held_out_entries(res: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``--stamp`` writes: the recipe's held-out figures, the other collection first."""
    out = []
    for key in ("emotify", "gtzan-test"):
        runs = res["evaluate"]["clean"][key]
        out.append(heldout.entry(
            TEST_NAMES[key], runs["n"], round(runs["accuracy"], 4),
            {g: round(r, 4) for g, r in runs["per_genre"].items()}, False,
            f"benchmarks/bench_round3.py: genre-daemon evaluate of {TRAINED_ON}, seeds {res['seeds']}",
            seeds=len(runs["per_seed"]), per_seed=runs["per_seed"]))
    t = res["taggram_test"][LSTM_KEY]
    out.append(heldout.entry(
        TEST_NAMES["taggram-test"], t["n"], round(t["accuracy"], 4), {g: round(r, 4) for g, r in t["per_genre"].items()},
        False, f"benchmarks/bench_round3.py: the LSTM of {TRAINED_ON}, seeds {res['seeds']}",
        seeds=len(t["per_seed"]), per_seed=t["per_seed"]))
    return out


def evaluate_scores(raw: dict[str, Any]) -> dict[str, Any]:
    """An ``evaluate --json`` report as :func:`score` shapes it."""
    per = {g: m["recall"] for g, m in raw["per_genre"].items() if m["n"]}
    el = raw["genres"].index("electronic") if "electronic" in raw["genres"] else None
    return {"accuracy": raw["accuracy"], "n": raw["n"], "per_genre": per,
            "electronic_wins": int(sum(r[el] for r in raw["confusion"])) if el is not None else 0}


def recall_text(per: dict[str, float]) -> str:
    return " ".join(f"{g} {r:.2f}" for g, r in per.items())


def report(res: dict[str, Any]) -> str:
    lines = [f"genre-daemon round 3: honest figures ({time.strftime('%Y-%m-%d')}, seeds {res['seeds']}, "
             f"models trained on {res['train']})", ""]
    a = res["taggram_test"]
    lines += [f"(a) GTZAN artist-filtered test part, {a['n']} taggram clips (no artist shared with training):"]
    for k, v in a.items():
        if isinstance(v, dict):
            seeds = f"  seeds {v['per_seed']}" if "per_seed" in v else ""
            lines.append(f"    {v['accuracy']:.3f}  {k}{seeds}")
    lines.append(f"    LSTM per-genre recall: {recall_text(a[LSTM_KEY]['per_genre'])}")
    lines += ["", "(b) 19 GTZAN test-part clips with audio, (c) emotify-dev 60: the real `genre-daemon evaluate`, "
              "fused at the trained weight:"]
    for key in ("gtzan-test", "emotify"):
        v = res["evaluate"]["clean"][key]
        lines.append(f"    {key:10s} {v['accuracy']:.3f} (seeds {v['per_seed']})  recall: {recall_text(v['per_genre'])}")
    lines += ["", "(d) ablation (mean of seeds; in-process from the classifier's features; electronic wins of 79):",
              f"    {'variant':50s} {'(b) gtzan-test 19':>18s} {'(c) emotify 60':>15s}   emotify recall"]
    for name, by in res["ablation"]["clean"].items():
        b, c = by["gtzan-test"], by["emotify"]
        el = b["electronic_wins"] + c["electronic_wins"]
        lines.append(f"    {name:50s} {b['accuracy']:18.3f} {c['accuracy']:15.3f}   {recall_text(c['per_genre'])}"
                     + (f"  electronic {el:g}" if el else ""))
    lines += [f"    check: fused at the trained weight == evaluate: {res['crosscheck']}", "",
              "(e) robustness, fused at the trained weight (real evaluate), accuracy and drop vs clean in points:"]
    for key in ("gtzan-test", "emotify"):
        clean = res["evaluate"]["clean"][key]["accuracy"]
        cells = [f"{c} {res['evaluate'][c][key]['accuracy']:.3f} ({100 * (res['evaluate'][c][key]['accuracy'] - clean):+.1f})"
                 for c in CONDITIONS]
        lines.append(f"    {key:10s} " + "   ".join(cells))
    for name in ("LSTM alone (--no-prior)", "AudioSet zero-shot alone"):
        cells = [f"{c} b {res['ablation'][c][name]['gtzan-test']['accuracy']:.3f} c {res['ablation'][c][name]['emotify']['accuracy']:.3f}"
                 for c in CONDITIONS]
        lines.append(f"    {name:25s} " + "   ".join(cells))
    n_all = next(iter(res["prior_only_candidates"].values()))["of"]
    lines += ["", f"(f) prior-only candidates at the trained weight: songs won of {n_all} "
              "(GTZAN 150 + emotify-dev 60, none of that genre), per seed, and from which genres:"]
    for cand, v in res["prior_only_candidates"].items():
        lines.append(f"    {cand:10s} {v['wins_per_seed']}  {v['taken_from']}")
    z = res["zero_shot_gtzan150"]
    lines += ["", f"AudioSet zero-shot alone on the 150 shared GTZAN clips (no GTZAN training but tau): {z['accuracy']:.3f}",
              f"    recall: {recall_text(z['per_genre'])}", "", "held-out figures for --stamp:"]
    lines += [f"    {heldout.Figure(e['accuracy'], e['test_music'], e['n'], e['could_have_heard_artists']).text()}"
              for e in res["held_out"]]
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from genre_daemon.model.files import load_model

    work, data = args.work, args.data
    folders = prepare(work, data)
    seeds = list(range(args.seeds))
    model_dirs = [train(work, data, s, args.cache or work / "cache") for s in seeds]
    models = [load_model(d) for d in model_dirs]
    res: dict[str, Any] = {"seeds": f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0]),
                           "train": models[0].training.get("data", {}), "evaluate": {}, "ablation": {}}
    res["train"] = "; ".join(f"{s['set']} {s['clips']}" for s in res["train"].get("sets", []))
    for cond in CONDITIONS:
        res["evaluate"][cond] = {}
        for key in ("gtzan-test", "emotify"):
            raw = [evaluate(work, d, folders[(cond, key)], f"s{s}-{cond}-{key}") for s, d in zip(seeds, model_dirs)]
            res["evaluate"][cond][key] = mean_scores([evaluate_scores(r) for r in raw])
    feats = features(work, folders, model_dirs[0], data)
    tests = {k: v for k, v in feats.items() if k[1] != "gtzan-all"}
    train_songs = [s for s in feats[("clean", "gtzan-all")] if s.part in TRAIN_PARTS]
    fusion = inputs_fusion(train_songs, tests)
    checks = []
    for cond in CONDITIONS:
        res["ablation"][cond] = {}
        for key in ("gtzan-test", "emotify"):
            songs = feats[(cond, key)]
            per_seed = [variants(m, songs) for m in models]
            for name in per_seed[0]:
                runs = [score([s.genre for s in songs], v[name]) for v in per_seed]
                res["ablation"][cond].setdefault(name, {})[key] = mean_scores(runs)
            for name, by in fusion.items():
                res["ablation"][cond].setdefault(name, {})[key] = mean_scores([by[(cond, key)]])
            trained = res["ablation"][cond][f"fused, beta {models[0].prior.beta:g}"][key]["per_seed"]
            checks.append(trained == res["evaluate"][cond][key]["per_seed"])
    res["crosscheck"] = "yes, every condition and set" if all(checks) else f"NO: {checks}"
    res["taggram_test"] = taggram_test(data, models, train_songs)
    everything = feats[("clean", "gtzan-all")] + feats[("clean", "emotify")]
    res["prior_only_candidates"] = candidates(models, everything)
    gz = feats[("clean", "gtzan-all")]
    res["zero_shot_gtzan150"] = score([s.genre for s in gz], variants(models[0], gz)["AudioSet zero-shot alone"])
    res["held_out"] = held_out_entries(res)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="keep everything here and reuse it (default: a temporary folder)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, help="the training feature cache (default WORK/cache)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-round3.txt")
    ap.add_argument("--stamp", type=Path, metavar="MODEL_DIR",
                    help="write the held-out figures of --out's .json into this model's metrics, measure nothing")
    args = ap.parse_args(argv)
    out_json = args.out.with_suffix(".json")
    if args.stamp is not None:
        entries = json.loads(out_json.read_text(encoding="utf-8"))["held_out"]
        path = heldout.stamp(args.stamp, entries)
        print(f"{path}: metrics.held_out = {len(entries)} figures from {out_json.name}")
        return 0
    if not (args.data / "gtzan" / "splits.csv").is_file():
        print(f"no shared data at {args.data} (gtzan/splits.csv)", file=sys.stderr)
        return 1
    temp = None
    if args.work is None:
        temp = tempfile.TemporaryDirectory(prefix="bench-round3-")
        args.work = Path(temp.name)
    _mkdir(args.work)
    res = measure(args)
    text = report(res)
    print(text)
    args.out.write_text(text, encoding="utf-8")
    out_json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    if temp is not None:
        temp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
