"""DSST: a translation correlation filter plus a separate 1-D scale filter.

M. Danelljan, G. Häger, F. S. Khan, M. Felsberg, "Accurate Scale Estimation for Robust Visual
Tracking", BMVC 2014. Translation: the multi-channel closed-form filter
``H_l = Ḡ F_l / (Σ_k F̄_k F_k + λ)`` (numerator and denominator updated with learning rate
η = 0.025, λ = 0.01) on a window twice the target size (padding 1.0) with a Gaussian label of
σ = sqrt(w·h) / 16 (output sigma factor 1/16); scale: :class:`~deepvideo.track.scale_filter.
ScaleFilter` (33 scales, step 1.02, scale sigma factor 1/4, η = 0.025, λ = 0.01), run at the
new position after the translation step, as in the paper.

Choices not in the paper: the translation features are fHOG with cell size 4 plus the
cell-averaged grey channel (the paper uses HOG and grey at every pixel; cell-4 features are the
fast variant of the same authors' fDSST), and the window is resampled to a fixed template of
about ``template_area`` pixels.
"""

from __future__ import annotations

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
    template_geometry,
    window_size,
)
from deepvideo.track.features import grey, hog
from deepvideo.track.registry import register_tracker
from deepvideo.track.scale_filter import ScaleFilter


@register_tracker("dsst", paper="Danelljan et al., BMVC 2014")
class DSST:
    """DSST: translation filter on HOG + grey, DSST scale filter (score = response peak)."""

    def __init__(self, padding: float = 1.0, output_sigma_factor: float = 1 / 16,
                 learning_rate: float = 0.025, lam: float = 1e-2, cell_size: int = 4,
                 template_area: float = 96 * 96, n_scales: int = 33, scale_step: float = 1.02,
                 scale_sigma_factor: float = 0.25, scale_learning_rate: float = 0.025):
        self.padding, self.output_sigma_factor = padding, output_sigma_factor
        self.learning_rate, self.lam, self.cell_size = learning_rate, lam, cell_size
        self.template_area = template_area
        self.scale_options = dict(n_scales=n_scales, scale_step=scale_step,
                                  scale_sigma_factor=scale_sigma_factor,
                                  learning_rate=scale_learning_rate, lam=lam,
                                  cell_size=cell_size, padding=padding)

    def features(self, frame: np.ndarray) -> np.ndarray:
        window = window_size(self.size, self.padding)
        patch = extract_patch(frame, self.center, window, self.template_size)
        stacked = np.concatenate([hog(patch, self.cell_size), grey(patch, self.cell_size)],
                                 axis=2)
        return fft2(stacked * self.window[:, :, None])

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.base_size = box_to_center(as_box(box, "initial box"))
        self.size = self.base_size
        self.template_size, self.factor = template_geometry(
            window_size(self.size, self.padding), self.template_area, self.cell_size)
        shape = (self.template_size[1] // self.cell_size, self.template_size[0] // self.cell_size)
        self.window = cosine_window(shape)
        target_area = self.size[0] * self.size[1] * self.factor ** 2
        sigma = np.sqrt(target_area) * self.output_sigma_factor / self.cell_size
        self.filter = ClosedFormFilter(gaussian_label(shape, sigma), self.lam,
                                       self.learning_rate)
        self.filter.fit([self.features(frame)])
        self.scale_filter = ScaleFilter(**self.scale_options)
        self.scale_filter.initialize(frame, self.center, self.base_size)

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        response = self.filter.respond(self.features(frame))
        dy, dx, peak = peak_displacement(response)
        scale = self.size[0] / self.base_size[0]
        step = self.cell_size / self.factor * scale
        self.center = clamp_center((self.center[0] + dx * step, self.center[1] + dy * step),
                                   frame)
        scale = self.scale_filter.estimate(frame, self.center)
        self.size = (self.base_size[0] * scale, self.base_size[1] * scale)
        self.filter.update(self.features(frame))
        self.scale_filter.update(frame, self.center)
        return TrackResult(center_to_box(self.center, self.size), peak,
                           {"response": response, "scale": scale})
