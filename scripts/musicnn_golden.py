"""Golden outputs of the original musicnn (TensorFlow) for tests/model/test_musicnn.py.

Why: the PyTorch port (genre_daemon.model.musicnn) must reproduce the published models; this runs
the wheel's own code (musicnn.extractor.batch_data for the log-mel, musicnn.models for the
graph, tf.compat.v1 Saver for the checkpoint) once, on a deterministic synthetic clip, and
stores what the tests compare against. Not part of the package: it needs TensorFlow, which
the project never installs. Run it in a separate venv:

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2" librosa safetensors
    /work/tfvenv/bin/pip install --no-deps musicnn-0.1.0-py3-none-any.whl
    /work/tfvenv/bin/python scripts/musicnn_golden.py tests/model/golden

Writes ``musicnn_golden.safetensors`` (the int16 input clip, librosa's mel power of it and of its first 3 s + 123 samples, musicnn's
log-mel whose 187-frame rows at ``patch_starts`` are the input patches, per-patch tags / penultimate / max and mean pools of
MSD_musicnn and MTT_musicnn) and ``musicnn_golden.json`` (versions, shapes, notes).
Penultimate vectors are fetched from the graph per patch: musicnn.extractor returns the
first patch's penultimate for every patch (a bug in its loop), which is checked and noted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 16000
SECONDS = 10
N_FRAMES = 187


def synthetic_clip(seconds: int = SECONDS, seed: int = 20190101) -> np.ndarray:
    """Seeded noise, an exponential chirp, harmonic notes and kick-like thumps, as int16."""
    rng = np.random.default_rng(seed)
    n = seconds * SR
    t = np.arange(n) / SR
    y = 0.02 * rng.standard_normal(n)
    f0, f1 = 80.0, 6000.0
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1)
    y += 0.08 * np.sin(phase)
    for k in range(seconds * 2):  # a note every 0.5 s, 6 harmonics, decaying
        start = k * SR // 2
        tt = t[start:start + SR // 2] - t[start]
        f = 220.0 * 2 ** (((k * 5) % 12) / 12)
        env = np.exp(-4 * tt)
        note = sum((0.5 ** h) * np.sin(2 * np.pi * f * (h + 1) * tt + h) for h in range(6))
        y[start:start + len(tt)] += 0.15 * env * note
        if k % 2 == 0:  # a thump on every beat
            y[start:start + len(tt)] += 0.3 * np.exp(-25 * tt) * np.sin(2 * np.pi * 55 * tt)
    y *= 0.6 / np.max(np.abs(y))
    return np.round(y * 32767).astype(np.int16)


def tf_outputs(model: str, patches: np.ndarray) -> dict[str, np.ndarray]:
    """Run musicnn's own graph for ``model`` on ``patches`` (n, 187, 96), one patch per run."""
    import tensorflow as tf
    import musicnn
    from musicnn import configuration as config
    from musicnn import models

    labels = config.MSD_LABELS if "MSD" in model else config.MTT_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        (y, _timbral, _temporal, _cnn1, _cnn2, _cnn3, mean_pool, max_pool,
         penultimate) = models.define_model(x, is_training, model, len(labels))
        tags = tf.nn.sigmoid(y)
    out: dict[str, list[np.ndarray]] = {"tags": [], "penultimate": [], "max_pool": [], "mean_pool": []}
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(sess, os.path.dirname(musicnn.__file__) + "/" + model + "/")
        for i in range(patches.shape[0]):
            vals = sess.run([tags, penultimate, max_pool, mean_pool],
                            feed_dict={x: patches[i:i + 1], is_training: False})
            for key, v in zip(("tags", "penultimate", "max_pool", "mean_pool"), vals):
                out[key].append(np.asarray(v, dtype=np.float32)[0])
    return {k: np.stack(v) for k, v in out.items()}


def main(outdir: str) -> int:
    import librosa
    import soundfile as sf
    import tensorflow as tf
    from musicnn import extractor
    from safetensors.numpy import save_file

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    clip = synthetic_clip()
    tensors: dict[str, np.ndarray] = {"audio_int16": clip}
    meta: dict = {"sr": SR, "seconds": SECONDS, "n_frames": N_FRAMES, "patch_hop": N_FRAMES,
                  "signal": "scripts/musicnn_golden.py:synthetic_clip (seed 20190101)",
                  "tensorflow": tf.__version__, "librosa": librosa.__version__, "numpy": np.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "clip.wav"
        sf.write(wav, clip, SR, subtype="PCM_16")
        y, _ = librosa.load(str(wav), sr=SR)
        tensors["mel_power"] = librosa.feature.melspectrogram(
            y=y, sr=SR, hop_length=256, n_fft=512, n_mels=96).T.astype(np.float32)
        odd = 3 * SR + 123  # a length that is not a multiple of the hop, for the padded edges
        meta["odd_length_samples"] = odd
        tensors["mel_power_odd"] = librosa.feature.melspectrogram(
            y=y[:odd], sr=SR, hop_length=256, n_fft=512, n_mels=96).T.astype(np.float32)
        # musicnn's own front end: log10(10000 * float16(mel) + 1), non-overlapping patches.
        batch, logmel = extractor.batch_data(str(wav), N_FRAMES, N_FRAMES)
        tensors["logmel"] = np.asarray(logmel, dtype=np.float32)
        patches = np.asarray(batch, dtype=np.float32)
        # The patches are rows of the log-mel (stored once, to keep the file small).
        starts = list(range(0, logmel.shape[0] - N_FRAMES + 1, N_FRAMES))
        assert np.array_equal(patches, np.stack([tensors["logmel"][s:s + N_FRAMES] for s in starts]))
        meta["patch_starts"] = starts
        meta["logmel_dtype_in_musicnn"] = str(np.asarray(logmel).dtype)
        for which, model in (("msd", "MSD_musicnn"), ("mtt", "MTT_musicnn")):
            res = tf_outputs(model, patches)
            for k, v in res.items():
                tensors[f"{which}.{k}"] = v
            taggram, _labels, feats = extractor.extractor(str(wav), model=model, input_length=3,
                                                          input_overlap=False, extract_features=True)
            pen = np.asarray(feats["penultimate"], dtype=np.float32)
            meta[f"{which}_extractor_check"] = {
                "taggram_max_abs_diff_vs_graph": float(np.max(np.abs(taggram - res["tags"]))),
                "extractor_penultimate_rows_equal_first_patch": bool(np.all(pen == pen[0])),
                "graph_penultimate_rows_differ": bool(np.any(res["penultimate"][1:] != res["penultimate"][0])),
            }
    meta["shapes"] = {k: list(v.shape) for k, v in tensors.items()}
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out / "musicnn_golden.safetensors"),
              metadata={"about": "musicnn 0.1.0 TensorFlow golden outputs; see musicnn_golden.json"})
    os.chmod(out / "musicnn_golden.safetensors", 0o644)
    (out / "musicnn_golden.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/model/golden"))
