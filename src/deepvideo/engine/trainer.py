"""The training engine: one function from a configuration to a trained, checkpointed model.

Public API (stable; used by ``deepvideo train/test/predict`` and engine/evaluate.py)::

    from deepvideo.engine.config import load_config, Config
    from deepvideo.engine.trainer import (train, main_train, load_checkpoint, RunResult,
                                          build_model, build_dataset, load_index)

    cfg = load_config("configs/ucf101/c3d.yaml", ["train.lr=0.01"])
    result = train(cfg)                     # -> RunResult
    result.run_dir                          # Path: config.yaml, run_info.json, metrics.csv, steps.csv,
                                            #   train.log, summary.json, bad_items.json, tensorboard/
    result.best_checkpoint, result.last_checkpoint   # checkpoint folders (engine/checkpoint.py)
    result.history                          # list of metrics.csv rows (dicts, engine/logging.py)
    result.bad_items                        # [{"path", "source", "error"}] videos skipped

    result = main_train("recipe.yaml", ["train.epochs=3"])   # what the `train` CLI calls; handles
                                            # torchrun (DDP) and returns the RunResult on every rank

    model, cfg, class_names, meta = load_checkpoint(path, device="cpu")
        # path: a checkpoint folder, a file in it, or a run folder (best, else last).
        # model is in eval mode with model.input_spec set; meta is checkpoint.json
        # (epoch, step, metrics, input_spec, model_name, config, class_names, ...).

    index = load_index(cfg, "test")         # DatasetIndex of data.test (falls back to data.val)
    dataset = build_dataset(cfg, "test", spec=model.input_spec, train=False, class_names=class_names)
        # ClipDataset with eval.num_clips / eval.test_crops / eval.flip: each item's modalities are
        # [V, C, T, H, W] with V = num_clips x crops (x2 with flip); loaders from
        # deepvideo.data.dataset.build_loader(dataset, batch, train=False, ...)

    python -m deepvideo.engine.trainer RECIPE.yaml key=value ...       # same as main_train
    torchrun --nproc_per_node=2 -m deepvideo.engine.trainer RECIPE.yaml  # DDP, see docs/distributed.md

``train(cfg, model=..., train_dataset=..., val_dataset=..., class_names=..., on_epoch_end=...)``
accepts ready-made objects (benchmarks, tests, notebooks); datasets must accept
``(index, epoch)`` keys like :class:`~deepvideo.data.dataset.ClipDataset` and yield dicts
with the modality tensors and ``"label"``. ``on_epoch_end(row)`` sees every metrics.csv row.
Run folder files and checkpoint layout: engine/logging.py and engine/checkpoint.py.

What one step does: the model gets the batch dict restricted to its modalities and returns
logits ``[N,K]``, dense logits ``[N,K,T']`` (cross-entropy on every chunk, averaged over
T', Feichtenhofer et al. 2016's one loss per chunk) or, in training mode, a dict
``{"logits": ..., "aux_<name>": ...}`` whose losses are summed with ``train.loss_weights``
(default 1.0 each). Float multi-hot labels use binary cross-entropy. ``train.batch_size`` is
the global batch per optimizer step: each of the W processes loads
``batch_size / (W * grad_accum)`` clips per micro-batch. A non-finite loss stops the run
with :class:`NonFiniteLossError`; ``checkpoints/last`` is then the last good state.

Multi-task training (Simonyan & Zisserman 2014, Sec. 5: one net, a UCF101 and an HMDB51
head, losses summed): ``data.multitask: {<head>: {train: ..., val: ...}, ...}`` concatenates
the heads' training sets (:class:`~deepvideo.data.dataset.MultiTaskDataset`); each batch
carries ``label_<head>`` (-1 for the other datasets' clips). The model is built with
``heads={<head>: number of classes}`` and returns, in training mode, head 1 as ``"logits"``
and head h as ``"aux_<h>"`` (``two_stream_multitask``); each head's cross-entropy ignores -1
(a head with no labelled clip in the batch adds 0) and the losses are summed. Each head is
validated on its own val set (through ``model.eval_head``): metrics.csv gains
``val_<head>_{loss,top1,top5}``, and ``val_*`` are the first head's. checkpoint.json holds
``head_class_names``; ``class_names`` are the first (eval-mode) head's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.checkpoint import (
    CheckpointError,
    load_train_state,
    load_weights,
    read_meta,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from deepvideo.engine.config import (
    Config,
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    write_run_files,
)
from deepvideo.engine.logging import RunLogger
from deepvideo.engine.optim import apply_freezing, build_optimizer, build_schedule, frozen_norm_layers
from deepvideo.io.atomic import atomic_write_json
from deepvideo.spec import InputSpec

log = logging.getLogger("deepvideo.engine")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; ``checkpoints/last`` holds the last good state."""


