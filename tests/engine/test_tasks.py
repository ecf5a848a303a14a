"""The task protocol is general: a box-regression task trains through the same loop, resumes
exactly (mid-epoch) and runs under 2-process torchrun.

The task lives in this module: ``register_task`` at import time here, and subprocess runs
load this file through ``model.imports`` (which registers it there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from deepvideo.engine import distributed as dist_utils
from deepvideo.engine.build import build_model
from deepvideo.engine.config import load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import StepOutput, Task, create_task, register_task
from deepvideo.models.registry import register_model
from deepvideo.spec import InputSpec

THIS = Path(__file__).resolve()
BOX_MODEL, BOX_TASK = "engine_test_boxnet", "test_boxes"
SIZE, FRAMES, SIDE = 12, 4, 4


class MovingSquares(torch.utils.data.Dataset):
    """A bright ``SIDE``-pixel square moving one pixel per frame on noise; target: its box in the
    last frame as (x0, y0, x1, y1) / SIZE. Keys ``(index, epoch)``; noise from (seed, epoch, index)."""

    def __init__(self, n: int = 16, seed: int = 0):
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key) -> dict:
        i, epoch = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), 0)
        g = torch.Generator().manual_seed(self.seed * 7919 + i)
        x0, y0 = (int(v) for v in torch.randint(0, SIZE - SIDE - FRAMES + 2, (2,), generator=g))
        noise = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 10_007 + i)
        clip = 0.2 * torch.randn(3, FRAMES, SIZE, SIZE, generator=noise)
        for t in range(FRAMES):
            clip[:, t, y0 + t:y0 + t + SIDE, x0 + t:x0 + t + SIDE] += 1.0
        x1, y1 = x0 + FRAMES - 1, y0 + FRAMES - 1
        box = torch.tensor([x1, y1, x1 + SIDE, y1 + SIDE], dtype=torch.float32) / SIZE
        return {"rgb": clip, "box": box, "index": i}


class BoxNet(nn.Module):
    """conv3d -> ReLU -> spatial pooling to 3x3 -> linear -> sigmoid box; ``fail_after`` training
    forwards raise :class:`Interrupted` (simulates a killed run)."""

    def __init__(self, num_classes: int = 4, width: int = 6, fail_after: int = 0):
        super().__init__()
        self.conv = nn.Conv3d(3, width, 3, padding=1)
        self.fc = nn.Linear(width * FRAMES * 9, num_classes)
        self.fail_after, self.calls = fail_after, 0

    def forward(self, batch):
        if self.training:
            self.calls += 1
            if self.fail_after and self.calls > self.fail_after:
                raise Interrupted(f"interrupted at training forward {self.calls}")
        x = F.adaptive_avg_pool3d(F.relu(self.conv(batch["rgb"])), (FRAMES, 3, 3))
        return torch.sigmoid(self.fc(x.flatten(1)))


class Interrupted(RuntimeError):
    pass


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two [N, 4] (x0, y0, x1, y1) box tensors."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1) + (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area - inter).clamp(min=1e-9)


@register_task(BOX_TASK)
class BoxRegression(Task):
    """Predict the square's box: smooth-L1 loss; running metric ``iou`` (mean IoU, %)."""

    train_metrics = ("iou",)

    def build_model(self) -> nn.Module:
        return build_model(self.cfg, 4)

    def datasets(self, spec, train_dataset=None, val_dataset=None):
        d = self.cfg.data
        train_set = train_dataset or MovingSquares(int(d.train["n"]), seed=int(d.train.get("seed", 0)))
        if val_dataset is None and d.val:
            val_dataset = MovingSquares(int(d.val["n"]), seed=int(d.val.get("seed", 1)))
        return train_set, ({"": val_dataset} if val_dataset is not None else {})

    def step(self, model, batch, device, autocast) -> StepOutput:
        x, box = batch["rgb"].to(device), batch["box"].to(device)
        with autocast():
            pred = model({"rgb": x})
        loss = F.smooth_l1_loss(pred.float(), box, beta=0.05)
        iou = float(box_iou(pred.detach().float(), box).sum()) * 100.0
        return StepOutput({"loss": loss}, int(box.shape[0]), {"iou": iou})

    @torch.no_grad()
    def evaluate(self, model, loaders, device, amp_dtype, spec) -> dict:
        model.eval()
        sums = [0.0, 0.0, 0.0]  # loss*n, iou*n, n
        for batch in next(iter(loaders.values())):
            box = batch["box"]
            pred = model({"rgb": batch["rgb"].to(device)}).float().cpu()
            sums[0] += float(F.smooth_l1_loss(pred, box, beta=0.05)) * len(box)
            sums[1] += float(box_iou(pred, box).sum())
            sums[2] += len(box)
        total = dist_utils.all_reduce_sum(sums, device).tolist()
        return {"val_loss": total[0] / total[2], "val_iou": 100.0 * total[1] / total[2]}

    def checkpoint_meta(self) -> dict:
        return {"class_names": [], "box_format": "x0,y0,x1,y1 / frame size"}


try:
    register_model(BOX_MODEL, BoxNet, InputSpec(modalities=("rgb",), num_frames=FRAMES, crop_size=SIZE),
                   paper="test", summary="engine task test model")
except ValueError:  # already registered in this process
    pass


