"""MDNet: multi-domain network for tracking, and RT-MDNet's RoIAlign variant.

H. Nam and B. Han, "Learning Multi-Domain Convolutional Neural Networks for Visual Tracking",
CVPR 2016 (Sec. 3.1, Fig. 2): a ``107 × 107`` RGB patch goes through conv1–conv3 of VGG-M
(Chatfield et al. 2014) — conv1 96×7×7/2, ReLU, LRN, max-pool 3×3/2; conv2 256×5×5/2, ReLU,
LRN, max-pool 3×3/2; conv3 512×3×3, ReLU — giving a ``3 × 3 × 512`` map, then two shared fully
connected layers fc4 and fc5 (512 each, ReLU, dropout 0.5) and one 2-way fc6 per training
sequence ("domain"). The convolutions have no padding (that is how 107 becomes 3), unlike
:func:`deepvideo.nn.backbones2d.vgg_m_2048`, whose conv2/conv3 are padded; their names and
shapes are VGG-M's, so VGG-M conv1–3 weights load by name. The layers are a
:class:`~deepvideo.nn.backbones2d.LayeredNet` (``forward_until``/``forward_from``).

Input: float RGB in 0..255; the network subtracts 128 (py-MDNet's ``regions - 128``).
Dropout sits before fc5 and before fc6 (py-MDNet ``modules/model.py``). Initialisation: fc4
and fc5 ``N(0, 0.01)`` with bias 0.1, fc6 ``N(0, 0.01)`` with bias 0 (py-MDNet); the paper
initialises conv1–3 from ImageNet VGG-M, which this library does not download: they start from
Kaiming-normal weights (zero bias) and are trained with the rest.

``lrn`` = ``(size, alpha, beta, k)`` of :class:`torch.nn.LocalResponseNorm`: VGG-M's
``(5, 5e-4, 0.75, 2)`` by default; py-MDNet's checkpoints were trained with
``nn.LocalResponseNorm(2)`` = ``(2, 1e-4, 0.75, 1)`` and RT-MDNet's with ``(1, 1e-4, 0.75, 2)``
(its own ``LRN`` module), which the converters use.

RT-MDNet (I. Jung, J. Son, M. Baek, B. Han, "Real-Time MDNet", ECCV 2018, Sec. 3.2;
github.com/IlchaeJung/RT-MDNet ``modules/model.py``), ``roi_align=True``: conv2 has no max-pool
and conv3 is dilated by 3, so conv3 is a dense map of stride 8 whose cells see 75 × 75 pixels;
one map is computed for the whole search area and each candidate's ``3 × 3`` feature is
pooled from it by :func:`torchvision.ops.roi_align` (RT-MDNet uses its own adaptive RoIAlign
with max pooling; this uses torchvision's average RoIAlign). A candidate RoI is its box
enlarged by ``RT_PADDING`` = 1.2 about its centre, in pixels ``[x1, x2]``; the cells whose
receptive field starts in ``[x1, x2 − 75]`` are pooled (RT-MDNet's ``samples2maskroi``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import roi_align as tv_roi_align

from deepvideo.nn.backbones2d import LayeredNet

INPUT_SIZE = 107              # patch side (paper)
CONTEXT_PADDING = 16          # context pixels on each side of the box in the 107 patch (paper)
INPUT_OFFSET = 128.0          # subtracted from RGB 0..255 (py-MDNet)
FEATURE_SIDE = 3              # conv3 map side on a 107 patch / RoIAlign output side
VGG_M_LRN = (5, 5e-4, 0.75, 2.0)
PYMDNET_LRN = (2, 1e-4, 0.75, 1.0)
RTMDNET_LRN = (1, 1e-4, 0.75, 2.0)
RT_STRIDE = 8                 # conv3 stride of the RoIAlign variant
RT_RECEPTIVE_FIELD = 75       # pixels one conv3 cell sees in the RoIAlign variant
RT_PADDING = 1.2              # RT-MDNet's RoI enlargement (options.py 'padding')
DROPOUT = 0.5


def channels(width: float = 1.0) -> tuple[int, int, int, int]:
    """(conv1, conv2, conv3, fc) widths: the paper's (96, 256, 512, 512) scaled by ``width``."""
    if width <= 0:
        raise ValueError(f"MDNet width must be positive, got {width}")
    return tuple(max(1, round(c * width)) for c in (96, 256, 512, 512))  # type: ignore[return-value]


