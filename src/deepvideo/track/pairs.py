"""SiamFC training pairs: an exemplar and a search crop of one target in two nearby frames.

Bertinetto et al., "Fully-Convolutional Siamese Networks for Object Tracking" (ECCV-W 2016),
section 2.4: pairs are two frames of one video at most ``T = 100`` frames apart, both
containing the target; each is cropped around the target with a context margin
``p = (w + h) / 4`` on each side, the exemplar a square of the padded box's area,
side ``s = sqrt((w + 2p)(h + 2p))``, resized to ``127 x 127``, the search region
``s * 255 / 127`` around the same centre resized to ``255 x 255``. Here
``p = (w + h) / 2 * context`` (``context = 0.5`` is the paper's margin). Outside the frame the
border is replicated (the paper pads with the mean colour;
:func:`deepvideo.track.dcf.extract_patch` replicates).

Augmentation (not a number from the paper): the search crop's centre is shifted by up to
``shift`` output pixels and its side scaled by ``1 +- scale``, so the target is not always
centred; ``target`` says where it landed. A share ``gray_share`` of pairs is made grayscale
(both crops, the luminance repeated over the three channels).

pysot's template augmentation (``DATASET.TEMPLATE`` of the SiamRPN++ / SiamMask experiment
files: ``SHIFT: 4``, ``SCALE: 0.05``, ``COLOR: 1.0``; search ``BLUR: 0.2``, ``COLOR: 1.0``):
``exemplar_shift`` (exemplar pixels) and ``exemplar_scale`` move and scale the exemplar crop the
same uniform way; ``color`` (probability per crop) and ``search_blur`` (probability) apply
:func:`deepvideo.track.pair_augment.photometric`. pysot draws the x and y scale factors apart;
here one factor scales the square crop (as the search crop's). All four are off by default
(SiamFC); when off they draw nothing, so the items are those without them.

SiamRPN++'s spatial-aware sampling (Li et al., CVPR 2019, Sec. 3.1) is the same uniform shift with
a larger range: ``shift=64`` search pixels and ``scale=0.18`` (pysot ``DATASET.SEARCH.SHIFT`` and
``SCALE``), so a network with padding cannot learn that the target sits in the middle.

``with_mask=True`` (SiamMask) adds ``"mask"``: the target's segmentation in the search frame
(:meth:`deepvideo.track.datasets.Sequence.mask`) cut with the search crop's geometry, float32
``[255, 255]`` in 0..1 (bilinear), background outside the frame; a sequence without masks is a
``ValueError``.

Items are keyed ``(index, epoch)`` (:class:`deepvideo.data.samplers.EpochSampler`) or a plain
index (epoch 0); each is a pure function of its key and ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as Seq

import cv2
import numpy as np
import torch

from deepvideo.track.dcf import extract_patch
from deepvideo.track.pair_augment import photometric

__all__ = ["PairDataset", "context_side", "draw_frame_pair", "gray", "pairable_frames", "to_chw",
           "visible_frames"]


def visible_frames(sequence) -> np.ndarray:
    """Indices of the frames where ``sequence``'s target is annotated, non-empty and not absent."""
    boxes = np.asarray(sequence.boxes, dtype=np.float64)
    ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if sequence.absent is not None:
        ok &= ~np.asarray(sequence.absent, dtype=bool)
    return np.flatnonzero(ok)


def pairable_frames(sequences) -> list[np.ndarray]:
    """Each sequence's visible frames (:func:`visible_frames`); a sequence with fewer than two is
    a ValueError naming it."""
    visible = [visible_frames(s) for s in sequences]
    for sequence, frames in zip(sequences, visible, strict=True):
        if len(frames) < 2:
            raise ValueError(f"sequence {sequence.name!r}: the target is visible in {len(frames)} of "
                             f"{len(sequence)} frames; a training pair needs two")
    return visible


def draw_frame_pair(rng: np.random.Generator, visible: list[np.ndarray], max_gap: int
                    ) -> tuple[int, int, int]:
    """``(sequence, first frame, second frame)``: a random sequence and two of its ``visible``
    frames at most ``max_gap`` apart (every sequence has at least two visible frames)."""
    which = int(rng.integers(len(visible)))
    frames = visible[which]
    while True:
        first = int(frames[rng.integers(len(frames))])
        near = frames[(np.abs(frames - first) <= max_gap) & (frames != first)]
        if len(near):
            return which, first, int(near[rng.integers(len(near))])
        # an isolated visible frame: draw another


def context_side(width: float, height: float, context: float = 0.5) -> float:
    """The exemplar's square side ``sqrt((w + 2p)(h + 2p))`` with ``p = (w + h) / 2 * context``
    (SiamFC's context margin on each side of the box)."""
    p = (width + height) / 2 * context
    return math.sqrt((width + 2 * p) * (height + 2 * p))


