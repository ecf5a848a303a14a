"""2D backbones of the two-stream era, with the papers' exact layer shapes.

* CNN-M-2048 / VGG-M-2048 (Chatfield et al. 2014; the two-stream nets of Simonyan & Zisserman
  2014 and Feichtenhofer et al. 2016): conv1 96x7x7/2, LRN, pool; conv2 256x5x5/2, LRN, pool;
  conv3-5 512x3x3; pool5; fc6 4096; fc7 2048; fc8. Pools are 3x3/2 with Caffe's ceil mode, so
  conv5 is 13x13 and pool5 6x6 on a 224 crop (the released Caffe/MatConvNet model).
* VGG-16 (Simonyan & Zisserman 2015): conv5_3 14x14, pool5 7x7 on 224.
* ResNet-18/34/50/101/152 (He et al. 2016) from torchvision's residual blocks, with adjustable
  stage widths for small CPU variants and the same parameter names as torchvision; the norm
  (``norm="bn"``: BatchNorm2d, "gn", "none" or a builder ``C -> module``) and the activation
  (``act="relu"``, "silu", ... or a builder) are injected into the stem and every block
  (:mod:`deepvideo.nn.conv`'s kinds, 2D).
* Karpathy et al. 2014 single-frame net on 170x170:
  ``C(96,11,3)-N-P-C(256,5,1)-N-P-C(384,3,1)-C(384,3,1)-C(256,3,1)-P-FC(4096)-FC(4096)``.

The VGG-style nets are :class:`LayeredNet`\\ s: ordered named layers that can be run up to a
layer and from a layer, which is how the fusion models truncate towers at ReLU2...FC8.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from deepvideo.nn.conv import ActBuilder, NormBuilder, resolve_act, resolve_norm


class LayeredNet(nn.Sequential):
    """A sequence of named layers; ``aliases`` map paper names (``relu5``) to layer names."""

    def __init__(self, layers: OrderedDict[str, nn.Module], aliases: dict[str, str] | None = None):
        super().__init__(layers)
        self.aliases = dict(aliases or {})

    def resolve(self, name: str) -> str:
        name = self.aliases.get(name, name)
        if name not in self._modules:
            raise KeyError(f"{type(self).__name__} has no layer {name!r}; layers: {', '.join(self._modules)}")
        return name

    def layer_names(self) -> list[str]:
        return list(self._modules)

    def index(self, name: str) -> int:
        return self.layer_names().index(self.resolve(name))

    def forward_until(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Run layers up to and including ``name``."""
        stop = self.index(name)
        for i, layer in enumerate(self):
            x = layer(x)
            if i == stop:
                break
        return x

    def forward_from(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Run the layers after ``name``."""
        start = self.index(name)
        for layer in list(self)[start + 1 :]:
            x = layer(x)
        return x

    def trunk(self, name: str) -> LayeredNet:
        """The layers up to and including ``name`` (shared modules, not copies)."""
        stop = self.index(name)
        names = self.layer_names()[: stop + 1]
        return LayeredNet(
            OrderedDict((n, self._modules[n]) for n in names),
            {a: n for a, n in self.aliases.items() if n in names},
        )

    def head(self, name: str) -> LayeredNet:
        """The layers after ``name`` (shared modules, not copies)."""
        start = self.index(name)
        names = self.layer_names()[start + 1 :]
        return LayeredNet(
            OrderedDict((n, self._modules[n]) for n in names),
            {a: n for a, n in self.aliases.items() if n in names},
        )

    def channels_at(self, name: str) -> int:
        """Number of channels (or features) of the output of layer ``name``."""
        channels = None
        for n in self.layer_names()[: self.index(name) + 1]:
            for m in self._modules[n].modules():  # the last conv/linear inside (e.g. a residual stage)
                if isinstance(m, nn.Conv2d):
                    channels = m.out_channels
                elif isinstance(m, nn.Linear):
                    channels = m.out_features
        if channels is None:
            raise ValueError(f"no conv or linear layer up to {name!r}")
        return channels


def _lrn() -> nn.LocalResponseNorm:
    # Caffe VGG-CNN-M: local_size 5, alpha 5e-4, beta 0.75, k 2.
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)


def _init_vgg(net: nn.Module) -> None:
    """Kaiming init for convs and hidden FC layers, N(0, 0.01) for the classifier.

    (Caffe's N(0, 0.01) on every FC layer leaves narrow CPU-sized variants stuck at chance when
    trained from scratch: their scores start ~1e-3.)
    """
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if m is linears[-1]:
                nn.init.normal_(m.weight, 0, 0.01)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def _pooled_size(size: int, kernel: int, stride: int, padding: int = 0, ceil: bool = False) -> int:
    num = size + 2 * padding - kernel
    out = (-(-num // stride) if ceil else num // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def vgg_m_2048(
    num_classes: int = 101,
    in_channels: int = 3,
    input_size: int = 224,
    width: float = 1.0,
    fc_dims: tuple[int, int] = (4096, 2048),
    dropout: tuple[float, float] = (0.5, 0.5),
    ceil_mode: bool = True,
) -> LayeredNet:
    """CNN-M-2048 / VGG-M-2048. ``input_size`` fixes fc6's input (pool5 is 6x6 on 224).

    ``width`` scales the conv channel counts (1.0 = paper); ``ceil_mode=False`` gives PyTorch's
    floor-mode pooling instead of Caffe's (conv5 12x12, pool5 5x5 on 224).
    """
    c1, c2, c3 = (max(1, round(c * width)) for c in (96, 256, 512))
    s = _pooled_size(input_size, 7, 2)
    s = _pooled_size(s, 3, 2, ceil=ceil_mode)
    s = _pooled_size(s, 5, 2, padding=1)
    s = _pooled_size(s, 3, 2, ceil=ceil_mode)
    conv5 = s
    s = _pooled_size(s, 3, 2, ceil=ceil_mode)
    if s < 1:
        raise ValueError(f"input_size {input_size} is too small for VGG-M (pool5 would be empty)")
    layers = OrderedDict(
        [
            ("conv1", nn.Conv2d(in_channels, c1, 7, stride=2)),
            ("relu1", nn.ReLU(inplace=False)),
            ("norm1", _lrn()),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)),
            ("conv2", nn.Conv2d(c1, c2, 5, stride=2, padding=1)),
            ("relu2", nn.ReLU()),
            ("norm2", _lrn()),
            ("pool2", nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1)),
            ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(c3, c3, 3, padding=1)),
            ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(c3, c3, 3, padding=1)),
            ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)),
            ("flatten", nn.Flatten(1)),
            ("fc6", nn.Linear(c3 * s * s, fc_dims[0])),
            ("relu6", nn.ReLU()),
            ("drop6", nn.Dropout(dropout[0])),
            ("fc7", nn.Linear(fc_dims[0], fc_dims[1])),
            ("relu7", nn.ReLU()),
            ("drop7", nn.Dropout(dropout[1])),
            ("fc8", nn.Linear(fc_dims[1], num_classes)),
        ]
    )
    net = LayeredNet(layers, {"fc6": "drop6", "fc7": "drop7", "softmax": "fc8"})
    net.conv5_size = conv5
    _init_vgg(net)
    return net


def vgg16(
    num_classes: int = 101,
    in_channels: int = 3,
    input_size: int = 224,
    width: float = 1.0,
    fc_dims: tuple[int, int] = (4096, 4096),
    dropout: tuple[float, float] = (0.5, 0.5),
) -> LayeredNet:
    """VGG-16 (configuration D); ``relu1``...``relu5`` alias the last ReLU of each block."""
    cfg = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    aliases = {}
    c_in, s = in_channels, input_size
    for b, (c, n) in enumerate(cfg, start=1):
        c = max(1, round(c * width))
        for i in range(1, n + 1):
            layers[f"conv{b}_{i}"] = nn.Conv2d(c_in, c, 3, padding=1)
            layers[f"relu{b}_{i}"] = nn.ReLU()
            c_in = c
        aliases[f"relu{b}"] = f"relu{b}_{n}"
        layers[f"pool{b}"] = nn.MaxPool2d(2, 2)
        s //= 2
    if s < 1:
        raise ValueError(f"input_size {input_size} is too small for VGG-16")
    layers["flatten"] = nn.Flatten(1)
    layers["fc6"] = nn.Linear(c_in * s * s, fc_dims[0])
    layers["relu6"], layers["drop6"] = nn.ReLU(), nn.Dropout(dropout[0])
    layers["fc7"] = nn.Linear(fc_dims[0], fc_dims[1])
    layers["relu7"], layers["drop7"] = nn.ReLU(), nn.Dropout(dropout[1])
    layers["fc8"] = nn.Linear(fc_dims[1], num_classes)
    aliases.update({"fc6": "drop6", "fc7": "drop7", "softmax": "fc8"})
    net = LayeredNet(layers, aliases)
    net.conv5_size = input_size // 16
    _init_vgg(net)
    return net


def karpathy_tower(in_channels: int = 3, width: float = 1.0, last_pool: bool = True) -> LayeredNet:
    """Convolutional part of Karpathy et al.'s single-frame net (LRN as in AlexNet, 2x2 pools).

    Padding (not given in the paper): conv1 none, conv2 2, conv3-5 1, so 170 -> 54 -> 27 -> 27 ->
    13 -> 13 -> 6 and pool5 is 6x6x256.
    """
    c = [max(1, round(v * width)) for v in (96, 256, 384, 384, 256)]
    layers = OrderedDict(
        [
            ("conv1", nn.Conv2d(in_channels, c[0], 11, stride=3)),
            ("relu1", nn.ReLU()),
            ("norm1", nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)),
            ("pool1", nn.MaxPool2d(2, 2)),
            ("conv2", nn.Conv2d(c[0], c[1], 5, padding=2)),
            ("relu2", nn.ReLU()),
            ("norm2", nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)),
            ("pool2", nn.MaxPool2d(2, 2)),
            ("conv3", nn.Conv2d(c[1], c[2], 3, padding=1)),
            ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(c[2], c[3], 3, padding=1)),
            ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(c[3], c[4], 3, padding=1)),
            ("relu5", nn.ReLU()),
        ]
    )
    if last_pool:
        layers["pool5"] = nn.MaxPool2d(2, 2)
    net = LayeredNet(layers)
    _init_vgg(net)
    return net


def karpathy_tower_size(input_size: int, last_pool: bool = True) -> int:
    s = _pooled_size(input_size, 11, 3)
    s = _pooled_size(s, 2, 2)
    s = _pooled_size(s, 2, 2)
    return _pooled_size(s, 2, 2) if last_pool else s


def karpathy_single_frame(
    num_classes: int = 487,
    in_channels: int = 3,
    input_size: int = 170,
    width: float = 1.0,
    fc_dims: tuple[int, int] = (4096, 4096),
    dropout: float = 0.5,
) -> LayeredNet:
    """The full single-frame net: tower, FC(4096)-FC(4096), classifier."""
    tower = karpathy_tower(in_channels, width)
    s = karpathy_tower_size(input_size)
    if s < 1:
        raise ValueError(f"input_size {input_size} is too small for the Karpathy net")
    c5 = tower.conv5.out_channels
    layers = OrderedDict(tower.named_children())
    layers.update(
        [
            ("flatten", nn.Flatten(1)),
            ("fc6", nn.Linear(c5 * s * s, fc_dims[0])),
            ("relu6", nn.ReLU()),
            ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(fc_dims[0], fc_dims[1])),
            ("relu7", nn.ReLU()),
            ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(fc_dims[1], num_classes)),
        ]
    )
    net = LayeredNet(layers)
    _init_vgg(net)
    return net


class ResNet2d(nn.Module):
    """ResNet (v1.5: stride in the 3x3 conv) built from torchvision's blocks.

    Same module names as ``torchvision.models.ResNet`` (``conv1, bn1, layer1..4, fc``), plus
    ``in_channels`` (e.g. ``2L`` flow channels), adjustable stage ``widths`` and stem width for
    small CPU variants, dropout before the classifier, and :meth:`features` for the conv5 map.
    ``norm`` (2D kinds of :func:`deepvideo.nn.conv.norm_builder` or a builder) replaces every
    BatchNorm2d (``bn1``, the blocks' ``bn*``, ``downsample.1``); ``act`` every ReLU (``relu``).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int | None = None,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        dilate: Sequence[bool] = (False, False, False),
        *,
        norm: NormBuilder | str = "bn",
        act: ActBuilder | str = "relu",
    ):
        super().__init__()
        norm, act = resolve_norm(norm, dims=2), resolve_act(act)
        stem_width = widths[0] if stem_width is None else stem_width
        if len(dilate) != 3 or (any(dilate) and block is BasicBlock):
            raise ValueError(f"dilate: three flags for layer2..layer4 (Bottleneck blocks only), got {dilate}")
        self.inplanes, self.dilation = stem_width, 1
        self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm(stem_width)
        self.relu = act()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.block = block
        for i, (w, n) in enumerate(zip(widths, layers, strict=True), start=1):
            dilated = i > 1 and bool(dilate[i - 2])
            setattr(self, f"layer{i}", self._make_layer(block, w, n, 1 if i == 1 else 2, dilated, norm, act))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.num_features = widths[-1] * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                last = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                if getattr(last, "weight", None) is not None:  # a norm without affine weight: nothing
                    nn.init.zeros_(last.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int, dilated: bool = False,
                    norm: NormBuilder = nn.BatchNorm2d, act: ActBuilder | None = None) -> nn.Sequential:
        """A stage; ``dilated`` replaces its stride by dilation (torchvision's
        ``replace_stride_with_dilation``: the first block keeps the previous dilation). ``norm``
        goes to the blocks as torchvision's ``norm_layer``; ``act`` replaces their ReLU."""
        previous = self.dilation
        if dilated:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                norm(planes * block.expansion),
            )
        extra = {"norm_layer": norm} if block is BasicBlock else {"dilation": previous, "norm_layer": norm}
        units = [block(self.inplanes, planes, stride, downsample, **extra)]
        self.inplanes = planes * block.expansion
        if block is not BasicBlock:
            extra["dilation"] = self.dilation
        units += [block(self.inplanes, planes, **extra) for _ in range(1, blocks)]
        if act is not None:
            for unit in units:
                unit.relu = act()
        return nn.Sequential(*units)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv5_x map ``[N, C, H/32, W/32]``."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(feats), 1)))

    def as_layered(self) -> LayeredNet:
        """The same modules (and state-dict keys) as a :class:`LayeredNet`, so a ResNet can be a
        fusion tower: ``relu2``...``relu5`` name the outputs of ``layer1``...``layer4``
        (conv2_x...conv5_x). ``pool5`` is an identity slot after conv5_x, where the 3D fusion
        network puts its 3D max pooling; global average pooling and ``fc`` follow."""
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        layers = OrderedDict((n, self._modules[n]) for n in names)
        layers.update(pool5=nn.Identity(), avgpool=self.avgpool, flatten=nn.Flatten(1), dropout=self.dropout,
                      fc=self.fc)
        aliases = {f"relu{i + 1}": f"layer{i}" for i in range(1, 5)}
        return LayeredNet(layers, {**aliases, "fc8": "fc"})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.features(x))


