"""The training loop: one function from a configuration (and a task) to a trained, checkpointed model.

::

    from deepvideo.engine.config import load_config
    from deepvideo.engine.loop import train, main_train, RunResult, NonFiniteLossError

    cfg = load_config("configs/ucf101/c3d.yaml", ["train.lr=0.01"])
    result = train(cfg)                     # -> RunResult
    result.run_dir                          # Path: config.yaml, run_info.json, metrics.csv, steps.csv,
                                            #   train.log, summary.json, bad_items.json, tensorboard/
    result.best_checkpoint, result.last_checkpoint   # checkpoint folders (engine/checkpoint.py)
    result.history                          # list of metrics.csv rows (dicts, engine/runlog.py)
    result.bad_items                        # [{"path", "source", "error"}] videos skipped
    result = main_train("recipe.yaml", ["train.epochs=3"])   # what `deepvideo train` calls; handles
                                            # torchrun (DDP) and returns the RunResult on every rank

    python -m deepvideo train RECIPE.yaml key=value ...
    torchrun --nproc_per_node=2 -m deepvideo train RECIPE.yaml   # DDP, see docs/distributed.md

What is trained comes from the task ``cfg.task`` (:mod:`deepvideo.engine.task`; default
``recognition``, :mod:`deepvideo.engine.tasks.recognition`): datasets, the batch -> loss
step, validation and extra checkpoint keys. The loop owns the rest: device and seed, DDP
under torchrun, AMP (``train.amp``), gradient accumulation, clipping, the schedule, freezing,
the non-finite guard, logging, checkpoints with exact resume (mid-epoch too) and the summary.

``train(cfg, model=..., train_dataset=..., val_dataset=..., class_names=..., on_epoch_end=...)``
accepts ready-made objects (benchmarks, tests, notebooks); datasets must accept
``(index, epoch)`` keys like :class:`~deepvideo.data.dataset.ClipDataset`.
``on_epoch_end(row)`` sees every metrics.csv row. ``train.batch_size`` is the global batch per
optimizer step: each of the W processes loads ``batch_size / (W * grad_accum)`` items per
micro-batch. A non-finite loss stops the run with :class:`NonFiniteLossError`;
``checkpoints/last`` is then the last good state.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.build import make_loader
from deepvideo.engine.checkpoint import (
    CheckpointError,
    check_resumable,
    existing_checkpoints,
    link_checkpoint,
    load_train_state,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap,
)
from deepvideo.engine.config import Config, ConfigError, config_to_dict, load_config, write_run_files
from deepvideo.engine.optim import apply_freezing, build_optimizer, build_schedule, frozen_norm_layers
from deepvideo.engine.runlog import RunLogger
from deepvideo.engine.scoring import autocast_dtype
from deepvideo.engine.task import Task, create_task
from deepvideo.io.atomic import atomic_write_json

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


@dataclass
class _Env:
    """Where the run executes: device, process group, per-process micro-batch, autocast dtype."""

    device: torch.device
    distributed: bool
    rank: int
    world: int
    micro: int
    amp_dtype: torch.dtype | None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)


def _environment(cfg: Config) -> _Env:
    device = dist_utils.select_device(cfg.device)
    distributed = dist_utils.init_distributed(device)
    rank, world = dist_utils.get_rank(), dist_utils.get_world_size()
    t = cfg.train
    micro = t.batch_size // (world * t.grad_accum)
    if micro * world * t.grad_accum != t.batch_size:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be divisible by processes ({world}) x "
            f"train.grad_accum ({t.grad_accum})"
        )
    try:
        amp = autocast_dtype(t.amp, device)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return _Env(device, distributed, rank, world, micro, amp)


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


def _resume_point(cfg: Config, last_dir: Path) -> Path | None:
    """The checkpoint to continue from, None for a new run; never a new run over old checkpoints."""
    present = existing_checkpoints(last_dir.parent)
    run_dir = last_dir.parent.parent
    if cfg.resume or cfg.resume_or_start:
        if cfg.resume_or_start and not present:
            return None
        try:
            return check_resumable(last_dir)
        except CheckpointError as e:
            hint = ("pass --resume-or-start (resume_or_start=true) to start a new run when there is none"
                    if not present else f"{run_dir} is left as it is (checkpoints: {', '.join(present)})")
            raise CheckpointError(f"cannot resume: {e}; {hint}") from None
    if present:
        raise ConfigError(
            f"{run_dir} already holds a run; pass resume=true (--resume) to continue it or choose another "
            f"output_dir (it has {', '.join(f'checkpoints/{n}' for n in present)})"
        )
    return None


def _gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` in a single process)."""
    if not dist_utils.is_distributed():
        return [obj]
    gathered = [None] * dist_utils.get_world_size()
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _version() -> str:
    from deepvideo import __version__

    return __version__


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """``"min"`` or ``"max"``: ``mode`` unless ``"auto"``, which minimises losses and errors."""
    if mode != "auto":
        return mode
    return "min" if monitor.endswith(("loss", "error")) else "max"


