"""genre_daemon.model.efficientat: the project's port of EfficientAT mn04_as against the original's goldens,
the shipped weights against the published file, and refusals of anything else in their place.

* Goldens: ``../shared/models/efficientat-mn04/golden_mn04_as.npz``, written by the original
  EfficientAT code (reference/make_golden.py) for two 10 s inputs at 32 kHz (a synthetic chirp
  with noise; the first 10 s of GTZAN jazz.00016 by ``librosa.load(sr=32000, duration=10)``).
  Skipped, saying why, where ../shared is absent. Tolerances (measured max abs error in brackets,
  chirp / jazz): log-mel atol 2e-4 [6.4e-5 / 3.7e-5, values up to 2.5: float32 rounding of the
  FFT and the filterbank product on this machine's torch build; the reference code itself, rerun
  here, gives the same differences], logits atol 1e-4 [7.6e-6 / 5.7e-6, values up to 14.8],
  embedding atol 1e-5 [1.5e-6 / 8.1e-7, values up to 1.1].
* The project's decoder (soxr HQ, as librosa) gives the golden jazz wave to 1e-6 except its last
  113 samples (3.5 ms): ``librosa.load(duration=10)`` resamples only those 10 s, so its resampler
  ends cold, while the project decodes past the end of a span and cuts (its samples equal a
  whole-file decode's). Effect on the logits: max abs 0.033 [probabilities 0.0018], atol 0.1 here.
* Converter: from the original ``mn04_as_mAP_432.pt`` (skipped without it), byte for byte the
  shipped folder and the shared ``mn04_as.safetensors``.
* Refusals: a pickle (plain, or a torch.save zip) in place of the weights, never unpickled; the
  weights or the class list with one byte changed; a symlink.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_daemon.audio import decode
from genre_daemon.errors import ModelError
from genre_daemon.model.efficientat import melspec
from genre_daemon.model.efficientat.convert import ORIGINAL, ConversionError, convert
from genre_daemon.model.efficientat.network import MN04
from genre_daemon.model.efficientat.tagger import WINDOW_SAMPLES, EfficientAT, window_starts
from genre_daemon.model.efficientat.weights import (LABELS_FILE, PROVENANCE_FILE, WEIGHTS_FILE, load_mn04,
                                                    read_weights)

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "efficientat"
SHARED = (REPO / ".." / "shared" / "models" / "efficientat-mn04").resolve()
GTZAN = (REPO / ".." / "shared" / "data" / "gtzan").resolve()
INPUTS = ["synthetic_chirp_noise_10s", "gtzan_jazz.00016_first10s_librosa32k"]
JAZZ = INPUTS[1]


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    path = SHARED / "golden_mn04_as.npz"
    if not path.is_file():
        pytest.skip(f"no EfficientAT goldens at {path}: ../shared (the team's shared models and data) is "
                    "absent here, so the port cannot be compared with the original code's outputs")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def model() -> EfficientAT:
    torch.set_num_threads(1)
    return EfficientAT.load(MODEL_DIR)


def folder_copy(tmp_path: Path) -> Path:
    d = tmp_path / "efficientat"
    shutil.copytree(MODEL_DIR, d)
    return d


# --- the port against the original code ---------------------------------------------------------

@pytest.mark.parametrize("name", INPUTS)
def test_log_mel_matches_the_golden(golden, name: str) -> None:
    mel = melspec.log_mel(golden[f"{name}.wave"])
    assert mel.shape == (1, 128, 1000) and mel.dtype == torch.float32
    np.testing.assert_allclose(mel[0].numpy(), golden[f"{name}.mel"], rtol=0, atol=2e-4)


@pytest.mark.parametrize("name", INPUTS)
def test_logits_and_embedding_match_the_golden(golden, model: EfficientAT, name: str) -> None:
    out = model.clips([golden[f"{name}.wave"]])  # the whole path: waveform -> log-mel -> network
    np.testing.assert_allclose(out.logits[0], golden[f"{name}.logits"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(out.embedding[0], golden[f"{name}.embedding"], rtol=0, atol=1e-5)
    with torch.inference_mode():  # and the network alone on the original's own log-mel
        logits, emb = model.net(torch.from_numpy(golden[f"{name}.mel"])[None, None])
    np.testing.assert_allclose(logits[0].numpy(), golden[f"{name}.logits"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(emb[0].numpy(), golden[f"{name}.embedding"], rtol=0, atol=1e-5)


def test_the_jazz_clip_tags_as_jazz(golden, model: EfficientAT) -> None:
    out = model.clips([golden[f"{JAZZ}.wave"]])
    genre_index, _ = max(model.genres, key=lambda g: out.logits[0, g[0]])
    assert model.labels[genre_index] == "Jazz"
    assert out.genre_logits().shape == (1, 50)


def test_the_projects_decode_of_the_jazz_clip(golden, model: EfficientAT) -> None:
    src = GTZAN / "jazz" / "jazz.00016.flac"
    if not src.is_file():
        pytest.skip(f"{src} absent (../shared/data/gtzan)")
    y = decode.load(src, sr=melspec.SR, duration=10.0)
    want = golden[f"{JAZZ}.wave"]
    assert y.shape == want.shape == (WINDOW_SAMPLES,)
    np.testing.assert_allclose(y[:-113], want[:-113], rtol=0, atol=1e-6)  # librosa's cold-ended tail aside
    assert np.array_equal(y, decode.load(src, sr=melspec.SR)[:WINDOW_SAMPLES])  # a span is the whole decode's slice
    out = model.clips([y])
    np.testing.assert_allclose(out.logits[0], golden[f"{JAZZ}.logits"], rtol=0, atol=0.1)


def test_windows_spread_over_a_song_equal_windows_decoded_on_their_own(model: EfficientAT) -> None:
    src = GTZAN / "jazz" / "jazz.00016.flac"
    if not src.is_file():
        pytest.skip(f"{src} absent (../shared/data/gtzan)")
    y = decode.load(src, sr=melspec.SR)
    whole = model.windows(y, max_windows=3)
    last = len(y) - WINDOW_SAMPLES  # a 30 s clip: windows at the start, the middle and the end
    assert len(whole.starts) == 3 and whole.starts[::2] == (0, last) and abs(whole.starts[1] - last / 2) <= 0.5
    assert whole.logits.shape == (3, 527) and whole.embedding.shape == (3, 384)
    spans = [decode.load(src, sr=melspec.SR, offset=s / melspec.SR, duration=WINDOW_SAMPLES / melspec.SR)
             for s in whole.starts]
    alone = model.clips(spans)
    np.testing.assert_allclose(alone.logits, whole.logits, rtol=0, atol=1e-4)
    np.testing.assert_allclose(alone.embedding, whole.embedding, rtol=0, atol=1e-5)


def test_window_plan_is_bounded_and_spread() -> None:
    w = WINDOW_SAMPLES
    assert window_starts(3 * w) == [0, w, 2 * w]
    assert window_starts(w // 2) == [0]  # shorter than a window: the whole audio, one window
    assert window_starts(w + w // 5) == [w // 10]  # two would overlap by more than half: the middle one
    starts = window_starts(3600 * melspec.SR, 5)  # an hour: still five windows, first and last at the ends
    assert len(starts) == 5 and starts[0] == 0 and starts[-1] == 3600 * melspec.SR - w


def test_short_and_non_finite_audio_is_refused_with_a_reason(model: EfficientAT) -> None:
    with pytest.raises(ValueError, match="too short"):
        model.clips([np.zeros(100, np.float32)])
    bad = np.zeros(WINDOW_SAMPLES, np.float32)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.clips([bad])


# --- the shipped folder -----------------------------------------------------------------------------

def test_shipped_folder_names_the_original_and_its_licences() -> None:
    prov = json.loads((MODEL_DIR / PROVENANCE_FILE).read_text(encoding="utf-8"))
    assert prov["original"]["sha256"] == "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
    assert prov["original"]["bytes"] == 4_066_513 and prov["licence"] == "MIT"
    for key in ("weights", "labels"):
        data = (MODEL_DIR / prov[key]["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == prov[key]["sha256"]
    assert prov["weights"]["parameters"] == 983_599 and prov["weights"]["tensors"] == 312
    licence = (MODEL_DIR / "LICENSE-EfficientAT.txt").read_text(encoding="utf-8")
    assert "MIT License" in licence and "Copyright (c) 2022 Florian Schmid" in licence
    assert "CC BY 4.0" in (MODEL_DIR / "NOTICE-AudioSet.txt").read_text(encoding="utf-8")
    net, labels = load_mn04(MODEL_DIR)  # strict load: every tensor by name
    assert isinstance(net, MN04) and sum(p.numel() for p in net.parameters()) == 983_599
    assert labels[216] == "Pop music" and labels[265] == "Independent music" and len(labels) == 527
    assert prov["genres"]["names"] == labels[216:266]


def test_converter_reproduces_the_shipped_folder_byte_for_byte(tmp_path: Path) -> None:
    pt = SHARED / ORIGINAL["file"]
    if not pt.is_file():
        pytest.skip(f"no {pt}: the original EfficientAT weights (../shared) are needed to rerun the converter")
    convert(pt, tmp_path / "a")
    convert(pt, tmp_path / "b")
    for name in sorted(os.listdir(MODEL_DIR)):
        shipped = (MODEL_DIR / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() == shipped == (tmp_path / "b" / name).read_bytes(), name
    assert (MODEL_DIR / WEIGHTS_FILE).read_bytes() == (SHARED / "mn04_as.safetensors").read_bytes()


def test_converter_refuses_a_pt_that_is_not_the_published_one(tmp_path: Path) -> None:
    pt = tmp_path / ORIGINAL["file"]
    torch.save({"features.0.0.weight": torch.zeros(8, 1, 3, 3)}, pt)
    with pytest.raises(ConversionError, match=r"mn04_as_mAP_432\.pt: sha256 .* is not the published"):
        convert(pt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- refusals -------------------------------------------------------------------------------------

class Trap:
    """Unpickling this creates the directory ``path``: the proof that a refused file never ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def set_sha(d: Path, key: str, data: bytes) -> None:
    """Make provenance.json name ``data``'s sha256 for ``key``, as someone replacing both would."""
    prov = json.loads((d / PROVENANCE_FILE).read_text(encoding="utf-8"))
    prov[key]["sha256"] = hashlib.sha256(data).hexdigest()
    (d / PROVENANCE_FILE).write_text(json.dumps(prov), encoding="utf-8")


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_run(tmp_path: Path) -> None:
    d = folder_copy(tmp_path)
    marker = tmp_path / "unpickled"
    torch.save({"features.0.0.weight": torch.zeros(8, 1, 3, 3), "trap": Trap(marker)}, d / WEIGHTS_FILE)
    plain = b"cos\nmkdir\n(V" + str(marker).encode() + b"\ntR."  # protocol-0 pickle: os.mkdir(marker)
    for data in ((d / WEIGHTS_FILE).read_bytes(), plain):
        (d / WEIGHTS_FILE).write_bytes(data)
        with pytest.raises(ModelError, match=r"mn04_as\.safetensors: not a safetensors file .*never loaded"):
            EfficientAT.load(d)
        set_sha(d, "weights", data)  # even when provenance names it, the framing refuses it
        with pytest.raises(ModelError, match=r"mn04_as\.safetensors: not a safetensors file .*never loaded"):
            EfficientAT.load(d)
        shutil.copy(MODEL_DIR / PROVENANCE_FILE, d / PROVENANCE_FILE)
    assert not marker.exists()


