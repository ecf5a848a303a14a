"""D3S training pairs: a training (template) crop with its mask and a test crop with its mask
and the target centre, from two frames of one sequence with masks.

Lukežič et al., CVPR 2020, Sec. 3.5, with the numbers of the authors' training code
(github.com/alanlukezic/d3s: ``ltr/train_settings/segm/segm_default.py``,
``ltr/data/segm_processing.py``): frames at most ``max_gap = 50`` apart; each crop is a square
of side ``ceil(4 · sqrt(w h))`` (search area factor 4) around a jittered box, resized to
``crop`` pixels (384 in the paper); the training crop is not jittered, the test box's size is
multiplied by ``exp(0.25 · n)`` (n standard normal, per axis) and its centre moved by up to
``± 1.5 · sqrt(w' h') / 2`` (uniform) before cropping; the target centre given for the position
channel is the true centre moved by up to ``± 1/8`` of the box (uniform), as the authors do.

Item -> ``{"train_image", "test_image": float32 [3, S, S]`` (RGB 0..255), ``"train_mask",
"test_mask": float32 [1, S, S]`` (0/1), ``"test_center": float32 [2]`` (x, y crop pixels)``}``.
Outside the frame images are filled with the frame's mean colour and masks with 0. Items are
keyed ``(index, epoch)`` or a plain index, each a pure function of its key and ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import numpy as np
import torch

from deepvideo.track.d3s import CROP_SIZE, SEARCH_AREA_FACTOR
from deepvideo.track.dcf import mean_filled_patch
from deepvideo.track.pairs import draw_frame_pair, pairable_frames

MAX_GAP = 50
CENTER_JITTER = {"train": 0.0, "test": 1.5}
SCALE_JITTER = {"train": 0.0, "test": 0.25}
POSITION_JITTER = 0.25   # the centre for P moves by up to ±0.25/2 of the box


def crop_side(w: float, h: float, factor: float = SEARCH_AREA_FACTOR) -> float:
    """Side of the square D3S crop around a ``w × h`` target: ``ceil(factor · sqrt(w h))``."""
    return float(math.ceil(factor * math.sqrt(w * h)))


def crop_pair(frame: np.ndarray, mask: np.ndarray, center, side: float, out: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The square crop (mean-colour fill) and its mask crop (0 fill, thresholded at 0.5)."""
    fill = tuple(float(v) for v in frame.reshape(-1, 3).mean(axis=0))
    image = mean_filled_patch(frame, center, side, out, fill)
    crop_mask = mean_filled_patch(mask.astype(np.float32), center, side, out, (0.0,))
    return image, (crop_mask > 0.5).astype(np.float32)


class SegmentationPairs(torch.utils.data.Dataset):
    """D3S training pairs from tracking ``sequences`` with masks (module docstring)."""

    def __init__(self, sequences: Seq, crop: int = CROP_SIZE, max_gap: int = MAX_GAP,
                 pairs_per_epoch: int = 1000, center_jitter: float = CENTER_JITTER["test"],
                 scale_jitter: float = SCALE_JITTER["test"], seed: int = 0):
        if not sequences:
            raise ValueError("SegmentationPairs needs at least one sequence")
        if crop % 16 or crop < 32 or max_gap < 1 or pairs_per_epoch < 1:
            raise ValueError(f"bad SegmentationPairs arguments: crop={crop} (a multiple of 16, >= 32), "
                             f"max_gap={max_gap} (>= 1), pairs_per_epoch={pairs_per_epoch} (>= 1)")
        self.sequences = list(sequences)
        for sequence in self.sequences:
            if not sequence.has_masks:
                raise ValueError(f"sequence {sequence.name!r} ({sequence.root}) has no masks; "
                                 "D3S trains on sequences with masks (e.g. `deepvideo track synth`)")
        self.visible = pairable_frames(self.sequences)
        self.crop, self.max_gap, self.pairs_per_epoch = int(crop), int(max_gap), int(pairs_per_epoch)
        self.center_jitter, self.scale_jitter, self.seed = center_jitter, scale_jitter, seed

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def frame_pair(self, rng: np.random.Generator) -> tuple[int, int, int]:
        return draw_frame_pair(rng, self.visible, self.max_gap)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        which, first, second = self.frame_pair(rng)
        sequence = self.sequences[which]
        x, y, w, h = sequence.boxes[first]
        train_image, train_mask = crop_pair(sequence.frame(first), sequence.mask(first),
                                            (x + w / 2, y + h / 2), crop_side(w, h), self.crop)
        x, y, w, h = sequence.boxes[second]
        jw, jh = np.array([w, h]) * np.exp(rng.standard_normal(2) * self.scale_jitter)
        shift = math.sqrt(jw * jh) * self.center_jitter * (rng.random(2) - 0.5)
        center = (x + w / 2 + shift[0], y + h / 2 + shift[1])
        side = crop_side(jw, jh)
        test_image, test_mask = crop_pair(sequence.frame(second), sequence.mask(second), center, side,
                                          self.crop)
        ratio = self.crop / side
        true_center = np.array([x + w / 2 - center[0], y + h / 2 - center[1]]) * ratio + self.crop / 2
        moved = true_center + POSITION_JITTER * np.array([w, h]) * ratio * (rng.random(2) - 0.5)
        return {"train_image": to_chw(train_image), "train_mask": torch.from_numpy(train_mask)[None],
                "test_image": to_chw(test_image), "test_mask": torch.from_numpy(test_mask)[None],
                "test_center": torch.from_numpy(moved.astype(np.float32))}


def to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1)))
