"""Siamese region-proposal networks: SiamRPN, SiamRPN++ and SiamMask.

- **SiamRPN** (B. Li, J. Yan, W. Wu, Z. Zhu, X. Hu, CVPR 2018, Sec. 3.2-3.3): a modified AlexNet
  (conv 11/2 96 - pool - conv 5 256 - pool - conv 3 384 - conv 3 384 - conv 3 256, batch norm, no
  padding, total stride 8; the layer order conv-BN-pool-ReLU of pysot's ``AlexNetLegacy``) shared
  by template and search; **up-channel** cross-correlation: the template features are lifted by a
  3×3 conv to ``2k·C`` and ``4k·C`` channels and used as the kernels of a correlation with the
  3×3-conv'd search features, giving ``2k`` classification and ``4k`` regression maps (a 1×1
  ``loc_adjust`` conv follows the regression, as in the released code). ``xcorr="depthwise"``
  gives pysot's ``siamrpn_alex_dwxcorr`` head instead. The two template-lifting convs start from
  N(0, 0.001) weights (not from the paper, which starts from ImageNet features: with PyTorch's
  default initialisation a correlation of ``C × 4 × 4`` products starts so large that the first
  deltas overflow ``exp`` and training from scratch diverges).
- **SiamRPN++** (B. Li, W. Wu, Q. Wang, F. Zhang, J. Xing, J. Yan, CVPR 2019, Sec. 3.3-3.5):
  ResNet-50 with the strides of conv4 and conv5 turned into dilation 2 and 4 (output stride 8);
  conv3, conv4 and conv5 (``layer2..layer4``) each go through a 1×1 **adjust** layer to 256
  channels, the 15×15 template features being centre-cropped to 7×7; a **depth-wise**
  cross-correlation RPN per layer (3×3 conv-BN-ReLU on both inputs, channel-by-channel
  correlation, then 1×1 conv-BN-ReLU and a 1×1 conv to ``2k`` / ``4k``), and **layer-wise
  aggregation** of the three outputs with learned weights normalised by a softmax. Template
  127, search 255, score map 25×25.
- **SiamMask** (Q. Wang, L. Zhang, L. Bertinetto, W. Hu, P. H. S. Torr, CVPR 2019, Sec. 3.2,
  3.3): the same ResNet-50 up to conv4 (``layer3``, dilation 2), one adjust layer, a depth-wise
  RPN and a **mask branch**: a depth-wise correlation whose every response of a window (RoW) is
  mapped by two 1×1 convs to a 63×63 = 3969-value mask of the 127×127 search window centred on
  that RoW. The optional **refinement module** (``refine=True``, Sec. 3.2 "Mask refinement" and
  the authors' released ``Refine``) upsamples the chosen RoW's mask to 127×127 with the search
  features of the stem, conv2 and conv3. :mod:`deepvideo.engine.tasks.siamrpn` trains it as the
  authors' second stage (``refine: true``, from a base SiamMask checkpoint).

ResNet geometry: the network is :func:`deepvideo.nn.backbones2d.resnet` (torchvision parameter
names) altered to pysot's ``resnet_atrous.py`` so the authors' weights load exactly and the maps
have the published sizes: conv1 without padding, the first 3×3 conv of ``layer2`` without padding,
and the shortcut projections of ``layer2..layer4`` 3×3 convs (stride 2 and no padding; dilation
1 padding 1; dilation 2 padding 2) instead of torchvision's 1×1. Torchvision's ImageNet weights
therefore load into all but those three shortcut convs. ``width`` scales the ResNet stages,
``blocks`` sets the blocks per stage (``(3, 4, 6, 3)`` is ResNet-50), ``channels`` the adjusted
width (256 in the papers): small values make CPU presets.

Inputs are RGB in 0..255, not normalised (as pysot, whose inputs are BGR 0..255: the weight
converter reverses the first convolution's input channels). Outputs are dicts with ``cls
[N, 2k, S, S]`` and ``loc [N, 4k, S, S]`` (layout in :mod:`deepvideo.track.anchors`) and, for
SiamMask, ``mask [N, 3969, S, S]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from deepvideo.nn.backbones2d import ResNet2d

EXEMPLAR_SIZE = 127
SEARCH_SIZE = 255
ANCHORS = 5
ALEX_CHANNELS = (96, 256, 384, 384, 256)
RESNET_WIDTHS = (64, 128, 256, 512)
RESNET50_BLOCKS = (3, 4, 6, 3)
ADJUST_CHANNELS = 256
TEMPLATE_CROP = 7
MASK_SIZE = 63
REFINED_MASK_SIZE = 127
UPCHANNEL_INIT_STD = 0.001
REFINE_INIT_A = 1.0

__all__ = ["SiamMask", "SiamRPN", "SiamRPNpp", "build_network", "depthwise_xcorr", "network_from_state",
           "score_size", "upchannel_xcorr"]


def upchannel_xcorr(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``search [N, C, H, W]`` correlated with ``kernel [N, O·C, h, w]`` (output channel ``o`` uses
    kernel channels ``o·C .. o·C + C - 1``): ``[N, O, H - h + 1, W - w + 1]``."""
    n, c, height, width = search.shape
    if kernel.shape[0] != n or kernel.shape[1] % c:
        raise ValueError(f"upchannel_xcorr: kernel {tuple(kernel.shape)} does not fit search "
                         f"{tuple(search.shape)}")
    out_c = kernel.shape[1] // c
    weight = kernel.reshape(n * out_c, c, *kernel.shape[2:])
    out = F.conv2d(search.reshape(1, n * c, height, width), weight, groups=n)
    return out.reshape(n, out_c, *out.shape[2:])


