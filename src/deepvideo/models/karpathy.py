"""Large-scale video classification with ConvNets (Karpathy et al., CVPR 2014).

A video is a bag of short fixed-size clips; every model shares the single-frame architecture
``C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)`` on
170x170 frames and differs in how time is connected:

* single frame: one frame;
* early fusion: the first conv spans the whole clip, ``11x11x3xT`` with ``T = 10``;
* late fusion: two single-frame towers with shared weights on frames 15 apart, merged in the
  first FC layer;
* slow fusion: conv1 ``4`` frames / temporal stride 2 over 10 frames (4 responses), conv2 and
  conv3 ``2`` / stride 2 (2, then 1 response), so higher layers see the whole clip;
* multiresolution: a fovea stream on the 89x89 centre crop and a context stream on the 178x178
  frame downsampled to 89x89 (same architecture without the last pooling, separate weights),
  concatenated at the first FC layer.

Sports-1M (clip / video hit@1): single frame 41.1/59.3, + multires 42.4/60.0, early 38.9/57.7,
late 40.7/59.3, slow 41.9/60.9.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import karpathy_tower, karpathy_tower_size
from deepvideo.nn.inflate import inflate_conv2d, inflate_module
from deepvideo.spec import InputSpec

PAPER = "Karpathy et al., Large-scale Video Classification with Convolutional Neural Networks, CVPR 2014"
VARIANTS = ("single_frame", "early_fusion", "late_fusion", "slow_fusion", "multires")


def _classifier(
    in_features: int, num_classes: int, fc_dims: tuple[int, int], dropout: float
) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(1),
        nn.Linear(in_features, fc_dims[0]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(fc_dims[0], fc_dims[1]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(fc_dims[1], num_classes),
    )


class KarpathyNet(nn.Module):
    """One of the five time-connectivity variants; takes ``batch["rgb"] [N, 3, T, H, W]``."""

    def __init__(
        self,
        variant: str = "slow_fusion",
        num_classes: int = 487,
        input_size: int = 170,
        num_frames: int | None = None,
        width: float = 1.0,
        fc_dims: tuple[int, int] = (4096, 4096),
        dropout: float = 0.5,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
        self.variant = variant
        self.num_frames = num_frames or {"early_fusion": 10, "slow_fusion": 10, "late_fusion": 2}.get(
            variant, 1
        )
        multires = variant == "multires"
        size = input_size // 2 if multires else input_size
        s = karpathy_tower_size(size, last_pool=not multires)
        if s < 1:
            raise ValueError(f"input_size {input_size} is too small for the {variant} net")
        tower = karpathy_tower(3, width, last_pool=not multires)
        c5 = tower.conv5.out_channels
        feat = c5 * s * s
        if variant == "early_fusion":
            tower.conv1 = inflate_conv2d(tower.conv1, self.num_frames, time_padding=0)
        elif variant == "slow_fusion":
            if self.num_frames != 10:
                raise ValueError("slow fusion is defined on 10-frame clips (4 -> 2 -> 1 responses)")
            extents = {"conv1": (4, 2, 0), "conv2": (2, 2, 0), "conv3": (2, 2, 0)}
            tower = inflate_module(tower, lambda name, conv: extents.get(name, 1))
        self.tower = tower
        if multires:
            self.context = karpathy_tower(3, width, last_pool=False)
            feat *= 2
        if variant == "late_fusion":
            feat *= 2
        self.classifier = _classifier(feat, num_classes, fc_dims, dropout)

    def _clip(self, batch: dict) -> torch.Tensor:
        if "rgb" not in batch:
            raise KeyError(f"Karpathy nets need batch['rgb']; the batch has {sorted(batch)}")
        x = batch["rgb"]
        if x.dim() != 5 or x.shape[2] != self.num_frames:
            raise ValueError(
                f"{self.variant} expects rgb [N, 3, {self.num_frames}, H, W], got {tuple(x.shape)}"
            )
        return x

    def forward(self, batch: dict) -> torch.Tensor:
        x = self._clip(batch)
        if self.variant == "single_frame":
            f = self.tower(x[:, :, 0])
        elif self.variant == "early_fusion":
            f = self.tower.forward_from(self.tower.conv1(x).squeeze(2), "conv1")
        elif self.variant == "slow_fusion":
            f = self.tower(x)
        elif self.variant == "late_fusion":
            f = torch.cat([self.tower(x[:, :, 0]).flatten(1), self.tower(x[:, :, -1]).flatten(1)], dim=1)
        else:
            frame = x[:, :, 0]
            h, w = frame.shape[-2:]
            fh, fw = h // 2, w // 2
            top, left = (h - fh) // 2, (w - fw) // 2
            fovea = frame[:, :, top : top + fh, left : left + fw]
            context = F.interpolate(
                frame, size=(fh, fw), mode="bilinear", align_corners=False, antialias=True
            )
            f = torch.cat([self.tower(fovea).flatten(1), self.context(context).flatten(1)], dim=1)
        return self.classifier(f)


def karpathy(num_classes: int = 487, variant: str = "slow_fusion", **kw) -> KarpathyNet:
    return KarpathyNet(variant, num_classes, **kw)


def _spec(variant: str, small: bool = False) -> InputSpec:
    """The clip of ``variant``: 10 frames (early, slow fusion), 2 frames 15 apart (late fusion; 5
    apart in the CPU presets) or one frame; crop 170 (multires 178), CPU presets 85 (90)."""
    frames = {"early_fusion": 10, "slow_fusion": 10, "late_fusion": 2}.get(variant, 1)
    stride = (5 if small else 15) if variant == "late_fusion" else 1
    crop = (90 if small else 178) if variant == "multires" else (85 if small else 170)
    return InputSpec(modalities=("rgb",), num_frames=frames, frame_stride=stride, crop_size=crop)


@register_model(spec=_spec("single_frame"), paper=PAPER)
def karpathy_single_frame(num_classes: int = 487, *, variant: str = "single_frame", **kw) -> KarpathyNet:
    """Karpathy et al. single frame"""
    return KarpathyNet(variant, num_classes, **kw)


@register_model(spec=_spec("single_frame", small=True), paper=PAPER)
def karpathy_single_frame_small(
    num_classes: int = 487, *, variant: str = "single_frame", width: float = 0.25,
    fc_dims: tuple = (256, 256), input_size: int = 85, **kw,
) -> KarpathyNet:
    """CPU single frame: 1/4 width, FC 256, crop 85"""
    return KarpathyNet(variant, num_classes, input_size=input_size, width=width, fc_dims=fc_dims, **kw)


@register_model(spec=_spec("early_fusion"), paper=PAPER)
def karpathy_early_fusion(num_classes: int = 487, *, variant: str = "early_fusion", **kw) -> KarpathyNet:
    """Karpathy et al. early fusion"""
    return KarpathyNet(variant, num_classes, **kw)


@register_model(spec=_spec("early_fusion", small=True), paper=PAPER)
def karpathy_early_fusion_small(
    num_classes: int = 487, *, variant: str = "early_fusion", width: float = 0.25,
    fc_dims: tuple = (256, 256), input_size: int = 85, **kw,
) -> KarpathyNet:
    """CPU early fusion: 1/4 width, FC 256, crop 85"""
    return KarpathyNet(variant, num_classes, input_size=input_size, width=width, fc_dims=fc_dims, **kw)


@register_model(spec=_spec("late_fusion"), paper=PAPER)
def karpathy_late_fusion(num_classes: int = 487, *, variant: str = "late_fusion", **kw) -> KarpathyNet:
    """Karpathy et al. late fusion"""
    return KarpathyNet(variant, num_classes, **kw)


@register_model(spec=_spec("late_fusion", small=True), paper=PAPER)
def karpathy_late_fusion_small(
    num_classes: int = 487, *, variant: str = "late_fusion", width: float = 0.25,
    fc_dims: tuple = (256, 256), input_size: int = 85, **kw,
) -> KarpathyNet:
    """CPU late fusion: 1/4 width, FC 256, crop 85"""
    return KarpathyNet(variant, num_classes, input_size=input_size, width=width, fc_dims=fc_dims, **kw)


@register_model(spec=_spec("slow_fusion"), paper=PAPER)
def karpathy_slow_fusion(num_classes: int = 487, *, variant: str = "slow_fusion", **kw) -> KarpathyNet:
    """Karpathy et al. slow fusion"""
    return KarpathyNet(variant, num_classes, **kw)


@register_model(spec=_spec("slow_fusion", small=True), paper=PAPER)
def karpathy_slow_fusion_small(
    num_classes: int = 487, *, variant: str = "slow_fusion", width: float = 0.25,
    fc_dims: tuple = (256, 256), input_size: int = 85, **kw,
) -> KarpathyNet:
    """CPU slow fusion: 1/4 width, FC 256, crop 85"""
    return KarpathyNet(variant, num_classes, input_size=input_size, width=width, fc_dims=fc_dims, **kw)


@register_model(spec=_spec("multires"), paper=PAPER)
def karpathy_multires(num_classes: int = 487, *, variant: str = "multires", **kw) -> KarpathyNet:
    """Karpathy et al. multires"""
    return KarpathyNet(variant, num_classes, **kw)


@register_model(spec=_spec("multires", small=True), paper=PAPER)
def karpathy_multires_small(
    num_classes: int = 487, *, variant: str = "multires", width: float = 0.25,
    fc_dims: tuple = (256, 256), input_size: int = 90, **kw,
) -> KarpathyNet:
    """CPU multires: 1/4 width, FC 256, crop 90"""
    return KarpathyNet(variant, num_classes, input_size=input_size, width=width, fc_dims=fc_dims, **kw)
