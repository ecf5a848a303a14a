"""The ``mdnet`` task: multi-domain training through the engine loop on a synthetic tracking set
(a few steps reduce the loss), the fc gradient multiplier, and the CPU recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.mdnet import FC_LR_MULT, MDNetTask, scale_fc_gradients
from deepvideo.track.mdnet import MDNet
from deepvideo.track.synth import render_tracking_set
from deepvideo.track.trackers.mdnet import load_mdnet

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "track" / "mdnet.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("mdnet")
    render_tracking_set(root / "seqs", num_sequences=2, frames=6, size=(128, 96), seed=0, progress=False)
    small = "frames: 2, positives: 8, negatives: 24, holdout_every: 3"
    cfg = load_config(RECIPE, overrides=[
        f"data.train.root={root / 'seqs'}", f"output_dir={root / 'run'}", "model.kwargs={width: 0.05}",
        f"data.train.samples={{{small}, iterations: 4, seed: 0}}", "data.num_workers=0",
        f"data.val.samples={{{small}, split: holdout, iterations: 2, seed: 1}}",
        "train.epochs=3", "train.lr=0.01", "deterministic=true"])
    return train(cfg, progress=False)


def test_a_few_steps_reduce_the_loss(trained):
    first, last = trained.history[0], trained.history[-1]
    assert set(last) >= {"train_loss", "train_error", "train_precision", "val_loss", "val_error",
                         "val_precision"}
    assert last["train_loss"] < first["train_loss"] and last["val_loss"] < first["val_loss"]
    meta = json.loads((trained.last_checkpoint / "checkpoint.json").read_text())
    assert meta["config"]["task"] == "mdnet" and meta["domains"] == ["synth_0001", "synth_0002"]


def test_the_checkpoint_drives_the_tracker(trained):
    net = load_mdnet(trained.last_checkpoint / "model.safetensors")
    assert net.num_domains == 2 and net.widths == MDNet(width=0.05).widths


def test_fc_gradients_are_scaled_ten_times():
    torch.manual_seed(0)
    net, twin = MDNet(width=0.05), MDNet(width=0.05)
    twin.load_state_dict(net.state_dict())
    scale_fc_gradients(net)
    scale_fc_gradients(net)                       # once per model
    x = torch.rand(4, 3, 107, 107) * 255
    for model in (net, twin):
        model.eval()
        model(x).sum().backward()
    assert FC_LR_MULT == 10
    torch.testing.assert_close(net.fc4.weight.grad, 10 * twin.fc4.weight.grad)
    torch.testing.assert_close(net.fc6[0].bias.grad, 10 * twin.fc6[0].bias.grad)
    torch.testing.assert_close(net.convs.conv1.weight.grad, twin.convs.conv1.weight.grad)


def test_task_errors_name_the_section():
    cfg = load_config(overrides=["task=mdnet", "model.name=siamfc"])
    task = create_task(cfg)
    assert isinstance(task, MDNetTask)
    with pytest.raises(ConfigError, match="data.train: an MDNet dataset needs 'root'"):
        task.setup()
    task.num_domains = 2
    with pytest.raises(ConfigError, match="builds model.name: mdnet"):
        task.build_model()
    with pytest.raises(ConfigError, match="trains an MDNet"):
        task.check_model(torch.nn.Linear(2, 2))


def test_cpu_recipe_values():
    cfg = load_config(RECIPE)
    assert cfg.task == "mdnet" and cfg.model.kwargs == {"width": 0.25}
    assert cfg.train.batch_size == 1 and cfg.train.clip_grad_norm == 10.0
    assert cfg.train.momentum == 0.9 and cfg.train.weight_decay == 0.0005
    assert cfg.data.val["samples"]["split"] == "holdout"
