"""Action detection models: a 3D backbone with the RoI head of SlowFast's AVA detector, and
the two baselines of the benchmark (a clip classifier on person crops, a single-frame head).

The detector follows Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV
2019, Sec. 6 (a Faster R-CNN-like detector with minimal changes for video): res5 gets spatial
stride 1 and dilation 2 (spatial stride 16 overall); each 2D RoI is replicated along time, the
last feature map is averaged over time, RoIAlign gives 7×7 features per RoI (PySlowFast's
``ROI_XFORM_RESOLUTION: 7``, aligned), spatially max-pooled, then dropout (0.5, PySlowFast's
AVA recipe) and a per-class sigmoid classifier (multi-label; binary cross-entropy). With
several pathways (Slow and Fast) each pathway is pooled and the vectors concatenated. In
training the RoIs are the ground-truth boxes, jittered (:func:`jitter_boxes`; the amount is
ours); at test the person detector's proposals.

Batches: ``rgb [N, 3, T, H, W]`` (normalised) and ``rois [M, 5]`` rows ``(batch index, x1, y1,
x2, y2)`` in input pixels; every model returns logits ``[M, K]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from deepvideo.models.slowfast import SlowFast
from deepvideo.nn.backbones2d import ResNet2d
from deepvideo.nn.video_resnet import VideoResNet

ROI_RESOLUTION = 7
DROPOUT = 0.5
SPATIAL_STRIDE = 16


def dilate_stage(stage: nn.Module, dilation: int = 2) -> None:
    """Turn a stage's spatial stride 2 into stride 1 and dilate its spatial (k > 1) kernels,
    in place (3D or 2D convolutions)."""
    for conv in stage.modules():
        if not isinstance(conv, nn.Conv3d | nn.Conv2d):
            continue
        spatial = slice(-2, None)
        stride, kernel = list(conv.stride), list(conv.kernel_size)
        stride[spatial] = [1, 1]
        dil, pad = list(conv.dilation), list(conv.padding)
        for axis in (-2, -1):
            if kernel[axis] > 1:
                dil[axis] = dilation
                pad[axis] = dilation * (kernel[axis] - 1) // 2
        conv.stride, conv.dilation, conv.padding = tuple(stride), tuple(dil), tuple(pad)


def last_conv_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv3d | nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(module).__name__} has no convolution")
    return convs[-1].out_channels


class BackboneFeatures(nn.Module):
    """The last feature maps ``[N, C, T, H, W]`` (one per pathway) of a SlowFast, a
    :class:`VideoResNet` (C2D, I3D, Slow, R(2+1)D, X3D ...) or a 2D :class:`ResNet2d` (the
    keyframe only; ``T = 1``), with res5 dilated; the classifier of the backbone is dropped."""

    def __init__(self, backbone: nn.Module, dilate: bool = True):
        super().__init__()
        if isinstance(backbone, SlowFast):
            last = [backbone.slow_layer4, backbone.fast_layer4]
            backbone.fc, backbone.dropout = nn.Identity(), nn.Identity()
        elif isinstance(backbone, VideoResNet):
            last = [getattr(backbone, f"layer{backbone.num_layers}")]
            backbone.head = nn.Identity()
        elif isinstance(backbone, ResNet2d):
            last = [backbone.layer4]
            backbone.fc = nn.Identity()
        else:
            raise TypeError(f"no detection features for {type(backbone).__name__}: use a SlowFast, "
                            "a VideoResNet-based model (Slow, C2D, I3D, X3D, R(2+1)D) or a 2D ResNet")
        if dilate:
            for stage in last:
                dilate_stage(stage)
        self.backbone = backbone
        self.channels = [last_conv_channels(stage) for stage in last]

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        b = self.backbone
        if isinstance(b, SlowFast):
            return list(b.features(*b.pathways(rgb)))
        if isinstance(b, ResNet2d):
            return [b.features(rgb[:, :, rgb.shape[2] // 2]).unsqueeze(2)]
        return [b.features(rgb)]


def roi_features(maps: list[torch.Tensor], rois: torch.Tensor, image_width: int,
                 resolution: int = ROI_RESOLUTION) -> torch.Tensor:
    """Per RoI: temporal average of each map, RoIAlign ``resolution``², spatial max; concatenated."""
    out = []
    for fmap in maps:
        planar = fmap.mean(dim=2)
        scale = planar.shape[-1] / image_width
        pooled = roi_align(planar, rois.to(planar.dtype), (resolution, resolution), spatial_scale=scale,
                           sampling_ratio=0, aligned=True)
        out.append(pooled.amax(dim=(2, 3)))
    return torch.cat(out, dim=1)


class ActionDetector(nn.Module):
    """Backbone features -> RoI features -> dropout -> linear (per-class sigmoid logits)."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = DROPOUT,
                 resolution: int = ROI_RESOLUTION, dilate: bool = True):
        super().__init__()
        self.features = BackboneFeatures(backbone, dilate)
        self.resolution = resolution
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(sum(self.features.channels), num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb, rois = batch["rgb"], batch["rois"]
        maps = self.features(rgb)
        pooled = roi_features(maps, rois, rgb.shape[-1], self.resolution)
        return self.classifier(self.dropout(pooled))


def crop_clips(rgb: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """Each RoI's crop of every frame of its clip, resized to ``size``²: ``[M, 3, T, size, size]``."""
    n, c, t, h, w = rgb.shape
    planes = rgb.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
    index = rois[:, :1].long() * t + torch.arange(t, device=rgb.device)[None, :]
    coords = rois[:, None, 1:].expand(-1, t, 4).reshape(-1, 4)
    boxes = torch.cat([index.reshape(-1, 1).to(rois.dtype), coords], 1)
    crops = roi_align(planes, boxes.to(planes.dtype), (size, size), spatial_scale=1.0, sampling_ratio=1,
                      aligned=True)
    return crops.reshape(len(rois), t, c, size, size).permute(0, 2, 1, 3, 4)


class CropClassifier(nn.Module):
    """Baseline: the backbone's clip classifier applied to each person's crop (``crop``² pixels)."""

    def __init__(self, backbone: nn.Module, crop: int):
        super().__init__()
        self.backbone = backbone
        self.crop = crop

    def forward(self, batch: dict) -> torch.Tensor:
        return self.backbone({"rgb": crop_clips(batch["rgb"], batch["rois"], self.crop)})


def jitter_boxes(boxes: torch.Tensor, amount: float, width: int, height: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Move each side of ``[M, 4]`` pixel boxes by up to ``amount`` × the box's size (uniform),
    kept inside the image and at least one pixel wide."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    noise = (torch.rand(boxes.shape, generator=generator) * 2 - 1).to(boxes) * amount * size
    out = boxes + noise
    limit = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    out = torch.minimum(out.clamp(min=0), limit)
    out[:, 2:] = torch.maximum(out[:, 2:], out[:, :2] + 1).minimum(limit[2:])
    out[:, :2] = torch.minimum(out[:, :2], out[:, 2:] - 1).clamp(min=0)
    return out


def detection_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of per-class sigmoids (multi-label), mean over RoIs and classes."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
