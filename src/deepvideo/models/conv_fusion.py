"""Convolutional two-stream fusion (Feichtenhofer, Pinz & Zisserman, CVPR 2016; thesis ch. 3).

:class:`ConvFusionTwoStream` fuses a spatial and a temporal 2D tower at any layer (``relu2`` ...
``relu5``, ``fc6``, ``fc7``, ``fc8``/``softmax``) with any fusion function of
:mod:`deepvideo.nn.fusion`: both towers are truncated after that layer and the spatial tower's
remaining layers form the head (its first conv/FC layer takes ``2D`` inputs after concatenation,
its weights repeated for each ``(a_c, b_c)`` pair, so that layer starts as after sum fusion when
nothing non-linear lies between, e.g. at FC6/FC7; after ReLU5 the max pooling in between makes it
approximate); bilinear fusion is followed by a linear
classifier on the ``D^2`` vector in place of the paper's linear SVM).

:class:`Fusion3dTwoStream` is the final architecture: over ``T = 5`` chunks ``tau`` frames apart
the temporal net's ReLU5 is fused into the spatial stream by a ``3x3x3`` 3D conv (initialized as
stacked identities, the temporal one x3, times a Gaussian with sigma 1), followed by ``3x3x3``
3D max pooling and the spatial FC layers; the temporal tower is kept with 3D pooling and its own
FC layers. Training returns two losses' logits ``{"logits": fused, "aux_temporal": temporal}``;
at test time the two towers' predictions are averaged: their FC8 scores (``test_scores="fc8"``,
the default, as the paper averages the predictions of the two towers, not their softmax), or
the log of their averaged softmax scores (``"softmax"``). Each FC head runs per remaining time
step and its scores are averaged over time. Table 3.4's rows are built by ``fusion_conv`` and
``fusion_pool``: ``"3d"`` conv (``3x3x3`` over time) / ``"2d"`` conv (``1x1x1``, the stacked
identities of 2D conv fusion, applied per chunk) and ``"3d"`` pooling (``3x3x3``) / ``"2d"``
pooling (``1x3x3``, no pooling over time): "2D conv + 2D pool", "2D conv + 3D pool", "3D conv +
3D pool" (the default).

Fusing at ``layer="softmax"`` (:class:`ConvFusionTwoStream`) is the two-stream baseline of Table
3.1: both towers run to FC8 and their softmax scores are averaged (the output is the log of the
average, so a cross-entropy loss reads it as probabilities); ``layer="fc8"`` sums the FC8 scores.
The paper fine-tunes the fusion models only down to the fusion layer: with the engine, freeze the
towers by ``train.freeze=["spatial.*", "temporal.*"]``. Towers start from the trained two-stream
nets with ``model.init_from`` (see ``configs/motion_shapes/conv_fusion.yaml``). The CPU preset
``conv_fusion_small`` uses two 1/4-width ResNet-18 towers (a ResNet as a LayeredNet,
:meth:`~deepvideo.nn.backbones2d.ResNet2d.as_layered`: fused after conv5_x, the 3D max pooling in
its ``pool5`` slot, then global average pooling and the classifier); ``conv_fusion_vggm_small``
keeps the paper's VGG-M towers at 1/8 width.

Parameters of the VGG-M-2048 pair, 101 classes, 224 input (paper's Table 3.1 beside ours; ours
are computed by ``tests/models/test_conv_fusion.py``):

================================  ===========  =============================
fusion, layer                     paper        deepvideo (Caffe ceil mode)
================================  ===========  =============================
sum, softmax (two-stream)         181.42M      181.34M
max or sum, ReLU5                 97.31M       97.24M
concatenation, ReLU5              172.81M      172.73M
conv, ReLU5                       97.58M       97.76M (1x1x1024x512 conv: +0.52M)
bilinear, ReLU5                   6.61M + SVM  13.14M conv towers + 26.48M linear (512^2 x 101)
================================  ===========  =============================

The first three rows match the paper's stated Caffe-style figures exactly and the paper's
numbers within 0.05%. The paper's constant +0.08M excess is consistent with counting the
temporal conv1 (7x7x20x96) for both towers; its conv row (+0.27M over sum) matches a 512->512
rather than 1024->512 filter, and its bilinear row matches the temporal conv tower alone
(6.61M). VGG-M's conv5 is 13x13 and VGG-16's 14x14: mixed pairs are aligned by zero padding.

Reported (UCF101 split 1): conv fusion at ReLU5 85.96% (sum 85.20, max 82.70, concat 83.53,
bilinear 85.05); 3D conv + 3D pool 90.40 / 58.63 (UCF101 / HMDB51, S: VGG-16, T: VGG-M).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import LayeredNet, build_backbone
from deepvideo.nn.fusion import Conv3dFusion, Fusion, fusion_pool3d
from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets
from deepvideo.spec import InputSpec

PAPER = (
    "Feichtenhofer, Pinz & Zisserman, Convolutional Two-Stream Network Fusion for Video Action Recognition, "
    "CVPR 2016"
)


def _double_first_layer(head: LayeredNet, channels: int) -> None:
    """Make the head's first conv/FC take the interleaved ``2*channels`` concatenation.

    Weights are repeated for each pair ``(a_c, b_c)``, so the layer starts as if after sum fusion.
    Without such a layer (fusion of the scores), a new ``2K -> K`` FC layer starting as the sum is added.
    """
    for name, m in head.named_children():
        if isinstance(m, nn.Conv2d):
            new = nn.Conv2d(
                2 * m.in_channels,
                m.out_channels,
                m.kernel_size,
                m.stride,
                m.padding,
                m.dilation,
                bias=m.bias is not None,
            )
            with torch.no_grad():
                new.weight.copy_(m.weight.repeat_interleave(2, dim=1))
                new.bias.copy_(m.bias)
        elif isinstance(m, nn.Linear):
            per = m.in_features // channels
            new = nn.Linear(2 * m.in_features, m.out_features)
            with torch.no_grad():
                w = m.weight.reshape(m.out_features, channels, per).repeat_interleave(2, dim=1)
                new.weight.copy_(w.reshape(m.out_features, -1))
                new.bias.copy_(m.bias)
        else:
            continue
        head._modules[name] = new
        return
    # fusion after the last layer (scores): a new FC layer 2K -> K, initialized as the sum
    fc = nn.Linear(2 * channels, channels)
    with torch.no_grad():
        fc.weight.copy_(torch.eye(channels).repeat_interleave(2, dim=1))
        fc.bias.zero_()
    head.add_module("fc_fuse", fc)


def _softmax_average(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a.softmax(-1) + b.softmax(-1)) / 2).clamp_min(1e-12).log()


class ConvFusionTwoStream(nn.Module):
    """Spatial and temporal towers fused at ``layer`` by ``fusion``; the spatial head continues.

    Input: ``rgb [N, 3, K, H, W]`` (one frame per snippet) and ``flow [N, 2, K*L, H, W]``;
    scores are averaged over the K snippets.
    """

    def __init__(
        self,
        spatial: LayeredNet,
        temporal: LayeredNet,
        fusion: str = "conv",
        layer: str = "relu5",
        flow_stack: int = 10,
        num_classes: int | None = None,
    ):
        super().__init__()
        if layer == "softmax" and fusion != "sum":
            raise ValueError(
                f"fusion at the softmax averages the two softmax scores: use fusion='sum', got {fusion!r}"
            )
        self.layer, self.flow_stack = layer, flow_stack
        ca, cb = spatial.channels_at(layer), temporal.channels_at(layer)
        self.spatial = spatial.trunk(layer)
        self.temporal = temporal.trunk(layer)
        self.fusion = Fusion(fusion, ca, cb)
        if fusion == "bilinear":
            k = num_classes if num_classes is not None else spatial.channels_at(spatial.layer_names()[-1])
            self.head = nn.Linear(self.fusion.out_channels, k)
        else:
            self.head = copy.deepcopy(spatial.head(layer))
            if fusion == "concat":
                _double_first_layer(self.head, ca)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = rgb_to_snippets(batch["rgb"], 1)
        flow = flow_to_snippets(batch["flow"], self.flow_stack)
        if rgb.shape[0] != flow.shape[0]:
            raise ValueError(f"{rgb.shape[0]} RGB snippets but {flow.shape[0]} flow snippets")
        n = batch["rgb"].shape[0]
        if self.layer == "softmax":  # average of the towers' softmax scores over towers and snippets
            probs = (self.spatial(rgb).softmax(-1) + self.temporal(flow).softmax(-1)) / 2
            return probs.reshape(n, -1, probs.shape[-1]).mean(1).clamp_min(1e-12).log()
        y = self.fusion(self.spatial(rgb), self.temporal(flow))
        y = self.head(y)
        return y.reshape(n, -1, y.shape[-1]).mean(1)


def _per_step_head(head: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D head to each time step of ``[N, C, T, H, W]`` and average the scores over T."""
    n, c, t, h, w = x.shape
    y = head(x.transpose(1, 2).reshape(n * t, c, h, w))
    return y.reshape(n, t, -1).mean(1)