def depthwise_xcorr(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlation of ``search [N, C, H, W]`` with ``kernel [N, C, h, w]``:
    ``[N, C, H - h + 1, W - w + 1]``."""
    n, c, height, width = search.shape
    if kernel.shape[:2] != (n, c):
        raise ValueError(f"depthwise_xcorr: kernel {tuple(kernel.shape)} does not fit search "
                         f"{tuple(search.shape)}")
    out = F.conv2d(search.reshape(1, n * c, height, width),
                   kernel.reshape(n * c, 1, *kernel.shape[2:]), groups=n * c)
    return out.reshape(n, c, *out.shape[2:])


def alexnet(channels: tuple[int, ...]) -> nn.Sequential:
    """SiamRPN's AlexNet with five channel counts (conv-BN-pool-ReLU order, final BN, no ReLU)."""
    c1, c2, c3, c4, c5 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 11, stride=2), nn.BatchNorm2d(c1), nn.MaxPool2d(3, 2), nn.ReLU(inplace=True),
        nn.Conv2d(c1, c2, 5), nn.BatchNorm2d(c2), nn.MaxPool2d(3, 2), nn.ReLU(inplace=True),
        nn.Conv2d(c2, c3, 3), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, 3), nn.BatchNorm2d(c4), nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, 3), nn.BatchNorm2d(c5),
    )


def conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class UpChannelRPN(nn.Module):
    """SiamRPN's head: template kernels lifted to ``2k·C`` / ``4k·C`` channels (Sec. 3.3)."""

    def __init__(self, channels: int, anchors: int = ANCHORS):
        super().__init__()
        self.template_cls = nn.Conv2d(channels, channels * 2 * anchors, 3)
        self.template_loc = nn.Conv2d(channels, channels * 4 * anchors, 3)
        self.search_cls = nn.Conv2d(channels, channels, 3)
        self.search_loc = nn.Conv2d(channels, channels, 3)
        self.loc_adjust = nn.Conv2d(4 * anchors, 4 * anchors, 1)
        for conv in (self.template_cls, self.template_loc):   # correlation outputs start O(1)
            nn.init.normal_(conv.weight, std=UPCHANNEL_INIT_STD)
            nn.init.zeros_(conv.bias)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cls = upchannel_xcorr(self.search_cls(x), self.template_cls(z))
        loc = self.loc_adjust(upchannel_xcorr(self.search_loc(x), self.template_loc(z)))
        return cls, loc


