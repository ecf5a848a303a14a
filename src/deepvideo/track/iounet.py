"""ATOM's IoU-Net head: predicts the IoU of proposal boxes with the target, and refines boxes
by gradient ascent on that prediction.

M. Danelljan, G. Bhat, F. S. Khan, M. Felsberg, "ATOM: Accurate Tracking by Overlap
Maximization", CVPR 2019 (Sec. 3.1, 3.2 and Fig. 2), with the layer sizes and refinement
settings of the authors' code (github.com/visionml/pytracking, ``ltr/models/bbreg/atom_iou_net.py``
and ``pytracking/parameter/atom/default.py``):

- inputs are the backbone's block3 and block4 maps (torchvision ``layer2`` at stride 8 and
  ``layer3`` at stride 16);
- reference branch: a 3×3 conv-BN-ReLU on each block (128 / 256 channels), pooled in the
  reference box to 3×3 (block3, then a 3×3 conv without padding to 1×1) and 1×1 (block4),
  concatenated, and two 1×1 conv-BN-ReLU giving one modulation vector per block;
- test branch: two 3×3 conv-BN-ReLU per block; the maps are multiplied channel-wise by the
  modulation vectors, pooled at each proposal (5×5 on block3, 3×3 on block4), each through a
  fully connected layer + BN + ReLU (256), concatenated, and a linear layer gives the IoU;
- refinement (``pytracking/tracker/atom/atom.py`` and ``dimp/dimp.py``, ``refine_target_box``):
  the start box and 9 random boxes around it (centre and size moved by ``(U(0, 1) − 0.5) ·
  √(w h) · (0.1, 0.1, 0.5, 0.5)``, sizes at least a third of the smaller side;
  :func:`jitter_boxes`), 5 gradient-ascent steps on the predicted IoU with step length 1, the
  gradient scaled by the box's width and height (``x ← x + 1 · ∂IoU/∂x · (w, h, w, h)``, boxes
  ``x, y, w, h``; ATOM's and DiMP-18/50's ``box_refinement_space = 'default'``), then the mean
  of the 3 boxes with the highest predicted IoU among those whose aspect ratio is within
  1/6..6; none kept: the box is left as it was. The predicted IoU used to rank a box is the one
  computed at the last step's input, as in pytracking;
- the relative parametrisation (``box_refinement_space = 'relative'``, PrDiMP, Danelljan et al.,
  CVPR 2020; ``pytracking/parameter/dimp/prdimp18.py``: 10 steps of length 2.5e-3): ascent on
  ``(cx / n_w, cy / n_h, log w, log h)`` with ``n`` the start box's size, so a size step is
  multiplicative and a box cannot reach a negative size (:func:`to_relative`). DiMP-18/50's
  parameter files set ``iounet_use_log_scale = True``, which the tracker code does not read: they
  refine in the default space.

Departure: the paper pools with PrRoI pooling (the exact integral of the bilinearly
interpolated map over each bin). Here :func:`pool_boxes` is RoIAlign (He et al., ICCV 2017)
with a 4×4 grid of bilinear samples averaged per bin (approximating the integral), feature cell
``i`` at coordinate ``i`` (PrRoI's convention, and ``torchvision.ops.roi_align(...,
aligned=False, sampling_ratio=4)``'s, which it equals inside the map), zero outside the map
(as PrRoI). It is written with :func:`torch.nn.functional.grid_sample` because
torchvision's ``roi_align`` gives no gradient with respect to the boxes, which the refinement
needs.

``dim`` scales every internal width (256 in the paper; a CPU preset uses less); the reference
block3 branch has ``dim // 2`` channels (128 in the paper).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16)                 # block3 (layer2), block4 (layer3)
REF_POOL = (3, 1)                 # reference pooling sizes per block
TEST_POOL = (5, 3)                # test pooling sizes per block
SAMPLING_RATIO = 4
REFINE_STEPS = 5                  # box_refinement_iter
REFINE_STEP_LENGTH = 1.0          # box_refinement_step_length
TOP_K = 3                         # iounet_k
MAX_ASPECT = 6.0                  # maximal_aspect_ratio
NUM_RANDOM_BOXES = 9              # num_init_random_boxes
JITTER_POS = 0.1                  # box_jitter_pos
JITTER_SIZE = 0.5                 # box_jitter_sz
RELATIVE_STEPS = 10               # PrDiMP (prdimp18.py): box_refinement_iter
RELATIVE_STEP_LENGTH = 2.5e-3     # PrDiMP: box_refinement_step_length


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, padding: int = 1) -> nn.Sequential:
    """Conv (with bias) → BN → ReLU, as the IoU-Net's blocks."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=padding, bias=True),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LinearBN(nn.Module):
    """Flatten → fully connected → BN → ReLU (the IoU-Net's fc layers on pooled maps)."""

    def __init__(self, cin: int, cout: int, size: int):
        super().__init__()
        self.linear = nn.Linear(cin * size * size, cout)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.linear(x.flatten(1))))


