"""Training losses of SiamRPN / SiamRPN++ / SiamMask and the top proposal of a score map.

- Classification (SiamRPN Sec. 3.4): cross-entropy of the two-way softmax over the sampled
  anchors (:func:`deepvideo.track.anchors.assign_targets`), the positives' mean and the
  negatives' mean weighted 1/2 each (pysot ``select_cross_entropy_loss``).
- Regression: the L1 distance of the four predicted deltas to the target deltas, summed over the
  coordinates, weighted ``1 / positives`` per positive anchor and averaged over the batch (pysot
  ``weight_l1_loss``; the paper writes a smooth L1 on normalised deltas).
- Mask (SiamMask Sec. 3.2, Eq. 2): the binary logistic loss ``log(1 + exp(-c m))`` over the
  63×63 mask of every positive RoW (a score-map position one of whose anchors has IoU > 0.6 with
  the target), with labels ``c = ±1`` from the target mask under that RoW's 127×127 search window,
  area-downsampled to 63×63 and thresholded at 1/2; averaged over the positive RoWs' pixels (as the
  authors' released training code does).
- Refined mask (SiamMask Sec. 3.2 "Mask refinement"; the authors' ``siammask_sharp`` stage): the
  same logistic loss over the 127×127 output of the refinement module at every positive RoW, the
  labels being the target mask under that RoW's 127×127 window at full resolution (search mask
  > 1/2 -> +1, else -1); the stage's loss is ``36 ×`` this alone (their loss weights
  ``[0, 0, 36]``: classification and regression weigh 0).
- Mask IoU (the authors' ``iou_measure``): per RoW, the IoU of ``logit > 0`` with the +1 labels.
- Weights: ``cls 1.0``, ``loc 1.2`` (pysot ``TRAIN.CLS_WEIGHT`` / ``LOC_WEIGHT``) and ``mask 36``
  (the authors' released SiamMask training configuration; the paper gives λ1 = 32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepvideo.track.anchors import POSITIVE_IOU, STRIDE, AnchorTargets, decode
from deepvideo.track.siamrpn import EXEMPLAR_SIZE, MASK_SIZE

CLS_WEIGHT = 1.0
LOC_WEIGHT = 1.2
MASK_WEIGHT = 36.0

__all__ = ["CLS_WEIGHT", "LOC_WEIGHT", "MASK_WEIGHT", "classification_loss", "mask_labels",
           "mask_loss", "refined_mask_loss", "regression_loss", "row_mask_iou", "rpn_losses", "top_proposal"]


def foreground_log_prob(cls: torch.Tensor) -> torch.Tensor:
    """``[N, 2, k, S, S]`` log-softmax over (background, foreground) of ``cls [N, 2k, S, S]``."""
    n, c, h, w = cls.shape
    return F.log_softmax(cls.float().reshape(n, 2, c // 2, h, w), dim=1)


def classification_loss(cls: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Half the mean NLL over positive anchors plus half over negatives (``labels`` 1 / 0;
    -1 ignored); a class absent from the batch contributes 0."""
    logp = foreground_log_prob(cls)
    loss = cls.new_zeros((), dtype=torch.float32)
    for value, channel in ((1, 1), (0, 0)):
        chosen = labels == value
        if chosen.any():
            loss = loss - 0.5 * logp[:, channel][chosen].mean()
    return loss


