"""Generated pages are current: each committed page equals its rendering from the stored results.

docs/model_zoo.md is rendered in a fresh process (profiling every registered model: about 15 s
on 2 idle cores), so models that other tests register do not enter it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render_docs(bench_import):
    return bench_import("render_docs")


def test_benchmarks_page_is_current(render_docs):
    committed = (ROOT / "docs" / "benchmarks.md").read_text()
    assert committed == render_docs.render(), "docs/benchmarks.md is stale: run `make docs`"


def test_readme_demo_block_is_current(render_docs):
    readme = (ROOT / "README.md").read_text()
    assert readme == render_docs.readme_with_demo_block(readme), "README.md demo block is stale: make docs"


def test_tracking_page_tracker_table_is_current(render_docs):
    page = (ROOT / "docs" / "tracking.md").read_text()
    assert page == render_docs.tracking_page(page), "docs/tracking.md tracker table is stale: make docs"


def test_model_zoo_page_is_current():
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('render_docs', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "sys.stdout.write(m.model_zoo_page())")
    page = subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks" / "render_docs.py")],
                          capture_output=True, text=True, check=True).stdout
    assert (ROOT / "docs" / "model_zoo.md").read_text() == page, "docs/model_zoo.md is stale: make docs"


def test_demo_table_shows_the_range_over_runs(render_docs, tmp_path):
    def run(app: float, mot: float, wall: float) -> dict:
        rows = {"appearance": {"clip_hit@1": app, "video_hit@1": app, "video_hit@5": 0.5},
                "motion": {"clip_hit@1": 0.9, "video_hit@1": mot, "video_hit@5": 1.0},
                "late fusion (softmax avg 1:3)": {"video_hit@1": mot}}
        return {"rows": rows, "moving_camera": {"motion": {"video_hit@1": 0.85}}, "wall_time_s": wall,
                "synth": {"set": "motion-shapes", "videos_per_class": 30, "frames": 32, "size": 96,
                          "camera": "mixed"},
                "machine": {"cpu_count": 2, "torch_threads": 2, "load_average": 1.5},
                "date": "2026-12-01 10:00:00"}

    for r in (run(0.05, 0.92, 300.0), run(0.12, 0.92, 360.0)):
        path = tmp_path / "results.json"
        path.write_text(json.dumps(r))
        render_docs.add_demo_run(path, tmp_path)
    columns, rows = render_docs.demo_table(json.loads((tmp_path / "demo.json").read_text())["runs"])
    assert columns == ["model", "clip hit@1 %", "video hit@1 %", "video hit@5 %",
                       "moving-camera test: video hit@1 %"]
    assert rows == [["appearance", "5.0–12.0", "5.0–12.0", "50.0", "-"],
                    ["motion", "90.0", "92.0", "100.0", "85.0"],
                    ["late fusion (softmax avg 1:3)", "-", "92.0", "-", "-"]]
    readme = f"intro\n{render_docs.README_START}\nold table\n{render_docs.README_END}\nrest\n"
    new = render_docs.readme_with_demo_block(readme, tmp_path)
    assert new.startswith(f"intro\n{render_docs.README_START}\n")
    assert new.endswith(f"{render_docs.README_END}\nrest\n")
    assert "old table" not in new and "| appearance | 5.0–12.0 | 5.0–12.0 | 50.0 | - |" in new
    assert "2 run(s) of `make demo`" in new and "took 5.0–6.0 minutes" in new
    with pytest.raises(SystemExit, match="needs exactly one"):
        render_docs.readme_with_demo_block("no markers", tmp_path)
