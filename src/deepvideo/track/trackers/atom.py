"""ATOM tracker: an online classifier finds the target, the IoU-Net fits its box.

M. Danelljan, G. Bhat, F. S. Khan, M. Felsberg, "ATOM: Accurate Tracking by Overlap
Maximization", CVPR 2019 (Sec. 3.4), with the values of the authors' parameter file
(github.com/visionml/pytracking, ``pytracking/parameter/atom/default.py``):

- search region: a square of side ``5 √(w h)`` around the last position (``search_area_scale
  = 5``), resampled to 288 × 288 (border replicated); block4 of ResNet-18 is 18 × 18;
- first frame: the crop and augmented copies (horizontal flip, four shifts by ±0.6 of half the
  crop, blurs of sigma (2, 0.2), (0.2, 2), (3, 1), (1, 3), (2, 2) and rotations by ±5, ±10, ±20,
  ±30, ±45, ±60 degrees cut from a patch twice as large) and 7 copies of the identity crop's
  features with channel dropout 0.2 (``'dropout': (7, 0.2)``, scaled by 1 / 0.8 as
  ``F.dropout2d``) train :class:`~deepvideo.track.online_classifier.ATOMClassifier` (MLU
  response activation in its objective); the authors' code also moves each augmented copy by a
  random shift of up to 1/3 of the crop, left out here; the IoU-Net's modulation vector comes
  from the (unaugmented) first frame;
- each frame: the classifier's peak (advanced localisation, see
  :func:`~deepvideo.track.online_classifier.localize`) gives the position; the box there with
  the last size and 9 random boxes around it (``num_init_random_boxes = 9``, jitter ``0.1`` /
  ``0.5`` of ``√(w h)`` in position / size) are refined by 5 gradient-ascent steps on the
  predicted IoU and the mean of the best 3 is the new box
  (:func:`~deepvideo.track.iounet.jitter_boxes`, :func:`~deepvideo.track.iounet.refine_boxes`,
  :func:`~deepvideo.track.iounet.top_k_box`); ``refinement="relative"`` refines in PrDiMP's
  log-size space instead (10 steps of 2.5e-3);
- not found (peak < 0.25): the box stays and the frame is not learnt; a hard negative
  (distractor) is learnt at once with rate 0.02; an uncertain frame is not learnt.

``use_iou_net=False`` (pytracking's ``use_iou_net``) keeps the size and takes the classifier's
peak as the position.

Guards (departures from the authors' tracker, for IoU-Nets trained briefly on a CPU, whose
gradient can shrink a box frame after frame): ``iou_check=True`` (default) refines, on the
first frame's crops where the true box is known, ``CHECK_STARTS = 4`` random boxes per crop
(drawn as the refinement's own random boxes) and uses the IoU-Net for the sequence only if
this raises the true IoU on average by more than twice the mean's standard error
(:meth:`IoUNetTracker.check_refinement`); otherwise the tracker keeps the size, as
``use_iou_net=False``. ``min_iou`` (default 0: off) keeps the
classifier's box with the last size when the refined box's predicted IoU is below it.

``score`` is the classifier's peak. Weights: ``weights=`` a ``.safetensors`` file (or a
training checkpoint folder holding ``model.safetensors``), else ``DEEPVIDEO_ATOM_WEIGHTS``;
the network's sizes are read from the weights. ``optimize=True`` folds batch norms into the
preceding convolutions (:func:`deepvideo.models.inference.fold_batchnorm`, same outputs).
"""

from __future__ import annotations

import copy
import math
import os

import cv2
import numpy as np
import torch

from deepvideo.models.convert.files import read_safetensors
from deepvideo.models.inference import fold_batchnorm
from deepvideo.track.atom import IMAGE_SIZE, SEARCH_AREA_SCALE, atom_from_state
from deepvideo.track.base import Box, TrackResult, as_box, check_frame
from deepvideo.track.boxes import iou
from deepvideo.track.dcf import box_to_center, center_to_box, clamp_center, extract_patch
from deepvideo.track.iounet import (
    NUM_RANDOM_BOXES,
    REFINE_STEP_LENGTH,
    REFINE_STEPS,
    RELATIVE_STEP_LENGTH,
    RELATIVE_STEPS,
    jitter_boxes,
    refine_boxes,
    top_k_box,
)
from deepvideo.track.online_classifier import ATOMClassifier, instance_l2_norm, localize
from deepvideo.track.registry import register_tracker, weights_available, weights_file

