"""Cross-modality initialization of a stream's first conv (TSN, Wang et al. 2016).

A motion stream taking ``2L`` stacked flow channels (or a network taking any other channel
count) starts from the RGB filters: average them over the 3 input channels and replicate the
average across the new channels. ST-ResNet's motion conv1 (``2L = 20``) is initialized this way.
"""

from __future__ import annotations

import torch
from torch import nn


def cross_modality_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``[C_out, C_rgb, ...]`` -> ``[C_out, in_channels, ...]``: channel mean, replicated."""
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(weight.shape[0], in_channels, *weight.shape[2:]).clone()


def cross_modality_conv(conv: nn.Conv2d | nn.Conv3d, in_channels: int) -> nn.Conv2d | nn.Conv3d:
    """A copy of ``conv`` taking ``in_channels`` inputs, initialized from its averaged filters."""
    if not isinstance(conv, (nn.Conv2d, nn.Conv3d)):
        raise TypeError(f"expected a Conv2d/Conv3d, got {type(conv).__name__}")
    if conv.groups != 1:
        raise ValueError("cross-modality initialization needs an ungrouped first conv")
    cls = type(conv)
    new = cls(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        new.weight.copy_(cross_modality_weight(conv.weight.detach(), in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """Qualified name and module of the first Conv2d/Conv3d of ``model`` (definition order)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return name, m
    raise ValueError(f"{type(model).__name__} has no convolution")


def adapt_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace ``model``'s first conv in place by its cross-modality version; returns ``model``."""
    name, conv = first_conv(model)
    if conv.in_channels == in_channels:
        return model
    parent = model
    *path, leaf = name.split(".")
    for p in path:
        parent = getattr(parent, p)
    setattr(parent, leaf, cross_modality_conv(conv, in_channels))
    return model
