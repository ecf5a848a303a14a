"""RT-MDNet's instance embedding loss in the ``mdnet`` task: the softmax over domains' positive
logits against the written formula, the cap of 100 domains, and the task's total loss
``L_cls + 0.1 · L_inst`` for the RoIAlign network (MDNet: no instance loss)."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from deepvideo.engine.config import load_config
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks import mdnet as task_module
from deepvideo.engine.tasks.mdnet import instance_loss
from deepvideo.track.mdnet import MDNet


def positive_logits(net, hidden, heads):
    return torch.stack([net.fc6[k](hidden)[:, 1] for k in heads], dim=1)


@torch.no_grad()
def test_instance_loss_is_the_cross_entropy_over_all_domains():
    torch.manual_seed(0)
    net = MDNet(num_domains=3, width=0.05, roi_align=True).eval()
    hidden = torch.rand(5, net.widths[3])
    logits = positive_logits(net, hidden, range(3))
    expected = (torch.logsumexp(logits, dim=1) - logits[:, 1]).mean()   # own domain 1
    assert float(instance_loss(net, hidden, 1)) == pytest.approx(float(expected), rel=1e-5)
    assert float(instance_loss(net, hidden[:0], 1)) == 0.0


@torch.no_grad()
def test_instance_loss_takes_the_first_domains_of_a_permutation(monkeypatch):
    monkeypatch.setattr(task_module, "MAX_INSTANCE_DOMAINS", 2)
    torch.manual_seed(0)
    net = MDNet(num_domains=5, width=0.05, roi_align=True).eval()
    hidden = torch.rand(4, net.widths[3])
    torch.manual_seed(7)
    perm = torch.randperm(5)[:2].tolist()
    heads = [3, *(k for k in perm if k != 3)]
    expected = F.cross_entropy(positive_logits(net, hidden, heads), torch.zeros(4, dtype=torch.long))
    torch.manual_seed(7)
    assert float(instance_loss(net, hidden, 3)) == pytest.approx(float(expected), rel=1e-5)
    assert task_module.INSTANCE_WEIGHT == 0.1


@pytest.mark.parametrize("roi_align", [False, True])
def test_step_adds_a_tenth_of_the_instance_loss_for_rtmdnet(roi_align):
    torch.manual_seed(0)
    net = MDNet(num_domains=2, width=0.05, roi_align=roi_align).eval()
    task = create_task(load_config(overrides=["task=mdnet", "model.name=mdnet"]))
    labels = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    batch = {"patches": torch.rand(2, 6, 3, 107, 107) * 255, "labels": labels,
             "domain": torch.tensor([0, 1])}
    torch.manual_seed(1)
    out = task.step(net, batch, torch.device("cpu"), contextlib.nullcontext)
    with torch.no_grad():
        hidden = [net.hidden(net.conv_features(batch["patches"][i])) for i in range(2)]
        cls = torch.stack([F.cross_entropy(net.fc6[i](hidden[i]), labels[i]) for i in range(2)]).mean()
    if not roi_align:
        assert set(out.losses) == {"loss"}
        assert float(out.losses["loss"].detach()) == pytest.approx(float(cls), rel=1e-5)
        return
    with torch.no_grad():
        inst = torch.stack([instance_loss(net, hidden[i][labels[i] == 1], i) for i in range(2)]).mean()
    assert float(out.losses["instance"].detach()) == pytest.approx(float(inst), rel=1e-5)
    assert float(out.losses["loss"].detach()) == pytest.approx(float(cls + 0.1 * inst), rel=1e-5)
