"""ATOM and DiMP training (tasks ``atom`` and ``dimp``): sequence samples -> losses.

A batch is :class:`deepvideo.track.sequence_samples.SequenceSamples` items stacked (``[N, I, ...]``).

- ``atom`` (Danelljan et al., CVPR 2019): the IoU-Net predicts the IoU (mapped to ``2 IoU − 1``)
  of the test frame's proposals given the reference frame and box; loss = MSE. The reference
  crop is centred on the target at its size (no jitter), the test crop jittered (centre 4.5,
  scale 0.5), as the authors' ``ltr/train_settings/bbreg/atom.py``.
- ``dimp`` (Bhat et al., ICCV 2019, Sec. 3.5): the model predictor learns a filter on the
  training frames; the test frames' scores from every optimiser iterate are compared with a
  Gaussian label (``σ = 1/4 / 5`` of the crop, in score cells) by the hinge-like loss
  (``ℓ = (s − y)²`` where ``y ≥ 0.05``, ``max(0, s)²`` elsewhere, the mean over cells); total
  ``1 · L_iou + 100 · ℓ(final) + 100 · ℓ(initial) + 400 · mean ℓ(intermediate iterates)``
  (the authors' weights, ``ltr/train_settings/dimp/dimp18.py``).

Validation: ``val_loss``, ``val_iou_mse`` (the IoU-Net's MSE) and, for DiMP,
``val_center_error`` (distance in crop pixels from the final score map's peak to the target
centre). Running training metric: ``iou_mse``. Data: ``data.train`` / ``data.val`` are
``{root: <tracking sequences>, format: ..., samples: {SequenceSamples options}}``.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.atom import ATOMNet
from deepvideo.track.dimp import STRIDE, DiMPNet, score_centers
from deepvideo.track.online_classifier import gaussian_labels

HINGE_THRESHOLD = 0.05
LABEL_SIGMA = 0.25 / 5          # output_sigma_factor / search_area_factor, relative to the crop
WEIGHTS = {"iou": 1.0, "final": 100.0, "init": 100.0, "iter": 400.0}


def sample_dataset(section: dict, where: str, defaults: dict):
    """The :class:`SequenceSamples` a ``data.train`` / ``data.val`` section describes."""
    if "root" not in section:
        raise ConfigError(f"{where}: an ATOM/DiMP dataset needs 'root' (tracking sequences) and optional "
                          f"'samples' (SequenceSamples options), got keys {sorted(section)}")
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.sequence_samples import SequenceSamples

    sequences = load_dataset(section["root"], section.get("format"))
    return SequenceSamples(sequences, **{**defaults, **dict(section.get("samples") or {})})


def hinge_loss(scores: torch.Tensor, label: torch.Tensor, threshold: float = HINGE_THRESHOLD) -> torch.Tensor:
    """DiMP's classification loss: MSE where the label is at least ``threshold``, else ``max(0, s)²``."""
    positive = label >= threshold
    return F.mse_loss(torch.where(positive, scores, F.relu(scores)), torch.where(positive, label, 0 * label))


def test_labels(boxes: torch.Tensor, size: tuple[int, int], kernel: int, image_size: int) -> torch.Tensor:
    """Gaussian labels ``[J, S, H', W']`` for test boxes ``[J, S, 4]`` (crop pixels)."""
    centers = score_centers(boxes, kernel).reshape(-1, 2)
    sigma = LABEL_SIGMA * image_size / STRIDE
    return gaussian_labels(size, centers.cpu(), sigma).to(boxes.device).reshape(*boxes.shape[:2], *size)


