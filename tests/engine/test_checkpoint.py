"""Checkpoints: safetensors + JSON + weights-only training state, atomic folder swaps."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from engine_helpers import HERE, TINY_BN_MODEL, TinyNet
from safetensors.torch import load_file
from torch import nn

from deepvideo.engine.build import load_checkpoint
from deepvideo.engine.checkpoint import (
    META,
    STATE,
    WEIGHTS,
    CheckpointError,
    load_train_state,
    load_weights,
    read_meta,
    resolve_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from deepvideo.engine.config import config_to_dict, load_config


def _meta(**kw):
    cfg = load_config(
        overrides=[f"model.name={TINY_BN_MODEL}", f"model.imports=[{HERE}]", "model.kwargs.width=3"]
    )
    base = {
        "config": config_to_dict(cfg),
        "class_names": ["a", "b", "c"],
        "epoch": 2,
        "step": 10,
        "iter_in_epoch": 0,
        "metrics": {"val_top1": 50.0},
        "input_spec": None,
    }
    return {**base, **kw}


def test_round_trip_weights_meta_and_state(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(3, width=3, bn=True)
    model.norm.running_mean.fill_(0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model({"rgb": torch.randn(2, 3, 2, 4, 4)}).sum().backward()
    opt.step()
    folder = save_checkpoint(
        tmp_path / "ck" / "last",
        model,
        _meta(),
        {"optimizer": opt.state_dict(), "rng": rng_state(), "epoch": 2},
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS, META, STATE])
    weights = load_file(str(folder / WEIGHTS))
    assert set(weights) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(weights[k], v)
    assert read_meta(folder)["class_names"] == ["a", "b", "c"]
    state = load_train_state(folder)  # torch.load(weights_only=True) inside
    opt2 = torch.optim.SGD(TinyNet(3, width=3, bn=True).parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(
        opt2.state_dict()["state"][0]["momentum_buffer"], opt.state_dict()["state"][0]["momentum_buffer"]
    )

    # the public loader rebuilds the registered model from the stored configuration
    loaded, cfg, names, meta = load_checkpoint(folder)
    assert names == ["a", "b", "c"] and meta["epoch"] == 2 and cfg.model.name == TINY_BN_MODEL
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_rng_state_round_trip():
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(3))
    random.random(), np.random.rand(), torch.rand(5)
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_overwrite_is_atomic_and_recovers_from_interrupted_swap(tmp_path):
    model = TinyNet(2)
    target = tmp_path / "last"
    save_checkpoint(target, model, _meta(epoch=1))
    nn.init.constant_(model.head.bias, 3.0)
    save_checkpoint(target, model, _meta(epoch=2))
    assert read_meta(target)["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no temporary or .old left over
    # a kill between "old -> .last.old" and "tmp -> last": the previous checkpoint is found
    (target).rename(tmp_path / ".last.old")
    assert resolve_checkpoint(target) == tmp_path / ".last.old"
    assert read_meta(target)["epoch"] == 2


def test_resolve_from_run_folder_file_and_errors(tmp_path):
    model = TinyNet(2)
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last", model, _meta(epoch=3))
    assert resolve_checkpoint(run) == run / "checkpoints" / "last"  # no best: last
    save_checkpoint(run / "checkpoints" / "best", model, _meta(epoch=1))
    assert resolve_checkpoint(run) == run / "checkpoints" / "best"
    assert resolve_checkpoint(run / "checkpoints" / "last" / WEIGHTS) == run / "checkpoints" / "last"
    with pytest.raises(CheckpointError, match="not a deepvideo checkpoint"):
        resolve_checkpoint(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="training state missing"):
        load_train_state(run / "checkpoints" / "last")
    (run / "checkpoints" / "best" / META).write_text("{broken")
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: invalid JSON"):
        read_meta(run / "checkpoints" / "best")


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    save_checkpoint(tmp_path / "c", TinyNet(2), _meta())
    with pytest.raises(CheckpointError, match=r"model\.safetensors: does not fit the model: .*head"):
        load_weights(TinyNet(5), tmp_path / "c")
    with pytest.raises(CheckpointError, match="missing norm"):
        load_weights(TinyNet(2, bn=True), tmp_path / "c")


def test_tied_weights_are_saved(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight

    m = Tied()
    save_checkpoint(tmp_path / "t", m, {"config": {}, "class_names": []})
    m2 = Tied()
    load_weights(m2, tmp_path / "t")
    assert torch.equal(m2.b.weight, m.a.weight)
    assert json.loads((tmp_path / "t" / META).read_text())["class_names"] == []


def test_link_checkpoint_shares_the_files_and_replaces_atomically(tmp_path):
    from deepvideo.engine.checkpoint import link_checkpoint, save_checkpoint

    net = nn.Linear(3, 2)
    save_checkpoint(tmp_path / "last", net, {"epoch": 1}, {"step": 4})
    save_checkpoint(tmp_path / "best", nn.Linear(3, 2), {"epoch": 0}, {"step": 2})
    link_checkpoint(tmp_path / "last", tmp_path / "best")
    assert json.loads((tmp_path / "best" / "checkpoint.json").read_text()) == {"epoch": 1}
    best = load_file(str(tmp_path / "best" / "model.safetensors"))
    assert torch.equal(best["weight"], net.weight.detach())
    assert (tmp_path / "best" / "model.safetensors").samefile(tmp_path / "last" / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "last"]  # no temporary or .old left
    save_checkpoint(tmp_path / "last", nn.Linear(3, 2), {"epoch": 2}, {"step": 6})  # a new last
    assert json.loads((tmp_path / "best" / "checkpoint.json").read_text()) == {"epoch": 1}  # best kept