def fallback_monitor(monitor: str, train_metrics: tuple[str, ...]) -> str:
    """What a run without validation monitors instead of ``val_<m>``: ``train_<m>`` when the
    task reports that running metric, else ``train_loss``."""
    name = monitor.removeprefix("val_")
    return f"train_{name}" if name in train_metrics else "train_loss"


class _Run:
    """The state of one run and the steps of the loop (built by :func:`train`)."""

    def __init__(self, cfg: Config, env: _Env, task: Task, model: nn.Module, datasets: tuple,
                 logger: RunLogger):
        self.cfg, self.env, self.task, self.logger = cfg, env, task, logger
        t = cfg.train
        self.run_dir = Path(cfg.output_dir)
        self.last_dir = self.run_dir / "checkpoints" / "last"
        self.best_dir = self.run_dir / "checkpoints" / "best"
        self.spec = getattr(model, "input_spec", None)
        frozen = apply_freezing(model, t.freeze, t.finetune_top_k) if (t.freeze or t.finetune_top_k) else []
        self.frozen_norms = frozen_norm_layers(model) if t.frozen_bn_eval else []
        if frozen:
            log.info("frozen %d parameter tensors (%s ...)", len(frozen), ", ".join(frozen[:3]))
        model.to(env.device)
        if env.distributed:
            ddp_kw = {"device_ids": [env.device.index]} if env.device.type == "cuda" else {}
            model = nn.parallel.DistributedDataParallel(
                model, find_unused_parameters=t.find_unused_parameters, **ddp_kw)
        self.model = model
        self.train_dataset, val_sets = datasets
        self.train_loader = make_loader(cfg, self.train_dataset, env.micro, True, env.device, env.rank,
                                        env.world)
        self.val_loaders = {k: make_loader(cfg, d, max(1, cfg.eval.batch_size), False, env.device, env.rank,
                                           env.world) for k, d in val_sets.items()}
        self._schedule_setup()
        self.step, self.best_metric, self.start_epoch, self.start_iter = 0, None, 0, 0
        self.resumed_sums: dict | None = None  # the running epoch's sums when resuming mid-epoch
        self.bad_items: list[dict] = list(getattr(self.train_dataset, "bad_items", []))
        self.sum_keys = ["loss", *task.train_metrics, "n"]
        self.cfg_dict = config_to_dict(cfg)  # converting is slow (OmegaConf): once per run

    def _schedule_setup(self) -> None:
        t = self.cfg.train
        self.iters_per_epoch = len(self.train_loader) // t.grad_accum
        if t.max_iters_per_epoch:
            self.iters_per_epoch = min(self.iters_per_epoch, t.max_iters_per_epoch)
        if self.iters_per_epoch < 1:
            raise ConfigError(
                f"the training set ({len(self.train_dataset)} items) is smaller than one global batch "
                f"(train.batch_size={t.batch_size}); lower the batch size"
            )
        self.monitor = t.monitor
        if self.monitor.startswith("val_") and not self.val_loaders:
            self.monitor = fallback_monitor(t.monitor, self.task.train_metrics)
            log.info("no validation set (data.val): checkpoints/best follows %s instead of %s",
                     self.monitor, t.monitor)
        self.monitor_mode = monitor_mode(self.monitor, t.monitor_mode)
        self.optimizer = build_optimizer(self.model, t)
        self.schedule = build_schedule(self.optimizer, t, self.iters_per_epoch,
                                       monitor_mode=self.monitor_mode)
        self.total_epochs = math.ceil(t.max_steps / self.iters_per_epoch) if t.max_steps else t.epochs
        self.scaler = torch.amp.GradScaler(self.env.device.type, enabled=self.env.amp_dtype == torch.float16)

    # --- checkpoints -----------------------------------------------------------------------
    def restore(self, folder: Path) -> None:
        """Weights, optimizer, schedule, scaler, RNG, position and history of ``folder`` (resume)."""
        load_weights(self.model, folder, strict=True)
        state = load_train_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        rngs = state.get("rng_per_rank")
        set_rng_state(rngs[self.env.rank] if rngs and len(rngs) == self.env.world else state["rng"])
        self.start_epoch, self.start_iter = int(state["epoch"]), int(state["iter_in_epoch"])
        self.step, self.best_metric = int(state["step"]), state["best_metric"]
        sums = state.get("epoch_sums")
        if isinstance(sums, (list, tuple)):  # written before Engine II: [loss*n, top-1 hits, n]
            sums = {"loss": sums[0], "top1": 100.0 * sums[1], "n": sums[2]}
        self.resumed_sums = dict(sums) if sums else None
        known = {b["path"] for b in self.bad_items}  # skipped before the resume: not "new" again
        self.bad_items += [dict(b) for b in state.get("bad_items", []) if b["path"] not in known]
        if hasattr(self.train_dataset, "record_bad"):
            self.train_dataset.record_bad(state.get("bad_items", []))
        self.logger.restore(state["history"]["epochs"], state["history"]["steps"])
        log.info("resumed from %s at epoch %d, iteration %d", folder, self.start_epoch, self.start_iter)

    def meta(self, epoch: int, it: int, metrics: dict) -> dict:
        inner = unwrap(self.model)
        return {
            "config": self.cfg_dict,
            **self.task.checkpoint_meta(),
            "epoch": epoch,
            "step": self.step,
            "iter_in_epoch": it,
            "metrics": metrics,
            "monitor": self.monitor,
            "best_metric": self.best_metric,
            "model_name": getattr(inner, "model_name", self.cfg.model.name),
            "input_spec": self.spec.to_dict() if self.spec is not None else None,
            "deepvideo_version": _version(),
        }

    def save(self, folder: Path, epoch: int, it: int, metrics: dict, epoch_sums: dict | None = None) -> None:
        rngs = _gather_objects(rng_state())  # every process's generators (collective call)
        if not self.env.main:
            return
        state = {
            "rng_per_rank": rngs,
            "epoch_sums": epoch_sums,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rngs[0],
            "epoch": epoch,
            "iter_in_epoch": it,
            "step": self.step,
            "best_metric": self.best_metric,
            "bad_items": self.bad_items,
            "history": {"epochs": self.logger.epochs, "steps": self.logger.steps},
        }
        save_checkpoint(folder, self.model, self.meta(epoch, it, metrics), state)

    def note_bad(self, items: list[dict]) -> None:
        """Add skipped videos to the run's list; each new one gets a console line (rank 0)."""
        known = {b["path"] for b in self.bad_items}
        for it in items:
            if it["path"] not in known:
                self.bad_items.append(dict(it))
                known.add(it["path"])
                self.logger.skipped(it)
        if items and hasattr(self.train_dataset, "record_bad"):
            self.train_dataset.record_bad(items)

    def reduced(self, sums: dict) -> dict:
        """``sums`` added over all processes."""
        total = dist_utils.all_reduce_sum([sums[k] for k in self.sum_keys], self.env.device).tolist()
        return dict(zip(self.sum_keys, total, strict=True))

    # --- one epoch ---------------------------------------------------------------------------
    def _start_epoch(self, epoch: int) -> tuple[int, dict]:
        skip = self.start_iter if epoch == self.start_epoch else 0
        sampler = self.train_loader.sampler
        sampler.set_epoch(epoch)
        sampler.set_start(skip * self.cfg.train.grad_accum * self.env.micro)
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(epoch)
        self.model.train()
        for m in self.frozen_norms:
            m.eval()
        bs = self.cfg.train.batch_size
        self.logger.start_epoch(epoch + 1, self.total_epochs, self.iters_per_epoch * bs, skip * bs)
        sums = dict.fromkeys(self.sum_keys, 0.0)
        if skip and self.resumed_sums is not None and self.env.main:
            sums.update(self.resumed_sums)
        return skip, sums

    def _micro_step(self, batch: dict, sync: bool) -> tuple[float, int, dict]:
        """Forward + backward of one micro-batch: ``(loss value, items, metric sums)``."""
        env = self.env
        ctx = contextlib.nullcontext() if (sync or not env.distributed) else self.model.no_sync()
        with ctx:
            out = self.task.step(self.model, batch, env.device, env.autocast)
            loss = out.losses["loss"]
            accum = self.cfg.train.grad_accum
            self.scaler.scale(loss / accum if accum > 1 else loss).backward()
        return float(loss.detach()), out.n, out.sums

    def _check_finite(self, value: float, epoch: int, it: int) -> None:
        bad = not math.isfinite(value)
        if self.env.distributed:
            bad = bool(dist_utils.all_reduce_sum([float(bad)], self.env.device)[0] > 0)
        if bad:
            raise NonFiniteLossError(
                f"the training loss became {value} at epoch {epoch + 1}, iteration {it + 1} "
                f"(step {self.step + 1}); stopped. {self.last_dir} holds the last good checkpoint. Lower "
                "train.lr, add warmup (train.warmup_epochs), clip gradients (train.clip_grad_norm) "
                "or disable mixed precision (train.amp=none)."
            )

    def _optimizer_step(self) -> None:
        t = self.cfg.train
        if t.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), t.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.step += 1

    def train_epoch(self, epoch: int) -> tuple[dict, float, float]:
        """Train one epoch (from the resume point); ``(this process's sums, items, seconds)``."""
        t = self.cfg.train
        it, sums = self._start_epoch(epoch)
        t0 = time.perf_counter()
        window = {"loss": 0.0, "n": 0, "t0": t0, "items": 0}
        session_items, micro_i = 0, 0
        self.optimizer.zero_grad(set_to_none=True)
        for batch in self.train_loader:
            if it >= self.iters_per_epoch or (t.max_steps and self.step >= t.max_steps):
                break
            if batch.get("bad_items"):
                self.note_bad(batch["bad_items"])
            last_micro = micro_i == t.grad_accum - 1
            value, n, metric_sums = self._micro_step(batch, last_micro)
            self._check_finite(value, epoch, it)
            sums["loss"] += value * n
            for k in self.task.train_metrics:
                sums[k] += metric_sums.get(k, 0.0)
            sums["n"] += n
            session_items += n
            window["loss"] += value
            window["n"] += 1
            window["items"] += n * self.env.world
            micro_i += 1
            if not last_micro:
                continue
            micro_i = 0
            self._optimizer_step()
            it += 1
            self._after_step(epoch, it, value, window, sums)
        self.logger.end_epoch()
        return sums, session_items, time.perf_counter() - t0

    def _after_step(self, epoch: int, it: int, value: float, window: dict, sums: dict) -> None:
        t = self.cfg.train
        lr = self.optimizer.param_groups[0]["lr"]
        self.logger.advance(t.batch_size, value, lr)
        if self.step % t.log_every == 0:
            now = time.perf_counter()
            self.logger.log_step({"epoch": epoch + 1, "step": self.step, "lr": lr,
                                  "loss": window["loss"] / window["n"],
                                  "clips_per_s": window["items"] / max(now - window["t0"], 1e-9)})
            window.update(loss=0.0, n=0, t0=now, items=0)
        every = t.checkpoint_every_iters
        if every and self.step % every == 0 and it < self.iters_per_epoch:
            # the running sums of all processes; rank 0 continues them on resume
            self.save(self.last_dir, epoch, it, {}, epoch_sums=self.reduced(sums))

    def end_epoch(self, epoch: int, sums: dict, session_items: float, elapsed: float) -> dict:
        """Validate, log the epoch's row, write checkpoints; return the row."""
        total = self.reduced(sums)
        items = dist_utils.all_reduce_sum([session_items], self.env.device).tolist()[0]
        n = max(total["n"], 1.0)
        row = {"epoch": epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": total["loss"] / n,
               **{f"train_{k}": total[k] / n for k in self.task.train_metrics},
               "clips_per_s": items / max(elapsed, 1e-9), "epoch_time_s": elapsed}
        t = self.cfg.train
        if self.val_loaders and ((epoch + 1) % t.val_every == 0 or epoch + 1 == self.total_epochs):
            # the module inside DDP: its forward has no collectives, and ranks may hold
            # different numbers of validation batches (sharding without padding)
            row.update(self.task.evaluate(unwrap(self.model), self.val_loaders, self.env.device,
                                          self.env.amp_dtype, self.spec))
        self.note_bad([it for part in _gather_objects(self.bad_items) for it in (part or [])])
        row["bad_items"] = len(self.bad_items)
        value = row.get(self.monitor)
        if value is None and (self.monitor.startswith("train_") or any(k.startswith("val_") for k in row)):
            known = ", ".join(k for k in row if k.startswith(("val_", "train_")))
            raise ConfigError(f"train.monitor={self.monitor!r} is not a metric of task {self.task.name!r}; "
                              f"this run reports: {known}")
        self.schedule.step_metric(value)
        self.logger.log_epoch(row)
        improved = value is not None and (self.best_metric is None or (
            value > self.best_metric if self.monitor_mode == "max" else value < self.best_metric))
        if improved:
            self.best_metric = float(value)
        metrics = {k: v for k, v in row.items() if k not in ("epoch", "step")}
        self.save(self.last_dir, epoch + 1, 0, metrics)
        if improved and self.env.main:  # the same state: best shares last's files
            link_checkpoint(self.last_dir, self.best_dir)
        log.info("epoch %d/%d: %s", epoch + 1, self.total_epochs,
                 ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
        return row

    def result(self) -> RunResult:
        return RunResult(
            run_dir=self.run_dir, last_checkpoint=self.last_dir,
            best_checkpoint=self.best_dir if self.best_metric is not None else None,
            history=list(self.logger.epochs), best_metric=self.best_metric, monitor=self.monitor,
            class_names=list(self.task.class_names), bad_items=self.bad_items,
            epochs_completed=self.total_epochs, steps=self.step,
        )

    def write_summary(self, result: RunResult) -> None:
        if not self.env.main:
            return
        atomic_write_json(self.run_dir / "bad_items.json", self.bad_items)
        atomic_write_json(self.run_dir / "summary.json", {
            "status": "completed",
            "run_dir": str(self.run_dir),
            "last_checkpoint": str(self.last_dir),
            "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
            "monitor": self.monitor,
            "best_metric": self.best_metric,
            "epochs": self.total_epochs,
            "steps": self.step,
            "bad_items": self.bad_items,
            "history": result.history,
        })


def _build_run(cfg: Config, env: _Env, model, train_dataset, val_dataset, class_names, progress) -> _Run:
    task = create_task(cfg)
    task.setup(train_dataset=train_dataset, class_names=class_names)
    if model is None:
        model = task.build_model()
    if env.distributed:  # same initial weights everywhere, then one random stream per process (dropout)
        torch.manual_seed(cfg.seed + env.rank)
    datasets = task.datasets(getattr(model, "input_spec", None), train_dataset, val_dataset)
    task.check_model(model)
    logger = RunLogger(Path(cfg.output_dir), enabled=env.main, progress=progress)
    return _Run(cfg, env, task, model, datasets, logger)


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
    env = _environment(cfg)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    _seed_everything(cfg.seed, cfg.deterministic)
    run_dir = Path(cfg.output_dir)
    last_dir = run_dir / "checkpoints" / "last"
    resume_from = _resume_point(cfg, last_dir)
    new_folder = env.main and not run_dir.exists()
    if env.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    dist_utils.barrier()
    handler = _setup_file_logging(run_dir, env.main)
    try:
        try:
            run = _build_run(cfg, env, model, train_dataset, val_dataset, class_names, progress)
        except Exception:
            if new_folder:  # a configuration that fails before training leaves no empty run folder
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if resume_from is not None:
            run.restore(resume_from)
        if env.main:
            inner = unwrap(run.model)
            write_run_files(cfg, run_dir, {
                "world_size": env.world, "device": str(env.device),
                "model": getattr(inner, "model_name", type(inner).__name__),
                "num_classes": getattr(run.task, "num_classes", None), **run.task.checkpoint_meta()})
        for epoch in range(run.start_epoch, run.total_epochs):
            row = run.end_epoch(epoch, *run.train_epoch(epoch))
            if on_epoch_end is not None:
                on_epoch_end(dict(row))
            dist_utils.barrier()
        run.logger.close()
        result = run.result()
        run.write_summary(result)
        return result
    except NonFiniteLossError as e:
        if env.main:
            atomic_write_json(run_dir / "summary.json",
                              {"status": "diverged", "message": str(e), "last_checkpoint": str(last_dir)})
        log.error("%s", e)
        raise
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # process-wide: leave it as found
        if handler is not None:
            logging.getLogger("deepvideo").removeHandler(handler)
            handler.close()


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
