"""ECO-HC: Efficient Convolution Operators for Tracking (Danelljan, Bhat, Khan, Felsberg,
CVPR 2017) with hand-crafted features (HOG and colour names), in PyTorch tensors.

The C-COT (Danelljan et al., ECCV 2016) continuous formulation: each feature block is
interpolated to the continuous domain (cubic kernel, :mod:`deepvideo.track.eco.fourier`) and the
filter is learned in the Fourier domain with a spatial regularisation window. ECO adds

- the factorized convolution operator: a projection ``P`` (``D -> C`` channels per block)
  learned with the filter on the first frame by Gauss-Newton and conjugate gradient, then fixed
  (:mod:`deepvideo.track.eco.optimize`);
- the compact generative sample space, a Gaussian mixture of ``L`` components updated every
  frame (:mod:`deepvideo.track.eco.sample_space`);
- the sparse update: the filter is optimised every ``N_S`` frames by a few warm-started CG
  iterations.

Detection evaluates the continuous score on a grid, then maximises it by Newton's method
(sub-grid translation); the scale comes from ECO-HC's separate scale filter
(:mod:`deepvideo.track.scale_filter`), or, with ``use_scale_filter=False``, from running the
translation filter at 5 scales. ``features`` takes other feature extractors (e.g. deep CNN
layers, as :class:`EcoFeature`) for the same code; the parameters are
:class:`deepvideo.track.eco.params.EcoParams` (keyword overrides accepted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from deepvideo.track import features
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import extract_patch
from deepvideo.track.eco import fourier
from deepvideo.track.eco.optimize import (
    FilterSystem,
    JointSystem,
    Regularization,
    conjugate_gradient,
    pca_projection,
    project,
)
from deepvideo.track.eco.params import EcoParams
from deepvideo.track.eco.sample_space import SampleSpace
from deepvideo.track.registry import register_tracker
from deepvideo.track.scale_filter import ScaleFilter

REAL, COMPLEX = torch.float32, torch.complex64   # the precision of features and filters


@dataclass(frozen=True)
class EcoFeature:
    """One feature block: ``extract(patches)`` maps RGB ``uint8 [B, S, S, 3]`` patches to an
    array ``[B, D, S // cell_size, S // cell_size]``; ``compressed_dim`` is ECO's ``C``."""

    name: str
    extract: Callable[[np.ndarray], np.ndarray | torch.Tensor]
    cell_size: int
    compressed_dim: int


def hand_crafted_features(params: EcoParams) -> list[EcoFeature]:
    """ECO-HC's features: fHOG (cell ``hog_cell_size``, 31 -> ``hog_compressed_dim``) and colour
    names (cell ``cn_cell_size``, 11 -> ``cn_compressed_dim``) from
    :mod:`deepvideo.track.features`."""
    def hog(patches: np.ndarray) -> np.ndarray:
        return features.hog_batch(patches, params.hog_cell_size).transpose(0, 3, 1, 2)

    def cn(patches: np.ndarray) -> np.ndarray:
        return np.stack([features.colour_names(patch, params.cn_cell_size)
                         for patch in patches]).transpose(0, 3, 1, 2)

    return [EcoFeature("hog", hog, params.hog_cell_size, params.hog_compressed_dim),
            EcoFeature("cn", cn, params.cn_cell_size, params.cn_compressed_dim)]


@register_tracker("eco_hc", paper="Danelljan et al., CVPR 2017")
class ECO:
    """ECO tracker (hand-crafted features by default)."""

    def __init__(self, features: list[EcoFeature] | None = None, params: EcoParams | None = None,
                 **overrides):
        self.params = replace(params or EcoParams(), **overrides)
        if self.params.interp_windowing:
            raise ValueError("eco: interp_windowing=True (windowed kernel coefficients) is not "
                             "implemented; ECO-HC uses False")
        self.features = features if features is not None else hand_crafted_features(self.params)
        if not self.features:
            raise ValueError("eco: at least one feature is needed")

    # ---- geometry and constants (first frame) -------------------------------------------
    def _setup(self, frame: np.ndarray, box: Box) -> None:
        p = self.params
        x, y, w, h = box
        self.pos = np.array([y + (h - 1) / 2, x + (w - 1) / 2])
        self.target_sz = np.array([h, w], dtype=np.float64)
        area = float(np.prod(self.target_sz * p.search_area_scale))
        scale = 1.0
        if area > p.max_image_sample_size:
            scale = math.sqrt(area / p.max_image_sample_size)
        elif area < p.min_image_sample_size:
            scale = math.sqrt(area / p.min_image_sample_size)
        self.scale = scale
        self.base_target_sz = self.target_sz / scale
        unit = math.lcm(*(f.cell_size for f in self.features))
        side = math.sqrt(float(np.prod(self.base_target_sz * p.search_area_scale)))
        self.sample_sz = max(unit, unit * round(side / unit))
        self.grid_sizes = [self.sample_sz // f.cell_size for f in self.features]
        self.fourier_shapes = [(2 * (n // 2) + 1, n // 2 + 1) for n in self.grid_sizes]
        self.output_shape = max(self.fourier_shapes)
        self.output_sz = self.output_shape[0]
        self._setup_constants(frame.shape[:2])

    def _setup_constants(self, frame_hw: tuple[int, int]) -> None:
        p = self.params
        self.windows = [(fourier.hann_window(n)[:, None] * fourier.hann_window(n)[None, :])
                        .to(REAL) for n in self.grid_sizes]
        self.interp = []
        for n in self.grid_sizes:
            c = fourier.interpolation_coefficients(n, p.interp_bicubic_a, p.interp_centering)
            self.interp.append((c[:, None] * c[n // 2:][None, :]).to(COMPLEX))
        sigma = math.sqrt(float(np.prod(self.base_target_sz))) * p.output_sigma_factor
        self.label = fourier.gaussian_label(self.output_shape, (sigma, sigma),
                                            self.sample_sz).to(COMPLEX)
        period = self.sample_sz + 1 - self.sample_sz % 2
        reg = fourier.regularization_filter(period, tuple(self.base_target_sz), p.reg_window_min,
                                            p.reg_window_edge, p.reg_window_power,
                                            p.reg_sparsity_threshold)
        self.reg = Regularization(reg)
        if p.use_scale_filter:
            self.scale_factors = np.ones(1)
        else:
            half = (p.number_of_scales - 1) / 2
            self.scale_factors = p.scale_step ** (np.arange(p.number_of_scales) - half)
        self.min_scale = 5.0 / float(self.base_target_sz.min())
        self.max_scale = float(min(np.array(frame_hw) / self.base_target_sz))

    # ---- features -------------------------------------------------------------------------
    def _feature_maps(self, frame: np.ndarray, steps: np.ndarray) -> list[torch.Tensor]:
        """Normalised, windowed feature maps per block ``[S, D, N, N]`` of the patches at
        ``self.pos`` sampled every ``steps`` image pixels."""
        size = (self.sample_sz, self.sample_sz)
        patches = np.stack([extract_patch(frame, self._centre_xy(), (size[0] * step,) * 2, size)
                            for step in steps])
        blocks = zip(self.features, self.grid_sizes, self.windows, strict=True)
        return [self._feature_map(feature, patches, size) * window
                for feature, size, window in blocks]

    def _to_fourier(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Interpolated Fourier coefficients ``[S, D, H, W]`` of feature maps (C-COT eq. 3)."""
        return [fourier.centred_dft(x) * c for x, c in zip(maps, self.interp, strict=True)]

    @staticmethod
    def _feature_map(feature: EcoFeature, patches: np.ndarray, size: int) -> torch.Tensor:
        """``[B, D, size, size]``, each map scaled to unit mean square (ECO's normalisation)."""
        x = torch.as_tensor(np.asarray(feature.extract(patches)), dtype=REAL)
        if x.ndim != 4 or tuple(x.shape[2:]) != (size, size) or len(x) != len(patches):
            raise ValueError(f"eco: feature {feature.name!r} gave shape {tuple(x.shape)} for "
                             f"{len(patches)} patches of {patches.shape[1]} px, expected "
                             f"[{len(patches)}, D, {size}, {size}]")
        energy = (x ** 2).sum(dim=(1, 2, 3), keepdim=True)
        return x * torch.sqrt(x[0].numel() / (energy + 1e-12))

    # ---- first frame: projection and filter by Gauss-Newton -------------------------------
    def _learn_first_frame(self, maps: list[torch.Tensor]) -> None:
        """``P`` starts as the features' PCA (ECO's ``proj_init_method = 'pca'``); then
        ``init_gn_iter`` Gauss-Newton steps of ``init_cg_iter / init_gn_iter`` CG iterations.
        The first step, linearised at ``f = 0``, gives ``P`` no data gradient (its block of
        the normal equations would only shrink ``P``), so it learns ``f`` alone."""
        p = self.params
        self.projections = [pca_projection(x[0], feature.compressed_dim)
                            for x, feature in zip(maps, self.features, strict=True)]
        sample = [zb[0] for zb in self._to_fourier(maps)]
        cg_per_gn = max(1, p.init_cg_iter // p.init_gn_iter)
        precond = (p.precond_data_param, p.precond_reg_param)
        projected = [zp[None] for zp in self._project(sample)]
        system = FilterSystem(projected, torch.ones(1), self.label, self.reg)
        zeros = [torch.zeros_like(zp[0]) for zp in projected]
        self.filters, _ = conjugate_gradient(system.apply, system.rhs(), zeros,
                                             system.preconditioner(*precond), cg_per_gn)
        blocks = len(self.features)
        for _ in range(p.init_gn_iter - 1):
            joint = JointSystem(sample, self.projections, self.filters, self.label, self.reg,
                                p.projection_reg)
            start = self.filters + [torch.zeros_like(pb) for pb in self.projections]
            solution, _ = conjugate_gradient(joint.apply, joint.rhs(), start,
                                             joint.preconditioner(*precond), cg_per_gn)
            self.filters = solution[:blocks]
            self.projections = [pb + dp for pb, dp
                                in zip(self.projections, solution[blocks:], strict=True)]
        self.cg_state = None

    # ---- detection --------------------------------------------------------------------------
    def _project(self, sample: list[torch.Tensor]) -> list[torch.Tensor]:
        return [project(zb, pb) for zb, pb in zip(sample, self.projections, strict=True)]

    def _locate(self, projected: list[torch.Tensor]) -> tuple[int, tuple[float, float], float,
                                                                torch.Tensor]:
        """Best scale, sub-grid translation (sample pixels, y, x), score, and the score grid."""
        scores = sum(fourier.pad_to((f[None] * zp).sum(1), self.output_shape)
                     for f, zp in zip(self.filters, projected, strict=True))
        grid = fourier.sample_on_grid(scores, self.output_sz)
        flat = int(torch.argmax(grid))
        s, rest = divmod(flat, self.output_sz ** 2)
        my, mx = divmod(rest, self.output_sz)
        step = self.sample_sz / self.output_sz
        start = tuple(((m + self.output_sz // 2) % self.output_sz - self.output_sz // 2) * step
                      for m in (my, mx))
        t, value = fourier.newton_maximum(scores[s], start, self.sample_sz,
                                          self.params.newton_iterations, max_offset=step)
        response = torch.fft.fftshift(grid[s]).numpy()
        return s, t, value, response

    # ---- model update ---------------------------------------------------------------------
    def _train(self) -> None:
        p = self.params
        samples, weights = self.sample_space.active()
        system = FilterSystem(samples, weights, self.label, self.reg)
        forget = (1 - p.learning_rate) ** p.cg_forgetting_rate
        self.filters, self.cg_state = conjugate_gradient(
            system.apply, system.rhs(), self.filters,
            system.preconditioner(p.precond_data_param, p.precond_reg_param), p.cg_iter,
            self.cg_state, forget)

    def _update(self, sample: list[torch.Tensor]) -> None:
        """Sample space every frame; filter every ``N_S`` frames (every frame before
        ``skip_after_frame``)."""
        self.sample_space.update(sample)
        if self.frame_index < self.params.skip_after_frame or \
                self.frames_since_train >= self.params.train_gap:
            self._train()
            self.frames_since_train = 0
        else:
            self.frames_since_train += 1

    def _start_scale_filter(self, frame: np.ndarray, box: Box) -> None:
        """ECO-HC's separate scale filter (see :mod:`deepvideo.track.eco.params`), or none."""
        p = self.params
        self.scale_filter = None
        if not p.use_scale_filter:
            return
        n = p.number_of_scales_filter
        self.scale_filter = ScaleFilter(
            n_scales=n, scale_step=p.scale_step_filter,
            scale_sigma_factor=p.scale_label_sigma / math.sqrt(n),
            learning_rate=p.scale_learning_rate, lam=p.scale_lambda,
            model_max_area=p.scale_model_max_area)
        self.scale_filter.initialize(frame, self._centre_xy(), (box[2], box[3]))
        self.first_scale = self.scale

    def _centre_xy(self) -> tuple[float, float]:
        """The target centre as (x, y) with pixel ``i`` covering ``[i, i + 1)``."""
        return float(self.pos[1]) + 0.5, float(self.pos[0]) + 0.5

    def _estimate_scale(self, frame: np.ndarray) -> None:
        if self.scale_filter is not None:
            self.scale = self.first_scale * self.scale_filter.estimate(frame, self._centre_xy())
            self.scale_filter.update(frame, self._centre_xy())

    # ---- the Tracker interface --------------------------------------------------------------
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        box = as_box(box)
        self._setup(frame, box)
        self._start_scale_filter(frame, box)
        maps = self._feature_maps(frame, np.array([self.scale]))
        self._learn_first_frame(maps)
        self.sample_space = SampleSpace(self.params.num_samples, self.params.learning_rate)
        self.sample_space.update([zp[0] for zp in self._project(self._to_fourier(maps))])
        self.frame_index = 0
        self.frames_since_train = 0

    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        if not hasattr(self, "filters"):
            raise RuntimeError("eco: track() called before initialize()")
        self.frame_index += 1
        steps = self.scale * self.scale_factors
        projected = self._project(self._to_fourier(self._feature_maps(frame, steps)))
        s, t, value, response = self._locate(projected)
        self.pos = self.pos + np.array(t) * steps[s]
        self.scale = float(np.clip(steps[s], self.min_scale, self.max_scale))
        sample = [fourier.shift_sample(zp[s], t, self.sample_sz) for zp in projected]
        self._update(sample)
        self._estimate_scale(frame)
        h, w = self.base_target_sz * self.scale
        box = (self.pos[1] - (w - 1) / 2, self.pos[0] - (h - 1) / 2, w, h)
        return TrackResult(tuple(float(v) for v in box), float(value),
                           {"response": response, "scale": self.scale})