WEIGHTS_ENV = "DEEPVIDEO_ATOM_WEIGHTS"
STRIDE = 16
RELATIVE_SHIFTS = ((0.6, 0.6), (-0.6, 0.6), (0.6, -0.6), (-0.6, -0.6))
# first-frame blurs (sigma) and rotations (degrees): pytracking/parameter/atom/default.py
ATOM_BLURS = ((2.0, 0.2), (0.2, 2.0), (3.0, 1.0), (1.0, 3.0), (2.0, 2.0))
ATOM_ROTATIONS = (5, -5, 10, -10, 20, -20, 30, -30, 45, -45, -60, 60)
ATOM_DROPOUT = (7, 0.2)  # 'dropout': (copies of the identity crop's features, channel drop rate)
EXPANSION = 2.0        # augmentation_expansion_factor: rotated crops are cut from a 2x patch
MIN_SIZE = 10.0
CHECK_STARTS = 4       # starts per first-frame crop in the IoU-Net check (a departure, see the docstring)
# box refinement spaces: (steps, step length); "default" ATOM / DiMP, "relative" PrDiMP
REFINEMENTS = {"default": (REFINE_STEPS, REFINE_STEP_LENGTH),
               "relative": (RELATIVE_STEPS, RELATIVE_STEP_LENGTH)}



def load_network(weights, env: str, build, name: str) -> torch.nn.Module:
    """The network ``build(state)`` with the weights of ``weights`` / ``$env`` (eval mode)."""
    path = weights_file(weights, env)
    if path is None:
        raise ValueError(f"{name}: give weights= (a .safetensors file) or set {env}")
    state = read_safetensors(path)
    try:
        net = build(state)
        net.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: not {name} weights: {exc}") from None
    return net.eval()


def as_flag(value, what: str) -> bool:
    """``value`` as a bool: a bool, 0/1, or the text true/false/yes/no/1/0 (``--param k=v``)."""
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{what}: expected true or false, got {value!r}")


