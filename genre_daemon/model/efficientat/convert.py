"""One-time conversion of EfficientAT's ``mn04_as_mAP_432.pt`` into the project's model folder.

Why: the weights are published only as a PyTorch zip, which holds a pickle; the daemon never
unpickles. This converter is the one place that reads it, with ``torch.load(weights_only=True)``
(the restricted unpickler: tensors and plain containers only), after checking the file's sha256
is the published one. It writes, into OUTDIR:

* ``mn04_as.safetensors``: the 312 tensors, names and values unchanged, laid out as the
  safetensors library lays them out (so identical to ``safetensors.torch.save_file``'s output),
  byte for byte the same on every run;
* ``class_labels_indices.csv``, ``LICENSE-EfficientAT.txt``: copied from beside the ``.pt``
  after checking them; ``NOTICE-AudioSet.txt``: the class names' attribution;
* ``provenance.json``: the original file (name, size, sha256, where it comes from), the licences,
  this command, the sha256 of every file written.

Run: ``python -m genre_daemon.model.efficientat.convert PT OUTDIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from genre_daemon.errors import ModelError
from genre_daemon.model.efficientat.weights import (GENRE_ROWS, LABELS_FILE, LICENCE_FILE, N_TENSORS, NOTICE_FILE,
                                                    PROVENANCE_FILE, WEIGHTS_FILE, load_mn04, parse_labels)

__all__ = ["ConversionError", "ORIGINAL", "read_pt", "convert", "main"]

ORIGINAL = {
    "file": "mn04_as_mAP_432.pt",
    "bytes": 4066513,
    "sha256": "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c",
    "upstream": "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn04_as_mAP_432.pt "
                "(release v0.0.1 of fschmid56/EfficientAT, same size)",
    "copy_from": "https://github.com/nikih94/swch-audio-classification, resources/mn04_as_mAP_432.pt "
                 "at commit 2b362d9 (MIT)",
}
SOURCE = ("EfficientAT mn04_as (Schmid, Koutini, Widmer, 'Efficient Large-Scale Audio Tagging via "
          "Transformer-to-CNN Knowledge Distillation', ICASSP 2023): MobileNetV3 width 0.4, AudioSet, mAP 0.432")
NOTICE = """The class names in class_labels_indices.csv are those of AudioSet (Gemmeke et al., "Audio Set: An
ontology and human-labeled dataset for audio events", ICASSP 2017), by Google Inc.: the dataset's
class_labels_indices.csv, https://research.google.com/audioset/download.html, made available under
a Creative Commons Attribution 4.0 International licence (CC BY 4.0); the names come from the
AudioSet ontology (https://github.com/audioset/ontology, CC BY-SA 4.0). Copied unchanged.
"""


class ConversionError(ValueError):
    """The input is not the published mn04_as file (or its class list or licence is not the expected one)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_pt(pt: str | Path) -> dict[str, Any]:
    """The tensors of the published ``.pt`` (refused unless its sha256 is :data:`ORIGINAL`'s), read
    with ``torch.load(weights_only=True)``: no arbitrary code runs even for a hostile file."""
    import torch

    pt = Path(pt)
    try:
        data = pt.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{pt}: cannot read ({exc.strerror or exc})") from exc
    if _sha256(data) != ORIGINAL["sha256"]:
        raise ConversionError(f"{pt}: sha256 {_sha256(data)[:16]}... is not the published {ORIGINAL['file']} "
                              f"({ORIGINAL['sha256'][:16]}...)")
    sd = torch.load(pt, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict) or len(sd) != N_TENSORS or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConversionError(f"{pt}: not a state dict of {N_TENSORS} tensors")
    return sd


def _licence(path: Path) -> bytes:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{path}: cannot read the EfficientAT licence ({exc.strerror or exc})") from exc
    if b"MIT License" not in text or b"Florian Schmid" not in text:
        raise ConversionError(f"{path}: not EfficientAT's MIT licence text")
    return text


def convert(pt: str | Path, outdir: str | Path, labels: str | Path | None = None,
            licence: str | Path | None = None) -> dict[str, Any]:
    """Write the model folder ``outdir`` from ``pt`` (class list and licence from beside it unless
    given); returns the provenance record. The folder is read back through the loader's checks."""
    from genre_daemon.atomic import atomic_write
    from genre_daemon.model.safetensors_file import safetensors_bytes

    pt, outdir = Path(pt), Path(outdir)
    labels_path = Path(labels) if labels else pt.parent / LABELS_FILE
    licence_path = Path(licence) if licence else pt.parent / LICENCE_FILE
    sd = read_pt(pt)
    blob = safetensors_bytes({k: v.numpy() for k, v in sd.items()})
    try:
        csv_bytes = labels_path.read_bytes()
        names = parse_labels(csv_bytes.decode("utf-8"), str(labels_path))
    except (OSError, UnicodeDecodeError, ModelError) as exc:
        raise ConversionError(f"{labels_path}: not AudioSet's class list: {exc}") from exc
    files = {WEIGHTS_FILE: blob, LABELS_FILE: csv_bytes, LICENCE_FILE: _licence(licence_path),
             NOTICE_FILE: NOTICE.encode("utf-8")}
    record: dict[str, Any] = {
        "source": SOURCE,
        "original": dict(ORIGINAL),
        "licence": "MIT",
        "licence_file": LICENCE_FILE,
        "converter": f"python -m genre_daemon.model.efficientat.convert {ORIGINAL['file']} OUTDIR "
                     "(torch.load(weights_only=True), then the tensors as safetensors; byte-identical on every run)",
        "weights": {"file": WEIGHTS_FILE, "sha256": _sha256(blob), "bytes": len(blob), "tensors": len(sd),
                    "parameters": int(sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked")
                                          and "running_" not in k))},
        "labels": {"file": LABELS_FILE, "sha256": _sha256(csv_bytes), "classes": len(names),
                   "licence": "CC BY 4.0 (AudioSet, Google Inc.); names from the AudioSet ontology, CC BY-SA 4.0",
                   "notice_file": NOTICE_FILE},
        "genres": {"indices": [GENRE_ROWS.start, GENRE_ROWS.stop - 1], "names": names[GENRE_ROWS.start:GENRE_ROWS.stop]},
    }
    outdir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write(outdir / name, lambda tmp, b=data: Path(tmp).write_bytes(b))
    atomic_write(outdir / PROVENANCE_FILE,
                 lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8"))
    try:
        load_mn04(outdir)
    except ModelError as exc:
        raise ConversionError(f"{outdir}: the written folder does not load back: {exc}") from exc
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m genre_daemon.model.efficientat.convert PT OUTDIR``."""
    ap = argparse.ArgumentParser(prog="python -m genre_daemon.model.efficientat.convert",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("pt", type=Path, help=f"{ORIGINAL['file']} (with {LABELS_FILE} and {LICENCE_FILE} beside it)")
    ap.add_argument("outdir", type=Path, help="model folder to write (e.g. models/efficientat)")
    ap.add_argument("--labels", type=Path, help=f"AudioSet's {LABELS_FILE} (default: beside PT)")
    ap.add_argument("--licence", type=Path, help=f"EfficientAT's {LICENCE_FILE} (default: beside PT)")
    args = ap.parse_args(argv)
    try:
        record = convert(args.pt, args.outdir, args.labels, args.licence)
    except (ConversionError, OSError) as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 1
    w = record["weights"]
    print(f"{args.outdir / WEIGHTS_FILE}: {w['tensors']} tensors, {w['parameters']} parameters, sha256 {w['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
