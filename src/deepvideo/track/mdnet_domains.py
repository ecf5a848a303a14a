"""MDNet's offline training data: one item = one iteration of one domain (sequence).

Nam & Han, CVPR 2016, Sec. 3.2–3.4: every training sequence is a domain with its own fc6;
an iteration takes one domain and a mini-batch of 8 of its frames with 32 positive (IoU ≥ 0.7)
and 96 negative (IoU ≤ 0.5) boxes in all. As py-MDNet (``pretrain/data_prov.py``,
``options_vot.yaml``): positives uniform (trans 0.1, scale 1.3), negatives uniform (trans 2,
scale 1.6), split over the 8 frames as evenly as possible; the domains are visited in a new
random order every cycle (here: every ``len(sequences)`` items).

Item -> ``{"patches": uint8 [128, 3, 107, 107]`` (RGB), ``"labels": int64 [128]`` (1 for the 32
positives first, then 0), ``"domain": int64}``. Items are keyed ``(index, epoch)``
(:class:`deepvideo.data.samplers.EpochSampler`) or a plain index; each is a pure function of
its key and ``seed``.

``holdout_every = n`` reserves every n-th visible frame of each sequence (frames
``n−1, 2n−1, ...`` of the visible ones) for ``split="holdout"`` (validation on the same domains,
since a new sequence has no fc6); ``split="train"`` uses the others.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np
import torch

from deepvideo.track.mdnet import CONTEXT_PADDING, INPUT_SIZE
from deepvideo.track.mdnet_samples import crop_regions, draw_samples, to_tensor_layout
from deepvideo.track.pairs import visible_frames

FRAMES = 8
POSITIVES = 32
NEGATIVES = 96
POS_SAMPLING = {"trans": 0.1, "scale": 1.3, "iou_range": (0.7, 1.0)}
NEG_SAMPLING = {"trans": 2.0, "scale": 1.6, "iou_range": (0.0, 0.5)}


class DomainDataset(torch.utils.data.Dataset):
    """MDNet training iterations over tracking ``sequences`` (one domain each)."""

    def __init__(self, sequences: Seq, iterations: int | None = None, frames: int = FRAMES,
                 positives: int = POSITIVES, negatives: int = NEGATIVES, holdout_every: int = 0,
                 split: str = "train", seed: int = 0):
        if not sequences:
            raise ValueError("DomainDataset needs at least one sequence")
        if split not in ("train", "holdout") or (split == "holdout" and holdout_every < 2):
            raise ValueError(f"DomainDataset split {split!r} with holdout_every={holdout_every}: use "
                             "split 'train', or 'holdout' with holdout_every >= 2")
        if min(frames, positives, negatives) < 1:
            raise ValueError(f"frames, positives and negatives must be >= 1, got {frames}, "
                             f"{positives}, {negatives}")
        self.sequences = list(sequences)
        self.frames = [self.split_frames(visible_frames(s), holdout_every, split) for s in self.sequences]
        for sequence, chosen in zip(self.sequences, self.frames, strict=True):
            if len(chosen) == 0:
                raise ValueError(f"sequence {sequence.name!r}: no visible frame in split {split!r} "
                                 f"(holdout_every={holdout_every})")
        self.iterations = int(iterations or len(self.sequences))
        self.num_frames, self.positives, self.negatives = frames, positives, negatives
        self.seed = seed

    @staticmethod
    def split_frames(visible: np.ndarray, every: int, split: str) -> np.ndarray:
        if every < 2:
            return visible
        held = (np.arange(len(visible)) % every) == every - 1
        return visible[held] if split == "holdout" else visible[~held]

    @property
    def num_domains(self) -> int:
        return len(self.sequences)

    def __len__(self) -> int:
        return self.iterations

    def domain_of(self, index: int, epoch: int) -> int:
        """Domains in a new random order each cycle of ``len(sequences)`` items."""
        k = len(self.sequences)
        order = np.random.default_rng([self.seed, int(epoch), index // k]).permutation(k)
        return int(order[index % k])

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index), 1])
        domain = self.domain_of(int(index), int(epoch))
        sequence, frames = self.sequences[domain], self.frames[domain]
        chosen = rng.choice(frames, size=self.num_frames, replace=len(frames) < self.num_frames)
        pos, neg = [], []
        for i, frame_index in enumerate(chosen):
            left = self.num_frames - i
            n_pos = (self.positives - sum(len(p) for p in pos)) // left
            n_neg = (self.negatives - sum(len(n) for n in neg)) // left
            frame = sequence.frame(int(frame_index))
            box, size = sequence.boxes[int(frame_index)], (frame.shape[1], frame.shape[0])
            for out, n, how in ((pos, n_pos, POS_SAMPLING), (neg, n_neg, NEG_SAMPLING)):
                boxes = draw_samples("uniform", rng, box, n, size, **how)
                out.append(crop_regions(frame, boxes, INPUT_SIZE, CONTEXT_PADDING))
        pos_patches, neg_patches = np.concatenate(pos), np.concatenate(neg)
        if len(pos_patches) != self.positives or len(neg_patches) != self.negatives:
            raise ValueError(f"sequence {sequence.name!r} (frames {chosen.tolist()}): found "
                             f"{len(pos_patches)}/{self.positives} positives and {len(neg_patches)}/"
                             f"{self.negatives} negatives within the IoU ranges (target too large "
                             "for its frame?)")
        labels = np.r_[np.ones(len(pos_patches)), np.zeros(len(neg_patches))].astype(np.int64)
        patches = to_tensor_layout(np.concatenate([pos_patches, neg_patches]))
        return {"patches": torch.from_numpy(patches), "labels": torch.from_numpy(labels),
                "domain": torch.tensor(domain, dtype=torch.int64)}
