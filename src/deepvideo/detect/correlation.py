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
    """``[N, C, H, W]`` x2 -> ``[N, D², ceil(H / stride), ceil(W / stride)]`` (see the module
    docstring). One batched matrix product gives the inner products of every sampled position
    of ``x_t`` with every position of the zero-padded ``x_tau``; the ``D²`` displacements of each
    position are gathered from it (on small maps far cheaper than unfolding ``C * D²`` values
    per position)."""
    if x_t.shape != x_tau.shape:
        raise ValueError(f"correlation: both maps must have one shape, got {tuple(x_t.shape)} "
                         f"and {tuple(x_tau.shape)}")
    n, channels, height, width = x_t.shape
    steps = max_displacement // displacement_stride
    reach = steps * displacement_stride
    side = 2 * steps + 1
    a = x_t[:, :, ::stride, ::stride]
    rows_out, cols_out = a.shape[2:]
    padded = F.pad(x_tau, (reach, reach, reach, reach))
    gram = torch.bmm(a.flatten(2).transpose(1, 2), padded.flatten(2))  # [N, positions, padded positions]
    shifts = torch.arange(-steps, steps + 1, device=x_t.device) * displacement_stride + reach
    rows = (torch.arange(rows_out, device=x_t.device) * stride)[:, None, None, None] + shifts[:, None]
    cols = (torch.arange(cols_out, device=x_t.device) * stride)[None, :, None, None] + shifts
    index = (rows * (width + 2 * reach) + cols).reshape(1, rows_out * cols_out, side * side)
    result = gram.gather(2, index.expand(n, -1, -1)).transpose(1, 2)
    result = result.reshape(n, side * side, rows_out, cols_out)
    return result / channels if normalize else result