class IoUNetTracker:
    """What ATOM and DiMP share: search-region crops, backbone maps, IoU-Net box refinement."""

    name = "iounet"
    blurs: tuple = ATOM_BLURS
    rotations: tuple = ATOM_ROTATIONS
    dropout: tuple = ATOM_DROPOUT

    def __init__(self, net: torch.nn.Module, image_size: int = IMAGE_SIZE, optimize: bool = False,
                 seed: int = 0, use_iou_net: bool = True, refinement: str = "default",
                 min_iou: float = 0.0, iou_check: bool = True):
        optimize = as_flag(optimize, "optimize")
        self.net = copy.deepcopy(net).eval() if optimize else net.eval()
        if optimize:
            fold_batchnorm(self.net)
        self.image_size = int(image_size)
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.use_iou_net = as_flag(use_iou_net, "use_iou_net")
        if refinement not in REFINEMENTS:
            raise ValueError(f"{self.name}: refinement must be one of {sorted(REFINEMENTS)}, "
                             f"got {refinement!r}")
        self.refinement = refinement
        self.min_iou = float(min_iou)
        self.iou_check = as_flag(iou_check, "iou_check")

    # geometry: crop pixel q of a crop centred at c with side s is frame pixel c - s/2 + q s / S
    def crop(self, frame: np.ndarray, center, side: float, shift=(0.0, 0.0), flip: bool = False,
             blur=None, rotate: float = 0.0) -> torch.Tensor:
        """The square crop ``[3, S, S]`` (float RGB) of ``side`` frame pixels, its content moved by
        ``shift`` crop pixels, optionally flipped, blurred (sigma ``(x, y)``) or rotated by
        ``rotate`` degrees about its centre (counter-clockwise, as ``cv2.getRotationMatrix2D``;
        cut from a patch ``EXPANSION`` times larger, so no border enters)."""
        scale = side / self.image_size
        c = (center[0] - shift[0] * scale, center[1] - shift[1] * scale)
        if rotate:
            big = int(round(self.image_size * EXPANSION))
            patch = extract_patch(frame, c, (side * big / self.image_size,) * 2, (big, big))
            turn = cv2.getRotationMatrix2D(((big - 1) / 2, (big - 1) / 2), float(rotate), 1.0)
            patch = cv2.warpAffine(patch, turn, (big, big), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            start = (big - self.image_size) // 2
            patch = patch[start:start + self.image_size, start:start + self.image_size]
        else:
            patch = extract_patch(frame, c, (side, side), (self.image_size, self.image_size))
        if flip:
            patch = patch[:, ::-1]
        if blur is not None:
            patch = cv2.GaussianBlur(patch, (0, 0), sigmaX=blur[0], sigmaY=blur[1])
        return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1), np.float32))

    def crop_box(self, box_center, size, center, side: float) -> torch.Tensor:
        """A frame box (centre, size) in the pixels of the crop at ``center`` with ``side``."""
        r = self.image_size / side
        half = self.image_size / 2
        w, h = size[0] * r, size[1] * r
        return torch.tensor([half + (box_center[0] - center[0]) * r - w / 2,
                             half + (box_center[1] - center[1]) * r - h / 2, w, h])

    def augmented(self, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """First-frame crops ``[N, 3, S, S]`` (identity, flip, shifts, the tracker's ``blurs``,
        then its ``rotations``) and their target boxes ``[N, 4]`` (crop pixels; a rotated crop
        keeps the box, as pytracking)."""
        box = self.crop_box(self.center, self.size, self.center, self.side)
        images, boxes = [self.crop(frame, self.center, self.side)], [box]
        images.append(self.crop(frame, self.center, self.side, flip=True))
        boxes.append(torch.tensor([self.image_size - box[0] - box[2], box[1], box[2], box[3]]))
        for sx, sy in RELATIVE_SHIFTS:
            shift = (sx * self.image_size / 2, sy * self.image_size / 2)
            images.append(self.crop(frame, self.center, self.side, shift=shift))
            boxes.append(box + torch.tensor([shift[0], shift[1], 0.0, 0.0]))
        for blur in self.blurs:
            images.append(self.crop(frame, self.center, self.side, blur=blur))
            boxes.append(box)
        for angle in self.rotations:
            images.append(self.crop(frame, self.center, self.side, rotate=angle))
            boxes.append(box)
        return torch.stack(images), torch.stack(boxes)

    def with_dropout(self, feats: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The classifier's first-frame samples ``[N, C, H, W]`` and boxes with the tracker's
        ``dropout = (num, p)`` copies of the first (identity) sample appended: whole channels
        zeroed with probability ``p``, the others scaled by ``1 / (1 − p)`` (``F.dropout2d`` in
        training mode; drawn from the tracker's seed)."""
        num, p = self.dropout
        if num <= 0:
            return feats, boxes
        keep = torch.rand(num, feats.shape[1], 1, 1, generator=self.generator) >= p
        copies = feats[:1] * keep.to(feats.dtype) / (1 - p)
        return torch.cat([feats, copies]), torch.cat([boxes, boxes[:1].expand(num, 4)])

    def start(self, frame: np.ndarray, box: Box) -> None:
        frame = check_frame(frame)
        self.center, self.size = box_to_center(as_box(box, f"{self.name} initial box"))
        self.side = math.sqrt(self.size[0] * self.size[1]) * SEARCH_AREA_SCALE
        self.frame_shape = frame.shape[:2]

    def refined_box(self, test, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """pytracking's refinement from ``start`` (crop pixels) on the test-branch maps ``test``:
        9 random boxes around it, gradient ascent, the mean of the best 3 (and its predicted IoU)."""
        boxes = jitter_boxes(start, NUM_RANDOM_BOXES, self.rng)
        steps, step = REFINEMENTS[self.refinement]
        refined, ious = refine_boxes(self.net.iou_net, self.modulation, test, boxes, steps, step,
                                     space=self.refinement)
        return top_k_box(refined, ious)

    def refine(self, maps, center_crop, size_crop) -> torch.Tensor | None:
        """The IoU-Net's box (crop pixels) from a start at ``center_crop`` with ``size_crop``;
        ``None`` when it is not used (no box kept, the first-frame check failed, or
        :meth:`accept` refuses it)."""
        if not self.refinement_helps:
            return None
        w, h = size_crop
        start = torch.tensor([center_crop[0] - w / 2, center_crop[1] - h / 2, w, h], dtype=torch.float32)
        best = self.refined_box(self.net.iou_net.test_features(*maps), start)
        if best is None:
            return None
        return best[0] if self.accept(best[1]) else None

    def check_refinement(self, maps, boxes: torch.Tensor) -> tuple[float, float]:
        """The first-frame check: on each first-frame crop (``maps`` of ``N`` crops, true boxes
        ``boxes [N, 4]``), refine from ``CHECK_STARTS`` starts drawn around the true box as the
        refinement's own random boxes; returns the mean change of the true IoU (refined minus
        start) and its standard error. With ``iou_check`` the tracker uses the IoU-Net only when
        the mean exceeds twice its standard error (a gain that is there, not noise)."""
        gains = []
        for i, box in enumerate(boxes):
            test = self.net.iou_net.test_features(maps[0][i:i + 1], maps[1][i:i + 1])
            for start in jitter_boxes(box, CHECK_STARTS, self.rng)[1:]:
                best = self.refined_box(test, start)
                after = best[0] if best is not None else start
                before_after = iou(np.stack([start.numpy(), after.numpy()]), np.stack([box.numpy()] * 2))
                gains.append(float(before_after[1] - before_after[0]))
        gains = np.asarray(gains)
        error = gains.std(ddof=1) / math.sqrt(len(gains)) if len(gains) > 1 else 0.0
        return float(gains.mean()), float(error)

    def start_refinement(self, maps, boxes: torch.Tensor) -> None:
        """The modulation vector from the first crop and, with ``iou_check``, the first-frame check."""
        self.modulation = self.net.iou_net.modulation(maps[0][:1], maps[1][:1], boxes[:1])
        checked = self.use_iou_net and self.iou_check
        n = max(len(boxes) - len(self.rotations), 1)     # the check leaves out the rotated crops
        self.refinement_gain = self.check_refinement([m[:n] for m in maps], boxes[:n]) if checked else None
        if self.refinement_gain is None:
            self.refinement_helps = True
        else:
            gain, error = self.refinement_gain
            self.refinement_helps = gain > 2 * error and gain > 0

    def accept(self, predicted: torch.Tensor) -> bool:
        """Whether the refined box replaces the classifier's: its predicted IoU (the net's
        ``2 IoU − 1`` mapped back to IoU) is at least ``min_iou`` (0: always, as pytracking)."""
        return (float(predicted) + 1) / 2 >= self.min_iou

    def locate(self, frame: np.ndarray, scores: torch.Tensor, maps, kernel: int
               ) -> tuple[str, float, torch.Tensor | None]:
        """Advanced localisation on ``scores`` and IoU-Net refinement; moves the target (unless
        not found) and returns ``(flag, score, new box in crop pixels or None)``."""
        r = self.image_size / self.side
        cells = (self.size[0] * r / STRIDE, self.size[1] * r / STRIDE)
        offset = (kernel % 2) / 2
        middle = self.image_size / 2 / STRIDE - offset
        peak, flag, score = localize(scores.numpy(), cells, (middle, middle))
        if flag == "not_found":
            return flag, score, None
        peak_crop = ((peak[1] + offset) * STRIDE, (peak[0] + offset) * STRIDE)
        size_crop = (self.size[0] * r, self.size[1] * r)
        box = self.refine(maps, peak_crop, size_crop) if self.use_iou_net else None
        if box is None:
            box = torch.tensor([peak_crop[0] - size_crop[0] / 2, peak_crop[1] - size_crop[1] / 2, *size_crop])
        half = self.image_size / 2
        cx = self.center[0] + (float(box[0] + box[2] / 2) - half) / r
        cy = self.center[1] + (float(box[1] + box[3] / 2) - half) / r
        height, width = self.frame_shape
        w = min(max(float(box[2]) / r, MIN_SIZE), width)
        h = min(max(float(box[3]) / r, MIN_SIZE), height)
        self.center = clamp_center((cx, cy), frame)
        self.size = (w, h)
        self.side = math.sqrt(w * h) * SEARCH_AREA_SCALE
        return flag, score, box



@register_tracker("atom", paper="Danelljan et al., CVPR 2019", available=weights_available(WEIGHTS_ENV))
class ATOMTracker(IoUNetTracker):
    """ATOM: online 2-layer classifier (Gauss-Newton + CG) and IoU-Net box refinement."""

    name = "atom"

    def __init__(self, weights: str | os.PathLike | None = None, model: torch.nn.Module | None = None,
                 optimize: bool = False, image_size: int = IMAGE_SIZE, seed: int = 0,
                 use_iou_net: bool = True, refinement: str = "default", min_iou: float = 0.0,
                 iou_check: bool = True, **classifier):
        net = model if model is not None else load_network(weights, WEIGHTS_ENV, atom_from_state, "atom")
        super().__init__(net, image_size, optimize, seed, use_iou_net, refinement, min_iou, iou_check)
        self.classifier_options = classifier
        ATOMClassifier(**classifier)                       # unknown options fail here, not at initialize

    def features(self, images: torch.Tensor):
        """``(layer2, layer3)`` maps and the classifier's features (layer3, instance L2-normalised)."""
        maps = self.net.backbone(images)
        return maps, instance_l2_norm(maps[1])

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        self.start(frame, box)
        images, boxes = self.augmented(frame)
        maps, feats = self.features(images)
        self.start_refinement(maps, boxes)
        self.classifier = ATOMClassifier(**self.classifier_options)
        self.classifier.initialize(*self.with_dropout(feats, boxes / STRIDE))

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        center, side = self.center, self.side
        maps, feats = self.features(self.crop(frame, center, side)[None])
        scores = self.classifier.raw_scores(feats)
        flag, score, box = self.locate(frame, scores, maps, self.classifier.kernel)
        if box is not None and flag != "uncertain":
            self.classifier.update(feats, box / STRIDE, hard_negative=flag == "hard_negative")
        return TrackResult(center_to_box(self.center, self.size), score,
                           {"response": scores.numpy(), "flag": flag})
