"""D3S training (Lukežič et al., CVPR 2020, Sec. 3.5): template/test crop pairs with masks ->
the segmentation network's binary cross-entropy.

A batch holds ``train_image``/``test_image [N,3,S,S]`` (RGB 0..255), ``train_mask``/``test_mask
[N,1,S,S]`` and ``test_center [N,2]`` (the target centre in test-crop pixels, for the position
channel, as the paper: from the ground truth during training); see
:class:`deepvideo.track.d3s_pairs.SegmentationPairs`. The step's loss is
:func:`deepvideo.track.d3s.segmentation_loss`; the running training metric and the validation
metric are the mask IoU (``train_mask_iou``, ``val_mask_iou``; foreground probability > 0.5),
validation also reports ``val_loss``.

The model is :class:`deepvideo.track.d3s.D3SNet` (``model.name: d3s``, ``model.kwargs`` such as
``depth``, ``width``). ``model.kwargs.freeze_backbone: true`` trains only the segmentation head
(the paper's setting, with an ImageNet-trained backbone; ``model.kwargs.backbone_weights`` names
torchvision ResNet weights to start from). Data: ``data.train`` (and ``data.val``) are
``{root: <folder of sequences with masks>, format: ..., pairs: {...}}`` ->
``SegmentationPairs(load_dataset(root, format), **pairs)``.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.d3s import CROP_SIZE, D3SNet, mask_iou, segmentation_loss

MODEL_NAME = "d3s"


def pair_dataset(section: dict, where: str):
    """The :class:`SegmentationPairs` a ``data.train`` / ``data.val`` section describes."""
    if "root" not in section:
        raise ConfigError(f"{where}: a D3S dataset needs 'root' (tracking sequences with masks), "
                          f"got keys {sorted(section)}")
    from deepvideo.track.d3s_pairs import SegmentationPairs
    from deepvideo.track.datasets import load_dataset

    sequences = load_dataset(section["root"], section.get("format"))
    try:
        return SegmentationPairs(sequences, **dict(section.get("pairs") or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_d3s(kwargs: dict) -> D3SNet:
    """A D3SNet from ``model.kwargs`` (plus ``freeze_backbone`` and ``backbone_weights``)."""
    kwargs = dict(kwargs)
    freeze, weights = bool(kwargs.pop("freeze_backbone", False)), kwargs.pop("backbone_weights", None)
    model = D3SNet(**kwargs)
    if weights:
        from deepvideo.models.convert import read_state_dict

        state = {k: v for k, v in read_state_dict(weights).items() if not k.startswith(("layer4.", "fc."))}
        missing, unexpected = model.backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{weights}: not torchvision ResNet weights of this shape "
                              f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    if freeze:
        model.backbone.requires_grad_(False)
    return model


@register_task("d3s")
class D3STask(Task):
    """Template/test crop pairs -> D3S segmentation logits -> binary cross-entropy."""

    train_metrics = ("mask_iou",)

    def build_model(self) -> nn.Module:
        if self.cfg.model.name != MODEL_NAME:
            raise ConfigError(f"task 'd3s' builds model.name: {MODEL_NAME}, got {self.cfg.model.name!r}")
        return self.with_initial_weights(build_d3s(self.cfg.model.kwargs))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        if train_dataset is None:
            train_dataset = pair_dataset(dict(d.train or {}), "data.train")
        if val_dataset is None and d.val:
            val_dataset = pair_dataset(dict(d.val), "data.val")
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, D3SNet):
            raise ConfigError(f"task 'd3s' trains a D3SNet, got {type(model).__name__}")

    @staticmethod
    def forward(model, batch, device) -> torch.Tensor:
        return model(batch["train_image"].to(device), batch["test_image"].to(device),
                     batch["train_mask"].to(device), batch["test_center"].to(device))

    def step(self, model, batch, device, autocast) -> StepOutput:
        masks = batch["test_mask"].to(device)
        with autocast():
            logits = self.forward(model, batch, device)
        loss = segmentation_loss(logits.float(), masks)
        iou = float(mask_iou(logits.detach(), masks).sum())
        return StepOutput({"loss": loss}, int(masks.shape[0]), {"mask_iou": iou})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0]  # loss*n, IoU sum, n
        for loader in loaders.values():
            for batch in loader:
                masks = batch["test_mask"].to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    logits = self.forward(model, batch, device).float()
                n = int(masks.shape[0])
                sums[0] += float(segmentation_loss(logits, masks)) * n
                sums[1] += float(mask_iou(logits, masks).sum())
                sums[2] += n
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[2], 1.0)
        return {"val_loss": total[0] / n, "val_mask_iou": total[1] / n}

    def checkpoint_meta(self) -> dict:
        pairs = dict((self.cfg.data.train or {}).get("pairs") or {})
        return {"class_names": [], "target_format": "foreground masks of test crops",
                "crop": int(pairs.get("crop", CROP_SIZE))}
