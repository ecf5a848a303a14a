"""From a configuration to the objects of a run: model, datasets, loaders; checkpoints to models.

::

    model = build_model(cfg, num_classes, heads=None)   # registry + model.kwargs/spec/sub_batch_bn,
                                                        # then model.pretrained and model.init_from
    index = load_index(cfg, "test")                      # DatasetIndex of data.test (else data.val)
    kw = dataset_kwargs(cfg, "val", "val", spec)         # ClipDataset keyword arguments
    dataset = build_dataset(cfg, "test", spec, mode="test", class_names=names)
    model, cfg, class_names, meta = load_checkpoint(path, device="cpu")   # imports nothing it names

Plugins (``model.imports``: dotted module names or ``.py`` files that register models or tasks)
are imported from the user's own recipe or command line only. :func:`build_model` imports a
recipe's list; :func:`load_checkpoint` never imports what a checkpoint lists unless told to
(``allow_imports=True``, the command line's ``--allow-imports``), so a run folder from
elsewhere cannot run code when it is tested or used for prediction.

Dataset modes: ``train`` (random clips, ``data.flip`` augmentation), ``val`` (validation
during training: one centre view per video) and ``test`` (``eval.num_clips`` temporal views x
``eval.test_crops`` crops, x2 with ``eval.flip``; with ``eval.fully_convolutional`` whole
frames, see :func:`full_frame_transform`).

Loading other checkpoints' weights (:func:`load_pretrained`) is loud: an entry that loads no
tensor, or whose tensors do not fit the model's shapes, is a :class:`ConfigError` naming the
tensors, unless it says ``strict: false`` (then a warning lists them) or leaves them out with
``exclude`` (regular expressions matched at the start of the model-side names), e.g.
fine-tuning with a classifier of another size::

    model:
      pretrained: {checkpoint: runs/kinetics/checkpoints/best, exclude: ['head\\.']}
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import os
import re
import sys
from pathlib import Path

import torch
from torch import nn

from deepvideo.engine.checkpoint import (
    META,
    CheckpointError,
    load_weights,
    read_meta,
    read_weights,
    resolve_checkpoint,
)
from deepvideo.engine.config import Config, ConfigError, config_from_dict
from deepvideo.spec import InputSpec

log = logging.getLogger("deepvideo.engine")

LOAD_KEYS = {"checkpoint", "source", "target", "strict", "exclude"}
MODES = ("train", "val", "test")


def import_model_modules(imports: list[str] | tuple[str, ...]) -> None:
    """Import modules (dotted names) or ``.py`` files that register extra models or tasks.

    This runs their code: call it only with the user's own list (a recipe, the command line),
    never with one read from a checkpoint that is not trusted.
    """
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


def spec_overrides(values: dict) -> dict:
    """InputSpec keyword arguments from config/JSON values (lists become tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def build_model(cfg: Config, num_classes: int, heads: dict[str, int] | None = None) -> nn.Module:
    """The registered model ``cfg.model.name`` with ``num_classes`` outputs.

    ``heads`` (multi-task, ``{head name: number of classes}``) is passed to the builder as its
    ``heads`` argument. Imports ``model.imports`` (the recipe's own plugins), applies
    ``model.kwargs`` (builder overrides), ``model.spec`` (InputSpec overrides),
    ``model.sub_batch_bn`` and then ``model.pretrained`` and ``model.init_from``
    (:func:`load_pretrained`).
    """
    import_model_modules(cfg.model.imports)
    model = _create_model(cfg, num_classes, heads)
    load_initial_weights(model, cfg)
    return model


def load_initial_weights(model: nn.Module, cfg: Config) -> None:
    """``model.pretrained`` and then each ``model.init_from`` entry loaded into ``model``
    (:func:`load_pretrained`); also for the models a task builds itself."""
    entries = [("model.pretrained", cfg.model.pretrained)] if cfg.model.pretrained else []
    entries += [(f"model.init_from[{i}]", e) for i, e in enumerate(cfg.model.init_from)]
    for where, entry in entries:
        load_pretrained(model, load_entry(entry, where), where)


def _create_model(cfg: Config, num_classes: int, heads: dict[str, int] | None) -> nn.Module:
    """``cfg.model`` built from the registry with its kwargs, spec and sub-batch BN (no weights)."""
    from deepvideo.models.registry import create_model, get_model_info

    try:
        get_model_info(cfg.model.name)
    except KeyError as e:
        raise ConfigError(f"model.name={cfg.model.name!r}: {e.args[0]}") from None
    kwargs = dict(cfg.model.kwargs)
    if heads:
        kwargs["heads"] = dict(heads)
    model = create_model(cfg.model.name, num_classes=num_classes, **kwargs)
    if cfg.model.spec:
        try:
            model.input_spec = model.input_spec.replace(**spec_overrides(dict(cfg.model.spec)))
        except TypeError as e:
            raise ConfigError(f"model.spec: {e} (fields: {', '.join(InputSpec().to_dict())})") from None
    if cfg.model.sub_batch_bn:
        from deepvideo.nn.norm import convert_sub_batch_norm

        convert_sub_batch_norm(model, cfg.model.sub_batch_bn)
    return model


def load_entry(value, where: str) -> dict:
    """A ``model.pretrained`` / ``model.init_from`` entry as a dict (a plain path is ``checkpoint``)."""
    if isinstance(value, (str, os.PathLike)):
        return {"checkpoint": str(value)}
    entry = dict(value or {})
    unknown = set(entry) - LOAD_KEYS
    if unknown or "checkpoint" not in entry:
        raise ConfigError(
            f"{where}: give 'checkpoint' and optionally 'source'/'target' prefixes, 'strict' and 'exclude'"
            + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else "")
        )
    if isinstance(entry.get("exclude"), str):
        entry["exclude"] = [entry["exclude"]]
    return entry