def conv_layers(widths: tuple[int, ...], lrn: tuple, roi_align: bool) -> LayeredNet:
    """conv1–conv3 (no padding); the RoIAlign variant drops pool2 and dilates conv3 by 3."""
    c1, c2, c3 = widths[:3]
    size, alpha, beta, k = lrn
    layers = [
        ("conv1", nn.Conv2d(3, c1, 7, stride=2)),
        ("relu1", nn.ReLU()),
        ("norm1", nn.LocalResponseNorm(int(size), alpha=alpha, beta=beta, k=k)),
        ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(c1, c2, 5, stride=2)),
        ("relu2", nn.ReLU()),
        ("norm2", nn.LocalResponseNorm(int(size), alpha=alpha, beta=beta, k=k)),
    ]
    if not roi_align:
        layers.append(("pool2", nn.MaxPool2d(3, 2)))
    layers += [("conv3", nn.Conv2d(c2, c3, 3, dilation=3 if roi_align else 1)), ("relu3", nn.ReLU())]
    return LayeredNet(OrderedDict(layers))


class MDNet(nn.Module):
    """``forward(patches [N,3,107,107] RGB 0..255, domain=k) -> logits [N, 2]`` (fc6 of domain k;
    column 1 is the target score ``f+``).

    Pieces: :meth:`conv_features` (flattened conv3, ``[N, 9·C3]``) and :meth:`classify`
    (fc4 → fc6); the RoIAlign variant adds :meth:`feature_map` and :meth:`roi_features`.
    """

    def __init__(self, num_domains: int = 1, width: float = 1.0, roi_align: bool = False,
                 lrn: tuple = VGG_M_LRN, widths: tuple[int, int, int, int] | None = None):
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"MDNet needs at least one domain (fc6 branch), got {num_domains}")
        self.widths = tuple(int(w) for w in widths) if widths else channels(width)
        if len(self.widths) != 4:
            raise ValueError(f"MDNet widths are (conv1, conv2, conv3, fc), got {self.widths}")
        self.roi_align = bool(roi_align)
        self.lrn = tuple(lrn)
        c3, fc = self.widths[2], self.widths[3]
        self.convs = conv_layers(self.widths, self.lrn, self.roi_align)
        self.fc4 = nn.Linear(c3 * FEATURE_SIDE * FEATURE_SIDE, fc)
        self.fc5 = nn.Linear(fc, fc)
        self.fc6 = nn.ModuleList(nn.Linear(fc, 2) for _ in range(num_domains))
        self.dropout = nn.Dropout(DROPOUT)
        # (roi_align, LRN size, alpha, beta, k): saved with the weights so a file rebuilds its net
        self.register_buffer("architecture", torch.tensor([float(self.roi_align), *map(float, self.lrn)],
                                                          dtype=torch.float64))
        self.reset_parameters()

    @property
    def num_domains(self) -> int:
        return len(self.fc6)

    def reset_parameters(self) -> None:
        for m in self.convs.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        for fc in (self.fc4, self.fc5):
            nn.init.normal_(fc.weight, 0.0, 0.01)
            nn.init.constant_(fc.bias, 0.1)
        for branch in self.fc6:
            init_branch(branch)

    def new_domains(self, num_domains: int = 1) -> None:
        """Replace every fc6 by ``num_domains`` new, freshly initialised branches (online
        tracking starts with one new fc6)."""
        device = self.fc5.weight.device
        self.fc6 = nn.ModuleList(init_branch(nn.Linear(self.widths[3], 2)) for _ in range(num_domains))
        self.fc6.to(device)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """conv3 map (after ReLU) of RGB 0..255 images ``[N, 3, H, W]``."""
        return self.convs(images.float() - INPUT_OFFSET)

    def roi_features(self, feature_map: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """``[R, 9·C3]``: RoIAlign (3 × 3, stride 8) of ``rois [R, 5]`` = ``(image index, x1, y1,
        x2, y2)`` in image pixels, already the padded candidate boxes (see :func:`candidate_rois`)."""
        if not self.roi_align:
            raise ValueError("roi_features needs the RoIAlign variant (MDNet(roi_align=True))")
        cells = rois.clone().float()
        cells[:, 3:] = torch.maximum(cells[:, 3:] - RT_RECEPTIVE_FIELD, cells[:, 1:3] + 1)
        pooled = tv_roi_align(feature_map, cells.to(feature_map.dtype), output_size=FEATURE_SIDE,
                              spatial_scale=1.0 / RT_STRIDE, sampling_ratio=2, aligned=False)
        return pooled.flatten(1)

    def conv_features(self, patches: torch.Tensor) -> torch.Tensor:
        """Flattened conv3 features ``[N, 9·C3]`` of 107 × 107 patches (RoIAlign variant: the
        padded box of each patch pooled from its own map)."""
        fmap = self.feature_map(patches)
        if not self.roi_align:
            return fmap.flatten(1)
        n, side = patches.shape[0], patches.shape[-1]
        box = torch.tensor(patch_box(side), dtype=torch.float32, device=patches.device)
        rois = torch.cat([torch.arange(n, device=patches.device, dtype=torch.float32)[:, None],
                          candidate_rois(box[None].expand(n, 4))], dim=1)
        return self.roi_features(fmap, rois)

    def hidden(self, features: torch.Tensor) -> torch.Tensor:
        """The shared fc4 → fc5 output ``[N, C5]`` (after ReLU) of conv3 features ``[N, 9·C3]``."""
        return torch.relu(self.fc5(self.dropout(torch.relu(self.fc4(features)))))

    def classify(self, features: torch.Tensor, domain: int = 0) -> torch.Tensor:
        """fc4 → fc5 → fc6 of ``domain`` on conv3 features ``[N, 9·C3]``."""
        if not 0 <= domain < len(self.fc6):
            raise IndexError(f"MDNet has {len(self.fc6)} domains; asked for domain {domain}")
        return self.fc6[domain](self.dropout(self.hidden(features)))

    def forward(self, patches: torch.Tensor, domain: int = 0) -> torch.Tensor:
        return self.classify(self.conv_features(patches), domain)


def init_branch(linear: nn.Linear) -> nn.Linear:
    """fc6 initialisation: ``N(0, 0.01)``, zero bias (py-MDNet)."""
    nn.init.normal_(linear.weight, 0.0, 0.01)
    nn.init.zeros_(linear.bias)
    return linear


def patch_box(side: int = INPUT_SIZE, padding: int = CONTEXT_PADDING) -> tuple[float, float, float, float]:
    """The box ``(x, y, w, h)`` a ``side`` patch was cropped for: ``padding`` pixels in from each
    border (scaled when ``side`` is not 107)."""
    pad = padding * side / INPUT_SIZE
    return (pad, pad, side - 2 * pad, side - 2 * pad)


def candidate_rois(boxes: torch.Tensor, padding: float = RT_PADDING) -> torch.Tensor:
    """``[N, 4]`` ``(x1, y1, x2, y2)``: boxes ``(x, y, w, h)`` enlarged ``padding`` times about
    their centres (RT-MDNet's RoIs before the receptive-field shrink)."""
    boxes = boxes.float()
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    half = boxes[:, 2:] * padding / 2
    return torch.cat([centre - half, centre + half], dim=1)


def architecture_of(state: dict[str, torch.Tensor], source: str = "state dict") -> tuple[bool, tuple]:
    """``(roi_align, lrn)`` recorded in a state dict's ``architecture`` buffer."""
    if "architecture" not in state or state["architecture"].numel() != 5:
        raise ValueError(f"{source}: no MDNet 'architecture' entry (roi_align, LRN size, alpha, beta, k); "
                         "foreign checkpoints go through 'deepvideo convert --tracker mdnet'")
    flag, size, alpha, beta, k = state["architecture"].double().tolist()
    return bool(flag), (int(size), alpha, beta, k)


def from_state_dict(state: dict[str, torch.Tensor], source: str = "state dict") -> MDNet:
    """The MDNet of a deepvideo state dict (widths, number of fc6 branches, variant and LRN read
    from it), loaded; a ValueError naming ``source`` when keys are missing or unknown."""
    needed = ("convs.conv1.weight", "convs.conv2.weight", "convs.conv3.weight", "fc4.weight")
    if not all(k in state for k in needed):
        raise ValueError(f"{source}: not MDNet weights (needs {', '.join(needed)}; keys: "
                         f"{', '.join(sorted(state)[:8])}...)")
    roi_align, lrn = architecture_of(state, source)
    widths = tuple(int(state[k].shape[0]) for k in needed)
    domains = sum(1 for k in state if k.startswith("fc6.") and k.endswith(".weight"))
    model = MDNet(max(1, domains), roi_align=roi_align, lrn=lrn, widths=widths)
    own = model.state_dict()
    unknown, missing = sorted(set(state) - set(own)), sorted(set(own) - set(state))
    if domains == 0:
        missing = [k for k in missing if not k.startswith("fc6.")]   # shared layers only
    if unknown or missing:
        raise ValueError(f"{source}: keys matching nothing in MDNet: {unknown}; missing: {missing}")
    model.load_state_dict(state, strict=False)
    return model
