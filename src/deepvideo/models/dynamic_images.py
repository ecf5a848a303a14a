"""Dynamic images and dynamic-image networks (Bilen, Fernando, Gavves, Vedaldi & Gould,
"Dynamic Image Networks for Action Recognition", CVPR 2016).

A dynamic image summarises a clip of ``T`` frames ``I_1 .. I_T`` in one image: the parameters of a
ranking function that orders the frames in time (rank pooling). Approximate rank pooling (Sec. 3.2)
replaces the RankSVM solution by one gradient step, a fixed weighted sum of the frames,

    ``d = Σ_t α_t I_t``,  ``α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1})``,

with ``H_t = Σ_{i=1..t} 1/i`` the ``t``-th harmonic number (``H_0 = 0``): late frames weigh
positively, early ones negatively, and the coefficients sum to zero (a static clip gives ``d = 0``).
The same pooling of optical-flow fields is a "dynamic flow" image.

The dynamic-image network (:class:`DynamicImageNet`) pools each window of ``window`` frames
(every ``stride`` frames: "multiple dynamic images", the paper's windows of 10 frames with stride
6) into a dynamic image, rescales it to ``[0, 1]`` per sample and channel (the paper rescales to
the image range, ``[0, 255]``, before the ImageNet network), runs a 2D CNN on it and averages the
scores over the windows. The paper fine-tunes CaffeNet / ResNeXt; here any backbone of
:func:`deepvideo.nn.backbones2d.build_backbone`. With a ResNet backbone, ``norm`` ("bn", the
default BatchNorm2d, "gn", "none" or a builder) and ``act`` ("relu", the default, "silu", ... or a
builder) replace every norm and activation of the backbone (:class:`~deepvideo.nn.backbones2d.ResNet2d`).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import build_backbone
from deepvideo.nn.conv import ActBuilder, NormBuilder
from deepvideo.spec import FLOW_SCALE, InputSpec

PAPER = "Bilen et al., Dynamic Image Networks for Action Recognition, CVPR 2016"


def rank_pool_coefficients(num_frames: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``α_1 .. α_T`` of approximate rank pooling (Bilen et al. 2016, eq. 2 with raw frames)."""
    if num_frames < 1:
        raise ValueError(f"approximate rank pooling needs at least one frame, got {num_frames}")
    t = torch.arange(1, num_frames + 1, dtype=torch.float64)
    harmonic = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(1.0 / t, 0)])  # H_0 .. H_T
    alpha = 2 * (num_frames - t + 1) - (num_frames + 1) * (harmonic[-1] - harmonic[:-1])
    return alpha.to(dtype)


