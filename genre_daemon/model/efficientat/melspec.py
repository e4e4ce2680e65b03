"""EfficientAT's input: the log-mel spectrogram of 32 kHz mono audio, in torch float32, no torchaudio.

Why a port: the pretrained mn04_as weights expect exactly the preprocessing they were trained
with (EfficientAT ``models/preprocess.py``, ``AugmentMelSTFT`` in eval mode), and torchaudio has
no build for this torch. The recipe:

* pre-emphasis ``x[n] - 0.97 x[n-1]`` as a valid convolution (the result is one sample shorter);
* STFT, n_fft 1024, hop 320, a symmetric Hann window of 800 (``periodic=False``) zero-padded
  to 1024 in the middle (as ``torch.stft`` pads it), ``center=True`` with reflect padding;
  power spectrum;
* Kaldi's triangular mel filterbank (``torchaudio.compliance.kaldi.get_mel_banks``, no VTLN
  warp): 128 bands, 0 to 15,000 Hz on the mel scale ``1127 ln(1 + f / 700)``, over the first
  512 FFT bins (the Nyquist bin gets weight 0), computed in float32 as torchaudio does;
* ``log(mel + 1e-5)``, then ``(x + 4.5) / 5``.

A 10 s window (320,000 samples) gives 1000 frames. Tolerance against the reference (its goldens,
``tests/model/test_efficientat.py``): atol 1e-4 on values of order 1 (the same float32
operations in the same order; measured max abs error 0 on both goldens).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["SR", "N_FFT", "WIN", "HOP", "N_MELS", "FMIN", "FMAX", "PREEMPHASIS", "MIN_SAMPLES",
           "mel_filterbank", "log_mel"]

SR = 32000
N_FFT = 1024
WIN = 800
HOP = 320
N_MELS = 128
FMIN = 0.0
FMAX = 15000.0  # sr / 2 - fmax_aug_range / 2 (1000): the reference's eval-time upper edge
PREEMPHASIS = 0.97
MIN_SAMPLES = N_FFT // 2 + 2  # reflect padding needs more than n_fft / 2 samples after pre-emphasis

_CACHE: dict[str, torch.Tensor] = {}


def _mel(f: torch.Tensor) -> torch.Tensor:
    """Kaldi's mel scale, ``1127 ln(1 + f / 700)``."""
    return 1127.0 * (1.0 + f / 700.0).log()


def mel_filterbank() -> torch.Tensor:
    """Triangular mel filters ``(128, 513)`` float32 (Kaldi ``get_mel_banks``, Nyquist column 0).

    Band ``b`` rises from ``mel_low + b * delta`` to its centre ``mel_low + (b + 1) * delta``
    and falls to ``mel_low + (b + 2) * delta`` (``delta`` the mel span over 129), evaluated at
    the mel value of each FFT bin's frequency ``k * sr / n_fft``.
    """
    if "mel" not in _CACHE:
        mel_low, mel_high = 1127.0 * math.log(1.0 + FMIN / 700.0), 1127.0 * math.log(1.0 + FMAX / 700.0)
        delta = (mel_high - mel_low) / (N_MELS + 1)
        band = torch.arange(N_MELS).unsqueeze(1)
        left, centre, right = mel_low + band * delta, mel_low + (band + 1.0) * delta, mel_low + (band + 2.0) * delta
        bins = _mel((SR / N_FFT) * torch.arange(N_FFT // 2)).unsqueeze(0)
        up = (bins - left) / (centre - left)
        down = (right - bins) / (right - centre)
        bank = torch.clamp(torch.minimum(up, down), min=0.0)
        _CACHE["mel"] = torch.nn.functional.pad(bank, (0, 1)).contiguous()
    return _CACHE["mel"]


def _window() -> torch.Tensor:
    if "win" not in _CACHE:
        _CACHE["win"] = torch.hann_window(WIN, periodic=False, dtype=torch.float32)
    return _CACHE["win"]


def log_mel(y: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The network input ``(batch, 128, frames)`` float32 of 32 kHz mono audio ``y``, one clip
    ``(samples,)`` or a batch of equal-length clips ``(batch, samples)``; each clip is its own
    signal (pre-emphasis and reflect padding at its own edges). ``1 + (samples - 1) // 320``
    frames: 1000 for 10 s. ValueError for audio shorter than :data:`MIN_SAMPLES` or not finite.
    """
    x = torch.as_tensor(np.asarray(y, dtype=np.float32) if not isinstance(y, torch.Tensor) else y, dtype=torch.float32)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"expected mono audio (samples,) or (batch, samples), got shape {tuple(x.shape)}")
    if x.shape[1] < MIN_SAMPLES:
        raise ValueError(f"audio of {x.shape[1]} samples is too short for EfficientAT's STFT (needs {MIN_SAMPLES})")
    x = x[:, 1:] - PREEMPHASIS * x[:, :-1]
    spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WIN, window=_window(), center=True,
                      pad_mode="reflect", normalized=False, return_complex=True)
    power = torch.view_as_real(spec).pow(2).sum(dim=-1)  # (batch, 513, frames)
    mel = torch.matmul(mel_filterbank(), power)
    return ((mel + 1e-5).log() + 4.5) / 5.0
