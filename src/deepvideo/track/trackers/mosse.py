"""MOSSE: Minimum Output Sum of Squared Error filter.

D. S. Bolme, J. R. Beveridge, B. A. Draper, Y. M. Lui, "Visual Object Tracking using Adaptive
Correlation Filters", CVPR 2010. Grey patches are preprocessed by ``log(x + 1)``, normalised to
mean 0 and norm 1 and multiplied by a cosine window; the filter ``H* = Σ G ⊙ F* / Σ F ⊙ F*``
(a Gaussian label ``G`` of σ = 2 pixels) is learned on the first frame from the window and 8
small random affine perturbations of it, then updated with learning rate η = 0.125. The
peak-to-sidelobe ratio (PSR; sidelobe = outside 11×11 around the peak) is the score: below 7
the target is taken as occluded or lost and the filter is not updated.

Choices not in the paper: the window is the box grown by ``padding`` (1.0: twice its sides),
resampled to a fixed template of ``template_area`` pixels so speed does not depend on the
target size; the perturbations rotate by up to ±0.1 rad and scale by up to ±5 % (``seed``
makes them reproducible).
"""

from __future__ import annotations

import cv2
import numpy as np

from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import (
    ClosedFormFilter,
    box_to_center,
    center_to_box,
    clamp_center,
    cosine_window,
    extract_patch,
    fft2,
    gaussian_label,
    peak_displacement,
    peak_to_sidelobe_ratio,
    template_geometry,
    window_size,
)
from deepvideo.track.registry import register_tracker

PSR_OCCLUSION = 7.0


@register_tracker("mosse", paper="Bolme et al., CVPR 2010")
class MOSSE:
    """MOSSE correlation filter on log-grey patches; score = PSR."""

    def __init__(self, learning_rate: float = 0.125, sigma: float = 2.0,
                 n_perturbations: int = 8, psr_threshold: float = PSR_OCCLUSION,
                 padding: float = 1.0, template_area: float = 64 * 64, eps: float = 1e-5,
                 max_rotation: float = 0.1, max_scale_change: float = 0.05, seed: int = 0):
        self.learning_rate, self.sigma, self.eps = learning_rate, sigma, eps
        self.n_perturbations, self.psr_threshold = n_perturbations, psr_threshold
        self.padding, self.template_area = padding, template_area
        self.max_rotation, self.max_scale_change, self.seed = max_rotation, max_scale_change, seed

    def preprocess(self, patch: np.ndarray) -> np.ndarray:
        """log, zero mean, unit norm, cosine window: the filter's input ``[h, w, 1]``."""
        grey = np.log1p(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32))
        grey -= grey.mean()
        grey /= np.linalg.norm(grey) + 1e-6
        return (grey * self.window)[:, :, None]

    def perturb(self, patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``patch`` rotated and scaled about its centre by a small random amount."""
        h, w = patch.shape[:2]
        angle = np.degrees(rng.uniform(-self.max_rotation, self.max_rotation))
        scale = 1 + rng.uniform(-self.max_scale_change, self.max_scale_change)
        matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
        return cv2.warpAffine(patch, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, "initial box"))
        self.window_size = window_size(self.size, self.padding)
        self.template_size, self.factor = template_geometry(self.window_size,
                                                            self.template_area, 1)
        shape = (self.template_size[1], self.template_size[0])
        self.window = cosine_window(shape)
        self.filter = ClosedFormFilter(gaussian_label(shape, self.sigma), self.eps,
                                       self.learning_rate)
        patch = extract_patch(frame, self.center, self.window_size, self.template_size)
        rng = np.random.default_rng(self.seed)
        patches = [patch] + [self.perturb(patch, rng) for _ in range(self.n_perturbations)]
        self.filter.fit([fft2(self.preprocess(p)) for p in patches])

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        patch = extract_patch(frame, self.center, self.window_size, self.template_size)
        response = self.filter.respond(fft2(self.preprocess(patch)))
        dy, dx, _ = peak_displacement(response)
        psr = peak_to_sidelobe_ratio(response)
        self.center = clamp_center((self.center[0] + dx / self.factor,
                                    self.center[1] + dy / self.factor), frame)
        occluded = psr < self.psr_threshold
        if not occluded:
            patch = extract_patch(frame, self.center, self.window_size, self.template_size)
            self.filter.update(fft2(self.preprocess(patch)))
        return TrackResult(center_to_box(self.center, self.size), psr,
                           {"psr": psr, "occluded": occluded, "response": response})
