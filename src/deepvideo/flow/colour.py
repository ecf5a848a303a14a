"""Colour coding of optical flow for people (thesis ch. 6; Baker et al. 2011, Middlebury).

- ``wheel``: the Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology
  for Optical Flow", IJCV 2011): direction -> hue over 55 colours (red-yellow 15, yellow-green
  6, green-cyan 4, cyan-blue 11, blue-magenta 13, magenta-red 6), magnitude -> saturation,
  normalised by the maximum radius (over the whole sequence unless given); beyond it the
  colour is darkened. With image y pointing down, +u (right) is red, +v (down) yellow-orange,
  -u (left) cyan-blue, -v (up) blue-violet.
- ``mag``: R = u, G = v, B = magnitude, each min-max scaled over the sequence (ch. 6).
- ``uv``: u and v as grayscale images side by side, min-max scaled over the sequence.

All take ``[2,H,W]`` or ``[T,2,H,W]`` flow (numpy or torch) and return uint8 RGB
``[...,H,W',3]`` numpy arrays.
"""

from __future__ import annotations

import numpy as np
import torch

CODINGS = ("wheel", "mag", "uv")
_SEGMENTS = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)),
             (4, (0, 255, 0), (0, 255, 255)), (11, (0, 255, 255), (0, 0, 255)),
             (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))


def colour_wheel() -> np.ndarray:
    """The 55 Middlebury wheel colours ``float [55,3]`` in 0..255, red first."""
    cols = []
    for n, start, end in _SEGMENTS:
        s, e = np.array(start, float), np.array(end, float)
        for i in range(n):
            cols.append(s + (e - s) * np.floor(255 * i / n) / 255)
    return np.array(cols)


def _flow_np(flow) -> np.ndarray:
    f = flow.detach().cpu().numpy() if isinstance(flow, torch.Tensor) else np.asarray(flow)
    if f.ndim not in (3, 4) or f.shape[-3] != 2:
        raise ValueError(f"flow must be [2,H,W] or [T,2,H,W], got shape {f.shape}")
    return f.astype(np.float32)


def flow_to_wheel(flow, max_radius: float | None = None) -> np.ndarray:
    """Middlebury colour coding; ``max_radius`` defaults to the largest magnitude in ``flow``."""
    f = _flow_np(flow)
    u, v = f[..., 0, :, :], f[..., 1, :, :]
    bad = ~np.isfinite(u) | ~np.isfinite(v)
    u, v = np.where(bad, 0, u), np.where(bad, 0, v)
    mag = np.sqrt(u * u + v * v)
    if max_radius is None:
        max_radius = float(mag.max())
    rad = mag / max(max_radius, 1e-9)
    wheel = colour_wheel() / 255.0
    n = len(wheel)
    a = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; +u -> 1 -> the last colour (red)
    fk = (a + 1) / 2 * (n - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % n
    frac = (fk - k0)[..., None]
    col = (1 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (rad <= 1)[..., None]
    col = np.where(inside, 1 - rad[..., None] * (1 - col), col * 0.75)
    col[bad] = 0
    return np.clip(np.floor(255 * col), 0, 255).astype(np.uint8)


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def flow_to_mag(flow) -> np.ndarray:
    """R = u, G = v, B = magnitude, each min-max scaled over the whole input."""
    f = _flow_np(flow)
    u, v = f[..., 0, :, :], f[..., 1, :, :]
    rgb = np.stack([_minmax(u), _minmax(v), _minmax(np.sqrt(u * u + v * v))], -1)
    return np.round(rgb * 255).astype(np.uint8)


def flow_to_uv(flow) -> np.ndarray:
    """u | v grayscale side by side (width doubled), min-max scaled over the whole input."""
    f = _flow_np(flow)
    uv = np.concatenate([_minmax(f[..., 0, :, :]), _minmax(f[..., 1, :, :])], -1)
    return np.repeat(np.round(uv * 255).astype(np.uint8)[..., None], 3, -1)


def colour_code(flow, coding: str = "wheel") -> np.ndarray:
    """Dispatch on ``coding`` in :data:`CODINGS`."""
    if coding == "wheel":
        return flow_to_wheel(flow)
    if coding == "mag":
        return flow_to_mag(flow)
    if coding == "uv":
        return flow_to_uv(flow)
    raise ValueError(f"unknown flow coding {coding!r}; choose one of {', '.join(CODINGS)}")
