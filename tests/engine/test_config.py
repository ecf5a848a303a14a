"""Recipes: YAML + overrides -> validated dataclasses; clear errors; run files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deepvideo import __version__
from deepvideo.engine.config import (
    Config,
    ConfigError,
    config_from_dict,
    config_to_dict,
    git_revision,
    load_config,
    write_run_files,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _recipe(tmp_path, text: str) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_yaml_and_overrides_become_typed_dataclasses(tmp_path):
    p = _recipe(
        tmp_path,
        "name: r1\nmodel: {name: c3d, spec: {crop_size: 56}}\n"
        "data: {train: {format: folder, root: /v}}\ntrain: {lr: 0.5, milestones: [2, 4]}\n",
    )
    cfg = load_config(p, ["train.lr=0.25", "train.epochs=3", "eval.num_clips=10", "data.train.split=2"])
    assert isinstance(cfg, Config)
    assert cfg.train.lr == 0.25 and cfg.train.epochs == 3 and cfg.train.milestones == [2, 4]
    assert cfg.eval.num_clips == 10 and cfg.eval.test_crops == 1 and cfg.eval.aggregation == "mean"
    assert cfg.model.spec == {"crop_size": 56}
    assert cfg.data.train == {"format": "folder", "root": "/v", "split": 2}
    assert cfg.output_dir == "runs/r1"  # ${name} interpolation resolved
    assert cfg.train.optimizer == "sgd" and cfg.train.momentum == 0.9  # defaults kept


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    p = _recipe(tmp_path, "model: {name: c3d}\ntrain: {learning_rate: 0.1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "train.learning_rate" in str(e.value) and str(p) in str(e.value)
    assert "lr" in str(e.value)  # lists the keys that do exist in that section


def test_unknown_override_and_malformed_override():
    with pytest.raises(ConfigError, match=r"override 'train\.lrr=3'.*'train\.lrr'"):
        load_config(overrides=["model.name=c3d", "train.lrr=3"])
    with pytest.raises(ConfigError, match="unknown configuration key 'optim'"):
        load_config(overrides=["model.name=c3d", "optim=sgd"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(overrides=["model.name=c3d", "train.lr"])


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.lr=fast", "train.lr"),
        ("train.optimizer=adam", "train.optimizer='adam' is not one of sgd, adamw"),
        ("train.schedule=linear", "train.schedule"),
        ("eval.test_crops=5", "eval.test_crops must be 1, 3 or 10"),
        ("train.batch_size=0", "train.batch_size must be >= 1"),
        ("train.grad_accum=3", "not divisible by train.grad_accum"),
        ("train.label_smoothing=1.5", "label_smoothing"),
        ("eval.aggregation=median", "eval.aggregation"),
    ],
)
def test_invalid_values_are_named(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=["model.name=c3d", override])


def test_missing_file_bad_yaml_and_missing_model(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_recipe(tmp_path, "model: {name: [\n"))
    with pytest.raises(ConfigError, match="model.name is required"):
        load_config(overrides=["train.lr=0.1"])


def test_run_files_round_trip(tmp_path):
    cfg = load_config(overrides=["model.name=c3d", "train.freeze=[stem.*,layer1.*]", "seed=7"])
    info = write_run_files(cfg, tmp_path / "run", {"world_size": 1})
    assert load_config(tmp_path / "run" / "config.yaml") == cfg
    saved = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert saved["deepvideo_version"] == __version__ == info["deepvideo_version"]
    assert saved["git_revision"] == git_revision()
    assert saved["world_size"] == 1
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert not list((tmp_path / "run").glob(".*tmp*"))  # temporary names renamed away


def test_git_revision_outside_a_repository(tmp_path):
    assert git_revision(tmp_path) == "unknown"
    rev = git_revision()
    assert rev == "unknown" or len(rev.split("+")[0]) == 40


def _training_recipes():
    """Recognition recipes (demo.yaml is the demo's own format; other tasks' recipes, e.g.
    configs/track/siamfc.yaml, are checked by their task's tests)."""
    out = []
    for p in sorted(CONFIGS.rglob("*.yaml")):
        recipe = yaml.safe_load(p.read_text()) or {}
        if "model" in recipe and recipe.get("task", "recognition") == "recognition":
            out.append(p)
    return out


@pytest.mark.parametrize("path", _training_recipes(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_recipes_are_valid_and_name_registered_models(path):
    from deepvideo.models.registry import get_model_info

    cfg = load_config(path)
    info = get_model_info(cfg.model.name)
    spec = info.spec.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.spec.items()})
    assert spec.crop_size >= 1


@pytest.mark.parametrize("path", _training_recipes(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_recipe_data_sections_fit_their_format_loaders(path):
    import inspect

    from deepvideo.data.formats import FORMATS

    cfg = load_config(path)
    for split in ("train", "val", "test"):
        section = dict(getattr(cfg.data, split))
        if not section:
            continue
        loader = FORMATS[section.pop("format")]
        inspect.signature(loader).bind(**section)  # raises TypeError on a wrong option


def _lr_at(cfg, steps_per_epoch: int, step: int) -> float:
    import torch

    from deepvideo.engine.optim import build_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.train.lr)
    sched = build_schedule(opt, cfg.train, steps_per_epoch)
    sched.iteration = step
    sched._apply()
    return opt.param_groups[0]["lr"]


def test_st_resnet_recipe_is_the_papers():
    """ST-ResNet (PAPERS.md 4): batch 128, BN over 4, lr 1e-3 30K, 1e-4 30K, 1e-5 20K."""
    cfg = load_config(CONFIGS / "ucf101" / "st_resnet50.yaml")
    assert cfg.train.batch_size == 128 and cfg.model.sub_batch_bn == 4 and cfg.train.momentum == 0.9
    assert cfg.train.max_steps == 80_000
    for step, lr in (
        (0, 1e-3),
        (29_999, 1e-3),
        (30_000, 1e-4),
        (59_999, 1e-4),
        (60_000, 1e-5),
        (79_999, 1e-5),
    ):
        assert _lr_at(cfg, 74, step) == pytest.approx(lr), step


def test_tsn_recipes_are_the_papers():
    """TSN: RGB lr 0.001 /10 every 2,000 it, 4,500 it; flow 0.005 /10 at 12K and 18K, 20K it; batch 256."""
    rgb = load_config(CONFIGS / "ucf101" / "tsn_r50_rgb.yaml")
    assert rgb.train.batch_size == 256 and rgb.train.max_steps == 4_500
    assert [_lr_at(rgb, 37, s) for s in (0, 2_000, 4_000, 4_499)] == pytest.approx([1e-3, 1e-4, 1e-5, 1e-5])
    flow = load_config(CONFIGS / "ucf101" / "tsn_r50_flow.yaml")
    assert flow.train.max_steps == 20_000 and flow.data.flow_root
    assert [_lr_at(flow, 37, s) for s in (0, 11_999, 12_000, 18_000)] == pytest.approx(
        [5e-3, 5e-3, 5e-4, 5e-5]
    )