@dataclass
class RunResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    history: list[dict] = field(default_factory=list)  # metrics.csv rows
    best_metric: float | None = None
    monitor: str = "val_top1"
    class_names: list[str] = field(default_factory=list)
    bad_items: list[dict] = field(default_factory=list)
    epochs_completed: int = 0
    steps: int = 0


# --- building blocks ----------------------------------------------------------------------


def import_model_modules(imports: list[str] | tuple[str, ...]) -> None:
    """Import modules (dotted names) or ``.py`` files that register extra models."""
    for item in imports:
        if item.endswith(".py"):
            path = Path(item).resolve()
            name = f"deepvideo_user_{path.stem}_{abs(hash(str(path))) % 10**8}"
            if name in sys.modules:
                continue
            if not path.is_file():
                raise ConfigError(f"model.imports: file not found: {path}")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(item)


def _spec_overrides(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def build_model(cfg: Config, num_classes: int, heads: dict[str, int] | None = None) -> nn.Module:
    """The registered model ``cfg.model.name`` with ``num_classes`` outputs.

    ``heads`` (multi-task, ``{head name: number of classes}``) is passed to the builder as its
    ``heads`` argument. Applies ``model.kwargs`` (builder overrides), ``model.spec`` (InputSpec overrides),
    ``model.sub_batch_bn`` and, if set, ``model.pretrained`` (matching tensors only; a
    classifier of another size is left at its initialization) and ``model.init_from``.
    """
    from deepvideo.models.registry import create_model

    import_model_modules(cfg.model.imports)
    kwargs = dict(cfg.model.kwargs)
    if heads:
        kwargs["heads"] = dict(heads)
    model = create_model(cfg.model.name, num_classes=num_classes, **kwargs)
    if cfg.model.spec:
        try:
            model.input_spec = model.input_spec.replace(**_spec_overrides(dict(cfg.model.spec)))
        except TypeError as e:
            raise ConfigError(f"model.spec: {e} (fields: {', '.join(InputSpec().to_dict())})") from None
    if cfg.model.sub_batch_bn:
        from deepvideo.nn.norm import convert_sub_batch_norm

        convert_sub_batch_norm(model, cfg.model.sub_batch_bn)
    if cfg.model.pretrained:
        _load_pretrained(model, cfg.model.pretrained)
    for i, entry in enumerate(cfg.model.init_from):
        unknown = set(entry) - {"checkpoint", "source", "target"}
        if unknown or "checkpoint" not in entry:
            raise ConfigError(
                f"model.init_from[{i}]: give 'checkpoint' and optionally 'source'/'target' prefixes"
                + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else "")
            )
        try:
            _load_pretrained(model, entry["checkpoint"], entry.get("source", ""), entry.get("target", ""))
        except CheckpointError as e:
            raise ConfigError(f"model.init_from[{i}]: {e}") from None
    return model


def _load_pretrained(model: nn.Module, path: str, source: str = "", target: str = "") -> None:
    """Load the checkpoint's tensors whose names start with the regular expression ``source``,
    renamed by replacing that start with ``target`` (``\\1`` groups allowed), where shapes match;
    2D conv kernels load into 3D ones by inflation (replicated over the T frames, divided by T)."""
    from safetensors.torch import load_file

    from deepvideo.engine.checkpoint import WEIGHTS

    folder = resolve_checkpoint(path)
    pattern = re.compile(source)
    state = {pattern.sub(target, k, count=1): v for k, v in load_file(str(folder / WEIGHTS)).items()
             if pattern.match(k)}
    own = model.state_dict()
    usable = {}
    for k, v in state.items():
        if k in own and v.dim() == 4 and own[k].dim() == 5 and own[k].shape[:2] + own[k].shape[3:] == v.shape:
            t = own[k].shape[2]  # a 2D kernel into a 3D one: inflated, replicated over time / T (I3D)
            v = v.unsqueeze(2).expand(-1, -1, t, -1, -1) / t
        if k in own and own[k].shape == v.shape:
            usable[k] = v
    if (source or target) and not usable:
        raise ConfigError(f"{folder}: no tensor under {source!r} matches the model's {target!r} tensors")
    skipped = sorted(set(state) - set(usable))
    model.load_state_dict(usable, strict=False)
    log.info(
        "initialized %d tensors from %s; skipped %d (%s)",
        len(usable),
        folder,
        len(skipped),
        ", ".join(skipped[:4]),
    )


