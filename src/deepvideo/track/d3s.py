"""D3S segmentation network: the geometrically invariant model (GIM), the target-position channel
of the geometrically constrained model (GEM) and the refinement pathway.

A. Lukežič, J. Matas, M. Kristan, "D3S – A Discriminative Single Shot Segmentation Tracker",
CVPR 2020 (Sec. 3, Fig. 2-3); layer shapes and numbers follow the authors' released code
(github.com/alanlukezic/d3s, a pytracking fork: ``ltr/models/segm/segm_net.py``, ``segm.py``,
``ltr/train_settings/segm/segm_default.py``), so its ``SegmNet.pth.tar`` loads
(:mod:`deepvideo.track.convert.d3s`):

- backbone: ResNet-50 (torchvision names, no dilation), outputs ``conv1`` (after ReLU, stride 2),
  ``layer1`` (4), ``layer2`` (8), ``layer3`` (16); an image crop of 384 pixels (4× the target
  size, ``search_area_factor 4.0``) gives 24×24 ``layer3`` features;
- GIM features: ``layer3`` → 1×1 conv to 64 channels + BN + ReLU → 3×3 conv 64 + BN (no ReLU);
- GIM similarity: per test pixel, the cosine similarity to every template (first-frame) feature
  vector, weighted by the template mask (foreground) or by one minus it (background); the mean
  of the top ``K = 3`` gives the foreground similarity F and the background similarity B
  (a masked-out vector counts as similarity 0, as in the released code);
- mixer input (3 channels): softmax of (F, B) (the foreground posterior), F, and the
  target-position channel P: the Euclidean distance in crop pixels from the target position
  (the GEM's response peak when tracking, the ground-truth centre jittered by ±1/8 of the box
  when training), sampled at the ``layer3`` grid;
- refinement: mixer 3×3 conv to 64; upsample ×2, conv to 32; then three stages
  ``post_i(upsample(f_i(backbone skip) + s_i(x)))`` with skips ``layer2`` (32 → 16),
  ``layer1`` (16 → 4) and ``conv1`` (4 → 2; BN, no ReLU): logits ``[N, 2, H, W]`` at the crop
  resolution, channel 0 the foreground (probability = softmax over the two channels);
- loss: binary cross-entropy with logits of both channels against ``(mask, 1 − mask)``.

Every conv is followed by BN (and ReLU unless said); upsampling is nearest-neighbour.
``depth``/``width`` choose a smaller ResNet for CPU presets (the authors also define a ResNet-18
variant). Inputs are RGB in 0..255; the network normalises with the ImageNet mean and std
(as the authors' tracker).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.nn.backbones2d import resnet

CROP_SIZE = 384              # segm_output_sz = 24 * 16
SEARCH_AREA_FACTOR = 4.0     # crop side / sqrt(target area)
STRIDE = 16                  # layer3 stride
TOP_K = 3                    # segm_topk_pos = segm_topk_neg = 3
SEGM_DIM = 64                # channels of the GIM features
INTER_DIMS = (4, 16, 32, 64)  # refinement channels at conv1, layer1, layer2, layer3 scale
MIXER_CHANNELS = 3           # softmax(F, B), F, P
MASK_THRESHOLD = 0.5         # segm_mask_thr
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn(cin: int, cout: int, kernel: int = 3, relu: bool = True) -> nn.Sequential:
    """conv (with bias) - BN (- ReLU), 'same' padding."""
    layers = [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=True), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Backbone(nn.Module):
    """ResNet stem and ``layer1..3`` (torchvision names); :meth:`forward` returns the four maps
    the refinement pathway reads: ``conv1`` (after ReLU), ``layer1``, ``layer2``, ``layer3``."""

    def __init__(self, depth: int = 50, width: float = 1.0):
        super().__init__()
        net = resnet(depth, width=width)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.channels = (net.conv1.out_channels,
                         *(stage_out(s) for s in (net.layer1, net.layer2, net.layer3)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(self.maxpool(c1))
        l2 = self.layer2(l1)
        return [c1, l1, l2, self.layer3(l2)]


def stage_out(stage: nn.Sequential) -> int:
    """Output channels of a ResNet stage (its last block's last BN)."""
    last = stage[-1]
    bn = last.bn3 if hasattr(last, "bn3") else last.bn2
    return bn.num_features


def top_k_similarity(test: torch.Tensor, template: torch.Tensor, weights: torch.Tensor,
                     k: int = TOP_K) -> torch.Tensor:
    """GIM similarity: ``test [N, C, H, W]`` and ``template [N, C, h, w]`` features, template
    ``weights [N, 1, h, w]`` (the mask, or one minus it) -> ``[N, H, W]``: per test pixel, the
    mean of the ``k`` largest ``weight × cosine(test pixel, template vector)``."""
    if k > template.shape[-2] * template.shape[-1]:
        raise ValueError(f"top-{k} similarity needs at least {k} template vectors, got "
                         f"{template.shape[-2]}x{template.shape[-1]}")
    unit_template = F.normalize(template, dim=1).flatten(2)
    sim = torch.einsum("nchw,ncm->nhwm", F.normalize(test, dim=1), unit_template)
    sim = sim * weights.flatten(1)[:, None, None, :]
    return sim.topk(k, dim=-1).values.mean(dim=-1)


def position_map(centers: torch.Tensor, size: tuple[int, int], stride: int = STRIDE) -> torch.Tensor:
    """The target-position channel P ``[N, 1, h, w]``: distance in crop pixels from
    ``centers [N, 2]`` (x, y) to the crop pixel ``(stride·j, stride·i)`` of each grid cell."""
    rows = torch.arange(size[0], dtype=torch.float32, device=centers.device) * stride
    cols = torch.arange(size[1], dtype=torch.float32, device=centers.device) * stride
    dx = cols[None, None, :] - centers[:, 0, None, None]
    dy = rows[None, :, None] - centers[:, 1, None, None]
    return torch.sqrt(dx * dx + dy * dy)[:, None]


class Template:
    """The GIM's stored model: template features ``[N, C, h, w]`` and foreground weights
    ``[N, 1, h, w]`` (the template mask at the feature grid); background weights are
    ``1 − foreground``. :meth:`add_background` appends background-only vectors."""

    def __init__(self, features: torch.Tensor, foreground: torch.Tensor):
        self.features = features.flatten(2)           # [N, C, M]
        self.foreground = foreground.flatten(1)       # [N, M]
        self.background = 1 - self.foreground
        self.base = self.features.shape[-1]           # vectors of the first frame

    def add_background(self, features: torch.Tensor, background: torch.Tensor, keep: int) -> None:
        """Append vectors ``features [N, C, h, w]`` with background weights ``[N, 1, h, w]`` and
        zero foreground weight; the oldest added ones go beyond ``keep`` added grids."""
        base = self.base
        feats = torch.cat([self.features, features.flatten(2)], dim=-1)
        bg = torch.cat([self.background, background.flatten(1)], dim=-1)
        fg = torch.cat([self.foreground, torch.zeros_like(background.flatten(1))], dim=-1)
        step = features.shape[-2] * features.shape[-1]
        extra = feats.shape[-1] - base
        if extra > keep * step:
            first_kept = base + extra - keep * step
            index = torch.cat([torch.arange(base), torch.arange(first_kept, feats.shape[-1])])
            feats, bg, fg = feats[..., index], bg[..., index], fg[..., index]
        self.features, self.background, self.foreground = feats, bg, fg


class D3SNet(nn.Module):
    """The D3S segmentation network (module docstring). ``forward(train, test, train_mask,
    test_center)`` -> logits ``[N, 2, H, W]`` for the test crop."""

    def __init__(self, depth: int = 50, width: float = 1.0, segm_dim: int = SEGM_DIM,
                 inter_dims: tuple[int, int, int, int] = INTER_DIMS, top_k: int = TOP_K):
        super().__init__()
        self.backbone = Backbone(depth, width)
        c0, c1, c2, c3 = self.backbone.channels
        i0, i1, i2, i3 = inter_dims
        self.top_k = int(top_k)
        self.segment0 = conv_bn(c3, segm_dim, kernel=1)
        self.segment1 = conv_bn(segm_dim, segm_dim, relu=False)
        self.mixer = conv_bn(MIXER_CHANNELS, i3)
        self.s3 = conv_bn(i3, i2)
        self.s2, self.s1, self.s0 = conv_bn(i2, i2), conv_bn(i1, i1), conv_bn(i0, i0)
        self.f2, self.f1, self.f0 = conv_bn(c2, i2), conv_bn(c1, i1), conv_bn(c0, i0)
        self.post2, self.post1 = conv_bn(i2, i1), conv_bn(i1, i0)
        self.post0 = conv_bn(i0, 2, relu=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:  # the segmentation head's convs
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Backbone maps of RGB 0..255 crops ``[N, 3, H, W]`` (H, W multiples of 16)."""
        if images.shape[-1] % STRIDE or images.shape[-2] % STRIDE:
            raise ValueError(f"D3S crops must be multiples of {STRIDE} pixels, "
                             f"got {tuple(images.shape[-2:])}")
        return self.backbone((images - self.mean) / self.std)

    def gim_features(self, layer3: torch.Tensor) -> torch.Tensor:
        return self.segment1(self.segment0(layer3))

    def template(self, feats: list[torch.Tensor], masks: torch.Tensor) -> Template:
        """The GIM model from a template crop's backbone maps and its mask ``[N, 1, H, W]``
        (resized to the feature grid by nearest neighbour)."""
        f = self.gim_features(feats[3])
        return Template(f, F.interpolate(masks.float(), size=f.shape[-2:], mode="nearest"))

    def segment(self, feats: list[torch.Tensor], template: Template, centers: torch.Tensor
                ) -> torch.Tensor:
        """Logits ``[N, 2, H, W]`` of a test crop's backbone maps given the GIM template and the
        target positions ``centers [N, 2]`` (crop pixels) for the position channel."""
        f = self.gim_features(feats[3])
        fg = top_k_similarity_flat(f, template.features, template.foreground, self.top_k)
        bg = top_k_similarity_flat(f, template.features, template.background, self.top_k)
        posterior = torch.softmax(torch.stack([fg, bg], dim=1), dim=1)[:, :1]
        position = position_map(centers.float(), tuple(f.shape[-2:]))
        x = self.mixer(torch.cat([posterior, fg[:, None], position], dim=1))
        x = self.s3(upsample(x))
        x = self.post2(upsample(self.f2(feats[2]) + self.s2(x)))
        x = self.post1(upsample(self.f1(feats[1]) + self.s1(x)))
        return self.post0(upsample(self.f0(feats[0]) + self.s0(x)))

    def forward(self, train: torch.Tensor, test: torch.Tensor, train_mask: torch.Tensor,
                test_center: torch.Tensor) -> torch.Tensor:
        template = self.template(self.features(train), train_mask)
        return self.segment(self.features(test), template, test_center)


def top_k_similarity_flat(test: torch.Tensor, template: torch.Tensor, weights: torch.Tensor,
                          k: int) -> torch.Tensor:
    """:func:`top_k_similarity` with the template already flat: ``[N, C, M]``, ``weights [N, M]``."""
    return top_k_similarity(test, template[..., None], weights[:, None, :, None], k)


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits of ``[N, 2, H, W]`` against ``(mask, 1 − mask)``."""
    masks = masks.float()
    return F.binary_cross_entropy_with_logits(logits, torch.cat([masks, 1 - masks], dim=1))


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]``: softmax over the two channels, channel 0 (the foreground)."""
    return torch.softmax(logits.float(), dim=1)[:, 0]


def mask_iou(logits: torch.Tensor, masks: torch.Tensor, threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """Per-item IoU ``[N]`` of the predicted foreground (probability > ``threshold``) and
    ``masks [N, 1, H, W]``; 1 where both are empty."""
    pred = foreground_probability(logits) > threshold
    true = masks[:, 0] > 0.5
    inter = (pred & true).flatten(1).sum(1).float()
    union = (pred | true).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def layout_of(state: dict[str, torch.Tensor], source: str = "state dict") -> dict:
    """``depth`` and ``width`` of the :class:`D3SNet` whose weights ``state`` holds."""
    key = "backbone.conv1.weight"
    if key not in state or "segment0.0.weight" not in state:
        raise ValueError(f"{source}: not D3S weights (no {key} / segment0.0.weight; keys: "
                         f"{', '.join(sorted(state)[:6])}...)")
    bottleneck = "backbone.layer1.0.conv3.weight" in state
    blocks = len({k.split(".")[2] for k in state if k.startswith("backbone.layer3.")})
    depths = {(False, 2): 18, (False, 6): 34, (True, 6): 50, (True, 23): 101, (True, 36): 152}
    if (bottleneck, blocks) not in depths:
        raise ValueError(f"{source}: a ResNet with {blocks} layer3 blocks "
                         f"({'bottleneck' if bottleneck else 'basic'}) is not a known depth")
    return {"depth": depths[bottleneck, blocks], "width": state[key].shape[0] / 64}


def d3s_for_state(state: dict[str, torch.Tensor], source: str = "state dict") -> D3SNet:
    """A fresh :class:`D3SNet` shaped like ``state`` (depth, width, channel counts)."""
    shape = layout_of(state, source)
    inter = tuple(int(state[f"{name}.0.weight"].shape[0]) for name in ("s0", "s1", "s2", "mixer"))
    return D3SNet(**shape, segm_dim=int(state["segment0.0.weight"].shape[0]), inter_dims=inter)


def d3s_from_state_dict(state: dict[str, torch.Tensor], source: str = "state dict") -> D3SNet:
    """A :class:`D3SNet` shaped by ``state`` with it loaded; a ValueError naming ``source``
    lists keys that match nothing and keys left missing."""
    model = d3s_for_state(state, source)
    own = model.state_dict()
    unknown, missing = sorted(set(state) - set(own)), sorted(set(own) - set(state))
    if unknown or missing:
        raise ValueError(f"{source}: keys matching nothing in D3SNet: {unknown[:8]}; missing: {missing[:8]}")
    model.load_state_dict(state)
    return model
