"""Shipped musicnn weights: the TF-name mapping, and safetensors files that are read and written.

Why a module of its own: conversion (from the wheel, once) and loading (every daemon start)
share the parameter naming, and loading must refuse anything that is not a plain safetensors
file (never unpickle what sits in the model folder).

A model folder holds ``msd.safetensors`` and ``mtt.safetensors`` (raw float32 parameters in
PyTorch layouts, named as :data:`network.PARAM_SHAPES`; the tag list in the metadata),
``provenance.json`` and ``LICENSE-musicnn.txt``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from genre_daemon.model.safetensors_file import check_header, read_regular
from genre_daemon.model.safetensors_file import safetensors_bytes as shared_bytes

__all__ = ["MusicnnWeightsError", "MODELS", "tf_to_torch", "safetensors_bytes", "read_weights", "load_musicnn",
           "weights_path"]

MODELS = {"msd": "MSD_musicnn", "mtt": "MTT_musicnn"}
"""``which`` -> the checkpoint folder name inside the musicnn wheel."""

_BN = ("gamma", "beta", "moving_mean", "moving_variance")

# Order of layer creation in musicnn/models.py (tf.compat.v1.layers names them in that order).
_CONVS = ["timbral74", "timbral77", "temporal128", "temporal64", "temporal32", "mid1", "mid2", "mid3"]
_BNS = ["input_bn", "timbral74.bn", "timbral77.bn", "temporal128.bn", "temporal64.bn", "temporal32.bn",
        "mid1.bn", "mid2.bn", "mid3.bn", "pool_bn", "dense_bn"]


def _tf_names() -> dict[str, str]:
    """PyTorch parameter name -> TF checkpoint tensor name."""
    m: dict[str, str] = {}
    for i, name in enumerate(_CONVS):
        tf = "conv2d" if i == 0 else f"conv2d_{i}"
        m[f"{name}.conv.weight"] = f"{tf}/kernel"
        m[f"{name}.conv.bias"] = f"{tf}/bias"
    for i, name in enumerate(_BNS):
        tf = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
        for p in _BN:
            m[f"{name}.{p}"] = f"{tf}/{p}"
    for name, tf in (("dense", "dense"), ("tags", "dense_1")):
        m[f"{name}.weight"] = f"{tf}/kernel"
        m[f"{name}.bias"] = f"{tf}/bias"
    return m


TF_NAMES: dict[str, str] = _tf_names()


class MusicnnWeightsError(ValueError):
    """A musicnn weights file or folder is missing, not safetensors, or does not fit the network."""


def tf_to_torch(ckpt: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map a musicnn TF checkpoint (name -> array) to the raw PyTorch parameters.

    Conv kernels go from TF's (kh, kw, in, out) to (out, in, kh, kw), dense kernels from
    (in, out) to (out, in); values are copied bit for bit (float32). Optimiser slots (Adam)
    and counters in the checkpoint are ignored.
    """
    from genre_daemon.model.musicnn.network import PARAM_SHAPES

    out: dict[str, np.ndarray] = {}
    for name, tf in TF_NAMES.items():
        if tf not in ckpt:
            raise MusicnnWeightsError(f"checkpoint has no tensor {tf!r} (for {name}): not a musicnn model")
        a = np.asarray(ckpt[tf])
        if a.dtype != np.float32:
            raise MusicnnWeightsError(f"checkpoint tensor {tf!r} is {a.dtype}, expected float32")
        if a.ndim == 4:
            a = a.transpose(3, 2, 0, 1)
        elif a.ndim == 2:
            a = a.T
        a = np.ascontiguousarray(a)
        if a.shape != PARAM_SHAPES[name]:
            raise MusicnnWeightsError(f"checkpoint tensor {tf!r}: shape {a.shape} does not fit {name} "
                                      f"{PARAM_SHAPES[name]}")
        out[name] = a
    return out


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """A safetensors file of float32 ``arrays``, byte-for-byte reproducible (every JSON key sorted,
    tensors in name order: see :func:`genre_daemon.model.safetensors_file.safetensors_bytes`)."""
    return shared_bytes({k: np.asarray(a, dtype="<f4") for k, a in arrays.items()}, metadata, sort_keys=True)


def weights_path(directory: str | os.PathLike[str], which: str) -> Path:
    """``directory/<which>.safetensors`` for ``which`` in :data:`MODELS`."""
    if which not in MODELS:
        raise MusicnnWeightsError(f"unknown musicnn model {which!r} (one of {sorted(MODELS)})")
    return Path(directory) / f"{which}.safetensors"


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Raw parameters (name -> float32 array) and metadata of one musicnn safetensors file.

    Refuses, with :class:`MusicnnWeightsError` naming ``path``: a missing file, a symlink, a
    file that is not safetensors (a pickle, a ``torch.save`` archive), a truncated file, and
    tensors whose names or shapes do not fit the network.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load

    from genre_daemon.model.musicnn.network import PARAM_SHAPES

    p = Path(path)
    data = read_regular(p, "musicnn weights", MusicnnWeightsError)
    header = check_header(p, data, MusicnnWeightsError)
    try:
        arrays = load(data)
    except (SafetensorError, ValueError) as exc:
        raise MusicnnWeightsError(f"{p}: not a valid safetensors file: {exc}") from exc
    missing = sorted(set(PARAM_SHAPES) - set(arrays))
    extra = sorted(set(arrays) - set(PARAM_SHAPES))
    if missing or extra:
        raise MusicnnWeightsError(f"{p}: not musicnn weights (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, shape in PARAM_SHAPES.items():
        if arrays[k].shape != shape:
            raise MusicnnWeightsError(f"{p}: tensor {k} has shape {arrays[k].shape}, expected {shape}")
    meta = header.get("__metadata__") or {}
    return arrays, {str(k): str(v) for k, v in meta.items()}


def load_musicnn(directory: str | os.PathLike[str], which: str = "msd"):
    """The inference network ``which`` ("msd" or "mtt") from a converted model folder.

    Returns a :class:`~genre_daemon.model.musicnn.network.MusiCNN` in eval mode with its batch-norms
    folded; ``net.tags_labels`` holds the 50 tag names in output order.
    """
    import torch

    from genre_daemon.model.musicnn.network import N_TAGS, MusiCNN

    path = weights_path(directory, which)
    arrays, meta = read_weights(path)
    try:
        labels = json.loads(meta.get("tags", "[]"))
    except json.JSONDecodeError as exc:
        raise MusicnnWeightsError(f"{path}: malformed tag list in the metadata: {exc}") from exc
    if not isinstance(labels, list) or len(labels) != N_TAGS or not all(isinstance(t, str) for t in labels):
        raise MusicnnWeightsError(f"{path}: metadata needs the {N_TAGS} tag names (key 'tags')")
    return MusiCNN.from_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, labels)
