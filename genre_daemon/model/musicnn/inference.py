"""Run musicnn over many patches: batched, without autograd, on CPU.

Why: a song gives one patch per 3 s; batching them amortises the convolution set-up, and
``torch.inference_mode`` skips autograd book-keeping.
"""

from __future__ import annotations

import numpy as np
import torch

from genre_daemon.model.musicnn.melspec import log_mel, patches as cut_patches
from genre_daemon.model.musicnn.network import EMBED_DIM, N_TAGS, MusiCNN

__all__ = ["embed", "embed_audio"]


def embed(net: MusiCNN, patches: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate (n, 200), tags (n, 50)) float32 for log-mel ``patches`` (n, 187, 96).

    ``batch`` patches go through the network at a time (the front end still runs them one by
    one, see :meth:`MusiCNN.front_end`: speed per patch hardly depends on ``batch``).
    """
    if patches.ndim != 3:
        raise ValueError(f"expected patches (n, frames, 96), got shape {patches.shape}")
    if batch < 1:
        raise ValueError("batch must be >= 1")
    n = patches.shape[0]
    pen = np.empty((n, EMBED_DIM), dtype=np.float32)
    tags = np.empty((n, N_TAGS), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, n, batch):
            p, t = net(torch.from_numpy(np.ascontiguousarray(patches[s:s + batch], dtype=np.float32)))
            pen[s:s + batch] = p.numpy()
            tags[s:s + batch] = t.numpy()
    return pen, tags


def embed_audio(net: MusiCNN, y16k: np.ndarray, hop: int = 187, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Audio (16 kHz mono float) -> per-patch (penultimate, tags), patches every ``hop`` frames."""
    return embed(net, cut_patches(log_mel(y16k), hop), batch)
