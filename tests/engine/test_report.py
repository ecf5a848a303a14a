"""Reports: markdown table, confusion CSV/PNG, training curves, atomic writes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from deepvideo.engine import report as R
from deepvideo.engine.metrics import video_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_metrics_table_formats_percent_and_missing():
    table = R.metrics_table({"rgb": {"video_hit@1": 0.5, "clip_hit@1": 0.25, "num_videos": 8},
                             "flow": {"video_hit@1": 0.875, "clip_hit@1": float("nan"), "num_videos": 8}})
    lines = table.splitlines()
    assert lines[0] == "| model | clip hit@1 | video hit@1 | videos |"
    assert lines[2] == "| rgb | 25.0 | 50.0 | 8 |"
    assert lines[3] == "| flow | - | 87.5 | 8 |"


def test_confusion_csv_round_trip(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    path = R.write_confusion_csv(tmp_path / "c.csv", cm, ["walk", "run"])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["true \\ predicted", "walk", "run"]
    assert rows[1] == ["walk", "3", "1"] and rows[2] == ["run", "0", "4"]


@pytest.mark.parametrize("k", [3, 101])
def test_confusion_png_scales_with_classes(tmp_path, k):
    rng = np.random.default_rng(k)
    cm = rng.integers(0, 5, (k, k)) + np.eye(k, dtype=int) * 10
    path = R.plot_confusion(tmp_path / "cm.png", cm, [f"class_{i:03d}" for i in range(k)])
    w, h = _png_size(path)
    assert (w > 1500) == (k > 50)  # large class counts get a large canvas
    assert not list(tmp_path.glob(".*tmp*"))


def test_history_and_curves(tmp_path):
    hist = tmp_path / "history.csv"
    hist.write_text("epoch,train_loss,train_top1,val_loss,val_top1,lr\n1,2.0,0.1,2.1,0.12,0.01\n"
                    "2,1.5,0.3,1.7,0.25,0.01\n3,1.0,0.6,1.4,,0.001\n")
    h = R.read_history(hist)
    np.testing.assert_array_equal(h["epoch"], [1, 2, 3])
    assert np.isnan(h["val_top1"][2])
    assert R.plot_history(tmp_path / "curves.png", h) is not None
    assert _png_size(tmp_path / "curves.png")[0] > 500
    assert R.plot_history(tmp_path / "none.png", {"epoch": np.arange(3.0)}) is None


def test_write_report_full(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 3)
    views = rng.normal(size=(12, 2, 4))
    views[np.arange(12), :, labels] += 2.0
    m = video_metrics(views, labels)
    hist = tmp_path / "history.csv"
    hist.write_text("epoch,train_loss,val_top1\n1,1.3,0.4\n2,0.9,0.7\n")
    names = ["circle", "square", "triangle", "star"]
    path = R.write_report(tmp_path / "run", {"tiny": m}, title="Tiny run", class_names=names,
                          confusion=m["confusion"], history_csv=hist, notes=["split 1"],
                          skipped=["bad.mp4: cannot decode"])
    text = path.read_text()
    assert text.startswith("# Tiny run\n")
    assert "| tiny | " in text and f"{100 * m['video_hit@1']:.1f}" in text
    assert "![training curves](curves.png)" in text and "![confusion matrix](confusion.png)" in text
    assert "| triangle | 3 |" in text and "`bad.mp4: cannot decode`" in text
    for name in ("curves.png", "confusion.png", "confusion.csv"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "confusion.csv", "confusion.png", "curves.png", "report.md"]