def approximate_rank_pooling(x: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Dynamic image of ``x`` along ``dim`` (time): ``Σ_t α_t x_t``, ``dim`` removed.

    ``[N, C, T, H, W]`` RGB frames give dynamic images, flow fields dynamic flow.
    """
    alpha = rank_pool_coefficients(x.shape[dim], x.dtype).to(x.device)
    shape = [1] * x.dim()
    shape[dim] = -1
    return (x * alpha.view(shape)).sum(dim)


def minmax_rescale(d: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``[N, C, H, W]`` -> each sample's channel min-max scaled to ``[0, 1]``."""
    lo = d.amin(dim=(2, 3), keepdim=True)
    hi = d.amax(dim=(2, 3), keepdim=True)
    return (d - lo) / (hi - lo).clamp_min(eps)


class DynamicImageNet(nn.Module):
    """2D CNN on the dynamic images of ``window``-frame windows, scores averaged over windows.

    ``modality``: ``"rgb"`` (dynamic images) or ``"flow"`` (dynamic flow). ``window=None`` pools
    the whole clip into one image.
    """

    def __init__(self, backbone: nn.Module, modality: str = "rgb", window: int | None = None,
                 stride: int | None = None) -> None:
        super().__init__()
        if modality not in ("rgb", "flow"):
            raise ValueError(f"a dynamic-image network takes 'rgb' or 'flow', got {modality!r}")
        if window is not None and window < 2:
            raise ValueError(f"a dynamic image needs a window of at least 2 frames, got {window}")
        self.backbone, self.modality = backbone, modality
        self.window, self.stride = window, stride or window

    def dynamic_images(self, clip: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` -> ``[N, K, C, H, W]``, one rescaled dynamic image per window."""
        t = clip.shape[2]
        window = self.window or t
        if t < window:
            raise ValueError(f"the clip has {t} frames, fewer than the dynamic-image window {window}")
        starts = range(0, t - window + 1, self.stride or window)
        images = [minmax_rescale(approximate_rank_pooling(clip[:, :, s : s + window])) for s in starts]
        return torch.stack(images, 1)

    def forward(self, batch: dict | torch.Tensor) -> torch.Tensor:
        clip = batch if isinstance(batch, torch.Tensor) else batch.get(self.modality)
        if clip is None:
            raise KeyError(f"this model needs batch[{self.modality!r}]; the batch has {sorted(batch)}")
        if clip.dim() != 5:
            raise ValueError(f"expected {self.modality} of shape [N, C, T, H, W], got {tuple(clip.shape)}")
        images = self.dynamic_images(clip)
        n, k = images.shape[:2]
        scores = self.backbone(images.flatten(0, 1))
        return scores.reshape(n, k, -1).mean(1)


def dynamic_image_net(
    num_classes: int = 101,
    backbone: str = "resnet50",
    modality: str = "rgb",
    window: int | None = 10,
    stride: int | None = 6,
    width: float = 1.0,
    dropout: float = 0.5,
    input_size: int = 224,
    norm: NormBuilder | str = "bn",
    act: ActBuilder | str = "relu",
) -> DynamicImageNet:
    """Dynamic-image network: ``backbone`` (see :func:`build_backbone`) on dynamic images;
    ``norm`` / ``act`` are the ResNet backbone's (the VGG-style nets keep their fixed layers)."""
    kw: dict = {"width": width}
    if backbone.startswith("resnet"):
        kw.update(dropout=dropout, norm=norm, act=act)
    elif (norm, act) != ("bn", "relu"):
        raise ValueError(f"norm= / act= apply to the ResNet backbones; {backbone!r} has fixed layers")
    else:
        kw["dropout"] = (dropout, dropout)
    channels = 3 if modality == "rgb" else 2
    net = build_backbone(backbone, num_classes, channels, input_size, **kw)
    return DynamicImageNet(net, modality, window, stride)


_RGB = InputSpec(("rgb",), num_frames=22, frame_stride=1, crop_size=224)  # 3 windows of 10, stride 6
_FLOW = InputSpec(("flow",), flow_stack=22, crop_size=224, mean=(0.0, 0.0), std=(FLOW_SCALE, FLOW_SCALE))
_SMALL = {"backbone": "resnet18", "width": 0.25, "window": 8, "stride": 4, "input_size": 112}


@register_model(spec=_RGB, paper=PAPER, modality="rgb")
def dynamic_image_r50(num_classes: int = 101, **kw) -> DynamicImageNet:
    """Dynamic-image network: ResNet-50 on dynamic images of 10-frame windows, stride 6"""
    return dynamic_image_net(num_classes, **{"modality": "rgb", **kw})


@register_model(spec=_FLOW, paper=PAPER, modality="flow")
def dynamic_flow_r50(num_classes: int = 101, **kw) -> DynamicImageNet:
    """Dynamic-flow network: ResNet-50 on approximate rank pooled flow, 10-field windows, stride 6"""
    return dynamic_image_net(num_classes, **{"modality": "flow", **kw})


@register_model(spec=_RGB.replace(num_frames=16, crop_size=112), paper=PAPER, modality="rgb", **_SMALL)
def dynamic_image_small(num_classes: int = 101, **kw) -> DynamicImageNet:
    """CPU dynamic-image network: 1/4-width ResNet-18, 8-frame windows, stride 4, 16 frames of 112²"""
    return dynamic_image_net(num_classes, **{"modality": "rgb", **_SMALL, **kw})


@register_model(spec=_FLOW.replace(flow_stack=16, crop_size=112), paper=PAPER, modality="flow", **_SMALL)
def dynamic_flow_small(num_classes: int = 101, **kw) -> DynamicImageNet:
    """CPU dynamic-flow network: 1/4-width ResNet-18, 8-field windows, stride 4, 16 fields of 112²"""
    return dynamic_image_net(num_classes, **{"modality": "flow", **_SMALL, **kw})
