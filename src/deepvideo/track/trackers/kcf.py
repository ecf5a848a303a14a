"""KCF and DCF: kernelized correlation filters on HOG features.

J. F. Henriques, R. Caseiro, P. Martins, J. Batista, "High-Speed Tracking with Kernelized
Correlation Filters", TPAMI 2015. Ridge regression over all cyclic shifts of a padded window,
solved in the Fourier domain: ``α̂ = ŷ / (k̂ˣˣ + λ)``, detection ``f̂(z) = k̂ˣᶻ ⊙ α̂``. ``kcf``
uses the Gaussian kernel ``k(x, z) = exp(-(‖x‖² + ‖z‖² - 2 F⁻¹(Σ_c x̂_c* ⊙ ẑ_c)) / (σ² N))``
(σ = 0.5 for HOG), ``dcf`` the linear kernel ``F⁻¹(Σ_c x̂_c* ⊙ ẑ_c) / N``. The paper's HOG
parameters: padding 1.5 (window 2.5 × the target), λ = 1e-4, output sigma factor 0.1 (label
σ = sqrt(w·h) · 0.1 / cell), interpolation factor 0.02, 31-channel fHOG with cell size 4, a
cosine window over the cells. No scale estimation (as in the paper).

Choice not in the paper: the window is resampled to a fixed template of about
``template_area`` pixels (the paper halves the image only for large targets), so speed does
not depend on the target size.
"""

from __future__ import annotations

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
    window_size,
)
from deepvideo.track.features import hog
from deepvideo.track.registry import register_tracker


def kernel_correlation(xf: np.ndarray, zf: np.ndarray, shape: tuple[int, int],
                       kernel: str, sigma: float) -> np.ndarray:
    """Spectrum of the kernel correlation ``k^{xz}`` of two feature spectra ``[H, W', C]``
    (:func:`deepvideo.track.dcf.fft2` of ``[H, W, C]`` features)."""
    count = shape[0] * shape[1] * xf.shape[2]
    cross = np.einsum("ijc,ijc->ij", np.conj(xf), zf)
    if kernel == "linear":
        return cross / count
    # Parseval for rfft2: the full spectrum's energy counts the mirrored columns twice
    def energy(spectrum):
        power = spectrum.real ** 2 + spectrum.imag ** 2
        columns = np.full(power.shape[1], 2.0)
        columns[0] = 1.0
        if shape[1] % 2 == 0:
            columns[-1] = 1.0
        return float(np.einsum("ijc,j->", power, columns)) / (shape[0] * shape[1])
    distance = energy(xf) + energy(zf) - 2 * ifft2(cross, shape)
    kernel_map = np.exp(-np.maximum(distance, 0) / (sigma * sigma * count))
    return fft2(kernel_map)


class KernelizedCorrelationFilter:
    """The KCF tracker; ``kernel`` is ``"gaussian"`` (KCF) or ``"linear"`` (DCF)."""

    def __init__(self, kernel: str = "gaussian", padding: float = 1.5, lam: float = 1e-4,
                 output_sigma_factor: float = 0.1, interp_factor: float = 0.02,
                 kernel_sigma: float = 0.5, cell_size: int = 4,
                 template_area: float = 128 * 128):
        if kernel not in ("gaussian", "linear"):
            raise ValueError(f"kernel: expected 'gaussian' or 'linear', got {kernel!r}")
        self.kernel, self.padding, self.lam = kernel, padding, lam
        self.output_sigma_factor, self.interp_factor = output_sigma_factor, interp_factor
        self.kernel_sigma, self.cell_size, self.template_area = kernel_sigma, cell_size, \
            template_area

    def features(self, frame: np.ndarray) -> np.ndarray:
        patch = extract_patch(frame, self.center, self.window_size, self.template_size)
        return fft2(hog(patch, self.cell_size) * self.window[:, :, None])

    def correlate(self, xf: np.ndarray, zf: np.ndarray) -> np.ndarray:
        return kernel_correlation(xf, zf, self.shape, self.kernel, self.kernel_sigma)

    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, "initial box"))
        self.window_size = window_size(self.size, self.padding)
        self.template_size, self.factor = template_geometry(self.window_size,
                                                            self.template_area, self.cell_size)
        self.shape = (self.template_size[1] // self.cell_size,
                      self.template_size[0] // self.cell_size)
        self.window = cosine_window(self.shape)
        target_area = self.size[0] * self.size[1] * self.factor ** 2
        sigma = np.sqrt(target_area) * self.output_sigma_factor / self.cell_size
        self.label_f = fft2(gaussian_label(self.shape, sigma))
        self.model_xf = self.features(frame)
        self.model_alphaf = self.label_f / (self.correlate(self.model_xf, self.model_xf)
                                            + self.lam)

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        zf = self.features(frame)
        response = ifft2(self.model_alphaf * self.correlate(self.model_xf, zf), self.shape)
        dy, dx, peak = peak_displacement(response)
        step = self.cell_size / self.factor
        self.center = clamp_center((self.center[0] + dx * step, self.center[1] + dy * step),
                                   frame)
        xf = self.features(frame)
        alphaf = self.label_f / (self.correlate(xf, xf) + self.lam)
        rate = self.interp_factor
        self.model_alphaf = (1 - rate) * self.model_alphaf + rate * alphaf
        self.model_xf = (1 - rate) * self.model_xf + rate * xf
        return TrackResult(center_to_box(self.center, self.size), peak, {"response": response})


@register_tracker("kcf", paper="Henriques et al., TPAMI 2015")
def kcf(**overrides) -> KernelizedCorrelationFilter:
    """KCF: Gaussian-kernel correlation filter on HOG (score = response peak)."""
    return KernelizedCorrelationFilter(kernel="gaussian", **overrides)


@register_tracker("dcf", paper="Henriques et al., TPAMI 2015")
def dcf(**overrides) -> KernelizedCorrelationFilter:
    """DCF: linear-kernel correlation filter on HOG (score = response peak)."""
    return KernelizedCorrelationFilter(kernel="linear", **overrides)
