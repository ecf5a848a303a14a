"""benchmarks/bench_dynamic_idt.py: its recipes, the fused rows, and the table it puts in docs/features.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["Flicker", "Ripples", "RotatingFan"]


@pytest.fixture(scope="module")
def bench(bench_import):
    return bench_import("bench_dynamic_idt")


@pytest.fixture(scope="module")
def render_docs(bench_import):
    return bench_import("render_docs")


def test_recipes_name_the_dynamic_image_presets(bench):
    from deepvideo.engine.config import load_config
    from deepvideo.models.registry import get_model_info

    modality = {"dynamic_image": "rgb", "dynamic_flow": "flow"}
    for net, recipe in bench.NETS.items():
        cfg = load_config(bench.RECIPES / recipe)
        info = get_model_info(cfg.model.name)
        assert info.family == "dynamic_images" and info.spec.modalities == (modality[net],)
        assert cfg.data.flip is True and cfg.train.epochs == 24


def score_set(scores, labels, kind: str):
    from deepvideo.engine.fusion import ScoreSet

    ids = [f"{CLASSES[y]}/v{i}.mp4" for i, y in enumerate(labels)]
    s = np.asarray(scores, np.float32)
    return ScoreSet(ids, labels, s[:, None], s, CLASSES, "mean", {"scores": kind} if kind else {})


def test_fused_rows_choose_weights_on_validation_and_score_the_motion_classes(bench):
    labels = [0, 1, 2, 2]
    # the network is sure of the fan and slightly wrong on the two motion classes; the SVM the reverse
    net = score_set([[0, 0.1, 0], [0.1, 0, 0], [0, 0, 10], [0, 0, 10]], labels, "")
    idt = score_set([[1, -1, -1], [-1, 1, -1], [-1, -0.9, -1], [-1, -0.9, -1]], labels, "svm")
    models = {"dynamic_image": {"test": net, "val": net}, "idt": {"test": idt, "val": idt}}
    rows, accs = bench.fused_rows(models)
    assert [r[0] for r in rows] == ["dynamic-image network (RGB)", "IDT + FV + SVM", "dynamic image + IDT"]
    assert rows[0][1:] == ["50.0", "0.0", "- (50.0)"]  # 2 of 4 right, neither Flicker nor Ripples
    assert rows[1][1:] == ["50.0", "100.0", "- (50.0)"]
    fused = accs["dynamic image + IDT"]
    assert fused["test"] == 1.0 and fused["motion_classes"] == 1.0 and fused["val"] == 1.0
    assert fused["weights"][0] == 1.0 and fused["weights"][1] > 0


def test_fused_rows_refuse_scores_of_other_videos(bench):
    net = score_set([[1, 0, 0], [0, 1, 0]], [0, 1], "")
    other = score_set([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [0, 1, 2], "svm")
    with pytest.raises(SystemExit, match="scores for other videos"):
        bench.fused_rows({"dynamic_image": {"test": net, "val": net}, "idt": {"test": other, "val": other}})


def test_features_page_renders_the_recorded_table(render_docs, tmp_path):
    result = {"command": "python benchmarks/bench_dynamic_idt.py", "columns": ["method", "test %"],
              "rows": [["IDT + FV + SVM", "99.2"]], "machine": {"date": "2026-12-02", "cpu_count": 2}}
    (tmp_path / "dynamic_idt.json").write_text(json.dumps(result))
    page = f"intro\n{render_docs.DYNAMIC_IDT_START}\nold\n{render_docs.DYNAMIC_IDT_END}\nrest\n"
    new = render_docs.features_page(page, tmp_path)
    assert "old" not in new and new.endswith(f"{render_docs.DYNAMIC_IDT_END}\nrest\n")
    assert "| method | test % |\n|---|---|\n| IDT + FV + SVM | 99.2 |" in new
    assert "`python benchmarks/bench_dynamic_idt.py`; measured 2026-12-02 on 2 CPU cores" in new
    with pytest.raises(SystemExit, match="bench_dynamic_idt.py"):
        render_docs.features_page(page, tmp_path / "none")


def test_committed_features_page_is_current(render_docs):
    page = (ROOT / "docs" / "features.md").read_text()
    assert page == render_docs.features_page(page), "docs/features.md dynamic-idt table is stale: make docs"
