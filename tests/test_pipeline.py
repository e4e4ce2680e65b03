"""The classification pipeline: span planning, bounded cost on long tracks, real music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ffmpeg_encode
from genre_daemon.cli import default_model_dir
from genre_daemon.errors import AudioDecodeError
from genre_daemon.pipeline import MAX_SEGMENTS, SEGMENT_SECONDS, WHOLE_SECONDS, Classifier, plan_spans


@pytest.mark.parametrize("duration", [1.0, 30.0, WHOLE_SECONDS])
def test_short_tracks_are_read_whole(duration: float) -> None:
    assert [(s.offset, s.duration) for s in plan_spans(duration)] == [(0.0, None)]


@pytest.mark.parametrize("duration", [WHOLE_SECONDS + 1, 240.0, 3600.0, 36000.0])
def test_long_tracks_read_a_bounded_amount_spread_over_them(duration: float) -> None:
    spans = plan_spans(duration, max_windows=12)
    assert 1 <= len(spans) <= MAX_SEGMENTS
    assert sum(s.duration or 0 for s in spans) <= MAX_SEGMENTS * SEGMENT_SECONDS
    assert all(0 <= s.offset and s.offset + (s.duration or 0) <= duration + 1e-6 for s in spans)
    assert sum(s.windows for s in spans) >= 12
    if len(spans) == MAX_SEGMENTS:  # spread: first in the first third, last in the last third
        assert spans[0].offset < duration / 3 and spans[-1].offset > 2 * duration / 3 - SEGMENT_SECONDS


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    model_dir = default_model_dir()
    if not (model_dir / "model.json").is_file():
        pytest.skip(f"no shipped model at {model_dir}")
    return Classifier.from_dir(model_dir)


def test_shipped_model_classifies_real_music(classifier: Classifier, gtzan_files: list[Path]) -> None:
    """The shipped model saw these clips in training: it must get nearly all of them."""
    hits = 0
    for path in gtzan_files:
        pred = classifier.classify(path)
        assert pred.genre in classifier.model.genres
        assert abs(sum(pred.scores.values()) - 1) < 1e-3
        assert pred.confidence == max(pred.scores.values())
        hits += pred.genre == path.parent.name
    assert hits >= len(gtzan_files) - 1


def test_mp3_stereo_44k_of_a_clip_agrees_with_the_flac(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    src = gtzan_files[0]
    mp3 = ffmpeg_encode(src, tmp_path / "clip.mp3", "-ar", "44100", "-ac", "2", "-b:a", "128k")
    a, b = classifier.classify(src), classifier.classify(mp3)
    assert a.genre == b.genre
    assert np.abs(np.array(list(a.scores.values())) - np.array(list(b.scores.values()))).max() < 0.2


def test_long_track_uses_a_bounded_number_of_windows(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    """A 10-minute file costs the same number of windows as a 2-minute one."""
    y, sr = sf.read(gtzan_files[1], dtype="float32")
    long, medium = tmp_path / "long.flac", tmp_path / "medium.flac"
    sf.write(long, np.tile(y, 20), sr)
    sf.write(medium, np.tile(y, 4), sr)
    n_long = len(classifier.windows_for(long))
    assert n_long == len(classifier.windows_for(medium))
    assert n_long <= 12 + MAX_SEGMENTS
    assert classifier.classify(long).genre == gtzan_files[1].parent.name


def test_too_short_audio_is_a_decode_error_naming_the_file(classifier: Classifier, audio_factory) -> None:  # type: ignore[no-untyped-def]
    short = audio_factory.tone("blip.wav", seconds=0.5)
    with pytest.raises(AudioDecodeError, match="blip.wav"):
        classifier.classify(short)


def test_classify_many_yields_errors_in_place(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\0" * 1000)
    results = list(classifier.classify_many([gtzan_files[0], bad, gtzan_files[2]]))
    assert [type(r).__name__ for r in results] == ["Prediction", "AudioDecodeError", "Prediction"]
    assert "bad.mp3" in str(results[1])
