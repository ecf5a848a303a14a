"""DiMP tracker: the model predictor learns the target filter, the IoU-Net fits the box.

G. Bhat, M. Danelljan, L. Van Gool, R. Timofte, "Learning Discriminative Model Prediction for
Tracking", ICCV 2019 (Sec. 3.4), with the values of the authors' parameter files
(github.com/visionml/pytracking, ``pytracking/parameter/dimp/dimp18.py`` and ``dimp50.py``):

- search region and crops as ATOM (:mod:`deepvideo.track.trackers.atom`): a square of side
  ``5 √(w h)`` resampled to 288 × 288 (``image_sample_size = 18·16``, ``search_area_scale =
  5``); the first frame and its augmented copies are the initial training set (flip, four
  shifts, blurs of sigma (3, 1), (1, 3), (2, 2), rotations by ±10 and ±45 degrees: the
  ``augmentation`` of ``dimp18.py``, and 2 copies of the identity crop's classification
  features with channel dropout 0.2, ``'dropout': (2, 0.2)``; random shifts left out);
- first frame: the initialiser and 10 steepest-descent iterations (``net_opt_iter = 10``) on
  the initial set predict the filter (:class:`deepvideo.track.dimp.DiMPNet`);
- memory of 50 samples (``sample_memory_size``; features and target boxes), learning rate 0.01,
  initial samples at least 0.25 of the weight (as ATOM's,
  :class:`~deepvideo.track.online_classifier.SampleMemory`); every 20th learnt frame
  (``train_skipping = 20``) 2 iterations (``net_opt_update_iter``) over the memory with its
  weights; a hard negative is learnt at once with rate 0.02 and 1 iteration
  (``net_opt_hn_iter``);
- localisation (not found below 0.25, distractors, hard negatives) and IoU-Net refinement
  (9 random boxes, 5 steps, top 3) as ATOM.

Weights: ``weights=`` a ``.safetensors`` file (or a checkpoint folder holding
``model.safetensors``), else ``DEEPVIDEO_DIMP_WEIGHTS``; ``optimize=True`` folds batch norms;
``use_iou_net=False`` keeps the size and takes the classifier's peak as the position;
``refinement``, ``iou_check`` (the first-frame IoU-Net check, on by default) and ``min_iou`` are
ATOM's (:mod:`deepvideo.track.trackers.atom`).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from deepvideo.track.atom import IMAGE_SIZE
from deepvideo.track.base import Box, TrackResult, check_frame
from deepvideo.track.dcf import center_to_box
from deepvideo.track.dimp import apply_filter, dimp_from_state
from deepvideo.track.online_classifier import HARD_NEGATIVE_LR, LEARNING_RATE, SampleMemory
from deepvideo.track.registry import register_tracker, weights_available
from deepvideo.track.trackers.atom import IoUNetTracker, load_network

WEIGHTS_ENV = "DEEPVIDEO_DIMP_WEIGHTS"
MEMORY = 50
TRAIN_SKIPPING = 20
INIT_ITER = 10
UPDATE_ITER = 2
HARD_NEGATIVE_ITER = 1



@register_tracker("dimp", paper="Bhat et al., ICCV 2019", available=weights_available(WEIGHTS_ENV))
class DiMPTracker(IoUNetTracker):
    """DiMP: learned model predictor (steepest descent) and IoU-Net box refinement."""

    name = "dimp"
    blurs = ((3.0, 1.0), (1.0, 3.0), (2.0, 2.0))        # dimp18.py / dimp50.py augmentation
    rotations = (10, -10, 45, -45)
    dropout = (2, 0.2)

    def __init__(self, weights: str | os.PathLike | None = None, model: torch.nn.Module | None = None,
                 optimize: bool = False, image_size: int = IMAGE_SIZE, seed: int = 0,
                 use_iou_net: bool = True, refinement: str = "default", min_iou: float = 0.0,
                 iou_check: bool = True):
        net = model if model is not None else load_network(weights, WEIGHTS_ENV, dimp_from_state, "dimp")
        super().__init__(net, image_size, optimize, seed, use_iou_net, refinement, min_iou, iou_check)
        self.kernel = int(self.net.initializer.filter_size)

    def features(self, images: torch.Tensor):
        """``(layer2, layer3)`` maps and the classification features."""
        maps = self.net.backbone(images)
        return maps, self.net.classification(maps[1])

    def optimize_filter(self, num_iter: int) -> None:
        feats, boxes, weights = self.memory.tensors()
        self.filter, _ = self.net.optimizer(self.filter, feats[:, None], boxes[:, None], num_iter,
                                            weights[:, None])

    @torch.no_grad()
    def initialize(self, frame: np.ndarray, box: Box) -> None:
        self.start(frame, box)
        images, boxes = self.augmented(frame)
        maps, feats = self.features(images)
        self.start_refinement(maps, boxes)
        feats, boxes = self.with_dropout(feats, boxes)
        self.filter, _ = self.net.predict_filter(feats[:, None], boxes[:, None], INIT_ITER)
        self.memory = SampleMemory(MEMORY)
        self.memory.initialize(feats, boxes)
        self.learnt = 0

    @torch.no_grad()
    def track(self, frame: np.ndarray) -> TrackResult:
        frame = check_frame(frame)
        maps, feats = self.features(self.crop(frame, self.center, self.side)[None])
        scores = apply_filter(feats[:, None], self.filter)[0, 0]
        flag, score, box = self.locate(frame, scores, maps, self.kernel)
        if box is not None and flag != "uncertain":
            hard = flag == "hard_negative"
            self.memory.add(feats[0], box, HARD_NEGATIVE_LR if hard else LEARNING_RATE)
            self.learnt += 1
            if hard:
                self.optimize_filter(HARD_NEGATIVE_ITER)
            elif self.learnt % TRAIN_SKIPPING == 0:
                self.optimize_filter(UPDATE_ITER)
        return TrackResult(center_to_box(self.center, self.size), score,
                           {"response": scores.numpy(), "flag": flag})
