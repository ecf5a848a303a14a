"""The demo, drastically reduced (tiny videos, 1 epoch), end to end on real rendered videos, and
the pieces its figures rest on: mean flow subtraction, conv fusion started from the two
streams, repeatable runs, results.json as the source of the README table."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from deepvideo.engine.demo import DemoError, find_recipe_dir, load_demo_recipe, make_data, run_demo
from deepvideo.engine.fusion import load_scores
from deepvideo.models import create_model

TINY = ("model.spec.crop_size=64", "train.batch_size=4", "eval.num_clips=2", "eval.batch_size=4",
        "train.val_every=100")
CONV_ROW = "conv fusion (conv_fusion_small)"


def _run(out, progress=False):
    return run_demo(out, videos_per_class=3, size=64, frames=10, epochs=1, extra_overrides=TINY,
                    progress=progress)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("demo"))


def test_demo_table_and_report(demo):
    rows = demo.rows
    names = list(rows)
    assert names[:2] == ["appearance", "motion"]
    assert any(n.startswith("late fusion (softmax avg 1:3)") for n in names)
    assert names[2:] == ["late fusion (softmax avg 1:3)", "late fusion (linear SVM)", CONV_ROW]
    for name, m in rows.items():
        keys = ["video_hit@1", "video_hit@5", "mean_class_accuracy"]
        if not name.startswith("late fusion"):  # late fusion has video scores only
            keys.append("clip_hit@1")
        for key in keys:
            assert 0.0 <= m[key] <= 1.0
        assert m["num_videos"] == 10  # 10 classes x 1 test video (split 1 of 3 groups)
    assert "clip_hit@1" not in rows["late fusion (linear SVM)"]
    for name in ("appearance", "motion"):
        assert rows[name]["num_views"] == 2

    report = demo.report.read_text()
    assert report.startswith("# deepvideo demo")
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | clip hit@1 | clip hit@5 | video hit@1 | video hit@5 |")
    body = {line.split(" | ")[0][2:]: line for line in table[1:]}
    for name in names:
        assert name in body
        cells = body[name].strip("| ").split(" | ")[1:5]
        clip = ["-", "-"] if name.startswith("late fusion") else [r"\d{1,3}\.\d"] * 2
        for cell, pattern in zip(cells, [*clip, r"\d{1,3}\.\d", r"\d{1,3}\.\d"], strict=True):
            assert re.fullmatch(pattern, cell), body[name]
    assert "![confusion matrix](confusion.png)" in report and "curves_motion.png" in report
    assert "| **total** |" in report and "Chance is 10.0%" in report
    for name in ("confusion.png", "curves_appearance.png", "curves_motion.png"):
        assert (demo.out / name).read_bytes()[:4] == b"\x89PNG"
    assert "## Moving-camera test set" in report


def test_results_json_holds_every_row_the_moving_camera_test_and_the_timing(demo):
    summary = json.loads((demo.out / "results.json").read_text())
    assert list(summary["rows"]) == list(demo.rows)
    for name, m in demo.rows.items():
        assert summary["rows"][name]["video_hit@1"] == pytest.approx(m["video_hit@1"])
    # moving-camera test set: seed 1, 3 videos per class (capped by the tiny run), split-1 train list
    assert list(summary["moving_camera"]) == ["appearance", "motion", CONV_ROW]
    assert all(m["num_videos"] == 20 for m in summary["moving_camera"].values())
    moving = json.loads((demo.out / "data" / "moving_camera_test" / "synth.json").read_text())
    main = json.loads((demo.out / "data" / "main" / "synth.json").read_text())
    assert moving["seed"] == 1 and moving["parameters"]["moving_camera"] is True
    assert main["seed"] == 0 and main["parameters"]["mixed_camera"] is True
    assert main["counts"]["camera"] == {"static": 20, "moving": 10}
    steps = ["synthesize videos", "optical flow", "train + test appearance", "train + test motion",
             "train + test conv fusion"]
    assert list(summary["timings_s"]) == steps and all(v > 0 for v in summary["timings_s"].values())
    assert summary["wall_time_s"] >= sum(summary["timings_s"].values()) > 0
    assert summary["cpu_s"]["total"] > 0 and summary["machine"]["cpu_count"] >= 1


def test_a_second_run_repeats_every_figure_and_prints_a_line_per_step(demo, tmp_path, capsys):
    """Every model's initial weights are seeded: the same figures in a process whose torch
    random state the first run already moved (the appearance row used to vary)."""
    again = _run(tmp_path / "again", progress=None)  # captured stderr is not a terminal: lines
    assert {k: m["video_hit@1"] for k, m in again.rows.items()} == \
        {k: m["video_hit@1"] for k, m in demo.rows.items()}
    assert again.moving_rows["appearance"]["video_hit@1"] == demo.moving_rows["appearance"]["video_hit@1"]
    np.testing.assert_array_equal(load_scores(again.out / "appearance" / "test").scores,
                                  load_scores(demo.out / "appearance" / "test").scores)
    out, err = capsys.readouterr()
    assert re.search(r"^demo: train \+ test motion done in [\d.]+ s: video hit@1 \d+\.\d%, "
                     r"moving camera \d+\.\d%$", err, re.M)
    for step in ("synthesize videos", "optical flow", "train + test appearance", "train + test conv fusion"):
        assert f"demo: {step} done in " in err
    assert re.search(r"^epoch 1/1  train loss [\d.]+  top-1 [\d.]+%", out, re.M)  # one line per epoch


def test_conv_fusion_recipe_starts_from_both_trained_streams(demo):
    """The recipe's init_from renames fill every tower and head tensor of the fusion net with a
    tensor of a trained stream (only the fusion layer starts from its own initialization)."""
    recipe = OmegaConf.to_container(OmegaConf.load(find_recipe_dir() / "conv_fusion.yaml"))
    state = create_model(recipe["model"]["name"], num_classes=10).state_dict()
    loaded = {}
    for entry in recipe["model"]["init_from"]:
        source = load_file(demo.out / entry["checkpoint"] / "model.safetensors")
        for key, value in source.items():
            target = entry["target"] + key[len(entry["source"]):]
            if key.startswith(entry["source"]) and target in state and state[target].shape == value.shape:
                loaded[target] = (entry["checkpoint"], value)
    assert not [k for k in state if k not in loaded and not k.startswith("fuse.")]
    assert {c for k, (c, _) in loaded.items() if k.startswith("spatial")} == {"appearance/checkpoints/last"}
    assert {c for k, (c, _) in loaded.items() if k.startswith("temporal")} == {"motion/checkpoints/last"}


def test_motion_stream_removes_camera_motion_so_a_pan_or_zoom_changes_nothing():
    recipe = OmegaConf.to_container(OmegaConf.load(find_recipe_dir() / "motion.yaml"))
    kwargs = recipe["model"]["kwargs"]
    assert kwargs["mean_subtraction"] == "affine"
    torch.manual_seed(0)
    net = create_model(recipe["model"]["name"], num_classes=5, **kwargs).eval()
    without = create_model(recipe["model"]["name"], num_classes=5, **{**kwargs, "mean_subtraction": False})
    without.load_state_dict(net.state_dict())
    without.eval()
    flow = torch.randn(2, 2, 10, 32, 32)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    pan = torch.randn(2, 2, 10, 1, 1) * 3  # every field shifted by its own (u, v)
    zoom = torch.rand(2, 1, 10, 1, 1) * torch.stack([xs, ys])[None, :, None]  # u ~ x, v ~ y
    moved = flow + pan + zoom
    torch.testing.assert_close(net({"flow": moved}), net({"flow": flow}), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(without({"flow": moved}), without({"flow": flow}), atol=1e-3)


def test_demo_saved_scores_reproduce_fusion(demo):
    app = load_scores(demo.out / "appearance" / "test")
    mot = load_scores(demo.out / "motion" / "test")
    fused = load_scores(demo.out / "fusion_average")
    assert app.view_logits.shape == (10, 2, 10) and app.class_names[0] == "MoveLeft"
    assert app.video_ids == mot.video_ids and app.video_ids[0].endswith(".mp4")
    from deepvideo.engine.metrics import softmax

    np.testing.assert_allclose(fused.scores, (softmax(app.scores) + 3 * softmax(mot.scores)) / 4, rtol=1e-5)


def test_demo_recipe_errors(tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text("synth: [unclosed\n")
    with pytest.raises(DemoError, match="demo.yaml: not valid YAML"):
        load_demo_recipe(bad)
    with pytest.raises(DemoError, match="demo recipe not found"):
        load_demo_recipe(tmp_path / "nope.yaml")
    with pytest.raises(DemoError, match="synth.camera: 'sideways' is not one of static, moving, mixed"):
        make_data(tmp_path / "data", {"set": "motion-shapes", "size": 32, "frames": 4, "videos_per_class": 3,
                                      "seed": 0, "camera": "sideways"}, progress=False)
