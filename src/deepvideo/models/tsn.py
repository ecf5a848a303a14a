"""Temporal segment networks, TSN (Wang et al., ECCV 2016).

``H(G(F(T_1; W), ..., F(T_K; W)))``: the video is split into ``K`` segments, one snippet is
sampled from each (the data side's segment sampler), a shared 2D ConvNet ``F`` scores every
snippet and a segmental consensus ``G`` merges the scores: average (the paper's choice), max or
weighted (learned per-segment weights). Modalities: RGB (one frame per snippet), flow
(``L = 5`` stacked fields, conv1 by cross-modality initialization: the RGB filters averaged over
channels and replicated over the ``2L`` channels) and RGB difference (``F = 5`` frames per
snippet -> 4 stacked differences, 12 channels; taken from ``batch["rgbdiff"]`` if present, else
computed from ``batch["rgb"]`` frames).

Partial BN: with ``partial_bn=True`` every BatchNorm but the first keeps its running statistics
frozen (eval mode) during ``train()``; dropout before the classifier: 0.8 for the spatial (RGB)
network and 0.7 for the temporal (flow) network, as in the paper (``dropout=None`` picks it by
modality; RGB difference takes the spatial ratio).

Reported (UCF101 split 1, two-stream): 90.0 -> 91.5 (cross-modality pre-training) -> 92.0
(+ partial BN and dropout) -> 93.5 (+ temporal segments).
"""

from __future__ import annotations

from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import build_backbone
from deepvideo.nn.init import adapt_input_channels
from deepvideo.nn.inputs import input_channels
from deepvideo.nn.snippet_net import SnippetNet
from deepvideo.spec import FLOW_SCALE, InputSpec

PAPER = (
    "Wang et al., Temporal Segment Networks: Towards Good Practices for Deep Action Recognition, ECCV 2016"
)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
RGB_DROPOUT, FLOW_DROPOUT = 0.8, 0.7  # Wang et al. 2016, Sec. 3.2 (network training)


class TSN(SnippetNet):
    """A :class:`SnippetNet` over K segments with partial BN."""

    def __init__(self, backbone: nn.Module, partial_bn: bool = True, **kw):
        super().__init__(backbone, **kw)
        self.partial_bn = partial_bn
        self.train()

    def frozen_bn_layers(self) -> list[nn.Module]:
        """The BN layers partial BN keeps in eval mode (all but the first)."""
        bns = [m for m in self.backbone.modules() if isinstance(m, _BN)]
        return bns[1:] if self.partial_bn else []

    def set_partial_bn(self, enabled: bool = True) -> TSN:
        self.partial_bn = enabled
        return self.train(self.training)

    def train(self, mode: bool = True) -> TSN:
        super().train(mode)
        if mode:
            for bn in self.frozen_bn_layers():
                bn.eval()
        return self


def tsn(
    num_classes: int = 101,
    backbone: str = "resnet50",
    modality: str = "rgb",
    num_segments: int = 3,
    num_frames: int = 1,
    flow_stack: int = 5,
    consensus: str = "avg",
    partial_bn: bool = True,
    dropout: float | None = None,
    width: float = 1.0,
    input_size: int = 224,
) -> TSN:
    """TSN with a 2D backbone (``resnet18``...``resnet152``, ``vgg16``, ``vgg_m_2048``)."""
    if dropout is None:
        dropout = FLOW_DROPOUT if modality == "flow" else RGB_DROPOUT
    if modality == "rgbdiff" and num_frames < 2:
        num_frames = 5
    kw = {"width": width}
    if backbone.startswith("resnet"):
        kw["dropout"] = dropout
    else:
        kw["dropout"] = (dropout, dropout)
    net = build_backbone(backbone, num_classes, 3, input_size, **kw)
    in_ch = input_channels(modality, num_frames, flow_stack)
    if in_ch != 3:
        adapt_input_channels(net, in_ch, "tsn")  # cross-modality pre-training
    return TSN(
        net,
        partial_bn,
        modality=modality,
        num_frames=num_frames if modality != "flow" else 1,
        flow_stack=flow_stack if modality == "flow" else 0,
        num_segments=num_segments,
        consensus=consensus,
    )


def _spec(modality: str, crop: int = 224, segments: int = 3) -> InputSpec:
    if modality == "flow":
        return InputSpec(
            modalities=("flow",),
            num_segments=segments,
            flow_stack=5,
            crop_size=crop,
            mean=(0.0, 0.0),
            std=(FLOW_SCALE, FLOW_SCALE),
        )
    if modality == "rgbdiff":
        return InputSpec(modalities=("rgbdiff",), num_segments=segments, num_frames=5, crop_size=crop)
    return InputSpec(modalities=("rgb",), num_segments=segments, crop_size=crop)


_SMALL = {"backbone": "resnet18", "width": 0.25, "dropout": 0.5, "input_size": 112}
_R50 = {m: {"modality": m} for m in ("rgb", "flow", "rgbdiff")}
_CPU = {m: {"modality": m, **_SMALL} for m in ("rgb", "flow", "rgbdiff")}


@register_model(spec=_spec("rgb"), paper=PAPER, **_R50["rgb"])
def tsn_r50_rgb(num_classes: int = 101, **kw) -> TSN:
    """TSN, ResNet-50, rgb, 3 segments, average consensus, partial BN, dropout 0.8"""
    return tsn(num_classes, **{**_R50["rgb"], **kw})


@register_model(spec=_spec("flow"), paper=PAPER, **_R50["flow"])
def tsn_r50_flow(num_classes: int = 101, **kw) -> TSN:
    """TSN, ResNet-50, flow (L=5), 3 segments, average consensus, partial BN, dropout 0.7"""
    return tsn(num_classes, **{**_R50["flow"], **kw})


@register_model(spec=_spec("rgbdiff"), paper=PAPER, **_R50["rgbdiff"])
def tsn_r50_rgbdiff(num_classes: int = 101, **kw) -> TSN:
    """TSN, ResNet-50, rgbdiff, 3 segments, average consensus, partial BN, dropout 0.8"""
    return tsn(num_classes, **{**_R50["rgbdiff"], **kw})


@register_model(spec=_spec("rgb", 112), paper=PAPER, **_CPU["rgb"])
def tsn_rgb_small(num_classes: int = 101, **kw) -> TSN:
    """CPU TSN: 1/4-width ResNet-18, rgb, 3 segments, 112 crop"""
    return tsn(num_classes, **{**_CPU["rgb"], **kw})


@register_model(spec=_spec("flow", 112), paper=PAPER, **_CPU["flow"])
def tsn_flow_small(num_classes: int = 101, **kw) -> TSN:
    """CPU TSN: 1/4-width ResNet-18, flow, 3 segments, 112 crop"""
    return tsn(num_classes, **{**_CPU["flow"], **kw})


@register_model(spec=_spec("rgbdiff", 112), paper=PAPER, **_CPU["rgbdiff"])
def tsn_rgbdiff_small(num_classes: int = 101, **kw) -> TSN:
    """CPU TSN: 1/4-width ResNet-18, rgbdiff, 3 segments, 112 crop"""
    return tsn(num_classes, **{**_CPU["rgbdiff"], **kw})
