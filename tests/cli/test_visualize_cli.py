"""``deepvideo visualize``: every command on a saved motion-stream checkpoint and a rendered
motion-shapes video, its files, and errors as one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deepvideo.cli.main import app


@pytest.fixture(scope="module")
def run_and_video(tmp_path_factory):
    """A demo_temporal_cnn checkpoint (L = 4, 32x32 crops) and a 32x32 MoveRight video."""
    from deepvideo.data.synth.common import RenderParams, video_rngs
    from deepvideo.data.synth.motion_shapes import CLASSES, SET
    from deepvideo.engine.checkpoint import save_checkpoint
    from deepvideo.engine.config import config_to_dict, load_config
    from deepvideo.io import write_video
    from deepvideo.models.registry import create_model

    root = tmp_path_factory.mktemp("vis")
    clip = SET.render(1, 0, *video_rngs(0, SET.name, 1, 0), RenderParams(width=32, height=32, frames=8))
    video = write_video(root / "right.mp4", clip.frames, fps=8)
    torch.manual_seed(0)
    model = create_model("demo_temporal_cnn", num_classes=10, flow_stack=4, width=4)
    cfg = load_config(
        overrides=[
            "model.name=demo_temporal_cnn",
            "model.kwargs.flow_stack=4",
            "model.kwargs.width=4",
            "model.num_classes=10",
        ]
    )
    spec = {"modalities": ["flow"], "flow_stack": 4, "crop_size": 32, "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    meta = {"config": config_to_dict(cfg), "class_names": list(CLASSES), "epoch": 1, "input_spec": spec}
    save_checkpoint(root / "run" / "checkpoints" / "last", model, meta)
    return root / "run" / "checkpoints" / "last", video


def _run(*args):
    result = CliRunner().invoke(app, ["visualize", *map(str, args)])
    return result


def test_maximize_writes_clips_grid_and_report(run_and_video, tmp_path):
    ck, _ = run_and_video
    r = _run(
        "maximize",
        ck,
        "--channel",
        "MoveLeft,MoveRight",
        "--steps",
        "3",
        "--jitter",
        "2",
        "--stats",
        "none",
        "--formats",
        "png,gif",
        "--zoom",
        "1",
        "--out",
        tmp_path / "m",
    )
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == [
        "grid.png",
        "logits_c0.gif",
        "logits_c0.png",
        "logits_c1.gif",
        "logits_c1.png",
        "maximize.json",
        "report.md",
    ]
    grid = np.asarray(Image.open(tmp_path / "m" / "grid.png"))
    assert grid.shape[:2] == (2 * 32 + 2, 4 * 32 + 3 * 2)  # 2 units x 4 flow fields
    summary = json.loads((tmp_path / "m" / "maximize.json").read_text())
    assert [s["channel"] for s in summary] == [0, 1] and summary[0]["options"]["steps"] == 3
    assert "(MoveLeft)" in (tmp_path / "m" / "report.md").read_text()


def test_gradcam_occlusion_filters(run_and_video, tmp_path):
    ck, video = run_and_video
    r = _run(
        "gradcam",
        ck,
        video,
        "--class",
        "MoveRight",
        "--formats",
        "png",
        "--zoom",
        "1",
        "--out",
        tmp_path / "g",
    )
    assert r.exit_code == 0, r.output
    png = np.asarray(Image.open(tmp_path / "g" / "right_MoveRight.png"))
    assert png.shape[:2] == (32, 4 * (2 * 32 + 2) + 3 * 2)  # 4 fields of (input with heat | heat)
    assert "layer `net.features.3.0`" in (tmp_path / "g" / "report.md").read_text()
    r = _run(
        "occlusion",
        ck,
        video,
        "--class",
        "1",
        "--mode",
        "time",
        "--frames",
        "2",
        "--formats",
        "png",
        "--out",
        tmp_path / "o",
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "right_MoveRight_time.png").is_file()
    r = _run("filters", ck, "--count", "3", "--zoom", "2", "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(tmp_path / "f" / "filters.png")).shape[:2] == (
        3 * 14 + 2 * 2,
        4 * 14 + 3 * 2,
    )


def test_errors_are_one_line(run_and_video, tmp_path):
    ck, video = run_and_video
    r = _run("maximize", ck, "--layer", "net.nope", "--stats", "none", "--steps", "1", "--out", tmp_path)
    assert r.exit_code == 1 and "has no layer 'net.nope'" in r.output
    r = _run("maximize", ck, "--reg", "tv9", "--out", tmp_path)
    assert r.exit_code == 2 and "unknown regulariser" in r.output
    r = _run("maximize", ck, "--jitter", "-1", "--out", tmp_path)
    assert r.exit_code == 2 and "jitter must be >= 0 pixels, got -1" in r.output
    r = _run("gradcam", ck, video, "--class", "Jump")
    assert r.exit_code == 2 and "--class 'Jump'" in r.output
    r = _run("gradcam", ck, tmp_path / "missing.mp4")
    assert r.exit_code == 2 and "no such file" in r.output
    r = _run("filters", tmp_path / "not_a_run")
    assert r.exit_code == 1 and "error:" in r.output


@pytest.fixture(scope="module")
def run_with_data(tmp_path_factory):
    """A demo_temporal_cnn checkpoint whose recipe names a rendered motion-shapes set (flow on the fly)."""
    from deepvideo.engine.checkpoint import save_checkpoint
    from deepvideo.engine.config import config_to_dict, load_config
    from deepvideo.engine.demo import data_overrides, make_data
    from deepvideo.models.registry import create_model

    root = tmp_path_factory.mktemp("visdata")
    data = make_data(
        root / "data",
        {"set": "motion-shapes", "videos_per_class": 3, "size": 32, "frames": 6, "seed": 0, "workers": 1},
        False,
    )
    overrides = [o for o in data_overrides(data, root / "flow", 1) if not o.startswith("data.flow_root")]
    cfg = load_config(
        overrides=[
            *overrides,
            "model.name=demo_temporal_cnn",
            "model.kwargs.flow_stack=4",
            "model.kwargs.width=4",
            "model.num_classes=10",
            "eval.batch_size=4",
            "data.num_workers=0",
        ]
    )
    torch.manual_seed(0)
    model = create_model("demo_temporal_cnn", num_classes=10, flow_stack=4, width=4)
    spec = {"modalities": ["flow"], "flow_stack": 4, "crop_size": 32, "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    from deepvideo.data.synth.motion_shapes import CLASSES

    meta = {"config": config_to_dict(cfg), "class_names": list(CLASSES), "epoch": 1, "input_spec": spec}
    return save_checkpoint(root / "run" / "checkpoints" / "last", model, meta)


def test_topk_maximize_with_measured_a_hat_and_layers(run_with_data, tmp_path):
    ck = run_with_data
    r = _run(
        "topk",
        ck,
        "test",
        "--layer",
        "net.features.2",
        "--channel",
        "3",
        "-k",
        "2",
        "--formats",
        "png",
        "--zoom",
        "1",
        "--out",
        tmp_path / "t",
    )
    assert r.exit_code == 0, r.output
    report = (tmp_path / "t" / "report.md").read_text()
    assert report.count("dataset clip") == 2 and len(list((tmp_path / "t").glob("top0*_clip*.png"))) == 2
    r = _run(
        "topk", ck, "test", "--channel", "MoveUp", "-k", "1", "--formats", "png", "--out", tmp_path / "c"
    )
    assert r.exit_code == 0, r.output  # a class unit: Grad-CAM at the last convolution
    assert len(list((tmp_path / "c").glob("top01_clip*.png"))) == 1
    cache = tmp_path / "amax.json"
    r = _run(
        "maximize",
        ck,
        "--layer",
        "net.features.2",
        "--channel",
        "3",
        "--steps",
        "2",
        "--stats",
        "test",
        "--stats-batches",
        "1",
        "--cache",
        cache,
        "--formats",
        "png",
        "--out",
        tmp_path / "m",
    )
    assert r.exit_code == 0, r.output
    a_hat = json.loads(cache.read_text())["net.features.2"]
    assert len(a_hat) == 8 and json.loads((tmp_path / "m" / "maximize.json").read_text())[0]["a_hat"] == (
        pytest.approx(a_hat[3])
    )
    r = _run("layers", ck)
    assert r.exit_code == 0 and "net.features.2" in r.output and "logits" in r.output