def test_weights_or_class_list_with_one_byte_changed_are_refused(tmp_path: Path) -> None:
    d = folder_copy(tmp_path)
    data = bytearray((d / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0x01  # the last weight's lowest mantissa bit: still a valid safetensors file
    (d / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"mn04_as\.safetensors: sha256 [0-9a-f]{16}\.\.\. is not that of the shipped"):
        EfficientAT.load(d)
    shutil.copy(MODEL_DIR / WEIGHTS_FILE, d / WEIGHTS_FILE)
    labels = (d / LABELS_FILE).read_bytes()
    (d / LABELS_FILE).write_bytes(labels.replace(b'"Jazz"', b'"Jazy"'))
    with pytest.raises(ModelError, match=r"class_labels_indices\.csv: sha256 .* is not that of the shipped"):
        EfficientAT.load(d)
    shutil.copy(MODEL_DIR / LABELS_FILE, d / LABELS_FILE)
    assert EfficientAT.load(d).labels[235] == "Jazz"  # restored: loads again


def test_a_symlink_in_place_of_the_weights_is_refused(tmp_path: Path) -> None:
    d = folder_copy(tmp_path)
    (d / WEIGHTS_FILE).unlink()
    (d / WEIGHTS_FILE).symlink_to(MODEL_DIR / WEIGHTS_FILE)
    prov = json.loads((d / PROVENANCE_FILE).read_text(encoding="utf-8"))
    with pytest.raises(ModelError, match=r"mn04_as\.safetensors: cannot open EfficientAT weights"):
        read_weights(d / WEIGHTS_FILE, prov["weights"]["sha256"])
