"""Classifier heads: global pooling + linear layer, and removing a 2D backbone's classifier."""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.nn.backbones2d import LayeredNet, ResNet2d


class ClassifierHead(nn.Module):
    """Global average pool over (T, H, W), dropout, linear layer."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


def strip_classifier(backbone: nn.Module) -> tuple[nn.Module, int]:
    """Replace the backbone's classifier by identity (in place); returns (backbone, feature dimension).

    Knows :class:`~deepvideo.nn.backbones2d.ResNet2d` (its ``fc``) and
    :class:`~deepvideo.nn.backbones2d.LayeredNet` (its last layer, a linear one).
    """
    if isinstance(backbone, ResNet2d):
        backbone.fc = nn.Identity()
        return backbone, backbone.num_features
    if isinstance(backbone, LayeredNet):
        last = backbone.layer_names()[-1]
        layer = getattr(backbone, last)
        if not isinstance(layer, nn.Linear):
            kind = type(layer).__name__
            raise TypeError(f"the last layer {last!r} of this LayeredNet is a {kind}, not a Linear")
        setattr(backbone, last, nn.Identity())
        return backbone, layer.in_features
    raise TypeError(f"cannot find the classifier of {type(backbone).__name__}: use a ResNet2d or LayeredNet")
