"""AssembleNet (Ryoo, Piergiovanni, Tan & Angelova, "AssembleNet: Searching for Multi-Stream
Neural Connectivity in Video Architectures", ICLR 2020): the searched four-stream network
AssembleNet-50 (and -101) as presets; the evolutionary search itself is not reproduced.

The network is a graph. Stems read the inputs: two RGB stems (1×7×7 conv stride 2, a 5×1×1
temporal conv with the stem's temporal dilation, 1×3×3 max pool stride 2) and two optical-flow
stems (1×7×7 conv stride 2, 1×2×2 max pool stride 2), each with ``128 / #stems`` channels. Each
node has a level 0-3 (the ResNet stage it stands for), a list of input nodes, a width, a temporal
dilation and a spatial stride. Its inputs are combined by a weighted sum with one learnable
connection weight ``w_i`` per edge, ``Σ_i sigmoid(w_i) x_i``: inputs of a larger spatial size
are max pooled to the smallest (window = stride = ``(size + 1) // smallest``), inputs with the
same channel count are summed first, and each channel group other than the widest is brought to
the widest by a 1×1 conv. The node is then a stage of interleaved residual bottlenecks
(ResNet-50 stage depths 3, 4, 6, 3 per level; ResNet-101: 3, 4, 23, 3): the first block and every
even one start with a 1×1 conv, the odd ones with a 3×1×1 temporal conv of the node's dilation
(so the stage alternates 2D and (2+1)D modules), then a 1×3×3 conv at the level's inner width
(64, 128, 256, 512) with the stride, then a 1×1 conv to ``4 × width`` whose norm starts at zero;
the first block has a projection shortcut. No temporal striding anywhere. The level-3 nodes are
averaged over space and time (and over nodes) and classified.

The structure lists and the learned connection weights (after the sigmoid) are the published
ones (TensorFlow Model Garden, ``official/projects/assemblenet/configs/assemblenet.py``,
``asn50_structure``, ``asn101_structure``, ``asn_structure_weights``). Here the weights start
from them and stay learnable (``learn_connections=False`` freezes them, as the reference does
when it loads them). The reference computes optical flow inside the network ("representation
flow"); here the flow stems read ``batch["flow"]`` (one field per frame, ``[N, 2, T, H, W]``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.models.tvn import same_pad
from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_act, resolve_norm
from deepvideo.nn.inputs import rgb_input
from deepvideo.spec import InputSpec

PAPER = (
    "Ryoo et al., AssembleNet: Searching for Multi-Stream Neural Connectivity in Video Architectures, "
    "ICLR 2020"
)
INNER_WIDTHS = (64, 128, 256, 512)
STAGE_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

# stems: (-1 RGB | -2 flow, temporal dilation); nodes: (level, inputs, width, dilation, stride)
ASN50 = (
    (-1, 4), (-1, 4), (-2, 1), (-2, 1),
    (0, (1,), 32, 1, 1), (0, (0,), 32, 4, 1), (0, (0, 1, 2, 3), 32, 1, 1), (0, (2, 3), 32, 2, 1),
    (1, (0, 4, 5, 6, 7), 64, 2, 2), (1, (0, 2, 4, 7), 64, 1, 2), (1, (0, 5, 7), 64, 4, 2),
    (1, (0, 5), 64, 1, 2), (2, (4, 8, 10, 11), 256, 1, 2), (2, (8, 9), 256, 4, 2),
    (3, (12, 13), 512, 2, 2),
)
ASN101 = ASN50[:12] + ((2, (4, 8, 10, 11), 192, 1, 2), (2, (8, 9), 192, 4, 2), (3, (12, 13), 256, 2, 2))
# learned connection weights after the sigmoid, per node with several inputs (node index: weights)
ASN_WEIGHTS = {
    6: (0.13810564577579498, 0.8465337157249451, 0.3072969317436218, 0.2867436408996582),
    7: (0.5846117734909058, 0.6066334843635559),
    8: (0.16382087767124176, 0.8852924704551697, 0.4039595425128937, 0.6823437809944153,
        0.5331538319587708),
    9: (0.028569204732775688, 0.10333596915006638, 0.7517264485359192, 0.9260114431381226),
    10: (0.28832191228866577, 0.7627848982810974, 0.404977947473526),
    11: (0.23474831879138947, 0.7841425538063049),
    12: (0.27616503834724426, 0.9514784812927246, 0.6568767428398132, 0.9547983407974243),
    13: (0.5047007203102112, 0.8876819610595703),
    14: (0.9892204403877258, 0.8454614877700806),
}


class ConvBN(nn.Sequential):
    """Conv3d (no bias, symmetric padding ``dilation·(k−1)/2``) -> norm (-> activation)."""

    def __init__(self, cin: int, cout: int, kernel, stride=(1, 1, 1), dilation: int = 1, *,
                 norm: NormBuilder, act: ActBuilder | None, zero_norm: bool = False) -> None:
        pad = (dilation * (kernel[0] - 1) // 2, (kernel[1] - 1) // 2, (kernel[2] - 1) // 2)
        layers = [nn.Conv3d(cin, cout, kernel, stride, pad, (dilation, 1, 1), bias=False), norm(cout)]
        if zero_norm and getattr(layers[1], "weight", None) is not None:
            nn.init.zeros_(layers[1].weight)
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class InterleavedBottleneck(nn.Module):
    """1×1 conv (``temporal=False``) or 3×1×1 dilated temporal conv, 1×3×3 conv (stride), 1×1
    conv to ``4 × width`` with a zero-initialised norm; shortcut (projection on the first)."""

    def __init__(self, cin: int, width: int, inner: int, stride: int, temporal: bool, dilation: int,
                 norm: NormBuilder, act: ActBuilder) -> None:
        super().__init__()
        first_kernel = (3, 1, 1) if temporal else (1, 1, 1)
        self.conv_a = ConvBN(cin, width, first_kernel, dilation=dilation if temporal else 1,
                             norm=norm, act=act)
        self.conv_b = ConvBN(width, inner, (1, 3, 3), (1, stride, stride), norm=norm, act=act)
        self.conv_c = ConvBN(inner, 4 * width, (1, 1, 1), norm=norm, act=None, zero_norm=True)
        self.shortcut = None
        if stride != 1 or cin != 4 * width:
            self.shortcut = ConvBN(cin, 4 * width, (1, 1, 1), (1, stride, stride), norm=norm, act=None)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv_c(self.conv_b(self.conv_a(x))) + skip)


class WeightedFusion(nn.Module):
    """``Σ_i sigmoid(w_i) x_i`` over inputs of possibly different sizes and widths (see module
    docstring); ``init`` are the weights after the sigmoid (default: ``w ~ N(0, 0.01)``)."""

    def __init__(self, channels: list[int], init: tuple[float, ...] | None = None,
                 learn: bool = True) -> None:
        super().__init__()
        self.channels = list(channels)
        self.out_channels = max(channels)
        self.logits = None
        self.project = nn.ModuleDict()
        if len(channels) == 1:  # one input: passed on as it is, no weight
            return
        if init is not None:
            if len(init) != len(channels):
                raise ValueError(f"{len(init)} connection weights for {len(channels)} inputs")
            logits = torch.tensor([math.log(p / (1 - p)) for p in init])
        else:
            logits = torch.randn(len(channels)).clamp(-2, 2) * 0.01
        self.logits = nn.Parameter(logits, requires_grad=learn)
        widths = sorted(set(channels))
        for c in widths:
            if c != self.out_channels:
                self.project[str(c)] = nn.Conv3d(c, self.out_channels, 1, bias=False)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) == 1:
            return inputs[0]
        weights = torch.sigmoid(self.logits)
        small = min(x.shape[-1] for x in inputs)
        groups: dict[int, torch.Tensor] = {}
        for w, x in zip(weights, inputs, strict=True):
            if x.shape[-1] != small:
                r = (x.shape[-1] + 1) // small
                x = F.max_pool3d(same_pad(x, (1, r, r), (1, r, r), float("-inf")), (1, r, r), (1, r, r))
            groups[x.shape[1]] = groups.get(x.shape[1], 0) + w * x
        return sum(self.project[str(c)](x) if c != self.out_channels else x for c, x in groups.items())


def _stem(kind: int, cin: int, filters: int, dilation: int, norm: NormBuilder, act: ActBuilder) -> nn.Module:
    if kind == -1:  # RGB: 7x7 conv, temporal 5x1x1 conv (dilated), 3x3 max pool
        return nn.Sequential(
            ConvBN(cin, filters, (1, 7, 7), (1, 2, 2), norm=norm, act=act),
            ConvBN(filters, filters, (5, 1, 1), dilation=dilation, norm=norm, act=act),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
    return nn.Sequential(  # flow: 7x7 conv, 2x2 max pool
        ConvBN(cin, filters, (1, 7, 7), (1, 2, 2), norm=norm, act=act), nn.MaxPool3d((1, 2, 2), (1, 2, 2))
    )


class AssembleNet(nn.Module):
    """A multi-stream AssembleNet from a structure list (``ASN50`` / ``ASN101``)."""

    def __init__(self, num_classes: int = 400, *, structure=ASN50, weights=ASN_WEIGHTS, depth: int = 50,
                 width: float = 1.0, stage_depths=None, learn_connections: bool = True, dropout: float = 0.0,
                 norm: NormBuilder | str = "bn", act: ActBuilder | str = "relu") -> None:
        super().__init__()
        norm_b, act_b = resolve_norm(norm), resolve_act(act)
        depths = stage_depths or STAGE_DEPTHS[depth]
        self.structure = tuple(structure)
        stems = [n for n in structure if n[0] < 0]
        stem_filters = max(1, round(128 // len(stems) * width))
        self.nodes, self.fusions, widths = nn.ModuleList(), nn.ModuleList(), []
        for i, node in enumerate(structure):
            if node[0] < 0:
                cin = 3 if node[0] == -1 else 2
                self.nodes.append(_stem(node[0], cin, stem_filters, node[1], norm_b, act_b))
                self.fusions.append(nn.Identity())
                widths.append(stem_filters)
                continue
            level, inputs, filters, dilation, stride = node
            if any(j >= i for j in inputs):
                raise ValueError(f"AssembleNet node {i} reads node(s) {inputs}: inputs must come earlier")
            fusion = WeightedFusion([widths[j] for j in inputs], (weights or {}).get(i), learn_connections)
            f, inner = max(1, round(filters * width)), max(1, round(INNER_WIDTHS[level] * width))
            blocks, cin = [], fusion.out_channels
            for b in range(depths[level]):
                blocks.append(InterleavedBottleneck(cin, f, inner, stride if b == 0 else 1, b % 2 == 1,
                                                    dilation, norm_b, act_b))
                cin = 4 * f
            self.nodes.append(nn.Sequential(*blocks))
            self.fusions.append(fusion)
            widths.append(cin)
        self.final = [i for i, n in enumerate(structure) if n[0] == 3]
        if not self.final or len({widths[i] for i in self.final}) != 1:
            raise ValueError("AssembleNet needs level-3 nodes of one width for its head")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[self.final[0]], num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = rgb_input(batch)
        flow = batch.get("flow") if isinstance(batch, dict) else None
        outs: list[torch.Tensor] = []
        for node, fusion, spec in zip(self.nodes, self.fusions, self.structure, strict=True):
            if spec[0] == -2 and flow is None:
                raise KeyError("AssembleNet's flow stems need batch['flow'] [N, 2, T, H, W]")
            if spec[0] < 0:
                outs.append(node(rgb if spec[0] == -1 else flow))
            else:
                outs.append(node(fusion([outs[j] for j in spec[1]])))
        pooled = torch.stack([outs[i].mean(dim=(2, 3, 4)) for i in self.final]).mean(0)
        return self.fc(self.dropout(pooled))


def _spec(frames: int, crop: int) -> InputSpec:
    """RGB clip and one flow field per frame."""
    return InputSpec(("rgb", "flow"), num_frames=frames, flow_stack=frames, crop_size=crop)


@register_model(spec=_spec(32, 224), paper=PAPER)
def assemblenet_50(num_classes: int = 400, **kw) -> AssembleNet:
    """AssembleNet-50: the searched 4-stream graph (2 RGB, 2 flow stems), published connection weights"""
    return AssembleNet(num_classes, **{"structure": ASN50, "depth": 50, **kw})


@register_model(spec=_spec(32, 224), paper=PAPER)
def assemblenet_101(num_classes: int = 400, **kw) -> AssembleNet:
    """AssembleNet-101: the searched 4-stream graph at ResNet-101 stage depths"""
    return AssembleNet(num_classes, **{"structure": ASN101, "depth": 101, **kw})


@register_model(spec=_spec(8, 112), paper=PAPER, width=0.25, stage_depths=(1, 1, 1, 1))
def assemblenet_50_small(num_classes: int = 400, **kw) -> AssembleNet:
    """CPU AssembleNet-50 graph: 1/4 width, one block per node, 8 frames of 112²"""
    return AssembleNet(num_classes, **{"structure": ASN50, "width": 0.25, "stage_depths": (1, 1, 1, 1), **kw})