def load_index(cfg: Config, split: str):
    """The DatasetIndex of ``data.<split>`` (``train``, ``val`` or ``test``; test falls back to val)."""
    spec = dict(getattr(cfg.data, split))
    if split == "test" and not spec:
        spec = dict(cfg.data.val)
    if not spec:
        raise ConfigError(
            f"data.{split} is empty: give its load_dataset arguments, e.g. "
            f"data.{split}.format=folder data.{split}.root=videos/"
        )
    if "format" not in spec:
        raise ConfigError(f"data.{split} needs a 'format' (folder, ucf101, hmdb51, kinetics, ...)")
    from deepvideo.data.formats import load_dataset

    fmt = spec.pop("format")
    return load_dataset(fmt, **spec)


def build_dataset(
    cfg: Config, split: str, spec: InputSpec, train: bool, class_names: list[str] | None = None, index=None
):
    """ClipDataset for ``data.<split>``; test mode uses the ``eval`` views, crops and flip.

    Validation during training (``split="val", train=False``) uses one centre view.
    """
    from deepvideo.data.dataset import ClipDataset

    index = index if index is not None else load_index(cfg, split)
    if class_names is not None and list(index.classes) != list(class_names):
        raise ConfigError(
            f"data.{split} has classes {list(index.classes)[:5]}... which differ from the "
            f"model's {list(class_names)[:5]}...; use the same class list"
        )
    video_root = cfg.data.video_root or (getattr(cfg.data, split) or cfg.data.train).get("root")
    full_test = not train and split == "test"
    return ClipDataset(
        index,
        spec,
        train=train,
        num_clips=cfg.eval.num_clips if full_test else 1,
        test_crops=cfg.eval.test_crops if full_test else 1,
        flip=cfg.eval.flip if full_test else (cfg.data.flip if train else False),
        recipe=cfg.data.recipe,
        short_side=(cfg.eval.short_side or cfg.data.short_side) if full_test else cfg.data.short_side,
        short_policy=cfg.data.short_policy,
        flow_root=cfg.data.flow_root,
        video_root=video_root,
        flow_method=cfg.data.flow_method,
        seed=cfg.seed,
        max_retries=cfg.data.max_retries,
    )


def _task_config(cfg: Config, head: str) -> Config:
    """``cfg`` whose ``data.train`` / ``data.val`` (and roots) are those of ``data.multitask.<head>``."""
    task = dict(cfg.data.multitask[head] or {})
    unknown = set(task) - {"train", "val", "flow_root", "video_root"}
    if unknown or not task.get("train"):
        raise ConfigError(
            f"data.multitask.{head} must hold 'train' (load_dataset arguments) and optionally 'val', "
            f"'flow_root', 'video_root'; got keys {sorted(task)}"
        )
    data = dataclasses.replace(
        cfg.data,
        train=dict(task["train"]),
        val=dict(task.get("val") or {}),
        flow_root=task.get("flow_root", cfg.data.flow_root),
        video_root=task.get("video_root") or dict(task["train"]).get("root"),
    )
    return dataclasses.replace(cfg, data=data)


