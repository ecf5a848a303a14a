"""`deepvideo info`, `deepvideo data check`, `deepvideo data resize` through the real CLI app."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.io import probe, write_video

runner = CliRunner(env={"COLUMNS": "240"})  # no wrapping of long temporary paths


def _frames(n=8, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "ds"
    write_video(root / "a" / "good.mp4", _frames(), fps=8)
    write_video(root / "b" / "good2.mp4", _frames(6, seed=1), fps=12)
    (root / "b" / "broken.mp4").write_text("text, not video")
    return root


def test_info_table_and_json(dataset):
    path = dataset / "a" / "good.mp4"
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "num_frames" in result.output and "h264" in result.output and "64" in result.output
    result = runner.invoke(app, ["info", str(path), "--json"])
    data = json.loads(result.output)
    assert (data["num_frames"], data["fps"], data["width"], data["height"]) == (8, 8.0, 64, 48)


def test_info_bad_file_names_it(dataset):
    bad = dataset / "b" / "broken.mp4"
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1
    assert str(bad) in result.output and "not a readable video" in result.output


def test_check_folder_reports_bad_and_strict(dataset, tmp_path):
    report = tmp_path / "report" / "check.json"
    result = runner.invoke(app, ["data", "check", str(dataset), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "broken.mp4" in result.output and "2/3 videos ok, 1 bad" in result.output
    data = json.loads(report.read_text())
    assert data["summary"]["bad"] == 1 and data["summary"]["frames"] == 14
    bad = [v for v in data["videos"] if not v["ok"]]
    assert bad[0]["path"].endswith("broken.mp4") and "not a readable video" in bad[0]["reason"]
    result = runner.invoke(app, ["data", "check", str(dataset), "--strict"])
    assert result.exit_code == 1
    (dataset / "b" / "broken.mp4").unlink()
    assert runner.invoke(app, ["data", "check", str(dataset), "--strict", "--full"]).exit_code == 0


def test_check_with_annotation_format(dataset, monkeypatch):
    calls = {}

    def load_dataset(fmt, **kwargs):
        calls.update(fmt=fmt, **kwargs)
        return DatasetIndex([VideoRecord(str(dataset / "a" / "good.mp4"), 0, source="list.txt:1"),
                             VideoRecord(str(dataset / "missing.mp4"), 0, source="list.txt:2")], ["x"])

    module = types.ModuleType("deepvideo.data.formats")
    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "deepvideo.data.formats", module)
    result = runner.invoke(app, ["data", "check", str(dataset), "--format", "ucf101", "--annotations", "ann",
                                 "--split", "1", "--arg", "num-classes=101"])
    assert result.exit_code == 0, result.output
    assert calls == {"fmt": "ucf101", "root": str(dataset), "annotations": "ann", "split": "1",
                     "num_classes": "101"}
    assert "list.txt:2" in result.output and "1/2 videos ok" in result.output
    result = runner.invoke(app, ["data", "check", str(dataset), "--format", "ucf101", "--arg", "novalue"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_check_with_real_video_list(shared_data):
    video, ann = shared_data / "video", shared_data / "annotations" / "video_test_list.txt"
    if not ann.exists() or not (video / "test.mp4").exists():
        pytest.skip("shared sample annotations missing")
    pytest.importorskip("deepvideo.data.formats")
    result = runner.invoke(app, ["data", "check", str(video), "--format", "video_list",
                                 "--annotations", str(ann), "--strict"])
    assert result.exit_code == 0, result.output
    assert "2/2 videos ok" in result.output and "600 frames" in result.output
    result = runner.invoke(app, ["data", "check", str(video), "--format", "no_such_format"])
    assert result.exit_code == 2 and "unknown dataset format" in result.output


def test_resize_resumable_with_failures(dataset, tmp_path):
    out = tmp_path / "out"
    args = ["data", "resize", str(dataset), str(out), "--short-side", "24", "--gop", "4", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 resized, 0 skipped (output exists), 1 failed" in result.output and "broken.mp4" in result.output
    meta = probe(out / "a" / "good.mp4")
    assert (meta.height, meta.width, meta.num_frames) == (24, 32, 8)
    result = runner.invoke(app, args + ["--strict"])
    assert result.exit_code == 1
    assert "0 resized, 2 skipped (output exists), 1 failed" in result.output


def test_resize_refuses_link_escape(tmp_path):
    src, out, outside = tmp_path / "src", tmp_path / "out", tmp_path / "outside"
    write_video(src / "sub" / "v.mp4", _frames(3), fps=5)
    out.mkdir()
    outside.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)
    result = runner.invoke(app, ["data", "resize", str(src), str(out), "--short-side", "24", "--strict"])
    assert result.exit_code == 1
    assert "outside" in result.output and "v.mp4" in result.output
    assert not list(outside.iterdir())


def test_resize_missing_source_folder(tmp_path):
    result = runner.invoke(app, ["data", "resize", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a folder" in result.output
