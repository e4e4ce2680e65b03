"""The shipped mn04_as weights and class names, refused unless their bytes are the ones in provenance.json.

Why a module of its own: loading runs at every start and must never unpickle what sits in the
model folder, nor run on weights other than those the port was checked with. So the folder's
``provenance.json`` names the sha256 of ``mn04_as.safetensors`` and of the AudioSet class list;
a file is read whole (never through a symlink), its safetensors framing checked, its sha256
compared, and only then parsed. A pickle, a ``torch.save`` zip or a file with one byte changed
is refused with a :class:`~genre_daemon.errors.ModelError` naming it.

A model folder (``models/efficientat``) holds ``mn04_as.safetensors`` (the 312 tensors of the
original ``mn04_as_mAP_432.pt``, names unchanged), ``class_labels_indices.csv`` (AudioSet's 527
class names in output order), ``provenance.json``, ``LICENSE-EfficientAT.txt`` (MIT) and
``NOTICE-AudioSet.txt`` (the class names' attribution).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genre_daemon.errors import ModelError
from genre_daemon.model.safetensors_file import check_header, read_regular
from genre_daemon.resources import shipped

if TYPE_CHECKING:
    from genre_daemon.model.efficientat.network import MN04

__all__ = ["WEIGHTS_FILE", "LABELS_FILE", "PROVENANCE_FILE", "LICENCE_FILE", "NOTICE_FILE", "N_TENSORS",
           "GENRE_ROWS", "model_dir", "read_provenance", "read_weights", "parse_labels", "read_labels", "load_mn04"]

WEIGHTS_FILE = "mn04_as.safetensors"
LABELS_FILE = "class_labels_indices.csv"
PROVENANCE_FILE = "provenance.json"
LICENCE_FILE = "LICENSE-EfficientAT.txt"
NOTICE_FILE = "NOTICE-AudioSet.txt"
N_TENSORS = 312  # 208 float32 parameters and buffers, 104 int64 batch-norm counters
GENRE_ROWS = range(216, 266)
"""AudioSet's 50 music-genre classes ("Pop music" ... "Independent music"): output indices 216-265."""


def model_dir() -> Path:
    """The shipped EfficientAT folder: ``$GENRE_DAEMON_EFFICIENTAT``, or ``models/efficientat``."""
    return shipped("models/efficientat", PROVENANCE_FILE, env="GENRE_DAEMON_EFFICIENTAT")


def read_provenance(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``provenance.json`` of a model folder; ModelError unless it names both files' sha256."""
    path = Path(directory) / PROVENANCE_FILE
    try:
        prov = json.loads(read_regular(path, "EfficientAT provenance", ModelError).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable EfficientAT provenance: {exc}") from exc
    for key, name in (("weights", WEIGHTS_FILE), ("labels", LABELS_FILE)):
        entry = prov.get(key) if isinstance(prov, dict) else None
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(sha, str) or len(sha) != 64 or entry.get("file") != name:
            raise ModelError(f"{path}: names no sha256 for {name} (key {key!r}); is this the models/efficientat folder?")
    return prov


def _check_sha256(path: Path, data: bytes, what: str, sha256: str) -> bytes:
    """``data`` (read from ``path``), refused unless its sha256 is ``sha256``."""
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ModelError(f"{path}: sha256 {got[:16]}... is not that of the shipped {what} ({sha256[:16]}..., "
                         f"{PROVENANCE_FILE}); refusing other bytes. Restore the file from the release")
    return data


def read_weights(path: str | os.PathLike[str], sha256: str) -> dict[str, Any]:
    """The tensors (name -> torch tensor) of the safetensors file ``path`` whose sha256 must be
    ``sha256``. The framing is checked first (a pickle or zip is named as such and never parsed),
    then the bytes' sha256, and only then does the safetensors library read them."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    p = Path(path)
    data = read_regular(p, "EfficientAT weights", ModelError)
    check_header(p, data, ModelError, dtypes=("F32", "I64"))
    _check_sha256(p, data, "EfficientAT weights", sha256)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ModelError(f"{p}: not a valid safetensors file: {exc}") from exc
    if len(tensors) != N_TENSORS:
        raise ModelError(f"{p}: {len(tensors)} tensors, mn04_as has {N_TENSORS}")
    return tensors


def parse_labels(text: str, where: str) -> list[str]:
    """The 527 display names of AudioSet's ``class_labels_indices.csv`` (``index,mid,display_name``)
    in output order; ModelError naming ``where`` unless the indices run 0..526."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != ["index", "mid", "display_name"]:
        raise ModelError(f"{where}: not AudioSet's class_labels_indices.csv (header {rows[:1]})")
    names = []
    for i, row in enumerate(rows[1:]):
        if len(row) != 3 or row[0] != str(i):
            raise ModelError(f"{where}: row {i + 2} is not class {i} ({row!r})")
        names.append(row[2])
    from genre_daemon.model.efficientat.network import N_CLASSES

    if len(names) != N_CLASSES:
        raise ModelError(f"{where}: {len(names)} classes, mn04_as has {N_CLASSES}")
    return names


def read_labels(directory: str | os.PathLike[str], sha256: str) -> list[str]:
    """The 527 class names of a model folder, refused unless the CSV's sha256 is ``sha256``."""
    path = Path(directory) / LABELS_FILE
    data = _check_sha256(path, read_regular(path, "AudioSet class list", ModelError), "AudioSet class list", sha256)
    return parse_labels(data.decode("utf-8"), str(path))


def load_mn04(directory: str | os.PathLike[str] | None = None) -> tuple["MN04", list[str]]:
    """``(net, labels)``: the mn04_as network in eval mode, no autograd, from ``directory``
    (default :func:`model_dir`), after every check above; ``labels`` the 527 class names."""
    from genre_daemon.model.efficientat.network import MN04  # noqa: F811 (torch, imported on use)

    root = Path(directory) if directory is not None else model_dir()
    prov = read_provenance(root)
    tensors = read_weights(root / WEIGHTS_FILE, prov["weights"]["sha256"])
    labels = read_labels(root, prov["labels"]["sha256"])
    net = MN04()
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{root / WEIGHTS_FILE}: tensors do not fit mn04: {exc}") from exc
    net.eval()
    net.requires_grad_(False)
    return net, labels
