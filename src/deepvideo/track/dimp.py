"""DiMP's network: backbone, IoU-Net and the model predictor (initialiser + unrolled
steepest-descent optimiser with learned loss).

G. Bhat, M. Danelljan, L. Van Gool, R. Timofte, "Learning Discriminative Model Prediction for
Tracking", ICCV 2019 (Sec. 3), with the settings of the authors' code
(github.com/visionml/pytracking: ``ltr/models/tracking/dimpnet.py``,
``ltr/models/target_classifier/{initializer,optimizer,features}.py``,
``ltr/train_settings/dimp/dimp18.py``):

- classification features: block4 (``layer3``, stride 16) → for ResNet-18 one residual basic
  block and a 3×3 conv to 256 channels (ResNet-50: a 3×3 conv to 512), then instance L2
  normalisation with scale ``√(1 / (C·k²))``;
- filter ``f`` of size ``k × k`` (``k = 4``); the score map ``s = x ∗ f`` (padding ``k // 2``);
- initialiser: a 3×3 conv, RoI pooling (``k × k``) of the target box in each training image,
  the mean over the training images;
- optimiser (steepest descent, ``N_iter = 5`` unrolled in training): residual
  ``r(s, c) = v_c · (m_c s + (1 − m_c) max(0, s) − y_c)`` and loss
  ``L(f) = Σ_j γ_j ||r(x_j ∗ f, c_j)||² + λ ||f||²`` (``γ_j = 1 / N`` for the ``N`` training
  images unless weights are given); gradient ``∇L`` (of ``L / 2``), step
  ``α = ||∇L||² / (||J ∇L||² + λ ||∇L||²)`` (the paper's closed form, the Jacobian ``J`` of
  the residuals, the last term that of the regulariser), ``f ← f − β α ∇L`` with a learned
  scale ``β = exp(log_step_length)`` (initially 0.9); ``λ = filter_reg²`` (learned, initially
  0.1², at least ``1e-3²``);
- the label ``y``, target mask ``m`` (sigmoid) and spatial weight ``v`` are learned functions
  of the distance to the target centre: 1×1 convs over 100 triangular distance bins 0.1 cells
  apart (``num_dist_bins = 100``, ``bin_displacement = 0.1``; the last bin collects all larger
  distances), ``y`` initialised to a Gaussian of ``σ = 0.9`` cells (``output_sigma_factor 1/4 /
  search_area 5 × 18 cells``), ``m`` to ``3 tanh(2 − d)`` (``mask_init_factor = 3``), ``v`` to 1.

Coordinates: image pixel ``p`` is feature coordinate ``p / 16``; feature cell ``i`` spans
``i..i+1``; score cell ``o`` is centred at feature coordinate ``o + (k mod 2) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from deepvideo.track.atom import Backbone, backbone_config
from deepvideo.track.iounet import IoUNet, pool_boxes
from deepvideo.track.online_classifier import instance_l2_norm

STRIDE = 16
FILTER_SIZE = 4
NUM_ITER = 5
INIT_STEP = 0.9
INIT_REG = 0.1
MIN_REG = 1e-3
NUM_BINS = 100
BIN_DISPLACEMENT = 0.1
INIT_SIGMA = 0.25 / 5 * 18
MASK_INIT_FACTOR = 3.0


def apply_filter(feat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Scores ``[I, S, H', W']`` of features ``[I, S, C, H, W]`` with filters ``[S, C, k, k]``."""
    i, s, c, h, w = feat.shape
    k = weights.shape[-1]
    out = F.conv2d(feat.reshape(i, s * c, h, w), weights, padding=k // 2, groups=s)
    return out.reshape(i, s, *out.shape[-2:])


def filter_transpose(feat: torch.Tensor, grad_scores: torch.Tensor, k: int) -> torch.Tensor:
    """The adjoint of :func:`apply_filter` in the filter: ``[S, C, k, k]`` from score-map
    gradients ``[I, S, H', W']`` (differentiable)."""
    i, s, c, h, w = feat.shape
    return torch.nn.grad.conv2d_weight(feat.reshape(i, s * c, h, w), (s, c, k, k), grad_scores,
                                       padding=k // 2, groups=s)


def distance_bins(centers: torch.Tensor, size: tuple[int, int], bins: int,
                  displacement: float) -> torch.Tensor:
    """Triangular bins ``[B, bins, H, W]`` of each cell's distance to ``centers [B, 2]`` (``x, y``
    score cells); the last bin rises to 1 for all larger distances."""
    h, w = size
    kw = {"dtype": centers.dtype, "device": centers.device}
    ys = torch.arange(h, **kw)[None, :, None] - centers[:, 1, None, None]
    xs = torch.arange(w, **kw)[None, None, :] - centers[:, 0, None, None]
    dist = torch.sqrt(xs * xs + ys * ys)[:, None]
    diff = dist / displacement - torch.arange(bins, **kw)[None, :, None, None]
    return torch.cat([F.relu(1 - diff[:, :-1].abs()), (1 + diff[:, -1:]).clamp(0, 1)], dim=1)


def score_centers(boxes: torch.Tensor, k: int, stride: int = STRIDE) -> torch.Tensor:
    """Target centres ``[..., 2]`` in score cells of boxes ``[..., 4]`` (crop pixels)."""
    return (boxes[..., :2] + boxes[..., 2:] / 2) / stride - (k % 2) / 2


class FilterInitializer(nn.Module):
    """3×3 conv, RoI pooling of the target (``k × k``) and the mean over training images."""

    def __init__(self, dim: int, filter_size: int = FILTER_SIZE):
        super().__init__()
        self.filter_size = int(filter_size)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        nn.init.normal_(self.conv.weight, 0, math.sqrt(2.0 / (9 * dim)))
        nn.init.zeros_(self.conv.bias)

    def forward(self, feat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Features ``[I, S, C, H, W]``, boxes ``[I, S, 4]`` (crop pixels) → filters ``[S, C, k, k]``."""
        i, s = feat.shape[:2]
        x = self.conv(feat.flatten(0, 1))
        pooled = pool_boxes(x, boxes.reshape(i * s, 1, 4), self.filter_size, STRIDE)
        return pooled.reshape(i, s, *pooled.shape[1:]).mean(dim=0)


class SteepestDescent(nn.Module):
    """DiMP's optimiser with its learned loss (see the module docstring)."""

    def __init__(self, num_iter: int = NUM_ITER, init_step: float = INIT_STEP, init_reg: float = INIT_REG,
                 bins: int = NUM_BINS, bin_displacement: float = BIN_DISPLACEMENT,
                 init_sigma: float = INIT_SIGMA, mask_init_factor: float = MASK_INIT_FACTOR,
                 min_reg: float = MIN_REG):
        super().__init__()
        self.num_iter, self.bins, self.bin_displacement = int(num_iter), int(bins), float(bin_displacement)
        self.min_reg = float(min_reg)
        self.log_step_length = nn.Parameter(torch.full((1,), math.log(init_step)))
        self.filter_reg = nn.Parameter(torch.full((1,), float(init_reg)))
        d = torch.arange(bins, dtype=torch.float32).reshape(1, -1, 1, 1) * bin_displacement
        gauss = torch.exp(-0.5 * (d / init_sigma) ** 2)
        self.label_net = nn.Conv2d(bins, 1, 1, bias=False)
        self.mask_net = nn.Conv2d(bins, 1, 1, bias=False)
        self.weight_net = nn.Conv2d(bins, 1, 1, bias=False)
        with torch.no_grad():
            self.label_net.weight.copy_(gauss - gauss.min())
            self.mask_net.weight.copy_(mask_init_factor * torch.tanh(2.0 - d))
            self.weight_net.weight.fill_(1.0)

    def regularization(self) -> torch.Tensor:
        """``λ = filter_reg²``, at least ``min_reg²``."""
        return (self.filter_reg * self.filter_reg).clamp(min=self.min_reg ** 2)

    def loss_maps(self, boxes: torch.Tensor, size: tuple[int, int], k: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Label ``y``, mask ``m`` and spatial weight ``v`` ``[I, S, H', W']`` for boxes ``[I, S, 4]``."""
        i, s = boxes.shape[:2]
        dist = distance_bins(score_centers(boxes, k).reshape(-1, 2), size, self.bins, self.bin_displacement)
        maps = [net(dist).reshape(i, s, *size) for net in (self.label_net, self.mask_net, self.weight_net)]
        return maps[0], torch.sigmoid(maps[1]), maps[2]

    def step(self, weights: torch.Tensor, feat: torch.Tensor, label: torch.Tensor, mask: torch.Tensor,
             sample_weight: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
        """One steepest-descent step ``f ← f − β α ∇L`` (``sample_weight`` = ``√γ · v``)."""
        k = weights.shape[-1]
        scores = apply_filter(feat, weights)
        active = mask * scores + (1 - mask) * F.relu(scores)
        slope = (1 - mask) / 2 * torch.sign(scores) + (1 + mask) / 2        # ∂active/∂s
        residual = sample_weight * (active - label)
        grad = filter_transpose(feat, slope * sample_weight * residual, k) + reg * weights
        jg = sample_weight * slope * apply_filter(feat, grad)
        num = (grad * grad).sum(dim=(1, 2, 3))
        den = (jg * jg).sum(dim=(0, 2, 3)) + reg * num
        alpha = num / den.clamp(min=1e-8)
        return weights - (torch.exp(self.log_step_length) * alpha).reshape(-1, 1, 1, 1) * grad

    def forward(self, weights: torch.Tensor, feat: torch.Tensor, boxes: torch.Tensor,
                num_iter: int | None = None, sample_weight: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run ``num_iter`` steps from ``weights [S, C, k, k]`` on training features
        ``[I, S, C, H, W]`` with boxes ``[I, S, 4]`` and optional image weights ``γ [I]`` or
        ``[I, S]`` (default ``1 / I``) → (final filters, all iterates including the first)."""
        i, s = feat.shape[:2]
        k = weights.shape[-1]
        size = (feat.shape[-2] + (k + 1) % 2, feat.shape[-1] + (k + 1) % 2)
        label, mask, v = self.loss_maps(boxes, size, k)
        gamma = torch.full((i, s), 1.0 / i, device=feat.device) if sample_weight is None else sample_weight
        sw = gamma.reshape(i, -1, 1, 1).sqrt() * v
        reg = self.regularization()
        iterates = [weights]
        for _ in range(self.num_iter if num_iter is None else int(num_iter)):
            weights = self.step(weights, feat, label, mask, sw, reg)
            iterates.append(weights)
        return weights, iterates


def classifier_features(depth: int, cin: int, dim: int) -> nn.Sequential:
    """DiMP's classification feature block (ResNet-18: basic block + 3×3 conv; ResNet-50: 3×3 conv)."""
    layers: list[nn.Module] = [] if depth >= 50 else [BasicBlock(cin, cin)]
    layers.append(nn.Conv2d(cin, dim, 3, padding=1, bias=False))
    return nn.Sequential(*layers)


class DiMPNet(nn.Module):
    """Backbone, classification features, model predictor and IoU-Net (see the module docstring).

    ``clf_dim`` defaults to 256 (ResNet-18) or 512 (ResNet-50) scaled by ``width``.
    """

    def __init__(self, depth: int = 18, width: float = 1.0, filter_size: int = FILTER_SIZE,
                 clf_dim: int | None = None, iou_dim: int = 256, num_iter: int = NUM_ITER,
                 bins: int = NUM_BINS):
        super().__init__()
        if clf_dim is None:
            clf_dim = max(1, round((512 if depth >= 50 else 256) * width))
        self.config = {"depth": int(depth), "width": float(width), "filter_size": int(filter_size),
                       "clf_dim": int(clf_dim), "iou_dim": int(iou_dim), "num_iter": int(num_iter),
                       "bins": int(bins)}
        self.backbone = Backbone(depth, width)
        self.clf_features = classifier_features(depth, self.backbone.channels[1], clf_dim)
        self.norm_scale = math.sqrt(1.0 / (clf_dim * filter_size * filter_size))
        self.initializer = FilterInitializer(clf_dim, filter_size)
        self.optimizer = SteepestDescent(num_iter, bins=bins)
        self.iou_net = IoUNet(self.backbone.channels, iou_dim)

    def classification(self, layer3: torch.Tensor) -> torch.Tensor:
        """Classification features ``[N, C, H, W]`` of block4 maps."""
        return instance_l2_norm(self.clf_features(layer3), self.norm_scale)

    def predict_filter(self, feat: torch.Tensor, boxes: torch.Tensor, num_iter: int | None = None,
                       sample_weight: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The model predictor: initial filter from ``feat [I, S, C, H, W]`` and ``boxes [I, S, 4]``,
        then the optimiser → (filter ``[S, C, k, k]``, iterates)."""
        return self.optimizer(self.initializer(feat, boxes), feat, boxes, num_iter, sample_weight)

    def forward(self, train_images: torch.Tensor, test_images: torch.Tensor, train_boxes: torch.Tensor,
                proposals: torch.Tensor) -> dict[str, object]:
        """Training forward: ``train_images [I, S, 3, H, W]`` with ``train_boxes [I, S, 4]``,
        ``test_images [J, S, 3, H, W]`` with ``proposals [J, S, P, 4]`` → ``{"scores": [J, S, H', W']
        per iterate, "iou": [J, S, P]}`` (the IoU-Net's reference is the first training image)."""
        i, s = train_images.shape[:2]
        j = test_images.shape[0]
        l2, l3 = self.backbone(torch.cat([train_images, test_images]).flatten(0, 1))
        clf = self.classification(l3)
        clf = clf.reshape(i + j, s, *clf.shape[1:])
        _, iterates = self.predict_filter(clf[:i], train_boxes)
        scores = [apply_filter(clf[i:], w) for w in iterates]
        ref = (l2[:s], l3[:s])
        modulation = tuple(m.repeat(j, 1) for m in self.iou_net.modulation(*ref, train_boxes[0]))
        test = self.iou_net.test_features(l2[i * s:], l3[i * s:])
        iou = self.iou_net.predict_iou(modulation, test, proposals.flatten(0, 1))
        return {"scores": scores, "iou": iou.reshape(j, s, -1)}


def dimp_from_state(state: Mapping[str, torch.Tensor], filter_size: int = FILTER_SIZE) -> DiMPNet:
    """A :class:`DiMPNet` shaped like the (deepvideo-named) weights ``state`` (not loaded); the
    filter size is not in the weights (4 for the published DiMP-18 and DiMP-50)."""
    return DiMPNet(**backbone_config(state), filter_size=filter_size,
                   clf_dim=state["initializer.conv.weight"].shape[0],
                   iou_dim=state["iou_net.predictor.weight"].shape[1] // 2,
                   bins=state["optimizer.label_net.weight"].shape[1])


__all__ = ["DiMPNet", "FilterInitializer", "SteepestDescent", "apply_filter", "classifier_features",
           "dimp_from_state", "distance_bins", "filter_transpose", "score_centers"]
