"""Temporal convolutions, their initializations, and temporal pooling.

* ``1x1xT'`` temporal convs (ST-ResNet, Feichtenhofer et al. NIPS 2016; ST-Mult, CVPR 2017)
  on maps ``[N, C, T, H, W]`` with "same" zero padding in time, initialized as

  - ``"average"``: a ``1x1`` conv ``w`` becomes ``w(i, j, t, c) = w(i, j, c) / T'`` (the 2D
    filter replicated over time and averaged; from identity this is ``1 (x) [1/T', ...]``);
  - ``"identity_avg"``: ``1 (x) [1/3, 1/3, 1/3]`` (identity over channels times a box filter);
  - ``"identity_center"``: ``1 (x) [0, 1, 0]`` (the layer starts as the identity);
  - ``"random"``: Kaiming-normal, bias 0.

* Global temporal max / average pooling over ``T`` (``x(i, j, c) = max_t x(i, j, t, c)``) and a
  windowed temporal max pool (ST-ResNet*: window 5, stride 2 after pool5).
"""

from __future__ import annotations

import torch
from torch import nn

TEMPORAL_INITS = ("average", "identity_avg", "identity_center", "random")


def init_temporal_filter(weight: torch.Tensor, init: str, spatial: torch.Tensor | None = None) -> None:
    """Fill a Conv3d ``weight [C_out, C_in, T', kh, kw]`` in place with a temporal initialization.

    ``spatial`` (``[C_out, C_in, kh, kw]``) is the 2D filter to spread over time for
    ``"average"``; without it the identity is used (so "average" = ``1 (x) [1/T', ...]``).
    """
    if init not in TEMPORAL_INITS:
        raise ValueError(f"unknown temporal init {init!r}; choose one of {TEMPORAL_INITS}")
    c_out, c_in, t, kh, kw = weight.shape
    with torch.no_grad():
        if init == "random":
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
            return
        if init == "average" and spatial is not None:
            if spatial.shape != (c_out, c_in, kh, kw):
                raise ValueError(
                    f"spatial filter {tuple(spatial.shape)} does not match {tuple(weight.shape)}"
                )
            weight.copy_(spatial.unsqueeze(2).expand_as(weight) / t)
            return
        if c_out != c_in:
            raise ValueError(f"identity-based temporal init needs C_out == C_in, got {c_out} and {c_in}")
        if init == "average":
            f = torch.full((t,), 1.0 / t)
        elif init == "identity_avg":
            f = torch.full((t,), 1.0 / t)
        else:
            f = torch.zeros(t)
            f[t // 2] = 1.0
        weight.zero_()
        eye = torch.eye(c_in, dtype=weight.dtype)
        weight[:, :, :, kh // 2, kw // 2] = eye[:, :, None] * f.to(weight.dtype)


def temporal_conv(
    channels: int,
    out_channels: int | None = None,
    time_kernel: int = 3,
    init: str = "identity_center",
    bias: bool = True,
    stride: int = 1,
) -> nn.Conv3d:
    """A ``1x1xT'`` conv over time with "same" padding and the chosen initialization."""
    out_channels = channels if out_channels is None else out_channels
    conv = nn.Conv3d(
        channels,
        out_channels,
        (time_kernel, 1, 1),
        stride=(1, stride, stride),
        padding=(time_kernel // 2, 0, 0),
        bias=bias,
    )
    init_temporal_filter(conv.weight, init)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def temporalize_conv(conv: nn.Conv3d, time_kernel: int = 3, init: str = "average") -> nn.Conv3d:
    """Turn a Conv3d with temporal extent 1 into one with extent ``time_kernel`` ("same" padding).

    ``"average"`` replicates the spatial filter over time and divides by ``T'`` (ST-ResNet), so
    on a temporally constant input the new conv gives the old output.
    """
    if conv.kernel_size[0] != 1:
        raise ValueError(f"expected a conv with temporal kernel 1, got {conv.kernel_size}")
    new = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        (time_kernel, *conv.kernel_size[1:]),
        stride=conv.stride,
        padding=(time_kernel // 2, *conv.padding[1:]),
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    spatial = conv.weight.detach()[:, :, 0]
    if init == "average":
        init_temporal_filter(new.weight, "average", spatial)
    elif init == "identity_center":
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, :, time_kernel // 2] = spatial
    else:
        init_temporal_filter(new.weight, init)
    if conv.bias is not None:
        with torch.no_grad():
            new.bias.copy_(conv.bias)
    return new


def temporal_pool(x: torch.Tensor, mode: str = "max") -> torch.Tensor:
    """Global pooling over ``T`` (dim 2) of ``[N, C, T, ...]`` -> ``[N, C, ...]``."""
    if x.dim() < 3:
        raise ValueError(f"temporal_pool needs [N, C, T, ...], got {tuple(x.shape)}")
    if mode == "max":
        return x.amax(dim=2)
    if mode in ("avg", "mean"):
        return x.mean(dim=2)
    raise ValueError(f"unknown temporal pooling {mode!r}; use 'max' or 'avg'")


class TemporalPool(nn.Module):
    """Global temporal max/avg pooling as a module."""

    def __init__(self, mode: str = "max"):
        super().__init__()
        temporal_pool(torch.zeros(1, 1, 1), mode)  # validate early
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_pool(x, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class TemporalMaxPool1d(nn.Module):
    """Windowed max over time on ``[N, C, T]`` (ST-ResNet*: window 5, stride 2, 11 -> 4)."""

    def __init__(self, window: int = 5, stride: int = 2):
        super().__init__()
        self.window, self.stride = window, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.window:
            raise ValueError(
                f"temporal max pooling window {self.window} exceeds the {x.shape[-1]} time steps; "
                "feed more chunks or lower the window"
            )
        return nn.functional.max_pool1d(x, self.window, self.stride)
