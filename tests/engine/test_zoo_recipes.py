"""The CPU model-zoo recipes (configs/motion_shapes, configs/dynamic_scenes) and their benchmark.

Every recipe loads, names a registered model whose preset builds with the recipe's overrides,
and states its budget (epochs) in its header; one recipe per modality (RGB, flow, RGB + flow)
trains for one tiny step on a tiny synthetic set and is tested. The goal logic of
``benchmarks/bench_motion_shapes.py`` (the "Models I" acceptance) is checked on made-up figures.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

from deepvideo.engine.config import load_config
from deepvideo.models.registry import get_model_info, list_models

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted([*(ROOT / "configs" / "motion_shapes").glob("*.yaml"),
                  *(ROOT / "configs" / "dynamic_scenes").glob("*.yaml")])
EXPECTED = {"spatial", "temporal", "conv_fusion", "st_resnet_star", "st_multiplier", "t_resnet",
            "resnet_baseline"}


def test_every_row_has_a_recipe():
    assert {p.stem for p in RECIPES} == EXPECTED


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_loads_and_states_its_budget(path):
    cfg = load_config(path)
    assert cfg.model.name in {m.name for m in list_models()}
    assert cfg.model.name.endswith("_small"), "the CPU table uses the CPU-sized presets"
    info = get_model_info(cfg.model.name)
    # a lighter input than the preset's own crop, and a fixed-size head (input_size) that matches it
    crop = cfg.model.spec.get("crop_size", info.spec.crop_size)
    assert crop <= info.spec.crop_size
    if "input_size" in cfg.model.kwargs:
        assert cfg.model.kwargs["input_size"] == crop
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    budget = next((line for line in header if line.startswith("# Budget:")), None)
    assert budget is not None, f"{path}: no '# Budget:' line"
    assert int(re.search(r"(\d+) epochs", budget).group(1)) == cfg.train.epochs
    assert cfg.data.train["split"] == 1 and cfg.data.test["subset"] == "test"
    assert cfg.device == "cpu"


def test_baseline_is_t_resnet_without_temporal_units():
    from deepvideo.models.registry import create_model

    t_cfg = load_config(ROOT / "configs" / "dynamic_scenes" / "t_resnet.yaml")
    b_cfg = load_config(ROOT / "configs" / "dynamic_scenes" / "resnet_baseline.yaml")
    assert t_cfg.model.name == b_cfg.model.name
    assert (t_cfg.model.spec, t_cfg.train, t_cfg.eval) == (b_cfg.model.spec, b_cfg.train, b_cfg.eval)
    t_net = create_model(t_cfg.model.name, num_classes=6, **t_cfg.model.kwargs)
    b_net = create_model(b_cfg.model.name, num_classes=6, **b_cfg.model.kwargs)
    assert len(t_net.branch_units) == 8 and b_net.branch_units == []
    assert sum(p.numel() for p in b_net.parameters()) < sum(p.numel() for p in t_net.parameters())


@pytest.fixture(scope="module")
def tiny_motion_shapes(tmp_path_factory) -> Path:
    from deepvideo.data.synth import RenderParams, generate_dataset

    out = tmp_path_factory.mktemp("zoo") / "motion_shapes"
    generate_dataset("motion-shapes", out, videos_per_class=3, clips_per_group=1,
                     params=RenderParams(width=40, height=40, frames=12), workers=1, progress=False)
    return out


TINY = {  # one recipe per modality; crops shrunk to fit 40x40 frames
    "spatial": ["model.spec.crop_size=32", "model.kwargs.input_size=32"],
    "temporal": ["model.spec.crop_size=32", "model.kwargs.input_size=32"],
    "conv_fusion": ["model.spec.crop_size=96", "data.short_side=96"],  # its 3D pooling needs conv5 >= 3x3
    "st_resnet_star": ["model.spec.crop_size=32"],
    "st_multiplier": ["model.spec.crop_size=32"],
}
STREAMS = ("spatial", "temporal")  # the fusion recipes start from these rows' runs


def _tiny_run(row: str, root: Path, runs: Path):
    """One step of ``row``'s recipe on the tiny set, its runs under ``runs`` (as runs/zoo/ in the bench)."""
    from deepvideo.engine.loop import main_train

    recipe = runs / f"{row}.yaml"
    recipe.write_text((ROOT / "configs" / "motion_shapes" / f"{row}.yaml").read_text()
                      .replace("runs/zoo/", f"{runs.as_posix()}/"))
    overrides = [f"output_dir={runs / row}", "data.short_side=36", "data.flow_root=null",
                 f"data.video_root={root / 'videos'}", f"data.train.root={root}", f"data.test.root={root}",
                 "train.epochs=1", "train.max_iters_per_epoch=1", "train.batch_size=2", "train.log_every=1",
                 "eval.num_clips=1", "eval.batch_size=4", *TINY[row]]
    return main_train(str(recipe), overrides)


