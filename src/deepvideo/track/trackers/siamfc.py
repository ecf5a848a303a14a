"""SiamFC tracker: a fixed exemplar searched densely in a larger window at three scales.

L. Bertinetto, J. Valmadre, J. F. Henriques, A. Vedaldi, P. H. S. Torr, "Fully-Convolutional
Siamese Networks for Object Tracking", ECCV Workshops 2016 (Sec. 2.4, 3), with the parameter
values of the authors' released SiamFC-3s tracker (github.com/bertinetto/siamese-fc,
``tracking/run_tracker.m``: scaleStep 1.0375, numScale 3, scalePenalty 0.9745, scaleLR 0.59,
responseUp 16, wInfluence 0.176, contextAmount 0.5, exemplar 127, instance 255, stride 8):

- exemplar: the box with a context margin ``p = (w + h) / 4`` on each side (context amount 0.5:
  ``w + 0.5 (w + h)``), a square of side ``s_z = sqrt((w + 2p)(h + 2p))``
  (:func:`deepvideo.track.pairs.context_side`, as the training pairs) resampled to 127 pixels,
  embedded once (never updated);
- search: side ``s_x = s_z * 255 / 127`` at scales ``1.0375^{-1, 0, 1}``, resampled to 255;
- the 17×17 responses are upsampled ×16 (bicubic, 272×272), the off-unit scales are multiplied
  by the scale penalty 0.9745, the best scale is the one with the highest peak; its response is
  normalised to sum 1 and blended with a cosine window (influence 0.176);
- displacement (frame pixels) = (peak − centre) × stride 8 / 16 × (scaled s_x) / 255; the
  size follows the chosen scale with damping 0.59 (``s ← (1 − 0.59) s + 0.59 s·scale``).

``score`` is the highest raw response of the chosen scale. Weights: ``weights=`` a
``.safetensors`` file (or a training checkpoint folder holding ``model.safetensors``), else the
environment variable ``DEEPVIDEO_SIAMFC_WEIGHTS``; channel counts are read from the weights.
Outside the frame the crops are filled with the frame's mean colour (as in the authors' code).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.models.convert.files import read_safetensors
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import box_to_center, center_to_box, clamp_center, cosine_window, mean_filled_patch
from deepvideo.track.pairs import context_side
from deepvideo.track.registry import register_tracker
from deepvideo.track.siamfc import EXEMPLAR_SIZE, SEARCH_SIZE, STRIDE, SiamFC

WEIGHTS_ENV = "DEEPVIDEO_SIAMFC_WEIGHTS"
CONTEXT = 0.5
SCALE_STEP = 1.0375
NUM_SCALES = 3
SCALE_PENALTY = 0.9745
SCALE_DAMPING = 0.59
RESPONSE_UP = 16
WINDOW_INFLUENCE = 0.176


def weights_file(weights: str | os.PathLike | None) -> Path | None:
    """The weights file given (a checkpoint folder means its ``model.safetensors``) or from the
    environment; None when neither."""
    value = weights if weights is not None else os.environ.get(WEIGHTS_ENV)
    if not value:
        return None
    path = Path(value)
    return path / "model.safetensors" if path.is_dir() else path


def load_siamfc(path: str | os.PathLike) -> SiamFC:
    """A SiamFC (eval mode) with the weights of a ``.safetensors`` file; loud on foreign keys."""
    model = SiamFC.from_state_dict(read_safetensors(path), source=str(path))
    return model.eval()


def context_sizes(size: tuple[float, float]) -> tuple[float, float]:
    """``(s_z, s_x)`` for a target of ``size = (w, h)``: exemplar and search window sides."""
    s_z = context_side(*size, CONTEXT)  # the authors' w + 0.5 (w + h), as the training pairs
    return s_z, s_z * SEARCH_SIZE / EXEMPLAR_SIZE


def locate(responses: np.ndarray, s_x: float) -> tuple[float, float, int, float]:
    """From raw score maps ``[k, 17, 17]`` (scales ``1.0375^{-1, 0, 1}``) of a search window of
    side ``s_x``: the displacement ``(dx, dy)`` in frame pixels, the chosen scale index and the
    score (its highest raw response)."""
    up = RESPONSE_UP * responses.shape[-1]
    maps = F.interpolate(torch.from_numpy(np.ascontiguousarray(responses, np.float32))[:, None],
                         size=(up, up), mode="bicubic", align_corners=False)[:, 0].numpy()
    penalty = np.full(len(maps), SCALE_PENALTY, np.float32)
    penalty[len(maps) // 2] = 1.0
    best = int(np.argmax(maps.reshape(len(maps), -1).max(axis=1) * penalty))
    score = float(responses[best].max())
    r = maps[best] - maps[best].min()
    r = r / max(float(r.sum()), 1e-12)
    window = cosine_window((up, up))
    r = (1 - WINDOW_INFLUENCE) * r + WINDOW_INFLUENCE * window / window.sum()
    row, col = np.unravel_index(int(np.argmax(r)), r.shape)
    centre = (up - 1) / 2
    scale = SCALE_STEP ** (best - len(maps) // 2)
    factor = STRIDE / RESPONSE_UP * s_x * scale / SEARCH_SIZE
    return (col - centre) * factor, (row - centre) * factor, best, score


def _available() -> bool:
    path = weights_file(None)
    return path is not None and path.is_file()


@register_tracker("siamfc", paper="Bertinetto et al., ECCVW 2016", available=_available)
class SiamFCTracker:
    """SiamFC-3s: fully-convolutional Siamese tracker (needs trained weights)."""

    def __init__(self, weights: str | os.PathLike | None = None, model: SiamFC | None = None,
                 device: str = "cpu"):
        if model is None:
            path = weights_file(weights)
            if path is None:
                raise ValueError(f"siamfc: give weights= (a .safetensors file) or set {WEIGHTS_ENV}")
            model = load_siamfc(path)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.scales = SCALE_STEP ** (np.arange(NUM_SCALES) - NUM_SCALES // 2)

    def _tensor(self, patches: list[np.ndarray]) -> torch.Tensor:
        array = np.stack(patches).astype(np.float32).transpose(0, 3, 1, 2)
        return torch.from_numpy(array).to(self.device)

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, "siamfc initial box"))
        s_z, self.s_x = context_sizes(self.size)
        self.fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
        z = mean_filled_patch(frame, self.center, s_z, EXEMPLAR_SIZE, self.fill)
        self.z = self.model.embed(self._tensor([z]))

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        patches = [mean_filled_patch(frame, self.center, self.s_x * s, SEARCH_SIZE, self.fill)
                   for s in self.scales]
        scores = self.model.score(self.z, self.model.embed(self._tensor(patches)))
        responses = scores[:, 0].float().cpu().numpy()
        dx, dy, best, score = locate(responses, self.s_x)
        self.center = clamp_center((self.center[0] + dx, self.center[1] + dy), frame)
        change = (1 - SCALE_DAMPING) + SCALE_DAMPING * float(self.scales[best])
        self.s_x *= change
        self.size = (self.size[0] * change, self.size[1] * change)
        return TrackResult(center_to_box(self.center, self.size), score,
                           {"response": responses[best], "scale": float(self.scales[best])})

