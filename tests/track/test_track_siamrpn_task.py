"""The ``siamrpn`` engine task: a few steps reduce the loss; the CPU recipes build their networks."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.siamrpn import SiamRPNTask
from deepvideo.track.siamrpn import SiamMask, SiamRPN, SiamRPNpp

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "track"
SIDE = 64


class SquarePairs(torch.utils.data.Dataset):
    """A red square on noise, centred in the exemplar and offset by up to 32 pixels in the search;
    ``mask`` is the square. Keys ``(index, epoch)``."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key) -> dict:
        i = int(key[0]) if isinstance(key, (tuple, list)) else int(key)
        g = torch.Generator().manual_seed(self.seed * 1000 + i)
        exemplar = (110 + 40 * torch.randn(3, 127, 127, generator=g)).clamp(0, 255)
        search = (110 + 40 * torch.randn(3, 255, 255, generator=g)).clamp(0, 255)
        exemplar[:, 32:96, 32:96] = torch.tensor([230.0, 40, 40])[:, None, None]
        dx, dy = (int(v) for v in torch.randint(-32, 33, (2,), generator=g))
        x0, y0 = 96 + dx, 96 + dy
        search[:, y0:y0 + SIDE, x0:x0 + SIDE] = torch.tensor([230.0, 40, 40])[:, None, None]
        mask = torch.zeros(255, 255)
        mask[y0:y0 + SIDE, x0:x0 + SIDE] = 1
        return {"exemplar": exemplar, "search": search, "mask": mask,
                "target": torch.tensor([x0, y0, SIDE, SIDE], dtype=torch.float32)}


def overrides(out, name: str, kwargs: str, *extra: str) -> list[str]:
    return ["task=siamrpn", f"model.name={name}", f"model.kwargs={kwargs}", f"output_dir={out}",
            "data.num_workers=0", "train.amp=none", "train.batch_size=4", "train.lr=0.001",
            "train.optimizer=adamw", "train.weight_decay=0", "train.monitor=val_loss",
            "deterministic=true", "seed=0", *extra]


@pytest.mark.parametrize(("name", "kwargs"), [
    ("siamrpn", "{width: 0.125, xcorr: depthwise}"),
    ("siammask", "{width: 0.125, blocks: [1, 1, 1], channels: 8}"),
])
def test_a_few_steps_reduce_the_loss(tmp_path, name, kwargs):
    torch.set_num_threads(1)
    cfg = load_config(overrides=overrides(tmp_path / "run", name, kwargs, "train.epochs=3"))
    result = train(cfg, train_dataset=SquarePairs(8, seed=0), val_dataset=SquarePairs(4, seed=0),
                   progress=False)
    first, last = result.history[0], result.history[-1]
    assert set(last) >= {"train_loss", "train_center_error", "val_loss", "val_center_error", "val_iou"}
    assert last["train_loss"] < first["train_loss"]
    assert 0 <= last["val_iou"] <= 1 and last["val_center_error"] >= 0


def test_task_checks_model_name_refine_and_data():
    task = create_task(load_config(overrides=["task=siamrpn", "model.name=resnet_x"]))
    assert isinstance(task, SiamRPNTask)
    with pytest.raises(ConfigError, match="builds model.name in"):
        task.build_model()
    with pytest.raises(ConfigError, match="trains SiamRPN, SiamRPNpp or SiamMask"):
        task.check_model(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="data.train: a SiamRPN dataset needs 'root'"):
        task.datasets(None)
    refine = create_task(load_config(overrides=["task=siamrpn", "model.name=siammask",
                                                "model.kwargs={refine: true}"]))
    with pytest.raises(ConfigError, match="refinement module"):
        refine.build_model()


@pytest.mark.parametrize(("recipe", "network", "with_mask"), [
    ("siamrpn.yaml", SiamRPN, False), ("siamrpnpp.yaml", SiamRPNpp, False), ("siammask.yaml", SiamMask, True),
])
def test_cpu_recipes(monkeypatch, recipe, network, with_mask):
    import deepvideo.track.datasets as track_datasets

    cfg = load_config(RECIPES / recipe)
    task = create_task(cfg)
    model = task.build_model()
    assert type(model) is network
    monkeypatch.setattr(track_datasets, "load_dataset", lambda root, fmt=None: [root])
    fake = types.ModuleType("deepvideo.track.pairs")
    fake.PairDataset = lambda sequences, **kw: ("pairs", sequences, kw)
    monkeypatch.setitem(sys.modules, "deepvideo.track.pairs", fake)
    train_set, val_sets = task.datasets(None)
    assert train_set[1] == ["data/tracking/train"]
    assert train_set[2]["shift"] == 64 and train_set[2]["scale"] == 0.18   # spatial-aware sampling
    assert train_set[2]["with_mask"] is with_mask and val_sets[""][2]["with_mask"] is with_mask


def test_anchor_samples_depend_on_seed_and_batch_only():
    task = create_task(load_config(overrides=["task=siamrpn", "model.name=siamrpn", "seed=3"]))
    a = torch.tensor([[90.0, 100.0, 100.0, 40.0]])
    first = torch.randperm(1000, generator=task.sampler(a))
    assert torch.equal(first, torch.randperm(1000, generator=task.sampler(a.clone())))
    assert not torch.equal(first, torch.randperm(1000, generator=task.sampler(a + 1)))
