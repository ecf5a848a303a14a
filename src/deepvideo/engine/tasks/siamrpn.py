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

Metrics: ``train_center_error`` and validation ``val_loss``, ``val_center_error`` (search
pixels from the top proposal's centre to the target's) and ``val_iou`` (the top proposal's IoU
with the target). Data as the SiamFC task: ``data.train`` / ``data.val`` = ``{root, format,
pairs: {PairDataset options}}`` (``with_mask`` is set for SiamMask).
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.anchors import anchor_grid, assign_targets
from deepvideo.track.boxes import center_error, iou
from deepvideo.track.siamrpn import SiamMask, SiamRPN, SiamRPNpp
from deepvideo.track.siamrpn_loss import rpn_losses, top_proposal

NETWORKS = {"siamrpn": SiamRPN, "siamrpnpp": SiamRPNpp, "siammask": SiamMask}


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


@register_task("siamrpn")
class SiamRPNTask(Task):
    """Pairs -> SiamRPN / SiamRPN++ / SiamMask outputs -> anchor classification, regression, mask."""

    train_metrics = ("center_error",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self._anchors: dict[tuple[int, int], torch.Tensor] = {}

    def build_model(self) -> nn.Module:
        name = self.cfg.model.name
        if name not in NETWORKS:
            raise ConfigError(f"task 'siamrpn' builds model.name in {sorted(NETWORKS)}, got {name!r}")
        kwargs = dict(self.cfg.model.kwargs or {})
        if kwargs.get("refine"):
            raise ConfigError("task 'siamrpn' trains SiamMask's 63×63 mask branch; the refinement "
                              "module (refine: true) is not trained here")
        return NETWORKS[name](**kwargs)

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
        with autocast():
            out = model(batch["exemplar"].to(device), batch["search"].to(device))
        losses, boxes, target = self.losses(out, batch, device)
        return StepOutput(losses, int(target.shape[0]), {"center_error": errors(boxes, target)[0]})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0, 0.0]  # loss*n, centre error sum, IoU sum, n
        for loader in loaders.values():
            for batch in loader:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out = model(batch["exemplar"].to(device), batch["search"].to(device))
                losses, boxes, target = self.losses(out, batch, device)
                n = int(target.shape[0])
                sums[0] += float(losses["loss"]) * n
                error, overlap = errors(boxes, target)
                sums[1] += error
                sums[2] += overlap
                sums[3] += n
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[3], 1.0)
        return {"val_loss": total[0] / n, "val_center_error": total[1] / n, "val_iou": total[2] / n}

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "network": self.cfg.model.name,
                "target_format": "x,y,w,h in search-image pixels"}
