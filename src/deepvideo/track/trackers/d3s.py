"""D3S tracker: segmentation by the GIM + refinement network, localisation by the GEM, the box
from the mask.

A. Lukežič, J. Matas, M. Kristan, "D3S – A Discriminative Single Shot Segmentation Tracker",
CVPR 2020 (Sec. 3.4), with the parameters of the authors' tracker (github.com/alanlukezic/d3s,
``pytracking/parameter/segm/default_params.py`` and ``pytracking/tracker/segm/segm.py``):

- initialisation: a crop of side ``4 · sqrt(w h)`` around the box, resized to 384 pixels; without a
  given mask the template mask is the box, refined by one pass of the network on the first crop
  (foreground probability > 0.5, kept inside the box); the GIM stores that crop's features and
  mask; the GEM (:mod:`deepvideo.track.d3s_gem`) is trained on the same crop;
- each frame (single shot, as the paper's Fig. 2: one crop, one backbone pass): the crop around
  the previous position; the GEM response peak gives the position estimate and the position
  channel P; the uncertainty ``u = mean(recent peaks) / peak`` (from frame 6; the last 25
  confident peaks, starting from the GEM's peak on the first crop where the authors start from
  ATOM's label peak 1) gates everything: the segmentation runs when ``u < 10``, the GEM (and the
  optional GIM background update) learns when ``u < 3``, the size may change when ``u < 3.5``;
- the GEM's peak is the new centre unless the mask gives one: from the mask (foreground
  probability > 0.5, largest region over 50 crop pixels) the minimum-area rectangle gives the
  new centre (when the region's area is within 100 % of the
  mean of the last 25 accepted areas) and the scale (area-preserving box, a change of at most
  ±5 % per frame, ignored beyond 75 %; the target's shorter first side stays at least 10 pixels
  and the box no larger than the frame); the reported box is the region's enclosing box (within
  200 % of that mean area; its part inside the frame), else the GEM's box. ``extras["mask"]``:
  the full-frame bool mask, ``extras["polygon"]``: the rotated rectangle's corners in the frame.

The authors re-crop around the GEM's new position before segmenting (two backbone passes);
here the crop the GEM scored is segmented. The GIM keeps the first frame's vectors, as the
authors' code does; ``update_background=True`` also appends the background vectors of confident
frames (the last ``background_frames``). ``score`` is the GEM's response peak.

Weights: ``weights=`` a ``.safetensors`` file (or a training checkpoint folder holding
``model.safetensors``), else the environment variable ``DEEPVIDEO_D3S_WEIGHTS``; the network's
shape is read from the weights, the crop size (default 384) from the training run's
``checkpoint.json`` beside them when there is one. ``optimize=True`` folds the batch norms into
the convolutions.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from deepvideo.models.convert.files import read_safetensors
from deepvideo.models.inference import fold_batchnorm
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.d3s import (
    CROP_SIZE,
    MASK_THRESHOLD,
    STRIDE,
    D3SNet,
    d3s_from_state_dict,
    foreground_probability,
)
from deepvideo.track.d3s_gem import GEMS, GeometricModel, response_peak
from deepvideo.track.d3s_pairs import crop_side
from deepvideo.track.dcf import box_to_center, center_to_box, clamp_center, mean_filled_patch
from deepvideo.track.mask_fit import area_preserving_box, axis_aligned_box, largest_region, min_area_box
from deepvideo.track.registry import register_tracker, weights_available, weights_file

WEIGHTS_ENV = "DEEPVIDEO_D3S_WEIGHTS"
TRACKING_UNCERTAINTY = 3.0     # tracking_uncertainty_thr
SEGMENT_UNCERTAINTY = 10.0     # uncertainty_segment_thr
SCALE_UNCERTAINTY = 3.5        # uncertainty_segm_scale_thr
RESPONSE_BUDGET = 25           # response_budget_sz
MASK_PIXELS_BUDGET = 25        # mask_pixels_budget_sz
SEGM_PIXELS_RATIO = 2.0        # segm_pixels_ratio
CONSIDER_PIXELS_RATIO = 1.0    # consider_segm_pixels_ratio
MAX_SCALE_CHANGE = 0.75        # max_rel_scale_ch_thr
SCALE_CHANGE = (0.95, 1.05)    # min/max_scale_change_factor
FIRST_UNCERTAIN_FRAME = 5      # uncertainty is measured after frame 5
MIN_TARGET_SIDE = 10.0         # the target is at least 10 pixels (min_scale_factor)



def load_d3s(path: str | os.PathLike) -> D3SNet:
    """A :class:`D3SNet` (eval mode) with the weights of a ``.safetensors`` file."""
    return d3s_from_state_dict(read_safetensors(path), source=str(path)).eval()


def trained_crop(path: Path) -> int | None:
    """The crop size a ``d3s`` training run used, from the ``checkpoint.json`` beside the weights
    file (``crop``, or the config's ``data.train.pairs.crop``); None when there is none."""
    meta_file = path.parent / "checkpoint.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_file}: not JSON ({exc})") from None
    if "crop" in meta:
        return int(meta["crop"])
    pairs = (((meta.get("config") or {}).get("data") or {}).get("train") or {}).get("pairs") or {}
    return int(pairs["crop"]) if "crop" in pairs else None


