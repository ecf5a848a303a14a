"""Run configuration: YAML recipes (OmegaConf) validated into dataclasses.

A recipe has five parts: top-level run fields (``name``, ``task``, ``output_dir``, ``seed``, ...),
``model``, ``data``, ``train`` and ``eval``. :func:`load_config` merges, in order, the
dataclass defaults, the YAML file and ``key=value`` overrides from the command line
(``train.lr=0.01 model.spec.crop_size=112``) and returns a :class:`Config`. A key that no
dataclass declares is an error naming the key and where it came from; free-form mappings
(``data.train``, ``data.multitask``, ``model.kwargs``, ``model.spec``, ``train.loss_weights``) accept any key
and are checked by the code that reads them.

Every run writes its resolved configuration to ``<run_dir>/config.yaml`` together with
``run_info.json`` (package version, git revision or ``"unknown"``, torch version, world size),
see :func:`write_run_files`.

The ``eval`` section belongs to the evaluation code (``engine/evaluate.py``): number of
temporal views, spatial test crops, flips and how view scores are aggregated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from deepvideo.io.atomic import atomic_write_text


class ConfigError(ValueError):
    """A recipe or an override is invalid; the message names the key and the source."""


@dataclass
class ModelConfig:
    name: str = ""  # registered model name, required (``deepvideo models``)
    num_classes: int | None = None  # None: the number of classes of the training set
    kwargs: dict[str, Any] = field(default_factory=dict)  # builder overrides
    spec: dict[str, Any] = field(default_factory=dict)  # InputSpec overrides, e.g. crop_size
    # Modules or .py files registering models or tasks, imported (their code runs) when training from
    # this recipe; loading a checkpoint never imports the list it stores unless allowed
    # (--allow-imports, docs/checkpoints.md).
    imports: list[str] = field(default_factory=list)
    # Weights to start from (engine/build.py, load_pretrained): a deepvideo checkpoint (folder,
    # file in it or run folder), or {checkpoint: ..., exclude: [regex, ...], strict: true}. Loading
    # no tensor, or a tensor of another shape (e.g. a classifier of another size), is an error
    # naming the tensors unless the entry excludes them (exclude: ['head\\.']: regular expressions
    # matched at the start of the model's tensor names) or says strict: false (then a warning).
    pretrained: Any = None
    # Parts initialized from other runs' checkpoints, e.g. a fusion net's towers from the two
    # streams: [{checkpoint: runs/flow, source: "backbone.", target: "temporal."}, ...]; the tensors
    # whose names start with ``source`` (a regular expression) are loaded with that start replaced by
    # ``target`` (``\1`` groups allowed), where the model has that name; ``exclude`` and ``strict``
    # as for ``pretrained`` (no tensor loaded, or a shape mismatch, is an error by default).
    init_from: list[dict[str, Any]] = field(default_factory=list)
    sub_batch_bn: int = 0  # >0: BN statistics over sub-batches of this many clips (ST-ResNet)


@dataclass
class DataConfig:
    # Each split is the keyword arguments of deepvideo.data.formats.load_dataset, with
    # "format" naming the format, e.g. {format: ucf101, root: data/UCF101, split: 1, subset: train}.
    train: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)  # empty: no validation
    test: dict[str, Any] = field(default_factory=dict)  # used by `deepvideo test`; empty: val
    # Multi-task training (one net, one classifier head per dataset, losses summed): head name ->
    # {train: load_dataset kwargs, val: ... (optional), flow_root: ..., video_root: ... (optional)}.
    # The training set is the heads' train sets concatenated; the first head is the eval head.
    multitask: dict[str, Any] = field(default_factory=dict)
    video_root: str | None = None  # root the flow_root mirrors; default: data.train.root
    flow_root: str | None = None  # stored flow <flow_root>/<video path without suffix>/
    flow_method: str = "dis"  # computed on the fly (slow) when no stored flow is found
    short_side: int | None = None  # decode-time resize of the shorter side
    recipe: str = "standard"  # transform recipe: standard | two_stream | fusion
    short_policy: str = "loop"  # clips longer than the video: loop | repeat_last | pad
    flip: bool = True  # random horizontal flip in training (off where a flip changes the label)
    num_workers: int = 2
    start_method: str | None = None  # DataLoader workers: None (platform default), forkserver, spawn
    max_retries: int = 10  # bad videos skipped per item before giving up


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int = (
        0  # >0: stop after this many optimizer steps (epochs = ceil(max_steps / steps per epoch))
    )
    batch_size: int = 8  # global clips per optimizer step (all processes, all accumulation steps)
    grad_accum: int = 1  # micro-batches per optimizer step
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    no_decay_norm_bias: bool = True  # no weight decay on biases and norm parameters
    schedule: str = "cosine"  # constant | step | cosine | plateau
    milestones: list[int] = field(default_factory=list)  # step: epochs where lr *= gamma
    milestone_steps: list[int] = field(default_factory=list)  # step: optimizer steps where lr *= gamma
    gamma: float = 0.1
    min_lr: float = 0.0  # cosine floor
    warmup_epochs: float = 0.0  # linear warmup length (fractions allowed)
    warmup_start_factor: float = 0.01  # lr at iteration 0 = lr * factor
    plateau_patience: int = 2
    plateau_factor: float = 0.1
    plateau_threshold: float = 1e-4
    amp: str = "auto"  # auto | none | bf16 | fp16  (auto: fp16 on CUDA, none on CPU)
    clip_grad_norm: float | None = None
    label_smoothing: float = 0.0
    loss_weights: dict[str, float] = field(default_factory=dict)  # {"aux_x": 0.3}; default 1.0
    freeze: list[str] = field(default_factory=list)  # fnmatch patterns on parameter names
    finetune_top_k: int = 0  # >0: train only the last k top-level children having parameters
    frozen_bn_eval: bool = True  # BN layers whose parameters are all frozen keep their statistics
    monitor: str = "val_top1"  # metric choosing checkpoints/best: val_<metric> or train_<metric> of the task
    monitor_mode: str = "auto"  # auto (min for *loss / *error metrics, else max) | min | max
    val_every: int = 1  # epochs between validations
    log_every: int = 10  # iterations between steps.csv / TensorBoard rows
    checkpoint_every_iters: int = 0  # >0: also save checkpoints/last every N iterations
    find_unused_parameters: bool = False  # DDP: models with branches unused in some steps
    max_iters_per_epoch: int = 0  # >0: cap (smoke tests, benchmarks)


@dataclass
class EvalConfig:
    """Read by engine/evaluate.py (test protocol); listed here so recipes are validated."""

    num_clips: int = 1  # temporal views per video
    test_crops: int = 1  # spatial crops per view: 1 (centre), 3 or 10 (corners+centre, flipped)
    flip: bool = False  # add horizontally flipped views
    aggregation: str = "mean"  # mean | max | softmax (= softmax_mean: mean of softmax) of view scores
    batch_size: int = 4  # videos per batch
    checkpoint: str = "best"  # best | last | a checkpoint path
    short_side: int | None = None  # resize before test crops; None: data.short_side
    fully_convolutional: bool = False  # score the whole frame (ST-ResNet test protocol)


@dataclass
class Config:
    name: str = "run"
    task: str = "recognition"  # what is trained (engine/task.py registry): recognition (default)
    output_dir: str = "runs/${name}"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:1
    deterministic: bool = False  # torch.use_deterministic_algorithms + seeded everything
    resume: bool = False  # continue from <output_dir>/checkpoints/last; an error if it is missing or damaged
    resume_or_start: bool = False  # resume when <output_dir> holds checkpoints, else start a new run
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


_CHOICES = {
    ("train", "optimizer"): ("sgd", "adamw"),
    ("train", "schedule"): ("constant", "step", "cosine", "plateau"),
    ("train", "amp"): ("auto", "none", "bf16", "fp16"),
    ("train", "monitor_mode"): ("auto", "min", "max"),
    ("eval", "aggregation"): ("mean", "max", "softmax", "softmax_mean"),
    ("data", "short_policy"): ("loop", "repeat_last", "pad"),
}


def _check(cfg: Config) -> None:
    """Value checks OmegaConf's type validation cannot express."""
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            raise ConfigError(f"{section}.{key}={value!r} is not one of {', '.join(choices)}")
    t = cfg.train
    if not re.fullmatch(r"(val|train)_[a-z0-9_]+", t.monitor):
        raise ConfigError(f"train.monitor={t.monitor!r}: name a metric val_<name> or train_<name> "
                          "(e.g. val_top1, val_loss, val_center_error)")
    positive = {
        "train.epochs": t.epochs,
        "train.batch_size": t.batch_size,
        "train.grad_accum": t.grad_accum,
        "eval.num_clips": cfg.eval.num_clips,
        "eval.batch_size": cfg.eval.batch_size,
        "train.log_every": t.log_every,
        "train.val_every": t.val_every,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if t.lr <= 0:
        raise ConfigError(f"train.lr must be positive, got {t.lr}")
    if not 0.0 <= t.label_smoothing < 1.0:
        raise ConfigError(f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}")
    if t.warmup_epochs < 0 or not 0.0 < t.warmup_start_factor <= 1.0:
        raise ConfigError("train.warmup_epochs must be >= 0 and train.warmup_start_factor in (0, 1]")
    if t.batch_size % t.grad_accum:
        raise ConfigError(
            f"train.batch_size={t.batch_size} is not divisible by train.grad_accum={t.grad_accum}"
        )
    if cfg.eval.test_crops not in (1, 3, 10):
        raise ConfigError(f"eval.test_crops must be 1, 3 or 10, got {cfg.eval.test_crops}")
    if cfg.model.sub_batch_bn < 0:
        raise ConfigError(f"model.sub_batch_bn must be >= 0, got {cfg.model.sub_batch_bn}")
    if not cfg.model.name:
        raise ConfigError("model.name is required (see `deepvideo models`)")


def _known_keys(full_key: str) -> list[str]:
    """Field names of the dataclass holding ``full_key`` (for the unknown-key message)."""
    cls = Config
    for part in full_key.split(".")[:-1]:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields or not dataclasses.is_dataclass(fields[part].default_factory):
            break
        cls = fields[part].default_factory
    return [f.name for f in dataclasses.fields(cls)]


def _merge(base: DictConfig, other, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except (ConfigKeyError, ConfigAttributeError) as e:
        key = str(getattr(e, "full_key", None) or getattr(e, "key", None) or "?")
        raise ConfigError(
            f"{source}: unknown configuration key {key!r} (known keys here: {', '.join(_known_keys(key))})"
        ) from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        raise ConfigError(f"{source}: invalid value for {key!r}: {msg}") from None


def _glob_list(key: str, value: str) -> DictConfig | None:
    """``key=[a, b*]`` as a list of strings when YAML cannot read it (``*x`` is a YAML alias)."""
    inner = value.strip()
    if not (inner.startswith("[") and inner.endswith("]")) or any(c in inner[1:-1] for c in "[]{}"):
        return None
    items = [v.strip() for v in inner[1:-1].split(",")] if inner[1:-1].strip() else []
    if any(not v for v in items):
        return None
    items = [v[1:-1] if len(v) > 1 and v[0] == v[-1] and v[0] in "'\"" else v for v in items]
    conf = OmegaConf.create()
    OmegaConf.update(conf, key, items, force_add=True)
    return conf


def parse_override(item: str) -> DictConfig:
    """One ``key=value`` override as a config (the value read as YAML).

    A list whose items YAML cannot read, e.g. glob patterns ``train.freeze=[*norm*, head.*]``
    (``*`` starts a YAML alias), is read as a list of strings. Raises :class:`ConfigError`.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=0.01)")
    try:
        return OmegaConf.from_dotlist([item])
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        key, value = item.split("=", 1)
        conf = _glob_list(key.strip(), value)
        if conf is not None:
            return conf
        reason = str(e).splitlines()[0] if isinstance(e, OmegaConfBaseException) else (
            f"{getattr(e, 'problem', None) or 'not valid YAML'}; quote a value starting with * or &")
        raise ConfigError(f"override {item!r}: {reason}") from None


def load_config(
    path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (), **values
) -> Config:
    """Defaults <- YAML ``path`` <- ``overrides`` (``["train.lr=0.1", ...]``) <- ``values``.

    ``values`` are nested dicts for programmatic use (``load_config(model={"name": "x"})``).
    Raises :class:`ConfigError` naming the file or override at fault.
    """
    merged = OmegaConf.structured(Config)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        try:
            loaded = OmegaConf.load(path)
        except Exception as e:  # yaml.YAMLError carries line/column in its message
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{path}: a recipe must be a mapping of sections")
        merged = _merge(merged, loaded, str(path))
    for item in overrides:
        merged = _merge(merged, parse_override(item), f"override {item!r}")
    if values:
        merged = _merge(merged, OmegaConf.create(values), "arguments")
    try:
        OmegaConf.resolve(merged)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path or 'configuration'}: {str(e).splitlines()[0]}") from None
    _check(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    """Plain nested dict (JSON/YAML serializable)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def config_from_dict(data: dict) -> Config:
    """Inverse of :func:`config_to_dict` (used when reading checkpoints); validates keys."""
    return OmegaConf.to_object(
        _merge(OmegaConf.structured(Config), OmegaConf.create(data), "checkpoint configuration")
    )


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def git_revision(path: str | os.PathLike | None = None) -> str:
    """The git commit of the source tree (``+dirty`` if modified), or ``"unknown"``."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_run_files(cfg: Config, run_dir: str | os.PathLike, extra: dict | None = None) -> dict:
    """Write ``config.yaml`` (resolved) and ``run_info.json`` into ``run_dir``; return the info."""
    import torch

    from deepvideo import __version__

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    info = {
        "deepvideo_version": __version__,
        "git_revision": git_revision(),
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    atomic_write_text(run_dir / "run_info.json", json.dumps(info, indent=2) + "\n")
    return info
