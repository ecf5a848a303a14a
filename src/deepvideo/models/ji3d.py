"""3D convolutional neural network for human action recognition (Ji, Xu, Yang & Yu, TPAMI 2013).

3D convolution with tanh, ``v^{xyz}_{ij} = tanh(b_ij + sum_m sum_p sum_q sum_r w^{pqr}_{ijm}
v^{(x+p)(y+q)(z+r)}_{(i-1)m})``, on 7 frames of 60x40 (H x W):

* H1, hardwired: gray (7 maps), gradient x (7), gradient y (7), optical flow x (6) and y (6) =
  33 maps; flow comes from ``batch["flow"]`` (``T-1`` fields; ``hardwired_flow=False`` keeps
  only the 3 image channels, ``hardwired=False`` uses the RGB channels instead);
* C2: two ``7x7x3`` 3D kernels per channel (23 x 2 maps, 54x34); S3: 2x2 subsampling;
* C4: three ``7x6x3`` kernels per C2 map set (13 x 6 maps, 21x12); S5: 3x3 subsampling (7x4);
* C6: a ``7x4`` 2D conv to 128 maps of 1x1, connected to all 78 maps; a linear output layer.

Channels are convolved separately (grouped convs) as in the paper. Subsampling is average
pooling. Inputs larger than ``input_size`` are centre-cropped to it (a square 60x60 crop gives the
paper's 60x40 box).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.models.registry import register_model
from deepvideo.spec import InputSpec

PAPER = "Ji, Xu, Yang & Yu, 3D Convolutional Neural Networks for Human Action Recognition, TPAMI 2013"


def hardwired_channels(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gray, horizontal and vertical gradients of ``rgb [N, 3, T, H, W]``, each ``[N, 1, T, H, W]``."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1, 1)
    gray = (rgb * w).sum(1, keepdim=True)
    gy, gx = torch.gradient(gray, dim=(3, 4))
    return gray, gx, gy


def _size_after(size: tuple[int, int]) -> tuple[int, int]:
    h, w = size[0] - 6, size[1] - 6  # C2 7x7
    h, w = h // 2, w // 2  # S3
    h, w = h - 6, w - 5  # C4 7x6
    return h // 3, w // 3  # S5


class Ji3DCNN(nn.Module):
    def __init__(
        self,
        num_classes: int = 3,
        num_frames: int = 7,
        input_size: tuple[int, int] = (60, 40),
        hardwired: bool = True,
        hardwired_flow: bool = True,
        c2_sets: int = 2,
        c4_sets: int = 3,
        c6_maps: int = 128,
    ):
        super().__init__()
        self.num_frames, self.input_size = num_frames, tuple(input_size)
        self.hardwired, self.use_flow = hardwired, hardwired and hardwired_flow
        if num_frames < 5 or (self.use_flow and num_frames < 6):
            raise ValueError("the Ji et al. net needs >= 5 frames (>= 6 with flow channels)")
        h, w = _size_after(self.input_size)
        if h < 1 or w < 1:
            raise ValueError(f"input_size {input_size} is too small (needs at least 24 x 22)")
        ka = 3  # gray, gx, gy (or R, G, B)
        self.c2_image = nn.Conv3d(ka, ka * c2_sets, (3, 7, 7), groups=ka)
        self.c4_image = nn.Conv3d(ka * c2_sets, ka * c2_sets * c4_sets, (3, 7, 6), groups=ka * c2_sets)
        maps = ka * c2_sets * c4_sets * (num_frames - 4)
        if self.use_flow:
            self.c2_flow = nn.Conv3d(2, 2 * c2_sets, (3, 7, 7), groups=2)
            self.c4_flow = nn.Conv3d(2 * c2_sets, 2 * c2_sets * c4_sets, (3, 7, 6), groups=2 * c2_sets)
            maps += 2 * c2_sets * c4_sets * (num_frames - 5)
        self.num_maps = maps  # 78 for the paper's configuration
        self.c6 = nn.Conv2d(maps, c6_maps, (h, w))
        self.output = nn.Linear(c6_maps, num_classes)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_size
        H, W = x.shape[-2:]
        if H < h or W < w:
            raise ValueError(
                f"input {H}x{W} is smaller than the net's {h}x{w}; resize the clip or rebuild "
                f"with input_size=({H}, {W})"
            )
        top, left = (H - h) // 2, (W - w) // 2
        return x[..., top : top + h, left : left + w]

    @staticmethod
    def _branch(x: torch.Tensor, c2: nn.Conv3d, c4: nn.Conv3d) -> torch.Tensor:
        x = torch.tanh(c2(x))
        x = F.avg_pool3d(x.float(), (1, 2, 2)).to(x.dtype)  # (fp32: no bf16 CPU kernel)
        x = torch.tanh(c4(x))
        x = F.avg_pool3d(x.float(), (1, 3, 3)).to(x.dtype)
        return x.flatten(1, 2)  # every (kernel, time) pair is one map

    def forward(self, batch: dict) -> torch.Tensor:
        rgb = batch["rgb"]
        if rgb.shape[2] != self.num_frames:
            raise ValueError(f"expected {self.num_frames} frames, got rgb {tuple(rgb.shape)}")
        rgb = self._crop(rgb)
        image = torch.cat(hardwired_channels(rgb), 1) if self.hardwired else rgb
        maps = [self._branch(image, self.c2_image, self.c4_image)]
        if self.use_flow:
            if "flow" not in batch:
                raise KeyError(
                    "the hardwired flow channels need batch['flow'] (T-1 fields); build with "
                    "hardwired_flow=False to use gray and gradients only"
                )
            flow = self._crop(batch["flow"][:, :, : self.num_frames - 1])
            if flow.shape[2] != self.num_frames - 1:
                raise ValueError(f"need {self.num_frames - 1} flow fields, got {flow.shape[2]}")
            maps.append(self._branch(flow, self.c2_flow, self.c4_flow))
        x = torch.tanh(self.c6(torch.cat(maps, 1)))
        return self.output(x.flatten(1))


def ji3d(num_classes: int = 3, **kw) -> Ji3DCNN:
    return Ji3DCNN(num_classes, **kw)


register_model(
    "ji3d",
    ji3d,
    InputSpec(modalities=("rgb", "flow"), num_frames=7, flow_stack=6, crop_size=60),
    paper=PAPER,
    summary="Ji et al. 3D CNN: hardwired gray/gradient/flow channels, 7 frames, 60x40",
)
register_model(
    "ji3d_small",
    ji3d,
    InputSpec(modalities=("rgb",), num_frames=7, crop_size=48),
    paper=PAPER,
    summary="CPU Ji et al. 3D CNN without flow channels (gray + gradients), 48x48",
    input_size=(48, 48),
    hardwired_flow=False,
)