def pool_boxes(features: torch.Tensor, boxes: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """RoIAlign of ``features [B, C, H, W]`` in ``boxes [B, P, 4]`` (``x, y, w, h`` image pixels;
    pixel ``p`` is feature coordinate ``p / stride``, cell ``i`` at coordinate ``i``) →
    ``[B*P, C, size, size]`` (box-major within each image); differentiable in the boxes."""
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
        raise ValueError(f"pool_boxes: boxes must be [B={features.shape[0]}, P, 4], got {tuple(boxes.shape)}")
    b, p = boxes.shape[:2]
    h, w = features.shape[-2:]
    n = size * SAMPLING_RATIO
    steps = (torch.arange(n, dtype=features.dtype, device=features.device) + 0.5) / n
    box = boxes.to(features.dtype) / stride
    xs = box[..., 0:1] + steps * box[..., 2:3]                  # [B, P, n]
    ys = box[..., 1:2] + steps * box[..., 3:4]
    gx = 2 * xs / max(w - 1, 1) - 1
    gy = 2 * ys / max(h - 1, 1) - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, :, None, :], gy[:, :, :, None]), dim=-1)
    sampled = F.grid_sample(features, grid.reshape(b, p * n, n, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=True)      # [B, C, P*n, n]
    sampled = sampled.reshape(b, -1, p, n, n).transpose(1, 2).reshape(b * p, -1, n, n)
    return F.avg_pool2d(sampled, SAMPLING_RATIO)


class IoUNet(nn.Module):
    """IoU predictor conditioned on a reference box (ATOM Fig. 2); see the module docstring.

    ``in_dims``: channels of block3 and block4; ``dim``: internal width (256 in the paper).
    """

    def __init__(self, in_dims: tuple[int, int] = (128, 256), dim: int = 256):
        super().__init__()
        half = max(1, dim // 2)
        self.ref3 = conv_bn_relu(in_dims[0], half)
        self.ref3_fc = conv_bn_relu(half, dim, padding=0)        # 3×3 pooled → 1×1
        self.ref4 = conv_bn_relu(in_dims[1], dim)
        self.mod3 = conv_bn_relu(2 * dim, dim, kernel=1, padding=0)
        self.mod4 = conv_bn_relu(2 * dim, dim, kernel=1, padding=0)
        self.test3 = nn.Sequential(conv_bn_relu(in_dims[0], dim), conv_bn_relu(dim, dim))
        self.test4 = nn.Sequential(conv_bn_relu(in_dims[1], dim), conv_bn_relu(dim, dim))
        self.fc3 = LinearBN(dim, dim, TEST_POOL[0])
        self.fc4 = LinearBN(dim, dim, TEST_POOL[1])
        self.predictor = nn.Linear(2 * dim, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                nn.init.zeros_(m.bias)

    def modulation(self, feat3: torch.Tensor, feat4: torch.Tensor,
                   boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulation vectors ``([B, dim], [B, dim])`` from reference maps and boxes ``[B, 4]``."""
        boxes = boxes[:, None]
        r3 = self.ref3_fc(pool_boxes(self.ref3(feat3), boxes, REF_POOL[0], STRIDES[0]))
        r4 = pool_boxes(self.ref4(feat4), boxes, REF_POOL[1], STRIDES[1])
        joint = torch.cat([r3, r4], dim=1)
        return self.mod3(joint).flatten(1), self.mod4(joint).flatten(1)

    def test_features(self, feat3: torch.Tensor, feat4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The test branch's maps (computed once per frame, then pooled at any proposals)."""
        return self.test3(feat3), self.test4(feat4)

    def predict_iou(self, modulation: tuple[torch.Tensor, torch.Tensor],
                    test: tuple[torch.Tensor, torch.Tensor], proposals: torch.Tensor) -> torch.Tensor:
        """Predicted IoU ``[B, P]`` of ``proposals [B, P, 4]`` (``x, y, w, h`` pixels)."""
        b, p = proposals.shape[:2]
        m3 = test[0] * modulation[0][:, :, None, None]
        m4 = test[1] * modulation[1][:, :, None, None]
        f3 = self.fc3(pool_boxes(m3, proposals, TEST_POOL[0], STRIDES[0]))
        f4 = self.fc4(pool_boxes(m4, proposals, TEST_POOL[1], STRIDES[1]))
        return self.predictor(torch.cat([f3, f4], dim=1)).reshape(b, p)

    def forward(self, ref: tuple[torch.Tensor, torch.Tensor], ref_boxes: torch.Tensor,
                test: tuple[torch.Tensor, torch.Tensor], proposals: torch.Tensor) -> torch.Tensor:
        """Training forward: reference maps ``(block3, block4)`` of ``B`` images with boxes
        ``[B, 4]``; test maps of ``B`` images with ``proposals [B, P, 4]`` → IoU ``[B, P]``."""
        return self.predict_iou(self.modulation(*ref, ref_boxes), self.test_features(*test), proposals)


def to_relative(boxes: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Boxes ``x, y, w, h`` → the relative parametrisation ``(cx / n_w, cy / n_h, log w, log h)``
    (``norm`` = ``(n_w, n_h)``, broadcast): pytracking's ``rect_to_rel``."""
    center = boxes[..., :2] + boxes[..., 2:] / 2
    return torch.cat([center / norm, torch.log(boxes[..., 2:])], dim=-1)


def from_relative(rel: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_relative`."""
    size = torch.exp(rel[..., 2:])
    return torch.cat([rel[..., :2] * norm - size / 2, size], dim=-1)


def step_vector(step_length, like: torch.Tensor) -> torch.Tensor:
    """A step length (a number, or ``(position, size)``) as the per-coordinate vector ``[4]``."""
    if isinstance(step_length, tuple | list):
        if len(step_length) != 2:
            raise ValueError(f"step_length: a number or (position, size), got {step_length!r}")
        pos, size = (float(v) for v in step_length)
        return torch.tensor([pos, pos, size, size], dtype=like.dtype)
    return torch.full((4,), float(step_length), dtype=like.dtype)


def refine_boxes(net: IoUNet, modulation: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], boxes: torch.Tensor,
                 steps: int = REFINE_STEPS, step_length=REFINE_STEP_LENGTH, decay: float = 1.0,
                 space: str = "default") -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ascent on the predicted IoU of ``boxes [P, 4]`` (one image; ``modulation`` and
    ``test`` of batch 1); the step length is multiplied by ``decay`` after each step.

    ``space="default"`` (ATOM, DiMP): ``x ← x + step · ∇ₓIoU · (w, h, w, h)`` on ``x, y, w, h``.
    ``space="relative"`` (pytracking's ``box_refinement_space = 'relative'``, PrDiMP): ascent on
    ``r = (cx / n_w, cy / n_h, log w, log h)``, ``r ← r + step · ∇ᵣIoU``, with ``n`` the size of
    the first box. Returns the refined boxes and their predicted IoU at the last step's input
    (as pytracking), both detached."""
    if space not in ("default", "relative"):
        raise ValueError(f"refine_boxes: space must be 'default' or 'relative', got {space!r}")
    step = step_vector(step_length, boxes)
    norm = boxes[:1, 2:].detach().clone()
    x = boxes.detach().clone()[None]
    x = to_relative(x, norm) if space == "relative" else x
    ious = None
    with torch.enable_grad():
        for _ in range(steps):
            x.requires_grad_(True)
            ious = net.predict_iou(modulation, test, from_relative(x, norm) if space == "relative" else x)
            (grad,) = torch.autograd.grad(ious.sum(), x)
            scale = x[..., 2:].repeat(1, 1, 2) if space == "default" else 1.0
            x = (x + step * grad * scale).detach()
            step = step * decay
    out = from_relative(x, norm) if space == "relative" else x
    if ious is None:
        with torch.no_grad():
            ious = net.predict_iou(modulation, test, out)
    return out[0], ious.detach()[0]


def jitter_boxes(box: torch.Tensor, count: int, rng: np.random.Generator, pos: float = JITTER_POS,
                 size: float = JITTER_SIZE) -> torch.Tensor:
    """``box [4]`` and ``count`` random boxes around it ``[1 + count, 4]``: centre and size
    moved by ``(U(0, 1) − 0.5) · √(w h) · (pos, pos, size, size)``, sizes at least a third of
    the box's smaller side (pytracking's ``refine_target_box``)."""
    w, h = float(box[2]), float(box[3])
    u = torch.as_tensor(rng.random((count, 4)) - 0.5, dtype=box.dtype)
    moved = u * math.sqrt(w * h) * torch.tensor([pos, pos, size, size], dtype=box.dtype)
    sizes = (box[2:] + moved[:, 2:]).clamp(min=min(w, h) / 3)
    centers = box[:2] + box[2:] / 2 + moved[:, :2]
    return torch.cat([box[None], torch.cat([centers - sizes / 2, sizes], dim=1)])


def top_k_box(boxes: torch.Tensor, ious: torch.Tensor, k: int = TOP_K,
              max_aspect: float = MAX_ASPECT) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The mean of the ``k`` boxes ``[P, 4]`` with the highest ``ious`` among those whose aspect
    ratio (sizes clamped to at least 1) is strictly within ``1/max_aspect .. max_aspect``, and
    the mean of their predicted IoU; ``None`` when no box is kept (the tracker then keeps its
    box, as pytracking's ``refine_target_box``)."""
    boxes = torch.cat([boxes[:, :2], boxes[:, 2:].clamp(min=1)], dim=1)
    aspect = boxes[:, 2] / boxes[:, 3]
    ok = (aspect < max_aspect) & (aspect > 1 / max_aspect)
    if not bool(ok.any()):
        return None
    boxes, ious = boxes[ok], ious[ok]
    best = torch.topk(ious, min(k, len(ious))).indices
    return boxes[best].mean(dim=0), ious[best].mean()


__all__ = ["IoUNet", "LinearBN", "conv_bn_relu", "from_relative", "jitter_boxes", "pool_boxes",
           "refine_boxes", "step_vector", "to_relative", "top_k_box"]
