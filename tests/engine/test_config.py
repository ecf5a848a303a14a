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
    p = _recipe(tmp_path, "name: r1\nmodel: {name: c3d, spec: {crop_size: 56}}\n"
                          "data: {train: {format: folder, root: /v}}\ntrain: {lr: 0.5, milestones: [2, 4]}\n")
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


@pytest.mark.parametrize("override,match", [
    ("train.lr=fast", "train.lr"),
    ("train.optimizer=adam", "train.optimizer='adam' is not one of sgd, adamw"),
    ("train.schedule=linear", "train.schedule"),
    ("eval.test_crops=5", "eval.test_crops must be 1, 3 or 10"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("train.grad_accum=3", "not divisible by train.grad_accum"),
    ("train.label_smoothing=1.5", "label_smoothing"),
    ("eval.aggregation=median", "eval.aggregation"),
])
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
    out = []
    for p in sorted(CONFIGS.rglob("*.yaml")):
        if "model" in (yaml.safe_load(p.read_text()) or {}):  # demo.yaml is the demo's own format
            out.append(p)
    return out


@pytest.mark.parametrize("path", _training_recipes(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_shipped_recipes_are_valid_and_name_registered_models(path):
    from deepvideo.models.registry import get_model_info

    cfg = load_config(path)
    info = get_model_info(cfg.model.name)
    spec = info.spec.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.spec.items()})
    assert spec.crop_size >= 1