class Fusion3dTwoStream(nn.Module):
    """The final architecture: 3D conv fusion + 3D pooling over T chunks; the temporal tower kept.

    ``spatial``/``temporal`` are complete LayeredNets (VGG-16 / VGG-M-2048); their ``pool5`` is
    replaced by 3D max pooling ``3x3x3`` (stride 2 in space and time, Caffe ceil mode) and their FC
    layers are applied per time step.
    """

    def __init__(
        self,
        spatial: LayeredNet,
        temporal: LayeredNet,
        layer: str = "relu5",
        flow_stack: int = 10,
        temporal_scale: float = 3.0,
        sigma: float = 1.0,
        temporal_pool_stride: int = 2,
        mean_subtraction: bool | str = False,
        fusion_conv: str = "3d",
        fusion_pool: str = "3d",
        test_scores: str = "fc8",
    ):
        super().__init__()
        for arg, value, choices in (("fusion_conv", fusion_conv, ("2d", "3d")),
                                    ("fusion_pool", fusion_pool, ("2d", "3d")),
                                    ("test_scores", test_scores, ("fc8", "softmax"))):
            if value not in choices:
                raise ValueError(f"{arg} must be one of {choices}, got {value!r}")
        self.flow_stack, self.mean_subtraction = flow_stack, mean_subtraction
        self.test_scores = test_scores
        ca, cb = spatial.channels_at(layer), temporal.channels_at(layer)
        self.spatial = spatial.trunk(layer)
        self.temporal = temporal.trunk(layer)
        if fusion_conv == "3d":
            self.fuse = Conv3dFusion(ca, cb, ca, temporal_scale=temporal_scale, sigma=sigma)
        else:  # 2D conv fusion per chunk: 1x1 filter, two stacked identities (the sum)
            self.fuse = Conv3dFusion(ca, cb, ca, kernel_size=1, temporal_scale=1.0)
        self.fused_pool = self._pool(fusion_pool, temporal_pool_stride)
        self.temporal_pool = self._pool(fusion_pool, temporal_pool_stride)
        pool = spatial.index(layer) + 1
        if (
            "pool" not in spatial.layer_names()[pool]
            or "pool" not in temporal.layer_names()[temporal.index(layer) + 1]
        ):
            raise ValueError(f"3D fusion expects a pooling layer after {layer!r} in both towers")
        self.spatial_head = copy.deepcopy(spatial.head(spatial.layer_names()[pool]))
        self.temporal_head = copy.deepcopy(temporal.head(temporal.layer_names()[temporal.index(layer) + 1]))

    @staticmethod
    def _pool(kind: str, temporal_stride: int) -> nn.MaxPool3d:
        if kind == "3d":
            return fusion_pool3d(temporal_stride=temporal_stride)
        return nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)  # 2D pooling per chunk

    @staticmethod
    def _to_5d(x: torch.Tensor, n: int) -> torch.Tensor:
        return x.reshape(n, -1, *x.shape[1:]).transpose(1, 2)  # [N, C, T, H, W]

    def forward(self, batch: dict):
        n = batch["rgb"].shape[0]
        xs = self._to_5d(self.spatial(rgb_to_snippets(batch["rgb"], 1)), n)
        flow = flow_to_snippets(batch["flow"], self.flow_stack, self.mean_subtraction)
        xt = self._to_5d(self.temporal(flow), n)
        if xs.shape[2] != xt.shape[2]:
            raise ValueError(f"{xs.shape[2]} RGB chunks but {xt.shape[2]} flow chunks")
        fused = _per_step_head(self.spatial_head, self.fused_pool(self.fuse(xs, xt)))
        temporal = _per_step_head(self.temporal_head, self.temporal_pool(xt))
        if self.training:
            return {"logits": fused, "aux_temporal": temporal}
        if self.test_scores == "fc8":
            return (fused + temporal) / 2
        return _softmax_average(fused, temporal)


