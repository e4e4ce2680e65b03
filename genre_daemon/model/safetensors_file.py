"""Safetensors files the project ships: read without trusting them, written byte-for-byte reproducibly.

Why a module of its own: every pretrained front end (musicnn, EfficientAT) ships its weights as
safetensors and must refuse, before any parser sees it, whatever is not one (a pickle, a
``torch.save`` zip, a truncated file, a symlink); and its converter must write the same bytes,
hence the same sha256, on every run. The callers pass their own error class and a short name of
what they read, so a refusal is one clear line naming the file and the reason.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["DTYPES", "read_regular", "check_header", "safetensors_bytes"]

DTYPES: dict[str, np.dtype] = {"I64": np.dtype("<i8"), "F32": np.dtype("<f4")}
"""Safetensors dtype -> numpy dtype, in the order the safetensors library lays tensors out
(its ``Dtype`` enum, descending: I64 before F32); only these two are ever shipped."""


def read_regular(path: Path, what: str, error: type[Exception]) -> bytes:
    """The bytes of the regular file ``path``, opened without following a symlink at its last
    component; ``error`` ("<path>: cannot open <what> ...") when it is missing or not regular."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise error(f"{path}: cannot open {what} ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise error(f"{path}: not a regular file")
        return fh.read()


def check_header(path: Path, data: bytes, error: type[Exception], dtypes: tuple[str, ...] = ("F32",)) -> dict:
    """The JSON header of safetensors ``data``, validated before the library sees the bytes: an
    8-byte length, a JSON object, tensors of ``dtypes`` only, which exactly tile the rest."""
    if len(data) < 8:
        raise error(f"{path}: not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 2 or 8 + n > len(data) or data[8:9] != b"{":
        raise error(f"{path}: not a safetensors file (no JSON header; a pickle or "
                    f"torch.save file is never loaded)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a safetensors file (bad header: {exc})") from exc
    if not isinstance(header, dict):
        raise error(f"{path}: not a safetensors file (header is not an object)")
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if not isinstance(v, dict) or v.get("dtype") not in dtypes or not isinstance(v.get("data_offsets"), list):
            kinds = " or ".join({"F32": "float32", "I64": "int64"}.get(d, d) for d in dtypes)
            raise error(f"{path}: tensor {k!r} is not {kinds} (or its entry is malformed)")
        end = max(end, int(v["data_offsets"][1]))
    if 8 + n + end != len(data):
        raise error(f"{path}: truncated or padded safetensors file "
                    f"({len(data)} bytes, header describes {8 + n + end})")
    return header


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None,
                      sort_keys: bool = False) -> bytes:
    """A safetensors file of ``arrays`` (float32 or int64), byte-for-byte reproducible.

    Written by hand because the library serialises the metadata in hash order (so the same
    weights would get a different file, and sha256, on every conversion). The layout is the
    library's own otherwise: tensors by dtype (int64 first) then name, the header in that
    order with ``__metadata__`` (keys sorted) first when there is any, compact JSON padded
    with spaces to 8 bytes. Without metadata the result equals ``safetensors.save_file``'s.
    ``sort_keys`` sorts every JSON key instead (the layout the musicnn files were shipped in).
    """
    codes = {dt: code for code, dt in DTYPES.items()}
    typed = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        code = codes.get(a.dtype.newbyteorder("<")) if a.dtype.kind in "if" else None
        if code is None:
            raise ValueError(f"tensor {name!r} is {a.dtype}; only float32 and int64 are written")
        typed[name] = (code, np.asarray(a, dtype=DTYPES[code], order="C"))  # keeps 0-d shapes
    order = sorted(typed, key=lambda k: (list(DTYPES).index(typed[k][0]), k))
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    blobs, offset = [], 0
    for name in order:
        code, a = typed[name]
        blobs.append(a.tobytes())
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), sort_keys=sort_keys).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)
