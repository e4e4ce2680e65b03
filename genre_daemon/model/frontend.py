"""The pretrained front end as the genre model sees it: musicnn nets, by identity, turned into
one input vector per 3-second patch.

Why a module of its own: the model directory names its front end (which musicnn nets, which of
their outputs, the sha256 of each weights file) rather than carrying a copy of it, and every
consumer (inference, training, the feature cache, the rehearsal set) must agree on what a
"patch vector" is. This module is that agreement: :class:`FrontEnd` (the identity stored in
``model.json``), :func:`musicnn_dir` (where the shipped weights are), :func:`load_embedder`
(the nets, refused unless their bytes are the ones the model was trained with) and
:class:`Embedder` (log-mel patches or 16 kHz audio -> ``(n_patches, n_inputs)`` float32).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genre_daemon.errors import ModelError
from genre_daemon.model.musicnn import melspec
from genre_daemon.resources import musicnn_dir

if TYPE_CHECKING:
    from genre_daemon.model.musicnn.network import MusiCNN

NAME = "musicnn"
SAMPLE_RATE = melspec.SR
PATCH_FRAMES = melspec.N_FRAMES
HOP_LENGTH = melspec.HOP
# Samples one patch spans: frames centred at 0, 256, ... 186 * 256, each n_fft wide.
PATCH_SECONDS = (PATCH_FRAMES - 1) * HOP_LENGTH / SAMPLE_RATE  # 2.976 s
NETS = ("msd", "mtt")
OUTPUT_DIMS = {"penultimate": 200, "tags": 50, "pooled": 1506}
INPUT_KINDS = tuple(f"{net}_{out}" for net in NETS for out in OUTPUT_DIMS)
"""Every input a model may ask for: ``<net>_<output>``, e.g. ``msd_penultimate``."""
DEFAULT_INPUTS = ("msd_penultimate", "msd_tags")
BATCH = 8  # patches per forward pass (the front end runs them one by one anyway)


def check_inputs(inputs: Sequence[str]) -> tuple[str, ...]:
    """``inputs`` as a tuple, refused (ValueError naming the bad one) unless each is a known
    kind, none repeats and there is at least one."""
    out = tuple(str(i) for i in inputs)
    if not out:
        raise ValueError("a model needs at least one input (e.g. msd_penultimate)")
    for i in out:
        if i not in INPUT_KINDS:
            raise ValueError(f"unknown input {i!r}; known: {', '.join(INPUT_KINDS)}")
    if len(set(out)) != len(out):
        raise ValueError(f"inputs repeat: {list(out)}")
    return out


def input_dim(inputs: Sequence[str]) -> int:
    """Length of the concatenated patch vector of ``inputs``."""
    return sum(OUTPUT_DIMS[i.split("_", 1)[1]] for i in check_inputs(inputs))


def nets_of(inputs: Sequence[str]) -> list[str]:
    """The musicnn nets ``inputs`` need, in :data:`NETS` order."""
    wanted = {i.split("_", 1)[0] for i in check_inputs(inputs)}
    return [n for n in NETS if n in wanted]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (a weights file is a few MB: read whole)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class FrontEnd:
    """The identity of the front end a model was trained on: which nets (and the sha256 of each
    weights file), where they came from, under what licence. Stored as ``model.json`` ``frontend``."""

    nets: tuple[tuple[str, str], ...]  # (which, sha256 of <which>.safetensors), in NETS order
    source: str = ""
    wheel: str = ""
    wheel_sha256: str = ""
    licence: str = ""

    @classmethod
    def from_directory(cls, inputs: Sequence[str], directory: Path | None = None) -> "FrontEnd":
        """The identity of the weights in ``directory`` (default :func:`musicnn_dir`) that
        ``inputs`` need, read from the files themselves (and the provenance beside them)."""
        root = Path(directory) if directory is not None else musicnn_dir()
        try:
            prov = json.loads((root / "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{root}: no readable musicnn provenance.json ({exc}); "
                             "is this the models/musicnn folder?") from exc
        nets = []
        for which in nets_of(inputs):
            path = root / f"{which}.safetensors"
            try:
                nets.append((which, file_sha256(path)))
            except OSError as exc:
                raise ModelError(f"{path}: cannot read musicnn weights: {exc.strerror or exc}") from exc
        return cls(nets=tuple(nets), source=str(prov.get("source", "")), wheel=str(prov.get("wheel", "")),
                   wheel_sha256=str(prov.get("wheel_sha256", "")), licence=str(prov.get("licence", "")))

    @property
    def sha256(self) -> dict[str, str]:
        return dict(self.nets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": NAME,
            "nets": {w: {"file": f"{w}.safetensors", "sha256": h} for w, h in self.nets},
            "source": self.source, "wheel": self.wheel, "wheel_sha256": self.wheel_sha256, "licence": self.licence,
            "sample_rate": SAMPLE_RATE, "n_fft": melspec.N_FFT, "hop_length": HOP_LENGTH, "n_mels": melspec.N_MELS,
            "patch_frames": PATCH_FRAMES,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "FrontEnd":
        """Parse ``model.json`` ``frontend``; ValueError unless it is this project's musicnn
        front end with the parameters this code computes."""
        if not isinstance(data, dict) or data.get("name") != NAME:
            raise ValueError(f"front end must be {NAME!r}, got {data.get('name') if isinstance(data, dict) else data!r}")
        fixed = {"sample_rate": SAMPLE_RATE, "n_fft": melspec.N_FFT, "hop_length": HOP_LENGTH,
                 "n_mels": melspec.N_MELS, "patch_frames": PATCH_FRAMES}
        for key, want in fixed.items():
            if data.get(key) != want:
                raise ValueError(f"front end {key} is {data.get(key)!r}; this version computes {want}")
        nets = data.get("nets")
        if not isinstance(nets, dict) or not nets:
            raise ValueError("front end names no nets")
        pairs = []
        for which in NETS:
            if which in nets:
                h = nets[which].get("sha256") if isinstance(nets[which], dict) else None
                if not isinstance(h, str) or len(h) != 64:
                    raise ValueError(f"front end net {which!r} has no sha256")
                pairs.append((which, h))
        if len(pairs) != len(nets):
            raise ValueError(f"unknown front-end nets {sorted(set(nets) - set(NETS))}")
        return cls(nets=tuple(pairs), source=str(data.get("source", "")), wheel=str(data.get("wheel", "")),
                   wheel_sha256=str(data.get("wheel_sha256", "")), licence=str(data.get("licence", "")))

    def identity(self, inputs: Sequence[str]) -> str:
        """A stable text naming exactly what a patch vector of ``inputs`` is (for cache keys)."""
        return json.dumps({"nets": dict(self.nets), "inputs": list(inputs), "patch_frames": PATCH_FRAMES},
                          sort_keys=True, separators=(",", ":"))


_NETS: dict[tuple[str, str], "MusiCNN"] = {}
_NETS_LOCK = threading.Lock()


def _load_net(directory: Path, which: str, sha256: str) -> "MusiCNN":
    """One musicnn net, after checking its file is the one named by ``sha256``; loaded once per
    process (a daemon switching models, or a test session, shares it)."""
    from genre_daemon.model.musicnn.weights import MusicnnWeightsError, load_musicnn, weights_path

    path = weights_path(directory, which)
    key = (os.path.realpath(path), sha256)
    with _NETS_LOCK:
        if key in _NETS:
            return _NETS[key]
        try:
            got = file_sha256(path)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the musicnn weights this model needs "
                             f"({exc.strerror or exc}); set GENRE_DAEMON_MUSICNN to the models/musicnn folder") from exc
        if got != sha256:
            raise ModelError(f"{path}: sha256 {got[:16]}... is not the {which} front end this model was trained "
                             f"with ({sha256[:16]}...); its patch vectors would mean something else. Use the "
                             "musicnn weights shipped with the model, or retrain the model on these")
        try:
            net = load_musicnn(directory, which)
        except MusicnnWeightsError as exc:
            raise ModelError(str(exc)) from exc
        _NETS[key] = net
        return net


class Embedder:
    """Log-mel patches -> the model's patch vectors: the requested outputs of each net,
    concatenated in ``inputs`` order, float32."""

    def __init__(self, inputs: Sequence[str], nets: dict[str, "MusiCNN"]) -> None:
        self.inputs = check_inputs(inputs)
        self.nets = nets
        self.dim = input_dim(self.inputs)
        self._pooled = {i.split("_")[0] for i in self.inputs if i.endswith("_pooled")}

    def patch_vectors(self, patches: np.ndarray, batch: int = BATCH) -> np.ndarray:
        """``(n, 187, 96)`` log-mel patches -> ``(n, dim)`` float32 (no autograd, batched)."""
        import torch

        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, melspec.N_MELS):
            raise ValueError(f"expected log-mel patches (n, {PATCH_FRAMES}, {melspec.N_MELS}), got {patches.shape}")
        n = patches.shape[0]
        out = np.empty((n, self.dim), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, n, batch):
                x = torch.from_numpy(np.ascontiguousarray(patches[s:s + batch], dtype=np.float32))
                got: dict[str, np.ndarray] = {}
                for which, net in self.nets.items():
                    res = net(x, return_pooled=which in self._pooled)
                    got[f"{which}_penultimate"], got[f"{which}_tags"] = res[0].numpy(), res[1].numpy()
                    if which in self._pooled:
                        got[f"{which}_pooled"] = res[2].numpy()
                out[s:s + batch] = np.concatenate([got[i] for i in self.inputs], axis=1)
        return out

    def audio_vectors(self, y16k: np.ndarray, hop_frames: int) -> np.ndarray:
        """Every patch of 16 kHz audio, one every ``hop_frames`` frames -> ``(n, dim)``.
        Audio shorter than a patch gives one patch of it repeated (as :func:`cut_patches`)."""
        logmel = melspec.log_mel(y16k)
        return self.patch_vectors(cut_patches(logmel, hop_starts(logmel.shape[0], hop_frames)))


def load_embedder(frontend: FrontEnd, inputs: Sequence[str], directory: Path | None = None) -> Embedder:
    """The :class:`Embedder` of a model: its nets from ``directory`` (default :func:`musicnn_dir`),
    each refused with a ModelError unless its sha256 is the one ``frontend`` names."""
    root = Path(directory) if directory is not None else musicnn_dir()
    named = frontend.sha256
    nets = {}
    for which in nets_of(inputs):
        if which not in named:
            raise ModelError(f"input {which}_* needs the {which} front end, which the model's front end does not name")
        nets[which] = _load_net(root, which, named[which])
    return Embedder(inputs, nets)


def hop_starts(n_frames: int, hop_frames: int) -> list[int]:
    """Start frames of patches every ``hop_frames`` over ``n_frames`` log-mel frames (at least one)."""
    if hop_frames < 1:
        raise ValueError("hop_frames must be >= 1")
    return list(range(0, max(1, n_frames - PATCH_FRAMES + 1), hop_frames))


def spread_starts(n_frames: int, count: int) -> list[int]:
    """Start frames of up to ``count`` patches spread evenly over ``n_frames`` frames, first and
    last patch at the ends; fewer when the audio holds fewer distinct patches (overlap at most
    three quarters)."""
    last = n_frames - PATCH_FRAMES
    if last <= 0 or count <= 1:
        return [max(0, last // 2)]
    count = max(1, min(count, last // (PATCH_FRAMES // 4) + 1))
    return sorted({int(round(v)) for v in np.linspace(0, last, count)})


def cut_patches(logmel: np.ndarray, starts: Sequence[int]) -> np.ndarray:
    """``(len(starts), 187, 96)`` patches of a log-mel at ``starts``; a log-mel shorter than one
    patch is tiled to fill it (a 2.5 s file still gets a vector, as the daemon must classify it)."""
    if logmel.shape[0] < PATCH_FRAMES:
        reps = -(-PATCH_FRAMES // max(1, logmel.shape[0]))
        logmel = np.concatenate([logmel] * reps)[:PATCH_FRAMES]
    return np.stack([logmel[s:s + PATCH_FRAMES] for s in starts]).astype(np.float32, copy=False)
