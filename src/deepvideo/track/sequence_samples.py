"""Training samples for ATOM and DiMP: train and test frames of one sequence, cropped around a
jittered target, with jittered proposal boxes and their IoU.

Following the authors' training code (github.com/visionml/pytracking: ``ltr/data/processing.py``
``ATOMProcessing`` / ``DiMPProcessing``, ``ltr/data/sampler.py``, ``ltr/train_settings/bbreg/
atom.py`` and ``dimp/dimp18.py``):

- frames: ``num_train`` training and ``num_test`` test frames of one sequence, all with the
  target visible, within ``max_gap = 30`` frames of each other (ATOM: 1 + 1, DiMP: 3 + 3); the
  earliest ``num_train`` are the training frames;
- crops: the target size is jittered ``size · exp(N(0, σ_s))`` (``σ_s = 0.25`` train, ``0.5``
  test frames) and its centre moved by ``√(w h) · f · U(−0.5, 0.5)`` (``f = 3`` train, ``4.5``
  test: DiMP's ``dimp18.py``; ATOM's ``bbreg/atom.py`` leaves the reference frame unjittered,
  ``f = 0``, ``σ_s = 0``, which the ``atom`` task sets); a square of side ``5 √(w h)``
  (``search_area_factor = 5``) around it is resampled to
  ``image_size`` (288), the border replicated;
- proposals: per test frame ``proposals`` boxes (DiMP 8, ATOM 16): ``σ`` drawn from
  ``(0.01, 0.05, 0.1, 0.2, 0.3)`` and centre, width and height perturbed by Gaussian noise of
  deviation ``σ √(w h)``, rounded to whole pixels, redrawn with ``σ`` shrunk by 0.9 until the
  IoU is above 0.1 (``min_iou``; ``ltr/data/processing_utils.py`` ``perturb_box``); the target
  is ``2 · IoU − 1`` (the authors' mapping to ``[−1, 1]``);
- a share ``gray_share`` of samples (0.05) is made grayscale.

Item: ``train_images [I, 3, S, S]``, ``train_boxes [I, 4]``, ``test_images [J, 3, S, S]``,
``test_boxes [J, 4]``, ``proposals [J, P, 4]``, ``proposal_iou [J, P]`` (float32; images RGB
0..255, boxes ``x, y, w, h`` crop pixels). Items are keyed ``(index, epoch)`` or ``index``;
each is a pure function of its key and ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import numpy as np
import torch

from deepvideo.track.boxes import iou
from deepvideo.track.dcf import extract_patch
from deepvideo.track.pairs import gray, pairable_frames, to_chw

SIGMAS = (0.01, 0.05, 0.1, 0.2, 0.3)
MIN_IOU = 0.1
SEARCH_AREA = 5.0


def jittered_crop(frame: np.ndarray, box: np.ndarray, rng: np.random.Generator, size: int,
                  center_jitter: float, scale_jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """The crop ``[size, size, 3]`` around a jittered ``box`` and the box in crop pixels."""
    x, y, w, h = box
    jw, jh = np.array([w, h]) * np.exp(rng.standard_normal(2) * scale_jitter)
    offset = math.sqrt(jw * jh) * center_jitter
    cx, cy = np.array([x + w / 2, y + h / 2]) + offset * (rng.random(2) - 0.5)
    side = math.sqrt(jw * jh) * SEARCH_AREA
    crop = extract_patch(frame, (cx, cy), (side, side), (size, size))
    r = size / side
    inside = np.array([(x - cx + side / 2) * r, (y - cy + side / 2) * r, w * r, h * r], np.float32)
    return crop, inside


def perturbed_box(box: np.ndarray, sigma: float, rng: np.random.Generator, min_iou: float = MIN_IOU,
                  tries: int = 100) -> np.ndarray:
    """One Gaussian perturbation of ``box`` overlapping it by more than ``min_iou``, as
    pytracking's ``perturb_box``: centre, width and height plus ``N(0, σ)``; a size of at most 1
    pixel becomes ``U(0.15, 0.5)`` of the box's; the box rounded to whole pixels; after each miss
    ``σ`` shrinks by 0.9 (the last draw after ``tries`` misses)."""
    x, y, w, h = (float(v) for v in box)
    candidate = np.asarray(box, np.float32)
    for _ in range(tries):
        cx, cy, pw, ph = np.array([x + w / 2, y + h / 2, w, h]) + sigma * rng.standard_normal(4)
        pw = pw if pw > 1 else w * rng.uniform(0.15, 0.5)
        ph = ph if ph > 1 else h * rng.uniform(0.15, 0.5)
        candidate = np.round(np.array([cx - pw / 2, cy - ph / 2, pw, ph])).astype(np.float32)
        candidate[2] = candidate[2] if candidate[2] > 1 else w * rng.uniform(0.15, 0.5)
        candidate[3] = candidate[3] if candidate[3] > 1 else h * rng.uniform(0.15, 0.5)
        if float(iou(candidate, box)[0]) > min_iou:
            break
        sigma *= 0.9
    return candidate


def proposals_for(box: np.ndarray, count: int, rng: np.random.Generator,
                  min_iou: float = MIN_IOU) -> tuple[np.ndarray, np.ndarray]:
    """``count`` perturbed boxes around ``box`` (:func:`perturbed_box`, ``σ`` drawn from
    ``SIGMAS`` times ``√(w h)``) and their IoU with it."""
    w, h = float(box[2]), float(box[3])
    out = np.stack([perturbed_box(box, SIGMAS[rng.integers(len(SIGMAS))] * math.sqrt(w * h), rng, min_iou)
                    for _ in range(count)])
    return out, iou(out, np.broadcast_to(box, out.shape)).astype(np.float32)


class SequenceSamples(torch.utils.data.Dataset):
    """ATOM/DiMP training samples from tracking ``sequences`` (see the module docstring)."""

    def __init__(self, sequences: Seq, num_train: int = 3, num_test: int = 3, max_gap: int = 30,
                 image_size: int = 288, proposals: int = 8, center_jitter: tuple[float, float] = (3.0, 4.5),
                 scale_jitter: tuple[float, float] = (0.25, 0.5), gray_share: float = 0.05,
                 samples_per_epoch: int = 1000, seed: int = 0):
        if not sequences:
            raise ValueError("SequenceSamples needs at least one sequence")
        if num_train < 1 or num_test < 1 or max_gap < 1 or proposals < 1 or samples_per_epoch < 1:
            raise ValueError(f"bad SequenceSamples arguments: num_train={num_train}, num_test={num_test}, "
                             f"max_gap={max_gap}, proposals={proposals}, "
                             f"samples_per_epoch={samples_per_epoch} "
                             "(all >= 1)")
        self.sequences = list(sequences)
        self.visible = pairable_frames(self.sequences)
        self.num_train, self.num_test, self.max_gap = int(num_train), int(num_test), int(max_gap)
        self.image_size, self.proposals = int(image_size), int(proposals)
        self.center_jitter, self.scale_jitter = tuple(center_jitter), tuple(scale_jitter)
        self.gray_share, self.samples_per_epoch, self.seed = float(gray_share), int(samples_per_epoch), seed

    def __len__(self) -> int:
        return self.samples_per_epoch

    def frames(self, rng: np.random.Generator) -> tuple[int, list[int]]:
        """``(sequence, sorted frame indices)``: ``num_train + num_test`` visible frames within
        ``max_gap`` of a base frame (repeated when the window has too few)."""
        which = int(rng.integers(len(self.sequences)))
        visible = self.visible[which]
        base = int(visible[rng.integers(len(visible))])
        window = visible[np.abs(visible - base) <= self.max_gap]
        count = self.num_train + self.num_test
        chosen = rng.choice(window, size=count, replace=len(window) < count)
        return which, sorted(int(f) for f in chosen)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        which, frames = self.frames(rng)
        sequence = self.sequences[which]
        grayscale = rng.random() < self.gray_share
        images, boxes = [], []
        for n, f in enumerate(frames):
            test = n >= self.num_train
            crop, box = jittered_crop(sequence.frame(f), np.asarray(sequence.boxes[f], np.float64), rng,
                                      self.image_size, self.center_jitter[test], self.scale_jitter[test])
            images.append(to_chw(gray(crop) if grayscale else crop))
            boxes.append(box)
        drawn = [proposals_for(b, self.proposals, rng) for b in boxes[self.num_train:]]
        i = self.num_train
        return {"train_images": torch.stack(images[:i]), "train_boxes": torch.from_numpy(np.stack(boxes[:i])),
                "test_images": torch.stack(images[i:]), "test_boxes": torch.from_numpy(np.stack(boxes[i:])),
                "proposals": torch.from_numpy(np.stack([d[0] for d in drawn])),
                "proposal_iou": torch.from_numpy(2 * np.stack([d[1] for d in drawn]) - 1)}


__all__ = ["SequenceSamples", "jittered_crop", "perturbed_box", "proposals_for"]