def _tower(
    name: str,
    num_classes: int,
    in_channels: int,
    input_size: int,
    width: float,
    fc_dims: tuple[int, int] | None,
    dropout: tuple[float, float],
) -> LayeredNet:
    if name.startswith("resnet"):  # CPU-sized towers: a ResNet as a LayeredNet (dropout before fc)
        return build_backbone(name, num_classes, in_channels, width=width, dropout=dropout[-1]).as_layered()
    kw = {"width": width, "dropout": dropout}
    if fc_dims is not None:
        kw["fc_dims"] = fc_dims
    return build_backbone(name, num_classes, in_channels, input_size, **kw)


def conv_fusion(
    num_classes: int = 101,
    fusion: str = "conv",
    layer: str = "relu5",
    spatial_backbone: str = "vgg_m_2048",
    temporal_backbone: str = "vgg_m_2048",
    input_size: int = 224,
    flow_stack: int = 10,
    width: float = 1.0,
    fc_dims: tuple[int, int] | None = None,
    dropout: tuple[float, float] = (0.85, 0.85),
) -> ConvFusionTwoStream:
    """Two towers fused at ``layer`` (``relu2``...``relu5``, ``fc6``, ``fc7``, ``fc8``) by ``fusion``."""
    s = _tower(spatial_backbone, num_classes, 3, input_size, width, fc_dims, dropout)
    t = _tower(temporal_backbone, num_classes, 2 * flow_stack, input_size, width, fc_dims, dropout)
    return ConvFusionTwoStream(s, t, fusion, layer, flow_stack, num_classes)