def _overrides(out: Path, *extra: str) -> list[str]:
    return [f"task={BOX_TASK}", f"model.name={BOX_MODEL}", f"output_dir={out}", "data.num_workers=0",
            "data.train={n: 16}", "data.val={n: 8}", "train.amp=none", "train.batch_size=4",
            "train.lr=0.02", "train.optimizer=adamw", "train.weight_decay=0", "train.schedule=cosine",
            "train.monitor=val_loss",
            "deterministic=true", "seed=2", *extra]


def test_box_task_trains_through_the_loop(tmp_path):
    cfg = load_config(overrides=_overrides(tmp_path / "run", "train.epochs=5"))
    assert isinstance(create_task(cfg), BoxRegression)
    result = train(cfg, progress=False)
    first, last = result.history[0], result.history[-1]
    assert set(last) >= {"train_loss", "train_iou", "val_loss", "val_iou"} and "train_top1" not in last
    assert last["val_loss"] < 0.5 * first["val_loss"] and last["val_iou"] > first["val_iou"]
    meta = json.loads((result.last_checkpoint / "checkpoint.json").read_text())
    assert meta["box_format"] == "x0,y0,x1,y1 / frame size" and meta["config"]["task"] == BOX_TASK
    assert result.monitor == "val_loss" and result.best_metric == min(r["val_loss"] for r in result.history)


def test_unknown_task_names_the_known_ones():
    from deepvideo.engine.config import ConfigError

    with pytest.raises(ConfigError, match=r"task='boxs' is not registered \(known: .*recognition"):
        create_task(load_config(overrides=["task=boxs", f"model.name={BOX_MODEL}"]))


def test_box_task_resumes_exactly_mid_epoch(tmp_path):
    common = ["train.epochs=3", "train.checkpoint_every_iters=1"]  # 4 iterations per epoch
    ref = train(load_config(overrides=_overrides(tmp_path / "ref", *common)), progress=False)
    cut = _overrides(tmp_path / "cut", *common)
    with pytest.raises(Interrupted):  # dies in the 6th step: epoch 2, iteration 2
        train(load_config(overrides=[*cut, "model.kwargs.fail_after=5"]), progress=False)
    meta = json.loads((tmp_path / "cut" / "checkpoints" / "last" / "checkpoint.json").read_text())
    assert (meta["epoch"], meta["iter_in_epoch"], meta["step"]) == (1, 1, 5)
    resumed = train(load_config(overrides=[*cut, "resume=true"]), progress=False)
    a = torch.load(ref.last_checkpoint / "train_state.pt", weights_only=True)
    b = torch.load(resumed.last_checkpoint / "train_state.pt", weights_only=True)
    assert a["step"] == b["step"] == 12
    from safetensors.torch import load_file

    wa = load_file(str(ref.last_checkpoint / "model.safetensors"))
    wb = load_file(str(resumed.last_checkpoint / "model.safetensors"))
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs after resume"
    for x, y in zip(ref.history, resumed.history, strict=True):  # same figures, the epoch cut included
        assert x["train_loss"] == y["train_loss"] and x["train_iou"] == y["train_iou"]
        assert x["val_loss"] == y["val_loss"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_box_task_under_torchrun_matches_one_process(tmp_path, helpers):
    def recipe(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "task": BOX_TASK, "name": name, "output_dir": str(tmp_path / name), "seed": 2,
            "model": {"name": BOX_MODEL, "imports": [str(THIS)]},
            "data": {"train": {"n": 16}, "val": {"n": 8}, "num_workers": 0},
            "train": {"epochs": 2, "batch_size": 4, "lr": 0.02, "optimizer": "sgd", "amp": "none",
                      "monitor": "val_loss", "log_every": 1}}))
        return path

    helpers.train_single_and_ddp(recipe("single"), recipe("ddp"))
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "single" / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "ddp" / "checkpoints" / "last" / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    info = json.loads((tmp_path / "ddp" / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["box_format"] == "x0,y0,x1,y1 / frame size"
    s1 = json.loads((tmp_path / "single" / "summary.json").read_text())["history"]
    s2 = json.loads((tmp_path / "ddp" / "summary.json").read_text())["history"]
    for x, y in zip(s1, s2, strict=True):  # train and validation figures all-reduced over both ranks
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        assert x["val_iou"] == pytest.approx(y["val_iou"], rel=1e-4)


def test_monitor_any_task_metric_with_its_direction(tmp_path):
    """``train.monitor`` names any metric the task reports: val_iou is maximised; a run without
    validation follows train_iou; a name the run never reports is an error naming those it does."""
    from deepvideo.engine.config import ConfigError
    from deepvideo.engine.loop import fallback_monitor, monitor_mode

    assert monitor_mode("val_center_error") == "min" and monitor_mode("val_iou") == "max"
    assert monitor_mode("val_iou", "min") == "min"
    assert fallback_monitor("val_iou", ("iou",)) == "train_iou"
    assert fallback_monitor("val_top5", ("top1",)) == "train_loss"
    cfg = load_config(overrides=_overrides(tmp_path / "a", "train.epochs=2", "train.monitor=val_iou"))
    result = train(cfg, progress=False)
    assert result.best_metric == max(r["val_iou"] for r in result.history)
    with pytest.raises(ConfigError, match=r"train.monitor='val_top1' is not a metric of task .*val_iou"):
        train(load_config(overrides=_overrides(tmp_path / "b", "train.epochs=1", "train.monitor=val_top1")),
              progress=False)
    with pytest.raises(ConfigError, match="name a metric val_<name> or train_<name>"):
        load_config(overrides=_overrides(tmp_path / "c", "train.monitor=iou"))
