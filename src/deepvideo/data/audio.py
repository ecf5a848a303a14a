"""A video's audio track as log-mel spectrogram windows aligned with its clips.

* :func:`read_audio`: decode the first audio stream with PyAV, downmix to mono and resample
  to ``rate`` Hz (float32 in [-1, 1]). A video without an audio stream raises
  :class:`NoAudioError` (naming the file), unless ``missing="silence"``: then the track is
  silence as long as the video (``duration`` seconds), a documented fallback for sets where some
  videos have no sound (the audio pathway then sees the log of the floor value everywhere).
* :func:`mel_filterbank`: triangular filters on the HTK mel scale ``m = 2595 log10(1 + f/700)``,
  ``n_mels`` filters between 0 Hz and ``rate / 2``, peak 1.
* :func:`log_mel`: ``log(mel · |STFT|² + 1e-6)`` with a Hann window of ``n_fft`` samples,
  ``[frames, n_mels]`` (time x frequency, the audio pathway's 2D input).
* :func:`clip_log_mel`: the spectrogram of the time span of a clip's frames ``[first / fps,
  (last + 1) / fps)``, with the hop chosen so the window gives exactly ``frames`` steps.

Audiovisual SlowFast (Xiao et al. 2020) reads 16 kHz audio as an 80-bin log-mel spectrogram of
128 steps per clip with 32 ms windows (:data:`AUDIO_RATE`, :data:`N_MELS`, :data:`AUDIO_FRAMES`,
:data:`WINDOW_S`).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

AUDIO_RATE = 16000  # Hz (Xiao et al. 2020)
N_MELS = 80  # mel bins (Xiao et al. 2020)
AUDIO_FRAMES = 128  # spectrogram steps per clip (Xiao et al. 2020)
WINDOW_S = 0.032  # STFT window (Xiao et al. 2020)
LOG_FLOOR = 1e-6


class NoAudioError(ValueError):
    """A video that has no audio stream was asked for its audio."""


def read_audio(path: str | os.PathLike, rate: int = AUDIO_RATE, missing: str = "error",
               duration: float | None = None) -> np.ndarray:
    """Mono float32 samples of ``path``'s first audio stream at ``rate`` Hz (see the module docstring)."""
    import av

    if missing not in ("error", "silence"):
        raise ValueError(f"missing must be 'error' or 'silence', got {missing!r}")
    with av.open(str(path)) as container:
        if not container.streams.audio:
            if missing == "error":
                raise NoAudioError(f"{path}: the video has no audio stream (use missing='silence' for "
                                   "a silent track)")
            if duration is None:
                v = container.streams.video[0] if container.streams.video else None
                duration = float(container.duration / 1e6) if container.duration else (
                    float(v.frames / v.average_rate) if v is not None and v.frames else 0.0)
            return np.zeros(int(round(duration * rate)), np.float32)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, rate: int, n_mels: int = N_MELS) -> torch.Tensor:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters, equally spaced on the mel scale."""
    freqs = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(rate / 2), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return torch.from_numpy(np.clip(np.minimum(up, down), 0.0, None)).float()


def log_mel(wave: torch.Tensor, rate: int = AUDIO_RATE, n_mels: int = N_MELS, hop: int | None = None,
            window_s: float = WINDOW_S) -> torch.Tensor:
    """``[frames, n_mels]`` log-mel spectrogram of mono ``wave [S]`` (frames centred every ``hop``)."""
    n_fft = int(round(window_s * rate))
    hop = hop or n_fft // 2
    if wave.numel() < n_fft:  # short windows: zero-padded to one STFT window
        wave = torch.nn.functional.pad(wave, (0, n_fft - wave.numel()))
    spec = torch.stft(wave.float(), n_fft, hop, window=torch.hann_window(n_fft), center=True,
                      return_complex=True).abs().square()  # [n_fft/2+1, frames]
    return torch.log(mel_filterbank(n_fft, rate, n_mels) @ spec + LOG_FLOOR).T


def clip_log_mel(samples: np.ndarray, frame_indices, fps: float, rate: int = AUDIO_RATE,
                 frames: int = AUDIO_FRAMES, n_mels: int = N_MELS) -> torch.Tensor:
    """``[1, frames, n_mels]``: the log-mel spectrogram of the clip's time span (zero-padded past the
    end of the track)."""
    idx = np.asarray(frame_indices).reshape(-1)
    if fps <= 0 or idx.size == 0:
        raise ValueError(f"need fps > 0 and at least one frame index, got fps={fps}, {idx.size} indices")
    start = int(math.floor(idx.min() / fps * rate))
    stop = max(start + 1, int(math.ceil((idx.max() + 1) / fps * rate)))
    window = np.zeros(stop - start, np.float32)
    part = samples[start:stop]
    window[: part.size] = part
    hop = max(1, (stop - start) // frames)
    mel = log_mel(torch.from_numpy(window), rate, n_mels, hop)
    if mel.shape[0] < frames:
        mel = torch.cat([mel, mel.new_full((frames - mel.shape[0], n_mels), math.log(LOG_FLOOR))])
    return mel[:frames][None]