def build_multitask_datasets(
    cfg: Config, split: str, spec: InputSpec, train: bool, indexes: dict | None = None
) -> dict:
    """``{head: ClipDataset}`` of ``data.multitask.<head>.<split>`` (heads without that split left out).

    ``indexes`` (``{head: DatasetIndex}``) avoids reading annotation files twice.
    """
    out = {}
    for head in cfg.data.multitask:
        task_cfg = _task_config(cfg, head)
        if getattr(task_cfg.data, split):
            index = (indexes or {}).get(head)
            out[head] = build_dataset(task_cfg, split, spec, train=train, index=index)
    return out


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(model, cfg, class_names, meta)`` from a checkpoint (folder, file in it, or run folder).

    The model is rebuilt from the stored configuration (registry name, builder overrides,
    InputSpec) and is returned in eval mode on ``device``.
    """
    folder = resolve_checkpoint(path)
    meta = read_meta(folder)
    try:
        cfg = config_from_dict(meta["config"])
    except KeyError:
        raise CheckpointError(f"{folder}: checkpoint.json has no 'config'") from None
    cfg.model.pretrained, cfg.model.init_from = None, []
    class_names = list(meta["class_names"])
    head_classes = meta.get("head_class_names") or {}
    heads = {h: len(c) for h, c in head_classes.items()} or None
    model = build_model(cfg, num_classes=len(class_names), heads=heads)
    if meta.get("input_spec"):
        model.input_spec = InputSpec(**_spec_overrides(meta["input_spec"]))
    load_weights(model, folder, strict=True)
    model.to(device).eval()
    return model, cfg, class_names, meta


# --- losses ---------------------------------------------------------------------------------


def _single_loss(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float, ignore_index: int | None = None
) -> torch.Tensor:
    logits = logits.float()
    if ignore_index is not None and not target.dtype.is_floating_point:
        if not bool((target != ignore_index).any()):  # no labelled sample for this head: 0, not NaN
            return logits.sum() * 0.0
        if logits.dim() == 3:
            target = target[:, None].expand(-1, logits.shape[2])
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing, ignore_index=ignore_index)
    if target.dtype.is_floating_point:  # multi-hot labels
        if logits.dim() == 3:
            target = target[:, :, None].expand_as(logits)
        if label_smoothing:
            target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, target)
    if logits.dim() == 3:  # dense temporal [N,K,T']: one loss per chunk, averaged over T'
        target = target[:, None].expand(-1, logits.shape[2])
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def head_outputs(outputs: dict, head_names: list[str]) -> dict[str, torch.Tensor]:
    """``{head: logits}`` of a multi-task output: the first head is ``"logits"``, head h is ``"aux_<h>"``
    (the naming of :class:`deepvideo.models.two_stream.MultiTaskSnippetNet`)."""
    out = {}
    for i, head in enumerate(head_names):
        key = "logits" if i == 0 else f"aux_{head}"
        if key not in outputs:
            raise ValueError(
                f"multi-task training with heads {head_names} needs the model output {key!r} "
                f"(got {', '.join(outputs)}); the model's heads must match data.multitask"
            )
        out[head] = outputs[key]
    return out


def compute_loss(
    output,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    weights: dict[str, float] | None = None,
    head_targets: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(total loss, main logits, {name: loss})`` for a model output (tensor or dict).

    ``head_targets`` (multi-task, ``{head: labels with -1 for other tasks' samples}``, first
    head = ``"logits"``): each head's cross-entropy uses its own labels, ignoring -1; a head
    with no labelled sample in the batch contributes 0. The heads' losses are summed.
    """
    weights = weights or {}
    outputs = output if isinstance(output, dict) else {"logits": output}
    if "logits" not in outputs:
        raise ValueError(f"a model returning a dict must include 'logits' (got {', '.join(outputs)})")
    names = {}
    if head_targets:
        heads = list(head_targets)
        head_outputs(outputs, heads)  # checks that every head has its output
        names = {("logits" if i == 0 else f"aux_{h}"): h for i, h in enumerate(heads)}
    parts, total = {}, None
    for name, logits in outputs.items():
        if name != "logits" and not name.startswith("aux_"):
            continue
        if name in names:
            loss = _single_loss(logits, head_targets[names[name]], label_smoothing, ignore_index=-1)
        else:
            loss = _single_loss(logits, target, label_smoothing)
        parts[name] = loss.detach()
        weighted = loss * float(weights.get(name, 1.0))
        total = weighted if total is None else total + weighted
    return total, outputs["logits"], parts


def clip_scores(logits: torch.Tensor) -> torch.Tensor:
    """``[N,K]`` scores: dense ``[N,K,T']`` logits are averaged over time."""
    return logits.mean(dim=2) if logits.dim() == 3 else logits


def _correct(scores: torch.Tensor, target: torch.Tensor, k: int) -> int:
    if target.dtype.is_floating_point:  # multi-label: top-1 hits any positive class
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        return int(target.gather(1, top).amax(dim=1).gt(0).sum())
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return int((top == target[:, None]).any(dim=1).sum())


# --- the run --------------------------------------------------------------------------------


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "none":
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs CUDA; use train.amp=bf16 (or none) on the CPU")
        return torch.float16
    return torch.bfloat16


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _setup_file_logging(run_dir: Path, enabled: bool) -> logging.Handler | None:
    root = logging.getLogger("deepvideo")
    root.setLevel(logging.INFO)
    if not enabled:
        return None
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return handler


def _to_device(batch: dict, keys, device: torch.device) -> dict:
    nb = device.type == "cuda"
    return {k: batch[k].to(device, non_blocking=nb) for k in keys if k in batch}


def _model_inputs(batch: dict, spec: InputSpec | None) -> list[str]:
    keys = [k for k in ("rgb", "flow") if k in batch]
    if spec is not None:
        want = {"rgb" if m == "rgbdiff" else m for m in spec.modalities}
        keys = [k for k in keys if k in want] or keys
    return keys