def conv_fusion_3d(
    num_classes: int = 101,
    spatial_backbone: str = "vgg16",
    temporal_backbone: str = "vgg16",
    input_size: int = 224,
    flow_stack: int = 10,
    width: float = 1.0,
    fc_dims: tuple[int, int] | None = None,
    dropout: tuple[float, float] = (0.85, 0.85),
    temporal_pool_stride: int = 2,
    mean_subtraction: bool | str = False,
    fusion_conv: str = "3d",
    fusion_pool: str = "3d",
    test_scores: str = "fc8",
) -> Fusion3dTwoStream:
    """Final architecture: ReLU5 3D conv fusion + 3D pooling, temporal tower kept, two losses
    (``fusion_conv`` / ``fusion_pool`` = ``"2d"`` for Table 3.4's other rows)."""
    s = _tower(spatial_backbone, num_classes, 3, input_size, width, fc_dims, dropout)
    t = _tower(temporal_backbone, num_classes, 2 * flow_stack, input_size, width, fc_dims, dropout)
    return Fusion3dTwoStream(
        s, t, "relu5", flow_stack, temporal_pool_stride=temporal_pool_stride,
        mean_subtraction=mean_subtraction, fusion_conv=fusion_conv, fusion_pool=fusion_pool,
        test_scores=test_scores,
    )


