"""Content-addressed cache of training features: retraining never decodes a file twice.

An entry is the list of patch-vector arrays of one file (clean decode first, then its augmented
copies) and, for a model with AudioSet's prior, the file's AudioSet window logits as inference
reads them (what the retrain's gate fuses with the network's outputs), keyed by the file's content
hash and by a *recipe*: a digest of everything that changes them (both front ends' identity: the
sha256 of each musicnn weights file and which of its outputs are used, the tagger's weights sha256
and window count; the patch hop, augmentations, training excerpt length, code revision). Moving
or renaming a file keeps its entry; editing it, or changing the recipe (another front end, a
round-1 cache of librosa features), misses, so vectors of two embedding spaces never mix.

Layout: ``root/<hex[:2]>/<hex>-<recipe>.safetensors`` with tensors ``v0``, ``v1``, ... stored as
float16 (half the disk of float32; measured harmless: see :data:`STORE_DTYPE`) and returned as
float32, and ``logits`` (float32, a few KB: kept exact, so the gate scores a file as inference
does). safetensors only, read from bytes opened with ``O_NOFOLLOW``: nothing is ever
unpickled, and a symlink planted in the cache is never followed. A corrupt, truncated or foreign
entry is logged, removed and treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from genre_daemon.atomic import atomic_write
from genre_daemon.model.frontend import FrontEnd

log = logging.getLogger(__name__)

# Bump when the log-mel, the front end's code or an augmentation changes numerically: every
# cached entry of the old recipe then misses (and can be removed by hand or left to rot).
# Revision 1 was the round-1 librosa-style features.
FEATURES_REVISION = 2
# float16 keeps ~3 significant digits (max relative error 5e-4; musicnn's penultimate values are
# below ~10 and its tags in [0, 1]).
STORE_DTYPE = np.float16
FORMAT = "genre-daemon-features/1"
SUFFIX = ".safetensors"
MAX_ENTRY_BYTES = 512 << 20  # refuse to read anything larger: no legitimate entry comes close
TRAIN_SECONDS = 60.0  # at most this much of one training file is used, from its middle (part of the recipe)

LOGITS = "logits"  # the tensor holding AudioSet's window logits, where the recipe has a tagger
_HEX = re.compile(r"[0-9a-f]{16,128}")
_RECIPE = re.compile(r"[0-9a-f]{8,64}")


def recipe_key(frontend: FrontEnd, inputs: Sequence[str], hop_frames: int, augment: Sequence[str],
               tagger: Mapping[str, object] | None = None) -> str:
    """A short stable digest of everything that changes the cached vectors of a file; ``tagger``
    (:func:`tagger_recipe`) when its entries also hold AudioSet's window logits."""
    spec = {
        "revision": FEATURES_REVISION,
        "frontend": json.loads(frontend.identity(inputs)),  # weights sha256 + inputs + patch length
        "hop_frames": int(hop_frames),
        "augment": list(augment),  # order matters: it is the order of the variants
        "train_seconds": float(TRAIN_SECONDS),
        # Absent, not None, without a tagger: a musicnn-only (format 2) recipe keeps its old key.
        **({"tagger": dict(tagger)} if tagger is not None else {}),
    }
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tagger_recipe(identity: Mapping[str, object], windows: int) -> dict[str, object]:
    """The tagger's part of a recipe: its weights (by sha256) and how many windows a file gives."""
    return {"weights_sha256": identity["weights_sha256"], "windows": int(windows)}


def _hex_digest(content_hash: str) -> str:
    """The hex part of ``"sha256:<hex>"`` (or a bare hex digest), validated: it becomes a path."""
    digest = content_hash.split(":", 1)[1] if content_hash.startswith("sha256:") else content_hash
    if not _HEX.fullmatch(digest):
        raise ValueError(f"not a content hash: {content_hash!r} (expected 'sha256:<hex>')")
    return digest