@torch.no_grad()
def validate(
    model: nn.Module, loader, device: torch.device, amp_dtype: torch.dtype | None, spec: InputSpec | None
) -> dict:
    """Clip-level loss, top-1 and top-5 (%) over ``loader`` (all processes, all-reduced).

    Items with a view dimension ``[N,V,...]`` are scored by averaging the V views' logits.
    """
    model.eval()
    sums = [0.0, 0.0, 0.0, 0.0]  # loss*n, top1, top5, n
    for batch in loader:
        inputs = _model_inputs(batch, spec)
        x = _to_device(batch, inputs, device)
        target = batch["label"].to(device)
        n = target.shape[0]
        views = None
        for k, v in x.items():
            if v.dim() == 6:  # [N,V,C,T,H,W] -> [N*V,C,T,H,W]
                views = v.shape[1]
                x[k] = v.flatten(0, 1)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        if isinstance(out, dict):
            out = out["logits"]
        scores = clip_scores(out.float())
        if views is not None:
            scores = scores.reshape(n, views, -1).mean(dim=1)
        loss = _single_loss(scores, target, 0.0)
        sums[0] += float(loss) * n
        sums[1] += _correct(scores, target, 1)
        sums[2] += _correct(scores, target, 5)
        sums[3] += n
    total = dist_utils.all_reduce_sum(sums, device).tolist()
    n = max(total[3], 1.0)
    return {
        "val_loss": total[0] / n,
        "val_top1": 100.0 * total[1] / n,
        "val_top5": 100.0 * total[2] / n,
        "val_clips": int(total[3]),
    }


def _validate_heads(model: nn.Module, loaders: dict, device, amp_dtype, spec) -> dict:
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


def _set_train_mode(model: nn.Module, frozen_norms: list[nn.Module]) -> None:
    model.train()
    for m in frozen_norms:
        m.eval()


