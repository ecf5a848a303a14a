"""Fusion functions for two streams of feature maps (Feichtenhofer, Pinz, Zisserman, CVPR 2016).

Given maps ``x^a, x^b`` of shape ``[N, D, (T,) H, W]`` (or feature vectors ``[N, D]``):

* sum ``y = x^a + x^b``; max ``y = max(x^a, x^b)``;
* concatenation: ``2D`` channels, interleaved ``a_1, b_1, a_2, b_2, ...``. The paper's eq. 3.3,
  ``y_{2d} = x^a_d``, ``y_{2d-1} = x^b_d`` (1-based), orders each pair the other way round
  (``b_1, a_1, b_2, a_2, ...``): ours is that order with the two channels of every pair swapped, a
  fixed permutation that the next layer's weights absorb (its sum initialization repeats each
  weight for both channels of a pair, so it is the same either way). Conv fusion concatenates
  ``[x^a, x^b]`` without interleaving, again a permutation of the rows of the paper's ``f``;
* conv: ``y = y^cat * f + b`` with ``f`` a ``1x1x2DxD`` filter initialized as two stacked
  identity matrices, so the layer starts as the sum fusion;
* bilinear: ``y = sum_{i,j} x^a_{ij}^T x^b_{ij}`` (a ``D^2`` vector per sample), followed by a
  signed square root and L2 normalization;
* 3D conv fusion (:class:`Conv3dFusion`): a ``3x3x3x2DxD'`` filter over ``T`` chunks, initialized
  as stacked identities (the temporal stream's identity scaled by 3 because its activations are
  about 3x lower) times a ``3x3x3`` Gaussian with sigma 1, followed in the final architecture by
  3D max pooling (:func:`fusion_pool3d`).

Two maps of different spatial size are aligned by zero padding the smaller one at the bottom /
right (VGG-M's ``13x13`` conv5 padded to VGG-16's ``14x14``), see :func:`align_spatial`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("sum", "max", "concat", "conv", "bilinear")


def align_spatial(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad the spatially smaller map (bottom/right) so ``a`` and ``b`` have the same H, W."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"cannot fuse maps of batch sizes {a.shape[0]} and {b.shape[0]}")
    if a.dim() < 4 or a.shape[-2:] == b.shape[-2:]:
        return a, b
    h, w = max(a.shape[-2], b.shape[-2]), max(a.shape[-1], b.shape[-1])

    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))

    return pad(a), pad(b)


def _check(a: torch.Tensor, b: torch.Tensor, same_channels: bool = True) -> None:
    if a.dim() != b.dim():
        raise ValueError(f"fusion inputs must have the same rank, got {tuple(a.shape)} and {tuple(b.shape)}")
    if same_channels and a.shape[1] != b.shape[1]:
        raise ValueError(
            f"this fusion needs equal channel counts, got {a.shape[1]} and {b.shape[1]}; "
            "use 'concat' or 'conv' fusion for streams of different widths"
        )


def fuse_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = align_spatial(a, b)
    _check(a, b)
    return a + b


def fuse_max(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = align_spatial(a, b)
    _check(a, b)
    return torch.maximum(a, b)


def fuse_concat(a: torch.Tensor, b: torch.Tensor, interleave: bool = True) -> torch.Tensor:
    """Stack along channels; ``interleave`` orders them ``a_1, b_1, a_2, b_2, ...`` (needs equal D)."""
    a, b = align_spatial(a, b)
    _check(a, b, same_channels=interleave)
    if not interleave:
        return torch.cat([a, b], dim=1)
    y = torch.stack([a, b], dim=2)  # [N, D, 2, ...]
    return y.flatten(1, 2)


def fuse_bilinear(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Bilinear pooling ``sum_locations a b^T`` -> ``[N, Da*Db]``, signed sqrt, L2-normalized.

    The sum runs over every spatial (and temporal) location, so the result has no spatial
    layout; the paper feeds it to a linear SVM.
    """
    a, b = align_spatial(a, b)
    _check(a, b, same_channels=False)
    n = a.shape[0]
    fa = a.reshape(n, a.shape[1], -1)
    fb = b.reshape(n, b.shape[1], -1)
    y = torch.bmm(fa, fb.transpose(1, 2)).flatten(1)  # [N, Da*Db]
    y = torch.sign(y) * torch.sqrt(y.abs() + eps)
    return F.normalize(y, dim=1)


