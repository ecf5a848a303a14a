"""Spatiotemporal residual networks, ST-ResNet (Feichtenhofer, Pinz & Wildes, NIPS 2016; thesis ch. 4).

Two ResNet-50 streams, applied frame by frame as 3D nets with temporal extent 1
(:class:`ResNetStream`, the 2D ResNet inflated): appearance on RGB frames, motion on ``2L = 20``
stacked flow channels (conv1 by cross-modality initialization). Over ``T`` chunks ``tau`` frames
apart (Table 4.1: ``T = 11`` maps of ``112^2 -> 7^2`` keep their time axis):

* additive residual connections from motion into appearance,
  ``x^a_{l+1} = f(x^a_l) + F(x^a_l + f(x^m_l))``, before the second residual unit of each of
  conv2_x ... conv5_x (4 connections);
* the 1x1 dimensionality-mapping convs (reduce and expand) of those residual units, in both
  streams, become ``1x1x3`` temporal convs initialized as averaging ``w / T'`` (16 layers);
* pool5 (spatial average), one FC per stream applied at every time step: one loss per chunk
  (``dense_temporal``: logits ``[N, K, T]``). ST-ResNet* adds temporal max pooling (window 5,
  stride 2) after pool5 (11 chunks -> 4 positions).

Training returns ``{"logits": appearance [N, K, T'], "aux_motion": motion [N, K, T']}`` (the
engine applies the loss to every time step: ``cross_entropy(logits, label[:, None].expand(-1, T'))``);
eval returns the average of the two streams' non-softmaxed scores, as in the paper's test.
Sub-batch BN is ``deepvideo.nn.norm.convert_sub_batch_norm``.

Reported (mean of 3 splits, UCF101 / HMDB51): two-stream 89.47/60.59, ST-ResNet 92.76/65.57,
ST-ResNet* 93.46/66.41.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import ResNet2d, resnet
from deepvideo.nn.cross_stream import CrossStreamConnection, ResidualUnit
from deepvideo.nn.inflate import inflate_module
from deepvideo.nn.init import adapt_input_channels
from deepvideo.nn.inputs import flow_to_snippets
from deepvideo.nn.temporal import TemporalMaxPool1d, temporalize_conv
from deepvideo.spec import InputSpec

PAPER = (
    "Feichtenhofer, Pinz & Wildes, Spatiotemporal Residual Networks for Video Action Recognition, NIPS 2016"
)
TEMPORAL_HEADS = ("dense", "dense_maxpool", "max", "avg")


class ResNetStream(nn.Module):
    """A 2D ResNet run on ``[N, C, T, H, W]`` frame by frame, its units as :class:`ResidualUnit`.

    ``temporal_head``: ``"dense"`` (FC at every time step, ``[N, K, T]``), ``"dense_maxpool"``
    (temporal max pooling ``window``/``stride`` after pool5, then FC per step), ``"max"`` / ``"avg"``
    (global temporal pooling after pool5, ``[N, K]``).
    """

    def __init__(
        self,
        net2d: ResNet2d,
        num_classes: int,
        temporal_head: str = "dense",
        dropout: float = 0.0,
        window: int = 5,
        stride: int = 2,
    ):
        super().__init__()
        if temporal_head not in TEMPORAL_HEADS:
            raise ValueError(f"unknown temporal head {temporal_head!r}; choose one of {TEMPORAL_HEADS}")
        net = inflate_module(net2d, time_kernel=1)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList(nn.ModuleList(ResidualUnit(b) for b in stage) for stage in net.stages)
        self.temporal_head = temporal_head
        self.time_pool = TemporalMaxPool1d(window, stride) if temporal_head == "dense_maxpool" else None
        self.dropout = nn.Dropout(dropout)
        self.num_features = net2d.num_features
        self.fc = nn.Linear(self.num_features, num_classes)

    def units(self):
        """``(stage, index, unit)`` for every residual unit, stage 0 = conv2_x."""
        for s, stage in enumerate(self.stages):
            for i, unit in enumerate(stage):
                yield s, i, unit

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for _, _, unit in self.units():
            x = unit(x)
        return x

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` conv5 map -> logits ``[N, K]`` or ``[N, K, T']``."""
        x = x.mean(dim=(3, 4))  # pool5: spatial average -> [N, C, T]
        if self.temporal_head in ("max", "avg"):
            x = x.amax(dim=2) if self.temporal_head == "max" else x.mean(dim=2)
            return self.fc(self.dropout(x))
        if self.time_pool is not None:
            x = self.time_pool(x)
        return self.fc(self.dropout(x.transpose(1, 2))).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def flow_clip(flow: torch.Tensor, flow_stack: int) -> torch.Tensor:
    """``[N, 2, T*L, H, W]`` -> ``[N, 2L, T, H, W]`` (one ``2L``-channel stack per chunk)."""
    n = flow.shape[0]
    x = flow_to_snippets(flow, flow_stack)
    return x.reshape(n, -1, *x.shape[1:]).transpose(1, 2)


