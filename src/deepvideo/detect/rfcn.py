"""R-FCN (Dai, Li, He & Sun, NIPS 2016) as D&T uses it (Feichtenhofer et al., ICCV 2017).

* Backbone: a ResNet (:func:`deepvideo.nn.backbones2d.resnet`) whose conv5 stage has unit
  stride and dilation 2, so conv4 and conv5 are at stride 16.
* RPN (Ren et al. 2015) on conv4: a 3x3 conv, then per cell objectness logits and box deltas
  of ``A`` anchors; D&T uses 15 anchors (5 scales x 3 aspect ratios). Proposals: decoded,
  clipped, the ``pre_nms`` best, NMS at IoU 0.7, then the best ``post_nms`` (300 at test).
* Head on conv5: a 3x3 conv with dilation 6 to 512 channels (ReLU), then 1x1 convs to the
  position-sensitive score maps, ``k² (C + 1)`` channels, and the class-agnostic box maps,
  ``4 k²`` channels (k = 7). Position-sensitive RoI pooling (``torchvision.ops.ps_roi_align``)
  of a RoI gives ``k x k`` bins, averaged (voted) into ``C + 1`` scores and 4 box deltas.
* Test: softmax scores, boxes decoded from each RoI, per-class NMS at IoU 0.3, at most 25
  detections per class per frame, then box voting (D&T's test setting; Gidaris & Komodakis,
  ICCV 2015, as D&T's code does it): each kept box becomes the score-weighted mean of the
  candidate boxes of its class overlapping it with IoU >= 0.5 (itself included).

:func:`rfcn_resnet101` is the paper's model; :func:`rfcn_cpu` a narrow one for tests and the
CPU benchmark (ResNet-50 at width 1/8, 3 scales x 3 ratios of small anchors, k = 3, 64 head
channels, fewer proposals). Losses: :mod:`deepvideo.detect.rfcn_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import (
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    nms,
    ps_roi_align,
    remove_small_boxes,
)

from deepvideo.detect.box_coding import cell_anchors, decode, grid_anchors, per_anchor
from deepvideo.nn.backbones2d import resnet

__all__ = ["PAPER", "RFCN", "Detections", "box_vote", "rfcn_cpu", "rfcn_resnet101"]

# the numbers of the papers, used by the builders below and checked by the tests
PAPER = {"anchor_scales": (32, 64, 128, 256, 512), "anchor_ratios": (0.5, 1.0, 2.0), "rpn_nms": 0.7,
         "test_proposals": 300, "head_channels": 512, "head_dilation": 6, "k": 7, "test_nms": 0.3,
         "stride": 16, "ohem_rois": 128, "fg_iou": 0.5, "per_class_detections": 25, "vote_iou": 0.5}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Detections:
    """Detections of one image: ``boxes [D, 4]``, ``scores [D]``, ``labels [D]`` (1-based),
    ``rois [D]`` (the index of the RoI each came from)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    rois: torch.Tensor


