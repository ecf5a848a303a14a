"""Detect and Track (D&T; Feichtenhofer, Pinz & Zisserman, ICCV 2017): R-FCN plus RoI tracking.

Both frames ``t`` and ``t + τ`` go through the shared R-FCN (:mod:`deepvideo.detect.rfcn`). The
correlation layer (:mod:`deepvideo.detect.correlation`, d = 8) compares the frames' conv3 (with
stride 2), conv4 and conv5 features; the three correlation maps are stacked with the two
frames' box-regression maps (``4 k²`` channels each) and a 1x1 conv turns them into ``4 k²``
position-sensitive tracking maps. Position-sensitive RoI pooling of a box of frame ``t`` over
them, averaged, regresses the box's motion
``Δ = (Δx, Δy, log Δw, log Δh)`` to frame ``t + τ`` (:func:`deepvideo.detect.box_coding.encode`
of the box at ``t + τ`` relative to the box at ``t``).

Training (:func:`dt_losses`): the detection losses of both frames plus the tracking loss,
smooth L1 between the regressed and the true Δ, averaged over the tracked RoIs; weight 1. The
tracking loss is active for the ground-truth objects present in both frames (same ``trackid``);
as in the authors' release (``append_all_track_regression_targets.m``), it is taken on every RoI
of frame ``t`` (proposals and ground-truth boxes) whose IoU with such an object's box is above
the foreground threshold 0.5, with the target Δ from that RoI to the object's box at ``t + τ``.
So the head learns to land on the object from an imprecise box, as it must from a detection at
test (:func:`track_targets`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou, ps_roi_align

from deepvideo.detect.box_coding import decode, encode
from deepvideo.detect.correlation import MAX_DISPLACEMENT, correlation, correlation_channels
from deepvideo.detect.rfcn import PAPER, RFCN
from deepvideo.detect.rfcn_loss import detector_losses

__all__ = ["CORRELATED", "DetectTrack", "dt_losses", "track_targets"]

CORRELATED = {"conv3": 2, "conv4": 1, "conv5": 1}  # feature -> position stride of the correlation


class DetectTrack(nn.Module):
    """An R-FCN ``detector`` with D&T's tracking head (see the module docstring)."""

    def __init__(self, detector: RFCN, max_displacement: int = MAX_DISPLACEMENT):
        super().__init__()
        self.detector = detector
        self.max_displacement = max_displacement
        k = detector.k
        stacked = len(CORRELATED) * correlation_channels(max_displacement) + 2 * 4 * k * k
        self.track_maps = nn.Conv2d(stacked, 4 * k * k, 1)
        nn.init.normal_(self.track_maps.weight, std=0.001)
        nn.init.zeros_(self.track_maps.bias)

    def correlations(self, maps_t: dict, maps_tau: dict) -> torch.Tensor:
        """The stacked correlation maps of conv3 (stride 2), conv4 and conv5, at stride 16."""
        out = []
        for name, stride in CORRELATED.items():
            corr = correlation(maps_t[name], maps_tau[name], self.max_displacement, stride=stride,
                               normalize=True)
            out.append(corr[..., :maps_t["conv5"].shape[2], :maps_t["conv5"].shape[3]])
        return torch.cat(out, 1)

    def track(self, maps_t: dict, maps_tau: dict, boxes: list[torch.Tensor]) -> torch.Tensor:
        """Regressed Δ ``[R, 4]`` of the boxes of frame ``t`` (all images' boxes concatenated)."""
        stacked = torch.cat([self.correlations(maps_t, maps_tau), maps_t["box"], maps_tau["box"]], 1)
        maps = self.track_maps(stacked)
        k = self.detector.k
        return ps_roi_align(maps, boxes, k, 1.0 / self.detector.stride, sampling_ratio=2).mean((2, 3))

    @torch.no_grad()
    def tracked_boxes(self, maps_t: dict, maps_tau: dict, boxes: torch.Tensor) -> torch.Tensor:
        """Where the boxes ``[R, 4]`` of one frame ``t`` move to in frame ``t + τ``."""
        if len(boxes) == 0:
            return boxes.new_zeros((0, 4))
        return decode(self.track(maps_t, maps_tau, [boxes]), boxes)


def track_targets(boxes_a, tracks_a, boxes_b, tracks_b, rois=None,
                  fg_iou: float = PAPER["fg_iou"]) -> tuple[torch.Tensor, torch.Tensor]:
    """The RoIs of frame ``t`` to track and their Δ targets: for each object present in both
    frames, the ``rois`` of frame ``t`` whose IoU with its box there is above ``fg_iou`` (the
    training RoIs hold the ground-truth boxes, so its own box is one), with the Δ to its box at
    ``t + τ``. Without ``rois``: the objects' own boxes only."""
    common = [(i, int((tracks_b == tid).nonzero()[0, 0])) for i, tid in enumerate(tracks_a.tolist())
              if bool((tracks_b == tid).any())]
    if not common:
        return boxes_a.new_zeros((0, 4)), boxes_a.new_zeros((0, 4))
    ia, ib = (torch.tensor(c, dtype=torch.int64) for c in zip(*common, strict=True))
    if rois is None:
        return boxes_a[ia], encode(boxes_b[ib], boxes_a[ia])
    rois = rois.to(boxes_a)
    roi, obj = torch.nonzero(box_iou(rois, boxes_a[ia]) > fg_iou, as_tuple=True)
    return rois[roi], encode(boxes_b[ib][obj], rois[roi])


def dt_losses(model: DetectTrack | RFCN, batch: dict, ohem: int = 128,
              track: bool = True) -> dict[str, torch.Tensor]:
    """Detection losses of both frames (averaged) plus, for a D&T model with ``track``, the
    tracking loss; an :class:`~deepvideo.detect.rfcn.RFCN` gets the detection losses only."""
    detector = model if isinstance(model, RFCN) else model.detector
    track = track and isinstance(model, DetectTrack)
    size = tuple(batch["rgb_a"].shape[-2:])
    maps_a = detector.features(batch["rgb_a"])
    maps_b = detector.features(batch["rgb_b"])
    rois_a: list[torch.Tensor] = []
    la = detector_losses(detector, maps_a, size, batch["boxes_a"], batch["labels_a"], ohem, rois_a)
    lb = detector_losses(detector, maps_b, size, batch["boxes_b"], batch["labels_b"], ohem)
    losses = {name: (la[name] + lb[name]) / 2 for name in la}
    if track:
        pairs = [track_targets(*(batch[f"{w}_{s}"][i] for s in "ab" for w in ("boxes", "tracks")),
                               rois=rois_a[i].detach()) for i in range(len(batch["boxes_a"]))]
        rois = [p[0].to(batch["rgb_a"]) for p in pairs]
        targets = torch.cat([p[1] for p in pairs]).to(batch["rgb_a"])
        if len(targets):
            deltas = model.track(maps_a, maps_b, rois)
            losses["track"] = F.smooth_l1_loss(deltas, targets, reduction="sum") / len(targets)
        else:
            losses["track"] = maps_a["box"].sum() * 0
    return losses
