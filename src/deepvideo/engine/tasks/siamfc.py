"""SiamFC training (Bertinetto et al., ECCVW 2016): exemplar/search pairs -> the logistic loss.

A batch holds ``exemplar [N,3,127,127]`` and ``search [N,3,255,255]`` (RGB 0..255) and
``target [N,4]`` (the target box x, y, w, h in search-image pixels); the step's loss is
:func:`deepvideo.track.siamfc.logistic_loss` (labels +1 within 16 pixels of the target centre,
class-balanced). Validation reports ``val_loss`` and ``val_center_error`` (mean distance in
search pixels from the score map's peak to the target centre). The running training metric is
``center_error`` too.

The model is :class:`deepvideo.track.siamfc.SiamFC` (``model.name: siamfc``, ``model.kwargs``
such as ``width``). Data: the caller may give the datasets; otherwise ``data.train`` (and
``data.val``) are either ``{root: <folder of tracking sequences>, format: ..., pairs: {...}}``,
which becomes ``deepvideo.track.pairs.PairDataset(load_dataset(root, format), **pairs)``, or
``{videos: <video file, frame folder, folder of them, or a list>, selfsup: {...}}``, which
becomes self-supervised pairs from those unlabelled videos,
``deepvideo.track.selfsup.SelfSupPairs(videos, **selfsup)`` (same item format).
"""

from __future__ import annotations

import logging

import torch
from omegaconf import OmegaConf
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import StepOutput, Task, register_task
from deepvideo.track.siamfc import SiamFC, logistic_loss, peak_centre_error

MODEL_NAME = "siamfc"
log = logging.getLogger("deepvideo.engine")


def pair_dataset(section: dict, where: str):
    """The pair dataset a ``data.train`` / ``data.val`` section describes; unreadable data or
    bad options are a ConfigError naming the section."""
    from deepvideo.io import VideoError

    try:
        return build_pairs(section, where)
    except ConfigError:
        raise
    except (ValueError, VideoError) as exc:  # SequenceError, SelfSupPairs/PairDataset arguments
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:  # an unknown option
        raise ConfigError(f"{where}: {exc}") from None


def build_pairs(section: dict, where: str):
    if "videos" in section and "selfsup" in section and "root" not in section:
        from deepvideo.track.selfsup import SelfSupPairs

        plain = OmegaConf.to_container(OmegaConf.create({"videos": section["videos"],
                                                         "selfsup": section["selfsup"] or {}}))
        return SelfSupPairs(plain["videos"], **plain["selfsup"])
    if "root" not in section or "pairs" not in section:
        raise ConfigError(f"{where}: a SiamFC dataset needs 'root' (tracking sequences) and 'pairs' "
                          f"(PairDataset options), or 'videos' (unlabelled videos) and 'selfsup' "
                          f"(SelfSupPairs options), got keys {sorted(section)}")
    from deepvideo.track.datasets import load_dataset
    from deepvideo.track.pairs import PairDataset  # written alongside; imported only when used

    sequences = load_dataset(section["root"], section.get("format"))
    return PairDataset(pairable(sequences, section["root"]), **dict(section["pairs"] or {}))


def pairable(sequences: list, root) -> list:
    """The sequences with at least two frames where the target is visible (a pair needs two).
    Real sets have shorter tracks (an ImageNet VID object boxed in one frame): those are left
    out with a logged warning naming how many and the first; none left is a ConfigError."""
    from deepvideo.track.pairs import visible_frames

    kept = [s for s in sequences if len(visible_frames(s)) >= 2]
    if not kept:
        raise ConfigError(f"{root}: none of its {len(sequences)} sequences has two frames with the "
                          "target visible")
    if len(kept) < len(sequences):
        first = next(s.name for s in sequences if len(visible_frames(s)) < 2)
        log.warning("%s: %d of %d sequences have fewer than two frames with the target visible and "
                    "give no training pair (first: %s); left out", root, len(sequences) - len(kept),
                    len(sequences), first)
    return kept


@register_task("siamfc")
class SiamFCTask(Task):
    """Exemplar/search pairs -> SiamFC score maps -> class-balanced logistic loss."""

    train_metrics = ("center_error",)

    def build_model(self) -> nn.Module:
        if self.cfg.model.name != MODEL_NAME:
            raise ConfigError(f"task 'siamfc' builds model.name: {MODEL_NAME}, got {self.cfg.model.name!r}")
        return self.with_initial_weights(SiamFC(**self.cfg.model.kwargs))

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        if train_dataset is None:
            train_dataset = pair_dataset(dict(d.train or {}), "data.train")
        if val_dataset is None and d.val:
            val_dataset = pair_dataset(dict(d.val), "data.val")
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:
        if not isinstance(model, SiamFC):
            raise ConfigError(f"task 'siamfc' trains a SiamFC model, got {type(model).__name__}")

    def step(self, model, batch, device, autocast) -> StepOutput:
        z, x = batch["exemplar"].to(device), batch["search"].to(device)
        target = batch["target"].to(device).float()
        with autocast():
            scores = model(z, x)
        loss = logistic_loss(scores, target)
        error = float(peak_centre_error(scores.detach().float(), target).sum())
        return StepOutput({"loss": loss}, int(target.shape[0]), {"center_error": error})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0]  # loss*n, centre error sum, n
        for loader in loaders.values():
            for batch in loader:
                target = batch["target"].to(device).float()
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    scores = model(batch["exemplar"].to(device), batch["search"].to(device)).float()
                n = int(target.shape[0])
                sums[0] += float(logistic_loss(scores, target)) * n
                sums[1] += float(peak_centre_error(scores, target).sum())
                sums[2] += n
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        n = max(total[2], 1.0)
        return {"val_loss": total[0] / n, "val_center_error": total[1] / n}

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "target_format": "x,y,w,h in search-image pixels"}
