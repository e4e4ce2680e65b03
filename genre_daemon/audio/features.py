"""Per-frame audio features from one shared STFT: 13 MFCC, centroid, 12 chroma, 7 contrast.

Pure array -> array; no I/O. Each group reproduces the librosa 0.11 function of the same name
(`librosa.feature.mfcc`, `spectral_centroid`, `chroma_stft`, `spectral_contrast`, all with
sr=22050, n_fft=2048, hop_length=512 and otherwise default arguments), but the STFT is computed
once and shared, and only numpy is used: importing librosa costs about a second and its numba
JIT warm-up about ten, and this module sits on the hot path of the daemon and of a cold CLI call.

Frames run along axis 0 everywhere in this module (librosa puts them on the last axis).

Numerics follow librosa step by step (float64 windowed frames and FFT, the spectrogram rounded to
complex64 as librosa's ``stft`` does for float32 input, bit-identical float32 filterbanks, the
same piptrack arithmetic), so the spectrogram and the estimated tuning are identical to librosa's
and what remains is float32 summation order (about 1e-6 relative).

No BLAS: the filterbank products are einsum loops (the mel one only over each triangle's nonzero
span). The products are skinny (x 12, x 13, x 2), and OpenBLAS runs them multi-threaded, which on
a busy machine made extract() 2-3x slower and left spinning worker threads behind; without BLAS
a 30 s clip takes ~30 ms on one core, every time.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "N_MFCC",
    "N_MELS",
    "N_CHROMA",
    "N_CONTRAST_BANDS",
    "N_FEATURES",
    "FEATURE_NAMES",
    "FeatureParams",
    "feature_names",
    "n_frames",
    "stft_magnitude",
    "power_spectrogram",
    "mel_spectrogram",
    "mfcc",
    "spectral_centroid",
    "estimate_tuning",
    "chroma",
    "spectral_contrast",
    "extract",
]

SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MFCC = 13
N_MELS = 128
N_CHROMA = 12
N_CONTRAST_BANDS = 6
N_FEATURES = N_MFCC + 1 + N_CHROMA + N_CONTRAST_BANDS + 1  # 33

_PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

# librosa defaults that are not feature parameters of this project (kept fixed on purpose).
_TOP_DB = 80.0  # power_to_db: floor at (max over the whole signal) - 80 dB
_AMIN = 1e-10  # power_to_db: smallest power before the log
_PIP_FMIN = 150.0  # piptrack (used by estimate_tuning): search range and relative threshold
_PIP_FMAX = 4000.0
_PIP_THRESHOLD = 0.1
_TUNING_RESOLUTION = 0.01  # pitch_tuning histogram bin width, in fractions of a chroma bin
_CHROMA_CTROCT = 5.0  # filters.chroma: centre octave and width of the spectral weighting
_CHROMA_OCTWIDTH = 2.0
_CONTRAST_QUANTILE = 0.02
_STFT_BLOCK_BYTES = 1 << 20  # float64 windowed frames per FFT call (64 frames at n_fft 2048)


@dataclass(frozen=True)
class FeatureParams:
    """Analysis parameters; stored in a model's metadata so inference matches training."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mfcc: int = N_MFCC
    n_mels: int = N_MELS
    n_chroma: int = N_CHROMA
    n_contrast_bands: int = N_CONTRAST_BANDS
    contrast_fmin: float = 200.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "contrast_fmin":
                number = (int, float, np.integer, np.floating)
                ok = isinstance(value, number) and not isinstance(value, bool)
                if not ok or not math.isfinite(value) or value <= 0:
                    raise ValueError(
                        f"FeatureParams.{f.name} must be a positive number, got {value!r}"
                    )
                object.__setattr__(self, f.name, float(value))
            else:
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(
                        f"FeatureParams.{f.name} must be a positive integer, got {value!r}"
                    )
                object.__setattr__(self, f.name, int(value))
        if self.n_fft < 4:
            raise ValueError(f"FeatureParams.n_fft must be at least 4, got {self.n_fft}")
        if self.n_mfcc > self.n_mels:
            raise ValueError(
                f"FeatureParams.n_mfcc ({self.n_mfcc}) must not exceed n_mels ({self.n_mels})"
            )
        top = self.contrast_fmin * 2.0 ** (self.n_contrast_bands - 1)
        if top >= 0.5 * self.sample_rate:
            raise ValueError(
                f"FeatureParams: contrast band starting at {top:g} Hz reaches Nyquist "
                f"({0.5 * self.sample_rate:g} Hz); reduce contrast_fmin or n_contrast_bands"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureParams":
        """Inverse of `to_dict`; missing keys take defaults, unknown keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"feature parameters must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ValueError(
                    f"unknown feature parameter {key!r} (known: {', '.join(sorted(known))})"
                )
        return cls(**d)

    @property
    def n_features(self) -> int:
        """Values per frame: MFCC + centroid + chroma + (contrast bands + 1)."""
        return self.n_mfcc + 1 + self.n_chroma + self.n_contrast_bands + 1

    @property
    def n_bins(self) -> int:
        """Frequency bins of the one-sided spectrum."""
        return 1 + self.n_fft // 2


def feature_names(params: FeatureParams = FeatureParams()) -> tuple[str, ...]:
    """Column names of `extract`'s output for these parameters."""
    if params.n_chroma == 12:
        chroma_names = [f"chroma_{p}" for p in _PITCH_CLASSES]
    else:
        chroma_names = [f"chroma_{i}" for i in range(params.n_chroma)]
    return tuple(
        [f"mfcc_{i}" for i in range(params.n_mfcc)]
        + ["spectral_centroid"]
        + chroma_names
        + [f"contrast_{i}" for i in range(params.n_contrast_bands + 1)]
    )


FEATURE_NAMES: tuple[str, ...] = feature_names()


def n_frames(n_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames `extract` returns for ``n_samples`` samples (centred STFT: 1 + n // hop)."""
    if n_samples < 0 or hop_length < 1:
        raise ValueError(f"need n_samples >= 0 and hop_length >= 1, got {n_samples}, {hop_length}")
    return 1 + int(n_samples) // int(hop_length)


# ---------------------------------------------------------------------------------------------
# Cached constant tables (built once per parameter set with numpy, mirroring librosa.filters)
# ---------------------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window exactly as scipy.signal.get_window('hann', n, fftbins=True)."""
    fac = np.linspace(-np.pi, np.pi, n_fft + 1)[:-1]
    w = np.zeros(n_fft)
    w += 0.5 * np.cos(0.0 * fac)
    w += 0.5 * np.cos(1.0 * fac)
    return _readonly(w)


@functools.lru_cache(maxsize=8)
def _fft_freqs(sample_rate: int, n_fft: int) -> np.ndarray:
    return _readonly(np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate))


def _hz_to_mel(f: float) -> float:
    """Slaney mel scale (librosa.hz_to_mel, htk=False) for a scalar."""
    f_sp = 200.0 / 3
    if f >= 1000.0:
        return 1000.0 / f_sp + math.log(f / 1000.0) / (np.log(6.4) / 27.0)
    return f / f_sp


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Slaney mel scale inverse (librosa.mel_to_hz, htk=False) for an array."""
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    freqs[log_t] = 1000.0 * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised mel filterbank as librosa.filters.mel, (n_mels, n_bins) float32."""
    fftfreqs = _fft_freqs(sample_rate, n_fft)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sample_rate) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights = (weights * enorm[:, None]).astype(np.float32)  # float64 product, float32 store
    return _readonly(weights)


@functools.lru_cache(maxsize=8)
def _mel_bands(
    sample_rate: int, n_fft: int, n_mels: int
) -> tuple[tuple[int, int, np.ndarray], ...]:
    """Each mel filter's nonzero span as (first bin, stop bin, weights): ~2 weights per bin."""
    bands = []
    for row in _mel_basis(sample_rate, n_fft, n_mels):
        nz = np.flatnonzero(row)
        if nz.size == 0:  # empty filter (n_mels too high for n_fft): contributes 0, as in librosa
            bands.append((0, 0, row[:0]))
            continue
        a, b = int(nz[0]), int(nz[-1]) + 1
        bands.append((a, b, _readonly(np.ascontiguousarray(row[a:b]))))
    return tuple(bands)


@functools.lru_cache(maxsize=8)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II restricted to the first n_mfcc outputs, shape (n_mfcc, n_mels)."""
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_mfcc)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    m[:, 0] *= 1.0 / np.sqrt(2.0)
    return _readonly(np.ascontiguousarray(m.T))


@functools.lru_cache(maxsize=256)
def _chroma_basis(sample_rate: int, n_fft: int, n_chroma: int, tuning: float) -> np.ndarray:
    """librosa.filters.chroma (ctroct 5, octwidth 2, norm 2, base_c), (n_chroma, n_bins) float32."""
    frequencies = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (float(a440) / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    d = np.remainder(d + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * d / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    length = np.sqrt(np.sum(wts**2, axis=0, keepdims=True))
    length[length < np.finfo(np.float64).tiny] = 1.0
    wts = wts / length
    wts *= np.tile(
        np.exp(-0.5 * (((frqbins / n_chroma - _CHROMA_CTROCT) / _CHROMA_OCTWIDTH) ** 2)),
        (n_chroma, 1),
    )
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return _readonly(np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32))


@functools.lru_cache(maxsize=8)
def _contrast_bands(
    sample_rate: int, n_fft: int, n_bands: int, fmin: float
) -> tuple[tuple[int, int, int], ...]:
    """(first bin, stop bin, quantile count) per contrast band, as librosa selects them."""
    freq = _fft_freqs(sample_rate, n_fft)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if idx.size == 0:
            raise ValueError(
                f"spectral contrast band {k} ({f_low:g}-{f_high:g} Hz) holds no FFT bin; "
                "increase n_fft or contrast_fmin"
            )
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[-1] + 1 :] = True
        rows = np.flatnonzero(current)
        start, stop = int(rows[0]), int(rows[-1]) + 1
        q = int(np.maximum(np.rint(_CONTRAST_QUANTILE * np.sum(current)), 1))
        if k < n_bands:
            stop -= 1  # librosa drops the band's top bin (it is the next band's bottom one)
        if stop - start < 1:
            raise ValueError(f"spectral contrast band {k} is empty; increase n_fft")
        q = min(q, stop - start)
        bands.append((start, stop, q))
    return tuple(bands)


# ---------------------------------------------------------------------------------------------
# Spectrogram
# ---------------------------------------------------------------------------------------------


def _check_signal(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"audio must be a 1-D mono signal, got shape {y.shape}")
    if y.dtype.kind != "f":
        raise ValueError(f"audio must be floating point (samples in [-1, 1]), got dtype {y.dtype}")
    if y.size == 0:
        raise ValueError("audio is empty")
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float32)
    if not np.isfinite(y).all():
        raise ValueError("audio contains NaN or infinite samples")
    return y


def stft_magnitude(y: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """|STFT| of a mono signal, shape (n_frames, n_bins) float32, frames along axis 0.

    Centred frames with zero padding and a periodic Hann window, as librosa.stft's defaults.
    The windowed frames and the FFT are float64 and the result is rounded through complex64,
    the same steps librosa takes for float32 audio, so the magnitudes match bit for bit.
    """
    y = _check_signal(y)
    n_fft, hop = params.n_fft, params.hop_length
    pad = n_fft // 2
    padded = np.zeros(y.size + 2 * pad, dtype=y.dtype)
    padded[pad : pad + y.size] = y
    frames = sliding_window_view(padded, n_fft)[::hop]
    window = _hann(n_fft)
    mag = np.empty((frames.shape[0], params.n_bins), dtype=np.float32)
    # Blocks of frames keep the float64 temporaries cache-sized: ~1.5x faster than one big FFT.
    block = max(1, _STFT_BLOCK_BYTES // (8 * n_fft))
    buf = np.empty((min(block, frames.shape[0]), n_fft))
    for i in range(0, frames.shape[0], block):
        n = min(block, frames.shape[0] - i)
        np.multiply(frames[i : i + n], window, out=buf[:n])
        spec = np.fft.rfft(buf[:n], axis=1).astype(np.complex64)
        np.abs(spec, out=mag[i : i + n])
    return mag


def power_spectrogram(mag: np.ndarray) -> np.ndarray:
    """Power spectrogram |X|^2 from `stft_magnitude` (float32, as librosa squares it)."""
    return np.square(mag)


# ---------------------------------------------------------------------------------------------
# Feature groups
# ---------------------------------------------------------------------------------------------


def _power_to_db(s: np.ndarray) -> np.ndarray:
    """librosa.power_to_db with ref=1, amin=1e-10, top_db=80 (floor relative to the global max)."""
    log_spec = 10.0 * np.log10(np.maximum(_AMIN, s))
    return np.maximum(log_spec, log_spec.max() - _TOP_DB)


def mel_spectrogram(power: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Slaney mel power spectrogram, (n_frames, n_mels) float32.

    Sums over each triangle's nonzero span only (about 2 nonzero weights per bin, so 1/64 of
    the dense product's work).
    """
    out = np.empty((params.n_mels, power.shape[0]), dtype=np.float32)
    for m, (a, b, w) in enumerate(_mel_bands(params.sample_rate, params.n_fft, params.n_mels)):
        out[m] = np.einsum("tf,f->t", power[:, a:b], w) if b > a else 0.0
    return np.ascontiguousarray(out.T)


def mfcc(power: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """MFCC (Slaney mel, dB with an 80 dB floor below the clip's peak, DCT-II ortho).

    ``power`` is (n_frames, n_bins); returns (n_frames, n_mfcc) float32.
    """
    log_mel = _power_to_db(mel_spectrogram(power, params)).astype(np.float64)
    dct = _dct_matrix(params.n_mels, params.n_mfcc)
    return np.einsum("tm,km->tk", log_mel, dct).astype(np.float32)


def spectral_centroid(mag: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Magnitude-weighted mean frequency in Hz per frame, shape (n_frames,) float32.

    Frames whose magnitude sums to (nearly) zero give 0 Hz, as librosa's normalize leaves them.
    """
    freqs = _fft_freqs(params.sample_rate, params.n_fft)
    moment = np.einsum("tf,f->t", mag, freqs.astype(np.float32)).astype(np.float64)
    total = mag.sum(axis=1, dtype=np.float64)
    small = total < np.finfo(np.float32).tiny
    return np.where(small, 0.0, moment / np.where(small, 1.0, total)).astype(np.float32)


def estimate_tuning(power: np.ndarray, params: FeatureParams = FeatureParams()) -> float:
    """Tuning offset in fractions of a chroma bin, as librosa.estimate_tuning(S=power).

    Reimplements piptrack on the power spectrogram (bins 150 Hz <= f < 4 kHz that are local
    maxima along frequency after zeroing values below 0.1 x the frame's maximum, parabolic
    interpolation of the peak position and height), keeps the peaks at least as strong as the
    median peak, and returns the left edge of the fullest bin of a 0.01-wide histogram of their
    deviation from the equal-tempered grid. Returns 0.0 when no peak exists (librosa warns).
    """
    sr, n_fft, n_chroma = params.sample_rate, params.n_fft, params.n_chroma
    freqs = _fft_freqs(sr, n_fft)
    fmax = min(_PIP_FMAX, float(sr) / 2)
    in_range = np.flatnonzero((_PIP_FMIN <= freqs) & (freqs < fmax))
    if in_range.size == 0:
        return 0.0
    # Bin 0 is never a local max; the top bin cannot be in range (f < fmax <= sr/2).
    lo, hi = max(int(in_range[0]), 1), int(in_range[-1]) + 1
    if lo >= hi:
        return 0.0
    ref = np.float32(_PIP_THRESHOLD) * power.max(axis=1, keepdims=True)
    sub = power[:, lo - 1 : hi + 1]
    x = sub * (sub > ref)
    centre = x[:, 1:-1]
    is_peak = (centre > x[:, :-2]) & (centre >= x[:, 2:])
    t, j = np.nonzero(is_peak)
    if t.size == 0:
        return 0.0
    s_lo, s_0, s_hi = sub[t, j], sub[t, j + 1], sub[t, j + 2]
    # Parabolic vertex offset. librosa's numba stencil types the literal 2 as int64, so the
    # "- 2 * x[0]" term and the "/ 2" are float64 while "x[1] + x[-1]" stays float32.
    a = (s_hi + s_lo).astype(np.float64) - 2 * s_0.astype(np.float64)
    b = (s_hi - s_lo).astype(np.float64) / 2
    ok = np.abs(b) < np.abs(a)
    shift = np.zeros(t.size, dtype=np.float32)
    shift[ok] = -b[ok] / a[ok]
    avg = (s_hi - s_lo) / 2.0  # np.gradient, float32
    mags = s_0 + (0.5 * avg) * shift
    pitches = ((j + lo + shift.astype(np.float64)) * float(sr) / n_fft).astype(np.float32)
    threshold = np.median(mags)
    selected = pitches[mags >= threshold]
    selected = selected[selected > 0]
    if selected.size == 0:
        return 0.0
    # hz_to_octs in float32 as librosa computes it for float32 pitches.
    octs = np.log2(selected / (440.0 / 16))
    residual = np.mod(n_chroma * octs, 1.0)
    residual[residual >= 0.5] -= 1.0
    edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / _TUNING_RESOLUTION)) + 1)
    counts, _ = np.histogram(residual, edges)
    return float(edges[np.argmax(counts)])


def chroma(
    power: np.ndarray, params: FeatureParams = FeatureParams(), *, tuning: float | None = None
) -> np.ndarray:
    """Chromagram (C first), each frame scaled so its largest pitch class is 1.

    ``tuning=None`` estimates it from ``power`` like librosa.chroma_stft. Frames with no
    energy stay all-zero. Returns (n_frames, n_chroma) float32.
    """
    if tuning is None:
        tuning = estimate_tuning(power, params)
    basis = _chroma_basis(params.sample_rate, params.n_fft, params.n_chroma, float(tuning))
    return _normalize_chroma(np.einsum("tf,cf->tc", power, basis))


def _normalize_chroma(raw: np.ndarray) -> np.ndarray:
    """Scale each frame to max 1 (librosa.util.normalize, norm=inf); all-zero frames stay 0."""
    length = raw.max(axis=1, keepdims=True).astype(np.float64)
    length[length < np.finfo(raw.dtype).tiny] = 1.0
    return (raw / length).astype(np.float32)


def spectral_contrast(mag: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Octave-band spectral contrast in dB, shape (n_frames, n_contrast_bands + 1) float32.

    Per band: mean of the top 2 % of magnitudes over mean of the bottom 2 % (at least one bin),
    each converted with power_to_db (80 dB floor relative to that quantity's max over the clip).
    """
    bands = _contrast_bands(
        params.sample_rate, params.n_fft, params.n_contrast_bands, params.contrast_fmin
    )
    n = mag.shape[0]
    valley = np.empty((n, len(bands)), dtype=np.float64)
    peak = np.empty((n, len(bands)), dtype=np.float64)
    for k, (start, stop, q) in enumerate(bands):
        sub = mag[:, start:stop]
        if q == 1:
            valley[:, k] = sub.min(axis=1)
            peak[:, k] = sub.max(axis=1)
        else:
            # numpy's SIMD sort beats np.partition here by ~5x for these widths.
            ordered = np.sort(sub, axis=1)
            valley[:, k] = ordered[:, :q].mean(axis=1)
            peak[:, k] = ordered[:, -q:].mean(axis=1)
    return (_power_to_db(peak) - _power_to_db(valley)).astype(np.float32)


def extract(y: np.ndarray, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """All features of a mono signal: (n_frames, n_features) float32, C-contiguous.

    Columns follow `feature_names(params)`: MFCC, centroid, chroma, contrast. ``y`` must be a
    1-D finite floating-point array at ``params.sample_rate``; anything else raises ValueError.
    """
    mag = stft_magnitude(y, params)
    power = power_spectrogram(mag)
    out = np.empty((mag.shape[0], params.n_features), dtype=np.float32)
    c = 0
    out[:, c : c + params.n_mfcc] = mfcc(power, params)
    c += params.n_mfcc
    out[:, c] = spectral_centroid(mag, params)
    c += 1
    out[:, c : c + params.n_chroma] = chroma(power, params)
    c += params.n_chroma
    out[:, c:] = spectral_contrast(mag, params)
    return out


def add_noise_floor(y: np.ndarray, level_db: float | None) -> np.ndarray:
    """``y`` plus white noise ``level_db`` below its RMS (deterministic: seeded by its length).

    Lossy codecs leave holes in the spectrum and a lower sample rate leaves the top band empty;
    the log-mel, chroma and contrast features read such silence as strongly as they read sound.
    A faint shared noise floor, added before feature extraction at training and at inference,
    fills those holes alike for every source, so an MP3 or a 16 kHz file looks much more like
    the lossless original (measured in README, "Model choices"). ``None`` returns ``y``.
    """
    if level_db is None or y.size == 0:
        return y
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms == 0.0 or not math.isfinite(rms):
        return y
    rng = np.random.default_rng(y.size)
    noise = rng.standard_normal(y.size, dtype=np.float32) * np.float32(rms * 10.0 ** (level_db / 20.0))
    return (y + noise).astype(np.float32, copy=False)