def train(
    cfg: Config,
    *,
    model: nn.Module | None = None,
    train_dataset=None,
    val_dataset=None,
    class_names: list[str] | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> RunResult:
    """Train according to ``cfg``; see the module docstring. Returns a :class:`RunResult`.

    ``on_epoch_end(row)`` is called on every process after each epoch's checkpoints are
    written, with that epoch's metrics.csv row.
    """
    device = dist_utils.select_device(cfg.device)
    distributed = dist_utils.init_distributed(device)
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    main = rank == 0
    t = cfg.train
    micro = t.batch_size // (world * t.grad_accum)
    if micro * world * t.grad_accum != t.batch_size:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be divisible by processes ({world}) x "
            f"train.grad_accum ({t.grad_accum})"
        )
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    _seed_everything(cfg.seed, cfg.deterministic)
    amp_dtype = _amp_dtype(t.amp, device)

    run_dir = Path(cfg.output_dir)
    ckpt_root = run_dir / "checkpoints"
    last_dir, best_dir = ckpt_root / "last", ckpt_root / "best"
    resume_from = None
    if cfg.resume:
        try:
            resume_from = resolve_checkpoint(last_dir)
        except CheckpointError:
            log.warning("resume=true but %s holds no checkpoint: starting from scratch", last_dir)
    elif (last_dir / "checkpoint.json").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; pass resume=true to continue it or choose another output_dir"
        )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    dist_utils.barrier()
    handler = _setup_file_logging(run_dir, main)
    try:
        # data
        multitask = bool(cfg.data.multitask) and train_dataset is None
        head_classes: dict[str, list[str]] = {}
        val_heads: dict = {}  # multi-task: {head: validation dataset}
        if multitask:
            from deepvideo.data.dataset import MultiTaskDataset

            train_indexes = {h: load_index(_task_config(cfg, h), "train") for h in cfg.data.multitask}
            head_classes = {h: list(index.classes) for h, index in train_indexes.items()}
            class_names = head_classes[next(iter(head_classes))]
        elif train_dataset is None:
            train_index = load_index(cfg, "train")
            class_names = list(train_index.classes)
        else:
            class_names = list(class_names if class_names is not None else train_dataset.classes)
            head_classes = dict(getattr(train_dataset, "head_classes", None) or {})
        num_classes = cfg.model.num_classes or len(class_names)
        if model is None:
            model = build_model(cfg, num_classes, heads={h: len(c) for h, c in head_classes.items()} or None)
        if distributed:  # same initial weights everywhere, then one random stream per process (dropout)
            torch.manual_seed(cfg.seed + rank)
        spec = getattr(model, "input_spec", None)
        if multitask:
            train_dataset = MultiTaskDataset(
                build_multitask_datasets(cfg, "train", spec, train=True, indexes=train_indexes)
            )
            val_heads = build_multitask_datasets(cfg, "val", spec, train=False)
        elif train_dataset is None:
            train_dataset = build_dataset(cfg, "train", spec, train=True, index=train_index)
        if val_dataset is None and cfg.data.val and not multitask:
            val_dataset = build_dataset(cfg, "val", spec, train=False, class_names=class_names)
        head_names = list(head_classes)
        model_heads = getattr(model, "head_names", None)
        if head_names and model_heads is not None and list(model_heads) != head_names:
            raise ConfigError(
                f"the model's heads {list(model_heads)} differ from the training data's {head_names} "
                "(data.multitask); give them in the same order"
            )

        frozen = apply_freezing(model, t.freeze, t.finetune_top_k) if (t.freeze or t.finetune_top_k) else []
        frozen_norms = frozen_norm_layers(model) if t.frozen_bn_eval else []
        if frozen:
            log.info("frozen %d parameter tensors (%s ...)", len(frozen), ", ".join(frozen[:3]))
        model.to(device)
        if distributed:
            ddp_kw = {"device_ids": [device.index]} if device.type == "cuda" else {}
            model = nn.parallel.DistributedDataParallel(
                model, find_unused_parameters=t.find_unused_parameters, **ddp_kw
            )

        from deepvideo.data.dataset import build_loader

        train_loader = build_loader(
            train_dataset,
            micro,
            train=True,
            num_workers=cfg.data.num_workers,
            seed=cfg.seed,
            rank=rank,
            world_size=world,
            device=device,
            multiprocessing_context=cfg.data.start_method,
        )

        def eval_loader(dataset):
            return build_loader(
                dataset,
                max(1, cfg.eval.batch_size),
                train=False,
                num_workers=cfg.data.num_workers,
                seed=cfg.seed,
                rank=rank,
                world_size=world,
                device=device,
                multiprocessing_context=cfg.data.start_method,
            )

        val_loader = eval_loader(val_dataset) if val_dataset is not None else None
        head_val_loaders = {h: eval_loader(d) for h, d in val_heads.items()}
        if head_val_loaders and val_loader is None:
            val_loader = next(iter(head_val_loaders.values()))  # the monitor follows the first one
        batches_per_epoch = len(train_loader)
        iters_per_epoch = batches_per_epoch // t.grad_accum
        if t.max_iters_per_epoch:
            iters_per_epoch = min(iters_per_epoch, t.max_iters_per_epoch)
        if iters_per_epoch < 1:
            raise ConfigError(
                f"the training set ({len(train_dataset)} clips) is smaller than one global batch "
                f"(train.batch_size={t.batch_size}); lower the batch size"
            )
        monitor = t.monitor
        if monitor.startswith("val_") and val_loader is None:
            monitor = "train_loss" if monitor == "val_loss" else "train_top1"
            log.info(
                "no validation set (data.val): checkpoints/best follows %s instead of %s", monitor, t.monitor
            )
        monitor_mode = "min" if monitor.endswith("loss") else "max"
        optimizer = build_optimizer(model, t)
        schedule = build_schedule(optimizer, t, iters_per_epoch, monitor_mode=monitor_mode)
        total_epochs = math.ceil(t.max_steps / iters_per_epoch) if t.max_steps else t.epochs
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        logger = RunLogger(run_dir, enabled=main, progress=progress)

        start_epoch, start_iter, step, best_metric = 0, 0, 0, None
        resumed_sums = None  # the running epoch's loss/accuracy sums when resuming mid-epoch
        if resume_from is not None:
            load_weights(model, resume_from, strict=True)
            state = load_train_state(resume_from)
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            rngs = state.get("rng_per_rank")
            set_rng_state(rngs[rank] if rngs and len(rngs) == world else state["rng"])
            start_epoch, start_iter, step = (
                int(state["epoch"]),
                int(state["iter_in_epoch"]),
                int(state["step"]),
            )
            best_metric = state["best_metric"]
            resumed_sums = list(state.get("epoch_sums") or [0.0, 0.0, 0.0])
            if hasattr(train_dataset, "record_bad"):
                train_dataset.record_bad(state.get("bad_items", []))
            logger.restore(state["history"]["epochs"], state["history"]["steps"])
            log.info("resumed from %s at epoch %d, iteration %d", resume_from, start_epoch, start_iter)
        if main:
            write_run_files(
                cfg,
                run_dir,
                {
                    "world_size": world,
                    "device": str(device),
                    "model": getattr(unwrap(model), "model_name", type(unwrap(model)).__name__),
                    "num_classes": num_classes,
                    "class_names": class_names,
                    "head_class_names": head_classes or None,
                },
            )

        bad_items: list[dict] = list(getattr(train_dataset, "bad_items", []))

        def note_bad(items: list[dict]) -> None:
            known = {b["path"] for b in bad_items}
            for it in items:
                if it["path"] not in known:
                    bad_items.append(dict(it))
                    known.add(it["path"])
            if items and hasattr(train_dataset, "record_bad"):
                train_dataset.record_bad(items)

        cfg_dict = config_to_dict(cfg)  # converting is slow (OmegaConf): once per run

        def meta(epoch: int, it: int, metrics: dict) -> dict:
            inner = unwrap(model)
            return {
                "config": cfg_dict,
                "class_names": class_names,
                "head_class_names": head_classes or None,
                "epoch": epoch,
                "step": step,
                "iter_in_epoch": it,
                "metrics": metrics,
                "monitor": monitor,
                "best_metric": best_metric,
                "model_name": getattr(inner, "model_name", cfg.model.name),
                "input_spec": spec.to_dict() if spec is not None else None,
                "deepvideo_version": _version(),
            }

        def save(folder: Path, epoch: int, it: int, metrics: dict, epoch_sums: list | None = None) -> None:
            rngs = _gather_objects(rng_state())  # every process's generators (collective call)
            if not main:
                return
            state = {
                "rng_per_rank": rngs,
                "epoch_sums": epoch_sums,
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "rng": rngs[0],
                "epoch": epoch,
                "iter_in_epoch": it,
                "step": step,
                "best_metric": best_metric,
                "bad_items": bad_items,
                "history": {"epochs": logger.epochs, "steps": logger.steps},
            }
            save_checkpoint(folder, model, meta(epoch, it, metrics), state)

        accum = t.grad_accum
        sampler = train_loader.sampler
        for epoch in range(start_epoch, total_epochs):
            skip_iters = start_iter if epoch == start_epoch else 0
            sampler.set_epoch(epoch)
            sampler.set_start(skip_iters * accum * micro)
            if hasattr(train_dataset, "set_epoch"):
                train_dataset.set_epoch(epoch)
            _set_train_mode(model, frozen_norms)
            logger.start_epoch(
                epoch + 1, total_epochs, iters_per_epoch * t.batch_size, skip_iters * t.batch_size
            )
            t0 = time.perf_counter()
            sums = [0.0, 0.0, 0.0]  # loss*n, top1, n (this process)
            if skip_iters and resumed_sums is not None and main:
                sums = list(resumed_sums)
            window_loss, window_n, window_t0, window_clips = 0.0, 0, time.perf_counter(), 0
            session_clips = 0  # clips this process trained in this epoch since t0 (throughput)
            it = skip_iters
            micro_i = 0
            optimizer.zero_grad(set_to_none=True)
            for batch in train_loader:
                if it >= iters_per_epoch or (t.max_steps and step >= t.max_steps):
                    break
                if batch.get("bad_items"):
                    note_bad(batch["bad_items"])
                inputs = _model_inputs(batch, spec)
                x = _to_device(batch, inputs, device)
                target = batch["label"].to(device, non_blocking=device.type == "cuda")
                head_targets = {
                    h: batch[f"label_{h}"].to(device) for h in head_names if f"label_{h}" in batch
                }
                last_micro = micro_i == accum - 1
                sync = contextlib.nullcontext() if (last_micro or not distributed) else model.no_sync()
                with sync:
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        out = model(x)
                    loss, logits, _ = compute_loss(
                        out, target, t.label_smoothing, t.loss_weights, head_targets=head_targets or None
                    )
                    scaler.scale(loss / accum).backward()
                loss_value = float(loss.detach())
                n = target.shape[0]
                bad_loss = not math.isfinite(loss_value)
                if distributed:
                    bad_loss = bool(dist_utils.all_reduce_sum([float(bad_loss)], device)[0] > 0)
                if bad_loss:
                    raise NonFiniteLossError(
                        f"the training loss became {loss_value} at epoch {epoch + 1}, iteration {it + 1} "
                        f"(step {step + 1}); stopped. {last_dir} holds the last good checkpoint. Lower "
                        "train.lr, add warmup (train.warmup_epochs), clip gradients (train.clip_grad_norm) "
                        "or disable mixed precision (train.amp=none)."
                    )
                sums[0] += loss_value * n
                if head_targets and isinstance(out, dict):  # each clip scored by its own task's head
                    for h, h_logits in head_outputs(out, list(head_targets)).items():
                        mask = head_targets[h] >= 0
                        scores = clip_scores(h_logits.detach().float())
                        sums[1] += _correct(scores[mask], head_targets[h][mask], 1)
                else:
                    sums[1] += _correct(clip_scores(logits.detach().float()), target, 1)
                del out, logits, loss, x  # free activations before the next batch is loaded
                sums[2] += n
                session_clips += n
                window_loss += loss_value
                window_n += 1
                window_clips += n * world
                micro_i += 1
                if not last_micro:
                    continue
                micro_i = 0
                if t.clip_grad_norm:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                step += 1
                it += 1
                lr = optimizer.param_groups[0]["lr"]
                logger.advance(t.batch_size, loss_value, lr)
                if step % t.log_every == 0:
                    now = time.perf_counter()
                    logger.log_step(
                        {
                            "epoch": epoch + 1,
                            "step": step,
                            "lr": lr,
                            "loss": window_loss / window_n,
                            "clips_per_s": window_clips / max(now - window_t0, 1e-9),
                        }
                    )
                    window_loss, window_n, window_t0, window_clips = 0.0, 0, now, 0
                if t.checkpoint_every_iters and step % t.checkpoint_every_iters == 0 and it < iters_per_epoch:
                    # the running sums of all processes; rank 0 continues them on resume
                    save(last_dir, epoch, it, {}, epoch_sums=dist_utils.all_reduce_sum(sums, device).tolist())
            logger.end_epoch()
            elapsed = time.perf_counter() - t0
            train_sums = dist_utils.all_reduce_sum([*sums, session_clips], device).tolist()
            clips = max(train_sums[2], 1.0)
            row = {
                "epoch": epoch + 1,
                "step": step,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_sums[0] / clips,
                "train_top1": 100.0 * train_sums[1] / clips,
                "clips_per_s": train_sums[3] / max(elapsed, 1e-9),
                "epoch_time_s": elapsed,
            }
            if val_loader is not None and ((epoch + 1) % t.val_every == 0 or epoch + 1 == total_epochs):
                # the module inside DDP: its forward has no collectives, and ranks may hold
                # different numbers of validation batches (sharding without padding)
                if head_val_loaders:
                    row.update(_validate_heads(unwrap(model), head_val_loaders, device, amp_dtype, spec))
                else:
                    row.update(validate(unwrap(model), val_loader, device, amp_dtype, spec))
                row.pop("val_clips", None)
            bad_union = _gather_bad(bad_items)
            note_bad(bad_union)
            row["bad_items"] = len(bad_items)
            value = row.get(monitor)
            schedule.step_metric(value)
            logger.log_epoch(row)
            improved = value is not None and (
                best_metric is None or (value > best_metric if monitor_mode == "max" else value < best_metric)
            )
            if improved:
                best_metric = float(value)
            metrics = {k: v for k, v in row.items() if k not in ("epoch", "step")}
            save(last_dir, epoch + 1, 0, metrics)
            if improved:
                save(best_dir, epoch + 1, 0, metrics)
            log.info(
                "epoch %d/%d: %s",
                epoch + 1,
                total_epochs,
                ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)),
            )
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
            dist_utils.barrier()
        logger.close()
        result = RunResult(
            run_dir=run_dir,
            last_checkpoint=last_dir,
            best_checkpoint=best_dir if best_metric is not None else None,
            history=list(logger.epochs),
            best_metric=best_metric,
            monitor=monitor,
            class_names=class_names,
            bad_items=bad_items,
            epochs_completed=total_epochs,
            steps=step,
        )
        if main:
            atomic_write_json(run_dir / "bad_items.json", bad_items)
            atomic_write_json(
                run_dir / "summary.json",
                {
                    "status": "completed",
                    "run_dir": str(run_dir),
                    "last_checkpoint": str(last_dir),
                    "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
                    "monitor": monitor,
                    "best_metric": best_metric,
                    "epochs": total_epochs,
                    "steps": step,
                    "bad_items": bad_items,
                    "history": result.history,
                },
            )
        return result
    except NonFiniteLossError as e:
        if main:
            atomic_write_json(
                run_dir / "summary.json",
                {"status": "diverged", "message": str(e), "last_checkpoint": str(last_dir)},
            )
        log.error("%s", e)
        raise
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # process-wide: leave it as found
        if handler is not None:
            logging.getLogger("deepvideo").removeHandler(handler)
            handler.close()


