"""The ``updatenet`` task trains UpdateNet through the engine loop on top of a frozen SiamFC, and
the ``siamfc`` tracker runs with the checkpoint (``update="updatenet"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.updatenet import UpdateNetTask
from deepvideo.track.registry import create_tracker
from deepvideo.track.siamfc import SiamFC
from deepvideo.track.updatenet import TemplateWindows, UpdateNet


class GrowingSquare:
    """A red square that grows and darkens frame by frame on a fixed noisy background."""

    def __init__(self, n: int = 12, seed: int = 0):
        self.name = f"square{seed}"
        self.background = np.random.default_rng(seed).integers(60, 160, (80, 96, 3)).astype(np.uint8)
        self.boxes = np.array([[30 - k, 25 - k, 16 + 2 * k, 16 + 2 * k] for k in range(n)], np.float64)
        self.absent = np.zeros(n, bool)

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, k: int) -> np.ndarray:
        image = self.background.copy()
        x, y, w, h = (int(v) for v in self.boxes[k])
        image[y:y + h, x:x + w] = (250 - 15 * k, 30 + 10 * k, 40)
        return image


@pytest.fixture(scope="module")
def embedding(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("siamfc") / "siamfc.safetensors"
    save_file(SiamFC(width=0.05).state_dict(), str(path))
    return path


def overrides(out, embedding, *extra: str) -> list[str]:
    return ["task=updatenet", "model.name=updatenet", f"model.kwargs={{embedding: {embedding}, hidden: 16}}",
            f"output_dir={out}", "data.num_workers=0", "train.amp=none", "train.batch_size=4",
            "train.lr=0.01", "train.optimizer=adamw", "train.weight_decay=0", "train.monitor=val_loss",
            "deterministic=true", "seed=0", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedding):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("updatenet") / "run"
    cfg = load_config(overrides=overrides(out, embedding, "train.epochs=3"))
    windows = {"length": 4, "items_per_epoch": 8}
    return train(cfg, train_dataset=TemplateWindows([GrowingSquare(seed=0)], **windows, seed=0),
                 val_dataset=TemplateWindows([GrowingSquare(seed=1)], **windows, seed=1), progress=False)


def test_training_beats_the_fixed_template(trained):
    first, last = trained.history[0], trained.history[-1]
    assert set(last) >= {"train_loss", "train_fixed_loss", "train_linear_loss", "val_loss",
                         "val_fixed_loss", "val_linear_loss"}
    assert last["val_fixed_loss"] == pytest.approx(first["val_fixed_loss"])  # the same targets
    assert last["val_loss"] < first["val_loss"] and last["val_loss"] < last["val_fixed_loss"]


def test_tracker_runs_with_the_trained_update(trained, embedding):
    tracker = create_tracker("siamfc", weights=str(embedding), update="updatenet",
                             updatenet=str(trained.last_checkpoint))
    assert isinstance(tracker.updatenet, UpdateNet) and tracker.updatenet.update[0].out_channels == 16
    seq = GrowingSquare(seed=2)
    tracker.initialize(seq.frame(0), tuple(seq.boxes[0]))
    t0 = tracker.t0.clone()
    tracker.track(seq.frame(1))
    assert not torch.equal(tracker.z, t0)


def test_task_checks_its_configuration(embedding):
    task = create_task(load_config(overrides=["task=updatenet", "model.name=updatenet"]))
    assert isinstance(task, UpdateNetTask)
    with pytest.raises(ConfigError, match="model.kwargs.embedding must name the SiamFC weights"):
        task.build_model()
    cfg = load_config(overrides=["task=updatenet", "model.name=updatenet",
                                 f"model.kwargs={{embedding: {embedding}, accumulate: mean}}"])
    with pytest.raises(ConfigError, match="accumulate must be one of"):
        create_task(cfg).build_model()
    cfg = load_config(overrides=["task=updatenet", "model.name=updatenet",
                                 f"model.kwargs={{embedding: {embedding}}}"])
    task = create_task(cfg)
    model = task.build_model()
    assert model.channels == SiamFC(width=0.05).channels[-1] and model.update[0].out_channels == 96
    with pytest.raises(ConfigError, match="takes 3-channel templates"):
        task.check_model(UpdateNet(channels=3))
    with pytest.raises(ConfigError, match="data.train: an UpdateNet dataset needs 'root'"):
        task.datasets(None)


def test_recipe_builds_template_windows(monkeypatch, embedding):
    from pathlib import Path

    import deepvideo.track.datasets as track_datasets

    recipe = Path(__file__).resolve().parents[2] / "configs" / "track" / "siamfc_updatenet.yaml"
    cfg = load_config(recipe, [f"model.kwargs.embedding={embedding}"])
    task = create_task(cfg)
    assert task.options()["accumulate"] == "linear" and isinstance(task.build_model(), UpdateNet)
    monkeypatch.setattr(track_datasets, "load_dataset", lambda root, fmt=None: [GrowingSquare()])
    train_set, val_sets = task.datasets(None)
    assert isinstance(train_set, TemplateWindows) and train_set.length == 6 and len(train_set) == 1024
    assert len(val_sets[""]) == 128
