"""Two-in-one stream: one RGB network whose conv features are modulated by motion.

Zhao & Snoek, "Dance with Flow: Two-in-One Stream Action Detection", CVPR 2019. Instead of a
second (flow) network, a *motion condition* (MC) layer turns the flow field into condition maps
and *motion modulation* (MM) layers turn those into per-position scale and shift maps that
transform the RGB network's conv features, ``F' = γ ⊙ F + β``. The stream costs about half of a
two-stream pair; the "two-in-one two stream" variant adds a flow stream and fuses the scores.

Published figures used here (the paper's parameter table, detection on UCF101-24): the RGB SSD
stream has 26.82M parameters, the two-in-one stream 26.93M. The RGB stream is SSD300 on VGG-16
(Liu et al. 2016: conv1_1..conv5_3, fc6 as a 3x3 conv of dilation 6, fc7 1x1, extra layers
conv8..conv11, L2-normalised conv4_3, 4/6/6/6/4/4 default boxes per position) with 25 classes
(24 actions + background): :func:`ssd300_vgg16` counts 26.82M. The paper's totals fix the MC/MM
overhead at 0.11M; the layer widths are our reading of the design, chosen to match it: MC = a 3x3
conv (flow -> 32) and three 1x1 convs (32 -> 32), leaky ReLU 0.1 (the spatial feature transform
of Wang et al. 2018 that the MM layer follows); one MM layer at the output of each VGG block
(relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), each with γ and β branches of two 1x1 convs
(32 hidden). The condition maps are average-pooled to each modulated layer's resolution. The γ
branch starts at γ = 1 and the β branch at β = 0 (last convs zero, bias 1 / 0), so an RGB network
is unchanged before training. Only the detection *network* is built (no default boxes, matching
or NMS).

Recognition presets: the same MC/MM layers on VGG-16 classifying snippets (one RGB frame and the
flow at that frame), scores averaged over the ``num_segments`` snippets (TSN consensus); batches
``rgb [N, 3, K, H, W]`` and ``flow [N, 2, K*L, H, W]``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.nn.backbones2d import LayeredNet, vgg16
from deepvideo.nn.inputs import flow_to_snippets, rgb_to_snippets
from deepvideo.spec import InputSpec

PAPER = "Zhao & Snoek, Dance with Flow: Two-in-One Stream Action Detection, CVPR 2019"
RGB_SSD_PARAMS = 26.82e6  # Zhao & Snoek 2019, parameter table (RGB stream)
TWO_IN_ONE_SSD_PARAMS = 26.93e6  # Zhao & Snoek 2019, parameter table (two-in-one stream)
CONDITION_CHANNELS = 32
MODULATED = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LEAK = 0.1


class MotionCondition(nn.Module):
    """MC layer: flow ``[N, 2L, H, W]`` -> condition maps ``[N, C, H, W]``."""

    def __init__(self, in_channels: int = 2, channels: int = CONDITION_CHANNELS, layers: int = 4):
        super().__init__()
        convs = [nn.Conv2d(in_channels, channels, 3, padding=1)]
        convs += [nn.Conv2d(channels, channels, 1) for _ in range(layers - 1)]
        self.convs = nn.ModuleList(convs)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        x = flow
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAK)
        return x


def _branch(cond: int, hidden: int, out: int, bias: float) -> nn.Sequential:
    last = nn.Conv2d(hidden, out, 1)
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(nn.Conv2d(cond, hidden, 1), nn.LeakyReLU(LEAK), last)


class MotionModulation(nn.Module):
    """MM layer: ``F' = γ(c) ⊙ F + β(c)`` with the condition ``c`` pooled to ``F``'s size."""

    def __init__(self, channels: int, cond: int = CONDITION_CHANNELS, hidden: int = CONDITION_CHANNELS):
        super().__init__()
        self.gamma = _branch(cond, hidden, channels, 1.0)
        self.beta = _branch(cond, hidden, channels, 0.0)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        c = F.adaptive_avg_pool2d(condition, features.shape[-2:])
        return self.gamma(c) * features + self.beta(c)


class ModulatedNet(nn.Module):
    """A :class:`LayeredNet` whose outputs of the layers ``modulated`` pass through MM layers."""

    def __init__(self, net: LayeredNet, flow_channels: int, modulated: tuple[str, ...] = MODULATED):
        super().__init__()
        self.net = net
        self.condition = MotionCondition(flow_channels)
        names = [net.resolve(m) for m in modulated]
        self.modulation = nn.ModuleDict({n: MotionModulation(net.channels_at(n)) for n in names})

    def run(self, x: torch.Tensor, flow: torch.Tensor, until: str | None = None) -> torch.Tensor:
        """The network on RGB ``x`` modulated by ``flow`` (up to and including layer ``until``)."""
        c = self.condition(flow)
        for name, layer in self.net.named_children():
            x = layer(x)
            if name in self.modulation:
                x = self.modulation[name](x, c)
            if name == until:
                break
        return x


class TwoInOneNet(nn.Module):
    """Recognition: per snippet one RGB frame modulated by its flow, scores averaged over snippets."""

    def __init__(self, net: LayeredNet, flow_stack: int = 1):
        super().__init__()
        self.flow_stack = flow_stack
        self.body = ModulatedNet(net, 2 * flow_stack)

    def forward(self, batch: dict) -> torch.Tensor:
        for key in ("rgb", "flow"):
            if key not in batch:
                raise KeyError(f"the two-in-one stream needs batch[{key!r}]; the batch has {sorted(batch)}")
        rgb, n = rgb_to_snippets(batch["rgb"], 1), batch["rgb"].shape[0]
        flow = flow_to_snippets(batch["flow"], self.flow_stack)
        if flow.shape[0] != rgb.shape[0]:
            raise ValueError(f"{rgb.shape[0] // n} RGB snippets but {flow.shape[0] // n} flow snippets")
        return self.body.run(rgb, flow).reshape(n, -1, self.body.net.fc8.out_features).mean(1)


class FlowStream(nn.Module):
    """The flow stream of the two-in-one two stream: the same network on the flow stack."""

    def __init__(self, net: LayeredNet, flow_stack: int = 1):
        super().__init__()
        self.net, self.flow_stack = net, flow_stack

    def forward(self, batch: dict) -> torch.Tensor:
        flow = flow_to_snippets(batch["flow"], self.flow_stack)
        return self.net(flow).reshape(batch["flow"].shape[0], -1, self.net.fc8.out_features).mean(1)


class TwoInOneTwoStream(nn.Module):
    """Two-in-one two stream: the two-in-one stream and a flow stream, softmax scores averaged
    in eval mode (late fusion); in training each stream's logits get their own loss."""

    def __init__(self, two_in_one: TwoInOneNet, flow: FlowStream):
        super().__init__()
        self.two_in_one, self.flow = two_in_one, flow

    def forward(self, batch: dict):
        a, b = self.two_in_one(batch), self.flow(batch)
        if self.training:
            return {"logits": a, "aux_flow": b}
        return torch.log((a.softmax(1) + b.softmax(1)) / 2)