def _gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` in a single process)."""
    if not dist_utils.is_distributed():
        return [obj]
    gathered = [None] * dist_utils.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _gather_bad(items: list[dict]) -> list[dict]:
    """All processes' bad items (rank order), so rank 0 can report them."""
    return [it for part in _gather_objects(items) for it in (part or [])]


def _version() -> str:
    from deepvideo import __version__

    return __version__


def main_train(
    config_path: str | os.PathLike | None,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool | None = None,
) -> RunResult:
    """Load the recipe with overrides and train; works under torchrun (DDP) and alone."""
    cfg = load_config(config_path, list(overrides))
    try:
        return train(cfg, progress=progress)
    finally:
        dist_utils.cleanup()


def main(argv: list[str] | None = None) -> int:
    """``python -m deepvideo.engine.trainer RECIPE.yaml key=value ...``"""
    parser = argparse.ArgumentParser(
        prog="python -m deepvideo.engine.trainer", description="Train a deepvideo model from a YAML recipe."
    )
    parser.add_argument("config", help="YAML recipe (configs/...)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=0.01")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = main_train(args.config, args.overrides, progress=False if args.no_progress else None)
    except (ConfigError, CheckpointError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            json.dumps(
                {
                    "run_dir": str(result.run_dir),
                    "last_checkpoint": str(result.last_checkpoint),
                    "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
                    "best_metric": result.best_metric,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
