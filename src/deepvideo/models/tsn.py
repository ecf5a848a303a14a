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
frozen (eval mode) during ``train()``; dropout before the classifier (0.8 in the paper).

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
    dropout: float = 0.8,
    width: float = 1.0,
    input_size: int = 224,
) -> TSN:
    """TSN with a 2D backbone (``resnet18``...``resnet152``, ``vgg16``, ``vgg_m_2048``)."""
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
        adapt_input_channels(net, in_ch)
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


for _m in ("rgb", "flow", "rgbdiff"):
    register_model(
        f"tsn_r50_{_m}",
        tsn,
        _spec(_m),
        paper=PAPER,
        summary=f"TSN, ResNet-50, {_m}, 3 segments, average consensus, partial BN",
        modality=_m,
    )
    register_model(
        f"tsn_{_m}_small",
        tsn,
        _spec(_m, 112),
        paper=PAPER,
        summary=f"CPU TSN: 1/4-width ResNet-18, {_m}, 3 segments, 112 crop",
        modality=_m,
        backbone="resnet18",
        width=0.25,
        dropout=0.5,
        input_size=112,
    )
