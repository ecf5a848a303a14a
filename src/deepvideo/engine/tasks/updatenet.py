"""UpdateNet training (Zhang et al., ICCV 2019): windows of ground-truth templates -> the L2 loss
of the updated template against the next frame's ground-truth template.

A batch holds ``exemplars [N, L, 3, 127, 127]`` (RGB 0..255): the exemplar crops of ``L``
consecutive frames of one sequence at their ground-truth boxes
(:class:`deepvideo.track.updatenet.TemplateWindows`). A frozen SiamFC embedding (eval mode, no
gradient; ``model.kwargs.embedding``: a SiamFC ``.safetensors`` file or checkpoint folder) turns
them into templates ``T_0 .. T_{L-1}``; the step's loss is
:func:`deepvideo.track.updatenet.unrolled_losses` (``‖ψ(T_0, T̃_{i−1}, T_i) + T_0 − T_{i+1}‖²``
per window step; ``T̃`` from the linear update or UpdateNet itself, ``model.kwargs.accumulate``).
Validation reports ``val_loss`` and, against the same targets, ``val_fixed_loss`` (keeping
``T_0``, SiamFC) and ``val_linear_loss`` (CFNet's running average): UpdateNet should beat both.

The model is :class:`deepvideo.track.updatenet.UpdateNet` (``model.name: updatenet``; its
channel count is the embedding's, ``model.kwargs.hidden`` defaults to the paper's 96). Data:
``data.train`` / ``data.val`` are ``{root: <tracking sequences>, format: ..., windows: {...}}``
(``TemplateWindows`` options).
"""

from __future__ import annotations

import torch
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.updatenet import ACCUMULATE, HIDDEN, LINEAR_RATE, UpdateNet, unrolled_losses

MODEL_NAME = "updatenet"
KWARGS = ("embedding", "hidden", "accumulate", "rate")


def window_dataset(section: dict, where: str):
    """The template-window dataset a ``data.train`` / ``data.val`` section describes."""
    if "root" not in section:
        raise ConfigError(f"{where}: an UpdateNet dataset needs 'root' (tracking sequences) and "
                          f"optionally 'windows' (TemplateWindows options), got keys {sorted(section)}")
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.updatenet import TemplateWindows

    sequences = load_dataset(section["root"], section.get("format"))
    return TemplateWindows(sequences, **dict(section.get("windows") or {}))


@register_task("updatenet")
class UpdateNetTask(Task):
    """Ground-truth template windows -> UpdateNet's next-template L2 loss (SiamFC frozen)."""

    train_metrics = ("fixed_loss", "linear_loss")

    def __init__(self, cfg):
        super().__init__(cfg)
        self._embedding = None

    def options(self) -> dict:
        kwargs = dict(self.cfg.model.kwargs)
        unknown = sorted(set(kwargs) - set(KWARGS))
        if unknown:
            raise ConfigError(f"task 'updatenet': unknown model.kwargs {unknown} "
                              f"(known: {', '.join(KWARGS)})")
        if not kwargs.get("embedding"):
            raise ConfigError("task 'updatenet': model.kwargs.embedding must name the SiamFC weights "
                              "(a .safetensors file or a training checkpoint folder)")
        if kwargs.get("accumulate", "linear") not in ACCUMULATE:
            raise ConfigError(f"task 'updatenet': model.kwargs.accumulate must be one of {ACCUMULATE}, "
                              f"got {kwargs['accumulate']!r}")
        return kwargs

    def embedding(self, device: torch.device) -> nn.Module:
        """The frozen SiamFC (eval mode, no gradient) on ``device``."""
        if self._embedding is None:
            from deepvideo.track.registry import weights_file
            from deepvideo.track.trackers.siamfc import WEIGHTS_ENV, load_siamfc

            model = load_siamfc(weights_file(self.options()["embedding"], WEIGHTS_ENV))
            for p in model.parameters():
                p.requires_grad_(False)
            self._embedding = model
        return self._embedding.to(device).eval()

    def build_model(self) -> nn.Module:
        if self.cfg.model.name != MODEL_NAME:
            raise ConfigError(f"task 'updatenet' builds model.name: {MODEL_NAME}, "
                              f"got {self.cfg.model.name!r}")
        channels = self.embedding(torch.device("cpu")).channels[-1]
        return self.with_initial_weights(UpdateNet(channels, int(self.options().get("hidden", HIDDEN))))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        if train_dataset is None:
            train_dataset = window_dataset(dict(d.train or {}), "data.train")
        if val_dataset is None and d.val:
            val_dataset = window_dataset(dict(d.val), "data.val")
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, UpdateNet):
            raise ConfigError(f"task 'updatenet' trains an UpdateNet, got {type(model).__name__}")
        channels = self.embedding(torch.device("cpu")).channels[-1]
        if model.channels != channels:
            raise ConfigError(f"task 'updatenet': the UpdateNet takes {model.channels}-channel templates, "
                              f"the SiamFC embedding gives {channels}")

    @torch.no_grad()
    def templates(self, exemplars: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``[N, L, 3, 127, 127]`` crops -> ``[N, L, C, 6, 6]`` templates of the frozen embedding."""
        n, length = exemplars.shape[:2]
        t = self.embedding(device).embed(exemplars.to(device).flatten(0, 1).float())
        return t.reshape(n, length, *t.shape[1:])

    def losses(self, model, batch, device) -> dict:
        opts = self.options()
        return unrolled_losses(model, self.templates(batch["exemplars"], device),
                               opts.get("accumulate", "linear"), float(opts.get("rate", LINEAR_RATE)))

    def step(self, model, batch, device, autocast) -> StepOutput:
        with autocast():
            losses = self.losses(model, batch, device)
        n = int(batch["exemplars"].shape[0])
        return StepOutput({"loss": losses["loss"]}, n, {"fixed_loss": float(losses["fixed"]) * n,
                                                         "linear_loss": float(losses["linear"]) * n})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0, 0.0]  # loss*n, fixed*n, linear*n, n
        for loader in loaders.values():
            for batch in loader:
                losses = self.losses(model, batch, device)
                n = int(batch["exemplars"].shape[0])
                for k, name in enumerate(("loss", "fixed", "linear")):
                    sums[k] += float(losses[name]) * n
                sums[3] += n
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[3], 1.0)
        return {"val_loss": total[0] / n, "val_fixed_loss": total[1] / n, "val_linear_loss": total[2] / n}

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "embedding": str(self.options()["embedding"])}
