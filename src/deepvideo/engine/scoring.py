"""One path from a batch to class scores: validation, ``deepvideo test`` and ``predict`` use it.

:func:`forward_views` takes a batch whose modalities are ``[N, C, T, H, W]`` or, with test
views, ``[N, V, C, T, H, W]``; it keeps the entries the model reads
(:meth:`~deepvideo.spec.InputSpec.batch_keys`), folds the views into the batch, runs the
model in chunks under the run's autocast setting and reduces every output to ``[N, K]``
scores with :func:`reduce_logits`: the ``logits`` of a dict output; ``[N, K, T']``
(temporally dense), ``[N, K, H', W']`` and ``[N, K, T', H', W']`` score maps averaged over
their positions before any softmax (fully convolutional testing, Feichtenhofer et al. 2016).
:func:`score_batches` runs it over a loader and keeps labels, dataset indices and the
unreadable videos the dataset reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from deepvideo.spec import InputSpec

MODALITY_KEYS = ("rgb", "flow", "rgbdiff", "audio")
BASE_NDIM = 5  # [N, C, T, H, W]; one more leading dim = views
KEY_NDIM = {"audio": 4}  # [N, 1, Ta, F] log-mel spectrograms


def model_inputs(batch: dict, spec: InputSpec | None) -> list[str]:
    """The batch keys the model reads: ``spec.batch_keys`` present in the batch (every
    modality present when there is no spec or none of its keys is there)."""
    present = [k for k in MODALITY_KEYS if k in batch]
    if spec is not None:
        wanted = [k for k in spec.batch_keys if k in batch]
        if wanted:
            return wanted
    return present


def autocast_dtype(amp: str, device: torch.device, training: bool = True) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on ``device`` (``None``: full precision).

    ``fp16`` needs CUDA: an error in training, full precision when scoring on the CPU.
    """
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "none":
        return None
    if amp == "fp16":
        if device.type != "cuda":
            if not training:
                return None
            raise ValueError("train.amp=fp16 needs CUDA; use train.amp=bf16 (or none) on the CPU")
        return torch.float16
    return torch.bfloat16


def reduce_logits(out) -> torch.Tensor:
    """``[N, K]`` scores from a model output: the ``logits`` of a dict, score maps averaged."""
    if isinstance(out, dict):
        if "logits" not in out:
            raise ValueError(f"model returned a dict without 'logits' (keys: {', '.join(out)})")
        out = out["logits"]
    if not isinstance(out, torch.Tensor) or out.ndim < 2:
        raise ValueError(f"model output must be a [N, K] tensor (or score maps), got {type(out).__name__}"
                         + (f" of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else ""))
    if out.ndim > 2:
        out = out.flatten(2).mean(dim=2)
    return out


def split_views(batch: dict, keys: Iterable[str] | None = None) -> tuple[dict, int, int]:
    """Fold a leading view dim into the batch: ``[N, V, C, T, H, W] -> [N*V, C, T, H, W]``."""
    keys = list(keys) if keys is not None else [k for k in MODALITY_KEYS if k in batch]
    if not keys:
        raise ValueError(f"batch has none of the modalities {MODALITY_KEYS} (keys: {', '.join(batch)})")
    first = batch[keys[0]]
    n = first.shape[0]
    views = first.shape[1] if first.ndim == KEY_NDIM.get(keys[0], BASE_NDIM) + 1 else 1
    flat = {}
    for k in keys:
        x = batch[k]
        if x.ndim == KEY_NDIM.get(k, BASE_NDIM) + 1:
            if x.shape[1] != views:
                raise ValueError(f"modalities disagree on the number of views: {k} has {x.shape[1]}")
            x = x.reshape(n * views, *x.shape[2:])
        elif views != 1:
            raise ValueError(f"{k} has no view dimension but other modalities have {views} views")
        flat[k] = x
    return flat, n, views


@torch.no_grad()
def forward_views(model: nn.Module, batch: dict, device: torch.device | str = "cpu", *,
                  spec: InputSpec | None = None, amp_dtype: torch.dtype | None = None,
                  chunk: int = 32) -> torch.Tensor:
    """Run ``model`` on every view of a batch; returns float32 ``[N, V, K]`` scores on CPU.

    ``spec`` (default ``model.input_spec``) selects the batch keys; views go through the
    model in chunks of at most ``chunk`` clips to bound memory, under autocast to
    ``amp_dtype`` when given.
    """
    device = torch.device(device)
    spec = spec if spec is not None else getattr(model, "input_spec", None)
    flat, n, views = split_views(batch, model_inputs(batch, spec))
    total = n * views
    outs = []
    for start in range(0, total, chunk):
        nb = device.type == "cuda"
        part = {k: v[start:start + chunk].to(device, non_blocking=nb) for k, v in flat.items()}
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(part)
        outs.append(reduce_logits(out).float().cpu())
    return torch.cat(outs).view(n, views, -1)


@dataclass
class ScoredBatches:
    view_logits: np.ndarray  # [N, V, K] float32
    labels: np.ndarray  # [N] (or [N, K] multi-hot)
    indices: np.ndarray  # [N] dataset positions delivered ("index" of the items, else 0..N-1)
    bad_items: list[dict] = field(default_factory=list)  # {"path", "error", ...} reported by the dataset


@torch.no_grad()
def score_batches(model: nn.Module, batches: Iterable[dict], device: torch.device | str = "cpu", *,
                  spec: InputSpec | None = None, amp_dtype: torch.dtype | None = None,
                  chunk: int = 32) -> ScoredBatches:
    """:func:`forward_views` over every batch (model in eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    logits, labels, indices, bad, seen = [], [], [], [], set()
    try:
        for batch in batches:
            logits.append(forward_views(model, batch, device, spec=spec, amp_dtype=amp_dtype,
                                        chunk=chunk).numpy())
            label = torch.as_tensor(batch["label"])
            labels.append((label if label.dtype.is_floating_point else label.reshape(-1)).numpy())
            if "index" in batch:
                indices.append(torch.as_tensor(batch["index"]).reshape(-1).numpy())
            for item in batch.get("bad_items", ()) or ():
                item = dict(item) if isinstance(item, dict) else {"path": str(item), "error": "unreadable"}
                if item.get("path") not in seen:
                    seen.add(item.get("path"))
                    bad.append(item)
    finally:
        model.train(was_training)
    if not logits:
        empty = np.zeros(0, np.int64)
        return ScoredBatches(np.zeros((0, 1, 0), np.float32), empty, empty, bad)
    lab = np.concatenate(labels)
    idx = np.concatenate(indices).astype(np.int64) if indices else np.arange(len(lab))
    return ScoredBatches(np.concatenate(logits), lab, idx, bad)