def rgb_clip(batch: dict) -> torch.Tensor:
    if "rgb" not in batch:
        raise KeyError(f"the appearance stream needs batch['rgb']; the batch has {sorted(batch)}")
    return batch["rgb"]


class TwoStreamResNet(nn.Module):
    """Appearance and motion :class:`ResNetStream`\\ s with cross-stream connections.

    ``connections`` maps ``(stage, unit)`` (stage 0 = conv2_x, unit 0-based) to a
    :class:`CrossStreamConnection` applied at that unit's input. Eval output: the weighted average
    of the streams' scores (``fusion_weights`` appearance, motion).
    """

    def __init__(
        self,
        appearance: ResNetStream,
        motion: ResNetStream,
        connections: dict[tuple[int, int], nn.Module],
        flow_stack: int = 10,
        fusion_weights: tuple[float, float] = (1.0, 1.0),
    ):
        super().__init__()
        self.appearance, self.motion = appearance, motion
        self.flow_stack = flow_stack
        self.fusion_weights = tuple(float(w) for w in fusion_weights)
        shape_a = [len(s) for s in appearance.stages]
        shape_m = [len(s) for s in motion.stages]
        for s, u in connections:
            if s >= min(len(shape_a), len(shape_m)) or u >= min(shape_a[s], shape_m[s]):
                raise ValueError(
                    f"connection at stage {s} unit {u} does not exist in both streams "
                    f"(units per stage: appearance {shape_a}, motion {shape_m})"
                )
        self.connections = nn.ModuleDict({f"s{s}u{u}": c for (s, u), c in connections.items()})

    def forward(self, batch: dict):
        xa = self.appearance.stem(rgb_clip(batch))
        if "flow" not in batch:
            raise KeyError(f"the motion stream needs batch['flow']; the batch has {sorted(batch)}")
        xm = self.motion.stem(flow_clip(batch["flow"], self.flow_stack))
        if xa.shape[2] != xm.shape[2]:
            raise ValueError(f"{xa.shape[2]} RGB chunks but {xm.shape[2]} flow chunks")
        for s, (stage_a, stage_m) in enumerate(zip(self.appearance.stages, self.motion.stages, strict=False)):
            for u in range(max(len(stage_a), len(stage_m))):
                key = f"s{s}u{u}"
                if key in self.connections:
                    xa, xm = self.connections[key](stage_a[u], stage_m[u], xa, xm)
                else:
                    if u < len(stage_a):
                        xa = stage_a[u](xa)
                    if u < len(stage_m):
                        xm = stage_m[u](xm)
        la, lm = self.appearance.head(xa), self.motion.head(xm)
        if self.training:
            return {"logits": la, "aux_motion": lm}
        wa, wm = self.fusion_weights
        return (wa * la + wm * lm) / (wa + wm)


