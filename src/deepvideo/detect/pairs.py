"""Training pairs for D&T: two frames ``t`` and ``t + τ`` of a VID video with their boxes.

D&T (Feichtenhofer, Pinz & Zisserman, ICCV 2017) trains on pairs of frames of a video and
uses ImageNet DET images as pairs of the same image twice (no motion: the tracking target is
zero). :class:`FramePairs` lists every pair ``(t, t + τ)`` of the given videos (``τ`` may be a
range, drawn per item) and, with ``det`` frames, one pair ``(f, f)`` per DET image.

An item is a dict: ``rgb_a``, ``rgb_b`` float ``[3, H, W]`` in [0, 1]; ``boxes_a``, ``boxes_b``
``[N, 4]`` (x1, y1, x2, y2); ``labels_a``, ``labels_b`` ``[N]`` int64, 1-based (0 is the
background); ``tracks_a``, ``tracks_b`` ``[N]`` int64 track ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from deepvideo.detect.vid import VidFrame, VidVideo, box_array, read_frame_xml

__all__ = ["FramePairs", "collate_pairs", "det_frames", "read_rgb"]


def read_rgb(path) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]``; a clear error when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read this image (missing or not an image)")
    return image[..., ::-1].copy()


def det_frames(annotation_files: Sequence, images: Sequence) -> list[VidFrame]:
    """DET images (one XML each, no ``trackid``) as frames."""
    if len(annotation_files) != len(images):
        raise ValueError(f"det_frames: {len(annotation_files)} annotation files but {len(images)} images")
    return [read_frame_xml(a, i) for a, i in zip(annotation_files, images, strict=True)]


class FramePairs(torch.utils.data.Dataset):
    """Pairs ``(t, t + τ)`` of every video (see the module docstring)."""

    def __init__(self, videos: Sequence[VidVideo], classes: Sequence[str], stride: int | tuple[int, int] = 1,
                 det: Sequence[VidFrame] = (), seed: int = 0):
        self.classes = list(classes)
        self.index = {name: i + 1 for i, name in enumerate(self.classes)}
        low, high = (stride, stride) if isinstance(stride, int) else tuple(stride)
        if low < 0 or high < low:
            raise ValueError(f"stride must be >= 0 or a range (lo, hi) with 0 <= lo <= hi, got {stride}")
        self.stride = (low, high)
        self.items = [(v.frames, t) for v in videos for t in range(max(len(v.frames) - low, 0))]
        self.items += [([f], 0) for f in det]
        self.rng = np.random.default_rng(seed)
        if not self.items:
            raise ValueError("FramePairs: no pairs (videos shorter than the stride and no DET frames)")

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, frame: VidFrame, prefix: str) -> dict:
        unknown = {o.name for o in frame.objects} - set(self.index)
        if unknown:
            raise ValueError(f"{frame.image}: classes {sorted(unknown)} are not in {self.classes}")
        rgb = torch.from_numpy(read_rgb(frame.image)).permute(2, 0, 1).float() / 255
        return {f"rgb_{prefix}": rgb,
                f"boxes_{prefix}": torch.as_tensor(box_array(frame), dtype=torch.float32),
                f"labels_{prefix}": torch.tensor([self.index[o.name] for o in frame.objects],
                                                 dtype=torch.int64),
                f"tracks_{prefix}": torch.tensor([o.trackid for o in frame.objects], dtype=torch.int64)}

    def __getitem__(self, i: int) -> dict:
        frames, t = self.items[i]
        tau = int(self.rng.integers(self.stride[0], self.stride[1] + 1))
        u = min(t + tau, len(frames) - 1)
        return {**self._frame(frames[t], "a"), **self._frame(frames[u], "b")}


def collate_pairs(items: list[dict]) -> dict:
    """Images stacked (all of one size); boxes, labels and tracks kept as lists."""
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if key.startswith("rgb") else values
    return out
