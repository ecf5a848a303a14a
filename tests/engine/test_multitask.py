"""Multi-task training (Simonyan & Zisserman 2014, Sec. 5): one net, a UCF101 and an HMDB51 head,
each head's cross-entropy on its own dataset's clips only, the losses summed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from engine_helpers import make_videos

from deepvideo.data.dataset import MultiTaskDataset, collate_clips
from deepvideo.engine.build import build_model, load_checkpoint
from deepvideo.engine.build import task_config as _task_config
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import main_train
from deepvideo.engine.losses import compute_loss
from deepvideo.models.registry import create_model
from deepvideo.models.two_stream import multitask_loss

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"backbone": "resnet18", "width": 0.125, "input_size": 16, "modality": "rgb"}
RGB16 = {"modalities": ["rgb"], "flow_stack": 0, "crop_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3}


def small_multitask(heads: dict[str, int]):
    return create_model("two_stream_multitask", heads=heads, mean_subtraction=False, **SMALL)


def test_per_head_ignore_gives_zero_gradient_to_other_head():
    torch.manual_seed(0)
    model = small_multitask({"a": 3, "b": 2}).train()
    out = model({"rgb": torch.randn(4, 3, 1, 16, 16)})
    targets = {"a": torch.tensor([0, 2, 1, 0]), "b": torch.full((4,), -1)}
    loss, logits, parts = compute_loss(out, targets["a"], head_targets=targets)
    assert torch.isfinite(loss) and float(parts["aux_b"]) == 0.0
    loss.backward()
    assert model.heads["b"].weight.grad is not None
    assert torch.count_nonzero(model.heads["b"].weight.grad) == 0
    assert torch.count_nonzero(model.heads["b"].bias.grad) == 0
    assert torch.count_nonzero(model.heads["a"].weight.grad) > 0
    assert logits is out["logits"]


def test_summed_loss_matches_two_stream_multitask_loss():
    torch.manual_seed(1)
    model = small_multitask({"a": 3, "b": 2}).train()
    out = model({"rgb": torch.randn(5, 3, 1, 16, 16)})
    batch = {"label_a": torch.tensor([0, 2, -1, -1, 1]), "label_b": torch.tensor([-1, -1, 1, 0, -1])}
    targets = {"a": batch["label_a"], "b": batch["label_b"]}
    loss, _, parts = compute_loss(out, batch["label_a"], head_targets=targets)
    ref = multitask_loss(out, batch, ["a", "b"])
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(
        parts["aux_b"], torch.nn.functional.cross_entropy(out["aux_b"][2:4], targets["b"][2:4])
    )


def test_no_labelled_sample_anywhere_is_zero_not_nan():
    out = {"logits": torch.randn(2, 3, requires_grad=True), "aux_b": torch.randn(2, 2, requires_grad=True)}
    targets = {"a": torch.full((2,), -1), "b": torch.full((2,), -1)}
    loss, _, _ = compute_loss(out, targets["a"], head_targets=targets)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.count_nonzero(out["logits"].grad) == 0


def test_missing_head_output_names_the_key():
    out = {"logits": torch.randn(2, 3)}
    with pytest.raises(ValueError, match="aux_b"):
        compute_loss(
            out, torch.zeros(2, dtype=torch.long), head_targets={"a": torch.zeros(2), "b": torch.zeros(2)}
        )


class _ListDataset:
    def __init__(self, labels, classes):
        self.labels, self.classes = labels, classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, key):
        i = key[0] if isinstance(key, tuple) else key
        return {"rgb": torch.full((3, 1, 2, 2), float(i)), "label": self.labels[i], "index": i}


def test_multitask_dataset_labels_and_collate():
    ds = MultiTaskDataset(
        {"a": _ListDataset([0, 2], ["x", "y", "z"]), "b": _ListDataset([1, 0, 1], ["p", "q"])}
    )
    assert len(ds) == 5 and ds.head_names == ["a", "b"] and ds.classes == ["x", "y", "z"]
    assert ds.head_classes == {"a": ["x", "y", "z"], "b": ["p", "q"]}
    batch = collate_clips([ds[(i, 0)] for i in range(5)])
    assert batch["label_a"].tolist() == [0, 2, -1, -1, -1]
    assert batch["label_b"].tolist() == [-1, -1, 1, 0, 1]
    assert batch["index"].tolist() == [0, 1, 0, 1, 2]
    with pytest.raises(IndexError, match="out of range"):
        ds[5]


def test_recipe_loads_and_builds():
    cfg = load_config(ROOT / "configs" / "ucf101" / "two_stream_multitask.yaml")
    assert list(cfg.data.multitask) == ["ucf101", "hmdb51"]
    assert cfg.train.batch_size == 256 and cfg.train.milestone_steps == [50000, 70000]
    hm = _task_config(cfg, "hmdb51").data
    assert hm.train["format"] == "hmdb51" and hm.flow_root == "data/HMDB51_flow"
    assert hm.video_root == "data/HMDB51"
    model = build_model(cfg, 101, heads={"ucf101": 101, "hmdb51": 51})
    assert model.head_names == ["ucf101", "hmdb51"]
    assert model.heads["hmdb51"].out_features == 51 and model.input_spec.flow_stack == 10


def test_bad_task_entry_is_a_clear_error():
    cfg = load_config(
        ROOT / "configs" / "ucf101" / "two_stream_multitask.yaml", ["data.multitask.hmdb51.tran=1"]
    )
    with pytest.raises(ConfigError, match="data.multitask.hmdb51"):
        _task_config(cfg, "hmdb51")


def _read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_multitask_training_end_to_end(tmp_path):
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    make_videos(root_a, classes=3, per_class=3)
    make_videos(root_b, classes=2, per_class=3)
    recipe = {
        "name": "mt",
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "deterministic": True,
        "model": {
            "name": "two_stream_multitask",
            "kwargs": {**SMALL, "mean_subtraction": False},
            "spec": RGB16,
        },
        "data": {
            "multitask": {
                "a": {
                    "train": {"format": "folder", "root": str(root_a)},
                    "val": {"format": "folder", "root": str(root_a)},
                },
                "b": {
                    "train": {"format": "folder", "root": str(root_b)},
                    "val": {"format": "folder", "root": str(root_b)},
                },
            },
            "num_workers": 0,
        },
        "train": {
            "epochs": 2,
            "batch_size": 5,
            "optimizer": "adamw",
            "lr": 0.003,
            "weight_decay": 0.0,
            "schedule": "constant",
            "amp": "none",
            "log_every": 1,
        },
    }
    path = tmp_path / "mt.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = main_train(str(path), [])
    rows = result.history
    assert len(rows) == 2
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    metrics = _read_csv(result.run_dir / "metrics.csv")
    for head in ("a", "b"):
        assert all(0.0 <= float(r[f"val_{head}_top1"]) <= 100.0 for r in metrics)
    assert float(metrics[-1]["val_top1"]) == pytest.approx(float(metrics[-1]["val_a_top1"]))

    meta = json.loads((result.last_checkpoint / "checkpoint.json").read_text())
    assert meta["head_class_names"] == {"a": ["class0", "class1", "class2"], "b": ["class0", "class1"]}
    model, cfg, class_names, _ = load_checkpoint(result.run_dir)
    assert class_names == ["class0", "class1", "class2"]
    assert model.heads["a"].out_features == 3 and model.heads["b"].out_features == 2
    assert model({"rgb": torch.zeros(1, 3, 1, 16, 16)}).shape == (1, 3)
