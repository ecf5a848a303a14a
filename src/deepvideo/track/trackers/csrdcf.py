"""CSR-DCF: discriminative correlation filter with channel and spatial reliability.

A. Lukežič, T. Vojíř, L. Čehovin Zajc, J. Matas, M. Kristan, "Discriminative Correlation Filter
with Channel and Spatial Reliability", CVPR 2017 (the tracker behind OpenCV's CSRT).

- Spatial reliability: a foreground/background segmentation of the search window from HSV
  colour histograms (16 bins per channel, updated with rate 0.04) and a location prior (an
  Epanechnikov kernel on the target clipped to ``[0.5, 0.9]``); the posterior, normalised by
  its maximum and thresholded at 0.5, dilated by one cell, is the filter's support mask ``m``
  (the target box when the mask covers less than 5 % of the target).
- Constrained filter learning by ADMM (augmented Lagrangian): ``ĥ_c = (f̂ ⊙ ĝ* + μ ĥ - l̂) /
  (f̂* ⊙ f̂ + μ)``, ``h = m ⊙ F⁻¹(μ ĥ_c + l̂) / (λ + μ)``, ``l̂ += μ (ĥ_c - ĥ)``,
  ``μ ← min(β μ, 20)``, with μ₀ = 5, β = 3, 4 iterations and λ = μ₀ / 100 (the values of the
  authors' implementation).
- Channel reliability: each channel's learning reliability (the maximum of its own response on
  the training sample) times its detection reliability (1 - second / first highest local
  maximum of its response, at least 0.5); the normalised weights combine the per-channel
  responses and are updated with rate 0.02, like the filter.
- Features: fHOG (cell 4) + 11 colour names + grey, cosine window; a square search window of
  side ``mean(w, h) + 3 sqrt(w h)`` (padding 3) resampled to about ``200²`` pixels; Gaussian
  label of σ = 1 cell; DSST scale filter (33 scales, step 1.02, rate 0.025).

Simplifications: the paper's segmentation regularises the posterior with a Markov random field;
here a Gaussian blur of one cell stands in for it, and the mask is kept inside the target box
grown by ``mask_box_growth`` (1.5) so that a background of the target's colours does not
spread the filter's support over the whole window.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import (
    box_to_center,
    center_to_box,
    clamp_center,
    cosine_window,
    extract_patch,
    fft2,
    gaussian_label,
    ifft2,
    peak_displacement,
    template_geometry,
)
from deepvideo.track.features import COLOUR_NAMES, HOG_CHANNELS, colour_names, grey, hog
from deepvideo.track.registry import register_tracker
from deepvideo.track.scale_filter import ScaleFilter

ADMM_MU, ADMM_BETA, ADMM_MU_MAX, ADMM_ITERATIONS = 5.0, 3.0, 20.0, 4


def constrained_filter(features_f: np.ndarray, label_f: np.ndarray, mask: np.ndarray,
                       lam: float, iterations: int = ADMM_ITERATIONS, mu: float = ADMM_MU,
                       beta: float = ADMM_BETA, mu_max: float = ADMM_MU_MAX) -> np.ndarray:
    """The CSR-DCF filter spectrum ``[H, W', C]`` for feature spectra ``[H, W', C]``, a label
    spectrum ``[H, W']`` and a spatial support ``mask [H, W]``, by ADMM."""
    shape = mask.shape
    support = mask[:, :, None]
    cross = features_f * np.conj(label_f)[:, :, None]
    power = features_f.real ** 2 + features_f.imag ** 2
    h = fft2(support * ifft2(cross / (power + lam), shape))
    multiplier = np.zeros_like(h)
    for iteration in range(iterations):
        g = (cross + mu * h - multiplier) / (power + mu)
        h = fft2(support * ifft2(mu * g + multiplier, shape) / (lam + mu))
        if iteration == iterations - 1:
            break
        multiplier = multiplier + mu * (g - h)
        mu = min(mu_max, beta * mu)
    return h


def detection_reliability(responses: np.ndarray) -> np.ndarray:
    """Per channel of ``responses [H, W, C]``: ``1 - second / first`` highest local maximum of
    the min-max normalised response, at least 0.5 (1 for a flat channel)."""
    low = responses.min(axis=(0, 1))
    span = responses.max(axis=(0, 1)) - low
    normed = (responses - low) / np.where(span > 0, span, 1)
    padded = np.pad(normed, ((1, 1), (1, 1), (0, 0)), mode="wrap")
    rows, cols = normed.shape[:2]
    neighbourhood = padded[1:rows + 1, 1:cols + 1].copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(neighbourhood, padded[dy:dy + rows, dx:dx + cols], out=neighbourhood)
    peaks = neighbourhood == normed
    values = np.where(peaks, normed, 0).reshape(-1, normed.shape[2])
    top_two = -np.partition(-values, 1, axis=0)[:2]
    ratio = np.where(top_two[0] > 0, top_two[1] / np.where(top_two[0] > 0, top_two[0], 1), 0)
    return np.where(span > 0, np.maximum(1 - ratio, 0.5), 1.0)


def hsv_bins(patch: np.ndarray, nbins: int) -> np.ndarray:
    """Joint HSV histogram bin of every pixel of an RGB patch, ``nbins`` per channel."""
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV_FULL).astype(np.int32)
    q = hsv * nbins // 256
    return (q[..., 0] * nbins + q[..., 1]) * nbins + q[..., 2]


