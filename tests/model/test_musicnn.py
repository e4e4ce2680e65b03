"""genre_daemon.model.musicnn: the TF checkpoint reader, the shipped weights, the PyTorch network and
the log-mel front end, each against the real thing.

* Weights: read out of the musicnn wheel when one is found ($GENRE_DAEMON_MUSICNN_WHEEL,
  /work/cache/wheels/, <repo>/.cache/wheels/), and compared bit for bit with
  models/musicnn/*.safetensors; skipped (saying why) without the wheel.
* Network and front end: against tests/model/golden/musicnn_golden.safetensors, written once by
  scripts/musicnn_golden.py with TensorFlow 2.15 running musicnn 0.1.0's own code.
  Tolerances (measured differences in brackets): tags atol 1e-5 [1.5e-6], penultimate atol
  1e-4 [1.4e-5, values up to 4.3], pooled atol 1e-3 [2.2e-4, values up to 62], librosa mel
  power rtol 1e-5 [2.7e-7], musicnn log-mel atol 1e-3 with at most 0.1 % of the values off
  [1 of 60,096, by one float16 step after the mel's float32 rounding].
* Refusals: a pickle, a torch.save archive, a truncated file or a symlink in place of a
  weights file; corrupt, foreign and compressed checkpoint indexes.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from genre_daemon.model.musicnn import melspec
from genre_daemon.model.musicnn.checkpoint import CheckpointError, crc32c, read_bundle, read_checkpoint
from genre_daemon.model.musicnn.convert import ConversionError, convert_wheel, read_wheel_checkpoint
from genre_daemon.model.musicnn.inference import embed, embed_audio
from genre_daemon.model.musicnn.network import N_FRAMES, N_MELS, PARAM_SHAPES, MusiCNN, tf_same_padding
from genre_daemon.model.musicnn.weights import MusicnnWeightsError, load_musicnn, read_weights, tf_to_torch

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "musicnn"
GOLDEN = Path(__file__).resolve().parent / "golden"
WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
TRAINABLE = 787_159  # "787k parameters" (moving means and variances not counted)


def find_wheel() -> Path | None:
    env = os.environ.get("GENRE_DAEMON_MUSICNN_WHEEL")
    candidates = [Path(env)] if env else []
    candidates += sorted(Path("/work/cache/wheels").glob("musicnn-0.1.0-*.whl"))
    candidates += sorted((REPO / ".cache" / "wheels").glob("musicnn-0.1.0-*.whl"))
    return next((c for c in candidates if c.is_file()), None)


@pytest.fixture(scope="module")
def wheel() -> Path:
    w = find_wheel()
    if w is None:
        pytest.skip("no musicnn 0.1.0 wheel: `pip download --no-deps musicnn==0.1.0 -d .cache/wheels` "
                    "(or set GENRE_DAEMON_MUSICNN_WHEEL) to check the shipped weights against it")
    return w


@pytest.fixture(scope="module")
def golden() -> tuple[dict[str, np.ndarray], dict]:
    return (load_file(str(GOLDEN / "musicnn_golden.safetensors")),
            json.loads((GOLDEN / "musicnn_golden.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def nets() -> dict[str, MusiCNN]:
    return {w: load_musicnn(MODEL_DIR, w) for w in ("msd", "mtt")}


def golden_audio(g: dict[str, np.ndarray]) -> np.ndarray:
    return g["audio_int16"].astype(np.float32) / 32768  # what librosa.load gave musicnn


def golden_patches(g: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    return np.stack([g["logmel"][s:s + N_FRAMES] for s in meta["patch_starts"]])


# --- the shipped weights against the wheel's checkpoints ---------------------------------------

@pytest.mark.parametrize("which", ["msd", "mtt"])
def test_shipped_weights_are_the_wheels_checkpoint_bit_for_bit(wheel: Path, which: str) -> None:
    ckpt, hashes = read_wheel_checkpoint(wheel, which)  # also checks every tensor's CRC32C
    params = tf_to_torch(ckpt)
    shipped, meta = read_weights(MODEL_DIR / f"{which}.safetensors")
    assert sorted(shipped) == sorted(params) == sorted(PARAM_SHAPES)
    for name, a in params.items():
        assert shipped[name].dtype == np.float32 and shipped[name].shape == PARAM_SHAPES[name]
        assert shipped[name].tobytes() == a.tobytes(), name
    # Layouts: TF conv (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out) -> (out, in).
    assert np.array_equal(shipped["timbral74.conv.weight"], ckpt["conv2d/kernel"].transpose(3, 2, 0, 1))
    assert np.array_equal(shipped["tags.weight"], ckpt["dense_1/kernel"].T)
    assert sum(a.size for k, a in shipped.items() if "moving_" not in k) == TRAINABLE
    prov = json.loads((MODEL_DIR / "provenance.json").read_text(encoding="utf-8"))
    assert prov["wheel_sha256"] == WHEEL_SHA256 and prov["licence"] == "ISC"
    assert prov["models"][which]["data_sha256"] == hashes["data_sha256"]
    assert prov["models"][which]["index_sha256"] == hashes["index_sha256"]
    assert prov["models"][which]["tags"] == json.loads(meta["tags"])
    assert "Copyright (c) Music Technology Group" in (MODEL_DIR / "LICENSE-musicnn.txt").read_text(encoding="utf-8")


def test_converter_reproduces_the_model_folder(wheel: Path, tmp_path: Path) -> None:
    record = convert_wheel(wheel, tmp_path)
    for which in ("msd", "mtt"):
        assert (tmp_path / f"{which}.safetensors").read_bytes() == (MODEL_DIR / f"{which}.safetensors").read_bytes()
        assert record["models"][which]["trainable_parameters"] == TRAINABLE
    assert json.loads((tmp_path / "provenance.json").read_text()) == json.loads((MODEL_DIR / "provenance.json").read_text())
    assert (tmp_path / "LICENSE-musicnn.txt").read_bytes() == (MODEL_DIR / "LICENSE-musicnn.txt").read_bytes()


def test_converter_refuses_a_wheel_that_is_not_musicnn(tmp_path: Path) -> None:
    bogus = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    bogus.write_bytes(b"PK not really a zip")
    with pytest.raises(ConversionError, match="not a readable wheel"):
        convert_wheel(bogus, tmp_path / "out")


# --- the network against TensorFlow ---------------------------------------------------------------

@pytest.mark.parametrize("which", ["msd", "mtt"])
def test_network_matches_tensorflow_on_the_golden_patches(golden, nets, which: str) -> None:
    g, meta = golden
    x = torch.from_numpy(golden_patches(g, meta))
    with torch.inference_mode():
        pen, tags, pooled = nets[which](x, return_pooled=True)
    np.testing.assert_allclose(tags.numpy(), g[f"{which}.tags"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(pen.numpy(), g[f"{which}.penultimate"], rtol=0, atol=1e-4)
    # The pooled vector interleaves max and mean per channel (TF concat on a trailing axis).
    np.testing.assert_allclose(pooled.numpy()[:, 0::2], g[f"{which}.max_pool"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(pooled.numpy()[:, 1::2], g[f"{which}.mean_pool"], rtol=0, atol=1e-3)
    # Per-patch embeddings differ (musicnn.extractor's own return repeats the first one).
    assert not np.allclose(pen[0].numpy(), pen[1].numpy())
    assert nets[which].tags_labels[:2] == (["rock", "pop"] if which == "msd" else ["guitar", "classical"])


def test_batching_does_not_change_the_outputs(golden, nets) -> None:
    g, meta = golden
    p = golden_patches(g, meta)
    pen1, tags1 = embed(nets["msd"], p, batch=1)
    pen3, tags3 = embed(nets["msd"], p, batch=3)
    np.testing.assert_allclose(pen1, pen3, rtol=0, atol=1e-5)
    np.testing.assert_allclose(tags1, tags3, rtol=0, atol=1e-6)


def test_tf_same_padding_puts_the_odd_zero_after() -> None:
    assert tf_same_padding(128) == (63, 64)
    assert tf_same_padding(64) == (31, 32)
    assert tf_same_padding(7) == (3, 3)


# --- the log-mel front end -------------------------------------------------------------------------

def test_melspec_matches_librosa_on_the_golden_clip(golden) -> None:
    g, _ = golden
    mel = melspec.melspectrogram(golden_audio(g))
    ref = g["mel_power"]  # librosa 0.11 melspectrogram(sr=16000, n_fft=512, hop=256, n_mels=96)
    assert mel.shape == ref.shape == (1 + 160000 // 256, N_MELS) and mel.dtype == np.float32
    np.testing.assert_allclose(mel, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))


def test_log_mel_matches_musicnns_input(golden) -> None:
    g, _ = golden
    lm = melspec.log_mel(golden_audio(g))
    diff = np.abs(lm - g["logmel"])
    assert lm.shape == g["logmel"].shape
    # Equal up to float32 rounding: a few units in the last place of each value. (Counting exactly
    # equal values instead broke on numpy 2.4, whose float32 log10 rounds differently in the last
    # bit; a wrong scale, offset or log base moves values by many orders of magnitude more.)
    ulp = np.spacing(np.abs(g["logmel"]).astype(np.float32))
    assert diff.max() < 1e-5 and (diff <= 4 * ulp).all()


def test_melspec_matches_librosa_on_an_odd_length(golden) -> None:
    g, meta = golden
    n = meta["odd_length_samples"]  # not a multiple of the hop: both padded edges differ
    assert n % 256 != 0
    mel = melspec.melspectrogram(golden_audio(g)[:n])
    ref = g["mel_power_odd"]
    assert mel.shape == ref.shape == (1 + n // 256, N_MELS)
    np.testing.assert_allclose(mel, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))


def test_mel_filterbank_is_librosas_bit_for_bit() -> None:
    librosa = pytest.importorskip("librosa")  # a test extra; about 1.5 s to load its filters
    assert np.array_equal(melspec.mel_filterbank(), librosa.filters.mel(sr=16000, n_fft=512, n_mels=96))


def test_patches_hop_and_remainder() -> None:
    lm = np.arange(500 * N_MELS, dtype=np.float32).reshape(500, N_MELS)
    p = melspec.patches(lm)
    assert p.shape == (2, N_FRAMES, N_MELS)  # 0 and 187; 374 + 187 > 500 is dropped
    assert np.array_equal(p[1], lm[187:374])
    q = melspec.patches(lm, hop=94)
    assert q.shape == (4, N_FRAMES, N_MELS) and np.array_equal(q[3], lm[282:469])
    assert melspec.patches(lm[:186]).shape == (0, N_FRAMES, N_MELS)
    assert melspec.N_FRAMES == N_FRAMES and melspec.N_MELS == N_MELS


@pytest.mark.parametrize("which", ["msd", "mtt"])
def test_audio_to_tags_end_to_end_matches_tensorflow(golden, nets, which: str) -> None:
    g, _ = golden
    pen, tags = embed_audio(nets[which], golden_audio(g))
    np.testing.assert_allclose(tags, g[f"{which}.tags"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(pen, g[f"{which}.penultimate"], rtol=0, atol=1e-4)


# --- refusing what is not plain safetensors weights --------------------------------------------------

# A protocol-4 pickle of {'a': 1}, written out as bytes (never produced or read by pickle here).
PICKLE_BYTES = b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."


def model_copy(tmp_path: Path) -> Path:
    d = tmp_path / "musicnn"
    shutil.copytree(MODEL_DIR, d)
    return d


def test_a_pickle_in_place_of_the_weights_is_refused(tmp_path: Path) -> None:
    d = model_copy(tmp_path)
    (d / "msd.safetensors").write_bytes(PICKLE_BYTES)
    with pytest.raises(MusicnnWeightsError, match=r"msd\.safetensors.*not a safetensors file"):
        load_musicnn(d, "msd")
    torch.save({"timbral74.conv.weight": torch.zeros(3)}, d / "msd.safetensors")
    with pytest.raises(MusicnnWeightsError, match=r"msd\.safetensors.*not a safetensors file"):
        load_musicnn(d, "msd")
    assert isinstance(load_musicnn(d, "mtt"), MusiCNN)  # the other model is untouched


def test_a_truncated_or_symlinked_weights_file_is_refused(tmp_path: Path) -> None:
    d = model_copy(tmp_path)
    data = (d / "msd.safetensors").read_bytes()
    (d / "msd.safetensors").write_bytes(data[:-1000])
    with pytest.raises(MusicnnWeightsError, match=r"msd\.safetensors.*truncated"):
        load_musicnn(d, "msd")
    (d / "msd.safetensors").unlink()
    (d / "msd.safetensors").symlink_to(d / "mtt.safetensors")
    with pytest.raises(MusicnnWeightsError, match=r"msd\.safetensors.*cannot open"):
        load_musicnn(d, "msd")


def test_weights_of_the_wrong_shape_or_names_are_refused(tmp_path: Path) -> None:
    arrays, meta = read_weights(MODEL_DIR / "msd.safetensors")
    arrays["dense.bias"] = np.zeros(3, np.float32)
    save_file(arrays, str(tmp_path / "msd.safetensors"), metadata=meta)
    with pytest.raises(MusicnnWeightsError, match=r"msd\.safetensors.*dense\.bias"):
        load_musicnn(tmp_path, "msd")
    with pytest.raises(MusicnnWeightsError, match="unknown musicnn model"):
        load_musicnn(tmp_path, "vgg")


# --- the checkpoint reader on bundles written here, and corrupted ones ---------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int = 2) -> bytes:
    buf, restarts, prev = b"", [], b""
    for i, (k, v) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(buf))
        else:
            while shared < min(len(k), len(prev)) and k[shared] == prev[shared]:
                shared += 1
        buf += _varint(shared) + _varint(len(k) - shared) + _varint(len(v)) + k[shared:] + v
        prev = k
    return buf + struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))


def _trailer(contents: bytes, compression: int = 0) -> bytes:
    return contents + bytes([compression]) + struct.pack("<I", _mask(crc32c(contents + bytes([compression]))))


DT = {np.dtype("float32"): 1, np.dtype("int64"): 9, np.dtype("int32"): 3, np.dtype("float16"): 19}


def write_bundle(tensors: dict[str, np.ndarray], compression: int = 0) -> tuple[bytes, bytes]:
    """A minimal TF tensor bundle (.index, .data) as TF's BundleWriter lays it out."""
    data, entries = b"", [(b"", b"\x08\x01")]  # header: num_shards = 1
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        dims = b"".join(b"\x12" + _varint(len(_varint(d)) + 1) + b"\x08" + _varint(d) for d in a.shape)
        proto = (b"\x08" + _varint(DT[a.dtype]) + b"\x12" + _varint(len(dims)) + dims
                 + b"\x20" + _varint(len(data)) + b"\x28" + _varint(len(raw))
                 + b"\x35" + struct.pack("<I", _mask(crc32c(raw))))
        entries.append((name.encode(), proto))
        data += raw
    half = len(entries) // 2
    out, index_entries = b"", []
    for chunk in (entries[:half], entries[half:]):  # two data blocks
        block = _block(chunk)
        index_entries.append((chunk[-1][0], _varint(len(out)) + _varint(len(block))))
        out += _trailer(block, compression)
    meta_off, meta = len(out), _block([])
    out += _trailer(meta)
    index_off, index = len(out), _block(index_entries, restart_interval=1)
    out += _trailer(index)
    footer = _varint(meta_off) + _varint(len(meta)) + _varint(index_off) + _varint(len(index))
    out += footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57)
    return out, data


