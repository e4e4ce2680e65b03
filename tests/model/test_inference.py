"""The classification pipeline: patch planning, bounded cost on long tracks, spans that agree
with a whole decode, real music through the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ffmpeg_encode
from genre_daemon.audio import decode as audio
from genre_daemon.resources import default_model_dir
from genre_daemon.errors import AudioDecodeError
from genre_daemon.model.frontend import PATCH_FRAMES, PATCH_SECONDS, cut_patches, spread_starts
from genre_daemon.model.musicnn import melspec
from genre_daemon.model.inference import SPAN_SAMPLES, WHOLE_SECONDS, Classifier, file_frames, plan_spans


@pytest.mark.parametrize("duration", [3.0, 30.0, WHOLE_SECONDS])
def test_short_tracks_are_read_whole(duration: float) -> None:
    spans = plan_spans(duration, 8)
    assert [(s.offset, s.duration) for s in spans] == [(0.0, None)]
    assert spans[0].starts == tuple(spread_starts(file_frames(duration), 8))


@pytest.mark.parametrize("duration", [WHOLE_SECONDS + 1, 240.0, 3600.0, 36000.0])
def test_long_tracks_read_one_short_span_per_patch_spread_over_them(duration: float) -> None:
    spans = plan_spans(duration, 8)
    assert len(spans) == 8  # one patch each: the cost does not grow with the length
    assert all(s.duration == SPAN_SAMPLES / 16000 and len(s.starts) == 1 for s in spans)
    assert spans[0].offset == 0.0 and spans[-1].offset + spans[-1].duration >= duration - 0.1
    assert spans[-1].offset + PATCH_SECONDS <= duration
    gaps = np.diff([s.offset for s in spans])
    assert gaps.min() > 0 and gaps.max() - gaps.min() < 0.1  # evenly spread
    assert sum(s.duration or 0 for s in spans) < 25  # seconds decoded, whatever the length


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    model_dir = default_model_dir()
    if not (model_dir / "model.json").is_file():
        pytest.skip(f"no shipped model at {model_dir}")
    return Classifier.from_dir(model_dir)


def test_a_span_gives_exactly_the_patch_of_a_whole_decode(classifier: Classifier, gtzan_files: list[Path],
                                                          tmp_path: Path) -> None:
    """Reading one patch by seeking (as for a long file) gives the patch a whole decode gives."""
    y, sr = sf.read(gtzan_files[2], dtype="float32")
    track = tmp_path / "track.flac"
    sf.write(track, np.tile(y, 2), sr)  # 60 s, so that plan_spans would seek
    whole = melspec.log_mel(audio.load(track, sr=16000, max_seconds=100))
    f0 = spread_starts(whole.shape[0], 8)[3]
    span = audio.load(track, sr=16000, offset=(f0 - 1) * 256 / 16000, duration=SPAN_SAMPLES / 16000)
    np.testing.assert_allclose(cut_patches(melspec.log_mel(span), [1])[0], whole[f0:f0 + PATCH_FRAMES], atol=2e-3)
    vectors, duration = classifier.patch_vectors(track)
    assert vectors.shape == (classifier.patches, classifier.model.n_inputs) and duration == pytest.approx(60.0, abs=0.5)
    expected = classifier.embedder.patch_vectors(cut_patches(whole, spread_starts(whole.shape[0], classifier.patches)))
    np.testing.assert_allclose(vectors, expected, atol=2e-3)


def test_shipped_model_classifies_real_music(classifier: Classifier, gtzan_files: list[Path]) -> None:
    """The shipped model saw these clips in training: it must get nearly all of them."""
    hits = 0
    for path in gtzan_files:
        pred = classifier.classify(path)
        assert pred.genre in classifier.model.genres
        assert abs(sum(pred.scores.values()) - 1) < 1e-3
        assert pred.confidence == max(pred.scores.values())
        assert pred.windows == classifier.patches and pred.duration == pytest.approx(30.0, abs=0.5)
        hits += pred.genre == path.parent.name
    assert hits >= len(gtzan_files) - 1


def test_mp3_stereo_44k_of_a_clip_agrees_with_the_flac(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    src = gtzan_files[0]
    mp3 = ffmpeg_encode(src, tmp_path / "clip.mp3", "-ar", "44100", "-ac", "2", "-b:a", "128k")
    a, b = classifier.classify(src), classifier.classify(mp3)
    assert a.genre == b.genre
    assert np.abs(np.array(list(a.scores.values())) - np.array(list(b.scores.values()))).max() < 0.2


def test_long_track_costs_what_a_short_one_does(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    """A 10-minute file is judged on as many patches as a 2-minute one, and still rightly."""
    y, sr = sf.read(gtzan_files[1], dtype="float32")
    long, medium = tmp_path / "long.flac", tmp_path / "medium.flac"
    sf.write(long, np.tile(y, 20), sr)
    sf.write(medium, np.tile(y, 4), sr)
    assert len(classifier.patch_vectors(long)[0]) == len(classifier.patch_vectors(medium)[0]) == classifier.patches
    assert classifier.classify(long).genre == gtzan_files[1].parent.name


def test_a_file_of_one_patch_is_classified(classifier: Classifier, gtzan_files: list[Path], tmp_path: Path) -> None:
    y, sr = sf.read(gtzan_files[0], dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, y[: int(3.1 * sr)], sr)
    pred = classifier.classify(short)
    assert pred.windows == 1 and pred.genre in classifier.model.genres


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
