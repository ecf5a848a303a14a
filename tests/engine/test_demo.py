"""The demo, drastically reduced (tiny videos, 1 epoch), end to end on real rendered videos."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from deepvideo.engine.demo import DemoError, conv_fusion_model, load_demo_recipe, run_demo
from deepvideo.engine.fusion import load_scores

TINY = ("model.spec.crop_size=24", "train.batch_size=4", "eval.num_clips=2", "eval.batch_size=4")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, videos_per_class=3, size=32, frames=10, epochs=1, extra_overrides=TINY,
                    progress=False)


def test_demo_table_and_report(demo):
    rows = demo.rows
    names = list(rows)
    assert names[:2] == ["appearance", "motion"]
    assert any(n.startswith("late fusion (softmax avg 1:3)") for n in names)
    assert "late fusion (linear SVM)" in names
    if conv_fusion_model() is not None:
        assert any(n.startswith("conv fusion") for n in names)
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
    summary = json.loads((demo.out / "results.json").read_text())
    assert summary["rows"]["motion"]["video_hit@1"] == pytest.approx(rows["motion"]["video_hit@1"])
    assert summary["wall_time_s"] > 0 and summary["cpu_s"]["total"] > 0


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