SAMPLE = {
    "batch_normalization/beta": np.arange(5, dtype=np.float32),
    "batch_normalization/gamma": np.linspace(-1, 1, 7, dtype=np.float32),
    "batch_normalization_1/moving_mean": np.float32([3.5]),
    "conv2d/kernel": np.random.default_rng(1).standard_normal((3, 4, 1, 2)).astype(np.float32),
    "global_step": np.array(1234567, dtype=np.int64),
    "half": np.float16([1.5, -2]),
}


def test_reader_reads_a_bundle_with_prefix_compressed_keys(tmp_path: Path) -> None:
    index, data = write_bundle(SAMPLE)
    (tmp_path / "m.index").write_bytes(index)
    (tmp_path / "m.data-00000-of-00001").write_bytes(data)
    got = read_checkpoint(tmp_path / "m", verify_data_crc=True)
    assert sorted(got) == sorted(SAMPLE)
    for k, v in SAMPLE.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:10] + bytes([b[10] ^ 0xFF]) + b[11:], "CRC mismatch"),
    (lambda b: b[:-1] + b"\x00", "bad table magic"),
    (lambda b: b[:30], "too short|bad table magic"),
    (lambda b: b"", "too short"),
    (lambda b: PICKLE_BYTES * 10, "bad table magic"),
])
def test_reader_refuses_a_corrupt_index_naming_the_file(tmp_path: Path, damage, message: str) -> None:
    index, data = write_bundle(SAMPLE)
    (tmp_path / "m.index").write_bytes(damage(index))
    (tmp_path / "m.data-00000-of-00001").write_bytes(data)
    with pytest.raises(CheckpointError, match=rf"m\.index: .*({message})"):
        read_checkpoint(tmp_path / "m")


def test_reader_refuses_compressed_blocks_and_short_data(tmp_path: Path) -> None:
    index, data = write_bundle(SAMPLE, compression=1)
    with pytest.raises(CheckpointError, match="compression type 1"):
        read_bundle(index, [data], "m.index")
    index, data = write_bundle(SAMPLE)
    with pytest.raises(CheckpointError, match="past the end of the data file"):
        read_bundle(index, [data[:-4]], "m.index")
    flipped = bytearray(data)
    flipped[0] ^= 1
    with pytest.raises(CheckpointError, match="data CRC mismatch"):
        read_bundle(index, [bytes(flipped)], "m.index", verify_data_crc=True)
    with pytest.raises(CheckpointError, match="cannot read checkpoint index"):
        read_checkpoint(tmp_path / "absent")


def test_reader_refuses_the_wheels_index_damaged(wheel: Path, tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        index = bytearray(zf.read("musicnn/MSD_musicnn/.index"))
    index[100] ^= 0x40
    (tmp_path / ".index").write_bytes(bytes(index))
    (tmp_path / ".data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"\.index: CRC mismatch"):
        read_checkpoint(str(tmp_path) + "/")