class _TrackerTask(Task):
    """What both tasks share: datasets and the model check."""

    model_class: type[nn.Module] = nn.Module
    defaults: dict = {}
    train_metrics = ("iou_mse",)

    def build_model(self) -> nn.Module:
        if self.cfg.model.name != self.name:
            raise ConfigError(f"task {self.name!r} builds model.name: {self.name}, "
                              f"got {self.cfg.model.name!r}")
        return self.with_initial_weights(self.model_class(**self.cfg.model.kwargs))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        if train_dataset is None:
            train_dataset = sample_dataset(dict(d.train or {}), "data.train", self.defaults)
        if val_dataset is None and d.val:
            val_dataset = sample_dataset(dict(d.val), "data.val", self.defaults)
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, self.model_class):
            raise ConfigError(f"task {self.name!r} trains a {self.model_class.__name__}, "
                              f"got {type(model).__name__}")

    @abc.abstractmethod
    def losses(self, model, batch, device) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """The step's named losses (``"loss"`` the total) and its running sums (``"iou_mse"``)."""

    def step(self, model, batch, device, autocast) -> StepOutput:
        with autocast():
            losses, sums = self.losses(model, batch, device)
        return StepOutput(losses, int(batch["proposals"].shape[0]), {"iou_mse": sums["iou_mse"]})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        keys = ("loss", "iou_mse", "center_error")
        sums = [0.0] * (len(keys) + 1)
        for loader in loaders.values():
            for batch in loader:
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    losses, row = self.losses(model, batch, device)
                n = int(batch["proposals"].shape[0])
                sums[0] += float(losses["loss"]) * n
                sums[1] += row["iou_mse"]
                sums[2] += row.get("center_error", 0.0)
                sums[3] += n
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[3], 1.0)
        out = {"val_loss": total[0] / n, "val_iou_mse": total[1] / n}
        if self.name == "dimp":
            out["val_center_error"] = total[2] / n
        return out

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "target_format": "x,y,w,h in crop pixels"}


@register_task("atom")
class ATOMTask(_TrackerTask):
    """Reference + test frame -> IoU-Net IoU predictions of the proposals -> MSE."""

    model_class = ATOMNet
    # the reference frame is not jittered (pytracking ltr/train_settings/bbreg/atom.py)
    defaults = {"num_train": 1, "num_test": 1, "proposals": 16, "center_jitter": (0.0, 4.5),
                "scale_jitter": (0.0, 0.5)}

    def losses(self, model, batch, device):
        ref, test = batch["train_images"][:, 0].to(device), batch["test_images"][:, 0].to(device)
        pred = model(ref, test, batch["train_boxes"][:, 0].to(device), batch["proposals"][:, 0].to(device))
        target = batch["proposal_iou"][:, 0].to(device)
        loss = F.mse_loss(pred.float(), target)
        per_item = ((pred.detach().float() - target) ** 2).mean(dim=1).sum()
        return {"loss": loss}, {"iou_mse": float(per_item)}


@register_task("dimp")
class DiMPTask(_TrackerTask):
    """Train/test frames -> model predictor's scores and IoU-Net -> DiMP's weighted losses."""

    model_class = DiMPNet
    defaults = {"num_train": 3, "num_test": 3, "proposals": 8}

    def losses(self, model, batch, device):
        def first(x):
            return batch[x].to(device).transpose(0, 1)          # [N, I, ...] -> [I, N, ...]

        out = model(first("train_images"), first("test_images"), first("train_boxes"), first("proposals"))
        scores = [s.float() for s in out["scores"]]
        label = test_labels(first("test_boxes").float(), tuple(scores[0].shape[-2:]),
                            model.initializer.filter_size, batch["test_images"].shape[-1])
        clf = [hinge_loss(s, label) for s in scores]
        target = first("proposal_iou")
        iou_loss = F.mse_loss(out["iou"].float(), target)
        iterates = clf[1:-1]
        loss = (WEIGHTS["iou"] * iou_loss + WEIGHTS["final"] * clf[-1] + WEIGHTS["init"] * clf[0]
                + (WEIGHTS["iter"] * sum(iterates) / len(iterates) if iterates else 0.0))
        sq = ((out["iou"].detach().float() - target) ** 2).mean(dim=(0, 2)).sum()
        final = scores[-1].detach()
        w = final.shape[-1]
        peak = final.flatten(2).argmax(dim=2)
        peak_xy = torch.stack([peak % w, peak // w], dim=-1).float()
        true_xy = score_centers(first("test_boxes").float(), model.initializer.filter_size)
        error = ((peak_xy - true_xy).norm(dim=-1) * STRIDE).mean(dim=0).sum()
        return ({"loss": loss, "iou": iou_loss, "clf": clf[-1]},
                {"iou_mse": float(sq), "center_error": float(error)})
