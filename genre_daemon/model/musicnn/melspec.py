"""musicnn's input: the log-mel spectrogram of 16 kHz mono audio, cut into 3-second patches.

Why here and in numpy: musicnn computes it with librosa, whose import alone costs seconds;
this reproduces ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256,
n_mels=96)`` (librosa 0.11 defaults: periodic Hann window, ``center=True`` with
``pad_mode='constant'`` zeros, power 2, Slaney mel scale and area normalisation, the DFT in
float64 rounded to complex64, as librosa does) and then musicnn's compression
``log10(10000 * mel + 1)`` after its cast of the mel values to float16.

Tolerance against librosa: float32 rounding of the filterbank product only (relative ~1e-6).
One deliberate difference: float16 saturates to inf above 65504, which musicnn would feed to
the network as inf (NaN tags); here the mel values are clipped to 65504 first (unreachable for
audio within [-1, 1], whose mel values stay below ~2000).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SR", "N_FFT", "HOP", "N_MELS", "N_FRAMES", "mel_filterbank", "melspectrogram", "log_mel", "patches"]

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = 187  # musicnn's 3-s patch: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
F16_MAX = float(np.finfo(np.float16).max)

_FILTERS: dict[tuple[int, int, int], np.ndarray] = {}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    safe = np.maximum(f, min_log_hz)
    return np.where(f >= min_log_hz, min_log_mel + np.log(safe / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular mel filters (n_mels, 1 + n_fft // 2), float32, 0 to sr/2.

    Computed as ``librosa.filters.mel`` does, including its float32 storage of the triangles
    before the normalisation is multiplied in.
    """
    key = (sr, n_fft, n_mels)
    if key not in _FILTERS:
        fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), n_mels + 2))
        fdiff = np.diff(mel_f)
        ramps = np.subtract.outer(mel_f, fftfreqs)
        lower = -ramps[:-2] / fdiff[:-1, None]
        upper = ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
        enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
        weights = (weights * enorm[:, None]).astype(np.float32)
        weights.setflags(write=False)
        _FILTERS[key] = weights
    return _FILTERS[key]


def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy ``get_window('hann', n, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def melspectrogram(y: np.ndarray, chunk_frames: int = 4096) -> np.ndarray:
    """Mel power spectrogram (frames, 96), float32, of 16 kHz mono ``y``; 1 + len(y) // 256 frames.

    Works in chunks of ``chunk_frames`` frames to bound memory on long files.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    pad = N_FFT // 2
    yp = np.pad(y, (pad, pad), mode="constant")
    n_frames = 1 + (len(yp) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(yp, N_FFT)[::HOP][:n_frames]
    window = _hann(N_FFT)
    basis = mel_filterbank()
    out = np.empty((n_frames, basis.shape[0]), dtype=np.float32)
    for start in range(0, n_frames, chunk_frames):
        spec = np.fft.rfft(frames[start:start + chunk_frames] * window, axis=1).astype(np.complex64)
        power = np.abs(spec) ** 2  # float32, as librosa's np.abs(stft) ** 2
        out[start:start + chunk_frames] = power @ basis.T
    return out


def log_mel(y: np.ndarray) -> np.ndarray:
    """musicnn's input representation (frames, 96), float32, of 16 kHz mono audio ``y``:
    ``log10(10000 * float16(mel) + 1)`` (musicnn/extractor.py, computed in float32 as numpy 1.x did)."""
    mel = np.minimum(melspectrogram(y), F16_MAX).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * mel + np.float32(1))


def patches(logmel: np.ndarray, hop: int = N_FRAMES, n_frames: int = N_FRAMES) -> np.ndarray:
    """Cut a log-mel (frames, 96) into patches (n, n_frames, 96), one every ``hop`` frames.

    ``hop = n_frames`` (default) gives musicnn's default non-overlapping 3-s patches
    (``input_overlap=False``); like musicnn, a trailing remainder shorter than a patch is
    dropped, so audio shorter than 3 s (187 frames, 47,616 samples) gives zero patches.
    The result is a copy (C-contiguous, float32).
    """
    if logmel.ndim != 2:
        raise ValueError(f"expected a (frames, bands) log-mel, got shape {logmel.shape}")
    if hop < 1 or n_frames < 1:
        raise ValueError("hop and n_frames must be >= 1")
    starts = range(0, logmel.shape[0] - n_frames + 1, hop)
    out = np.empty((len(starts), n_frames, logmel.shape[1]), dtype=np.float32)
    for i, s in enumerate(starts):
        out[i] = logmel[s:s + n_frames]
    return out