def make_stream(
    depth: int, num_classes: int, in_channels: int, width: float = 1.0, **head_kw
) -> ResNetStream:
    """ResNet-``depth`` stream; a flow stream's conv1 is the RGB conv1 by cross-modality init."""
    net = resnet(depth, num_classes=num_classes, width=width)
    if in_channels != 3:
        adapt_input_channels(net, in_channels)
    return ResNetStream(net, num_classes, **head_kw)


def add_temporal_convs(
    stream: ResNetStream,
    units: Sequence[tuple[int, int]],
    convs: Sequence[str] = ("conv1", "conv3"),
    time_kernel: int = 3,
    init: str = "average",
) -> int:
    """Turn the named convs of the given units into ``1x1xT'`` temporal convs; returns how many."""
    count = 0
    for s, u in units:
        block = stream.stages[s][u].block
        for name in convs:
            conv = getattr(block, name, None)
            if conv is not None:
                setattr(block, name, temporalize_conv(conv, time_kernel, init))
                count += 1
    return count


def st_resnet(
    num_classes: int = 101,
    appearance_depth: int = 50,
    motion_depth: int = 50,
    flow_stack: int = 10,
    width: float = 1.0,
    star: bool = False,
    connect_unit: int = 1,
    op: str = "add",
    kind: str = "residual",
    direction: str = "m2a",
    temporal_convs: Sequence[str] = ("conv1", "conv3"),
    time_kernel: int = 3,
    temporal_head: str | None = None,
    dropout: float = 0.0,
) -> TwoStreamResNet:
    """ST-ResNet (``star=True``: ST-ResNet*, temporal max pooling window 5 stride 2 after pool5).

    ``temporal_convs=()`` leaves out the temporal filters; ``connect_unit`` picks the unit of each
    stage receiving the connection (1 = second unit, the paper's choice).
    """
    head = temporal_head or ("dense_maxpool" if star else "dense")
    app = make_stream(appearance_depth, num_classes, 3, width, temporal_head=head, dropout=dropout)
    mot = make_stream(motion_depth, num_classes, 2 * flow_stack, width, temporal_head=head, dropout=dropout)
    units = [(s, connect_unit) for s in range(4)]
    for stream in (app, mot):
        add_temporal_convs(stream, units, temporal_convs, time_kernel, "average")
    connections = {u: CrossStreamConnection(op, kind, direction) for u in units}
    return TwoStreamResNet(app, mot, connections, flow_stack)


def _spec(chunks: int, stride, crop: int, flow_stack: int) -> InputSpec:
    return InputSpec(
        modalities=("rgb", "flow"),
        num_segments=chunks,
        frame_stride=stride,
        flow_stack=flow_stack,
        crop_size=crop,
        dense_temporal=True,
    )


_SMALL = {"appearance_depth": 18, "motion_depth": 18, "width": 0.25, "flow_stack": 5}

register_model(
    "st_resnet50",
    st_resnet,
    _spec(5, (5, 15), 224, 10),
    paper=PAPER,
    summary="ST-ResNet: two ResNet-50s, additive motion->appearance residual connections, 1x1x3 convs",
)
register_model(
    "st_resnet50_star",
    st_resnet,
    _spec(11, (1, 15), 224, 10),
    paper=PAPER,
    summary="ST-ResNet*: ST-ResNet + temporal max pooling (window 5) after pool5, 11 chunks",
    star=True,
)
register_model(
    "st_resnet_small",
    st_resnet,
    _spec(5, (1, 4), 112, 5),
    paper=PAPER,
    summary="CPU ST-ResNet: two 1/4-width ResNet-18s, L=5, 112 crop, 5 chunks",
    **_SMALL,
)
register_model(
    "st_resnet_star_small",
    st_resnet,
    _spec(7, (1, 4), 112, 5),
    paper=PAPER,
    summary="CPU ST-ResNet*: two 1/4-width ResNet-18s, 7 chunks -> 2 positions",
    star=True,
    **_SMALL,
)