class DepthwiseXCorr(nn.Module):
    """3×3 conv-BN-ReLU on template and search, depth-wise correlation, 1×1 conv-BN-ReLU, 1×1 conv
    to ``out_channels``. Returns the output and the correlation features."""

    def __init__(self, channels: int, hidden: int, out_channels: int):
        super().__init__()
        self.template = conv_bn_relu(channels, hidden, 3)
        self.search = conv_bn_relu(channels, hidden, 3)
        self.head = nn.Sequential(nn.Conv2d(hidden, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        corr = depthwise_xcorr(self.search(x), self.template(z))
        return self.head(corr), corr


class DepthwiseRPN(nn.Module):
    """A classification and a regression :class:`DepthwiseXCorr` (SiamRPN++ Sec. 3.4)."""

    def __init__(self, channels: int, anchors: int = ANCHORS):
        super().__init__()
        self.cls = DepthwiseXCorr(channels, channels, 2 * anchors)
        self.loc = DepthwiseXCorr(channels, channels, 4 * anchors)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls(z, x)[0], self.loc(z, x)[0]


class LayerwiseRPN(nn.Module):
    """One :class:`DepthwiseRPN` per backbone layer, outputs combined with softmax-normalised
    learned weights (SiamRPN++ Sec. 3.5, layer-wise aggregation; weights start equal)."""

    def __init__(self, channels: int, layers: int, anchors: int = ANCHORS):
        super().__init__()
        self.heads = nn.ModuleList(DepthwiseRPN(channels, anchors) for _ in range(layers))
        self.cls_weight = nn.Parameter(torch.ones(layers))
        self.loc_weight = nn.Parameter(torch.ones(layers))

    def forward(self, zs: list[torch.Tensor], xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [head(z, x) for head, z, x in zip(self.heads, zs, xs, strict=True)]
        wc, wl = F.softmax(self.cls_weight, 0), F.softmax(self.loc_weight, 0)
        cls = sum(w * c for w, (c, _) in zip(wc, outs, strict=True))
        loc = sum(w * r for w, (_, r) in zip(wl, outs, strict=True))
        return cls, loc


class Adjust(nn.Module):
    """1×1 conv + BN to the RPN width; template features are centre-cropped to ``crop × crop``."""

    def __init__(self, c_in: int, c_out: int, crop: int = TEMPLATE_CROP):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.crop = crop

    def forward(self, x: torch.Tensor, template: bool) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if template and x.shape[-1] > self.crop:
            lo = (x.shape[-1] - self.crop) // 2
            x = x[..., lo:lo + self.crop, lo:lo + self.crop]
        return x


def pysot_resnet(widths=RESNET_WIDTHS, blocks=RESNET50_BLOCKS, stages: int = 4) -> ResNet2d:
    """The dilated ResNet (Bottleneck) of pysot's ``resnet_atrous.py``: torchvision names, conv4
    and conv5 dilated (2, 4), pysot's paddings and 3×3 shortcut convs; ``stages`` = 3 stops after
    ``layer3`` (SiamMask). No classifier."""
    net = ResNet2d(Bottleneck, tuple(blocks), widths=tuple(widths), dilate=(False, True, True))
    del net.fc, net.avgpool, net.dropout
    net.conv1.padding = (0, 0)
    net.layer2[0].conv2.padding = (0, 0)
    layers = [net.layer2, net.layer3, net.layer4][: stages - 1]
    for layer, (stride, pad, dil) in zip(layers, ((2, 0, 1), (1, 1, 1), (1, 2, 2)), strict=False):
        old = layer[0].downsample[0]
        new = nn.Conv2d(old.in_channels, old.out_channels, 3, stride, pad, dil, bias=False)
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        layer[0].downsample[0] = new
    if stages == 3:
        del net.layer4
    return net


def resnet_features(net: ResNet2d, x: torch.Tensor, stages: int) -> list[torch.Tensor]:
    """``[stem (after ReLU, before pooling), layer1, ..., layer<stages>]`` of ``net``."""
    x = net.relu(net.bn1(net.conv1(x)))
    outs = [x]
    x = net.maxpool(x)
    for i in range(1, stages + 1):
        x = getattr(net, f"layer{i}")(x)
        outs.append(x)
    return outs


def scaled(counts, width: float) -> tuple[int, ...]:
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return tuple(max(1, round(c * width)) for c in counts)


class SiamRPN(nn.Module):
    """SiamRPN: AlexNet + up-channel (or ``xcorr="depthwise"``) RPN.
    ``forward(exemplar [N,3,127,127], search [N,3,W,W]) -> {"cls", "loc"}``."""

    def __init__(self, width: float = 1.0, xcorr: str = "upchannel",
                 channels: tuple[int, ...] | None = None, anchors: int = ANCHORS):
        super().__init__()
        if xcorr not in ("upchannel", "depthwise"):
            raise ValueError(f"SiamRPN xcorr must be 'upchannel' or 'depthwise', got {xcorr!r}")
        self.channels = tuple(channels) if channels else scaled(ALEX_CHANNELS, width)
        self.xcorr = xcorr
        self.backbone = alexnet(self.channels)
        c = self.channels[-1]
        self.rpn = UpChannelRPN(c, anchors) if xcorr == "upchannel" else DepthwiseRPN(c, anchors)

    def embed_template(self, z: torch.Tensor) -> torch.Tensor:
        return self.backbone(z)

    def match(self, zf: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, loc = self.rpn(zf, self.backbone(x))
        return {"cls": cls, "loc": loc}

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.match(self.embed_template(exemplar), search)


class SiamRPNpp(nn.Module):
    """SiamRPN++: dilated ResNet-50, adjust layers on conv3-5, layer-wise aggregated depth-wise RPN.
    ``forward(exemplar [N,3,127,127], search [N,3,255,255]) -> {"cls", "loc"}`` (25×25)."""

    def __init__(self, width: float = 1.0, blocks=RESNET50_BLOCKS, channels: int = ADJUST_CHANNELS,
                 widths: tuple[int, ...] | None = None, anchors: int = ANCHORS):
        super().__init__()
        self.widths = tuple(widths) if widths else scaled(RESNET_WIDTHS, width)
        self.backbone = pysot_resnet(self.widths, blocks, stages=4)
        self.adjust = nn.ModuleList(Adjust(w * Bottleneck.expansion, channels) for w in self.widths[1:])
        self.rpn = LayerwiseRPN(channels, 3, anchors)

    def features(self, images: torch.Tensor, template: bool) -> list[torch.Tensor]:
        feats = resnet_features(self.backbone, images, 4)[2:]
        return [adjust(f, template) for adjust, f in zip(self.adjust, feats, strict=True)]

    def embed_template(self, z: torch.Tensor) -> list[torch.Tensor]:
        return self.features(z, True)

    def match(self, zf: list[torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, loc = self.rpn(zf, self.features(x, False))
        return {"cls": cls, "loc": loc}

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.match(self.embed_template(exemplar), search)


class Refine(nn.Module):
    """SiamMask's refinement: the chosen RoW's correlation vector deconvolved to 15×15, then merged
    with the search features of conv3 (15×15 window), conv2 (31×31) and the stem (61×61), each
    merge upsampled (nearest), ending in a 127×127 mask logit map. Its 3×3 convolutions start
    Kaiming-uniform with ``a = 1`` (bound ``sqrt(3 / fan_in)``), as the authors' ``Refine``; the
    transposed convolution keeps PyTorch's initialisation (theirs too)."""

    def __init__(self, stem: int, conv2: int, conv3: int, corr: int):
        super().__init__()

        def pair(c_in, c_mid, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_mid, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(c_mid, c_out, 3, padding=1), nn.ReLU(inplace=True))

        self.skip = nn.ModuleList([pair(stem, 16, 4), pair(conv2, 64, 16), pair(conv3, 128, 32)])
        self.up = nn.ModuleList([pair(4, 4, 4), pair(16, 16, 16), pair(32, 32, 32)])
        self.deconv = nn.ConvTranspose2d(corr, 32, 15, 15)
        self.post = nn.ModuleList([nn.Conv2d(32, 16, 3, padding=1), nn.Conv2d(16, 4, 3, padding=1),
                                   nn.Conv2d(4, 1, 3, padding=1)])
        for m in self.modules():   # the authors' released Refine: Kaiming-uniform (a = 1) conv weights
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=REFINE_INIT_A)

    def forward(self, feats: list[torch.Tensor], corr: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """``feats``: search ``[stem, conv2, conv3]`` maps; ``corr [N, C, S, S]``; ``(row, col)``
        the chosen RoW. Returns ``[N, 1, 127, 127]`` logits."""
        n = corr.shape[0]
        rows = torch.tensor([[i, row, col] for i in range(n)], device=corr.device)
        return self.rows(feats, corr, rows)

    def rows(self, feats: list[torch.Tensor], corr: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``[P, 1, 127, 127]`` logits of the RoWs ``rows [P, 3]`` = ``(item, row, col)`` (with no
        RoW: an empty map still tied to the module's parameters, so a loss over it backpropagates)."""
        if len(rows) == 0:
            side = REFINED_MASK_SIZE
            return corr.new_zeros((0, 1, side, side)) + 0.0 * sum(p.sum() for p in self.parameters())
        windows = row_windows(feats, rows, corr.shape[-1])
        index = rows.to(corr.device)
        out = self.deconv(corr[index[:, 0], :, index[:, 1], index[:, 2]][:, :, None, None])
        for level, size in ((2, 31), (1, 61), (0, REFINED_MASK_SIZE)):
            merged = self.up[level](out) + self.skip[level](windows[level])
            out = self.post[2 - level](F.interpolate(merged, size=(size, size), mode="nearest"))
        return out


def row_windows(feats: list[torch.Tensor], rows: torch.Tensor, score_size: int) -> list[torch.Tensor]:
    """The 61×61 stem, 31×31 conv2 and 15×15 conv3 windows ``[P, C, w, w]`` under the RoWs ``rows
    [P, 3]`` of an ``S × S`` map. A level of stride ``s`` (4, 2, 1 feature cells per RoW step) on a
    map of side ``F`` puts RoW ``r``'s window at ``s·r + (F - w - s·(S - 1)) / 2``, zero-padded
    outside: pysot's paddings 16 / 8 / 4 on a 255 search image, none on the authors' 143-pixel
    refinement-stage crops."""
    out = []
    for feat, (step, win) in zip(feats, ((4, 61), (2, 31), (1, 15)), strict=True):
        spare = feat.shape[-1] - win - step * (score_size - 1)
        if spare % 2:
            raise ValueError(f"Refine: a {feat.shape[-1]}-cell map does not centre {score_size} RoW "
                             f"windows of {win}")
        first = spare // 2
        pad = max(0, -first)
        padded = F.pad(feat, [pad] * 4) if pad else feat
        out.append(torch.stack([padded[n, :, step * r + first + pad:step * r + first + pad + win,
                                       step * c + first + pad:step * c + first + pad + win]
                                for n, r, c in rows.tolist()]))
    return out


class SiamMask(nn.Module):
    """SiamMask: dilated ResNet-50 to conv4, adjust, depth-wise RPN and the 63×63 mask branch;
    ``refine=True`` adds the refinement module. ``forward -> {"cls", "loc", "mask"}``."""

    def __init__(self, width: float = 1.0, blocks=RESNET50_BLOCKS[:3], channels: int = ADJUST_CHANNELS,
                 widths: tuple[int, ...] | None = None, refine: bool = False, anchors: int = ANCHORS):
        super().__init__()
        self.widths = tuple(widths) if widths else scaled(RESNET_WIDTHS[:3], width)
        self.backbone = pysot_resnet(self.widths + (1,), tuple(blocks) + (1,), stages=3)
        self.adjust = nn.ModuleList([Adjust(self.widths[2] * Bottleneck.expansion, channels)])
        self.rpn = DepthwiseRPN(channels, anchors)
        self.mask = DepthwiseXCorr(channels, channels, MASK_SIZE * MASK_SIZE)
        e = Bottleneck.expansion
        self.refine = Refine(self.widths[0], self.widths[0] * e, self.widths[1] * e, channels) \
            if refine else None

    def embed_template(self, z: torch.Tensor) -> torch.Tensor:
        return self.adjust[0](resnet_features(self.backbone, z, 3)[-1], True)

    def match(self, zf: torch.Tensor, x: torch.Tensor) -> dict:
        feats = resnet_features(self.backbone, x, 3)
        xf = self.adjust[0](feats[-1], False)
        cls, loc = self.rpn(zf, xf)
        mask, corr = self.mask(zf, xf)
        return {"cls": cls, "loc": loc, "mask": mask, "corr": corr, "features": feats[:3]}

    def refined_mask(self, out: dict, row: int, col: int) -> torch.Tensor:
        """``[N, 1, 127, 127]`` logits of RoW ``(row, col)`` (needs ``refine=True``)."""
        if self.refine is None:
            raise ValueError("this SiamMask has no refinement module (refine=False)")
        return self.refine(out["features"], out["corr"], row, col)

    def refined_masks(self, out: dict, rows: torch.Tensor) -> torch.Tensor:
        """``[P, 1, 127, 127]`` logits of the RoWs ``rows [P, 3]`` = ``(item, row, col)``."""
        if self.refine is None:
            raise ValueError("this SiamMask has no refinement module (refine=False)")
        return self.refine.rows(out["features"], out["corr"], rows)

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor, rows: torch.Tensor | None = None) -> dict:
        """``{"cls", "loc", "mask"}``; with ``rows [P, 3]`` also ``"refined"``, the refinement
        module's ``[P, 1, 127, 127]`` logits of those RoWs."""
        out = self.match(self.embed_template(exemplar), search)
        result = {k: out[k] for k in ("cls", "loc", "mask")}
        if rows is not None:
            result["refined"] = self.refined_masks(out, rows)
        return result


def score_size(search_side: int) -> int:
    """The side of the score map the ResNet networks (SiamRPN++, SiamMask) give a ``search_side``
    search image: 31 cells at 255 pixels, 8 pixels a cell, minus the 3×3 convs and the 7×7 template."""
    return (search_side - SEARCH_SIZE) // 8 + 25


def stage_blocks(state: dict, stages: int) -> tuple[int, ...]:
    """Blocks per ResNet stage of a state dict (``backbone.layer<i>.<b>.*`` keys)."""
    counts = []
    for i in range(1, stages + 1):
        prefix = f"backbone.layer{i}."
        numbers = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
        counts.append(max(numbers) + 1 if numbers else 0)
    return tuple(counts)


def network_kwargs(name: str, state: dict) -> dict:
    """The constructor arguments of network ``name`` whose parameters ``state`` holds."""
    if name == "siamrpn":
        convs = ["backbone.0.weight", "backbone.4.weight", "backbone.8.weight", "backbone.11.weight",
                 "backbone.14.weight"]
        return {"channels": tuple(state[k].shape[0] for k in convs),
                "xcorr": "upchannel" if "rpn.template_cls.weight" in state else "depthwise"}
    stages = 4 if name == "siamrpnpp" else 3
    widths = tuple(state[f"backbone.layer{i}.0.conv1.weight"].shape[0] for i in range(1, stages + 1))
    kwargs = {"widths": widths,
              "blocks": stage_blocks(state, stages), "channels": state["adjust.0.conv.weight"].shape[0]}
    if name == "siammask":
        kwargs["refine"] = any(k.startswith("refine.") for k in state)
    return kwargs


def build_network(name: str, state: dict, source: str = "state dict") -> nn.Module:
    """Network ``name`` (``siamrpn``, ``siamrpnpp``, ``siammask``) shaped to fit ``state``
    (randomly initialised); a ValueError naming ``source`` when ``state`` lacks a defining key."""
    networks = {"siamrpn": SiamRPN, "siamrpnpp": SiamRPNpp, "siammask": SiamMask}
    if name not in networks:
        raise ValueError(f"unknown Siamese RPN network {name!r}; choose one of {sorted(networks)}")
    try:
        return networks[name](**network_kwargs(name, state))
    except KeyError as exc:
        raise ValueError(f"{source}: not {name} weights (no {exc.args[0]}; keys: "
                         f"{', '.join(sorted(state)[:8])}...)") from None


def network_from_state(name: str, state: dict, source: str = "state dict") -> nn.Module:
    """:func:`build_network` with ``state`` loaded; a ValueError naming ``source`` lists keys that
    match nothing, keys left missing and shapes that differ."""
    model = build_network(name, state, source)
    own = model.state_dict()
    unknown, missing = sorted(set(state) - set(own)), sorted(set(own) - set(state))
    wrong = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if unknown or missing or wrong:
        raise ValueError(f"{source}: weights do not fit {name}: keys matching nothing {unknown[:10]}; "
                         f"missing {missing[:10]}; wrong shape {sorted(wrong)[:10]}")
    model.load_state_dict(state)
    return model