def two_in_one(num_classes: int = 101, flow_stack: int = 1, width: float = 1.0, input_size: int = 224,
               fc_dims: tuple[int, int] = (4096, 4096)) -> TwoInOneNet:
    """Two-in-one stream on VGG-16 (MM layers after each VGG block)."""
    return TwoInOneNet(vgg16(num_classes, 3, input_size, width, tuple(fc_dims)), flow_stack)


def two_in_one_two_stream(num_classes: int = 101, flow_stack: int = 1, width: float = 1.0,
                          input_size: int = 224,
                          fc_dims: tuple[int, int] = (4096, 4096)) -> TwoInOneTwoStream:
    flow = FlowStream(vgg16(num_classes, 2 * flow_stack, input_size, width, tuple(fc_dims)), flow_stack)
    return TwoInOneTwoStream(two_in_one(num_classes, flow_stack, width, input_size, fc_dims), flow)


# --------------------------------------------------------------------------- detection network
SSD_BOXES = (4, 6, 6, 6, 4, 4)  # default boxes per position on the six SSD300 maps (Liu et al. 2016)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (SSD's conv4_3, scale 20)."""

    def __init__(self, channels: int, scale: float = 20.0):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1, eps=1e-10) * self.weight[None, :, None, None]


def _ssd_trunk() -> LayeredNet:
    """VGG-16 conv1_1..relu5_3 (pool3 with ceil mode, pool5 3x3 stride 1), then fc6/fc7 as convs."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    c_in = 3
    for b, (c, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, n + 1):
            layers[f"conv{b}_{i}"], layers[f"relu{b}_{i}"] = nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()
            c_in = c
        if b < 5:
            layers[f"pool{b}"] = nn.MaxPool2d(2, 2, ceil_mode=b == 3)
    layers["pool5"] = nn.MaxPool2d(3, 1, padding=1)
    layers["fc6"], layers["relu_fc6"] = nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU()
    layers["fc7"], layers["relu_fc7"] = nn.Conv2d(1024, 1024, 1), nn.ReLU()
    return LayeredNet(layers)


def _extras() -> nn.ModuleList:
    spec = [(1024, 256, 512, 2, 1), (512, 128, 256, 2, 1), (256, 128, 256, 1, 0), (256, 128, 256, 1, 0)]
    return nn.ModuleList(nn.Sequential(nn.Conv2d(c, mid, 1), nn.ReLU(), nn.Conv2d(mid, out, 3, stride, pad),
                                       nn.ReLU()) for c, mid, out, stride, pad in spec)


class SSD300(nn.Module):
    """SSD300 detection network on VGG-16: ``(box offsets [N, B, 4], class logits [N, B, K])``,
    optionally with two-in-one motion modulation (``flow_channels > 0``)."""

    def __init__(self, num_classes: int = 25, flow_channels: int = 0):
        super().__init__()
        trunk = _ssd_trunk()
        self.body = ModulatedNet(trunk, flow_channels) if flow_channels else None
        self.trunk = None if flow_channels else trunk
        self.l2norm = L2Norm(512)
        self.extras = _extras()
        maps = (512, 1024, 512, 256, 256, 256)
        self.loc = nn.ModuleList(nn.Conv2d(c, k * 4, 3, padding=1)
                                 for c, k in zip(maps, SSD_BOXES, strict=True))
        self.conf = nn.ModuleList(nn.Conv2d(c, k * num_classes, 3, padding=1)
                                  for c, k in zip(maps, SSD_BOXES, strict=True))
        self.num_classes = num_classes

    def forward(self, image: torch.Tensor, flow: torch.Tensor | None = None):
        trunk = self.body.net if self.body is not None else self.trunk
        c = None
        if self.body is not None:
            if flow is None:
                raise ValueError("the two-in-one SSD needs the flow that conditions its features")
            c = self.body.condition(flow)
        x, maps = image, []
        for name, layer in trunk.named_children():
            x = layer(x)
            if c is not None and name in self.body.modulation:
                x = self.body.modulation[name](x, c)
            if name == "relu4_3":
                maps.append(self.l2norm(x))
        maps.append(x)
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        n = image.shape[0]
        loc = [h(m).permute(0, 2, 3, 1).reshape(n, -1, 4) for h, m in zip(self.loc, maps, strict=True)]
        conf = [h(m).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes)
                for h, m in zip(self.conf, maps, strict=True)]
        return torch.cat(loc, 1), torch.cat(conf, 1)


def ssd300_vgg16(num_classes: int = 25) -> SSD300:
    """The RGB stream of the paper's detection table (26.82M parameters with 25 classes)."""
    return SSD300(num_classes)