def paste_mask(crop_mask: np.ndarray, center, side: float, shape: tuple[int, int]) -> np.ndarray:
    """A crop-resolution map put back into a frame of ``shape (H, W)`` (the inverse of the square
    crop of ``side`` pixels around ``center``), bilinear, 0 outside the crop."""
    scale = side / crop_mask.shape[0]
    matrix = np.array([[scale, 0, center[0] - side / 2 + 0.5 * scale - 0.5],
                       [0, scale, center[1] - side / 2 + 0.5 * scale - 0.5]])
    return cv2.warpAffine(crop_mask.astype(np.float32), matrix, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR, borderValue=0.0)



@register_tracker("d3s", paper="Lukežič et al., CVPR 2020", available=weights_available(WEIGHTS_ENV))
class D3STracker:
    """D3S: discriminative single-shot segmentation tracker (needs trained weights)."""

    def __init__(self, weights: str | os.PathLike | None = None, model: D3SNet | None = None,
                 crop: int | None = None, optimize: bool = False, update_background: bool = False,
                 background_frames: int = 5, gem: str | Callable[[], GeometricModel] = "dcf",
                 device: str = "cpu"):
        if model is None:
            path = weights_file(weights, WEIGHTS_ENV)
            if path is None:
                raise ValueError(f"d3s: give weights= (a .safetensors file) or set {WEIGHTS_ENV}")
            model = load_d3s(path)
            crop = crop or trained_crop(path)
        crop = crop or CROP_SIZE
        if int(crop) % STRIDE:
            raise ValueError(f"d3s: crop must be a multiple of {STRIDE} pixels, got {crop}")
        model = copy.deepcopy(model).eval() if optimize else model.eval()
        if optimize:
            fold_batchnorm(model)
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if isinstance(gem, str) and gem not in GEMS:
            raise ValueError(f"d3s: gem must be one of {', '.join(GEMS)} or a factory, got {gem!r}")
        self.crop, self.make_gem = int(crop), GEMS[gem] if isinstance(gem, str) else gem
        self.update_background, self.background_frames = bool(update_background), int(background_frames)

    def _crop(self, frame: np.ndarray) -> tuple[list[torch.Tensor], float]:
        """Backbone maps of the crop around the current target, and its side in frame pixels."""
        side = crop_side(*self.size)
        patch = mean_filled_patch(frame, self.center, side, self.crop, self.fill)
        x = torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1), np.float32))[None]
        return self.model.features(x.to(self.device)), side

    def _probability(self, feats, centre_px: tuple[float, float]) -> np.ndarray:
        centers = torch.tensor([centre_px], dtype=torch.float32, device=self.device)
        return foreground_probability(self.model.segment(feats, self.template, centers))[0].cpu().numpy()

    def _grid_box(self, center, side: float) -> tuple[float, float, float, float]:
        """The current target as ``(x, y, w, h)`` in GEM grid units of the crop of ``side``
        pixels around ``center``."""
        ratio = self.crop / side / STRIDE
        gx = (self.center[0] - center[0]) * ratio + self.crop / 2 / STRIDE
        gy = (self.center[1] - center[1]) * ratio + self.crop / 2 / STRIDE
        w, h = self.size[0] * ratio, self.size[1] * ratio
        return gx - w / 2, gy - h / 2, w, h

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None:
        """Start on ``box``; ``mask`` (bool ``[H, W]``, optional) is the target's first mask."""
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, "d3s initial box"))
        self.first_size = self.size
        self.fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
        feats, side = self._crop(frame)
        if mask is not None:
            template_mask = mean_filled_patch(np.asarray(mask, np.float32), self.center, side, self.crop,
                                              (0.0,)) > 0.5
        else:
            template_mask = self._refined_box_mask(feats, side)
        self.template = self.model.template(feats, self._tensor_mask(template_mask))
        self.gem = self.make_gem()
        self.gem.initialize(feats[3][0], self._grid_box(self.center, side))
        self.mask_pixels = [float(template_mask.sum())]
        self.scores, self.frame_num = [response_peak(self.gem.score(feats[3][0]))[2]], 1

    def _tensor_mask(self, mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(mask, np.float32))[None, None].to(self.device)

    def _refined_box_mask(self, feats, side: float) -> np.ndarray:
        """The box as a crop mask, refined by the network with the box as its template: the
        foreground (probability > 0.5) inside the box, or the box when that is empty."""
        half, ratio = self.crop / 2, self.crop / side
        w, h = self.size[0] * ratio, self.size[1] * ratio
        box_mask = np.zeros((self.crop, self.crop), bool)
        box_mask[max(0, round(half - h / 2)):round(half + h / 2),
                 max(0, round(half - w / 2)):round(half + w / 2)] = True
        self.template = self.model.template(feats, self._tensor_mask(box_mask))
        refined = (self._probability(feats, (half, half)) > MASK_THRESHOLD) & box_mask
        return refined if refined.any() else box_mask

    def _uncertainty(self, peak: float) -> float:
        if self.frame_num <= FIRST_UNCERTAIN_FRAME:
            uncertainty = 0.0
        else:
            uncertainty = float(np.mean(self.scores)) / peak if peak > 0 else float("inf")
        if uncertainty < TRACKING_UNCERTAINTY:
            self.scores = (self.scores + [peak])[-RESPONSE_BUDGET:]
        return uncertainty

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        self.frame_num += 1
        feats, side = self._crop(frame)
        crop_center, ratio = self.center, self.crop / side
        response = self.gem.score(feats[3][0])
        gx, gy, peak = response_peak(response)
        found = clamp_center((crop_center[0] + (gx * STRIDE - self.crop / 2) / ratio,
                              crop_center[1] + (gy * STRIDE - self.crop / 2) / ratio), frame)
        uncertainty = self._uncertainty(peak)
        extras = {"response": response, "uncertainty": uncertainty}
        self.center, result_box = found, None          # the mask's centre may replace the GEM's
        if uncertainty < SEGMENT_UNCERTAINTY:
            probability = self._probability(feats, (gx * STRIDE, gy * STRIDE))
            result_box = self._from_mask(probability, frame, crop_center, side, uncertainty, extras)
        if result_box is None:
            result_box = center_to_box(self.center, self.size)
        if uncertainty < TRACKING_UNCERTAINTY:
            self.gem.update(feats[3][0], self._grid_box(crop_center, side))
            if self.update_background and "mask" in extras:
                self._add_background(feats, extras.pop("crop_mask"))
        extras.pop("crop_mask", None)
        return TrackResult(tuple(float(v) for v in result_box), peak, extras)

    def _from_mask(self, probability: np.ndarray, frame: np.ndarray, crop_center, side: float,
                   uncertainty: float, extras: dict) -> Box | None:
        """Position, scale and box from the crop's foreground probability (module docstring);
        None when the mask has no region or is out of proportion."""
        contour = largest_region(probability, MASK_THRESHOLD)
        if contour is None:
            return None
        ratio = self.crop / side

        def to_frame(points: np.ndarray) -> np.ndarray:
            return (points + 0.5 - self.crop / 2) / ratio + np.asarray(crop_center)

        corners = to_frame(min_area_box(contour))
        pixels = float(cv2.contourArea(contour))
        pixels_ratio = abs(np.mean(self.mask_pixels) - pixels) / np.mean(self.mask_pixels)
        if uncertainty < SCALE_UNCERTAINTY and pixels_ratio < SEGM_PIXELS_RATIO:
            self.mask_pixels = (self.mask_pixels + [pixels])[-MASK_PIXELS_BUDGET:]
            _, _, w, h = area_preserving_box(corners)
            change = np.sqrt(w * h / (self.size[0] * self.size[1]))
            if abs(change - 1) < MAX_SCALE_CHANGE:
                self._rescale(float(np.clip(change, *SCALE_CHANGE)), frame)
        if pixels_ratio < CONSIDER_PIXELS_RATIO:
            self.center = clamp_center(tuple(corners.mean(axis=0)), frame)
        if pixels_ratio >= SEGM_PIXELS_RATIO:
            return None
        crop_mask = np.zeros(probability.shape, np.uint8)
        cv2.drawContours(crop_mask, [contour.reshape(-1, 1, 2)], -1, 1, thickness=-1)
        extras["mask"] = paste_mask(crop_mask, crop_center, side, frame.shape[:2]) > 0.5
        extras["polygon"], extras["crop_mask"] = corners, crop_mask
        x, y, w, h = axis_aligned_box(contour)
        (fx, fy), = to_frame(np.array([[x, y]], np.float64)) - 0.5 / ratio
        height, width = frame.shape[:2]                       # the part inside the frame
        x0, y0 = max(float(fx), 0.0), max(float(fy), 0.0)
        x1, y1 = min(float(fx) + w / ratio, width), min(float(fy) + h / ratio, height)
        return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 1 and y1 - y0 >= 1 else None

    def _rescale(self, factor: float, frame: np.ndarray) -> None:
        """Multiply the size by ``factor``, keeping the scale (relative to the first box) between
        ``10 / min(first size)`` and ``min(frame size / first size)`` (the authors' bounds)."""
        (w0, h0), (height, width) = self.first_size, frame.shape[:2]
        scale = self.size[0] / w0 * factor
        scale = min(max(scale, MIN_TARGET_SIDE / min(w0, h0)), min(width / w0, height / h0))
        self.size = (w0 * scale, h0 * scale)

    def _add_background(self, feats, crop_mask: np.ndarray) -> None:
        gim = self.model.gim_features(feats[3])
        background = 1 - F.interpolate(self._tensor_mask(crop_mask), size=gim.shape[-2:], mode="nearest")
        self.template.add_background(gim, background, self.background_frames)