def _renamed_state(folder: Path, source: str, target: str, exclude: list[str]) -> tuple[dict, list[str]]:
    """The checkpoint's tensors under ``source`` renamed to ``target``; the excluded names apart."""
    pattern = re.compile(source)
    state = {pattern.sub(target, k, count=1): v for k, v in read_weights(folder).items() if pattern.match(k)}
    drop = [re.compile(e) for e in exclude]
    excluded = sorted(k for k in state if any(d.match(k) for d in drop))
    return {k: v for k, v in state.items() if k not in excluded}, excluded


def _listing(items: list[str], limit: int = 6) -> str:
    return ", ".join(items[:limit]) + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def load_pretrained(model: nn.Module, entry: dict, where: str = "model.pretrained") -> list[str]:
    """Load another checkpoint's tensors into ``model``; return the names loaded.

    ``entry``: ``checkpoint`` (folder, file in it or run folder); ``source`` (regular
    expression, default ``""``): only tensors whose names start with it, renamed by replacing
    that start with ``target`` (``\\1`` groups allowed); ``exclude``: regular expressions of
    model-side names left at their initialization; ``strict`` (default true). 2D conv kernels
    load into 3D ones by inflation (replicated over the T frames, divided by T; I3D).
    Checkpoint tensors whose names the model does not have are skipped (a prefix mapping
    covers part of a model). Loading no tensor at all, or a tensor whose shape differs from
    the model's, is a :class:`ConfigError` naming them, a warning when ``strict`` is false.
    """
    source, target = entry.get("source", ""), entry.get("target", "")
    try:
        folder = resolve_checkpoint(entry["checkpoint"])
        state, excluded = _renamed_state(folder, source, target, list(entry.get("exclude") or []))
    except CheckpointError as e:
        raise ConfigError(f"{where}: {e}") from None
    own = model.state_dict()
    usable, mismatched = {}, []
    for k, v in state.items():
        if k not in own:
            continue
        if v.dim() == 4 and own[k].dim() == 5 and own[k].shape[:2] + own[k].shape[3:] == v.shape:
            t = own[k].shape[2]  # a 2D kernel into a 3D one: inflated, replicated over time / T (I3D)
            v = v.unsqueeze(2).expand(-1, -1, t, -1, -1) / t
        if own[k].shape == v.shape:
            usable[k] = v
        else:
            mismatched.append(f"{k} {tuple(v.shape)} vs the model's {tuple(own[k].shape)}")
    problems = []
    if not usable:
        problems.append(f"no tensor under {source!r} matches the model's {target!r} tensors"
                        if source or target else "no tensor matches the model's names")
    if mismatched:
        problems.append(f"{len(mismatched)} tensor(s) do not fit the model's shapes: {_listing(mismatched)}")
    if problems:
        message = f"{where}: {folder}: {'; '.join(problems)}"
        if entry.get("strict", True):
            raise ConfigError(message + "; leave them out with exclude: [<regex>] or load the rest with "
                              "strict: false")
        log.warning("%s (strict: false: left at their initialization)", message)
    model.load_state_dict(usable, strict=False)
    skipped = sorted(set(state) - set(own))
    log.info("%s: initialized %d tensors from %s; excluded %d; %d not in the model (%s)", where, len(usable),
             folder, len(excluded), len(skipped), ", ".join(skipped[:4]))
    return sorted(usable)


