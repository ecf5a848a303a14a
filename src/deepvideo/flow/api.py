"""``compute_flow``: one entry point for every optical-flow method.

Input is RGB ``uint8`` frames ``[T,H,W,3]`` (numpy or torch; N = T-1 fields, field t is
frame t -> t+1) or a pair ``(prev [N,H,W,3], next [N,H,W,3])``; grayscale ``[T,H,W]`` is
accepted too. Output is ``torch.float32 [N,2,H,W]``: (u, v) displacement in pixels from the
first frame of each pair to the second, so that ``prev(x) ≈ next(x + flow(x))``.
All methods work on the grayscale (luma, BT.601) images.
"""

from __future__ import annotations

import numpy as np
import torch

METHODS = ("dis", "farneback", "opencv-tvl1", "tvl1")


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _gray_numpy(frames: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W,3] RGB or [N,H,W] -> uint8 [N,H,W] luma (same weights as cv2 RGB2GRAY)."""
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.ndim == 3:
        return frames
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T,H,W,3] RGB or [T,H,W] gray, got shape {frames.shape}")
    import cv2

    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def split_pairs(frames_or_pairs) -> tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """(prev, next) arrays from a frame sequence or an explicit pair tuple."""
    if isinstance(frames_or_pairs, (tuple, list)):
        if len(frames_or_pairs) != 2:
            raise ValueError("a pair input must be a tuple (prev [N,H,W,3], next [N,H,W,3])")
        prev, nxt = frames_or_pairs
        if tuple(prev.shape) != tuple(nxt.shape):
            raise ValueError(f"prev and next differ in shape: {tuple(prev.shape)} vs {tuple(nxt.shape)}")
        return prev, nxt
    frames = frames_or_pairs
    if frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frames to compute flow, got {frames.shape[0]}")
    return frames[:-1], frames[1:]


def compute_flow(frames_or_pairs, method: str = "dis", device: str | torch.device = "cpu",
                 **params) -> torch.Tensor:
    """Optical flow ``float32 [N,2,H,W]`` (u, v pixels, frame t -> t+1) by ``method``.

    Methods: ``"dis"`` (OpenCV DIS, MEDIUM preset), ``"farneback"``, ``"opencv-tvl1"``
    (OpenCV DualTVL1 defaults) and ``"tvl1"`` (ours, PyTorch, batched, runs on ``device``;
    ``preset="default"|"fast"``, ``compile=None|True|False``, see :mod:`deepvideo.flow.tvl1`).
    ``params`` go to the method. The OpenCV methods run on the CPU; their result is moved to
    ``device``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "tvl1":
        from deepvideo.flow.tvl1 import gray_float, tvl1_flow

        if isinstance(frames_or_pairs, (tuple, list)):
            prev, nxt = split_pairs(frames_or_pairs)
            return tvl1_flow(gray_float(prev, device), gray_float(nxt, device), **params)
        split_pairs(frames_or_pairs)  # validates the frame count
        gray = gray_float(frames_or_pairs, device)
        return tvl1_flow(gray[:-1], gray[1:], **params)
    from deepvideo.flow import opencv_methods as ocv

    fn = {"dis": ocv.dis_flow, "farneback": ocv.farneback_flow, "opencv-tvl1": ocv.opencv_tvl1_flow}[method]
    if isinstance(frames_or_pairs, (tuple, list)):
        prev, nxt = split_pairs(frames_or_pairs)
        p, n = _gray_numpy(_to_numpy(prev)), _gray_numpy(_to_numpy(nxt))
    else:
        split_pairs(frames_or_pairs)
        gray = _gray_numpy(_to_numpy(frames_or_pairs))
        p, n = gray[:-1], gray[1:]
    if p.shape[0] == 0:
        return torch.zeros((0, 2, *p.shape[1:]), dtype=torch.float32, device=device)
    return torch.from_numpy(fn(p, n, **params)).to(device)
