"""Action recognition: clips -> class logits (single-task and multi-task), the default task.

What one step does: the model gets the batch entries it reads (``InputSpec.batch_keys``)
and returns logits ``[N,K]``, dense logits ``[N,K,T']`` or, in training mode, a dict
``{"logits": ..., "aux_<name>": ...}``; the losses (:func:`deepvideo.engine.losses.compute_loss`)
are summed with ``train.loss_weights`` (default 1.0 each); a model's own scalar losses
``"loss_<name>"`` are added too. The running metric is ``top1`` (% of training clips whose top
class is the label); a model naming more in its ``train_metrics`` attribute (e.g. Skip RNN's
``frames_used``) returns them as ``"metric_<name>"`` batch means, reported as ``train_<name>``.
Validation scores clips through :func:`deepvideo.engine.scoring.score_batches` (the path
``deepvideo test`` uses) and reports ``val_loss``, ``val_top1`` and ``val_top5`` (%, clip level).

Multi-task training (Simonyan & Zisserman 2014, Sec. 5: one net, a UCF101 and an HMDB51
head, losses summed): ``data.multitask: {<head>: {train: ..., val: ...}, ...}`` concatenates
the heads' training sets (:class:`~deepvideo.data.dataset.MultiTaskDataset`); each batch
carries ``label_<head>`` (-1 for the other datasets' clips). The model is built with
``heads={<head>: number of classes}`` and returns, in training mode, head 1 as ``"logits"``
and head h as ``"aux_<h>"`` (``two_stream_multitask``); each head's cross-entropy ignores -1
and the losses are summed. Each head is validated on its own val set (through
``model.eval_head``): rows gain ``val_<head>_{loss,top1,top5}``, and ``val_*`` are the first
head's. checkpoint.json holds ``head_class_names``; ``class_names`` are the first head's.
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.build import (
    build_dataset,
    build_model,
    build_multitask_datasets,
    load_index,
    task_config,
)
from deepvideo.engine.config import ConfigError
from deepvideo.engine.losses import clip_scores, compute_loss, count_correct, head_outputs, single_loss
from deepvideo.engine.scoring import model_inputs, score_batches
from deepvideo.engine.task import StepOutput, Task, register_task


@torch.no_grad()
def validate(model: nn.Module, loader, device: torch.device, amp_dtype: torch.dtype | None, spec) -> dict:
    """Clip-level loss, top-1 and top-5 (%) over ``loader`` (all processes, all-reduced).

    Items with a view dimension ``[N,V,...]`` are scored by averaging the V views' scores;
    score maps are averaged first (:func:`deepvideo.engine.scoring.reduce_logits`).
    """
    scored = score_batches(model, loader, device, spec=spec, amp_dtype=amp_dtype)
    sums = [0.0, 0.0, 0.0, 0.0]  # loss*n, top1, top5, n
    if len(scored.labels):
        scores = torch.from_numpy(scored.view_logits).mean(dim=1)
        target = torch.from_numpy(scored.labels)
        n = target.shape[0]
        sums = [float(single_loss(scores, target)) * n, count_correct(scores, target, 1),
                count_correct(scores, target, 5), n]
    total = dist_utils.all_reduce_sum(sums, device).tolist()
    n = max(total[3], 1.0)
    return {"val_loss": total[0] / n, "val_top1": 100.0 * total[1] / n, "val_top5": 100.0 * total[2] / n,
            "val_clips": int(total[3])}


def validate_heads(model: nn.Module, loaders: dict, device, amp_dtype, spec) -> dict:
    """Multi-task validation: each head on its own task's validation set (``model.eval_head``
    selects the head scored in eval mode). Returns ``val_<head>_{loss,top1,top5}`` and, for the
    first head, the plain ``val_loss/top1/top5`` the checkpoint monitor reads."""
    if not hasattr(model, "eval_head"):
        raise ConfigError(
            f"{type(model).__name__} has no 'eval_head': per-head validation needs a multi-task model "
            "(e.g. two_stream_multitask)"
        )
    row, keep = {}, model.eval_head
    try:
        for i, (head, loader) in enumerate(loaders.items()):
            model.eval_head = head
            res = validate(model, loader, device, amp_dtype, spec)
            res.pop("val_clips", None)
            if i == 0:
                row.update(res)
            row.update({f"val_{head}_{k[4:]}": v for k, v in res.items()})
    finally:
        model.eval_head = keep
    return row


@register_task("recognition")
class Recognition(Task):
    """Single- and multi-task classification (see the module docstring)."""

    train_metrics = ("top1",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.head_classes: dict[str, list[str]] = {}
        self.multitask = False
        self._indexes: dict = {}

    def setup(self, train_dataset=None, class_names=None) -> None:
        cfg = self.cfg
        self.multitask = bool(cfg.data.multitask) and train_dataset is None
        if self.multitask:
            self._indexes = {h: load_index(task_config(cfg, h), "train") for h in cfg.data.multitask}
            self.head_classes = {h: list(index.classes) for h, index in self._indexes.items()}
            self.class_names = self.head_classes[next(iter(self.head_classes))]
        elif train_dataset is None:
            self._indexes = {"": load_index(cfg, "train")}
            self.class_names = list(self._indexes[""].classes)
        else:
            self.class_names = list(class_names if class_names is not None else train_dataset.classes)
            self.head_classes = dict(getattr(train_dataset, "head_classes", None) or {})

    @property
    def num_classes(self) -> int:
        return self.cfg.model.num_classes or len(self.class_names)

    def build_model(self) -> nn.Module:
        heads = {h: len(c) for h, c in self.head_classes.items()} or None
        return build_model(self.cfg, self.num_classes, heads=heads)

    def datasets(self, spec, train_dataset=None, val_dataset=None) -> tuple[object, dict]:
        cfg = self.cfg
        if self.multitask:
            from deepvideo.data.dataset import MultiTaskDataset

            train_set = MultiTaskDataset(build_multitask_datasets(cfg, "train", spec, True, self._indexes))
            return train_set, build_multitask_datasets(cfg, "val", spec, train=False)
        if train_dataset is None:
            train_dataset = build_dataset(cfg, "train", spec, "train", index=self._indexes[""])
        if val_dataset is None and cfg.data.val:
            val_dataset = build_dataset(cfg, "val", spec, "val", class_names=self.class_names)
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        extra = tuple(getattr(getattr(model, "module", model), "train_metrics", ()))
        base = type(self).train_metrics
        self.train_metrics = (*base, *(m for m in extra if m not in base))
        heads, model_heads = list(self.head_classes), getattr(model, "head_names", None)
        if heads and model_heads is not None and list(model_heads) != heads:
            raise ConfigError(
                f"the model's heads {list(model_heads)} differ from the training data's {heads} "
                "(data.multitask); give them in the same order"
            )

    def step(self, model, batch, device, autocast) -> StepOutput:
        nb = device.type == "cuda"
        x = {k: batch[k].to(device, non_blocking=nb) for k in model_inputs(batch, self.spec_of(model))}
        target = batch["label"].to(device, non_blocking=nb)
        head_targets = {h: batch[f"label_{h}"].to(device) for h in self.head_classes if f"label_{h}" in batch}
        t = self.cfg.train
        with autocast():
            out = model(x)
        loss, logits, parts = compute_loss(out, target, t.label_smoothing, t.loss_weights,
                                           head_targets=head_targets or None)
        if head_targets and isinstance(out, dict):  # each clip scored by its own task's head
            correct = 0
            for h, h_logits in head_outputs(out, list(head_targets)).items():
                mask = head_targets[h] >= 0
                scores = clip_scores(h_logits.detach().float())
                correct += count_correct(scores[mask], head_targets[h][mask], 1)
        else:
            correct = count_correct(clip_scores(logits.detach().float()), target, 1)
        n = int(target.shape[0])
        sums = {"top1": 100.0 * correct}
        if isinstance(out, dict):  # the model's own running values, batch means -> sums over items
            sums.update({k[7:]: float(v.detach()) * n for k, v in out.items() if k.startswith("metric_")})
        return StepOutput({"loss": loss, **parts}, n, sums)

    @staticmethod
    def spec_of(model: nn.Module):
        return getattr(getattr(model, "module", model), "input_spec", None)

    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        if self.multitask:
            return validate_heads(model, loaders, device, amp_dtype, spec)
        row = validate(model, next(iter(loaders.values())), device, amp_dtype, spec)
        row.pop("val_clips", None)
        return row

    def checkpoint_meta(self) -> dict:
        return {"class_names": list(self.class_names), "head_class_names": self.head_classes or None}