RESNET_DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def resnet(
    depth: int = 50,
    num_classes: int = 1000,
    in_channels: int = 3,
    width: float = 1.0,
    dropout: float = 0.0,
    zero_init_residual: bool = False,
    dilate: Sequence[bool] = (False, False, False),
    *,
    norm: NormBuilder | str = "bn",
    act: ActBuilder | str = "relu",
) -> ResNet2d:
    """ResNet-``depth`` (18, 34, 50, 101, 152); ``width`` scales every stage (1.0 = paper);
    ``dilate`` flags layer2..layer4 whose stride becomes dilation (e.g. ``(False, True, True)``:
    output stride 8, as SiamRPN++ and DeepLab; ``(False, False, True)``: 16, as R-FCN);
    ``norm`` / ``act`` as :class:`ResNet2d`'s."""
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"unknown ResNet depth {depth}; choose one of {sorted(RESNET_DEPTHS)}")
    block, layers = RESNET_DEPTHS[depth]
    widths = tuple(max(1, round(c * width)) for c in (64, 128, 256, 512))
    return ResNet2d(
        block,
        layers,
        num_classes,
        in_channels,
        widths,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        dilate=dilate,
        norm=norm,
        act=act,
    )


def build_backbone(
    name: str, num_classes: int, in_channels: int = 3, input_size: int = 224, **kw
) -> nn.Module:
    """Backbone by name: ``vgg_m_2048``, ``vgg16``, ``resnet18``...``resnet152``, ``karpathy``.

    ``kw`` go to the builder; the ResNets also take ``norm=`` / ``act=`` (see :class:`ResNet2d`).
    """
    if name == "vgg_m_2048":
        return vgg_m_2048(num_classes, in_channels, input_size, **kw)
    if name == "vgg16":
        return vgg16(num_classes, in_channels, input_size, **kw)
    if name == "karpathy":
        return karpathy_single_frame(num_classes, in_channels, input_size, **kw)
    if name.startswith("resnet") and name[6:].isdigit():
        return resnet(int(name[6:]), num_classes=num_classes, in_channels=in_channels, **kw)
    raise ValueError(f"unknown backbone {name!r}; use vgg_m_2048, vgg16, karpathy or resnet18/34/50/101/152")
