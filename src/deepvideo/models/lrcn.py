"""CNN + RNN video models: LRCN and "beyond short snippets".

* LRCN (Donahue et al., CVPR 2015): a 2D ConvNet embeds every frame (or flow stack), an LSTM
  runs over the sequence, a linear layer predicts at every step and the per-step predictions are
  averaged.
* Beyond short snippets (Ng et al., CVPR 2015): over long clips, either *conv pooling* (max over
  time of the last conv layer's maps, then the FC layers) or a deep LSTM over per-frame features
  (5 layers of 512 cells in the paper) with per-step predictions averaged. UCF101: 88.2 (conv
  pooling) / 88.6 (LSTM) with optical flow.

RNNs cannot be parallelized over time and pooling ignores the order of frames. Batches:
``rgb [N, 3, T, H, W]`` (one frame per step) or ``flow [N, 2, T*L, H, W]`` (a ``2L``-channel
stack per step).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import LayeredNet, ResNet2d, build_backbone
from deepvideo.nn.heads import strip_classifier
from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets
from deepvideo.spec import FLOW_SCALE, InputSpec

PAPERS = (
    "Donahue et al., Long-term Recurrent Convolutional Networks, CVPR 2015; "
    "Ng et al., Beyond Short Snippets: Deep Networks for Video Classification, CVPR 2015"
)


def _steps(batch: dict, modality: str, flow_stack: int) -> tuple[torch.Tensor, int]:
    if modality not in batch:
        raise KeyError(f"this {modality} model needs batch[{modality!r}]; the batch has {sorted(batch)}")
    x = batch[modality]
    steps = flow_to_snippets(x, flow_stack) if modality == "flow" else rgb_to_snippets(x, 1)
    return steps, x.shape[0]


class RecurrentVideoNet(nn.Module):
    """Per-step 2D features -> LSTM -> per-step linear predictions, averaged over time (LRCN)."""

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        hidden: int = 256,
        num_layers: int = 1,
        modality: str = "rgb",
        flow_stack: int = 0,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.backbone, dim = strip_classifier(backbone)
        self.modality, self.flow_stack = modality, flow_stack
        self.lstm = nn.LSTM(
            dim, hidden, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def step_logits(self, batch: dict) -> torch.Tensor:
        """Predictions at every step, ``[N, T, K]``."""
        x, n = _steps(batch, self.modality, self.flow_stack)
        f = self.backbone(x).reshape(n, -1, self.lstm.input_size)
        h, _ = self.lstm(f)
        return self.fc(self.dropout(h))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.step_logits(batch).mean(dim=1)


def _conv_maps(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(net, ResNet2d):
        return net.features(x)
    if isinstance(net, LayeredNet):
        return net.forward_until(x, "relu5")
    raise TypeError(f"conv pooling needs a ResNet2d or LayeredNet backbone, got {type(net).__name__}")


def _after_conv(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return net.forward_head(x) if isinstance(net, ResNet2d) else net.forward_from(x, "relu5")


class ConvPoolingNet(nn.Module):
    """Conv pooling: max over time of the last conv maps, then the backbone's FC layers."""

    def __init__(self, backbone: nn.Module, modality: str = "rgb", flow_stack: int = 0):
        super().__init__()
        self.backbone, self.modality, self.flow_stack = backbone, modality, flow_stack

    def forward(self, batch: dict) -> torch.Tensor:
        x, n = _steps(batch, self.modality, self.flow_stack)
        maps = _conv_maps(self.backbone, x)
        pooled = maps.reshape(n, -1, *maps.shape[1:]).amax(dim=1)
        return _after_conv(self.backbone, pooled)


def _backbone(name: str, modality: str, flow_stack: int, width: float, input_size: int) -> nn.Module:
    in_ch = 2 * flow_stack if modality == "flow" else 3
    return build_backbone(name, 1, in_ch, input_size, width=width)


def lrcn(
    num_classes: int = 101,
    backbone: str = "resnet18",
    modality: str = "rgb",
    flow_stack: int = 10,
    hidden: int = 256,
    num_layers: int = 1,
    width: float = 1.0,
    input_size: int = 224,
    dropout: float = 0.5,
) -> RecurrentVideoNet:
    net = _backbone(backbone, modality, flow_stack, width, input_size)
    return RecurrentVideoNet(
        net, num_classes, hidden, num_layers, modality, flow_stack if modality == "flow" else 0, dropout
    )


def beyond_snippets_lstm(
    num_classes: int = 101,
    backbone: str = "resnet18",
    modality: str = "rgb",
    flow_stack: int = 10,
    hidden: int = 512,
    num_layers: int = 5,
    width: float = 1.0,
    input_size: int = 224,
    dropout: float = 0.5,
) -> RecurrentVideoNet:
    """Deep LSTM (5 x 512) over per-frame features, predictions averaged over time."""
    return lrcn(num_classes, backbone, modality, flow_stack, hidden, num_layers, width, input_size, dropout)


