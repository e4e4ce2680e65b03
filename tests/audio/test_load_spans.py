"""genre_daemon.audio.decode.load_spans on real files: several spans of one file, at one or more
rates, through one opening of it, each exactly (bit for bit) what a ``load`` of its own gives.
classify reads musicnn's patches at 16 kHz and AudioSet's windows at 32 kHz this way; training
and the feature cache read them apart, so any difference would split one song's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ffmpeg_encode, make_tone, write_audio
from genre_daemon.audio.decode import Read, load, load_spans, probe
from genre_daemon.errors import AudioDecodeError


def _music(gtzan_dir: Path, into: Path, seconds: int) -> Path:
    """``seconds`` of real music, stereo (one channel a little delayed), 44.1 kHz FLAC."""
    import soundfile as sf

    clips = sorted(gtzan_dir.glob("*/*.flac"))[::37]
    y = np.concatenate([sf.read(c, dtype="float32")[0] for c in clips])[: seconds * 22050]
    stereo = np.stack([y, np.roll(y, 11)], axis=1)
    return write_audio(into / "music.flac", stereo, 22050)


@pytest.mark.parametrize("ext,args", [("mp3", ("-ar", "44100", "-ac", "2", "-b:a", "192k")),
                                      ("flac", ("-ar", "44100",)),
                                      ("ogg", ("-ar", "48000", "-c:a", "libvorbis")),
                                      ("m4a", ("-ar", "44100", "-c:a", "aac"))])  # m4a: the ffmpeg backend
def test_spans_of_a_long_file_at_two_rates_equal_their_own_loads(gtzan_dir: Path, tmp_path: Path, ext: str,
                                                                 args: tuple[str, ...]) -> None:
    src = ffmpeg_encode(_music(gtzan_dir, tmp_path, 90), tmp_path / f"long.{ext}", *args)
    total = probe(src).duration
    reads = [Read(float(o), 3.0, 16000, 0.0) for o in np.linspace(0.0, total - 3.5, 6)]
    reads += [Read(float(o), 10.0, 32000, 0.0) for o in (0.0, total / 2 - 5, total - 10.0)]
    got = load_spans(src, reads)
    for r, y in zip(reads, got):
        alone = load(src, offset=r.offset, duration=r.duration, sr=r.sr, min_seconds=r.min_seconds)
        assert y.dtype == np.float32 and np.array_equal(y, alone), r


def test_a_whole_file_at_two_rates_is_decoded_once_and_equals_its_own_loads(gtzan_dir: Path, tmp_path: Path) -> None:
    src = ffmpeg_encode(_music(gtzan_dir, tmp_path, 20), tmp_path / "clip.mp3", "-ar", "44100", "-ac", "2")
    reads = [Read(0.0, None, 16000, 2.976), Read(0.0, None, 32000, 0.0), Read(1.0, 3.0, 16000, 0.0)]
    for r, y in zip(reads, load_spans(src, reads)):
        assert np.array_equal(y, load(src, offset=r.offset, duration=r.duration, sr=r.sr, min_seconds=r.min_seconds))


def test_stereo_is_the_mean_of_its_channels_bit_for_bit(tmp_path: Path) -> None:
    """The soundfile path's stereo downmix (a sum and a halving, not a mean over an axis) is
    exactly numpy's mean, as the other channel counts' is."""
    rng = np.random.default_rng(1)
    for channels in (2, 3):
        data = (0.5 * rng.standard_normal((30000, channels))).astype(np.float32)
        path = write_audio(tmp_path / f"noise{channels}.wav", data, 16000, subtype="FLOAT")
        assert np.array_equal(load(path, sr=16000), np.mean(data, axis=1))


def test_a_bad_span_among_good_ones_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tone.flac", make_tone(5.0, 22050), 22050)
    with pytest.raises(AudioDecodeError, match="tone.flac.*past the end"):
        load_spans(path, [Read(0.0, 1.0, 16000, 0.0), Read(9.0, 1.0, 16000, 0.0)])
    with pytest.raises(AudioDecodeError, match="tone.flac.*too short"):
        load_spans(path, [Read(0.0, None, 16000, 0.0), Read(4.5, 1.0, 32000, 1.0)])