@pytest.fixture(scope="module")
def stream_runs(tiny_motion_shapes, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    for row in STREAMS:
        _tiny_run(row, tiny_motion_shapes, runs)
    return runs


@pytest.mark.parametrize("row", sorted(TINY))
def test_tiny_run_trains_and_tests(row, tiny_motion_shapes, stream_runs, tmp_path):
    from deepvideo.engine.evaluate import evaluate_checkpoint

    if row not in STREAMS:
        for stream in STREAMS:
            (tmp_path / stream).symlink_to(stream_runs / stream)
    result = _tiny_run(row, tiny_motion_shapes, tmp_path)
    assert result.steps == 1 and result.bad_items == []
    assert result.history and result.history[-1]["train_loss"] is not None
    test = evaluate_checkpoint(result.last_checkpoint, progress=False)
    assert test.scores.scores.shape == (10, 10)  # split 1 tests on 1 of 3 groups: 10 videos, 10 classes
    assert 0.0 <= test.metrics["video_hit@1"] <= 1.0


@pytest.mark.parametrize("row", ["conv_fusion", "st_resnet_star", "st_multiplier"])
def test_fusion_recipes_start_from_the_stream_runs(row, stream_runs):
    """Every tower tensor of the fusion nets comes from the two-stream rows' checkpoints."""
    from safetensors.torch import load_file

    from deepvideo.engine.build import build_model

    cfg = load_config(ROOT / "configs" / "motion_shapes" / f"{row}.yaml")
    for entry in cfg.model.init_from:
        entry["checkpoint"] = str(stream_runs / Path(entry["checkpoint"]).name)
    model = build_model(cfg, num_classes=10)
    motion = load_file(str(stream_runs / "temporal" / "checkpoints" / "last" / "model.safetensors"))

    def copies(w):  # model tensors equal to the 2D ``w`` (the ST nets hold it as a 1xkxk 3D kernel)
        return [k for k, v in model.state_dict().items()
                if v.numel() == w.numel() and torch.equal(v.reshape(w.shape), w)]

    assert len(copies(motion["backbone.conv1.weight"])) == 1  # the motion tower's conv1 (2L = 20 channels)
    assert len(copies(motion["backbone.layer4.1.conv2.weight"])) == 1


@pytest.fixture(scope="module")
def bench():
    import importlib.util

    path = ROOT / "benchmarks" / "bench_motion_shapes.py"
    spec = importlib.util.spec_from_file_location("bench_motion_shapes", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_rows_point_at_the_recipes(bench):
    assert {r.name for r in bench.ROWS} == EXPECTED
    for r in bench.ROWS:
        assert (ROOT / r.recipe).is_file() and Path(r.recipe).stem == r.name


def test_bench_goals(bench):
    results = {"temporal": {"video_acc": 0.93}, "resnet_baseline": {"video_acc": 0.70}}
    assert bench.judge("spatial", "chance10", 0.19, 0.1, results)[1] is True
    assert bench.judge("spatial", "chance10", 0.21, 0.1, results)[1] is False
    assert bench.judge("spatial", "chance10", 0.0, 0.1, results)[1] is True
    assert bench.judge("temporal", "acc90", 0.90, 0.1, results)[1] is True
    assert bench.judge("temporal", "acc90", 0.89, 0.1, results)[1] is False
    assert bench.judge("late_fusion", "atleast:temporal", 0.93, 0.1, results)[1] is True
    assert bench.judge("late_fusion", "atleast:temporal", 0.92, 0.1, results)[1] is False
    assert bench.judge("t_resnet", "beats:resnet_baseline", 0.70, 1 / 6, results)[1] is False
    assert bench.judge("t_resnet", "beats:resnet_baseline", 0.71, 1 / 6, results)[1] is True
    assert bench.judge("t_resnet", "beats:resnet_baseline", 0.71, 1 / 6, {})[1] is None
    assert bench.judge("resnet_baseline", "ref", 0.5, 1 / 6, results)[1] is None
