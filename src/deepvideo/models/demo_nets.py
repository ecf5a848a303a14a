"""Tiny two-stream ConvNets for CPU demos and tests.

Miniatures of the spatial and temporal streams of Simonyan & Zisserman 2014 ("Two-Stream
Convolutional Networks for Action Recognition in Videos"): the same layout as CNN-M
(a 7x7 stride-2 conv1 with pooling, a 5x5 stride-2 conv2, a 3x3 conv3) with 16/32/64
channels instead of 96/256/512, batch norm instead of LRN, and global average pooling
instead of the fully connected fc6/fc7, so the nets run at any frame size (fully
convolutional testing) and train in seconds on a CPU.

* ``demo_spatial_cnn``: one RGB frame per snippet, ``rgb [N, 3, K, H, W]``.
* ``demo_temporal_cnn``: a stack of L flow fields per snippet, ``flow [N, 2, K*L, H, W]``,
  viewed as ``2L`` input channels ordered ``(x_1, y_1, x_2, y_2, ...)`` as in the paper's
  flow stacking ``I(u, v, 2k-1) = d^x_k``, ``I(u, v, 2k) = d^y_k``.

With K > 1 snippets the class scores of the snippets are averaged (segmental consensus).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.spec import InputSpec

PAPER = "Simonyan & Zisserman 2014, Two-Stream Convolutional Networks for Action Recognition in Videos"


def _conv_bn(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCNN(nn.Module):
    """conv1 7x7/2 + pool, conv2 5x5/2, conv3 3x3, global average pool, dropout, linear."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(in_channels, width, 7, 2), nn.MaxPool2d(2),
            _conv_bn(width, 2 * width, 5, 2),
            _conv_bn(2 * width, 4 * width, 3, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))


class DemoSpatialNet(nn.Module):
    """Spatial stream: a TinyCNN on each RGB snippet frame; snippet scores averaged."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.5):
        super().__init__()
        self.net = TinyCNN(3, num_classes, width, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = batch["rgb"]  # [N, 3, K, H, W]
        n, c, k, h, w = rgb.shape
        logits = self.net(rgb.permute(0, 2, 1, 3, 4).reshape(n * k, c, h, w))
        return logits.view(n, k, -1).mean(dim=1)


class DemoTemporalNet(nn.Module):
    """Temporal stream: a TinyCNN on each stack of ``flow_stack`` flow fields (2L channels)."""

    def __init__(self, num_classes: int, flow_stack: int = 5, width: int = 16, dropout: float = 0.5):
        super().__init__()
        self.flow_stack = flow_stack
        self.net = TinyCNN(2 * flow_stack, num_classes, width, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        flow = batch["flow"]  # [N, 2, K*L, H, W]
        n, c, t, h, w = flow.shape
        stack = self.flow_stack
        if c != 2 or t % stack:
            raise ValueError(f"flow must be [N, 2, K*{stack}, H, W], got {tuple(flow.shape)}")
        k = t // stack
        x = flow.view(n, 2, k, stack, h, w).permute(0, 2, 3, 1, 4, 5).reshape(n * k, 2 * stack, h, w)
        return self.net(x).view(n, k, -1).mean(dim=1)


def demo_spatial_cnn(num_classes: int = 8, width: int = 16, dropout: float = 0.5) -> DemoSpatialNet:
    return DemoSpatialNet(num_classes, width, dropout)


def demo_temporal_cnn(num_classes: int = 8, flow_stack: int = 5, width: int = 16,
                      dropout: float = 0.5) -> DemoTemporalNet:
    return DemoTemporalNet(num_classes, flow_stack, width, dropout)


register_model("demo_spatial_cnn", demo_spatial_cnn,
               InputSpec(modalities=("rgb",), num_frames=1, crop_size=112), paper=PAPER,
               summary="tiny CPU spatial stream: one RGB frame, 3 convs, global pooling")
register_model("demo_temporal_cnn", demo_temporal_cnn,
               InputSpec(modalities=("flow",), num_frames=1, flow_stack=5, crop_size=112), paper=PAPER,
               summary="tiny CPU temporal stream: a stack of 5 flow fields (10 channels)", flow_stack=5)