class RFCN(nn.Module):
    """The detector; :meth:`features` -> :meth:`rpn` -> :meth:`proposals` -> :meth:`head`."""

    def __init__(self, num_classes: int, depth: int = 101, width: float = 1.0,
                 anchor_scales: Sequence[float] = PAPER["anchor_scales"],
                 anchor_ratios: Sequence[float] = PAPER["anchor_ratios"], k: int = PAPER["k"],
                 head_channels: int = PAPER["head_channels"], rpn_channels: int = 512,
                 pre_nms: tuple[int, int] = (6000, 6000), post_nms: tuple[int, int] = (300, 300),
                 rpn_nms: float = PAPER["rpn_nms"], test_nms: float = PAPER["test_nms"],
                 score_threshold: float = 0.001, max_detections: int = 100, box_voting: bool = True):
        super().__init__()
        self.num_classes, self.k, self.stride = num_classes, k, PAPER["stride"]
        self.backbone = resnet(depth, width=width, dilate=(False, False, True))
        conv4 = self.backbone.layer3[-1].conv3.out_channels
        conv5 = self.backbone.num_features
        self.register_buffer("cells", cell_anchors(anchor_scales, anchor_ratios), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        a = len(self.cells)
        self.rpn_conv = nn.Sequential(nn.Conv2d(conv4, rpn_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.rpn_logits = nn.Conv2d(rpn_channels, a, 1)
        self.rpn_deltas = nn.Conv2d(rpn_channels, 4 * a, 1)
        self.reduce = nn.Sequential(nn.Conv2d(conv5, head_channels, 3, padding=PAPER["head_dilation"],
                                              dilation=PAPER["head_dilation"]), nn.ReLU(inplace=True))
        self.cls_maps = nn.Conv2d(head_channels, k * k * (num_classes + 1), 1)
        self.box_maps = nn.Conv2d(head_channels, 4 * k * k, 1)
        for layer in (self.rpn_logits, self.rpn_deltas, self.cls_maps, self.box_maps):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
        self.pre_nms, self.post_nms, self.rpn_nms = pre_nms, post_nms, rpn_nms
        self.test_nms, self.score_threshold, self.max_detections = test_nms, score_threshold, max_detections
        self.box_voting = box_voting

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images`` float ``[N, 3, H, W]`` in [0, 1] -> ``conv3`` (stride 8), ``conv4``,
        ``conv5`` (stride 16) and the head's ``cls`` / ``box`` maps."""
        x = self.backbone.stem((images - self.mean) / self.std)
        conv3 = self.backbone.layer2(self.backbone.layer1(x))
        conv4 = self.backbone.layer3(conv3)
        conv5 = self.backbone.layer4(conv4)
        reduced = self.reduce(conv5)
        return {"conv3": conv3, "conv4": conv4, "conv5": conv5, "cls": self.cls_maps(reduced),
                "box": self.box_maps(reduced)}

    def rpn(self, conv4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Objectness logits ``[N, M]``, deltas ``[N, M, 4]`` and anchors ``[M, 4]``."""
        hidden = self.rpn_conv(conv4)
        logits = per_anchor(self.rpn_logits(hidden), 1)[..., 0]
        deltas = per_anchor(self.rpn_deltas(hidden), 4)
        anchors = grid_anchors(self.cells, conv4.shape[2], conv4.shape[3], self.stride)
        return logits, deltas, anchors

    @torch.no_grad()
    def proposals(self, logits: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
                  size: tuple[int, int]) -> list[torch.Tensor]:
        """Per image the proposals ``[P, 4]`` (best first) of the RPN outputs; ``size`` = (H, W)."""
        pre, post = self.pre_nms[not self.training], self.post_nms[not self.training]
        out = []
        for score, delta in zip(logits, deltas, strict=True):
            top = score.topk(min(pre, len(score))).indices
            boxes = clip_boxes_to_image(decode(delta[top], anchors[top]), size)
            keep = remove_small_boxes(boxes, 1.0)
            boxes, s = boxes[keep], score[top][keep]
            out.append(boxes[nms(boxes, s, self.rpn_nms)[:post]])
        return out

    def head(self, maps: dict[str, torch.Tensor],
             rois: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``[R, C + 1]`` and box deltas ``[R, 4]`` of the RoIs (all images' RoIs
        concatenated in order) by position-sensitive RoI pooling and voting."""
        scale = 1.0 / self.stride
        cls = ps_roi_align(maps["cls"], rois, self.k, scale, sampling_ratio=2).mean((2, 3))
        box = ps_roi_align(maps["box"], rois, self.k, scale, sampling_ratio=2).mean((2, 3))
        return cls, box

    @torch.no_grad()
    def detect(self, images: torch.Tensor, maps: dict[str, torch.Tensor] | None = None) -> list[Detections]:
        """Detections of every image (scores after softmax, per-class NMS ``test_nms``)."""
        maps = self.features(images) if maps is None else maps
        size = tuple(images.shape[-2:])
        rois = self.proposals(*self.rpn(maps["conv4"]), size)
        logits, deltas = self.head(maps, rois)
        probs = logits.softmax(1)
        out, start = [], 0
        for boxes_in in rois:
            stop = start + len(boxes_in)
            boxes = clip_boxes_to_image(decode(deltas[start:stop], boxes_in), size)
            out.append(self.select(boxes, probs[start:stop]))
            start = stop
        return out

    def select(self, boxes: torch.Tensor, probs: torch.Tensor) -> Detections:
        """Per class: scores above ``score_threshold``, NMS, the best ``per_class_detections``;
        then the ``max_detections`` best overall, box-voted (:func:`box_vote`) when ``box_voting``."""
        roi, cls = torch.nonzero(probs[:, 1:] > self.score_threshold, as_tuple=True)
        scores, labels = probs[roi, cls + 1], cls + 1
        keep = batched_nms(boxes[roi], scores, labels, self.test_nms)  # best first
        rank = torch.zeros_like(keep)
        for label in labels[keep].unique():
            same = labels[keep] == label
            rank[same] = torch.arange(int(same.sum()), device=keep.device)
        keep = keep[rank < PAPER["per_class_detections"]][: self.max_detections]
        kept = boxes[roi][keep]
        if self.box_voting:
            kept = box_vote(kept, labels[keep], boxes[roi], scores, labels)
        return Detections(kept, scores[keep], labels[keep], roi[keep])


def box_vote(kept: torch.Tensor, kept_labels: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor,
             labels: torch.Tensor, iou: float = PAPER["vote_iou"]) -> torch.Tensor:
    """Each ``kept`` box replaced by the ``scores``-weighted mean of the candidate ``boxes`` of
    its label whose IoU with it is >= ``iou`` (a kept box is one of the candidates)."""
    if len(kept) == 0:
        return kept
    weights = scores[:, None] * ((box_iou(boxes, kept) >= iou) & (labels[:, None] == kept_labels[None]))
    total = weights.sum(0)[:, None]
    voted = weights.T @ boxes / total.clamp_min(1e-12)
    return torch.where(total > 0, voted, kept)


def rfcn_resnet101(num_classes: int = 30, **kw) -> RFCN:
    """The paper's R-FCN: ResNet-101, 15 anchors, k = 7, 512 head channels (30 VID classes)."""
    return RFCN(num_classes, depth=101, **kw)


def rfcn_cpu(num_classes: int, **kw) -> RFCN:
    """A narrow R-FCN for tests and the CPU benchmark on small frames (see the module docstring)."""
    preset = {"depth": 50, "width": 0.125, "anchor_scales": (16, 32, 64), "k": 3, "head_channels": 64,
              "rpn_channels": 64, "pre_nms": (600, 300), "post_nms": (128, 100)}
    return RFCN(num_classes, **{**preset, **kw})
