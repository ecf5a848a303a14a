"""Helpers for the evaluation tests: synthetic OTB-format sequences and a deterministic
"tracker" (ground truth plus seeded noise, some frames far off) that knows which frame it is
shown by the frame's content."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np

from deepvideo.track.base import TrackResult
from deepvideo.track.datasets import Sequence, load_sequence

_FRAME_INDEX: dict[tuple[str, int], dict[bytes, int]] = {}


def write_otb_sequence(root: Path, name: str, n: int = 40, size=(80, 60), seed: int = 0) -> Path:
    """An OTB folder ``root/name`` (``img/0001.png``..., 1-based ``groundtruth_rect.txt``)
    with a box wandering over, and partly out of, a ``size = (width, height)`` image."""
    rng = np.random.default_rng(seed)
    folder = root / name
    (folder / "img").mkdir(parents=True)
    width, height = size
    xy = np.cumsum(rng.normal(0, 3, (n, 2)), axis=0) + [width / 3, height / 3]
    wh = np.clip(np.array([18.0, 14.0]) + np.cumsum(rng.normal(0, 0.5, (n, 2)), axis=0), 4, None)
    boxes = np.round(np.concatenate([xy, wh], axis=1), 2)
    boxes[n // 2, 0] = -5.5  # partly left of the image
    for i in range(n):
        frame = np.full((height, width, 3), 60, np.uint8)
        x, y, w, h = boxes[i].astype(int)
        frame[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = 200
        frame[0, 0] = (i // 256, i % 256, 7)  # makes every frame distinct
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.png"), frame)
    lines = [",".join(f"{v:.2f}" for v in (b + [1, 1, 0, 0])) for b in boxes]
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return folder


def synthetic_sequences(root: Path) -> list[Sequence]:
    """Three synthetic sequences; ``syn1`` has absent frames and attributes."""
    seqs = [load_sequence(write_otb_sequence(root, f"syn{k}", n=30 + 10 * k, seed=k))
            for k in range(3)]
    n = len(seqs[1])
    seqs[1].absent = np.zeros(n, bool)
    seqs[1].absent[[5, 6, 20]] = True
    seqs[1].attributes = {"occlusion": np.arange(n) > 10}
    seqs[0].attributes = {"occlusion": np.zeros(len(seqs[0]), bool),
                          "scale": np.ones(len(seqs[0]), bool)}
    return seqs


class CachedSequence(Sequence):
    """A sequence keeping its decoded frames (tests read each many times)."""

    def frame(self, index: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_frames", {})
        if index not in cache:
            cache[index] = super().frame(index)
        return cache[index]


def cached(seq: Sequence) -> CachedSequence:
    return CachedSequence(**{f.name: getattr(seq, f.name) for f in fields(seq) if f.init})


def frame_index(seq: Sequence) -> dict[bytes, int]:
    key = (str(seq.frame_paths[0]), len(seq))
    if key not in _FRAME_INDEX:
        _FRAME_INDEX[key] = {seq.frame(i).tobytes(): i for i in range(len(seq))}
        assert len(_FRAME_INDEX[key]) == len(seq), f"{seq.name} has identical frames"
    return _FRAME_INDEX[key]


class OracleTracker:
    """Ground truth plus noise seeded by (seed, frame); every ``far_every``-th frame the box
    is moved far off (a failure); frames in ``nan_at`` get a NaN box."""

    def __init__(self, seq: Sequence, seed: int = 0, noise: float = 2.0, far_every: int = 13,
                 nan_at=()):
        self.seq, self.seed, self.noise, self.far_every = seq, seed, noise, far_every
        self.nan_at = set(nan_at)
        self.index = frame_index(seq)
        self.initialized = False

    def box_at(self, i: int) -> np.ndarray:
        gt = self.seq.boxes
        finite = np.flatnonzero(np.isfinite(gt).all(axis=1))
        base = gt[i] if np.isfinite(gt[i]).all() else gt[finite[finite <= i][-1]]
        rng = np.random.default_rng([self.seed, i])
        box = base + np.concatenate([rng.normal(0, self.noise, 2),
                                     base[2:] * rng.normal(0, 0.05, 2)])
        if self.far_every and i % self.far_every == self.far_every - 1:
            box[:2] += 3 * base[2:] + 500
        return np.full(4, np.nan) if i in self.nan_at else box

    def initialize(self, frame, box) -> None:
        i = self.index[frame.tobytes()]
        assert np.allclose(box, self.seq.boxes[i]), "initialised with a box other than the gt"
        self.initialized = True

    def track(self, frame) -> TrackResult:
        assert self.initialized
        return TrackResult(tuple(self.box_at(self.index[frame.tobytes()])))


def oracle_factory(sequences: list[Sequence], vary_seed: bool = False, **kwargs):
    """A factory for the runners: a tracker finds its sequence when initialised; with
    ``vary_seed`` each new tracker has the next seed (repetitions differ)."""
    made = []

    class Oracle:
        def __init__(self):
            self.seed = len(made) if vary_seed else kwargs.get("seed", 0)
            made.append(self)

        def initialize(self, frame, box):
            for seq in sequences:
                if frame.tobytes() in frame_index(seq):
                    self.tracker = OracleTracker(seq, **{**kwargs, "seed": self.seed})
                    return self.tracker.initialize(frame, box)
            raise AssertionError("frame of no known sequence")

        def track(self, frame):
            return self.tracker.track(frame)

    def factory():
        return Oracle()

    factory.__name__ = "oracle"
    return factory
