"""The inflated Inception-v1 trunk of I3D (Carreira & Zisserman, CVPR 2017) with an injected
k×k×k conv builder, so S3D (Xie et al., ECCV 2018) swaps in separable convs; optional S3D-G
feature gating."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.nn.conv import ConvNormAct, NormBuilder, norm_builder, resolve_norm
from deepvideo.nn.inputs import rgb_input

# (in, b0, b1 reduce, b1, b2 reduce, b2, b3 pool-proj) for Mixed_3b .. Mixed_5c
INCEPTION_V1 = {
    "3b": (192, 64, 96, 128, 16, 32, 32),
    "3c": (256, 128, 128, 192, 32, 96, 64),
    "4b": (480, 192, 96, 208, 16, 48, 64),
    "4c": (512, 160, 112, 224, 24, 64, 64),
    "4d": (512, 128, 128, 256, 24, 64, 64),
    "4e": (512, 112, 144, 288, 32, 64, 64),
    "4f": (528, 256, 160, 320, 32, 128, 128),
    "5b": (832, 256, 160, 320, 32, 128, 128),
    "5c": (832, 384, 192, 384, 48, 128, 128),
}

# A k×k×k conv: (in, out, kernel, stride, norm) -> module (ConvNormAct or a separable pair)
SpatioTemporalConv = Callable[[int, int, int, int, NormBuilder], nn.Module]


def conv_norm_act3d(i: int, o: int, k: int, s: int, norm: NormBuilder) -> nn.Module:
    """I3D's k×k×k conv, norm, ReLU (the default :data:`SpatioTemporalConv`)."""
    return ConvNormAct(i, o, k, s, norm=norm)


class SelfGating(nn.Module):
    """S3D-G feature gating: ``x * sigmoid(W · avgpool(x) + b)`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * g[:, :, None, None, None]


class InceptionBlock3d(nn.Module):
    """Four branches concatenated: 1³; 1³ -> k³; 1³ -> k³; 3³ max pool -> 1³."""

    def __init__(
        self,
        in_ch: int,
        b0: int,
        b1r: int,
        b1: int,
        b2r: int,
        b2: int,
        b3: int,
        *,
        conv: SpatioTemporalConv,
        norm: NormBuilder,
        gating: bool = False,
    ) -> None:
        super().__init__()
        self.branch0 = ConvNormAct(in_ch, b0, 1, norm=norm)
        self.branch1 = nn.Sequential(ConvNormAct(in_ch, b1r, 1, norm=norm), conv(b1r, b1, 3, 1, norm))
        self.branch2 = nn.Sequential(ConvNormAct(in_ch, b2r, 1, norm=norm), conv(b2r, b2, 3, 1, norm))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), ConvNormAct(in_ch, b3, 1, norm=norm))
        self.gates = nn.ModuleList([SelfGating(c) for c in (b0, b1, b2, b3)]) if gating else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gates is not None:
            outs = [g(o) for g, o in zip(self.gates, outs, strict=True)]
        return torch.cat(outs, 1)


class InceptionNet3d(nn.Module):
    """Inflated Inception-v1 trunk + (2×7×7 average pool, dropout, 1×1×1 conv, mean) head.

    ``conv`` builds the k×k×k convs (stem 7, conv 3, inception 3); ``gating`` adds S3D-G gates
    to the inception blocks.
    """

    def __init__(
        self,
        num_classes: int = 400,
        *,
        conv: SpatioTemporalConv = conv_norm_act3d,
        norm: NormBuilder | str | None = None,
        dropout: float = 0.5,
        gating: bool = False,
        in_channels: int = 3,
        modality: str = "rgb",
    ) -> None:
        super().__init__()
        self.modality = modality
        norm_b = resolve_norm(norm) if norm is not None else norm_builder("bn", eps=1e-3, momentum=0.001)
        pool_s = dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        blocks = {
            k: InceptionBlock3d(*v, conv=conv, norm=norm_b, gating=gating) for k, v in INCEPTION_V1.items()
        }
        self.features = nn.Sequential(
            conv(in_channels, 64, 7, 2, norm_b),
            nn.MaxPool3d(**pool_s),
            ConvNormAct(64, 64, 1, norm=norm_b),
            conv(64, 192, 3, 1, norm_b),
            nn.MaxPool3d(**pool_s),
            blocks["3b"],
            blocks["3c"],
            nn.MaxPool3d(3, 2, 1),
            blocks["4b"],
            blocks["4c"],
            blocks["4d"],
            blocks["4e"],
            blocks["4f"],
            nn.MaxPool3d(2, 2, 0),
            blocks["5b"],
            blocks["5c"],
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv3d(1024, num_classes, 1, bias=True))

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        if isinstance(batch, dict) and self.modality != "rgb":
            if self.modality not in batch:
                raise KeyError(f"this model needs batch[{self.modality!r}]; the batch has {sorted(batch)}")
            x = batch[self.modality]
        else:
            x = rgb_input(batch)
        x = self.features(x)
        kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = F.avg_pool3d(x.float(), kernel, stride=1).to(x.dtype)  # no bf16 CPU kernel
        return self.classifier(x).mean(dim=(2, 3, 4))
