"""Windowed prediction over a video: timeline values, smoothing, outputs, the CLI, memory."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from serve_helpers import CLASSES, colour_frames
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.io import write_video
from deepvideo.serve.longvideo import predict_long_video
from deepvideo.serve.timeline import Timeline, moving_average

runner = CliRunner()


def test_moving_average_formula():
    p = np.array([[1.0, 0], [0, 1], [0, 1], [1, 0]])
    got = moving_average(p, 3)
    np.testing.assert_allclose(got[0], (p[0] + p[1]) / 2)  # ends: the rows there are
    np.testing.assert_allclose(got[1], (p[0] + p[1] + p[2]) / 3)
    np.testing.assert_allclose(got[3], (p[2] + p[3]) / 2)
    np.testing.assert_array_equal(moving_average(p, 1), p)
    with pytest.raises(ValueError, match="smoothing width"):
        moving_average(p, 0)


@pytest.fixture(scope="module")
def red_green(tmp_path_factory):
    """4 s red then 4 s green at 10 fps (80 frames)."""
    return write_video(tmp_path_factory.mktemp("rg") / "rg.mp4", colour_frames([("red", 4), ("green", 4)]),
                       fps=10, gop=10)


def test_timeline_of_a_red_then_green_video(colour_scorer, red_green, tmp_path):
    tl = predict_long_video(colour_scorer, red_green, "2s", "1s", smooth=1)
    assert list(zip(tl.starts, tl.ends, strict=True)) == [(10 * k, 10 * k + 20) for k in range(7)]
    doc = tl.to_dict(k=2)
    tops = [w["top"][0]["class"] for w in doc["windows"]]
    assert tops[:2] == ["red", "red"] and tops[-3:] == ["green"] * 3
    assert doc["windows"][1]["start"] == 1.0 and doc["windows"][1]["end"] == 3.0
    assert [s["class"] for s in doc["segments"]] == ["red", "green"]
    assert doc["segments"][0]["start"] == 0.0 and doc["segments"][-1]["end"] == 8.0
    rows = list(csv.DictReader(io.StringIO(tl.csv_text(2))))
    assert len(rows) == 7 and rows[0]["top1"] == "red" and rows[-1]["top1"] == "green"
    assert float(rows[0]["p1"]) == pytest.approx(np.exp(10) / (np.exp(10) + 2), rel=1e-3)
    for suffix in ("json", "csv", "png"):
        tl.write(tmp_path / f"t.{suffix}")
    assert json.loads((tmp_path / "t.json").read_text())["classes"] == CLASSES
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="t.txt: timeline output must end in"):
        tl.write(tmp_path / "t.txt")


def test_scored_in_batches(colour_scorer, red_green):
    predict_long_video(colour_scorer, red_green, "2s", "1s", batch=3)
    assert colour_scorer.calls == [3, 3, 1]


def test_segments_merge_runs():
    tl = Timeline("v", ["a", "b"], fps=2.0)
    for k, c in enumerate([0, 0, 1, 0]):
        tl.add(2 * k, 2 * k + 4, np.eye(2)[c])
    assert tl.segments() == [{"class": "a", "index": 0, "start": 0.0, "end": 3.0},
                             {"class": "b", "index": 1, "start": 2.0, "end": 4.0},
                             {"class": "a", "index": 0, "start": 3.0, "end": 5.0}]


def _vm(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_long_video_memory_is_bounded(colour_scorer, tmp_path):
    """10 minutes at 5 fps (3000 frames of 16x16) decoded at short side 256: all frames would be
    3000 * 256 * 256 * 3 B = 590 MB; the peak RSS growth must stay under 128 MB (one window is
    4 MB; the rest is the decoder's and the allocator's working memory, the same for 20 minutes)."""
    frames = colour_frames([("red", 300), ("blue", 300)], fps=5)
    video = write_video(tmp_path / "long.mp4", frames, fps=5, gop=50)
    colour_scorer.short_side = 256
    rss = _vm("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current RSS
    tl = predict_long_video(colour_scorer, video, "4s", "2s")
    growth = _vm("VmHWM:") - rss
    assert len(tl.starts) == (3000 - 20) // 10 + 1
    assert growth < 128 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MB"
    assert [s["class"] for s in tl.segments()] == ["red", "blue"]


def test_predict_cli_window(tiny_run, red_green, tmp_path):
    outs = [tmp_path / "tl.json", tmp_path / "tl.csv", tmp_path / "tl.png"]
    args = ["predict", str(tiny_run), str(red_green), "--window", "2s", "--stride", "1s", "-k", "2", "--json"]
    result = runner.invoke(app, args + [x for o in outs for x in ("--out", str(o))])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == "r2plus1d_18" and len(doc["timelines"][0]["windows"]) == 7
    assert len(doc["timelines"][0]["windows"][0]["top"]) == 2
    assert all(o.stat().st_size > 0 for o in outs)
    assert json.loads(outs[0].read_text())["windows"] == doc["timelines"][0]["windows"]
    result = runner.invoke(app, ["predict", str(tiny_run), str(red_green), "--window", "2s"])
    assert result.exit_code == 0 and "0.00-    2.00 s" in result.output and "segment" in result.output


def test_predict_cli_window_errors(tiny_run, red_green, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = runner.invoke(app, ["predict", str(tiny_run), str(bad), "--window", "2s"])
    assert result.exit_code == 1 and "bad.mp4" in result.output
    result = runner.invoke(app, ["predict", str(tiny_run), str(red_green), "--window", "2 minutes"])
    assert result.exit_code == 2 and "--window must look like" in result.output
    result = runner.invoke(app, ["predict", str(tiny_run), str(red_green), "--out", "x.png"])
    assert result.exit_code == 2 and "give --window too" in result.output
    result = runner.invoke(app, ["predict", str(tiny_run), str(red_green), "--window", "2s", "--views", "3"])
    assert result.exit_code == 2 and "--views and --crops apply to whole-video" in result.output