def two_in_one_ssd300(num_classes: int = 25, flow_stack: int = 1) -> SSD300:
    """The two-in-one stream of the paper's detection table (26.93M parameters with 25 classes)."""
    return SSD300(num_classes, 2 * flow_stack)


def _spec(segments: int, crop: int, flow_stack: int = 1) -> InputSpec:
    return InputSpec(modalities=("rgb", "flow"), num_segments=segments, num_frames=1, flow_stack=flow_stack,
                     crop_size=crop)


register_model("two_in_one_vgg16", two_in_one, _spec(3, 224), paper=PAPER,
               summary="Two-in-one stream: VGG-16 RGB with MC/MM motion modulation, 3 snippets")
register_model("two_in_one_two_stream_vgg16", two_in_one_two_stream, _spec(3, 224), paper=PAPER,
               summary="Two-in-one two stream: two-in-one VGG-16 + flow VGG-16, scores averaged")
register_model("two_in_one_small", two_in_one, _spec(3, 112), paper=PAPER,
               summary="CPU two-in-one stream: 1/4-width VGG-16 (FC 512) at 112x112", width=0.25,
               input_size=112, fc_dims=(512, 512))
register_model("two_in_one_two_stream_small", two_in_one_two_stream, _spec(3, 112), paper=PAPER,
               summary="CPU two-in-one two stream: 1/4-width VGG-16s (FC 512) at 112x112", width=0.25,
               input_size=112, fc_dims=(512, 512))
