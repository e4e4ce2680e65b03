"""Labelled audio folders -> :class:`~genre_daemon.learning.fit.Clip` objects, with augmentation.

A data folder holds one sub-folder per genre. Each file is decoded once (16 kHz mono, at most
:data:`TRAIN_SECONDS` from its middle); augmented copies are made in the audio domain (a
128 kbps MP3 round trip through the real ffmpeg, band-limiting as from an 11 kHz source) and
every copy goes through the front end (a patch vector every ``hop_frames`` log-mel frames), so
training can draw songs from any of them. Band-limiting to 16 kHz is not offered: the front end
hears 16 kHz audio, so it would be the clean copy again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genre_daemon.audio import decode as audio
from genre_daemon.errors import AudioDecodeError
from genre_daemon.learning.cache import TRAIN_SECONDS, FeatureCache, recipe_key, round_trip, tagger_recipe
from genre_daemon.model.frontend import PATCH_SECONDS, SAMPLE_RATE, Embedder, FrontEnd
from genre_daemon.filing.journal import content_hash
from genre_daemon.model.files import check_genres
from genre_daemon.learning.fit import Clip

if TYPE_CHECKING:
    from genre_daemon.model.tagging import Tagger

log = logging.getLogger(__name__)

AUGMENTATIONS = ("mp3", "sr11k")


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    genre: str


def scan_labelled(data_dir: str | os.PathLike[str], extensions: Sequence[str] = audio.SUPPORTED_EXTENSIONS) -> tuple[list[str], list[LabelledFile]]:
    """Genres (sorted sub-folder names) and the audio files in them. Symlinks are not followed."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    exts = {e.lower().lstrip(".") for e in extensions}
    files: list[LabelledFile] = []
    genres: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "_"))):
        found = sorted(
            f for f in sub.rglob("*")
            if f.is_file() and not f.is_symlink() and f.suffix.lower().lstrip(".") in exts and not f.name.startswith(".")
        )
        if found:
            genres.append(sub.name)
            files += [LabelledFile(f, sub.name) for f in found]
    if not genres:
        raise FileNotFoundError(f"{root}: no genre sub-folders with audio files")
    check_genres(genres, root)  # a folder name that cannot be a library folder: refused before training
    return genres, files


def _band_limit(y: np.ndarray, sr: int, band_sr: int) -> np.ndarray:
    import soxr

    low = soxr.resample(y, sr, band_sr, quality="HQ")
    return soxr.resample(low, band_sr, sr, quality="HQ").astype(np.float32)[: len(y)]


def _mp3_round_trip(y: np.ndarray, sr: int, bitrate: str = "128k") -> np.ndarray | None:
    """Encode to MP3 and decode back through the real ffmpeg; None where ffmpeg is missing."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    with tempfile.TemporaryDirectory(prefix="genre-daemon-aug-") as tmp:
        mp3 = os.path.join(tmp, "a.mp3")
        pcm = np.clip(y, -1.0, 1.0).astype("<f4").tobytes()
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "-",
             "-ar", "44100", "-b:a", bitrate, mp3],  # as a real MP3 is; MPEG-2 at 22 kHz decodes badly
            input=pcm, check=True, timeout=120, capture_output=True,
        )
        out = audio.load(mp3, sr=sr, min_seconds=0.0, max_seconds=TRAIN_SECONDS + 5)
    return out[: len(y)]


def check_augment(augment: Sequence[str], sr: int = SAMPLE_RATE) -> list[str]:
    """The augmentation names, refused (ValueError) unless each is known and does something at ``sr``."""
    for name in augment:
        if name == "sr16k" and sr <= 16000:
            raise ValueError("augmentation 'sr16k' would copy the clean signal (the front end hears 16 kHz "
                             f"audio); known: {', '.join(AUGMENTATIONS)}")
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")
    return list(augment)


def augmented_signals(y: np.ndarray, sr: int, augment: Sequence[str]) -> list[np.ndarray]:
    """The clean signal followed by one augmented copy per name in ``augment``."""
    out = [y]
    for name in check_augment(augment, sr):
        if name == "sr11k":
            out.append(_band_limit(y, sr, 11025))
        elif name == "mp3":
            z = _mp3_round_trip(y, sr)
            if z is not None and len(z) >= len(y) // 2:
                out.append(z)
        else:
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")
    return out


def trained_augment(training: Mapping[str, Any]) -> list[str]:
    """The augmentations a model's audio was trained with (``model.json`` ``training.data``: round 2
    kept them at its top, round 3 with the audio set among ``sets``), so that a retrain embeds its
    labels, and a rehearsal set is remade, the same way."""
    data = training.get("data") or {}
    if "augment" in data:
        return list(data["augment"])
    return next((list(part["augment"]) for part in data.get("sets", []) if "augment" in part), [])


def load_training_audio(path: str | os.PathLike[str], min_seconds: float = PATCH_SECONDS) -> np.ndarray:
    """At most :data:`TRAIN_SECONDS` from the middle of a file, mono at the front end's rate."""
    info = audio.probe(path)
    offset = max(0.0, (info.duration - TRAIN_SECONDS) / 2)
    return audio.load(path, offset=offset, duration=TRAIN_SECONDS if info.duration > TRAIN_SECONDS else None,
                      sr=SAMPLE_RATE, min_seconds=min_seconds)