class PairDataset(torch.utils.data.Dataset):
    """SiamFC training pairs from tracking ``sequences`` (:class:`deepvideo.track.datasets.Sequence`).

    Item -> ``{"exemplar": float32 [3, 127, 127], "search": float32 [3, 255, 255]`` (RGB,
    0..255), ``"target": float32 [4]`` (the target's ``x, y, w, h`` in search-crop pixels)``}``,
    and ``"mask": float32 [255, 255]`` when ``with_mask``.
    A sequence with fewer than two frames where the target is visible is a ``ValueError``.
    """

    def __init__(self, sequences: Seq, exemplar_size: int = 127, search_size: int = 255,
                 context: float = 0.5, max_gap: int = 100, pairs_per_epoch: int = 10000,
                 shift: float = 8.0, scale: float = 0.05, gray_share: float = 0.25, seed: int = 0,
                 with_mask: bool = False, exemplar_shift: float = 0.0, exemplar_scale: float = 0.0,
                 color: float = 0.0, search_blur: float = 0.0):
        if not sequences:
            raise ValueError("PairDataset needs at least one sequence")
        if max_gap < 1 or pairs_per_epoch < 1 or not 0 <= gray_share <= 1 or not 0 <= scale < 1:
            raise ValueError(f"bad PairDataset arguments: max_gap={max_gap} (>= 1), "
                             f"pairs_per_epoch={pairs_per_epoch} (>= 1), gray_share={gray_share} "
                             f"(0..1), scale={scale} (0..1)")
        self.sequences = list(sequences)
        self.visible = pairable_frames(self.sequences)
        self.exemplar_size, self.search_size = int(exemplar_size), int(search_size)
        self.context, self.max_gap, self.pairs_per_epoch = context, int(max_gap), int(pairs_per_epoch)
        self.shift, self.scale, self.gray_share, self.seed = shift, scale, gray_share, seed
        self.with_mask = bool(with_mask)
        if not 0 <= exemplar_scale < 1 or not 0 <= color <= 1 or not 0 <= search_blur <= 1:
            raise ValueError(f"bad PairDataset arguments: exemplar_scale={exemplar_scale} (0..1), "
                             f"color={color} (0..1), search_blur={search_blur} (0..1)")
        self.exemplar_shift, self.exemplar_scale = float(exemplar_shift), float(exemplar_scale)
        self.color, self.search_blur = float(color), float(search_blur)
        if self.with_mask:
            bare = [s.name for s in self.sequences if not getattr(s, "has_masks", False)]
            if bare:
                raise ValueError(f"PairDataset(with_mask=True): sequences without masks: {bare[:5]}")

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def frame_pair(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(sequence, exemplar frame, search frame)``: both visible, at most ``max_gap`` apart."""
        return draw_frame_pair(rng, self.visible, self.max_gap)

    def choice(self, key) -> tuple[np.random.Generator, int, int, int]:
        """The random generator of item ``key`` (``(index, epoch)`` or ``index``) after it drew
        the item's ``(sequence, exemplar frame, search frame)``, and those three."""
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        return (rng, *self.frame_pair(rng))

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        rng, which, first, second = self.choice(key)
        sequence = self.sequences[which]
        x, y, w, h = sequence.boxes[second]
        search_side = context_side(w, h, self.context) * self.search_size / self.exemplar_size
        search_side *= 1 + rng.uniform(-self.scale, self.scale)
        ratio = self.search_size / search_side                  # output pixels per frame pixel
        dx, dy = rng.uniform(-self.shift, self.shift, size=2) / ratio
        center = (x + w / 2 + dx, y + h / 2 + dy)
        search = extract_patch(sequence.frame(second), center, (search_side, search_side),
                               (self.search_size, self.search_size))
        left, top = center[0] - search_side / 2, center[1] - search_side / 2
        target = np.array([(x - left) * ratio, (y - top) * ratio, w * ratio, h * ratio], np.float32)
        item = {"target": torch.from_numpy(target)}
        if self.with_mask:
            item["mask"] = search_mask(sequence.mask(second), center, search_side, self.search_size)
        grayscale = rng.random() < self.gray_share
        exemplar = self.exemplar(sequence.frame(first), sequence.boxes[first], rng)
        if grayscale:
            exemplar, search = gray(exemplar), gray(search)
        if self.color or self.search_blur:
            exemplar = photometric(exemplar.astype(np.float32), rng, self.color, 0.0)
            search = photometric(search.astype(np.float32), rng, self.color, self.search_blur)
        return {"exemplar": to_chw(exemplar), "search": to_chw(search), **item}

    def exemplar(self, frame: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
        """The exemplar crop of ``box``, its side scaled by ``1 ± exemplar_scale`` and its centre
        moved by up to ``exemplar_shift`` exemplar pixels (no draw when both are 0)."""
        x, y, w, h = box
        side = context_side(w, h, self.context)
        cx, cy = x + w / 2, y + h / 2
        if self.exemplar_scale:
            side *= 1 + rng.uniform(-self.exemplar_scale, self.exemplar_scale)
        if self.exemplar_shift:
            dx, dy = rng.uniform(-self.exemplar_shift, self.exemplar_shift, size=2)
            cx, cy = cx + dx * side / self.exemplar_size, cy + dy * side / self.exemplar_size
        return extract_patch(frame, (cx, cy), (side, side), (self.exemplar_size, self.exemplar_size))


def search_mask(mask: np.ndarray, center: tuple[float, float], side: float, out: int) -> torch.Tensor:
    """The bool ``mask [H, W]`` cut like the search crop (square ``side`` around ``center``,
    resampled to ``out``), float32 0..1, zero outside the frame (a zero border is replicated)."""
    framed = np.pad(mask.astype(np.float32), 1)
    crop = extract_patch(framed, (center[0] + 1, center[1] + 1), (side, side), (out, out))
    return torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))


def gray(image: np.ndarray) -> np.ndarray:
    """An RGB image's luminance repeated over three channels."""
    return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def to_chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.astype(np.float32).transpose(2, 0, 1)))
