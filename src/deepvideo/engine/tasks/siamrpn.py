"""SiamRPN / SiamRPN++ / SiamMask training: template/search pairs -> anchor targets -> losses.

One task, ``siamrpn``, for the three networks of :mod:`deepvideo.track.siamrpn`, chosen by
``model.name`` (``siamrpn``, ``siamrpnpp``, ``siammask``; ``model.kwargs`` such as ``width``,
``blocks``, ``channels``). A batch holds ``exemplar [N,3,127,127]``, ``search [N,3,W,W]`` (RGB
0..255), ``target [N,4]`` (x, y, w, h in search pixels) and, for SiamMask, ``mask [N,W,W]``.
The anchors of the network's score map get their targets by
:func:`deepvideo.track.anchors.assign_targets` (IoU > 0.6 / < 0.3, 16 of 64 sampled) and the
loss is :func:`deepvideo.track.siamrpn_loss.rpn_losses` (cls 1.0, loc 1.2, mask 36). The anchor
samples are drawn from the run's seed and the batch's target boxes (exact resume, the same
samples at every validation).

**Refinement stage** (SiamMask's second stage, the authors' ``siammask_sharp`` training):
``model.kwargs.refine: true`` builds SiamMask with the refinement module, loads the base SiamMask
from ``model.init_from`` (required) and trains only the refinement module and the mask branch's
two 3×3 conv-BN-ReLU before its correlation (the authors optimise ``mask_model`` and
``refine_model``; the branch's 1×1 head gets no gradient from the refined mask and stays as it
was). Backbone, adjust layer and RPN are frozen with their batch norms in eval mode (engine
``train.frozen_bn_eval``). The loss is ``36 ×`` :func:`~deepvideo.track.siamrpn_loss.refined_mask_loss`
over the positive RoWs (anchor IoU > 0.6); classification and regression weigh 0. The authors
train it 20 epochs with SGD, lr 0.01 -> 0.0025 (log), search crops of 143 pixels.
Metrics then: ``train_mask_iou``, ``val_loss``, ``val_mask_iou`` (refined 127×127 masks) and
``val_mask_iou_branch`` (the 63×63 branch upsampled bilinearly to 127×127, as the authors
measure it), both per positive RoW at logit 0. A base SiamMask run reports ``val_mask_iou`` of
its 63×63 branch the same way.

Metrics: ``train_center_error`` and validation ``val_loss``, ``val_center_error`` (search
pixels from the top proposal's centre to the target's) and ``val_iou`` (the top proposal's IoU
with the target). Data as the SiamFC task: ``data.train`` / ``data.val`` = ``{root, format,
pairs: {PairDataset options}}`` (``with_mask`` is set for SiamMask).
"""

from __future__ import annotations

import zlib

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.anchors import anchor_grid, assign_targets
from deepvideo.track.boxes import center_error, iou
from deepvideo.track.siamrpn import EXEMPLAR_SIZE, SiamMask, SiamRPN, SiamRPNpp, score_size
from deepvideo.track.siamrpn_loss import (
    MASK_WEIGHT,
    mask_labels,
    positive_rows,
    refined_mask_loss,
    row_mask_iou,
    rpn_losses,
    top_proposal,
)

NETWORKS = {"siamrpn": SiamRPN, "siamrpnpp": SiamRPNpp, "siammask": SiamMask}
REFINE_TRAINED = ("mask.template.", "mask.search.", "refine.")   # the refinement stage's parameters


def pair_dataset(section: dict, where: str, with_mask: bool):
    """The pair dataset a ``data.train`` / ``data.val`` section describes."""
    if "root" not in section or "pairs" not in section:
        raise ConfigError(f"{where}: a SiamRPN dataset needs 'root' (tracking sequences) and 'pairs' "
                          f"(PairDataset options), got keys {sorted(section)}")
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.pairs import PairDataset

    pairs = dict(section["pairs"] or {})
    pairs.setdefault("with_mask", with_mask)
    return PairDataset(load_dataset(section["root"], section.get("format")), **pairs)


