from deepvideo.models.zoo import render


def test_zoo_page_includes_measured_training_tables():
    result = {"title": "CPU training table", "description": "motion-shapes, split 1.",
              "command": "python benchmarks/bench_motion_shapes.py", "columns": ["model", "video acc %"],
              "rows": [["motion stream", 88.0]], "machine": {"date": "2026-11-22", "cpu_count": 2}}
    page = render([], [result])
    assert "## CPU training table" in page
    assert "| motion stream | 88.0 |" in page
    assert "Command: `python benchmarks/bench_motion_shapes.py`" in page
    assert "CPU training table" not in render([])
