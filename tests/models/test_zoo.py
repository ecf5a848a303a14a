import json

import pytest
from torch import nn

from deepvideo.models import get_model_info, register_model
from deepvideo.models.zoo import render, render_page, zoo_rows
from deepvideo.spec import InputSpec

TABLE = {"title": "CPU training table", "description": "motion-shapes, split 1.",
         "command": "python benchmarks/bench_motion_shapes.py", "columns": ["model", "video acc %"],
         "rows": [["motion stream", 88.0]], "machine": {"date": "2026-11-22", "cpu_count": 2}}


@register_model(spec=InputSpec(("rgb",)), summary="registered by a test")
def zoo_test_outsider(num_classes: int = 400) -> nn.Module:
    return nn.Linear(3, num_classes)


def test_zoo_page_includes_measured_training_tables():
    page = render([], [TABLE])
    assert "## CPU training table" in page
    assert "| motion stream | 88.0 |" in page
    assert "Command: `python benchmarks/bench_motion_shapes.py`" in page
    assert "CPU training table" not in render([])


def test_rows_carry_the_registrys_published_figures():
    (row,) = zoo_rows(["x3d_xs"])
    pub = get_model_info("x3d_xs").published
    assert (row["pub_params"], row["pub_gflops"], row["pub_source"]) == (pub.params_m, pub.gflops, pub.source)
    assert row["flops_at"] == f"{pub.frames}x{pub.crop}²"  # counted at the published test size
    (plain,) = zoo_rows(["c3d"], flops=False)
    assert plain["pub_params"] is None and plain["gflops"] is None and plain["params"] > 0


def test_render_page_reads_only_the_results_folder_it_is_given(tmp_path):
    (tmp_path / "zoo_motion.json").write_text(json.dumps(TABLE))
    (tmp_path / "other.json").write_text(json.dumps({**TABLE, "title": "not a zoo table"}))
    names = ["r3d_18", "x3d_xs", "zoo_test_outsider"]
    page = render_page(tmp_path, names=names)
    assert "zoo_test_outsider" not in page  # only deepvideo's own presets: the page is the library's
    assert page == render_page(tmp_path, names=names)  # deterministic: same input, same bytes
    assert "## CPU training table" in page and "not a zoo table" not in page
    assert "| `r3d_18` |" in page and "| `x3d_xs` |" in page and "| `c3d` |" not in page
    # without a folder there is no training table, whatever the repository holds
    assert "## CPU" not in render_page(None, names=names)
    with pytest.raises(FileNotFoundError, match="no such results folder"):
        render_page(tmp_path / "missing", names=names)
