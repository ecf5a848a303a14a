"""DSST's scale filter: a 1-D correlation filter over a pyramid of target-sized patches.

M. Danelljan, G. Häger, F. S. Khan, M. Felsberg, "Accurate Scale Estimation for Robust Visual
Tracking", BMVC 2014. Around the current target, ``S = 33`` patches of sizes
``a^n · P × R`` (``a = 1.02``, ``n = -16..16``) are resampled to one model size (area at most
``32·16`` pixels), described by fHOG (cell 4) and stacked as a ``d × S`` sample, weighted by a
Hann window over the scales. The filter is learned per feature dimension in the Fourier domain
along the scale axis with a Gaussian label of standard deviation ``sqrt(S) / 4`` scale steps
(scale sigma factor 1/4), regularisation ``λ = 0.01`` and learning rate ``η = 0.025``
(numerator and denominator updated separately). The scale with the largest response is the
new one; scales are kept between the sizes where the window would fall below 5 pixels and
where the target would exceed the frame.

Any tracker can use it: ``initialize(frame, center, target_size)`` once, then per frame
``estimate(frame, center)`` -> the new scale factor (relative to the first target size) and
``update(frame, center)``.
"""

from __future__ import annotations

import math

import numpy as np

from deepvideo.track.dcf import extract_patch
from deepvideo.track.features import hog_batch


class ScaleFilter:
    """A DSST scale estimator (parameters of the paper by default)."""

    def __init__(self, n_scales: int = 33, scale_step: float = 1.02,
                 scale_sigma_factor: float = 0.25, learning_rate: float = 0.025,
                 lam: float = 1e-2, model_max_area: float = 32 * 16, cell_size: int = 4,
                 padding: float = 1.0):
        if n_scales < 3 or scale_step <= 1:
            raise ValueError(f"scale filter: need n_scales >= 3 and scale_step > 1, got "
                             f"{n_scales}, {scale_step}")
        self.n_scales, self.scale_step = n_scales, scale_step
        self.learning_rate, self.lam, self.cell_size = learning_rate, lam, cell_size
        self.model_max_area, self.padding = model_max_area, padding
        exponents = np.ceil(n_scales / 2) - np.arange(1, n_scales + 1)   # +16 .. -16
        self.factors = scale_step ** exponents
        offsets = np.arange(1, n_scales + 1) - np.ceil(n_scales / 2)
        sigma = math.sqrt(n_scales) * scale_sigma_factor
        self.label_f = np.fft.fft(np.exp(-0.5 * offsets ** 2 / sigma ** 2))
        self.window = np.hanning(n_scales) if n_scales % 2 else np.hanning(n_scales + 1)[1:]
        self.scale = 1.0
        self.numerator = self.denominator = None

    def initialize(self, frame: np.ndarray, center, target_size) -> None:
        """Start at scale 1 for a target of ``target_size`` ``(w, h)`` pixels."""
        self.base_size = (float(target_size[0]), float(target_size[1]))
        area = self.base_size[0] * self.base_size[1]
        shrink = min(1.0, math.sqrt(self.model_max_area / area))
        self.model_size = tuple(max(2 * self.cell_size, int(s * shrink)) for s in self.base_size)
        height, width = frame.shape[:2]
        log_step = math.log(self.scale_step)
        window = [s * (1 + self.padding) for s in self.base_size]
        self.min_scale = self.scale_step ** math.ceil(math.log(max(5 / min(window), 1e-9))
                                                      / log_step)
        self.max_scale = self.scale_step ** math.floor(
            math.log(min(width / self.base_size[0], height / self.base_size[1])) / log_step)
        self.scale = 1.0
        self.numerator = None
        self.update(frame, center)

    def sample(self, frame: np.ndarray, center) -> np.ndarray:
        """Fourier transform along scales of the ``d × S`` scale sample around ``center``.

        The window of the largest scale is resampled once to 1.5 times the model's resolution;
        every scale's patch is then resampled from it, so the cost does not grow with the
        target."""
        model_w, model_h = self.model_size
        fine = 1.5 * float(self.factors.max())
        outer_size = (math.ceil(model_w * fine) + 2, math.ceil(model_h * fine) + 2)
        per_pixel = (model_w / (self.base_size[0] * self.scale),
                     model_h / (self.base_size[1] * self.scale))
        outer = extract_patch(frame, center, (outer_size[0] / per_pixel[0] / 1.5,
                                              outer_size[1] / per_pixel[1] / 1.5), outer_size)
        middle = (outer_size[0] / 2, outer_size[1] / 2)
        patches = [extract_patch(outer, middle, (1.5 * model_w * factor, 1.5 * model_h * factor),
                                 self.model_size) for factor in self.factors]
        features = hog_batch(np.stack(patches), self.cell_size).reshape(len(patches), -1)
        return np.fft.fft(features.T * self.window[None, :], axis=1)

    def response(self, frame: np.ndarray, center) -> np.ndarray:
        """The filter's response over the ``S`` scales around the current one."""
        sample = self.sample(frame, center)
        spectrum = (self.numerator * sample).sum(axis=0) / (self.denominator + self.lam)
        return np.real(np.fft.ifft(spectrum))

    def estimate(self, frame: np.ndarray, center) -> float:
        """Move to the best scale around the current one and return it (relative to the first
        target size)."""
        if self.numerator is None:
            raise RuntimeError("scale filter: call initialize() first")
        best = int(np.argmax(self.response(frame, center)))
        self.scale = float(np.clip(self.scale * self.factors[best], self.min_scale,
                                   self.max_scale))
        return self.scale

    def update(self, frame: np.ndarray, center) -> None:
        """Learn from the scale sample at the current scale (running average, rate η)."""
        sample = self.sample(frame, center)
        numerator = self.label_f[None, :] * np.conj(sample)
        denominator = np.real(sample * np.conj(sample)).sum(axis=0)
        if self.numerator is None:
            self.numerator, self.denominator = numerator, denominator
        else:
            rate = self.learning_rate
            self.numerator = (1 - rate) * self.numerator + rate * numerator
            self.denominator = (1 - rate) * self.denominator + rate * denominator
