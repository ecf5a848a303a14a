"""The ``atom`` and ``dimp`` tasks: sequence samples (frames, jittered crops, proposals and their
IoU), a few training steps lower the loss, the engine loop runs them, and the CPU recipes build."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.atom_dimp import ATOMTask, DiMPTask, hinge_loss
from deepvideo.track.atom import ATOMNet
from deepvideo.track.boxes import iou
from deepvideo.track.dimp import DiMPNet
from deepvideo.track.sequence_samples import SequenceSamples

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "track"


class SquareSequence:
    """A red square moving over a fixed noise background (the ``Sequence`` interface)."""

    def __init__(self, name: str, frames: int = 12, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.name, self.absent = name, None
        self.background = rng.integers(60, 200, (100, 120, 3), dtype=np.uint8)
        self.boxes = np.array([[30 + 3 * t, 25 + 2 * t, 20, 16] for t in range(frames)], np.float64)

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, index: int) -> np.ndarray:
        image = self.background.copy()
        x, y, w, h = (int(v) for v in self.boxes[index])
        image[y:y + h, x:x + w] = (230, 40, 40)
        return image


def samples(num_train: int, num_test: int, proposals: int, n: int = 4, seed: int = 0) -> SequenceSamples:
    return SequenceSamples([SquareSequence("a", seed=1), SquareSequence("b", seed=2)], num_train=num_train,
                           num_test=num_test, image_size=96, proposals=proposals, samples_per_epoch=n,
                           seed=seed)


def test_sequence_samples():
    data = samples(3, 3, 8)
    item = data[(1, 0)]
    assert item["train_images"].shape == (3, 3, 96, 96) and item["test_images"].shape == (3, 3, 96, 96)
    assert item["train_boxes"].shape == (3, 4) and item["proposals"].shape == (3, 8, 4)
    truth = item["test_boxes"][:, None].expand(3, 8, 4).reshape(-1, 4)
    overlap = iou(item["proposals"].reshape(-1, 4).numpy(), truth)
    assert np.allclose(item["proposal_iou"].flatten().numpy(), 2 * overlap - 1, atol=1e-6)
    assert overlap.min() >= 0.1                          # min_iou
    # the crop is 5 target sizes: the jittered box's sqrt area is about 96 / 5
    sizes = torch.sqrt(item["train_boxes"][:, 2] * item["train_boxes"][:, 3])
    assert bool(((sizes > 96 / 5 / 3) & (sizes < 96 / 5 * 3)).all())
    assert all(torch.equal(a, b) for a, b in zip(item.values(), data[(1, 0)].values(), strict=True))
    assert not torch.equal(item["test_images"], data[(1, 1)]["test_images"])
    with pytest.raises(ValueError, match="visible in 1 of 1 frames"):
        SequenceSamples([SquareSequence("short", frames=1)])


def test_hinge_loss():
    label = torch.tensor([0.0, 0.01, 0.5, 1.0])
    scores = torch.tensor([-1.0, 0.2, 0.3, 1.0])
    # below 0.05: max(0, s) against 0; above: s against y
    assert hinge_loss(scores, label).item() == pytest.approx((0 + 0.04 + 0.04 + 0) / 4)


def losses_fall(task, model, data, steps: int = 6) -> tuple[float, float]:
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    values = []
    model.train()
    for _ in range(steps):
        out = task.step(model, batch, torch.device("cpu"), contextlib.nullcontext)
        optimizer.zero_grad()
        out.losses["loss"].backward()
        optimizer.step()
        values.append(float(out.losses["loss"].detach()))
    return values[0], values[-1]


def test_atom_steps_reduce_the_loss():
    torch.manual_seed(0)
    task = create_task(load_config(overrides=["task=atom", "model.name=atom"]))
    assert isinstance(task, ATOMTask)
    first, last = losses_fall(task, ATOMNet(18, width=0.125, iou_dim=16), samples(1, 1, 16))
    assert last < first


def test_dimp_steps_reduce_the_loss():
    torch.manual_seed(0)
    task = create_task(load_config(overrides=["task=dimp", "model.name=dimp"]))
    assert isinstance(task, DiMPTask)
    first, last = losses_fall(task, DiMPNet(18, width=0.125, iou_dim=16, num_iter=2), samples(2, 1, 4))
    assert last < first


def test_engine_trains_dimp_and_reports_validation_metrics(tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(overrides=["task=dimp", "model.name=dimp", "model.kwargs={width: 0.125, iou_dim: 16}",
                                 f"output_dir={tmp_path}", "data.num_workers=0", "train.amp=none",
                                 "train.batch_size=2", "train.optimizer=adamw", "train.lr=0.0002",
                                 "train.epochs=1", "train.monitor=val_loss", "seed=0"])
    result = train(cfg, train_dataset=samples(2, 1, 4), val_dataset=samples(2, 1, 4, n=2, seed=1),
                   progress=False)
    row = result.history[-1]
    assert set(row) >= {"train_loss", "train_iou_mse", "val_loss", "val_iou_mse", "val_center_error"}
    assert np.isfinite(row["val_loss"])


@pytest.mark.parametrize("name", ["atom", "dimp"])
def test_cpu_recipes_build(name, monkeypatch):
    import deepvideo.track.datasets as track_datasets

    cfg = load_config(RECIPES / f"{name}.yaml")
    task = create_task(cfg)
    model = task.build_model()
    assert model.config["width"] == 0.25 and model.config["iou_dim"] == 64
    monkeypatch.setattr(track_datasets, "load_dataset",
                        lambda root, fmt=None: [SquareSequence(str(root)), SquareSequence("x", seed=3)])
    train_set, val_sets = task.datasets(None)
    assert isinstance(train_set, SequenceSamples) and train_set.max_gap == 30
    assert (train_set.num_train, train_set.num_test) == ((1, 1) if name == "atom" else (3, 3))
    assert train_set.proposals == (16 if name == "atom" else 8)
    assert len(val_sets[""]) == (64 if name == "atom" else 32)
    with pytest.raises(ConfigError, match=f"trains a {type(model).__name__}"):
        task.check_model(torch.nn.Linear(2, 2))