def location_prior(shape: tuple[int, int], target: tuple[float, float]) -> np.ndarray:
    """Epanechnikov profile centred in ``shape`` over a circle sized by the smaller target
    side, normalised to peak 1 and clipped to ``[0.5, 0.9]`` (CSR-DCF's foreground prior)."""
    rows, cols = shape
    radius = 0.5 * min(target) * math.sqrt(2) + 1
    y = (np.arange(rows) - (rows - 1) / 2) / radius
    x = (np.arange(cols) - (cols - 1) / 2) / radius
    profile = np.maximum(1 - (y[:, None] ** 2 + x[None, :] ** 2), 0)
    return np.clip(profile / max(profile.max(), 1e-12), 0.5, 0.9)


@register_tracker("csrdcf", paper="Lukežič et al., CVPR 2017")
class CSRDCF:
    """CSR-DCF on HOG + colour names + grey with DSST scale (score = response peak)."""

    def __init__(self, padding: float = 3.0, template_area: float = 200 * 200,
                 cell_size: int = 4, label_sigma: float = 1.0, learning_rate: float = 0.02,
                 channel_weight_rate: float = 0.02, hist_rate: float = 0.04, nbins: int = 16,
                 lam: float = ADMM_MU / 100, admm_iterations: int = ADMM_ITERATIONS,
                 min_mask_fraction: float = 0.05, mask_box_growth: float = 1.5,
                 use_segmentation: bool = True,
                 use_channel_weights: bool = True, scale_learning_rate: float = 0.025):
        self.padding, self.template_area, self.cell_size = padding, template_area, cell_size
        self.label_sigma, self.learning_rate = label_sigma, learning_rate
        self.channel_weight_rate, self.hist_rate, self.nbins = channel_weight_rate, hist_rate, \
            nbins
        self.lam, self.admm_iterations = lam, admm_iterations
        self.min_mask_fraction, self.use_segmentation = min_mask_fraction, use_segmentation
        self.mask_box_growth = mask_box_growth
        self.use_channel_weights, self.scale_learning_rate = use_channel_weights, \
            scale_learning_rate

    # -- geometry and features ------------------------------------------------------------
    def patch(self, frame: np.ndarray) -> np.ndarray:
        window = (self.window_side * self.scale, self.window_side * self.scale)
        return extract_patch(frame, self.center, window, self.template_size)

    def features(self, patch: np.ndarray) -> np.ndarray:
        cell = self.cell_size
        stacked = np.concatenate([hog(patch, cell), colour_names(patch, cell),
                                  grey(patch, cell)], axis=2)
        return fft2(stacked * self.window[:, :, None])

    def target_box_mask(self, shape: tuple[int, int], per_pixel: float,
                        grow: float = 1.0) -> np.ndarray:
        """1 inside the (centred) target box, its sides times ``grow``, on a grid of ``shape``
        with ``per_pixel`` grid units per frame pixel at the base scale, 0 outside."""
        rows, cols = shape
        w, h = (s * per_pixel * grow for s in self.base_size)
        y = np.abs(np.arange(rows) + 0.5 - rows / 2) <= h / 2
        x = np.abs(np.arange(cols) + 0.5 - cols / 2) <= w / 2
        return (y[:, None] & x[None, :]).astype(np.float32)

    # -- spatial reliability ----------------------------------------------------------------
    def update_histograms(self, bins: np.ndarray, rate: float | None) -> None:
        inside = self.target_box_mask(bins.shape, self.factor).astype(bool)
        size = self.nbins ** 3
        foreground = np.bincount(bins[inside], minlength=size).astype(np.float64)
        background = np.bincount(bins[~inside], minlength=size).astype(np.float64)
        foreground /= max(foreground.sum(), 1)
        background /= max(background.sum(), 1)
        if rate is None:
            self.hist_fg, self.hist_bg = foreground, background
        else:
            self.hist_fg = (1 - rate) * self.hist_fg + rate * foreground
            self.hist_bg = (1 - rate) * self.hist_bg + rate * background

    def spatial_mask(self, patch: np.ndarray) -> np.ndarray:
        """The filter's support on the cell grid from a colour segmentation of ``patch``."""
        box = self.target_box_mask(self.shape, self.factor / self.cell_size)
        if not self.use_segmentation:
            return box
        bins = hsv_bins(patch, self.nbins)
        self.update_histograms(bins, self.hist_rate)
        rows, cols = self.shape
        target = tuple(s * self.factor for s in self.base_size)
        prior = location_prior(bins.shape, target)
        fg = self.hist_fg[bins] * prior
        bg = self.hist_bg[bins] * (1 - prior)
        posterior = (fg / (fg + bg + 1e-12)).astype(np.float32)
        posterior = cv2.resize(posterior, (cols, rows), interpolation=cv2.INTER_AREA)
        posterior = cv2.GaussianBlur(posterior, (0, 0), 1.0)
        mask = (posterior > 0.5 * max(float(posterior.max()), 1e-12)).astype(np.uint8)
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
        mask = mask * self.target_box_mask(self.shape, self.factor / self.cell_size,
                                           self.mask_box_growth)
        if mask.sum() < self.min_mask_fraction * box.sum():
            return box
        return mask.astype(np.float32)

    # -- learning ---------------------------------------------------------------------------
    def learn(self, patch: np.ndarray, reliability: np.ndarray, first: bool) -> None:
        features_f = self.features(patch)
        mask = self.last_mask = self.spatial_mask(patch)
        new = constrained_filter(features_f, self.label_f, mask, self.lam, self.admm_iterations)
        responses = ifft2(features_f * np.conj(new), self.shape)
        weights = np.maximum(responses.max(axis=(0, 1)), 0) * reliability
        weights /= max(weights.sum(), 1e-12)
        if first:
            self.filter, self.channel_weights = new, weights
            return
        rate = self.learning_rate
        self.filter = (1 - rate) * self.filter + rate * new
        self.channel_weights = (1 - self.channel_weight_rate) * self.channel_weights + \
            self.channel_weight_rate * weights
        self.channel_weights /= max(self.channel_weights.sum(), 1e-12)

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.base_size = box_to_center(as_box(box, "initial box"))
        w, h = self.base_size
        self.window_side = (w + h) / 2 + self.padding * math.sqrt(w * h)
        self.template_size, self.factor = template_geometry(
            (self.window_side, self.window_side), self.template_area, self.cell_size)
        self.shape = (self.template_size[1] // self.cell_size,
                      self.template_size[0] // self.cell_size)
        self.window = cosine_window(self.shape)
        self.label_f = fft2(gaussian_label(self.shape, self.label_sigma))
        self.scale = 1.0
        patch = self.patch(frame)
        self.update_histograms(hsv_bins(patch, self.nbins), None)
        channels = HOG_CHANNELS + len(COLOUR_NAMES) + 1          # HOG, colour names, grey
        self.learn(patch, np.ones(channels), first=True)
        self.scale_filter = ScaleFilter(learning_rate=self.scale_learning_rate)
        self.scale_filter.initialize(frame, self.center, self.base_size)

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        features_f = self.features(self.patch(frame))
        responses = ifft2(features_f * np.conj(self.filter), self.shape)
        if self.use_channel_weights:
            response = responses @ self.channel_weights
            reliability = detection_reliability(responses)
        else:
            response = responses.sum(axis=2)
            reliability = np.ones(responses.shape[2])
        dy, dx, peak = peak_displacement(response)
        step = self.cell_size / self.factor * self.scale
        self.center = clamp_center((self.center[0] + dx * step, self.center[1] + dy * step),
                                   frame)
        self.scale = self.scale_filter.estimate(frame, self.center)
        self.learn(self.patch(frame), reliability, first=False)
        self.scale_filter.update(frame, self.center)
        size = (self.base_size[0] * self.scale, self.base_size[1] * self.scale)
        return TrackResult(center_to_box(self.center, size), peak,
                           {"response": response, "mask": self.last_mask, "scale": self.scale})
