"""Initialization of a motion stream's first conv from the RGB filters, two recipes:

- ``"tsn"``, cross-modality pre-training (Wang et al., Temporal Segment Networks, ECCV 2016):
  average the filters over the 3 input channels and replicate that average across the new
  channels, ``w'[:, k] = (1/3) Σ_c w[:, c]``.
- ``"st_resnet"``, replication (Feichtenhofer, Pinz & Wildes, ST-ResNet, NIPS 2016, thesis ch. 4:
  "motion conv1 replicated to 2L = 20 channels"): the RGB filters are repeated across the new
  channels in turn, ``w'[:, k] = (3 / C') w[:, k mod 3]``; the factor ``3 / C'`` keeps the
  scale of the response (when ``C'`` is a multiple of 3 the weights summed over the input
  channels equal the RGB filter's, so a uniform input gives the RGB response). This is our
  reading of "replicated": the colour structure of the filters is kept, not averaged away.
"""

from __future__ import annotations

import torch
from torch import nn


def cross_modality_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``[C_out, C_rgb, ...]`` -> ``[C_out, in_channels, ...]``: channel mean, replicated."""
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(weight.shape[0], in_channels, *weight.shape[2:]).clone()


def replicated_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``[C_out, C_rgb, ...]`` -> ``[C_out, in_channels, ...]``: channel ``k`` is RGB channel
    ``k mod C_rgb``, scaled by ``C_rgb / in_channels`` (ST-ResNet's replication)."""
    index = torch.arange(in_channels, device=weight.device) % weight.shape[1]
    return weight[:, index] * (weight.shape[1] / in_channels)


RGB_INITS = {"tsn": cross_modality_weight, "st_resnet": replicated_weight}


def cross_modality_conv(
    conv: nn.Conv2d | nn.Conv3d, in_channels: int, init: str = "tsn"
) -> nn.Conv2d | nn.Conv3d:
    """A copy of ``conv`` taking ``in_channels`` inputs, initialized from its filters by ``init``
    (``"tsn"``: averaged and replicated; ``"st_resnet"``: replicated, see the module docstring)."""
    if init not in RGB_INITS:
        raise ValueError(f"unknown initialization from RGB {init!r}; choose one of {sorted(RGB_INITS)}")
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
        new.weight.copy_(RGB_INITS[init](conv.weight.detach(), in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def first_conv(model: nn.Module) -> tuple[str, nn.Module]:
    """Qualified name and module of the first Conv2d/Conv3d of ``model`` (definition order)."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return name, m
    raise ValueError(f"{type(model).__name__} has no convolution")


def adapt_input_channels(model: nn.Module, in_channels: int, init: str = "tsn") -> nn.Module:
    """Replace ``model``'s first conv in place by a copy taking ``in_channels`` inputs,
    initialized from its filters by ``init`` (see :data:`RGB_INITS`); returns ``model``."""
    name, conv = first_conv(model)
    if conv.in_channels == in_channels:
        return model
    parent = model
    *path, leaf = name.split(".")
    for p in path:
        parent = getattr(parent, p)
    setattr(parent, leaf, cross_modality_conv(conv, in_channels, init))
    return model
