"""Skip RNN (Campos et al. 2018): the gate's equations, state copying, budget loss, engine hooks."""

import contextlib
import math

import pytest
import torch

from deepvideo.engine.losses import compute_loss
from deepvideo.models import create_model, get_model_info
from deepvideo.models.skip_rnn import BUDGET_LAMBDA, GATE_BIAS, binarize, next_update_prob, skip_rnn

SMALL = {"backbone": "resnet18", "width": 0.125, "hidden": 8}


def fixed_gate(model, prob: float) -> None:
    """Make Δũ_t = prob at every step (W_p = 0, b_p = logit(prob))."""
    with torch.no_grad():
        model.gate.weight.zero_()
        model.gate.bias.fill_(math.log(prob / (1 - prob)))


def test_paper_constants():
    assert BUDGET_LAMBDA == 1e-4 and GATE_BIAS == 1.0
    model = skip_rnn(4, **SMALL)
    assert model.budget == 1e-4 and float(model.gate.bias.detach()) == 1.0


def test_binarize_rounds_forward_and_passes_gradient_straight_through():
    x = torch.tensor([0.2, 0.49, 0.51, 0.9], requires_grad=True)
    u = binarize(x)
    assert u.tolist() == [0.0, 0.0, 1.0, 1.0]
    (u * torch.arange(4.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_next_update_prob_formula():
    u_tilde, delta = torch.tensor([0.3, 0.3, 0.8]), torch.tensor([0.4, 0.4, 0.4])
    u = torch.tensor([1.0, 0.0, 0.0])
    # updated: Δũ_t; skipped: ũ_t + min(Δũ_t, 1 - ũ_t)
    assert torch.allclose(next_update_prob(u, u_tilde, delta), torch.tensor([0.4, 0.7, 1.0]))


@pytest.mark.parametrize(("prob", "pattern"), [(0.3, [1, 0, 1, 0, 1, 0]), (0.2, [1, 0, 0, 1, 0, 0]),
                                               (0.9, [1, 1, 1, 1, 1, 1])])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_update_pattern_from_constant_gate(prob, pattern, cell):
    """Δũ = 0.3: ũ = 1, .3, .6, .3, .6 ... -> read every other frame; Δũ = 0.2: every third."""
    model = skip_rnn(3, cell=cell, **SMALL).eval()
    fixed_gate(model, prob)
    with torch.no_grad():
        h, u = model.recur(torch.randn(2, 6, model.cell.input_size))
    assert u.tolist() == [pattern, pattern]
    for t in range(1, 6):  # skipped steps copy the previous output (and state)
        if pattern[t] == 0:
            assert torch.equal(h[:, t], h[:, t - 1])
        else:
            assert not torch.equal(h[:, t], h[:, t - 1])


def test_skipped_frames_do_not_change_the_output():
    model = skip_rnn(3, **SMALL).eval()
    fixed_gate(model, 0.3)  # frames 1, 3, 5 skipped
    x = {"rgb": torch.randn(1, 3, 6, 32, 32)}
    with torch.no_grad():
        ref = model(x)
        other = x["rgb"].clone()
        other[:, :, 3] = torch.randn(3, 32, 32)
        assert torch.allclose(model({"rgb": other}), ref)
        other[:, :, 2] += 1.0  # a read frame changes it
        assert not torch.allclose(model({"rgb": other}), ref)


def test_training_output_budget_loss_and_gradients():
    model = skip_rnn(4, budget=0.5, **SMALL).train()
    fixed_gate(model, 0.3)
    out = model({"rgb": torch.randn(2, 3, 6, 32, 32)})
    assert out["logits"].shape == (2, 4)
    assert out["loss_budget"].item() == pytest.approx(0.5 * 3)  # λ · Σ u_t, 3 updates of 6
    assert float(out["metric_frames_used"]) == pytest.approx(0.5)
    out["loss_budget"].backward()
    assert model.gate.bias.grad is not None and float(model.gate.bias.grad.abs()) > 0  # through the STE
    model.zero_grad()
    out = model({"rgb": torch.randn(2, 3, 6, 32, 32)})
    (out["logits"].square().mean() + out["loss_budget"]).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_compute_loss_adds_model_losses_and_skips_metrics():
    logits = torch.randn(2, 3)
    target = torch.tensor([0, 2])
    out = {"logits": logits, "loss_budget": torch.tensor(0.25), "metric_frames_used": torch.tensor(0.5)}
    total, main, parts = compute_loss(out, target, weights={"loss_budget": 2.0})
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(total, ce + 0.5)
    assert set(parts) == {"logits", "loss_budget"} and main is logits
    with pytest.raises(ValueError, match="'loss_x' must be a scalar"):
        compute_loss({"logits": logits, "loss_x": torch.ones(2)}, target)


def test_recognition_step_reports_frames_used(tmp_path):
    from deepvideo.engine.config import load_config
    from deepvideo.engine.task import create_task

    cfg = load_config(None, [f"output_dir={tmp_path}", "model.name=skip_lstm_small"])
    task = create_task(cfg)
    model = skip_rnn(3, **SMALL)
    task.check_model(model)
    assert task.train_metrics == ("top1", "frames_used")
    fixed_gate(model, 0.2)  # 2 of 4 frames read
    batch = {"rgb": torch.randn(2, 3, 4, 32, 32), "label": torch.tensor([0, 1])}
    out = task.step(model, batch, torch.device("cpu"), contextlib.nullcontext)
    assert out.sums["frames_used"] == pytest.approx(2 * 0.5)
    assert set(out.losses) == {"loss", "logits", "loss_budget"}


def test_registered_presets():
    info = get_model_info("skip_lstm_small")
    assert info.spec.num_frames == 8 and "Campos" in info.paper
    model = create_model("skip_gru_small", num_classes=5)
    assert isinstance(model.cell, torch.nn.GRUCell) and model.cell.hidden_size == 64
    lstm = create_model("skip_lstm_small", num_classes=5)
    # the skip LSTM has LRCN's parameters plus the gate (W_p, b_p) of hidden + 1 weights
    lrcn = create_model("lrcn_rgb_small", num_classes=5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(lstm) == count(lrcn) + 64 + 1
