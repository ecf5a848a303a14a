"""2D ResNets run frame by frame as 3D nets with temporal extent 1 (:class:`ResNetStream`), and
two such streams, appearance and motion, joined by cross-stream connections
(:class:`TwoStreamResNet`): the trunk of ST-ResNet (Feichtenhofer, Pinz & Wildes, NIPS 2016),
ST-Mult (Feichtenhofer et al., CVPR 2017) and T-ResNet."""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.nn.backbones2d import ResNet2d, resnet
from deepvideo.nn.cross_stream import ResidualUnit
from deepvideo.nn.inflate import inflate_module
from deepvideo.nn.init import adapt_input_channels
from deepvideo.nn.inputs import flow_to_snippets, rgb_input
from deepvideo.nn.temporal import TemporalMaxPool1d

TEMPORAL_HEADS = ("dense", "dense_maxpool", "max", "avg", "position_max")


class ResNetStream(nn.Module):
    """A 2D ResNet run on ``[N, C, T, H, W]`` frame by frame, its units as :class:`ResidualUnit`.

    ``temporal_head``: ``"dense"`` (FC at every time step, ``[N, K, T]``), ``"dense_maxpool"``
    (temporal max pooling ``window``/``stride`` after pool5, then FC per step), ``"max"`` / ``"avg"``
    (global temporal pooling after pool5, ``[N, K]``), ``"position_max"`` (ST-Mult eq. 5.10:
    ``x(i,j,c) = max_t x(i,j,t,c)`` per spatial position, then the spatial average, ``[N, K]``).
    ``dropout_after_fc``: the dropout acts on the classifier's output (ST-Mult's motion stream,
    "dropout after the classifier") instead of on its input.
    """

    def __init__(
        self,
        net2d: ResNet2d,
        num_classes: int,
        temporal_head: str = "dense",
        dropout: float = 0.0,
        window: int = 5,
        stride: int = 2,
        dropout_after_fc: bool = False,
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
        self.dropout_after_fc = dropout_after_fc
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
        if self.temporal_head == "position_max":
            return self._classify(x.amax(dim=2).mean(dim=(2, 3)))
        x = x.mean(dim=(3, 4))  # pool5: spatial average -> [N, C, T]
        if self.temporal_head in ("max", "avg"):
            return self._classify(x.amax(dim=2) if self.temporal_head == "max" else x.mean(dim=2))
        if self.time_pool is not None:
            x = self.time_pool(x)
        return self._classify(x.transpose(1, 2)).transpose(1, 2)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        if self.dropout_after_fc:
            return self.dropout(self.fc(x))
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def flow_clip(flow: torch.Tensor, flow_stack: int) -> torch.Tensor:
    """``[N, 2, T*L, H, W]`` -> ``[N, 2L, T, H, W]`` (one ``2L``-channel stack per chunk)."""
    n = flow.shape[0]
    x = flow_to_snippets(flow, flow_stack)
    return x.reshape(n, -1, *x.shape[1:]).transpose(1, 2)


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
        xa = self.appearance.stem(rgb_input(batch))
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
    depth: int, num_classes: int, in_channels: int, width: float = 1.0, rgb_init: str = "st_resnet",
    **head_kw,
) -> ResNetStream:
    """ResNet-``depth`` stream; a flow stream's conv1 starts from the RGB conv1 by ``rgb_init``
    (:data:`deepvideo.nn.init.RGB_INITS`; default ST-ResNet's replication)."""
    net = resnet(depth, num_classes=num_classes, width=width)
    if in_channels != 3:
        adapt_input_channels(net, in_channels, rgb_init)
    return ResNetStream(net, num_classes, **head_kw)
