"""SiamFC tracker: an exemplar searched densely in a larger window at three (or five) scales.

L. Bertinetto, J. Valmadre, J. F. Henriques, A. Vedaldi, P. H. S. Torr, "Fully-Convolutional
Siamese Networks for Object Tracking", ECCV Workshops 2016 (Sec. 2.4, 3), with the parameter
values of the authors' released trackers (github.com/bertinetto/siamese-fc):

- SiamFC-3s (``tracking/tracker.m``): scaleStep 1.0375, numScale 3, scalePenalty 0.9745,
  scaleLR 0.59, wInfluence 0.176; SiamFC-5s (``num_scales=5``, ``tracking/params-5s.txt``):
  scaleStep 1.0255, scalePenalty 0.962, scaleLR 0.34, wInfluence 0.168; both responseUp 16,
  contextAmount 0.5, exemplar 127, instance 255, stride 8;
- exemplar: the box with a context margin ``p = (w + h) / 4`` on each side (context amount 0.5:
  ``w + 0.5 (w + h)``), a square of side ``s_z = sqrt((w + 2p)(h + 2p))``
  (:func:`deepvideo.track.pairs.context_side`, as the training pairs) resampled to 127 pixels;
- search: side ``s_x = s_z * 255 / 127`` at scales ``step^{-k..k}``, resampled to 255;
- the 17×17 responses are upsampled ×16 (bicubic, 272×272), the off-unit scales are multiplied
  by the scale penalty, the best scale is the one with the highest peak; its response is
  normalised to sum 1 and blended with a cosine window (the window influence);
- displacement (frame pixels) = (peak − centre) × stride 8 / 16 × (scaled s_x) / 255; the
  size follows the chosen scale with damping (``s ← (1 − lr) s + lr·s·scale``).

Template update (``update=``), after each frame, from the exemplar ``T_i`` cropped at the new
centre with side ``s_z`` times the chosen scale (before damping, as CFNet's ``tracker.m``):

- ``"none"``: the paper's fixed template ``T_0``;
- ``"linear"``: CFNet's running average ``T̃_i = (1 − η) T̃_{i−1} + η T_i`` (Valmadre et al.,
  "End-to-end representation learning for Correlation Filter based tracking", CVPR 2017),
  ``η = 0.0102``, the rate of their SiamFC baseline (bertinetto/cfnet,
  ``src/tracking/run_baseline5_evaluation.m``: ``zLR``); ``update_rate=`` changes it;
- ``"updatenet"``: ``T̃_i = ψ(T_0, T̃_{i−1}, T_i) + T_0`` (:mod:`deepvideo.track.updatenet`,
  Zhang et al., ICCV 2019), weights from ``updatenet=`` or ``DEEPVIDEO_UPDATENET_WEIGHTS``.

``optimize=True`` runs an inference copy of the embedding (:func:`optimize_siamfc`): batch norm
folded into the convolutions, channels-last tensors, bfloat16 only on CPUs with native support.

``score`` is the highest raw response of the chosen scale. Weights: ``weights=`` a
``.safetensors`` file (or a training checkpoint folder holding ``model.safetensors``), else the
environment variable ``DEEPVIDEO_SIAMFC_WEIGHTS``; channel counts are read from the weights.
Outside the frame the crops are filled with the frame's mean colour (as in the authors' code).
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.models.convert.files import read_safetensors
from deepvideo.models.inference import bf16_supported, fold_batchnorm
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import box_to_center, center_to_box, clamp_center, cosine_window, mean_filled_patch
from deepvideo.track.pairs import context_side
from deepvideo.track.registry import register_tracker, weights_available, weights_file
from deepvideo.track.siamfc import EXEMPLAR_SIZE, SEARCH_SIZE, STRIDE, SiamFC
from deepvideo.track.updatenet import LINEAR_RATE, UpdateNet, linear_update

WEIGHTS_ENV = "DEEPVIDEO_SIAMFC_WEIGHTS"
UPDATENET_ENV = "DEEPVIDEO_UPDATENET_WEIGHTS"
CONTEXT = 0.5
SCALE_STEP = 1.0375
NUM_SCALES = 3
SCALE_PENALTY = 0.9745
SCALE_DAMPING = 0.59
RESPONSE_UP = 16
WINDOW_INFLUENCE = 0.176
UPDATES = ("none", "linear", "updatenet")


@dataclass(frozen=True)
class ScaleParams:
    """One scale search of the authors' trackers: scale step, penalty, damping (scaleLR) and
    cosine-window influence."""

    step: float
    penalty: float
    damping: float
    window: float


SCALE_PARAMS = {
    3: ScaleParams(SCALE_STEP, SCALE_PENALTY, SCALE_DAMPING, WINDOW_INFLUENCE),  # tracker.m
    5: ScaleParams(1.0255, 0.962, 0.34, 0.168),                                 # params-5s.txt
}


def scale_params(num_scales: int) -> ScaleParams:
    if num_scales not in SCALE_PARAMS:
        raise ValueError(f"siamfc: num_scales must be one of {sorted(SCALE_PARAMS)} (the authors' "
                         f"SiamFC-3s and -5s), got {num_scales!r}")
    return SCALE_PARAMS[num_scales]



def load_siamfc(path: str | os.PathLike) -> SiamFC:
    """A SiamFC (eval mode) with the weights of a ``.safetensors`` file; loud on foreign keys."""
    model = SiamFC.from_state_dict(read_safetensors(path), source=str(path))
    return model.eval()


def load_updatenet(path: str | os.PathLike) -> UpdateNet:
    """An UpdateNet (eval mode) with the weights of a ``.safetensors`` file."""
    return UpdateNet.from_state_dict(read_safetensors(path), source=str(path)).eval()


def pool_before_relu(layers: torch.nn.Sequential) -> torch.nn.Sequential:
    """The same function with each ``ReLU, MaxPool`` pair run as ``MaxPool, ReLU`` (max pooling
    commutes with a non-decreasing function; the ReLU then touches 4× fewer values) and the
    ``Identity`` left by folded norms dropped."""
    layers = [m for m in layers if not isinstance(m, torch.nn.Identity)]
    out = []
    for m in layers:
        if isinstance(m, torch.nn.MaxPool2d) and out and isinstance(out[-1], torch.nn.ReLU):
            out.insert(len(out) - 1, m)
        else:
            out.append(m)
    return torch.nn.Sequential(*out)


def optimize_siamfc(model: SiamFC, bf16: bool | None = None) -> tuple[SiamFC, bool]:
    """An inference copy of ``model``: batch norm folded into the convolutions
    (:func:`deepvideo.models.inference.fold_batchnorm`), max pooling before ReLU
    (:func:`pool_before_relu`), weights channels-last, and bfloat16 weights when ``bf16``
    (None: where the CPU has native bfloat16). Returns it and whether it is bfloat16; its
    embeddings are then bfloat16, its scores fp32 (:meth:`SiamFCTracker.embed`)."""
    use_bf16 = bf16_supported() if bf16 is None else bool(bf16)
    if use_bf16 and not bf16_supported():
        raise RuntimeError("siamfc: bf16 needs a CPU with AVX512-BF16 or AMX")
    fast = copy.deepcopy(model).eval()
    fold_batchnorm(fast.features)
    fast.features = pool_before_relu(fast.features)
    fast = fast.to(memory_format=torch.channels_last)
    if use_bf16:
        fast.features.to(torch.bfloat16)
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast, use_bf16


def context_sizes(size: tuple[float, float]) -> tuple[float, float]:
    """``(s_z, s_x)`` for a target of ``size = (w, h)``: exemplar and search window sides."""
    s_z = context_side(*size, CONTEXT)  # the authors' w + 0.5 (w + h), as the training pairs
    return s_z, s_z * SEARCH_SIZE / EXEMPLAR_SIZE


@functools.lru_cache(maxsize=4)
def bicubic_matrix(size: int, up: int) -> np.ndarray:
    """``U [up, size]`` with ``U @ R @ U.T`` = ``R [size, size]`` resized to ``up × up`` by
    bicubic interpolation (torch's, ``align_corners=False``): the resize is separable, and each
    column of ``U`` is the 1-D interpolation of a unit vector."""
    basis = torch.eye(size, dtype=torch.float64).reshape(size, 1, size, 1)
    columns = F.interpolate(basis, size=(up, 1), mode="bicubic", align_corners=False)
    return columns[:, 0, :, 0].T.numpy().astype(np.float32)


@functools.lru_cache(maxsize=4)
def normalised_window(up: int) -> np.ndarray:
    window = cosine_window((up, up))
    return window / window.sum()


def upsample(responses: np.ndarray) -> np.ndarray:
    """Score maps ``[k, n, n]`` upsampled ×16 (bicubic) to ``[k, 16 n, 16 n]``."""
    u = bicubic_matrix(responses.shape[-1], RESPONSE_UP * responses.shape[-1])
    return u @ np.asarray(responses, np.float32) @ u.T


def locate(responses: np.ndarray, s_x: float, params: ScaleParams | None = None
           ) -> tuple[float, float, int, float]:
    """From raw score maps ``[k, 17, 17]`` (scales ``step^{-k//2 .. k//2}``) of a search window
    of side ``s_x``: the displacement ``(dx, dy)`` in frame pixels, the chosen scale index and
    the score (its highest raw response). ``params``: those of ``k`` scales by default."""
    params = params or scale_params(len(responses))
    maps = upsample(responses)
    up = maps.shape[-1]
    penalty = np.full(len(maps), params.penalty, np.float32)
    penalty[len(maps) // 2] = 1.0
    best = int(np.argmax(maps.reshape(len(maps), -1).max(axis=1) * penalty))
    score = float(responses[best].max())
    r = maps[best] - maps[best].min()
    r = r / max(float(r.sum()), 1e-12)
    r = (1 - params.window) * r + params.window * normalised_window(up)
    row, col = np.unravel_index(int(np.argmax(r)), r.shape)
    centre = (up - 1) / 2
    scale = params.step ** (best - len(maps) // 2)
    factor = STRIDE / RESPONSE_UP * s_x * scale / SEARCH_SIZE
    return (col - centre) * factor, (row - centre) * factor, best, score


def as_flag(value, name: str) -> bool:
    """A boolean tracker option given as a bool, 0/1 or "true"/"false" (``--param`` values)."""
    if isinstance(value, bool | int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    raise ValueError(f"siamfc: {name} must be true or false, got {value!r}")



@register_tracker("siamfc", paper="Bertinetto et al., ECCVW 2016", available=weights_available(WEIGHTS_ENV))
class SiamFCTracker:
    """SiamFC-3s/5s: fully-convolutional Siamese tracker (needs trained weights)."""

    def __init__(self, weights: str | os.PathLike | None = None, model: SiamFC | None = None,
                 device: str = "cpu", num_scales: int = NUM_SCALES, update: str = "none",
                 update_rate: float = LINEAR_RATE, updatenet: str | os.PathLike | UpdateNet | None = None,
                 optimize=False):
        if model is None:
            path = weights_file(weights, WEIGHTS_ENV)
            if path is None:
                raise ValueError(f"siamfc: give weights= (a .safetensors file) or set {WEIGHTS_ENV}")
            model = load_siamfc(path)
        if update not in UPDATES:
            raise ValueError(f"siamfc: update must be one of {UPDATES}, got {update!r}")
        if not 0 < float(update_rate) <= 1:
            raise ValueError(f"siamfc: update_rate must be in (0, 1], got {update_rate!r}")
        self.params = scale_params(int(num_scales))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.bf16 = False
        self.optimized = as_flag(optimize, "optimize")
        if self.optimized:
            self.model, self.bf16 = optimize_siamfc(self.model)
        self.update, self.update_rate = update, float(update_rate)
        self.updatenet = self._updatenet(updatenet) if update == "updatenet" else None
        k = int(num_scales)
        self.scales = self.params.step ** (np.arange(k) - k // 2)

    def _updatenet(self, given) -> UpdateNet:
        if isinstance(given, UpdateNet):
            net = given
        else:
            path = weights_file(given, UPDATENET_ENV)
            if path is None:
                raise ValueError(f"siamfc: update='updatenet' needs updatenet= (a .safetensors file) "
                                 f"or {UPDATENET_ENV}")
            net = load_updatenet(path)
        if net.channels != self.model.channels[-1]:
            raise ValueError(f"siamfc: the UpdateNet takes {net.channels}-channel templates, the "
                             f"SiamFC embedding gives {self.model.channels[-1]}")
        return net.to(self.device).eval()

    def embed(self, patches: list[np.ndarray]) -> torch.Tensor:
        """φ of RGB patches ``[H, W, 3]`` (fp32 out; bfloat16 and channels-last when optimized)."""
        array = np.stack(patches).astype(np.float32).transpose(0, 3, 1, 2)
        images = torch.from_numpy(array).to(self.device)
        if self.optimized:
            images = images.to(torch.bfloat16 if self.bf16 else torch.float32,
                               memory_format=torch.channels_last)
        return self.model.embed(images).float()

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, "siamfc initial box"))
        s_z, self.s_x = context_sizes(self.size)
        self.fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
        self.t0 = self.embed([mean_filled_patch(frame, self.center, s_z, EXEMPLAR_SIZE, self.fill)])
        self.z = self.t0

    def update_template(self, frame: np.ndarray, side: float) -> None:
        """Blend the exemplar cropped at the current centre (``side`` frame pixels) into ``z``."""
        current = self.embed([mean_filled_patch(frame, self.center, side, EXEMPLAR_SIZE, self.fill)])
        if self.update == "linear":
            self.z = linear_update(self.z, current, self.update_rate)
        else:
            self.z = self.updatenet(self.t0, self.z, current)

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        patches = [mean_filled_patch(frame, self.center, self.s_x * s, SEARCH_SIZE, self.fill)
                   for s in self.scales]
        scores = self.model.score(self.z, self.embed(patches))
        responses = scores[:, 0].float().cpu().numpy()
        dx, dy, best, score = locate(responses, self.s_x, self.params)
        self.center = clamp_center((self.center[0] + dx, self.center[1] + dy), frame)
        scale = float(self.scales[best])
        if self.update != "none":
            self.update_template(frame, self.s_x * scale * EXEMPLAR_SIZE / SEARCH_SIZE)
        change = (1 - self.params.damping) + self.params.damping * scale
        self.s_x *= change
        self.size = (self.size[0] * change, self.size[1] * change)
        return TrackResult(center_to_box(self.center, self.size), score,
                           {"response": responses[best], "scale": scale})
