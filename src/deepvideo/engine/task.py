"""What is trained: the task protocol and its registry.

The loop (:mod:`deepvideo.engine.loop`) owns everything task-independent (device, seed,
DDP, AMP, accumulation, clipping, schedule, freezing, the non-finite guard, logging,
checkpoints and exact resume, the run's summary); a task supplies the rest. One task object
is made per run from the configuration (``cfg.task``, default ``recognition``)::

    task = create_task(cfg)
    task.setup(train_dataset=None, class_names=None)   # read the indexes / adopt given data
    model = task.build_model()                         # unless the caller gave one
    train_set, val_sets = task.datasets(spec, train_dataset, val_dataset)   # {name: dataset}
    task.check_model(model)
    out = task.step(model, batch, device, autocast)    # StepOutput: losses["loss"] is the total
    row = task.evaluate(model, {name: loader}, device, amp_dtype, spec)   # {"val_loss": ...}
    task.checkpoint_meta()                             # extra checkpoint.json keys

Training rows: ``train_loss`` is the mean of ``losses["loss"]`` per item; every running metric
``k`` in :attr:`Task.train_metrics` becomes ``train_<k>`` = (sum over the epoch of
``out.sums[k]``) / items, summed over all processes. Datasets take ``(index, epoch)`` keys
(:class:`~deepvideo.data.samplers.EpochSampler`) and may report unreadable inputs as
``batch["bad_items"]`` and through ``bad_items`` / ``record_bad`` attributes.

A task is registered by name (a test module or a ``model.imports`` file can add one)::

    @register_task("boxes")
    class BoxTask(Task): ...
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from deepvideo.engine.config import Config, ConfigError

_TASKS: dict[str, Callable[[Config], Task]] = {}


@dataclass
class StepOutput:
    """One micro-batch: ``losses["loss"]`` (the total, backpropagated) and other named parts;
    ``n`` items; ``sums`` of the running metrics over those items."""

    losses: dict[str, torch.Tensor]
    n: int
    sums: dict[str, float] = field(default_factory=dict)


class Task(abc.ABC):
    """The protocol (and defaults) a task implements; see the module docstring."""

    name = ""
    train_metrics: tuple[str, ...] = ()  # running metrics the step sums (train_<name> rows)

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.class_names: list[str] = []

    def setup(self, train_dataset=None, class_names: list[str] | None = None) -> None:
        """Learn what the model needs (classes, ...) from the config or the given data."""
        self.class_names = list(class_names or getattr(train_dataset, "classes", None) or [])

    def build_model(self) -> nn.Module:
        raise ConfigError(f"task {self.name!r} builds no model from a config: pass model=... to train()")

    def with_initial_weights(self, model: nn.Module) -> nn.Module:
        """``model`` with ``model.pretrained`` / ``model.init_from`` loaded into it
        (:func:`deepvideo.engine.build.load_initial_weights`): every ``build_model`` that builds
        its own network returns through this, so those keys are never silently ignored."""
        from deepvideo.engine.build import load_initial_weights

        load_initial_weights(model, self.cfg)
        return model

    def datasets(self, spec, train_dataset=None, val_dataset=None) -> tuple[object, dict]:
        """``(training set, {name: validation set})``; the given datasets are used when not None."""
        if train_dataset is None:
            raise ConfigError(f"task {self.name!r} builds no dataset from a config: pass train_dataset=...")
        return train_dataset, ({"": val_dataset} if val_dataset is not None else {})

    def check_model(self, model: nn.Module) -> None:  # noqa: B027  (optional hook: accepts any model)
        """Raise :class:`ConfigError` when the model cannot serve this task's data (default: no check)."""

    @abc.abstractmethod
    def step(self, model: nn.Module, batch: dict, device: torch.device,
             autocast: Callable[[], contextlib.AbstractContextManager]) -> StepOutput:
        """Forward one training micro-batch (the model call inside ``with autocast():``) and
        return its losses; the loop scales, backpropagates and steps."""

    def evaluate(self, model: nn.Module, loaders: dict, device: torch.device,
                 amp_dtype: torch.dtype | None, spec) -> dict:
        """Validation metrics (keys ``val_*``) over the loaders; all processes take part."""
        return {}

    @classmethod
    def test_run(cls, path, *, subset: str = "test", out_dir=None, batch_size: int | None = None,
                 device: str | None = None) -> dict:
        """Score a trained run of this task on ``data.<subset>`` for ``deepvideo test``: flat
        ``{metric: value}`` (per-class values included) and ``out_dir``, where the files went.
        Recognition runs go through :func:`deepvideo.engine.evaluate.evaluate_checkpoint`."""
        raise ConfigError(f"runs of task {cls.name!r} are not scored by `deepvideo test`; trackers are "
                          "benchmarked with `deepvideo track bench`")

    def checkpoint_meta(self) -> dict:
        """Keys stored in checkpoint.json (and run_info.json) besides the loop's own."""
        return {"class_names": list(self.class_names)}


def register_task(name: str):
    """Class decorator: make ``cfg.task == name`` build this task."""

    def add(cls):
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is already registered (by {_TASKS[name].__qualname__})")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return add


def list_tasks() -> list[str]:
    _load_builtin()
    return sorted(_TASKS)


def task_class(name: str) -> type[Task]:
    """The registered task class named ``name`` (built-in tasks only)."""
    _load_builtin()
    if name not in _TASKS:
        raise ConfigError(f"task={name!r} is not registered (known: {', '.join(sorted(_TASKS))})")
    return _TASKS[name]


def create_task(cfg: Config) -> Task:
    """The task named by ``cfg.task`` (``model.imports`` may register it)."""
    _load_builtin()
    if cfg.task not in _TASKS:
        from deepvideo.engine.build import import_model_modules

        import_model_modules(cfg.model.imports)
    if cfg.task not in _TASKS:
        raise ConfigError(f"task={cfg.task!r} is not registered (known: {', '.join(sorted(_TASKS))}); "
                          "a module listed in model.imports can register it with register_task")
    return _TASKS[cfg.task](cfg)


def _load_builtin() -> None:
    """Import every module of :mod:`deepvideo.engine.tasks` (each registers its tasks)."""
    import importlib
    import pkgutil

    from deepvideo.engine import tasks

    for module in pkgutil.iter_modules(tasks.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{tasks.__name__}.{module.name}")
