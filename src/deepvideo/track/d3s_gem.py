"""D3S's geometrically constrained model (GEM): a discriminative correlation filter on deep
features whose response peak gives the target position (the position channel P of
:mod:`deepvideo.track.d3s`).

In the paper (Lukežič et al., CVPR 2020, Sec. 3.2) the GEM is ATOM's online classifier
(Danelljan et al., CVPR 2019: ResNet-50 ``layer3`` features, a 64-channel projection, a 4×4
filter optimised by Gauss-Newton and conjugate gradient): :class:`ATOMGem` wraps
:class:`deepvideo.track.online_classifier.ATOMClassifier` for it (the tracker's ``gem="atom"``).
:class:`DeepDCF` (``gem="dcf"``, the lighter default) implements the same
:class:`GeometricModel` protocol with a closed-form Fourier ridge regression
(:class:`deepvideo.track.dcf.ClosedFormFilter`, the MOSSE/DSST multi-channel filter) on the
backbone's ``layer3`` features of the D3S crop. Anything with ``initialize`` / ``score`` /
``update`` can replace either.

:class:`DeepDCF` follows the authors' parameters where they carry over
(``pytracking/parameter/segm/default_params.py`` of github.com/alanlukezic/d3s): a Gaussian
label of standard deviation ``1/4`` of the target size in feature cells (``output_sigma_factor``),
learning rate ``0.0075``, regularisation ``0.1`` (``filter_reg``); the features are multiplied by
a cosine window (a Fourier DCF needs it; ATOM windows its output instead) and scaled to unit mean
energy per cell. Boxes are ``(x, y, w, h)`` in feature-grid units: crop pixel ``u`` is grid
coordinate ``u / stride``, cell ``j`` sits at ``j + 0.5``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from deepvideo.track.dcf import ClosedFormFilter, cosine_window, fft2, parabola_offset
from deepvideo.track.online_classifier import ATOMClassifier, instance_l2_norm

OUTPUT_SIGMA_FACTOR = 1 / 4
LEARNING_RATE = 0.0075
FILTER_REG = 0.1


@runtime_checkable
class GeometricModel(Protocol):
    """The GEM protocol: a target model on feature maps ``[C, H, W]`` of search crops."""

    def initialize(self, features: torch.Tensor, box) -> None: ...

    def score(self, features: torch.Tensor) -> np.ndarray: ...   # [H, W] response

    def update(self, features: torch.Tensor, box) -> None: ...


def centred_label(shape: tuple[int, int], center: tuple[float, float], sigma: float) -> np.ndarray:
    """Gaussian ``[H, W]`` peaking at grid point ``center = (x, y)`` (cell ``j`` at ``j + 0.5``),
    over offsets wrapped around the grid (a circular correlation's label)."""
    rows, cols = shape
    dy = (np.arange(rows) + 0.5 - center[1] + rows / 2) % rows - rows / 2
    dx = (np.arange(cols) + 0.5 - center[0] + cols / 2) % cols - cols / 2
    return np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / (sigma * sigma)).astype(np.float32)


def response_peak(response: np.ndarray) -> tuple[float, float, float]:
    """``(x, y, value)``: the response maximum in grid coordinates (cell ``j`` at ``j + 0.5``),
    refined by a parabola through its neighbours along each axis (inside the grid)."""
    rows, cols = response.shape
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    peak = float(response[row, col])
    dy = parabola_offset(response[row - 1, col], peak, response[row + 1, col]) if 0 < row < rows - 1 else 0.0
    dx = parabola_offset(response[row, col - 1], peak, response[row, col + 1]) if 0 < col < cols - 1 else 0.0
    return col + 0.5 + dx, row + 0.5 + dy, peak


class DeepDCF:
    """Closed-form multi-channel DCF on deep features (the stand-in GEM; module docstring)."""

    def __init__(self, sigma_factor: float = OUTPUT_SIGMA_FACTOR, rate: float = LEARNING_RATE,
                 lam: float = FILTER_REG):
        self.sigma_factor, self.rate, self.lam = sigma_factor, rate, lam
        self.filter: ClosedFormFilter | None = None
        self.shape: tuple[int, int] | None = None

    def spectrum(self, features: torch.Tensor) -> np.ndarray:
        x = features.detach().float().cpu().numpy().transpose(1, 2, 0)          # [H, W, C]
        if self.shape is not None and x.shape[:2] != self.shape:
            raise ValueError(f"GEM features are {x.shape[:2]}, the filter was made for {self.shape}")
        x = x / np.sqrt(np.mean(np.sum(x * x, axis=2)) + 1e-12)
        return fft2(x * cosine_window(x.shape[:2])[..., None])

    def label(self, box) -> np.ndarray:
        x, y, w, h = (float(v) for v in box)
        sigma = self.sigma_factor * np.sqrt(max(w * h, 1e-6))
        return centred_label(self.shape, (x + w / 2, y + h / 2), max(sigma, 0.25))

    def initialize(self, features: torch.Tensor, box) -> None:
        self.shape = tuple(features.shape[-2:])
        spectrum = self.spectrum(features)
        self.filter = ClosedFormFilter(self.label(box), self.lam, self.rate)
        self.filter.fit([spectrum])

    def score(self, features: torch.Tensor) -> np.ndarray:
        if self.filter is None:
            raise RuntimeError("DeepDCF.score before initialize")
        return self.filter.respond(self.spectrum(features)).astype(np.float32)

    def update(self, features: torch.Tensor, box) -> None:
        if self.filter is None:
            raise RuntimeError("DeepDCF.update before initialize")
        spectrum = self.spectrum(features)
        self.filter.label_f = fft2(self.label(box))
        self.filter.update(spectrum)


class ATOMGem:
    """The paper's GEM: ATOM's online classifier (Gauss-Newton + conjugate gradient, sample
    memory) on the D3S crop's features, each map scaled to unit mean square
    (:func:`~deepvideo.track.online_classifier.instance_l2_norm`, as ATOM feeds its classifier).
    Same grid convention as :class:`DeepDCF`; ``kwargs`` go to the classifier."""

    def __init__(self, **kwargs):
        self.classifier = ATOMClassifier(**kwargs)

    def initialize(self, features: torch.Tensor, box) -> None:
        self.classifier.initialize(instance_l2_norm(features[None].float()), box)

    def score(self, features: torch.Tensor) -> np.ndarray:
        return self.classifier.score(instance_l2_norm(features[None].float())).numpy()

    def update(self, features: torch.Tensor, box) -> None:
        self.classifier.update(instance_l2_norm(features[None].float()), box)


GEMS = {"dcf": DeepDCF, "atom": ATOMGem}
