"""Training losses of the RPN (Ren et al. 2015) and of R-FCN with OHEM (Dai et al. 2016).

RPN: an anchor is positive when its IoU with a ground-truth box is >= 0.7 or it is that box's
best anchor, negative when its best IoU is < 0.3; 256 anchors per image are sampled, at most
half positive; binary cross-entropy on them plus smooth L1 on the positives' deltas.

R-FCN: the RoIs of an image are its proposals and its ground-truth boxes. A RoI is foreground
(the class of its best box) when its IoU is >= 0.5, else background. Its loss is
``CE(scores, class) + λ [class > 0] smooth_L1(deltas - targets)`` with λ = 1; online hard
example mining (Shrivastava et al. 2016, as R-FCN uses it) keeps the ``ohem`` RoIs of highest
loss per image (128 of 300 in the paper) and averages over them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from deepvideo.detect.box_coding import encode

__all__ = ["RPN_RULES", "assign_rois", "ohem_loss", "rpn_loss"]

RPN_RULES = {"positive_iou": 0.7, "negative_iou": 0.3, "batch": 256, "positive_share": 0.5}


def anchor_labels(anchors: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor 1 / 0 / -1 (positive, negative, neither) and the index of its best box."""
    labels = torch.full((len(anchors),), -1, dtype=torch.int64, device=anchors.device)
    if len(boxes) == 0:
        labels[:] = 0
        return labels, torch.zeros_like(labels)
    iou = box_iou(anchors, boxes)
    best, index = iou.max(1)
    labels[best < RPN_RULES["negative_iou"]] = 0
    labels[best >= RPN_RULES["positive_iou"]] = 1
    per_box = iou.max(0).values
    hits = torch.nonzero((iou == per_box[None]) & (per_box[None] > 0), as_tuple=True)[0]
    labels[hits] = 1
    return labels, index


def sample(labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of at most ``batch`` labelled anchors, at most ``positive_share`` positive."""
    positive = torch.nonzero(labels == 1)[:, 0]
    negative = torch.nonzero(labels == 0)[:, 0]
    n_pos = min(len(positive), int(RPN_RULES["batch"] * RPN_RULES["positive_share"]))
    n_neg = min(len(negative), RPN_RULES["batch"] - n_pos)
    pick = torch.randperm(len(positive), generator=generator)[:n_pos]
    pick_neg = torch.randperm(len(negative), generator=generator)[:n_neg]
    return torch.cat([positive[pick.to(positive.device)], negative[pick_neg.to(negative.device)]])


def rpn_loss(logits: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
             boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Objectness and box losses averaged over the sampled anchors of every image."""
    cls_terms, box_terms, count = [], [], 0
    for logit, delta, gt in zip(logits, deltas, boxes, strict=True):
        labels, index = anchor_labels(anchors, gt)
        chosen = sample(labels)
        count += len(chosen)
        cls_terms.append(F.binary_cross_entropy_with_logits(logit[chosen], labels[chosen].float(),
                                                            reduction="sum"))
        pos = chosen[labels[chosen] == 1]
        if len(pos):
            target = encode(gt[index[pos]], anchors[pos])
            box_terms.append(F.smooth_l1_loss(delta[pos], target, beta=1.0 / 9, reduction="sum"))
    count = max(count, 1)
    zero = logits.sum() * 0
    return sum(cls_terms, zero) / count, sum(box_terms, zero) / count


def assign_rois(rois: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                fg_iou: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per RoI its class (0 = background, IoU < ``fg_iou``) and box targets ``[R, 4]``."""
    if len(boxes) == 0:
        return torch.zeros(len(rois), dtype=torch.int64, device=rois.device), torch.zeros_like(rois)
    best, index = box_iou(rois, boxes).max(1)
    classes = torch.where(best >= fg_iou, labels[index], torch.zeros_like(labels[index]))
    return classes, encode(boxes[index], rois)


def ohem_loss(logits: torch.Tensor, deltas: torch.Tensor, classes: torch.Tensor, targets: torch.Tensor,
              counts: list[int], keep: int, box_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Classification and box losses over the ``keep`` hardest RoIs of each image (RoIs of the
    images concatenated, ``counts`` per image)."""
    cls = F.cross_entropy(logits, classes, reduction="none")
    box = F.smooth_l1_loss(deltas, targets, reduction="none").sum(1) * (classes > 0)
    total = (cls + box_weight * box).detach()
    chosen, start = [], 0
    for count in counts:
        part = total[start:start + count]
        chosen.append(start + part.topk(min(keep, count)).indices)
        start += count
    chosen = torch.cat(chosen)
    n = max(len(chosen), 1)
    return cls[chosen].sum() / n, box_weight * box[chosen].sum() / n


def detector_losses(model, maps: dict[str, torch.Tensor], size: tuple[int, int], boxes: list[torch.Tensor],
                    labels: list[torch.Tensor], ohem: int = 128,
                    rois_out: list | None = None) -> dict[str, torch.Tensor]:
    """The four losses of an :class:`~deepvideo.detect.rfcn.RFCN` on images whose ``maps``
    (:meth:`~deepvideo.detect.rfcn.RFCN.features`) are given: ``rpn_cls``, ``rpn_box``, ``cls``, ``box``.
    ``rois_out`` (a list) gets each image's RoIs (proposals, then its ground-truth boxes)."""
    logits, deltas, anchors = model.rpn(maps["conv4"])
    rpn_cls, rpn_box = rpn_loss(logits, deltas, anchors, boxes)
    proposals = model.proposals(logits, deltas, anchors, size)
    rois = [torch.cat([p, gt.to(p)]) for p, gt in zip(proposals, boxes, strict=True)]
    if rois_out is not None:
        rois_out.extend(rois)
    assigned = [assign_rois(r, gt.to(r), lab.to(r.device))
                for r, gt, lab in zip(rois, boxes, labels, strict=True)]
    scores, box_deltas = model.head(maps, rois)
    cls, box = ohem_loss(scores, box_deltas, torch.cat([a[0] for a in assigned]),
                         torch.cat([a[1] for a in assigned]), [len(r) for r in rois], ohem)
    return {"rpn_cls": rpn_cls, "rpn_box": rpn_box, "cls": cls, "box": box}