def build_clips(
    files: Sequence[LabelledFile],
    genres: Sequence[str],
    embedder: Embedder,
    frontend: FrontEnd,
    hop_frames: int,
    augment: Sequence[str] = (),
    progress: Callable[[int, str], object] | None = None,
    cache: FeatureCache | None = None,
    tagger: "Tagger | None" = None,
    windows: int = 0,
) -> tuple[list[Clip], list[tuple[Path, str]]]:
    """Patch vectors (clean and augmented) of every file; undecodable files come back as failures.

    With a ``tagger``, each clip also carries AudioSet's logits of ``windows`` windows of its file,
    read as inference reads them (:meth:`Tagger.file_logits`). With a ``cache``, a file whose
    content was seen before under the same recipe (both front ends' identity, inputs, hop,
    augmentations, windows) is not decoded again; a miss is decoded, embedded and stored, and
    comes back exactly as a later hit will.
    """
    clips: list[Clip] = []
    failures: list[tuple[Path, str]] = []
    tagging = tagger_recipe(tagger.identity, windows) if tagger is not None else None
    recipe = recipe_key(frontend, embedder.inputs, hop_frames, augment, tagging) if cache is not None else ""
    bar = progress(len(files), "features") if progress else None
    for f in files:
        try:
            key = _content_hash(f.path) if cache is not None else ""
            entry = cache.entry(key, recipe) if cache is not None else None
            if entry is None:
                y = load_training_audio(f.path)
                variants = [embedder.audio_vectors(v, hop_frames) for v in augmented_signals(y, SAMPLE_RATE, augment)]
                logits = None
                if tagger is not None:
                    logits = tagger.file_logits(f.path, audio.probe(f.path).duration, windows, 60.0)
                if cache is not None:
                    variants = round_trip(variants)
                    _cache_put(cache, key, recipe, variants, logits, f.path)
                entry = variants, logits
            clips.append(Clip(str(f.path), genres.index(f.genre), *entry))
        except (AudioDecodeError, subprocess.SubprocessError) as exc:
            log.warning("skipping %s: %s", f.path, exc)
            failures.append((f.path, str(exc)))
        if bar is not None:
            bar.update(1)  # type: ignore[attr-defined]
    if bar is not None:
        bar.close()  # type: ignore[attr-defined]
    return clips, failures


def _content_hash(path: Path) -> str:
    try:
        return content_hash(path)
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read it: {exc.strerror or exc}") from exc


def _cache_put(cache: FeatureCache, key: str, recipe: str, variants: list[np.ndarray], logits: np.ndarray | None,
               path: Path) -> None:
    """Store in the cache; a full disk or a read-only cache costs a decode next time, nothing more."""
    try:
        cache.put(key, recipe, variants, logits)
    except OSError as exc:
        log.warning("feature cache: cannot store %s: %s", path, exc)
