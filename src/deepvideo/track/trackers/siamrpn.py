"""SiamRPN, SiamRPN++ and SiamMask trackers: one template, region proposals in a search window.

Li et al., CVPR 2018 (SiamRPN, Sec. 4.2-4.3), Li et al., CVPR 2019 (SiamRPN++), Wang et al.,
CVPR 2019 (SiamMask, Sec. 3.4), with the tracking procedure and parameter values of the reference
implementation pysot (``pysot/tracker/siamrpn_tracker.py``, ``siammask_tracker.py``) and its
published configurations ``experiments/siamrpn_alex_dwxcorr``, ``siamrpn_r50_l234_dwxcorr`` and
``siammask_r50_l3`` (``config.yaml``):

==========  =========  ================  ====  ==============
tracker     penalty_k  window_influence  lr    search (pixels)
==========  =========  ================  ====  ==============
siamrpn     0.16       0.40              0.30  287
siamrpnpp   0.05       0.42              0.38  255
siammask    0.10       0.41              0.32  255
==========  =========  ================  ====  ==============

- template: the box with context amount 0.5, a square of side ``s_z = sqrt((w + p)(h + p))``,
  ``p = (w + h) / 2`` (:func:`deepvideo.track.pairs.context_side`), resampled to 127 pixels, the
  frame's mean colour outside it; embedded once;
- search: side ``s_x = s_z · search / 127`` around the last centre, resampled to ``search``;
- every anchor's proposal (decoded deltas) gets the foreground probability times the penalty
  ``exp(-(max(r, 1/r) · max(s, 1/s) - 1) · penalty_k)``, ``r`` the change of aspect ratio and
  ``s`` of padded size ``sqrt((w + p)(h + p))`` from the last box; that is blended with a Hann
  window, ``(1 - window_influence) · pscore + window_influence · window``, and the best proposal
  moves the centre; the size is smoothed with ``lr = penalty · score · lr_base``:
  ``w ← (1 - lr) w + lr w_proposal``; the centre stays in the frame and the size in
  ``[10, frame size]``; the size deltas are clamped to ``±ln 1000`` (an untrained head would
  overflow ``exp``).
- SiamMask: the chosen RoW's mask (63×63, or 127×127 with the refinement module) is pasted back
  into the frame under its 127-pixel search window, thresholded at 0.15, and the rotated box is
  ``cv2.minAreaRect`` of its largest contour (when over 100 pixels, else the axis-aligned box).
  ``extras``: ``mask`` (bool ``[H, W]``), ``polygon`` (the rotated box's 4 corners ``[4, 2]``),
  ``rotated_box`` (``((cx, cy), (w, h), angle)``) and ``mask_box`` (the polygon's axis-aligned
  box); the result's box is the RPN's, as in pysot.

Weights: ``weights=`` a ``.safetensors`` file (or a training checkpoint folder holding
``model.safetensors``), else the environment variable ``DEEPVIDEO_SIAMRPN_WEIGHTS`` /
``DEEPVIDEO_SIAMRPNPP_WEIGHTS`` / ``DEEPVIDEO_SIAMMASK_WEIGHTS``; the architecture is read from the
weights. ``optimize=True`` folds every batch norm into its convolution (same outputs).
"""

from __future__ import annotations

import copy
import math
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.convert.files import read_safetensors
from deepvideo.models.inference import fold_batchnorm
from deepvideo.track.anchors import STRIDE, anchor_grid, decode
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.dcf import box_to_center, center_to_box, clamp_center, cosine_window, mean_filled_patch
from deepvideo.track.pairs import context_side
from deepvideo.track.registry import register_tracker, weights_file
from deepvideo.track.siamrpn import EXEMPLAR_SIZE, network_from_state

CONTEXT = 0.5
MIN_SIZE = 10.0
MASK_THRESHOLD = 0.15
MIN_MASK_AREA = 100.0
MAX_LOG_CHANGE = math.log(1000.0)   # size deltas clamped (no overflow from an untrained head)
PARAMETERS = {  # pysot experiments/<config>/config.yaml: PENALTY_K, WINDOW_INFLUENCE, LR, INSTANCE_SIZE
    "siamrpn": {"penalty_k": 0.16, "window_influence": 0.40, "lr": 0.30, "search_size": 287},
    "siamrpnpp": {"penalty_k": 0.05, "window_influence": 0.42, "lr": 0.38, "search_size": 255},
    "siammask": {"penalty_k": 0.10, "window_influence": 0.41, "lr": 0.32, "search_size": 255},
}
WEIGHTS_ENV = {name: f"DEEPVIDEO_{name.upper()}_WEIGHTS" for name in PARAMETERS}