def errors(boxes: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Sums over the items of the centre distance and the IoU of ``boxes`` and ``target``."""
    a, b = boxes.double().cpu().numpy(), target.double().cpu().numpy()
    return float(center_error(a, b).sum()), float(iou(a, b).sum())


def freeze_all_but(model: nn.Module, prefixes: tuple[str, ...]) -> None:
    """``requires_grad`` off for every parameter whose name starts with none of ``prefixes``."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefixes))


def branch_iou(mask: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """IoU per RoW of the 63×63 branch (``mask [N, 63², S, S]``) upsampled bilinearly (corners
    aligned, as the authors) to the labels' ``[P, 127, 127]``."""
    if len(rows) == 0:
        return labels.new_zeros(0)
    side = round(mask.shape[1] ** 0.5)
    logits = mask.float()[rows[:, 0], :, rows[:, 1], rows[:, 2]].reshape(-1, 1, side, side)
    up = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=True)
    return row_mask_iou(up[:, 0], labels)


@register_task("siamrpn")
class SiamRPNTask(Task):
    """Pairs -> SiamRPN / SiamRPN++ / SiamMask outputs -> anchor classification, regression, mask."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self._anchors: dict[tuple[int, int], torch.Tensor] = {}

    def build_model(self) -> nn.Module:
        name = self.cfg.model.name
        if name not in NETWORKS:
            raise ConfigError(f"task 'siamrpn' builds model.name in {sorted(NETWORKS)}, got {name!r}")
        kwargs = dict(self.cfg.model.kwargs or {})
        if self.refine_stage and name != "siammask":
            raise ConfigError(f"refine: true is SiamMask's refinement stage; model.name is {name!r}")
        if self.refine_stage and not self.cfg.model.init_from:
            raise ConfigError("refine: true trains SiamMask's refinement module on a trained base "
                              "SiamMask (the authors' second stage): set model.init_from to the base "
                              "run's checkpoint, e.g. "
                              "model.init_from=[{checkpoint: runs/siammask_cpu/checkpoints/best}]")
        model = self.with_initial_weights(NETWORKS[name](**kwargs))
        if self.refine_stage:
            freeze_all_but(model, REFINE_TRAINED)
        return model

    @property
    def refine_stage(self) -> bool:
        return bool(dict(self.cfg.model.kwargs or {}).get("refine"))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        with_mask = self.cfg.model.name == "siammask"
        if train_dataset is None:
            train_dataset = pair_dataset(dict(d.train or {}), "data.train", with_mask)
        if val_dataset is None and d.val:
            val_dataset = pair_dataset(dict(d.val), "data.val", with_mask)
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, tuple(NETWORKS.values())):
            raise ConfigError(f"task 'siamrpn' trains SiamRPN, SiamRPNpp or SiamMask, "
                              f"got {type(model).__name__}")

    def anchors(self, score_size: int, search_size: int, device) -> torch.Tensor:
        key = (score_size, search_size)
        if key not in self._anchors:
            self._anchors[key] = anchor_grid(score_size, search_size)
        return self._anchors[key].to(device)

    def sampler(self, target: torch.Tensor) -> torch.Generator:
        """The generator drawing a batch's anchor samples: seeded by ``seed`` and the batch's
        target boxes, so a resumed run draws what the uninterrupted one drew."""
        digest = zlib.crc32(target.detach().cpu().double().numpy().tobytes())
        return torch.Generator().manual_seed(int(self.cfg.seed or 0) * 2**32 + digest)

    def losses(self, out: dict, batch: dict, device) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The loss dict, the top proposals ``[N, 4]`` and the targets ``[N, 4]``."""
        target = batch["target"].to(device).float()
        anchors = self.anchors(out["cls"].shape[-1], batch["search"].shape[-1], device)
        targets = assign_targets(anchors, target, self.sampler(target))
        masks = batch["mask"].to(device) if "mask" in batch else None
        boxes, _ = top_proposal({k: v.detach() for k, v in out.items() if k in ("cls", "loc")}, anchors)
        return rpn_losses(out, targets, masks), boxes, target

    def step(self, model, batch, device, autocast) -> StepOutput:
        if self.refine_stage:
            with autocast():
                loss, ious, _ = self.refine_losses(model, batch, device)
            n = int(batch["search"].shape[0])
            mean = float(ious.mean()) if len(ious) else 0.0
            return StepOutput({"loss": MASK_WEIGHT * loss, "mask_loss": loss}, n, {"mask_iou": mean * n})
        with autocast():
            out = model(batch["exemplar"].to(device), batch["search"].to(device))
        losses, boxes, target = self.losses(out, batch, device)
        return StepOutput(losses, int(target.shape[0]), {"center_error": errors(boxes, target)[0]})

    @property
    def train_metrics(self) -> tuple[str, ...]:
        return ("mask_iou",) if self.refine_stage else ("center_error",)

    def refine_losses(self, model, batch, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The refined-mask loss, the refined masks' IoU per positive RoW and the 63×63 branch's."""
        search, masks = batch["search"].to(device), batch["mask"].to(device)
        target = batch["target"].to(device).float()
        size = score_size(search.shape[-1])
        targets = assign_targets(self.anchors(size, search.shape[-1], device), target, self.sampler(target))
        rows = positive_rows(targets.iou)
        out = model(batch["exemplar"].to(device), search, rows=rows)
        loss = refined_mask_loss(out["refined"], masks, rows, size)
        labels = mask_labels(masks, rows, size, size=EXEMPLAR_SIZE)
        refined = row_mask_iou(out["refined"].detach()[:, 0], labels)
        return loss, refined, branch_iou(out["mask"].detach(), rows, labels)

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0] * 7  # loss*n, centre error, IoU, n, mask IoU, branch mask IoU, RoWs
        for loader in loaders.values():
            for batch in loader:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    n = int(batch["search"].shape[0])
                    if self.refine_stage:
                        loss, refined, branch = self.refine_losses(model, batch, device)
                        sums[0] += MASK_WEIGHT * float(loss) * n
                        sums[4:7] = [sums[4] + float(refined.sum()), sums[5] + float(branch.sum()),
                                     sums[6] + len(refined)]
                    else:
                        out = model(batch["exemplar"].to(device), batch["search"].to(device))
                        losses, boxes, target = self.losses(out, batch, device)
                        sums[0] += float(losses["loss"]) * n
                        error, overlap = errors(boxes, target)
                        sums[1:3] = [sums[1] + error, sums[2] + overlap]
                        if "mask" in out:
                            branch = self.branch_ious(out, batch, device)
                            sums[4:7] = [sums[4] + float(branch.sum()), sums[5], sums[6] + len(branch)]
                sums[3] += n
        return self.evaluation_row(dist_utils.all_reduce_sum(sums, device).tolist())

    def evaluation_row(self, total: list[float]) -> dict:
        n, rows = max(total[3], 1.0), max(total[6], 1.0)
        if self.refine_stage:
            return {"val_loss": total[0] / n, "val_mask_iou": total[4] / rows,
                    "val_mask_iou_branch": total[5] / rows}
        row = {"val_loss": total[0] / n, "val_center_error": total[1] / n, "val_iou": total[2] / n}
        if self.cfg.model.name == "siammask":
            row["val_mask_iou"] = total[4] / rows
        return row

    def branch_ious(self, out: dict, batch: dict, device) -> torch.Tensor:
        """The 63×63 branch's mask IoU at each positive RoW of a base SiamMask's batch."""
        target, masks = batch["target"].to(device).float(), batch["mask"].to(device)
        size, side = out["cls"].shape[-1], batch["search"].shape[-1]
        targets = assign_targets(self.anchors(size, side, device), target, self.sampler(target))
        rows = positive_rows(targets.iou)
        return branch_iou(out["mask"], rows, mask_labels(masks, rows, size, size=EXEMPLAR_SIZE))

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "network": self.cfg.model.name,
                "target_format": "x,y,w,h in search-image pixels"}