def regression_loss(loc: torch.Tensor, deltas: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ |loc - deltas|`` over the 4 coordinates times ``weights``, summed, divided by N."""
    n, c, h, w = loc.shape
    diff = (loc.float().reshape(n, 4, c // 4, h, w) - deltas).abs().sum(dim=1)
    return (diff * weights).sum() / n


def positive_rows(iou: torch.Tensor, threshold: float = POSITIVE_IOU) -> torch.Tensor:
    """``[P, 3]`` indices ``(n, row, col)`` of the RoWs with an anchor of IoU > ``threshold``."""
    return torch.nonzero(iou.amax(dim=1) > threshold)


def mask_labels(masks: torch.Tensor, rows: torch.Tensor, score_size: int,
                stride: int = STRIDE, window: int = EXEMPLAR_SIZE, size: int = MASK_SIZE) -> torch.Tensor:
    """``[P, size, size]`` labels ±1: the search masks ``[N, W, W]`` (0..1) under the ``window``-
    pixel square centred on each RoW ``(n, row, col)`` of an ``S × S`` map (outside the search
    image: background), area-resized to ``size`` and thresholded at 1/2."""
    side = masks.shape[-1]
    first = side / 2 - window / 2 - (score_size - 1) / 2 * stride   # left edge of column 0
    if first != int(first):
        raise ValueError(f"mask_labels: a {score_size}×{score_size} map on a {side}-pixel search image "
                         f"puts RoW windows between pixels")
    pad = max(0, -int(first))
    padded = F.pad(masks.float(), [pad] * 4)
    crops = []
    for n, row, col in rows.tolist():
        top, left = int(first) + pad + row * stride, int(first) + pad + col * stride
        crops.append(padded[n, top:top + window, left:left + window])
    if not crops:
        return masks.new_zeros((0, size, size))
    small = F.interpolate(torch.stack(crops)[:, None], size=(size, size), mode="area")[:, 0]
    return torch.where(small > 0.5, 1.0, -1.0)


def mask_loss(mask: torch.Tensor, masks: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
    """Mean ``log(1 + exp(-c m))`` over the pixels of the positive RoWs' 63×63 masks
    (``mask [N, 63², S, S]`` logits, ``masks [N, W, W]`` search-image masks, ``iou [N, k, S, S]``)."""
    rows = positive_rows(iou)
    if len(rows) == 0:
        return mask.sum().float() * 0.0
    side = round(mask.shape[1] ** 0.5)
    labels = mask_labels(masks, rows, mask.shape[-1], size=side)
    logits = mask.float()[rows[:, 0], :, rows[:, 1], rows[:, 2]]
    return F.softplus(-labels.reshape(len(rows), -1) * logits).mean()


def refined_mask_loss(logits: torch.Tensor, masks: torch.Tensor, rows: torch.Tensor,
                      score_size: int) -> torch.Tensor:
    """Mean ``log(1 + exp(-c m))`` over the pixels of the refined masks ``logits [P, 1, 127, 127]``
    of the RoWs ``rows [P, 3]`` (``(item, row, col)`` of an ``S × S`` map), ``c = ±1`` from the
    search masks ``masks [N, W, W]``; 0 (with a graph) when there is no RoW."""
    if len(rows) == 0:
        return logits.sum().float() * 0.0
    labels = mask_labels(masks, rows, score_size, size=logits.shape[-1])
    return F.softplus(-labels * logits.float()[:, 0]).mean()


def row_mask_iou(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[P]`` IoU of ``logits [P, h, w] > 0`` with ``labels [P, h, w] > 0`` (1 when both are empty)."""
    pred, truth = logits > 0, labels > 0
    inter = (pred & truth).flatten(1).sum(1).float()
    union = (pred | truth).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def rpn_losses(out: dict, targets: AnchorTargets,
               masks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``{"loss", "cls_loss", "loc_loss"[, "mask_loss"]}`` with the weights above; ``masks`` (the
    search masks) is needed when ``out`` has a ``mask`` entry."""
    cls = classification_loss(out["cls"], targets.labels)
    loc = regression_loss(out["loc"], targets.deltas, targets.weights)
    losses = {"cls_loss": cls, "loc_loss": loc, "loss": CLS_WEIGHT * cls + LOC_WEIGHT * loc}
    if "mask" in out:
        if masks is None:
            raise ValueError("rpn_losses: the network predicts masks but the batch has no 'mask'")
        losses["mask_loss"] = mask_loss(out["mask"], masks, targets.iou)
        losses["loss"] = losses["loss"] + MASK_WEIGHT * losses["mask_loss"]
    return losses


def top_proposal(out: dict, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item, the box ``(x, y, w, h)`` of the highest foreground probability (decoded from its
    anchor ``[k, S, S, 4]``), and that probability: ``([N, 4], [N])``."""
    prob = foreground_log_prob(out["cls"])[:, 1].exp()
    n, k, h, w = prob.shape
    best = prob.reshape(n, -1).argmax(dim=1)
    loc = out["loc"].float().reshape(n, 4, k * h * w)
    deltas = loc[torch.arange(n), :, best]
    boxes = decode(anchors.reshape(-1, 4).to(loc.device)[best], deltas)
    xywh = torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, 2:]], dim=1)
    return xywh, prob.reshape(n, -1)[torch.arange(n), best]