def padded_size(w, h):
    """``sqrt((w + p)(h + p))`` with ``p = (w + h) / 2``."""
    p = (w + h) / 2
    return np.sqrt((w + p) * (h + p))


def change(r):
    return np.maximum(r, 1.0 / r)


def size_penalty(boxes: np.ndarray, size: tuple[float, float], penalty_k: float) -> np.ndarray:
    """``exp(-(max(r, 1/r) max(s, 1/s) - 1) k)`` of proposals ``[M, 4]`` (cx, cy, w, h) against
    the last ``size = (w, h)`` (both in search pixels)."""
    s = change(padded_size(boxes[:, 2], boxes[:, 3]) / padded_size(*size))
    r = change((size[0] / size[1]) / (boxes[:, 2] / boxes[:, 3]))
    return np.exp(-(r * s - 1) * penalty_k)


def rotated_box(mask: np.ndarray, min_area: float = MIN_MASK_AREA):
    """``(cv2.minAreaRect, its 4 corners [4, 2])`` of the largest outer contour of the bool
    ``mask``, or None when there is no contour of at least ``min_area`` pixels."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    areas = [cv2.contourArea(c) for c in contours]
    if not contours or max(areas) < min_area:
        return None
    rect = cv2.minAreaRect(contours[int(np.argmax(areas))].reshape(-1, 2))
    return rect, cv2.boxPoints(rect)


def paste_mask(mask: np.ndarray, center: tuple[float, float], side: float, shape) -> np.ndarray:
    """A square ``mask [m, m]`` covering the frame square of ``side`` pixels centred on
    ``center``, resampled into a frame of ``shape`` (zero outside), float32."""
    m = mask.shape[0]
    scale = side / m
    left, top = center[0] - side / 2, center[1] - side / 2
    matrix = np.array([[scale, 0, left + 0.5 * scale - 0.5], [0, scale, top + 0.5 * scale - 0.5]])
    return cv2.warpAffine(mask.astype(np.float32), matrix, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


class SiameseRPNTracker:
    """The tracking procedure shared by SiamRPN, SiamRPN++ and SiamMask (see the module doc)."""

    network = ""

    def __init__(self, weights: str | os.PathLike | None = None, model: nn.Module | None = None,
                 device: str = "cpu", optimize: bool | str = False, **params):
        unknown = set(params) - set(PARAMETERS[self.network])
        if unknown:
            raise TypeError(f"{self.network}: unknown parameters {sorted(unknown)}")
        self.params = {**PARAMETERS[self.network], **params}
        if model is None:
            path = weights_file(weights, WEIGHTS_ENV[self.network])
            if path is None:
                raise ValueError(f"{self.network}: give weights= (a .safetensors file) or set "
                                 f"{WEIGHTS_ENV[self.network]}")
            model = network_from_state(self.network, read_safetensors(path), source=str(path))
        if isinstance(optimize, str):   # from the command line: --param optimize=true
            optimize = optimize.strip().lower() in ("1", "true", "yes", "on")
        if optimize:
            model = copy.deepcopy(model).eval()
            fold_batchnorm(model)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.search_size = int(self.params["search_size"])

    def _tensor(self, patch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(patch.astype(np.float32).transpose(2, 0, 1)[None]).to(self.device)

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, f"{self.network} initial box"))
        self.fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
        z = mean_filled_patch(frame, self.center, context_side(*self.size, CONTEXT), EXEMPLAR_SIZE, self.fill)
        self.zf = self.model.embed_template(self._tensor(z))
        self.anchors = None

    def proposals(self, out: dict) -> tuple[np.ndarray, np.ndarray]:
        """Foreground probabilities ``[k·S·S]`` and boxes ``[k·S·S, 4]`` (cx, cy, w, h relative to
        the search centre, search pixels), in the order anchor, row, column."""
        cls, loc = out["cls"][0].float(), out["loc"][0].float()
        k, size = cls.shape[0] // 2, cls.shape[-1]
        if self.anchors is None or self.anchors.shape[1] != size:
            self.anchors = anchor_grid(size, search_size=0)
            self.window = np.tile(cosine_window((size, size)).reshape(-1), k)
        score = F.softmax(cls.reshape(2, -1), dim=0)[1].cpu().numpy()
        deltas = loc.reshape(4, -1).T.cpu()
        deltas[:, 2:] = deltas[:, 2:].clamp(-MAX_LOG_CHANGE, MAX_LOG_CHANGE)
        return score, decode(self.anchors.reshape(-1, 4), deltas).numpy().astype(np.float64)

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        s_z = context_side(*self.size, CONTEXT)
        scale = EXEMPLAR_SIZE / s_z                      # search pixels per frame pixel
        s_x = s_z * self.search_size / EXEMPLAR_SIZE
        x = mean_filled_patch(frame, self.center, s_x, self.search_size, self.fill)
        out = self.model.match(self.zf, self._tensor(x))
        score, boxes = self.proposals(out)
        penalty = size_penalty(boxes, (self.size[0] * scale, self.size[1] * scale), self.params["penalty_k"])
        wi = self.params["window_influence"]
        best = int(np.argmax(penalty * score * (1 - wi) + self.window * wi))
        cx, cy, w, h = boxes[best] / scale
        lr = penalty[best] * score[best] * self.params["lr"]
        previous = self.center
        self.center = clamp_center((self.center[0] + cx, self.center[1] + cy), frame)
        height, width = frame.shape[:2]
        self.size = (float(np.clip(self.size[0] * (1 - lr) + w * lr, MIN_SIZE, width)),
                     float(np.clip(self.size[1] * (1 - lr) + h * lr, MIN_SIZE, height)))
        extras = {"best": best}
        if "mask" in out:
            extras.update(self.mask_extras(out, best, previous, scale, frame.shape))
        return TrackResult(center_to_box(self.center, self.size), float(score[best]), extras)

    def mask_extras(self, out: dict, best: int, previous, scale: float, shape) -> dict:
        """SiamMask's mask in the frame, its rotated box and that box's axis-aligned box."""
        size = out["cls"].shape[-1]
        row, col = np.unravel_index(best % (size * size), (size, size))
        if getattr(self.model, "refine", None) is not None:
            logits = self.model.refined_mask(out, int(row), int(col))[0, 0]
        else:
            m = int(round(out["mask"].shape[1] ** 0.5))
            logits = out["mask"][0, :, row, col].reshape(m, m)
        prob = torch.sigmoid(logits.float()).cpu().numpy()
        offset = (np.array([col, row]) - (size - 1) / 2) * STRIDE / scale
        centre = (previous[0] + offset[0], previous[1] + offset[1])
        mask = paste_mask(prob, centre, EXEMPLAR_SIZE / scale, shape) > MASK_THRESHOLD
        found = rotated_box(mask)
        if found is None:
            x, y, w, h = center_to_box(self.center, self.size)
            polygon, rect = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32), None
        else:
            rect, polygon = found
        lo, hi = polygon.min(axis=0), polygon.max(axis=0)
        return {"mask": mask, "polygon": polygon, "rotated_box": rect,
                "mask_box": (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))}


def available(network: str):
    def check() -> bool:
        path = weights_file(None, WEIGHTS_ENV[network])
        return path is not None and path.is_file()

    return check


@register_tracker("siamrpn", paper="Li et al., CVPR 2018", available=available("siamrpn"))
class SiamRPNTracker(SiameseRPNTracker):
    """SiamRPN: AlexNet Siamese region-proposal tracker (needs trained weights)."""

    network = "siamrpn"


@register_tracker("siamrpnpp", paper="Li et al., CVPR 2019", available=available("siamrpnpp"))
class SiamRPNppTracker(SiameseRPNTracker):
    """SiamRPN++: ResNet-50 Siamese region-proposal tracker (needs trained weights)."""

    network = "siamrpnpp"


@register_tracker("siammask", paper="Wang et al., CVPR 2019", available=available("siammask"))
class SiamMaskTracker(SiameseRPNTracker):
    """SiamMask: SiamRPN-style tracker with a segmentation mask and rotated box (needs weights)."""

    network = "siammask"