def conv_pooling(
    num_classes: int = 101,
    backbone: str = "resnet18",
    modality: str = "rgb",
    flow_stack: int = 10,
    width: float = 1.0,
    input_size: int = 224,
) -> ConvPoolingNet:
    in_ch = 2 * flow_stack if modality == "flow" else 3
    net = build_backbone(backbone, num_classes, in_ch, input_size, width=width)
    return ConvPoolingNet(net, modality, flow_stack if modality == "flow" else 0)


def _spec(modality: str, steps: int, crop: int, flow_stack: int, stride: int = 1) -> InputSpec:
    if modality == "flow":
        return InputSpec(
            modalities=("flow",),
            num_segments=steps,
            flow_stack=flow_stack,
            crop_size=crop,
            mean=(0.0, 0.0),
            std=(FLOW_SCALE, FLOW_SCALE),
        )
    return InputSpec(modalities=("rgb",), num_frames=steps, frame_stride=stride, crop_size=crop)


@register_model(spec=_spec("rgb", 16, 224, 10), paper=PAPERS)
def lrcn_rgb(num_classes: int = 101, *, modality: str = "rgb", **kw) -> RecurrentVideoNet:
    """LRCN: ResNet-18 per step, LSTM 256, rgb"""
    return lrcn(num_classes, modality=modality, **kw)


@register_model(spec=_spec("rgb", 30, 224, 10, 4), paper=PAPERS)
def beyond_snippets_lstm_rgb(num_classes: int = 101, *, modality: str = "rgb", **kw) -> RecurrentVideoNet:
    """Beyond short snippets: 5x512 LSTM over 30 steps, rgb"""
    return beyond_snippets_lstm(num_classes, modality=modality, **kw)


@register_model(spec=_spec("rgb", 30, 224, 10, 4), paper=PAPERS)
def conv_pooling_rgb(num_classes: int = 101, *, modality: str = "rgb", **kw) -> ConvPoolingNet:
    """Beyond short snippets: conv pooling (max over time of conv5), rgb"""
    return conv_pooling(num_classes, modality=modality, **kw)


@register_model(spec=_spec("rgb", 8, 112, 5), paper=PAPERS)
def lrcn_rgb_small(
    num_classes: int = 101, *, modality: str = "rgb", flow_stack: int = 5, width: float = 0.25,
    hidden: int = 64, **kw,
) -> RecurrentVideoNet:
    """CPU LRCN: 1/4-width ResNet-18, LSTM 64, 8 steps, rgb"""
    return lrcn(num_classes, modality=modality, flow_stack=flow_stack, width=width, hidden=hidden, **kw)


@register_model(spec=_spec("rgb", 8, 112, 5), paper=PAPERS)
def conv_pooling_rgb_small(
    num_classes: int = 101, *, modality: str = "rgb", flow_stack: int = 5, width: float = 0.25, **kw
) -> ConvPoolingNet:
    """CPU conv pooling: 1/4-width ResNet-18, 8 steps, rgb"""
    return conv_pooling(num_classes, modality=modality, flow_stack=flow_stack, width=width, **kw)


@register_model(spec=_spec("flow", 16, 224, 10), paper=PAPERS)
def lrcn_flow(num_classes: int = 101, *, modality: str = "flow", **kw) -> RecurrentVideoNet:
    """LRCN: ResNet-18 per step, LSTM 256, flow"""
    return lrcn(num_classes, modality=modality, **kw)


@register_model(spec=_spec("flow", 30, 224, 10, 4), paper=PAPERS)
def beyond_snippets_lstm_flow(num_classes: int = 101, *, modality: str = "flow", **kw) -> RecurrentVideoNet:
    """Beyond short snippets: 5x512 LSTM over 30 steps, flow"""
    return beyond_snippets_lstm(num_classes, modality=modality, **kw)


@register_model(spec=_spec("flow", 30, 224, 10, 4), paper=PAPERS)
def conv_pooling_flow(num_classes: int = 101, *, modality: str = "flow", **kw) -> ConvPoolingNet:
    """Beyond short snippets: conv pooling (max over time of conv5), flow"""
    return conv_pooling(num_classes, modality=modality, **kw)


@register_model(spec=_spec("flow", 8, 112, 5), paper=PAPERS)
def lrcn_flow_small(
    num_classes: int = 101, *, modality: str = "flow", flow_stack: int = 5, width: float = 0.25,
    hidden: int = 64, **kw,
) -> RecurrentVideoNet:
    """CPU LRCN: 1/4-width ResNet-18, LSTM 64, 8 steps, flow"""
    return lrcn(num_classes, modality=modality, flow_stack=flow_stack, width=width, hidden=hidden, **kw)


@register_model(spec=_spec("flow", 8, 112, 5), paper=PAPERS)
def conv_pooling_flow_small(
    num_classes: int = 101, *, modality: str = "flow", flow_stack: int = 5, width: float = 0.25, **kw
) -> ConvPoolingNet:
    """CPU conv pooling: 1/4-width ResNet-18, 8 steps, flow"""
    return conv_pooling(num_classes, modality=modality, flow_stack=flow_stack, width=width, **kw)
