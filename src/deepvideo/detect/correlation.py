"""The correlation layer of D&T (Feichtenhofer, Pinz & Zisserman, ICCV 2017; FlowNet's layer,
Dosovitskiy et al. 2015, with a 1x1 patch):

``x_corr(i, j, p, q) = <x_t(i, j), x_{t+τ}(i + p, j + q)>`` for ``|p|, |q| <= d`` (d = 8),

one output channel per displacement ``(p, q)`` in row-major order (p the vertical shift), zero
where ``(i + p, j + q)`` falls outside the map. ``stride`` samples the positions ``(i, j)`` and
``displacement_stride`` the displacements: D&T correlates conv3 (stride 8) with stride 2 so
its map matches conv4/conv5 (stride 16). ``normalize`` divides by the channel count, as the
Caffe/FlowNet layer D&T used does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["MAX_DISPLACEMENT", "correlation", "correlation_channels"]

MAX_DISPLACEMENT = 8  # d of D&T


def correlation_channels(max_displacement: int = MAX_DISPLACEMENT, displacement_stride: int = 1) -> int:
    return (2 * (max_displacement // displacement_stride) + 1) ** 2


def correlation(x_t: torch.Tensor, x_tau: torch.Tensor, max_displacement: int = MAX_DISPLACEMENT,
                stride: int = 1, displacement_stride: int = 1, normalize: bool = False) -> torch.Tensor:
    """``[N, C, H, W]`` x2 -> ``[N, D², ceil(H / stride), ceil(W / stride)]`` (see the module docstring)."""
    if x_t.shape != x_tau.shape:
        raise ValueError(f"correlation: both maps must have one shape, got {tuple(x_t.shape)} "
                         f"and {tuple(x_tau.shape)}")
    d = max_displacement
    a = x_t[:, :, ::stride, ::stride]
    padded = F.pad(x_tau, (d, d, d, d))
    height, width = x_t.shape[2], x_t.shape[3]
    steps = range(-(d // displacement_stride) * displacement_stride, d + 1, displacement_stride)
    out = []
    for p in steps:
        for q in steps:
            shifted = padded[:, :, d + p:d + p + height:stride, d + q:d + q + width:stride]
            out.append((a * shifted).sum(1))
    result = torch.stack(out, 1)
    return result / x_t.shape[1] if normalize else result
