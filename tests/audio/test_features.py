"""genre_daemon.audio.features against librosa 0.11 (the reference it reimplements) and known answers.

librosa is imported inside the tests only: the module under test must never import it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from genre_daemon.audio import features as F

SR = F.SAMPLE_RATE
PROJECT_ROOT = Path(__file__).resolve().parents[2]
GTZAN = PROJECT_ROOT.parent / "shared" / "data" / "gtzan"
REAL_GENRES = ("blues", "classical", "hiphop", "metal")
PITCH_C, PITCH_E, PITCH_G, PITCH_A, PITCH_B = 0, 4, 7, 9, 11

# Tolerances against librosa, shared by the synthetic and the real-audio comparisons.
# STFT: same float64 FFT, same complex64 rounding -> identical in practice; allow a few ulp in
# case another CPU's FFT kernels round differently.
STFT_RTOL = 1e-6
# MFCC: mel sums in float32 in another order, librosa's DCT in float32 (scipy) vs ours in
# float64; values reach several hundred, so float32 rounding alone is ~1e-4.
MFCC_ATOL = 1e-3
# Centroid: librosa sums float64 weights of float32-normalised bins; we divide two sums, the
# moment accumulated in float32 -> ~1e-6 relative.
CENTROID_RTOL, CENTROID_ATOL = 2e-5, 1e-3
# Chroma: values in [0, 1]; float32 products summed in another order -> ~1e-6.
CHROMA_ATOL = 1e-5
# Contrast: dB differences of float32 band means summed in another order -> ~1e-5 dB.
CONTRAST_ATOL = 1e-4


@pytest.fixture(scope="session")
def librosa():
    return pytest.importorskip("librosa")


def _librosa_groups(librosa, y: np.ndarray, params: F.FeatureParams = F.FeatureParams()) -> dict:
    """The four reference calls, frames moved to axis 0 to match genre_daemon.audio.features."""
    kw = dict(sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length)
    return {
        "mfcc": librosa.feature.mfcc(y=y, n_mfcc=params.n_mfcc, n_mels=params.n_mels, **kw).T,
        "centroid": librosa.feature.spectral_centroid(y=y, **kw)[0],
        "chroma": librosa.feature.chroma_stft(y=y, n_chroma=params.n_chroma, **kw).T,
        "contrast": librosa.feature.spectral_contrast(
            y=y, n_bands=params.n_contrast_bands, fmin=params.contrast_fmin, **kw
        ).T,
        "stft": np.abs(librosa.stft(y, n_fft=params.n_fft, hop_length=params.hop_length)).T,
    }


def _assert_matches_librosa(
    librosa, y: np.ndarray, params: F.FeatureParams = F.FeatureParams()
) -> None:
    ref = _librosa_groups(librosa, y, params)
    mag = F.stft_magnitude(y, params)
    power = F.power_spectrogram(mag)
    np.testing.assert_allclose(mag, ref["stft"], rtol=STFT_RTOL, atol=STFT_RTOL * ref["stft"].max())
    np.testing.assert_allclose(F.mfcc(power, params), ref["mfcc"], rtol=0, atol=MFCC_ATOL)
    np.testing.assert_allclose(
        F.spectral_centroid(mag, params), ref["centroid"], rtol=CENTROID_RTOL, atol=CENTROID_ATOL
    )
    # Tuning is a histogram argmax over the same (bit-identical) spectrogram, so it must agree
    # exactly; a mismatch would mean the piptrack/pitch_tuning logic differs.
    expected_tuning = librosa.estimate_tuning(
        S=ref["stft"].T ** 2, sr=params.sample_rate, n_fft=params.n_fft,
        bins_per_octave=params.n_chroma,
    )
    assert F.estimate_tuning(power, params) == expected_tuning
    np.testing.assert_allclose(F.chroma(power, params), ref["chroma"], rtol=0, atol=CHROMA_ATOL)
    np.testing.assert_allclose(
        F.spectral_contrast(mag, params), ref["contrast"], rtol=0, atol=CONTRAST_ATOL
    )


# --------------------------------------------------------------------------------------------
# Synthetic signals
# --------------------------------------------------------------------------------------------


def _tone(freqs: list[float], seconds: float = 2.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * sum(np.sin(2 * np.pi * f * t) for f in freqs)).astype(np.float32)


def _signal(name: str) -> np.ndarray:
    rng = np.random.default_rng(20240601)
    if name == "sine_a440":
        return _tone([440.0])
    if name == "sine_detuned":  # 30 cents sharp of A4
        return _tone([440.0 * 2 ** (0.3 / 12)])
    if name == "white_noise":
        return (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    if name == "c_major_chord":  # C4 E4 G4
        return _tone([261.63, 329.63, 392.00], amp=0.2)
    if name == "silence_then_tone":
        y = _tone([1000.0], seconds=2.0)
        y[:SR] = 0.0
        return y
    if name == "silence":
        return np.zeros(SR, dtype=np.float32)
    if name == "short_noise":  # shorter than one FFT window
        return (0.1 * rng.standard_normal(1500)).astype(np.float32)
    raise AssertionError(name)


SYNTHETIC = [
    "sine_a440",
    "sine_detuned",
    "white_noise",
    "c_major_chord",
    "silence_then_tone",
    "silence",
    "short_noise",
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # librosa warns on silence / n_fft > len
@pytest.mark.parametrize("name", SYNTHETIC)
def test_groups_match_librosa_on_synthetic(librosa, name):
    _assert_matches_librosa(librosa, _signal(name))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_non_default_params_match_librosa(librosa):
    """The implementation is parametric, not tuned to the defaults."""
    params = F.FeatureParams(sample_rate=16000, n_fft=1024, hop_length=256, n_mfcc=20, n_mels=64,
                             n_contrast_bands=5, contrast_fmin=150.0)
    y = (0.1 * np.random.default_rng(7).standard_normal(16000)).astype(np.float32)
    y += _tone([330.0], seconds=1.0)[: y.size]
    _assert_matches_librosa(librosa, y, params)
    assert F.extract(y, params).shape == (F.n_frames(y.size, 256), params.n_features)


def test_sine_centroid_and_chroma_known_answer():
    y = _signal("sine_a440")
    out = F.extract(y)[2:-2]  # interior frames: full windows
    centroid = out[:, F.FEATURE_NAMES.index("spectral_centroid")]
    # Hann main lobe is symmetric about the tone; leakage shifts it by well under 1 %.
    np.testing.assert_allclose(centroid, 440.0, rtol=0.01)
    chroma = out[:, 14:26]
    assert (chroma.argmax(axis=1) == PITCH_A).all()
    np.testing.assert_allclose(chroma.max(axis=1), 1.0, rtol=1e-6)  # inf-norm normalisation


def test_detuned_sine_tuning_estimate():
    y = _signal("sine_detuned")
    power = F.power_spectrogram(F.stft_magnitude(y))
    # 30 cents = 0.3 of a semitone. Parabolic interpolation of a Hann-windowed peak in a power
    # spectrum is biased by a few cents (librosa gives the same 0.33 here), so allow 0.05.
    assert F.estimate_tuning(power) == pytest.approx(0.3, abs=0.05)
    assert (F.chroma(power)[2:-2].argmax(axis=1) == PITCH_A).all()


def test_chord_chroma_top_three():
    chroma = F.chroma(F.power_spectrogram(F.stft_magnitude(_signal("c_major_chord"))))[2:-2]
    top3 = np.sort(np.argsort(chroma, axis=1)[:, -3:], axis=1)
    assert (top3 == [PITCH_C, PITCH_E, PITCH_G]).all()


def test_silence_then_tone():
    y = _signal("silence_then_tone")
    out = F.extract(y)
    silent = slice(0, (SR - F.N_FFT // 2) // F.HOP_LENGTH)  # frames that see only zeros
    tone = slice(SR // F.HOP_LENGTH + 4, -2)
    assert (out[silent, 13] == 0).all()  # centroid of an empty frame is 0, as librosa
    assert (out[silent, 14:26] == 0).all()  # chroma of an empty frame stays 0 (no fill)
    np.testing.assert_allclose(out[tone, 13], 1000.0, rtol=0.01)
    assert (out[tone, 14:26].argmax(axis=1) == PITCH_B).all()  # 1000 Hz: B5 (987.8) + 21 cents
    # MFCC floor: silent frames sit at (max over the clip - 80 dB) in every mel band.
    assert np.ptp(out[silent, 0]) == 0


# --------------------------------------------------------------------------------------------
# Real audio
# --------------------------------------------------------------------------------------------


def _skip_param(reason: str):
    return pytest.param(None, marks=pytest.mark.skip(reason=f"../shared/data absent: {reason}"))


def _real_clips() -> list:
    if not GTZAN.is_dir():
        return [_skip_param(f"{GTZAN} not found")]
    clips = []
    for genre in REAL_GENRES:
        files = sorted((GTZAN / genre).glob("*.flac"))
        if files:
            clips.append(pytest.param(files[0], id=files[0].name))
    if not clips:
        return [_skip_param(f"no .flac under {GTZAN}")]
    return clips


@pytest.mark.parametrize("path", _real_clips())
def test_groups_match_librosa_on_real_audio(librosa, path):
    sf = pytest.importorskip("soundfile")
    # A 10 s excerpt from the middle keeps the test quick; the whole-clip behaviour (80 dB floor
    # relative to the clip's peak, tuning over all frames) applies to whatever y both sides get.
    y, sr = sf.read(path, dtype="float32", start=10 * SR, frames=10 * SR)
    if y.ndim > 1:
        y = y.mean(axis=1)
    assert sr == SR, f"{path}: expected {SR} Hz"
    _assert_matches_librosa(librosa, y)
    out = F.extract(y)
    assert out.shape == (F.n_frames(y.size), 33)


# --------------------------------------------------------------------------------------------
# Shape, order, API
# --------------------------------------------------------------------------------------------


def test_extract_shape_dtype_and_column_order():
    y = _signal("white_noise")
    out = F.extract(y)
    assert out.shape == (F.n_frames(y.size), F.N_FEATURES) == (1 + y.size // 512, 33)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    mag = F.stft_magnitude(y)
    power = F.power_spectrogram(mag)
    expected = np.concatenate(
        [
            F.mfcc(power),
            F.spectral_centroid(mag)[:, None],
            F.chroma(power),
            F.spectral_contrast(mag),
        ],
        axis=1,
    )
    np.testing.assert_array_equal(out, expected)


def test_feature_names():
    names = F.FEATURE_NAMES
    assert len(names) == F.N_FEATURES == F.FeatureParams().n_features == 33
    assert len(set(names)) == 33
    assert names[:13] == tuple(f"mfcc_{i}" for i in range(13))
    assert names[13] == "spectral_centroid"
    assert names[14] == "chroma_C" and names[23] == "chroma_A" and names[25] == "chroma_B"
    assert names[26:] == tuple(f"contrast_{i}" for i in range(7))
    assert F.feature_names(F.FeatureParams()) == names


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("n_samples", [1, 511, 512, 513, 2047, 2048, 22050, 66150])
def test_n_frames_matches_librosa(librosa, n_samples):
    y = np.random.default_rng(n_samples).standard_normal(n_samples).astype(np.float32)
    expected = librosa.stft(y, n_fft=2048, hop_length=512).shape[1]
    assert F.n_frames(n_samples) == expected == F.extract(y).shape[0]


def test_float64_input_accepted():
    y = _signal("c_major_chord")
    np.testing.assert_allclose(F.extract(y.astype(np.float64)), F.extract(y), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([0.0, np.nan, 0.0] * 1000, dtype=np.float32), "NaN or infinite"),
        (np.array([0.0, np.inf] * 1000), "NaN or infinite"),
        (np.zeros((2, 2048), dtype=np.float32), "1-D"),
        (np.zeros(2048, dtype=np.int16), "floating point"),
        (np.zeros(0, dtype=np.float32), "empty"),
    ],
    ids=["nan", "inf", "2d", "int16", "empty"],
)
def test_extract_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        F.extract(bad)


def test_params_round_trip_and_validation():
    p = F.FeatureParams(n_mfcc=20, contrast_fmin=150)
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert F.FeatureParams.from_dict(d) == p
    assert F.FeatureParams.from_dict({}) == F.FeatureParams()
    assert p.n_features == 20 + 1 + 12 + 7
    with pytest.raises(ValueError, match="hop_size"):
        F.FeatureParams.from_dict({"hop_size": 512})
    with pytest.raises(ValueError, match="n_fft"):
        F.FeatureParams(n_fft=0)
    with pytest.raises(ValueError, match="n_mfcc"):
        F.FeatureParams(n_mfcc=200)
    with pytest.raises(ValueError, match="Nyquist"):
        F.FeatureParams(n_contrast_bands=8)
    with pytest.raises(ValueError, match="sample_rate"):
        F.FeatureParams(sample_rate=22050.5)


def test_import_and_extract_do_not_load_librosa_or_numba():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import genre_daemon.audio.features as f
        f.extract(np.random.default_rng(0).standard_normal(22050).astype(np.float32))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"librosa", "numba", "scipy"})
        print(",".join(heavy))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"heavy modules imported: {done.stdout.strip()}"
