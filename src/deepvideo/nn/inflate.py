"""Inflation of 2D convolutions and whole 2D networks to 3D (I3D, Carreira & Zisserman 2017).

A ``k x k`` filter becomes ``t x k x k``: either repeated ``t`` times along time and divided by
``t`` (``init="mean"``, so a video of one repeated frame gives the 2D network's activations), or
placed at the centre time step with zeros elsewhere (``init="center"``, the 3D conv starts as
the 2D conv applied frame by frame).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

TimeKernel = int | Callable[[str, nn.Conv2d], int | tuple[int, int, int]]


def inflate_conv2d(
    conv: nn.Conv2d,
    time_kernel: int = 1,
    init: str = "mean",
    time_stride: int = 1,
    time_padding: int | None = None,
    time_dilation: int = 1,
) -> nn.Conv3d:
    """Conv3d with ``conv``'s spatial geometry and weights spread over ``time_kernel`` frames.

    ``time_padding`` defaults to ``time_kernel // 2`` ("same" for odd kernels).
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"inflate_conv2d expects nn.Conv2d, got {type(conv).__name__}")
    if init not in ("mean", "center"):
        raise ValueError(f"unknown inflation init {init!r}; use 'mean' or 'center'")
    if isinstance(conv.padding, str):
        raise ValueError("inflate_conv2d needs numeric padding, got padding=" + repr(conv.padding))
    t_pad = time_kernel // 2 if time_padding is None else time_padding
    new = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        (time_kernel, *conv.kernel_size),
        stride=(time_stride, *conv.stride),
        padding=(t_pad, *conv.padding),
        dilation=(time_dilation, *conv.dilation),
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    w = conv.weight.detach()
    with torch.no_grad():
        if init == "mean":
            new.weight.copy_(w.unsqueeze(2).expand_as(new.weight) / time_kernel)
        else:
            new.weight.zero_()
            new.weight[:, :, time_kernel // 2] = w
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new.to(w.device)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _inflate_leaf(name: str, m: nn.Module, time_kernel: TimeKernel, init: str) -> nn.Module | None:
    if isinstance(m, nn.Conv2d):
        tk = time_kernel(name, m) if callable(time_kernel) else time_kernel
        tk, ts, tp = (tk, 1, None) if isinstance(tk, int) else tk
        return inflate_conv2d(m, tk, init=init, time_stride=ts, time_padding=tp)
    if isinstance(m, nn.BatchNorm2d):
        bn = nn.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
        bn.load_state_dict(m.state_dict())
        return bn.train(m.training)
    if isinstance(m, nn.MaxPool2d):
        return nn.MaxPool3d(
            (1, *_pair(m.kernel_size)),
            (1, *_pair(m.stride)),
            (0, *_pair(m.padding)),
            (1, *_pair(m.dilation)),
            ceil_mode=m.ceil_mode,
        )
    if isinstance(m, nn.AvgPool2d):
        return nn.AvgPool3d(
            (1, *_pair(m.kernel_size)),
            (1, *_pair(m.stride)),
            (0, *_pair(m.padding)),
            ceil_mode=m.ceil_mode,
            count_include_pad=m.count_include_pad,
        )
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d((None, *_pair(m.output_size)))
    if isinstance(m, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveMaxPool3d((None, *_pair(m.output_size)))
    if isinstance(m, nn.Dropout2d):
        return nn.Dropout3d(m.p)
    return None


def inflate_module(model2d: nn.Module, time_kernel: TimeKernel = 1, init: str = "mean") -> nn.Module:
    """A deep copy of ``model2d`` with every 2D conv/BN/pool replaced by its 3D counterpart.

    ``time_kernel`` is an int for every conv, or ``f(qualified_name, conv2d)`` returning an int or
    ``(kernel, stride, padding)`` per conv. Pools get temporal extent 1; adaptive pools keep the
    time axis (``(None, h, w)``). Element-wise layers, LRN and Linear work unchanged on 5D input;
    a ``forward`` that flattens ``[N, C, H, W]`` must be adapted by the caller.
    """
    model = copy.deepcopy(model2d)
    root = _inflate_leaf("", model, time_kernel, init)
    if root is not None:
        return root.train(model.training)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            new = _inflate_leaf(full, child, time_kernel, init)
            if new is not None:
                setattr(module, child_name, new.train(child.training))
    return model