def split_section(cfg: Config, split: str) -> dict:
    """``data.<split>`` (``data.test`` falls back to ``data.val``)."""
    section = dict(getattr(cfg.data, split))
    if split == "test" and not section:
        section = dict(cfg.data.val)
    return section


def load_index(cfg: Config, split: str):
    """The DatasetIndex of ``data.<split>`` (``train``, ``val`` or ``test``; test falls back to val)."""
    spec = split_section(cfg, split)
    if not spec:
        raise ConfigError(
            f"data.{split} is empty: give its load_dataset arguments, e.g. "
            f"data.{split}.format=folder data.{split}.root=videos/"
        )
    if "format" not in spec:
        raise ConfigError(f"data.{split} needs a 'format' (folder, ucf101, hmdb51, kinetics, ...)")
    from deepvideo.data.formats import FORMATS, FormatOptionError, load_dataset

    fmt = spec.pop("format")
    if str(fmt).replace("-", "_").lower() not in FORMATS:
        raise ConfigError(f"data.{split}.format={fmt!r} is not a dataset format; choose one of "
                          f"{', '.join(sorted(FORMATS))}")
    try:
        return load_dataset(fmt, **spec)
    except FormatOptionError as exc:
        raise ConfigError(f"data.{split}: {exc}") from None


def full_frame_transform(spec: InputSpec, short_side: int | None = None, flip: bool = False):
    """Fully convolutional test views: the whole frame resized like training, no crop.

    The short side becomes ``short_side`` (default ``crop_size * 256 / 224``, the scale the
    training crops were taken at); normalisation is that of the cropped test transforms;
    ``flip`` adds the mirrored frame (flow u negated) as a second view.
    """
    from deepvideo.data.transforms import Compose, FlipViews, Normalize, ResizeShortSide

    side = short_side or round(spec.crop_size * 256 / 224)
    steps = [ResizeShortSide(side)]
    if flip:
        steps.append(FlipViews(has_view_dim=False))
    steps.append(Normalize(spec.mean, spec.std))
    return Compose(steps, num_views=2 if flip else 1)


def dataset_kwargs(cfg: Config, split: str, mode: str, spec: InputSpec | None = None) -> dict:
    """Keyword arguments of :class:`~deepvideo.data.dataset.ClipDataset` (all but index and spec)
    for ``data.<split>`` in ``mode`` (``train``, ``val`` or ``test``, see the module docstring).

    ``spec`` is needed for fully convolutional test views (their transform).
    """
    if mode not in MODES:
        raise ValueError(f"dataset mode must be one of {', '.join(MODES)}, got {mode!r}")
    test = mode == "test"
    section = split_section(cfg, split) or cfg.data.train
    kw = {
        "train": mode == "train",
        "num_clips": cfg.eval.num_clips if test else 1,
        "short_side": (cfg.eval.short_side or cfg.data.short_side) if test else cfg.data.short_side,
        "short_policy": cfg.data.short_policy,
        "flow_root": cfg.data.flow_root,
        "video_root": cfg.data.video_root or section.get("root"),
        "flow_method": cfg.data.flow_method,
        "seed": cfg.seed,
        "max_retries": cfg.data.max_retries,
    }
    if test and cfg.eval.fully_convolutional:
        if spec is None:
            raise ValueError("fully convolutional test views need the model's InputSpec")
        kw["transform"] = full_frame_transform(spec, kw["short_side"], cfg.eval.flip)
        return kw
    kw["recipe"] = cfg.data.recipe
    kw["test_crops"] = cfg.eval.test_crops if test else 1
    kw["flip"] = cfg.eval.flip if test else (cfg.data.flip if mode == "train" else False)
    return kw


