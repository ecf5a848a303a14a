"""T-ResNet for dynamic scene recognition (Feichtenhofer, Pinz & Wildes, CVPR 2017 "Temporal
residual networks for dynamic scene recognition"; thesis ch. 7).

A ResNet-50 on RGB only, run on ``T`` frames. The first and third residual unit of each of
conv2_x ... conv5_x get a temporal branch parallel to the unit's 3x3 conv:
``x_{l,t} = W_{l,t} f(W_{l,1} x_l) + b_l`` (``1x1x3`` filters, random init, zero "same"
padding in time) and ``F = f(W_{l,3}(S_l f(x_{l,t}) + f(W_{l,2} f(x_{l,1}))))`` with ``S_l`` a
channel-wise scale initialized to 0.01, so training starts close to the image ResNet. The
temporal branch is pre-activated as the chapter describes (He et al. 2016, identity mappings):
batch norm and ReLU come *before* its temporal conv, so the branch computes
``S_l · f(W_{l,t} f(BN_t(h_1)) + b_l)`` on the first conv's activation ``h_1`` (its own BN,
then ReLU, then the ``1x1x3`` conv), where the unit's main path is conv -> BN -> ReLU.
After conv5_x: spatial global average pooling, then global max pooling over time (about 2%
better than averaging) -> ``[N, K]``.

Reported on YUP++ (static / moving camera / entire): T-ResNet 92.4 / 81.5 / 89.0; ResNet
86.5 / 73.5 / 85.9.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import resnet
from deepvideo.nn.inputs import rgb_input
from deepvideo.nn.resnet_streams import ResNetStream
from deepvideo.spec import InputSpec

PAPER = "Feichtenhofer, Pinz & Wildes, Temporal Residual Networks for Dynamic Scene Recognition, CVPR 2017"


class TemporalBranch(nn.Module):
    """``S * relu(W_t relu(BN(h)) + b)``: pre-activated (BN, ReLU, then the ``1x1xT`` conv with the
    spatial stride of the parallel 3x3 conv), then ReLU and the channel-wise scale S."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        time_kernel: int = 3,
        scale_init: float = 0.01,
    ):
        super().__init__()
        self.norm = nn.BatchNorm3d(in_channels)
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            (time_kernel, 1, 1),
            stride=(1, stride, stride),
            padding=(time_kernel // 2, 0, 0),
        )
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)
        self.scale = nn.Parameter(torch.full((1, out_channels, 1, 1, 1), float(scale_init)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.relu(self.conv(torch.relu(self.norm(h))))


class TResNet(nn.Module):
    """RGB-only ResNetStream with temporal branches; takes ``batch["rgb"] [N, 3, T, H, W]``."""

    def __init__(
        self,
        stream: ResNetStream,
        units: Sequence[int] = (0, 2),
        time_kernel: int = 3,
        scale_init: float = 0.01,
    ):
        super().__init__()
        self.stream = stream
        self.branch_units = []
        for s, stage in enumerate(stream.stages):
            for u in units:
                if u >= len(stage):
                    continue
                unit = stage[u]
                block = unit.block
                stride = block.conv2.stride[-1] if isinstance(block, Bottleneck) else block.conv1.stride[-1]
                in_ch = unit.mid_channels if isinstance(block, Bottleneck) else block.conv1.in_channels
                unit.parallel = TemporalBranch(in_ch, unit.mid_channels, stride, time_kernel, scale_init)
                self.branch_units.append((s, u))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.stream(rgb_input(batch))


def t_resnet(
    num_classes: int = 20,
    depth: int = 50,
    width: float = 1.0,
    units: Sequence[int] = (0, 2),
    time_kernel: int = 3,
    scale_init: float = 0.01,
    temporal_pool: str = "max",
    dropout: float = 0.0,
) -> TResNet:
    net = resnet(depth, num_classes=num_classes, width=width)
    stream = ResNetStream(net, num_classes, temporal_head=temporal_pool, dropout=dropout)
    return TResNet(stream, units, time_kernel, scale_init)


register_model(
    "t_resnet50",
    t_resnet,
    InputSpec(modalities=("rgb",), num_frames=16, frame_stride=(5, 15)),
    paper=PAPER,
    summary="T-ResNet-50: temporal residual branches in units 1 and 3, temporal max pool",
)
register_model(
    "t_resnet_small",
    t_resnet,
    InputSpec(modalities=("rgb",), num_frames=8, frame_stride=(1, 3), crop_size=112),
    paper=PAPER,
    summary="CPU T-ResNet: ResNet-50 at 1/8 width, 8 frames, 112 crop (dynamic-scenes synth)",
    width=0.125,
)
