"""The ``siamfc`` task trains SiamFC through the engine loop on learnable synthetic pairs, and the
``siamfc`` tracker loads the checkpoint and follows the same kind of target in a video."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.siamfc import SiamFCTask
from deepvideo.track.base import Tracker
from deepvideo.track.boxes import iou
from deepvideo.track.registry import create_tracker
from deepvideo.track.siamfc import SiamFC

SIDE = 64          # the square's side in exemplar/search pixels (a box with context 0.5 fills half)
SHIFT = 40         # largest offset of the square from the search centre
RED = np.array([230.0, 40.0, 40.0], np.float32)


def noisy(size: int, g: torch.Generator) -> torch.Tensor:
    return (110 + 40 * torch.randn(3, size, size, generator=g)).clamp(0, 255)


def paint(image: torch.Tensor, cx: float, cy: float) -> None:
    x0, y0 = round(cx - SIDE / 2), round(cy - SIDE / 2)
    image[:, y0:y0 + SIDE, x0:x0 + SIDE] = torch.from_numpy(RED)[:, None, None]


class SquarePairs(torch.utils.data.Dataset):
    """A red square on noise: centred in the exemplar, offset by up to ``SHIFT`` in the search;
    the same dict as ``deepvideo.track.pairs.PairDataset``. Keys ``(index, epoch)``."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key) -> dict:
        i, epoch = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), 0)
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch * 1009 + i)
        exemplar, search = noisy(127, g), noisy(255, g)
        paint(exemplar, 63.5, 63.5)
        dx, dy = (int(v) for v in torch.randint(-SHIFT, SHIFT + 1, (2,), generator=g))
        paint(search, 127.5 + dx, 127.5 + dy)
        x0, y0 = round(127.5 + dx - SIDE / 2), round(127.5 + dy - SIDE / 2)
        target = torch.tensor([x0, y0, SIDE, SIDE], dtype=torch.float32)
        return {"exemplar": exemplar, "search": search, "target": target}


def overrides(out, *extra: str) -> list[str]:
    return ["task=siamfc", "model.name=siamfc", "model.kwargs={width: 0.125}", f"output_dir={out}",
            "data.num_workers=0", "train.amp=none", "train.batch_size=8", "train.lr=0.003",
            "train.optimizer=adamw", "train.weight_decay=0", "train.monitor=val_loss",
            "deterministic=true", "seed=0", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    cfg = load_config(overrides=overrides(tmp_path_factory.mktemp("siamfc") / "run", "train.epochs=4"))
    return train(cfg, train_dataset=SquarePairs(16, seed=0), val_dataset=SquarePairs(8, seed=1),
                 progress=False)


def test_training_reduces_loss_and_centre_error(trained):
    first, last = trained.history[0], trained.history[-1]
    assert set(last) >= {"train_loss", "train_center_error", "val_loss", "val_center_error"}
    assert last["val_loss"] < first["val_loss"]
    assert last["val_center_error"] < first["val_center_error"] and last["val_center_error"] < 16
    meta = json.loads((trained.last_checkpoint / "checkpoint.json").read_text())
    assert meta["config"]["task"] == "siamfc"


def moving_square_video(frames: int = 8, size: int = 192, side: int = 32):
    rng = np.random.default_rng(3)
    boxes, images = [], []
    for t in range(frames):
        image = np.clip(110 + 40 * rng.standard_normal((size, size, 3)), 0, 255).astype(np.uint8)
        x, y = 50 + 6 * t, 60 + 4 * t
        image[y:y + side, x:x + side] = RED.astype(np.uint8)
        images.append(image)
        boxes.append((x, y, side, side))
    return images, np.array(boxes, np.float64)


def test_tracker_loads_the_checkpoint_and_follows_the_square(trained):
    tracker = create_tracker("siamfc", weights=str(trained.last_checkpoint))
    assert isinstance(tracker, Tracker)
    assert tracker.model.channels == SiamFC(width=0.125).channels
    images, boxes = moving_square_video()
    tracker.initialize(images[0], tuple(boxes[0]))
    found = [tracker.track(image).box for image in images[1:]]
    overlaps = iou(np.array(found), boxes[1:])
    assert overlaps.mean() > 0.5


def test_task_wants_a_siamfc_model_and_pair_data():
    cfg = load_config(overrides=["task=siamfc", "model.name=resnet_x"])
    task = create_task(cfg)
    assert isinstance(task, SiamFCTask)
    with pytest.raises(ConfigError, match="builds model.name: siamfc"):
        task.build_model()
    with pytest.raises(ConfigError, match="trains a SiamFC model"):
        task.check_model(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"data.train: a SiamFC dataset needs 'root'"):
        task.datasets(None)


def test_cpu_recipe_builds_pair_datasets_from_sequence_folders(monkeypatch):
    """configs/track/siamfc.yaml: data.train/val {root, pairs} -> PairDataset(load_dataset(root), **pairs)."""
    import sys
    import types
    from pathlib import Path

    import deepvideo.track.datasets as track_datasets

    recipe = Path(__file__).resolve().parents[2] / "configs" / "track" / "siamfc.yaml"
    cfg = load_config(recipe)
    task = create_task(cfg)
    model = task.build_model()
    assert isinstance(model, SiamFC) and model.channels == (24, 64, 96, 96, 64)
    read = []
    monkeypatch.setattr(track_datasets, "load_dataset", lambda root, fmt=None: read.append(root) or [root])
    fake = types.ModuleType("deepvideo.track.pairs")
    fake.PairDataset = lambda sequences, **kw: ("pairs", sequences, kw)
    fake.visible_frames = lambda sequence: [0, 1]
    monkeypatch.setitem(sys.modules, "deepvideo.track.pairs", fake)
    train_set, val_sets = task.datasets(None)
    assert read == ["data/tracking/train", "data/tracking/val"]
    pairs = {"max_gap": 100, "pairs_per_epoch": 2048, "seed": 0}
    assert train_set == ("pairs", ["data/tracking/train"], pairs)
    assert val_sets[""][2]["pairs_per_epoch"] == 256