def build_dataset(cfg: Config, split: str, spec: InputSpec, mode: str | None = None, *,
                  train: bool | None = None, class_names: list[str] | None = None, index=None):
    """ClipDataset of ``data.<split>`` in ``mode`` (default: ``train`` for the train split,
    ``test`` for the test split, else ``val``; ``train=False`` picks the default non-train mode).

    ``class_names``: the model's classes, checked against the index's.
    """
    from deepvideo.data.dataset import ClipDataset

    if mode is None:
        mode = "train" if (train if train is not None else split == "train") else (
            "test" if split == "test" else "val")
    index = index if index is not None else load_index(cfg, split)
    if class_names is not None and list(index.classes) != list(class_names):
        raise ConfigError(
            f"data.{split} has classes {list(index.classes)[:5]}... which differ from the "
            f"model's {list(class_names)[:5]}...; use the same class list"
        )
    return ClipDataset(index, spec, **dataset_kwargs(cfg, split, mode, spec))


def task_config(cfg: Config, head: str) -> Config:
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


def build_multitask_datasets(cfg: Config, split: str, spec: InputSpec, train: bool,
                             indexes: dict | None = None) -> dict:
    """``{head: ClipDataset}`` of ``data.multitask.<head>.<split>`` (heads without that split left out).

    ``indexes`` (``{head: DatasetIndex}``) avoids reading annotation files twice.
    """
    out = {}
    for head in cfg.data.multitask:
        head_cfg = task_config(cfg, head)
        if getattr(head_cfg.data, split):
            index = (indexes or {}).get(head)
            out[head] = build_dataset(head_cfg, split, spec, "train" if train else "val", index=index)
    return out


def make_loader(cfg: Config, dataset, batch_size: int, train: bool, device: torch.device,
                rank: int = 0, world_size: int = 1):
    """:func:`~deepvideo.data.dataset.build_loader` with the run's workers, seed and start method."""
    from deepvideo.data.dataset import build_loader

    return build_loader(dataset, batch_size, train=train, num_workers=cfg.data.num_workers, seed=cfg.seed,
                        rank=rank, world_size=world_size, device=device,
                        multiprocessing_context=cfg.data.start_method)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                    allow_imports: bool = False):
    """``(model, cfg, class_names, meta)`` from a checkpoint (folder, file in it, or run folder).

    The model is rebuilt from the stored configuration (registry name, builder overrides,
    InputSpec) and is returned in eval mode on ``device``; ``meta`` is checkpoint.json.
    Nothing a checkpoint names is imported (a checkpoint folder from elsewhere must not run
    code): the model must be registered already (built in, or imported by the caller), unless
    ``allow_imports`` (the command line's ``--allow-imports``) trusts the checkpoint's
    ``model.imports``. A damaged file is a :class:`CheckpointError` naming it.
    """
    folder = resolve_checkpoint(path)
    meta = read_meta(folder)
    try:
        cfg = config_from_dict(meta["config"])
        class_names = [str(c) for c in meta["class_names"]]
    except KeyError as e:
        raise CheckpointError(f"{folder / META}: has no {e.args[0]!r}") from None
    except ConfigError as e:
        raise CheckpointError(f"{folder / META}: {e}") from None
    state = read_weights(folder)  # a damaged file fails before the model is built
    _checkpoint_imports(folder, cfg, allow_imports)
    cfg.model.pretrained, cfg.model.init_from = None, []
    head_classes = meta.get("head_class_names") or {}
    heads = {h: len(c) for h, c in head_classes.items()} or None
    model = _create_model(cfg, cfg.model.num_classes or len(class_names), heads)
    if meta.get("input_spec"):
        model.input_spec = InputSpec(**spec_overrides(meta["input_spec"]))
    load_weights(model, folder, strict=True, state=state)
    model.to(device).eval()
    return model, cfg, class_names, meta


def _checkpoint_imports(folder: Path, cfg: Config, allow_imports: bool) -> None:
    """Import the checkpoint's ``model.imports`` if allowed; else the model must be registered."""
    from deepvideo.models.registry import get_model_info

    imports = list(cfg.model.imports)
    if imports and allow_imports:
        import_model_modules(imports)
    try:
        get_model_info(cfg.model.name)
    except KeyError:
        if imports and not allow_imports:
            raise CheckpointError(
                f"{folder / META}: model {cfg.model.name!r} is not registered and the checkpoint names "
                f"code to import for it (model.imports: {', '.join(imports)}); a checkpoint is not allowed "
                "to run code: if you trust these files, pass --allow-imports (allow_imports=True)") from None
        raise CheckpointError(f"{folder / META}: model {cfg.model.name!r} is not registered (see `deepvideo "
                              "models`); import the module that registers it first") from None
    if imports and not allow_imports:
        log.info("%s: model.imports (%s) not imported: %s is registered", folder / META, ", ".join(imports),
                 cfg.model.name)