class ConvFusion(nn.Module):
    """``1x1`` conv over the concatenation ``[x^a, x^b]`` (2D -> D), initialized as the sum.

    Works on maps ``[N, D, ...]`` of any rank and on vectors ``[N, D]`` (then it is a linear layer
    over ``2D`` inputs), so it can fuse at conv and at FC layers.
    """

    def __init__(self, channels_a: int, channels_b: int | None = None, out_channels: int | None = None):
        super().__init__()
        channels_b = channels_a if channels_b is None else channels_b
        out_channels = channels_a if out_channels is None else out_channels
        self.channels_a, self.channels_b = channels_a, channels_b
        self.weight = nn.Parameter(torch.empty(out_channels, channels_a + channels_b))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Two stacked identity matrices (truncated/padded when widths differ), bias 0."""
        with torch.no_grad():
            self.weight.zero_()
            out = self.weight.shape[0]
            ka, kb = min(out, self.channels_a), min(out, self.channels_b)
            self.weight[:ka, :ka] = torch.eye(ka)
            self.weight[:kb, self.channels_a : self.channels_a + kb] = torch.eye(kb)
            self.bias.zero_()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = align_spatial(a, b)
        _check(a, b, same_channels=False)
        y = torch.cat([a, b], dim=1).movedim(1, -1)
        return F.linear(y, self.weight, self.bias).movedim(-1, 1)


def gaussian_kernel3d(size: int = 3, sigma: float = 1.0) -> torch.Tensor:
    """Isotropic ``size^3`` Gaussian normalized to sum 1."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return (k / k.sum()).float()


class Conv3dFusion(nn.Module):
    """3D conv fusion of two streams over ``T`` chunks: ``[N, Da, T, H, W] + [N, Db, T, H, W]``.

    Weight ``W[o, i, t, y, x] = I[o, i] * s_i * G[t, y, x]``: stacked identities (``s = 1`` for the
    first, spatial stream and ``s = temporal_scale = 3`` for the second, temporal stream) times a
    ``kernel^3`` Gaussian with ``sigma``. Normalisation: the Gaussian sums to 1, so at the start the
    layer outputs a Gaussian-smoothed ``x^a + 3 x^b`` (exactly that on a constant input away from
    the zero-padded borders). Padding is "same" in space and time.
    """

    def __init__(
        self,
        channels_a: int,
        channels_b: int | None = None,
        out_channels: int | None = None,
        kernel_size: int = 3,
        temporal_scale: float = 3.0,
        sigma: float = 1.0,
    ):
        super().__init__()
        channels_b = channels_a if channels_b is None else channels_b
        out_channels = channels_a if out_channels is None else out_channels
        self.channels_a, self.channels_b = channels_a, channels_b
        self.temporal_scale, self.sigma = temporal_scale, sigma
        self.conv = nn.Conv3d(channels_a + channels_b, out_channels, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        out = self.conv.out_channels
        g = gaussian_kernel3d(self.conv.kernel_size[0], self.sigma)
        with torch.no_grad():
            w = torch.zeros(out, self.channels_a + self.channels_b)
            ka, kb = min(out, self.channels_a), min(out, self.channels_b)
            w[:ka, :ka] = torch.eye(ka)
            w[:kb, self.channels_a : self.channels_a + kb] = self.temporal_scale * torch.eye(kb)
            self.conv.weight.copy_(w[:, :, None, None, None] * g)
            self.conv.bias.zero_()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dim() != 5 or b.dim() != 5:
            raise ValueError(
                f"Conv3dFusion needs [N, C, T, H, W] maps, got {tuple(a.shape)}, {tuple(b.shape)}"
            )
        a, b = align_spatial(a, b)
        return self.conv(torch.cat([a, b], dim=1))


def fusion_pool3d(kernel_size: int = 3, spatial_stride: int = 2, temporal_stride: int = 2) -> nn.MaxPool3d:
    """3D max pooling after 3D conv fusion: ``3x3x3``, "same" temporal padding, Caffe ceil mode."""
    return nn.MaxPool3d(
        kernel_size,
        stride=(temporal_stride, spatial_stride, spatial_stride),
        padding=(kernel_size // 2, 0, 0),
        ceil_mode=True,
    )


class Fusion(nn.Module):
    """One fusion function as a module: ``Fusion("conv", channels=512)(x_a, x_b)``.

    ``out_channels`` tells the next layer what it receives (``2D`` for concat, ``D^2`` for
    bilinear, ``D`` otherwise).
    """

    def __init__(self, kind: str, channels: int, channels_b: int | None = None):
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"unknown fusion {kind!r}; choose one of {FUSIONS}")
        self.kind = kind
        channels_b = channels if channels_b is None else channels_b
        self.conv = ConvFusion(channels, channels_b) if kind == "conv" else None
        self.out_channels = {"concat": channels + channels_b, "bilinear": channels * channels_b}.get(
            kind, channels
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.kind == "sum":
            return fuse_sum(a, b)
        if self.kind == "max":
            return fuse_max(a, b)
        if self.kind == "concat":
            return fuse_concat(a, b, interleave=a.shape[1] == b.shape[1])
        if self.kind == "bilinear":
            return fuse_bilinear(a, b)
        return self.conv(a, b)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, out_channels={self.out_channels}"
