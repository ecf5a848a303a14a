"""Optimizers, learning-rate schedules with linear warmup, layer freezing.

Schedules are stepped once per optimizer step (iteration). The learning rate at
iteration ``i`` is ``base_lr * warmup(i) * decay(i)``:

- ``warmup(i) = f0 + (1 - f0) * i / W`` for ``i < W`` warmup iterations, else 1
  (``f0 = warmup_start_factor``);
- ``decay``: ``constant`` 1; ``step`` ``gamma ** (number of milestones <= i)``;
  ``cosine`` ``m + (1 - m) * (1 + cos(pi * (i - W) / (total - W))) / 2`` where ``m = min_lr / lr``
  (cosine annealing after warmup, Loshchilov & Hutter 2017); ``plateau`` a factor multiplied
  by ``plateau_factor`` when the monitored metric has not improved by more than
  ``plateau_threshold`` (relative) for ``plateau_patience`` epochs (:meth:`step_metric`).

The schedule state is plain numbers, so it is saved and restored exactly on resume.
"""

from __future__ import annotations

import fnmatch
import math

import torch
from torch import nn

from deepvideo.engine.config import ConfigError, TrainConfig

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def top_level_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's "layers" for fine-tuning: top-level children that own parameters, in order.

    Order is registration order (``named_children``), which for every deepvideo model
    follows the forward pass (stem ... stages ... head). A DDP wrapper is looked through.
    """
    model = getattr(model, "module", model)
    return [(n, m) for n, m in model.named_children() if any(True for _ in m.parameters())]


def apply_freezing(model: nn.Module, patterns: list[str] | tuple[str, ...] = (), top_k: int = 0) -> list[str]:
    """Freeze parameters; return the names of the frozen ones.

    ``patterns`` are fnmatch patterns on parameter names (``"stem.*"``, ``"*.bn*"``); a
    pattern that matches no parameter is an error (typos would silently train everything).
    ``top_k > 0`` trains only the last ``top_k`` layers of :func:`top_level_layers`
    (``top_k=1`` is "retrain the classifier only" when the head is the last child).
    """
    names = [n for n, _ in model.named_parameters()]
    frozen: set[str] = set()
    for pat in patterns:
        hit = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hit:
            raise ConfigError(
                f"train.freeze pattern {pat!r} matches no parameter "
                f"(names look like {', '.join(names[:4])}, ...)"
            )
        frozen.update(hit)
    if top_k > 0:
        layers = top_level_layers(model)
        if top_k > len(layers):
            raise ConfigError(
                f"train.finetune_top_k={top_k} but the model has only {len(layers)} layers "
                f"({', '.join(n for n, _ in layers)})"
            )
        keep = {n for n, _ in layers[len(layers) - top_k :]}
        frozen.update(n for n in names if n.split(".", 1)[0] not in keep)
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    if len(frozen) == len(names):
        raise ConfigError("every parameter is frozen: nothing to train (check train.freeze / finetune_top_k)")
    return sorted(frozen)


def frozen_norm_layers(model: nn.Module) -> list[nn.Module]:
    """Normalization layers whose affine parameters are all frozen (kept in eval mode)."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                out.append(m)
    return out


def build_optimizer(model: nn.Module, cfg: TrainConfig, lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over the trainable parameters.

    With ``no_decay_norm_bias`` biases and normalization parameters get no weight decay.
    """
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if cfg.no_decay_norm_bias and (isinstance(module, _NORM_TYPES) or name == "bias" or p.ndim <= 1):
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    lr = cfg.lr * lr_scale
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas))
    raise ConfigError(f"unknown optimizer {cfg.optimizer!r}: use sgd or adamw")


class WarmupSchedule:
    """Per-iteration learning rate ``base_lr * warmup(i) * decay(i)`` (see module docstring)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str,
        total_iters: int,
        warmup_iters: int = 0,
        warmup_start_factor: float = 0.01,
        milestones: list[int] | tuple[int, ...] = (),
        gamma: float = 0.1,
        min_lr: float = 0.0,
        plateau_patience: int = 2,
        plateau_factor: float = 0.1,
        plateau_threshold: float = 1e-4,
        plateau_mode: str = "max",
    ):
        if kind not in ("constant", "step", "cosine", "plateau"):
            raise ConfigError(f"unknown schedule {kind!r}")
        self.optimizer = optimizer
        self.kind = kind
        self.total_iters = max(1, int(total_iters))
        self.warmup_iters = max(0, int(warmup_iters))
        self.warmup_start_factor = float(warmup_start_factor)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.plateau_patience = int(plateau_patience)
        self.plateau_factor = float(plateau_factor)
        self.plateau_threshold = float(plateau_threshold)
        self.plateau_mode = plateau_mode
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            g["initial_lr"] = lr
        self.min_factor = [min_lr / lr if lr > 0 else 0.0 for lr in self.base_lrs]
        self.iteration = 0
        self.plateau_scale = 1.0
        self.best: float | None = None
        self.bad_epochs = 0
        self._apply()

    def factor(self, i: int, group: int = 0) -> float:
        """The multiplier of the base learning rate at iteration ``i``."""
        w = 1.0
        if i < self.warmup_iters:
            w = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * i / self.warmup_iters
        if self.kind == "step":
            d = self.gamma ** sum(1 for m in self.milestones if m <= i)
        elif self.kind == "cosine":
            span = max(1, self.total_iters - self.warmup_iters)
            t = min(1.0, max(0.0, (i - self.warmup_iters) / span))
            m = self.min_factor[group]
            d = m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * t))
        elif self.kind == "plateau":
            d = self.plateau_scale
        else:
            d = 1.0
        return w * d

    def _apply(self) -> None:
        for k, (g, lr) in enumerate(zip(self.optimizer.param_groups, self.base_lrs, strict=True)):
            g["lr"] = lr * self.factor(self.iteration, k)

    def step(self) -> None:
        """Advance one optimizer step."""
        self.iteration += 1
        self._apply()

    def step_metric(self, value: float | None) -> None:
        """End-of-epoch update of the plateau schedule with the monitored metric."""
        if self.kind != "plateau" or value is None or not math.isfinite(value):
            return
        if self.best is None:
            better = True
        elif self.plateau_mode == "max":
            better = value > self.best + abs(self.best) * self.plateau_threshold
        else:
            better = value < self.best - abs(self.best) * self.plateau_threshold
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.plateau_patience:
                self.plateau_scale *= self.plateau_factor
                self.bad_epochs = 0
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "plateau_scale": self.plateau_scale,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.plateau_scale = float(state["plateau_scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self._apply()


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, iters_per_epoch: int, monitor_mode: str = "max"
) -> WarmupSchedule:
    """The schedule of ``cfg`` with epochs converted to optimizer steps.

    ``max_steps`` (if set) is the schedule's length; ``milestone_steps`` are added to the
    epoch ``milestones`` (papers giving iteration counts, e.g. ST-ResNet's 30K + 30K + 20K).
    """
    return WarmupSchedule(
        optimizer,
        cfg.schedule,
        total_iters=cfg.max_steps or cfg.epochs * iters_per_epoch,
        warmup_iters=round(cfg.warmup_epochs * iters_per_epoch),
        warmup_start_factor=cfg.warmup_start_factor,
        milestones=[m * iters_per_epoch for m in cfg.milestones] + list(cfg.milestone_steps),
        gamma=cfg.gamma,
        min_lr=cfg.min_lr,
        plateau_patience=cfg.plateau_patience,
        plateau_factor=cfg.plateau_factor,
        plateau_threshold=cfg.plateau_threshold,
        plateau_mode=monitor_mode,
    )