_FUSION_SPEC = InputSpec(modalities=("rgb", "flow"), flow_stack=10, crop_size=224)
_3D_SPEC = InputSpec(
    modalities=("rgb", "flow"), num_segments=5, flow_stack=10, frame_stride=(1, 10), crop_size=224
)

register_model(
    "conv_fusion_vggm",
    conv_fusion,
    _FUSION_SPEC,
    paper=PAPER,
    summary="two VGG-M-2048 towers, conv fusion at ReLU5 (any fusion/layer by argument)",
)
register_model(
    "conv_fusion_3d_vgg16",
    conv_fusion_3d,
    _3D_SPEC,
    paper=PAPER,
    summary="final architecture: VGG-16 x2, 3D conv fusion + 3D pooling over 5 chunks",
)
register_model(
    "conv_fusion_2dconv_3dpool_vgg16_vggm",
    conv_fusion_3d,
    _3D_SPEC,
    paper=PAPER,
    summary="Table 3.4 row: 2D conv fusion + 3D pooling, S: VGG-16, T: VGG-M-2048",
    temporal_backbone="vgg_m_2048",
    fusion_conv="2d",
)
register_model(
    "conv_fusion_2dconv_2dpool_vgg16_vggm",
    conv_fusion_3d,
    _3D_SPEC,
    paper=PAPER,
    summary="Table 3.4 row: 2D conv fusion + 2D pooling, S: VGG-16, T: VGG-M-2048",
    temporal_backbone="vgg_m_2048",
    fusion_conv="2d",
    fusion_pool="2d",
)
register_model(
    "conv_fusion_3d_vgg16_vggm",
    conv_fusion_3d,
    _3D_SPEC,
    paper=PAPER,
    summary="3D conv fusion, S: VGG-16, T: VGG-M-2048 (13x13 conv5 padded to 14x14)",
    temporal_backbone="vgg_m_2048",
)

# CPU-sized VGG-M pair: 1/8 width, FC 256/128, 112 crops, L = 5
_VGGM_SMALL = {
    "input_size": 112, "flow_stack": 5, "width": 0.125, "fc_dims": (256, 128), "dropout": (0.5, 0.5)
}

register_model(
    "conv_fusion_small",
    conv_fusion_3d,
    _3D_SPEC.replace(crop_size=112, frame_stride=(1, 2)),
    paper=PAPER,
    summary="CPU 3D fusion: two 1/4-width ResNet-18 towers fused at conv5_x, 112 crop, 5 chunks, L=10",
    spatial_backbone="resnet18",
    temporal_backbone="resnet18",
    flow_stack=10,
    width=0.25,
    dropout=(0.5, 0.5),
    mean_subtraction=True,
)
register_model(
    "conv_fusion_vggm_small",
    conv_fusion_3d,
    _3D_SPEC.replace(flow_stack=5, crop_size=112, frame_stride=(1, 4)),
    paper=PAPER,
    summary="CPU 3D fusion: two 1/8-width VGG-M towers, FC 256/128, 112 crop, 5 chunks, L=5",
    spatial_backbone="vgg_m_2048",
    temporal_backbone="vgg_m_2048",
    **_VGGM_SMALL,
)
register_model(
    "conv_fusion_2d_small",
    conv_fusion,
    _FUSION_SPEC.replace(flow_stack=5, crop_size=112),
    paper=PAPER,
    summary="CPU 2D conv fusion at ReLU5: two 1/8-width VGG-M towers, 112 crop, L=5",
    **_VGGM_SMALL,
)