class FeatureCache:
    """Feature arrays of files by content hash and recipe, under one private folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.is_symlink() or not self.root.is_dir():
            raise NotADirectoryError(f"{self.root}: feature cache root must be a real folder")
        try:
            os.chmod(self.root, 0o700)  # features of a user's music are his business
        except OSError as exc:
            log.warning("feature cache %s: cannot make it private: %s", self.root, exc)

    def path(self, content_hash: str, recipe: str) -> Path:
        """Where the entry of ``content_hash`` under ``recipe`` lives (it may not exist)."""
        digest = _hex_digest(content_hash)
        if not _RECIPE.fullmatch(recipe):
            raise ValueError(f"not a recipe key: {recipe!r} (use recipe_key())")
        return self.root / digest[:2] / f"{digest}-{recipe}{SUFFIX}"

    def get(self, content_hash: str, recipe: str) -> list[np.ndarray] | None:
        """The cached variants (clean first, float32) or None on a miss."""
        entry = self.entry(content_hash, recipe)
        return None if entry is None else entry[0]

    def entry(self, content_hash: str, recipe: str) -> tuple[list[np.ndarray], np.ndarray | None] | None:
        """The cached variants and the window logits stored with them (None: the entry has none,
        e.g. audio too short for the tagger), or None on a miss."""
        path = self.path(content_hash, recipe)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symlink where an entry should be
            self._discard(path, f"cannot open it: {exc}")
            return None
        with open(fd, "rb", closefd=True) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
                self._discard(path, "not a regular file of a sane size")
                return None
            data = fh.read()
        try:
            return _decode(data, content_hash, recipe)
        except ValueError as exc:
            self._discard(path, str(exc))
            return None

    def put(self, content_hash: str, recipe: str, variants: Sequence[np.ndarray],
            logits: np.ndarray | None = None) -> None:
        """Store ``variants`` (each (patches, n_inputs)) and the file's ``logits`` ((windows, n)),
        if any; the entry appears whole or not at all."""
        from safetensors.numpy import save

        if not variants:
            raise ValueError("put: no variants to store")
        arrays = [np.asarray(v) for v in variants]
        for i, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[1] != arrays[0].shape[1] or not np.all(np.isfinite(a)):
                raise ValueError(f"put: variant {i} is not a finite (patches, n_inputs) array: shape {a.shape}")
        if logits is not None and (np.ndim(logits) != 2 or not np.all(np.isfinite(logits))):
            raise ValueError(f"put: logits are not a finite (windows, classes) array: shape {np.shape(logits)}")
        path = self.path(content_hash, recipe)
        tensors = {f"v{i}": np.ascontiguousarray(a, dtype=STORE_DTYPE) for i, a in enumerate(arrays)}
        if logits is not None:
            tensors[LOGITS] = np.ascontiguousarray(logits, dtype=np.float32)
        payload = save(tensors, metadata={"format": FORMAT, "hash": _hex_digest(content_hash), "recipe": recipe})
        path.parent.mkdir(mode=0o700, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload), mode=0o600)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob(f"??/*{SUFFIX}") if not _.name.startswith("."))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return self.path(*key).is_file()

    def _discard(self, path: Path, reason: str) -> None:
        log.warning("feature cache: dropping bad entry %s: %s", path, reason)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("feature cache: cannot remove %s: %s", path, exc)


def round_trip(variants: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``variants`` exactly as :meth:`FeatureCache.get` would return them after a ``put``, so
    a miss and a later hit give a training run the very same numbers."""
    return [np.asarray(v).astype(STORE_DTYPE).astype(np.float32) for v in variants]


def _decode(data: bytes, content_hash: str, recipe: str) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Parse and check one entry; ValueError names what is wrong with it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if len(data) < 9 or data[8:9] != b"{" or not 2 <= int.from_bytes(data[:8], "little") <= len(data) - 8:
        raise ValueError("not a safetensors file")
    try:
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        tensors = load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable: {exc}") from exc
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT or meta.get("hash") != _hex_digest(content_hash) or meta.get("recipe") != recipe:
        raise ValueError(f"metadata does not match its key: {meta}")
    logits = tensors.pop(LOGITS, None)
    names = [f"v{i}" for i in range(len(tensors))]
    if not tensors or sorted(tensors) != sorted(names):
        raise ValueError(f"unexpected tensors {sorted(tensors)}")
    out = [tensors[n].astype(np.float32) for n in names]
    if any(a.ndim != 2 or a.shape[1] != out[0].shape[1] or a.shape[0] == 0 for a in out):
        raise ValueError(f"bad shapes {[a.shape for a in out]}")
    if logits is not None and (logits.ndim != 2 or logits.dtype != np.float32 or not np.all(np.isfinite(logits))):
        raise ValueError(f"bad logits {logits.shape} {logits.dtype}")
    return out, logits
