"""ATOM's offline-trained network: a ResNet backbone and the IoU-Net head.

M. Danelljan, G. Bhat, F. S. Khan, M. Felsberg, "ATOM: Accurate Tracking by Overlap
Maximization", CVPR 2019: ResNet-18 (ImageNet weights; torchvision names so they load by name)
whose block3 and block4 maps (torchvision ``layer2``, stride 8, and ``layer3``, stride 16)
feed :class:`deepvideo.track.iounet.IoUNet`; block4 also feeds the online classifier
(:class:`deepvideo.track.online_classifier.ATOMClassifier`). Images are RGB ``0..255`` floats,
normalised with the ImageNet mean and deviation. The search region is 5 target sizes
(``search_area_scale = 5``) resampled to 288 × 288 (``(18·16)²`` pixels), so block4 is 18 × 18.

``width`` shrinks the backbone's stages and ``iou_dim`` the head (1.0 and 256 in the paper)
for CPU presets. ``layer4`` and the ImageNet classifier are not used; the backbone keeps its
torchvision layout up to ``layer3``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from deepvideo.nn.backbones2d import resnet
from deepvideo.track.iounet import IoUNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEARCH_AREA_SCALE = 5.0
IMAGE_SIZE = 288


class Backbone(nn.Module):
    """A torchvision-named ResNet trunk up to ``layer3``: ``forward(images) -> (layer2, layer3)``."""

    def __init__(self, depth: int = 18, width: float = 1.0):
        super().__init__()
        net = resnet(depth, width=width)
        self.depth, self.width = int(depth), float(width)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
            setattr(self, name, getattr(net, name))
        expansion = 4 if depth >= 50 else 1
        self.channels = (max(1, round(128 * width)) * expansion, max(1, round(256 * width)) * expansion)
        mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1) * 255
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [N, 3, H, W]`` (RGB 0..255) → ``(layer2 [N, C2, H/8, W/8],
        layer3 [N, C3, H/16, W/16])``."""
        x = (images - self.mean) / self.std
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        l2 = self.layer2(x)
        return l2, self.layer3(l2)


class ATOMNet(nn.Module):
    """Backbone + IoU-Net (what ATOM trains offline)."""

    def __init__(self, depth: int = 18, width: float = 1.0, iou_dim: int = 256):
        super().__init__()
        self.config = {"depth": int(depth), "width": float(width), "iou_dim": int(iou_dim)}
        self.backbone = Backbone(depth, width)
        self.iou_net = IoUNet(self.backbone.channels, iou_dim)

    def forward(self, ref_images: torch.Tensor, test_images: torch.Tensor, ref_boxes: torch.Tensor,
                proposals: torch.Tensor) -> torch.Tensor:
        """Reference images ``[S, 3, H, W]`` with boxes ``[S, 4]``, test images ``[S, 3, H, W]``
        with ``proposals [S, P, 4]`` (``x, y, w, h`` crop pixels) → predicted IoU ``[S, P]``."""
        return self.iou_net(self.backbone(ref_images), ref_boxes, self.backbone(test_images), proposals)


def backbone_config(state: Mapping[str, torch.Tensor], prefix: str = "backbone.") -> dict:
    """``{"depth", "width"}`` of the :class:`Backbone` whose weights ``state`` holds under ``prefix``."""
    key = f"{prefix}conv1.weight"
    if key not in state:
        raise KeyError(f"no {key!r} in the weights: not a deepvideo ATOM/DiMP network")
    blocks = {k.split(".")[2] for k in state if k.startswith(f"{prefix}layer3.")}
    bottleneck = f"{prefix}layer1.0.conv3.weight" in state
    depth = {(False, 2): 18, (False, 6): 34, (True, 6): 50, (True, 23): 101}.get((bottleneck, len(blocks)))
    if depth is None:
        raise ValueError(f"weights under {prefix!r}: a ResNet with {len(blocks)} blocks in layer3 "
                         "is not supported")
    return {"depth": depth, "width": state[key].shape[0] / 64}


def atom_from_state(state: Mapping[str, torch.Tensor]) -> ATOMNet:
    """An :class:`ATOMNet` shaped like the (deepvideo-named) weights ``state`` (not loaded)."""
    return ATOMNet(**backbone_config(state), iou_dim=state["iou_net.predictor.weight"].shape[1] // 2)


__all__ = ["ATOMNet", "Backbone", "IMAGE_SIZE", "SEARCH_AREA_SCALE", "atom_from_state", "backbone_config"]
