"""A bootstrap particle filter over a colour-histogram likelihood.

P. Pérez, C. Hue, J. Vermaak, M. Gangnet, "Color-Based Probabilistic Tracking", ECCV 2002, in
the sampling-importance-resampling form of M. Isard, A. Blake, "CONDENSATION — Conditional
Density Propagation for Visual Tracking", IJCV 1998. The colour model is an HSV histogram of
``10 × 10`` hue-saturation bins for pixels with saturation > 0.1 and value > 0.2, plus 10 value
bins for the others (110 bins); the distance to the reference histogram (from the first
frame) is the Bhattacharyya distance ``D = sqrt(1 - Σ sqrt(p q))`` and the likelihood
``exp(-λ D²)`` with λ = 20. Each frame the ``N`` particles (centre and log-scale of the box)
move by a Gaussian random walk, are weighted by the likelihood, give the weighted-mean box, and
are resampled (systematic resampling).

Choices not in the papers: random-walk instead of second-order auto-regressive dynamics (the
position step's standard deviation is ``position_sigma · sqrt(w h)``), and each histogram is
taken over a fixed ``grid × grid`` lattice of pixels spread over the box, so the cost does not
depend on the target size. ``seed`` makes runs reproducible. The score is the Bhattacharyya
coefficient of the returned box's histogram with the reference (1 = identical colours).
"""

from __future__ import annotations

import cv2
import numpy as np

from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import box_to_center, center_to_box
from deepvideo.track.registry import register_tracker

HS_BINS, V_BINS = 10, 10
SATURATION_MIN, VALUE_MIN = 0.1, 0.2
N_BINS = HS_BINS * HS_BINS + V_BINS


def colour_bins(pixels: np.ndarray) -> np.ndarray:
    """Pérez et al.'s 110-bin colour index of every pixel of RGB ``uint8`` ``pixels
    [..., W, 3]``."""
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2HSV_FULL).astype(np.int32)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    chromatic = (s > SATURATION_MIN * 255) & (v > VALUE_MIN * 255)
    hs = (h * HS_BINS // 256) * HS_BINS + s * HS_BINS // 256
    return np.where(chromatic, hs, HS_BINS * HS_BINS + v * V_BINS // 256)


def histograms(frame: np.ndarray, states: np.ndarray, base_size, grid: int) -> np.ndarray:
    """Normalised colour histograms ``[N, 110]`` of the boxes of ``states [N, 3]`` (centre x,
    centre y, log scale), each from the pixels of a ``grid × grid`` lattice spread over the
    box (clipped to the frame)."""
    height, width = frame.shape[:2]
    offsets = (np.arange(grid) + 0.5) / grid - 0.5
    scales = np.exp(states[:, 2])
    xs = states[:, 0, None] + offsets[None, :] * base_size[0] * scales[:, None]
    ys = states[:, 1, None] + offsets[None, :] * base_size[1] * scales[:, None]
    xs = np.clip(np.rint(xs), 0, width - 1).astype(np.int64)
    ys = np.clip(np.rint(ys), 0, height - 1).astype(np.int64)
    pixels = frame[ys[:, :, None], xs[:, None, :]].reshape(len(states), grid * grid, 3)
    flat = colour_bins(pixels) + (np.arange(len(states)) * N_BINS)[:, None]
    counts = np.bincount(flat.ravel(), minlength=len(states) * N_BINS)
    return counts.reshape(len(states), N_BINS) / float(grid * grid)


def bhattacharyya_coefficient(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(p * q).sum(axis=-1)


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``len(weights)`` particles drawn by systematic resampling."""
    count = len(weights)
    positions = (rng.random() + np.arange(count)) / count
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), count - 1)


@register_tracker("particle", paper="Pérez et al., ECCV 2002; Isard & Blake, IJCV 1998")
class ColourParticleFilter:
    """Bootstrap particle filter with an HSV colour-histogram likelihood (seeded)."""

    def __init__(self, n_particles: int = 100, lam: float = 20.0, position_sigma: float = 0.15,
                 scale_sigma: float = 0.02, grid: int = 16, seed: int = 0):
        if n_particles < 1 or grid < 1:
            raise ValueError(f"particle: need n_particles >= 1 and grid >= 1, got "
                             f"{n_particles}, {grid}")
        self.n_particles, self.lam, self.grid, self.seed = n_particles, lam, grid, seed
        self.position_sigma, self.scale_sigma = position_sigma, scale_sigma

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        center, self.base_size = box_to_center(as_box(box, "initial box"))
        self.rng = np.random.default_rng(self.seed)
        state = np.array([center[0], center[1], 0.0])
        self.particles = np.repeat(state[None], self.n_particles, axis=0)
        self.reference = histograms(frame, state[None], self.base_size, self.grid)[0]

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        step = self.position_sigma * np.sqrt(self.base_size[0] * self.base_size[1])
        noise = self.rng.standard_normal(self.particles.shape)
        noise *= np.array([step, step, self.scale_sigma])
        particles = self.particles + noise
        height, width = frame.shape[:2]
        particles[:, 0] = np.clip(particles[:, 0], 0, width - 1)
        particles[:, 1] = np.clip(particles[:, 1], 0, height - 1)
        coefficient = bhattacharyya_coefficient(
            histograms(frame, particles, self.base_size, self.grid), self.reference)
        log_likelihood = -self.lam * np.maximum(1 - coefficient, 0)   # -λ D²
        weights = np.exp(log_likelihood - log_likelihood.max())
        weights /= weights.sum()
        estimate = weights @ particles
        self.particles = particles[systematic_resample(weights, self.rng)]
        scale = float(np.exp(estimate[2]))
        size = (self.base_size[0] * scale, self.base_size[1] * scale)
        score = float(bhattacharyya_coefficient(
            histograms(frame, estimate[None], self.base_size, self.grid)[0], self.reference))
        return TrackResult(center_to_box(estimate[:2], size), score,
                           {"weights": weights, "particles": particles})
