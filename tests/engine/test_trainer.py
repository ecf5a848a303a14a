"""The training loop: learning, run files, schedules, accumulation, losses, freezing, AMP, NaN, bad videos."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F
from engine_helpers import (
    TINY_MODEL,
    TINY_SPEC,
    TensorClips,
    TinyNet,
    make_videos,
    simple_sampler,
    simple_transform,
)

from deepvideo.engine.build import build_model, load_checkpoint
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import NonFiniteLossError, train
from deepvideo.engine.losses import compute_loss
from deepvideo.engine.optim import WarmupSchedule, apply_freezing, top_level_layers
from deepvideo.engine.runlog import EPOCH_COLUMNS, STEP_COLUMNS, read_csv


def _cfg(tmp_path, *overrides):
    base = [
        f"model.name={TINY_MODEL}",
        f"output_dir={tmp_path / 'run'}",
        "data.num_workers=0",
        "train.amp=none",
        "train.epochs=2",
        "train.batch_size=4",
        "train.lr=0.1",
        "train.schedule=constant",
        "seed=1",
        "train.log_every=2",
    ]
    return load_config(overrides=base + list(overrides))


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_training_learns_and_writes_the_run_folder(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=4", "train.schedule=cosine", "train.warmup_epochs=1")
    torch.manual_seed(0)
    result = train(
        cfg,
        model=TinyNet(2, width=4),
        train_dataset=TensorClips(16),
        val_dataset=TensorClips(8, seed=9),
        progress=False,
    )
    run = tmp_path / "run"
    assert result.run_dir == run and result.epochs_completed == 4 and result.steps == 16
    rows = read_csv(run / "metrics.csv")
    assert list(rows[0]) == EPOCH_COLUMNS and [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["val_top1"] == 100.0 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["step"] == 16 and rows[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine end
    steps = read_csv(run / "steps.csv")
    assert list(steps[0]) == STEP_COLUMNS and [s["step"] for s in steps] == list(range(2, 17, 2))
    assert steps[0]["lr"] < steps[3]["lr"]  # warmup over the first epoch
    assert load_config(run / "config.yaml") == cfg
    info = json.loads((run / "run_info.json").read_text())
    assert info["git_revision"] and info["deepvideo_version"] and info["world_size"] == 1
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert result.best_checkpoint == run / "checkpoints" / "best"
    assert result.best_metric == max(r["val_top1"] for r in rows)
    model, cfg2, names, meta = load_checkpoint(result.last_checkpoint)
    assert names == ["class0", "class1"] and meta["epoch"] == 4 and meta["step"] == 16
    assert cfg2 == cfg


def test_existing_run_needs_resume_and_batch_must_divide(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=1")
    train(cfg, model=TinyNet(2), train_dataset=TensorClips(8), progress=False)
    with pytest.raises(ConfigError, match="already holds a run; pass resume=true"):
        train(cfg, model=TinyNet(2), train_dataset=TensorClips(8), progress=False)
    big = _cfg(tmp_path, "output_dir=" + str(tmp_path / "r2"), "train.batch_size=64")
    with pytest.raises(ConfigError, match="smaller than one global batch"):
        train(big, model=TinyNet(2), train_dataset=TensorClips(8), progress=False)


def test_schedules_follow_their_formulas():
    def sched(kind, **kw):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return opt, WarmupSchedule(opt, kind, total_iters=100, **kw)

    opt, s = sched("cosine", warmup_iters=10, warmup_start_factor=0.1, min_lr=0.2)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.1 + 0.9 * 0.5)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.2 + 0.8 * 0.5)  # half-way through the cosine
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # floor at the end
    opt, s = sched("step", milestones=[30, 60], gamma=0.1)
    for _ in range(30):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    for _ in range(30):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    opt, s = sched("plateau", plateau_patience=1, plateau_factor=0.5, plateau_mode="max")
    for v in (1.0, 2.0, 2.0, 2.0):
        s.step_metric(v)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # 2 epochs without improvement > patience 1
    state = s.state_dict()
    opt2, s2 = sched("plateau", plateau_patience=1, plateau_factor=0.5)
    s2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.5)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_gradient_accumulation_equals_the_full_batch(tmp_path, optimizer):
    finals = []
    for accum in (1, 2):
        cfg = _cfg(
            tmp_path,
            f"output_dir={tmp_path / f'acc{accum}-{optimizer}'}",
            "train.batch_size=8",
            f"train.grad_accum={accum}",
            f"train.optimizer={optimizer}",
            "train.lr=0.05",
        )
        torch.manual_seed(0)
        model = TinyNet(2)
        train(cfg, model=model, train_dataset=TensorClips(16), progress=False)
        finals.append(_weights(model))
    for k in finals[0]:
        # same updates up to float32 summation order (AdamW's normalisation magnifies it slightly)
        torch.testing.assert_close(finals[0][k], finals[1][k], rtol=1e-4, atol=1e-5)


def test_losses_dense_aux_smoothing_and_multilabel():
    torch.manual_seed(0)
    target = torch.tensor([0, 2])
    dense = torch.randn(2, 3, 4)
    total, logits, _ = compute_loss(dense, target)
    per_chunk = torch.stack([F.cross_entropy(dense[:, :, t], target) for t in range(4)]).mean()
    torch.testing.assert_close(total, per_chunk)
    main, aux = torch.randn(2, 3), torch.randn(2, 3)
    total, logits, parts = compute_loss(
        {"logits": main, "aux_mid": aux, "features": torch.randn(2, 5)},
        target,
        label_smoothing=0.1,
        weights={"aux_mid": 0.3},
    )
    expected = F.cross_entropy(main, target, label_smoothing=0.1) + 0.3 * F.cross_entropy(
        aux, target, label_smoothing=0.1
    )
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"logits", "aux_mid"} and logits is main
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    torch.testing.assert_close(compute_loss(main, multi)[0], F.binary_cross_entropy_with_logits(main, multi))
    with pytest.raises(ValueError, match="must include 'logits'"):
        compute_loss({"aux_a": main}, target)


def test_aux_heads_and_dense_models_train(tmp_path):
    for name, model in (("aux", TinyNet(2, aux=True)), ("dense", TinyNet(2, dense=True))):
        cfg = _cfg(tmp_path, f"output_dir={tmp_path / name}", "train.loss_weights.aux_pool=0.5")
        result = train(
            cfg, model=model, train_dataset=TensorClips(8), val_dataset=TensorClips(4), progress=False
        )
        assert result.history[-1]["val_top1"] is not None and math.isfinite(result.history[-1]["train_loss"])


def test_freezing_by_pattern_and_top_k(tmp_path):
    model = TinyNet(2, bn=True)
    assert [n for n, _ in top_level_layers(model)] == ["stem", "norm", "head"]
    before = _weights(model)
    cfg = _cfg(tmp_path, "train.freeze=[stem.*,norm.*]")
    train(cfg, model=model, train_dataset=TensorClips(8), progress=False)
    after = _weights(model)
    for k in ("stem.weight", "stem.bias", "norm.weight", "norm.running_mean", "norm.running_var"):
        assert torch.equal(before[k], after[k]), k  # frozen BN keeps its statistics too
    assert not torch.equal(before["head.weight"], after["head.weight"])
    m2 = TinyNet(2, bn=True)
    frozen = apply_freezing(m2, top_k=1)
    assert frozen == ["norm.bias", "norm.weight", "stem.bias", "stem.weight"]
    with pytest.raises(ValueError, match="pattern 'stemm.*' matches no parameter"):
        apply_freezing(TinyNet(2), ["stemm.*"])
    with pytest.raises(ValueError, match="finetune_top_k=5 but the model has only 2 layers"):
        apply_freezing(TinyNet(2), top_k=5)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        apply_freezing(TinyNet(2), ["*"])


class _NanAfter(TinyNet):
    def __init__(self, calls: int):
        super().__init__(2)
        self.calls, self.left = calls, calls

    def forward(self, batch):
        out = super().forward(batch)
        if self.training:
            self.left -= 1
            if self.left < 0:
                return out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=3")
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 2, iteration 2.*last good checkpoint"):
        train(cfg, model=_NanAfter(calls=3), train_dataset=TensorClips(8), progress=False)
    _, _, _, meta = load_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    assert meta["epoch"] == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "nan" in summary["message"]


def test_bf16_autocast_on_cpu_and_fp16_refused(tmp_path):
    cfg = _cfg(tmp_path, "train.amp=bf16", "train.epochs=1")
    result = train(
        cfg, model=TinyNet(2), train_dataset=TensorClips(8), val_dataset=TensorClips(4), progress=False
    )
    assert math.isfinite(result.history[0]["train_loss"])
    with pytest.raises(ConfigError, match="amp=fp16 needs CUDA"):
        train(
            _cfg(tmp_path, f"output_dir={tmp_path / 'fp16'}", "train.amp=fp16"),
            model=TinyNet(2),
            train_dataset=TensorClips(8),
            progress=False,
        )


def test_sub_batch_bn_and_spec_overrides_in_build_model(tmp_path):
    from engine_helpers import HERE, TINY_BN_MODEL

    from deepvideo.nn.norm import SubBatchNorm3d

    cfg = load_config(
        overrides=[
            f"model.name={TINY_BN_MODEL}",
            f"model.imports=[{HERE}]",
            "model.sub_batch_bn=2",
            "model.spec.crop_size=12",
            "model.spec.frame_stride=[1,3]",
        ]
    )
    model = build_model(cfg, num_classes=3)
    assert isinstance(model.norm, SubBatchNorm3d) and model.norm.sub_batch_size == 2
    assert model.input_spec.crop_size == 12 and model.input_spec.frame_stride == (1, 3)
    assert model.head.out_features == 3
    bad = load_config(overrides=[f"model.name={TINY_BN_MODEL}", "model.spec.crop=12"])
    with pytest.raises(ConfigError, match="model.spec"):
        build_model(bad, num_classes=3)


def test_bad_videos_are_skipped_and_reported(tmp_path):
    from deepvideo.data.dataset import ClipDataset
    from deepvideo.data.record import DatasetIndex, VideoRecord

    index = make_videos(tmp_path / "videos", per_class=3)
    broken = tmp_path / "videos" / "class0" / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    records = list(index.records) + [VideoRecord(str(broken), 0, source="train.txt:7")]
    ds = ClipDataset(
        DatasetIndex(records, index.classes),
        TINY_SPEC,
        train=True,
        sampler=simple_sampler(),
        transform=simple_transform(),
    )
    cfg = _cfg(tmp_path, "train.epochs=2", "train.batch_size=7", "data.num_workers=1")  # reported by a worker
    result = train(cfg, model=TinyNet(2), train_dataset=ds, progress=False)
    assert [b["path"] for b in result.bad_items] == [str(broken)]
    report = json.loads((tmp_path / "run" / "bad_items.json").read_text())
    assert report[0]["source"] == "train.txt:7" and "broken.mp4" in report[0]["path"]
    assert read_csv(tmp_path / "run" / "metrics.csv")[-1]["bad_items"] == 1
    assert str(broken) in (tmp_path / "run" / "train.log").read_text()


def test_gradient_clipping_bounds_the_update(tmp_path):
    torch.manual_seed(0)
    model = TinyNet(2)
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    cfg = _cfg(
        tmp_path,
        "train.epochs=1",
        "train.max_iters_per_epoch=1",
        "train.lr=1.0",
        "train.momentum=0",
        "train.weight_decay=0",
        "train.clip_grad_norm=0.001",
    )
    train(cfg, model=model, train_dataset=TensorClips(8), progress=False)
    step = torch.nn.utils.parameters_to_vector(model.parameters()).detach() - before
    assert 0 < step.norm() <= 0.001 * 1.0001  # one SGD step of lr 1 with the gradient norm clipped


def test_pretrained_with_another_classifier_is_loud_unless_excluded_or_not_strict(tmp_path, caplog):
    from engine_helpers import HERE

    from deepvideo.engine.checkpoint import save_checkpoint

    source = TinyNet(5)
    save_checkpoint(tmp_path / "pre", source, {"config": {}, "class_names": [str(i) for i in range(5)]})
    base = [f"model.name={TINY_MODEL}", f"model.imports=[{HERE}]"]
    with pytest.raises(ConfigError, match=r"model.pretrained: .*2 tensor\(s\) do not fit the model's shapes: "
                                          r"head.bias \(5,\) vs the model's \(2,\), head.weight \(5, 4\)"):
        build_model(load_config(overrides=[*base, f"model.pretrained={tmp_path / 'pre'}"]), num_classes=2)
    with caplog.at_level("WARNING", logger="deepvideo.engine"):
        loose = f"model.pretrained={{checkpoint: {tmp_path / 'pre'}, strict: false}}"
        model = build_model(load_config(overrides=[*base, loose]), num_classes=2)
    assert "head.weight (5, 4) vs the model's (2, 4)" in caplog.text
    assert torch.equal(model.stem.weight, source.stem.weight)
    assert model.head.weight.shape == (2, 4)  # the classifier of another size keeps its initialization
    caplog.clear()
    with caplog.at_level("WARNING", logger="deepvideo.engine"):
        excluded = f"model.pretrained={{checkpoint: {tmp_path / 'pre'}, exclude: ['head\\.']}}"
        model = build_model(load_config(overrides=[*base, excluded]), num_classes=2)
    assert torch.equal(model.stem.bias, source.stem.bias) and caplog.text == ""


def test_pretrained_loading_nothing_is_an_error(tmp_path):
    from engine_helpers import HERE

    from deepvideo.engine.checkpoint import save_checkpoint

    other = torch.nn.Sequential(torch.nn.Linear(3, 3))  # no name in common with TinyNet
    save_checkpoint(tmp_path / "other", other, {"config": {}, "class_names": []})
    base = [f"model.name={TINY_MODEL}", f"model.imports=[{HERE}]"]
    with pytest.raises(ConfigError, match=r"model.pretrained: .*other: no tensor matches the model's names"):
        build_model(load_config(overrides=[*base, f"model.pretrained={tmp_path / 'other'}"]), num_classes=2)
    with pytest.raises(ConfigError, match=r"model.init_from\[0\]: give 'checkpoint'.*unknown: stict"):
        build_model(load_config(overrides=[*base, "model.init_from=[{checkpoint: x, stict: false}]"]),
                    num_classes=2)


def test_max_steps_and_milestone_steps(tmp_path):
    cfg = _cfg(
        tmp_path,
        "train.max_steps=5",
        "train.schedule=step",
        "train.milestone_steps=[3]",
        "train.lr=0.1",
        "train.log_every=1",
    )
    result = train(cfg, model=TinyNet(2), train_dataset=TensorClips(8), progress=False)  # 2 steps per epoch
    assert [r["step"] for r in result.history] == [2, 4, 5] and result.steps == 5
    lrs = [s["lr"] for s in read_csv(tmp_path / "run" / "steps.csv")]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01])  # lr after steps 1..5; x0.1 from step 3


def test_validate_averages_views_and_dense_logits():
    from deepvideo.engine.tasks.recognition import validate

    class ViewScorer(torch.nn.Module):
        """Dense logits [N,2,T'] = per-clip mean of each channel pair (no parameters)."""

        def forward(self, batch):
            x = batch["rgb"].mean(dim=(3, 4))  # [N,3,T]
            return x[:, :2]

    torch.manual_seed(0)
    rgb = torch.randn(3, 4, 3, 2, 5, 5)  # [N,V,C,T,H,W]
    target = torch.tensor([0, 1, 1])
    batches = [{"rgb": rgb, "label": target}]
    out = validate(ViewScorer(), batches, torch.device("cpu"), None, None)
    scores = rgb.mean(dim=(4, 5))[:, :, :2].mean(dim=3).mean(dim=1)  # views and time averaged
    expected_top1 = 100.0 * float((scores.argmax(dim=1) == target).float().mean())
    assert out["val_top1"] == pytest.approx(expected_top1)
    assert out["val_top5"] == 100.0 and out["val_clips"] == 3
    assert out["val_loss"] == pytest.approx(float(F.cross_entropy(scores, target)), rel=1e-5)


def test_module_entry_point_reports_configuration_errors(tmp_path):
    """``python -m deepvideo train`` (what torchrun launches) names the recipe and the bad key."""
    import subprocess

    from typer.testing import CliRunner

    from deepvideo.cli.main import app

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: {{name: {TINY_MODEL}}}\ntrain: {{epochs: 1, lr: 0.1, warmup: 2}}\n")
    proc = subprocess.run([sys.executable, "-m", "deepvideo", "train", str(recipe)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "train.warmup" in proc.stderr and str(recipe) in proc.stderr
    recipe.write_text(f"model: {{name: {TINY_MODEL}}}\ntrain: {{epochs: 1, lr: 0.1}}\n")
    res = CliRunner().invoke(app, ["train", str(recipe), "train.nope=1"])
    assert res.exit_code == 2 and "override 'train.nope=1'" in res.output


def test_init_from_maps_prefixes_and_names_a_mismatch(tmp_path):
    from engine_helpers import HERE

    from deepvideo.engine.checkpoint import save_checkpoint

    source = TinyNet(2)
    save_checkpoint(tmp_path / "pre", source, {"config": {}, "class_names": ["a", "b"]})
    base = [f"model.name={TINY_MODEL}", f"model.imports=[{HERE}]"]
    entry = f"{{checkpoint: {tmp_path / 'pre'}, source: 'stem.', target: 'stem.'}}"
    model = build_model(load_config(overrides=[*base, f"model.init_from=[{entry}]"]), num_classes=2)
    assert torch.equal(model.stem.weight, source.stem.weight)
    assert not torch.equal(model.head.weight, source.head.weight)  # only the tensors under the prefix
    wrong = f"{{checkpoint: {tmp_path / 'pre'}, source: 'stem.', target: 'trunk.'}}"
    with pytest.raises(ConfigError, match="no tensor under 'stem.' matches the model's 'trunk.'"):
        build_model(load_config(overrides=[*base, f"model.init_from=[{wrong}]"]), num_classes=2)
    with pytest.raises(ConfigError, match=r"model.init_from\[0\].*unknown: src"):
        build_model(load_config(overrides=[*base, "model.init_from=[{src: x}]"]), num_classes=2)


def test_init_from_missing_checkpoint_names_the_entry(tmp_path):
    from engine_helpers import HERE

    entry = f"{{checkpoint: {tmp_path / 'nope'}, source: 'stem.'}}"
    cfg = load_config(overrides=[f"model.name={TINY_MODEL}", f"model.imports=[{HERE}]",
                                 f"model.init_from=[{entry}]"])
    with pytest.raises(ConfigError, match=r"model.init_from\[0\]: .*nope.*not a deepvideo checkpoint"):
        build_model(cfg, num_classes=2)
