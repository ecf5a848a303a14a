"""Training pairs for D&T: two frames ``t`` and ``t + τ`` of a VID video with their boxes.

D&T (Feichtenhofer, Pinz & Zisserman, ICCV 2017) trains on pairs of frames of a video and
uses ImageNet DET images as pairs of the same image twice (no motion: the tracking target is
zero). :class:`FramePairs` lists every pair ``(t, t + τ)`` of the given videos (``τ`` may be a
range, drawn per item) and, with ``det`` frames, one pair ``(f, f)`` per DET image.

An item is a dict: ``rgb_a``, ``rgb_b`` float ``[3, H, W]`` in [0, 1]; ``boxes_a``, ``boxes_b``
``[N, 4]`` (x1, y1, x2, y2); ``labels_a``, ``labels_b`` ``[N]`` int64, 1-based (0 is the
background); ``tracks_a``, ``tracks_b`` ``[N]`` int64 track ids. With ``pad_to = M`` the
box/label/track tensors have ``M`` rows, the rows past the frame's objects holding label -1
(so the engine's default collation can stack them; :func:`unpad` drops them again); a frame
with more than ``M`` objects is an error. Keys may be ``index`` or ``(index, epoch)``; τ is
drawn from the generator seeded ``[seed, epoch, index]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from deepvideo.detect.vid import VidFrame, VidVideo, box_array, read_frame_xml

__all__ = ["FramePairs", "collate_pairs", "det_frames", "read_rgb", "unpad"]


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
                 det: Sequence[VidFrame] = (), seed: int = 0, pad_to: int | None = None):
        self.classes = list(classes)
        self.index = {name: i + 1 for i, name in enumerate(self.classes)}
        low, high = (stride, stride) if isinstance(stride, int) else tuple(stride)
        if low < 0 or high < low:
            raise ValueError(f"stride must be >= 0 or a range (lo, hi) with 0 <= lo <= hi, got {stride}")
        self.stride = (low, high)
        self.items = [(v.frames, t) for v in videos for t in range(max(len(v.frames) - low, 0))]
        self.items += [([f], 0) for f in det]
        self.seed, self.pad_to = seed, pad_to
        if not self.items:
            raise ValueError("FramePairs: no pairs (videos shorter than the stride and no DET frames)")

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, frame: VidFrame, prefix: str) -> dict:
        unknown = {o.name for o in frame.objects} - set(self.index)
        if unknown:
            raise ValueError(f"{frame.image}: classes {sorted(unknown)} are not in {self.classes}")
        rgb = torch.from_numpy(read_rgb(frame.image)).permute(2, 0, 1).float() / 255
        boxes = torch.as_tensor(box_array(frame), dtype=torch.float32)
        labels = torch.tensor([self.index[o.name] for o in frame.objects], dtype=torch.int64)
        tracks = torch.tensor([o.trackid for o in frame.objects], dtype=torch.int64)
        if self.pad_to is not None:
            extra = self.pad_to - len(boxes)
            if extra < 0:
                raise ValueError(f"{frame.image}: {len(boxes)} objects, more than pad_to={self.pad_to}")
            boxes = torch.cat([boxes, torch.zeros(extra, 4)])
            labels = torch.cat([labels, torch.full((extra,), -1)])
            tracks = torch.cat([tracks, torch.full((extra,), -1)])
        return {f"rgb_{prefix}": rgb, f"boxes_{prefix}": boxes, f"labels_{prefix}": labels,
                f"tracks_{prefix}": tracks}

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        frames, t = self.items[index]
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        tau = int(rng.integers(self.stride[0], self.stride[1] + 1))
        u = min(t + tau, len(frames) - 1)
        return {**self._frame(frames[t], "a"), **self._frame(frames[u], "b")}


def collate_pairs(items: list[dict]) -> dict:
    """Images stacked (all of one size); boxes, labels and tracks kept as lists."""
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if key.startswith("rgb") else values
    return out


def unpad(batch: dict) -> dict:
    """A batch of padded items (``pad_to``) with per-image box/label/track lists without padding."""
    out = dict(batch)
    for side in "ab":
        keep = [row >= 0 for row in batch[f"labels_{side}"]]  # a stacked tensor or a list
        for name in ("boxes", "labels", "tracks"):
            out[f"{name}_{side}"] = [v[k] for v, k in zip(batch[f"{name}_{side}"], keep, strict=True)]
    return out
