"""The musicnn network (Pons & Serra 2019, ``MSD_musicnn`` / ``MTT_musicnn``) in PyTorch, inference only.

Why a port: the pretrained front end gives the genre model 200-d embeddings learnt from a
million songs, and the daemon must run it on CPU without TensorFlow.

Architecture (musicnn/models.py, ``build_musicnn``), input a log-mel patch ``(B, 187, 96)``:

* batch-norm of the input (one channel);
* front end: timbral convs 7x38 and 7x67 (204 filters, input zero-padded 3+3 in time,
  'valid' in frequency) and temporal convs 128x1, 64x1, 32x1 (51 filters, TF 'same': (k-1)//2
  zeros before, the rest after), each ReLU -> batch-norm -> max over frequency: 561 channels;
* mid end: three 1-D convs over time (kernel 7, zero-padded 3+3, 64 channels), each ReLU ->
  batch-norm, the 2nd and 3rd with a residual connection; concatenated with the front end: 753;
* back end: max and mean over time, flattened *interleaved* (max0, mean0, max1, ...: TF's
  concat on a trailing axis), batch-norm, dense 200 + ReLU + batch-norm (the "penultimate"
  embedding), dense 50 (logits; the tags are their sigmoid). Dropout is off at inference.

All batch-norms use TF's epsilon 1e-3. The stored (raw) parameters are those of the TF
checkpoint in PyTorch layouts (see :data:`PARAM_SHAPES`); :meth:`MusiCNN.from_state_dict`
folds every batch-norm into an affine transform at load time: the input BN is applied as a
scale and shift, the front-end BNs after the frequency max (exact, since an affine map with a
positive scale commutes with max; a negative scale takes the min instead), and the BN before
the penultimate dense layer into that layer's weights.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MusiCNN", "PARAM_SHAPES", "N_FRAMES", "N_MELS", "EMBED_DIM", "N_TAGS", "POOLED_DIM",
           "BN_EPS", "tf_same_padding"]

N_FRAMES = 187  # 3 s at 16 kHz, hop 256
N_MELS = 96
N_TAGS = 50
EMBED_DIM = 200
FRONT_CHANNELS = 2 * 204 + 3 * 51  # 561
MID_CHANNELS = 64
POOLED_CHANNELS = FRONT_CHANNELS + 3 * MID_CHANNELS  # 753
POOLED_DIM = 2 * POOLED_CHANNELS  # 1506
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default (PyTorch's is 1e-5)

TIMBRAL = {"timbral74": (7, 38), "timbral77": (7, 67)}  # int(0.4 * 96), int(0.7 * 96)
TEMPORAL = {"temporal128": 128, "temporal64": 64, "temporal32": 32}
MIDEND = ("mid1", "mid2", "mid3")


def _bn_shapes(name: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.{p}": (n,) for p in ("gamma", "beta", "moving_mean", "moving_variance")}


def _param_shapes() -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {}
    s.update(_bn_shapes("input_bn", 1))
    for name, (kt, kf) in TIMBRAL.items():
        s[f"{name}.conv.weight"] = (204, 1, kt, kf)
        s[f"{name}.conv.bias"] = (204,)
        s.update(_bn_shapes(f"{name}.bn", 204))
    for name, k in TEMPORAL.items():
        s[f"{name}.conv.weight"] = (51, 1, k, 1)
        s[f"{name}.conv.bias"] = (51,)
        s.update(_bn_shapes(f"{name}.bn", 51))
    for name, cin in zip(MIDEND, (FRONT_CHANNELS, MID_CHANNELS, MID_CHANNELS)):
        s[f"{name}.conv.weight"] = (MID_CHANNELS, 1, 7, cin)  # TF conv2d over (time, channels)
        s[f"{name}.conv.bias"] = (MID_CHANNELS,)
        s.update(_bn_shapes(f"{name}.bn", MID_CHANNELS))
    s.update(_bn_shapes("pool_bn", POOLED_DIM))
    s["dense.weight"] = (EMBED_DIM, POOLED_DIM)
    s["dense.bias"] = (EMBED_DIM,)
    s.update(_bn_shapes("dense_bn", EMBED_DIM))
    s["tags.weight"] = (N_TAGS, EMBED_DIM)
    s["tags.bias"] = (N_TAGS,)
    return s


PARAM_SHAPES: dict[str, tuple[int, ...]] = _param_shapes()
"""Every raw parameter of the network (names as stored in the safetensors files) and its shape."""


def tf_same_padding(k: int) -> tuple[int, int]:
    """Zeros before and after for TF 'same' padding of a stride-1 kernel of size ``k``."""
    return (k - 1) // 2, k - 1 - (k - 1) // 2


def _affine(sd: Mapping[str, torch.Tensor], name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference batch-norm ``name`` as ``x * scale + shift`` (float64 maths, float32 result)."""
    g, b = sd[f"{name}.gamma"].double(), sd[f"{name}.beta"].double()
    m, v = sd[f"{name}.moving_mean"].double(), sd[f"{name}.moving_variance"].double()
    scale = g / torch.sqrt(v + BN_EPS)
    return scale.float(), (b - m * scale).float()


