"""Correlation-filter maths shared by the MOSSE, KCF/DCF, DSST and CSR-DCF trackers.

- :func:`cosine_window` (Hann window), :func:`gaussian_label` (the desired correlation output,
  peak at index ``[0, 0]`` and wrapped around, so that a response peak at ``[dy, dx]`` means a
  displacement of ``(dy, dx)`` cells);
- :func:`fft2` / :func:`ifft2` over the two spatial axes of ``[H, W]`` or ``[H, W, C]`` arrays
  (real-input FFTs: only ``W // 2 + 1`` columns are kept);
- :func:`peak_displacement`: the response maximum as a wrapped, sub-pixel displacement (a
  parabola through the peak and its two neighbours along each axis);
- :func:`peak_to_sidelobe_ratio` (Bolme et al., CVPR 2010: the sidelobe is everything outside
  an 11×11 window around the peak);
- :func:`extract_patch`: a window of the frame around a (sub-pixel) point, resampled to a
  fixed size, the frame's border replicated outside it; :func:`window_size` and :func:`template_geometry`
  size the window and the fixed template.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import scipy.fft

PSR_EXCLUDE = 11   # side of the window around the peak left out of the sidelobe (MOSSE)


def cosine_window(shape: tuple[int, int]) -> np.ndarray:
    """Hann window ``float32 [h, w]`` (outer product of two 1-D Hann windows)."""
    rows, cols = shape
    return np.outer(np.hanning(rows), np.hanning(cols)).astype(np.float32)


def gaussian_label(shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian ``exp(-(dy² + dx²) / (2 sigma²))`` over wrapped offsets, peak 1 at ``[0, 0]``:
    ``float32 [h, w]``."""
    rows, cols = shape
    dy = np.fft.ifftshift(np.arange(rows) - rows // 2)
    dx = np.fft.ifftshift(np.arange(cols) - cols // 2)
    label = np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / (sigma * sigma))
    return label.astype(np.float32)


def fft2(x: np.ndarray) -> np.ndarray:
    """Real-input 2-D FFT over axes 0 and 1: ``[H, W(, C)]`` -> ``[H, W//2+1(, C)]``."""
    return scipy.fft.rfft2(x, axes=(0, 1))


def ifft2(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`fft2` for a spatial ``shape`` ``(H, W)``: a real array."""
    return scipy.fft.irfft2(x, s=shape, axes=(0, 1))


def parabola_offset(left: float, centre: float, right: float) -> float:
    """Sub-sample position of a peak, in ``[-0.5, 0.5]``, from three equally spaced samples."""
    curvature = left - 2 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def peak_displacement(response: np.ndarray) -> tuple[float, float, float]:
    """``(dy, dx, peak)``: the position of the response maximum as a wrapped displacement
    (``-H/2 < dy <= H/2``) refined to sub-pixel accuracy, and the maximum itself."""
    rows, cols = response.shape
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    peak = float(response[row, col])
    dy = row + parabola_offset(response[row - 1, col], peak, response[(row + 1) % rows, col])
    dx = col + parabola_offset(response[row, col - 1], peak, response[row, (col + 1) % cols])
    if dy > rows / 2:
        dy -= rows
    if dx > cols / 2:
        dx -= cols
    return float(dy), float(dx), peak


def peak_to_sidelobe_ratio(response: np.ndarray, exclude: int = PSR_EXCLUDE) -> float:
    """``(peak - mean(sidelobe)) / std(sidelobe)``; the sidelobe is the response outside an
    ``exclude × exclude`` window around the peak (wrapped around the borders)."""
    rows, cols = response.shape
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    half = exclude // 2
    mask = np.ones(response.shape, bool)
    mask[np.ix_((np.arange(-half, half + 1) + row) % rows,
                (np.arange(-half, half + 1) + col) % cols)] = False
    sidelobe = response[mask]
    if sidelobe.size < 2:
        raise ValueError(f"response {response.shape} is too small for a {exclude}x{exclude} "
                         "peak window")
    return float((response[row, col] - sidelobe.mean()) / (sidelobe.std() + 1e-12))


def replicated_crop(frame: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Pixels ``[y0, y0 + h) × [x0, x0 + w)`` of ``frame``, the border replicated outside."""
    height, width = frame.shape[:2]
    left, top = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    right, bottom = max(min(x0 + w, width), left + 1), max(min(y0 + h, height), top + 1)
    crop = frame[top:bottom, left:right]
    pads = (top - y0, y0 + h - bottom, left - x0, x0 + w - right)
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *(max(0, p) for p in pads), cv2.BORDER_REPLICATE)
        crop = crop[max(0, -pads[0]):, max(0, -pads[2]):][:h, :w]
    return crop


def extract_patch(frame: np.ndarray, center: tuple[float, float], size: tuple[float, float],
                  out_size: tuple[int, int]) -> np.ndarray:
    """The ``size = (w, h)`` window of ``frame`` centred on ``center = (x, y)`` (sub-pixel
    exact), resampled to ``out_size = (w, h)`` bilinearly; a window shrunk more than twice is
    first area-averaged by halving (a pyramid, so the remaining bilinear step shrinks by less
    than 2: no aliasing, and cost far below a general area resize). Outside the frame the
    border pixels are replicated."""
    out_w, out_h = int(out_size[0]), int(out_size[1])
    scale_x, scale_y = size[0] / out_w, size[1] / out_h
    left, top = center[0] - size[0] / 2, center[1] - size[1] / 2     # continuous coordinates
    source, x0, y0, ratio = frame, 0, 0, 1
    levels = int(math.floor(math.log2(min(scale_x, scale_y)))) if min(scale_x, scale_y) > 2 \
        else 0
    if levels:
        ratio = 2 ** levels
        x0, y0 = math.floor(left) - ratio, math.floor(top) - ratio
        crop_w = math.ceil((size[0] + 2 * ratio + 1) / ratio) * ratio
        crop_h = math.ceil((size[1] + 2 * ratio + 1) / ratio) * ratio
        source = replicated_crop(frame, x0, y0, crop_w, crop_h)
        for _ in range(levels):
            source = cv2.resize(source, (source.shape[1] // 2, source.shape[0] // 2),
                                interpolation=cv2.INTER_AREA)
    matrix = np.array([[scale_x / ratio, 0, (left - x0 + 0.5 * scale_x) / ratio - 0.5],
                       [0, scale_y / ratio, (top - y0 + 0.5 * scale_y) / ratio - 0.5]])
    return cv2.warpAffine(source, matrix, (out_w, out_h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def mean_filled_patch(frame: np.ndarray, center: tuple[float, float], side: float, out: int,
                      fill: tuple[float, ...]) -> np.ndarray:
    """The square window of ``side`` pixels centred on ``center``, resampled to ``out`` pixels;
    the parts outside the frame are ``fill``."""
    height, width = frame.shape[:2]
    half = side / 2 + 2
    pad = int(np.ceil(max(0.0, half - center[0], half - center[1], center[0] + half - width,
                          center[1] + half - height)))
    if pad:
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        center = (center[0] + pad, center[1] + pad)
    return extract_patch(frame, center, (side, side), (out, out))


def window_size(target_size: tuple[float, float], padding: float) -> tuple[float, float]:
    """The search window around a target: ``(w, h) * (1 + padding)``."""
    return target_size[0] * (1 + padding), target_size[1] * (1 + padding)


def template_geometry(window: tuple[float, float], template_area: float, cell_size: int
                      ) -> tuple[tuple[int, int], float]:
    """A fixed template for a search ``window`` ``(w, h)``: its size ``(w, h)`` in pixels,
    resampled so that its area is about ``template_area`` (same aspect ratio, whole cells),
    and the factor from frame pixels to template pixels."""
    factor = math.sqrt(template_area / (window[0] * window[1]))
    cols = max(2, round(window[0] * factor / cell_size))
    rows = max(2, round(window[1] * factor / cell_size))
    return (cols * cell_size, rows * cell_size), factor


def box_to_center(box) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(x, y, w, h)`` -> ``((cx, cy), (w, h))``."""
    x, y, w, h = box
    return (x + w / 2, y + h / 2), (w, h)


def center_to_box(center, size) -> tuple[float, float, float, float]:
    """``((cx, cy), (w, h))`` -> ``(x, y, w, h)``."""
    return (float(center[0] - size[0] / 2), float(center[1] - size[1] / 2),
            float(size[0]), float(size[1]))


def clamp_center(center, frame: np.ndarray) -> tuple[float, float]:
    """``center`` moved inside the frame."""
    height, width = frame.shape[:2]
    return (min(max(float(center[0]), 0.0), width - 1.0),
            min(max(float(center[1]), 0.0), height - 1.0))


class ClosedFormFilter:
    """The MOSSE / DSST multi-channel correlation filter ``H_l = G conj(F_l) / (Σ_k |F_k|² +
    λ)``, numerator and denominator kept as running averages with learning rate ``rate``.
    Spectra are :func:`fft2` outputs ``[H, W//2+1, C]``."""

    def __init__(self, label: np.ndarray, lam: float, rate: float):
        self.shape = label.shape
        self.label_f = fft2(label)
        self.lam, self.rate = lam, rate
        self.numerator = self.denominator = None

    def terms(self, sample_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        numerator = self.label_f[:, :, None] * np.conj(sample_f)
        denominator = np.einsum("ijc,ijc->ij", sample_f.real, sample_f.real) + \
            np.einsum("ijc,ijc->ij", sample_f.imag, sample_f.imag)
        return numerator, denominator

    def fit(self, samples_f: list[np.ndarray]) -> None:
        """Learn from scratch from a list of samples (summed, as MOSSE's initialisation)."""
        terms = [self.terms(sample) for sample in samples_f]
        self.numerator = sum(t[0] for t in terms)
        self.denominator = sum(t[1] for t in terms)

    def update(self, sample_f: np.ndarray) -> None:
        numerator, denominator = self.terms(sample_f)
        self.numerator = (1 - self.rate) * self.numerator + self.rate * numerator
        self.denominator = (1 - self.rate) * self.denominator + self.rate * denominator

    def respond(self, sample_f: np.ndarray) -> np.ndarray:
        """The correlation response ``[H, W]`` of the filter to a sample spectrum."""
        spectrum = np.einsum("ijc,ijc->ij", self.numerator, sample_f)
        return ifft2(spectrum / (self.denominator + self.lam), self.shape)