class MusiCNN(nn.Module):
    """musicnn with its batch-norms folded: ``forward(x)`` maps log-mel patches ``(B, 187, 96)``
    to ``(penultimate (B, 200), tags (B, 50))``, plus the pooled ``(B, 1506)`` vector (the input
    of the back end's batch-norm, max and mean interleaved) when ``return_pooled``.

    Build it with :meth:`from_state_dict` (raw parameters, :data:`PARAM_SHAPES`). Any number
    of frames >= 1 works (musicnn is fully convolutional up to the pooling); 187 is what it
    was trained on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tags_labels: list[str] = []
        self.front_chunk = 1

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], labels: list[str] | None = None) -> "MusiCNN":
        """Fold the raw parameters ``sd`` into the inference network (checks names and shapes)."""
        missing = sorted(set(PARAM_SHAPES) - set(sd))
        extra = sorted(set(sd) - set(PARAM_SHAPES))
        if missing or extra:
            raise ValueError(f"musicnn parameters: missing {missing[:5]}, unexpected {extra[:5]}")
        for k, shape in PARAM_SHAPES.items():
            if tuple(sd[k].shape) != shape:
                raise ValueError(f"musicnn parameter {k}: shape {tuple(sd[k].shape)}, expected {shape}")
        sd = {k: v.detach().to(torch.float32).cpu() for k, v in sd.items()}
        net = cls()
        net.tags_labels = list(labels or [])
        reg = net.register_buffer
        s, b = _affine(sd, "input_bn")
        reg("in_scale", s.reshape(()))
        reg("in_shift", b.reshape(()))
        for name in (*TIMBRAL, *TEMPORAL):
            reg(f"{name}_w", sd[f"{name}.conv.weight"].contiguous())
            reg(f"{name}_b", sd[f"{name}.conv.bias"].contiguous())
            s, b = _affine(sd, f"{name}.bn")
            reg(f"{name}_s", s)
            reg(f"{name}_t", b)
        for name in MIDEND:
            # (64, 1, 7, C_in) over (time, channel) -> Conv1d weight (64, C_in, 7).
            reg(f"{name}_w", sd[f"{name}.conv.weight"][:, 0].permute(0, 2, 1).contiguous())
            reg(f"{name}_b", sd[f"{name}.conv.bias"].contiguous())
            s, b = _affine(sd, f"{name}.bn")
            reg(f"{name}_s", s.reshape(1, -1, 1))
            reg(f"{name}_t", b.reshape(1, -1, 1))
        # pool_bn folded into the dense layer: W (x*s + t) + c = (W*s) x + (W t + c).
        s, t = _affine(sd, "pool_bn")
        w = sd["dense.weight"].double()
        reg("dense_w", (w * s.double()).float().contiguous())
        reg("dense_b", (sd["dense.bias"].double() + w @ t.double()).float())
        s, t = _affine(sd, "dense_bn")
        reg("dense_s", s)
        reg("dense_t", t)
        reg("tags_w", sd["tags.weight"].contiguous())
        reg("tags_b", sd["tags.bias"].contiguous())
        net.eval()
        net.requires_grad_(False)
        return net

    def _freq_pooled(self, name: str, conv: torch.Tensor) -> torch.Tensor:
        """ReLU -> BN -> max over frequency of ``conv`` (B, C, T, F), as (B, C, T)."""
        s = getattr(self, f"{name}_s")
        t = getattr(self, f"{name}_t")
        hi = conv.amax(dim=3)
        if bool((s < 0).any()):  # max of a*x+b with a < 0 is a*min(x)+b
            hi = torch.where((s >= 0).reshape(1, -1, 1), hi, conv.amin(dim=3))
        b = getattr(self, f"{name}_b").reshape(1, -1, 1)
        return torch.relu(hi + b) * s.reshape(1, -1, 1) + t.reshape(1, -1, 1)

    def front_end(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel patches (B, T, 96) -> front-end features (B, 561, T).

        Runs ``front_chunk`` patches at a time: the un-pooled conv outputs are ~24 MB per
        patch, and on CPU larger batches only add memory traffic (measured: 1 is fastest).
        """
        if x.shape[0] > self.front_chunk:
            return torch.cat([self._front(c) for c in x.split(self.front_chunk)], dim=0)
        return self._front(x)

    def _front(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * self.in_scale + self.in_shift).unsqueeze(1)  # (B, 1, T, F)
        feats = []
        xp = F.pad(x, (0, 0, 3, 3))
        for name in TIMBRAL:
            feats.append(self._freq_pooled(name, F.conv2d(xp, getattr(self, f"{name}_w"))))
        for name, k in TEMPORAL.items():
            xp = F.pad(x, (0, 0, *tf_same_padding(k)))
            feats.append(self._freq_pooled(name, F.conv2d(xp, getattr(self, f"{name}_w"))))
        return torch.cat(feats, dim=1)

    def _mid(self, name: str, h: torch.Tensor) -> torch.Tensor:
        y = torch.relu(F.conv1d(h, getattr(self, f"{name}_w"), getattr(self, f"{name}_b"), padding=3))
        return y * getattr(self, f"{name}_s") + getattr(self, f"{name}_t")

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel patches (B, T, 96) -> pooled (B, 1506): per channel max then mean over time."""
        front = self.front_end(x)
        c1 = self._mid("mid1", front)
        c2 = self._mid("mid2", c1) + c1
        c3 = self._mid("mid3", c2) + c2
        feats = torch.cat([front, c1, c2, c3], dim=1)  # (B, 753, T)
        return torch.stack([feats.amax(dim=2), feats.mean(dim=2)], dim=2).flatten(1)

    def head(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled (B, 1506) -> (penultimate (B, 200), tags (B, 50) in [0, 1])."""
        pen = torch.relu(F.linear(pooled, self.dense_w, self.dense_b)) * self.dense_s + self.dense_t
        return pen, torch.sigmoid(F.linear(pen, self.tags_w, self.tags_b))

    def forward(self, x: torch.Tensor, return_pooled: bool = False):  # type: ignore[override]
        if x.dim() != 3 or x.shape[2] != N_MELS:
            raise ValueError(f"musicnn expects log-mel patches (batch, frames, {N_MELS}), got {tuple(x.shape)}")
        pooled = self.pooled(x.to(torch.float32))
        pen, tags = self.head(pooled)
        return (pen, tags, pooled) if return_pooled else (pen, tags)
