"""`deepvideo detect`: synth, run (boxes, tubes, annotated video) and eval on a tiny trained model."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.engine.config import load_config
from deepvideo.engine.loop import train
from deepvideo.io import probe

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vid") / "set"
    result = runner.invoke(app, ["detect", "synth", str(root), "--train", "1", "--val", "1", "--test", "0",
                                 "--frames", "3", "--size", "64x48"])
    assert result.exit_code == 0, result.output
    cfg = load_config(overrides=[
        "task=detect_track", "model.name=dt_cpu", f"output_dir={tmp_path_factory.mktemp('run') / 'r'}",
        "model.kwargs={anchor_scales: [16], anchor_ratios: [1.0], head_channels: 8, rpn_channels: 8, "
        "max_displacement: 2}", f"data.train={{root: {root}, split: train, pad_to: 8}}",
        f"data.val={{root: {root}, split: val}}", "train.monitor=val_map",
        "data.num_workers=0", "train.epochs=1", "train.batch_size=2", "train.amp=none"])
    return train(cfg, progress=False).last_checkpoint, root


def test_run_writes_boxes_tubes_and_video(trained, tmp_path):
    checkpoint, root = trained
    frames = root / "Data" / "VID" / "train" / "synth_00000"
    out, show = tmp_path / "out", tmp_path / "show.mp4"
    result = runner.invoke(app, ["detect", str(frames), "--checkpoint", str(checkpoint), "--template",
                                 "{:06d}.JPEG", "--start-index", "0", "--out", str(out), "--show", str(show),
                                 "--min-score", "0"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "detections.json").read_text())
    tubes = json.loads((out / "tubes.json").read_text())["tubes"]
    rows = list(csv.DictReader((out / "detections.csv").open()))
    assert len(rows) == len(data["detections"]) and data["linked"]
    assert {int(r["tube"]) for r in rows} == {t["tube"] for t in tubes}  # every box belongs to a tube
    assert all({int(r["frame"]) for r in rows} <= {0, 1, 2} for _ in [0])
    assert probe(show).num_frames == 3


def test_eval_reports_map_and_errors(trained, tmp_path):
    checkpoint, root = trained
    result = runner.invoke(app, ["detect", "eval", str(checkpoint), "--root", str(root), "--split", "val",
                                 "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics["by_speed"]) == {"slow", "medium", "fast"} and "mAP" in result.output
    bad = runner.invoke(app, ["detect", str(root), "--checkpoint", str(checkpoint), "--show", "x.avi"])
    assert bad.exit_code == 2 and "*.mp4" in bad.output
    missing = runner.invoke(app, ["detect", "eval", str(checkpoint), "--root", str(root), "--split", "nope"])
    assert missing.exit_code == 2 and "nope.txt" in missing.output


def test_causal_rescoring_raises_every_raw_score(trained, tmp_path):
    checkpoint, root = trained
    frames = root / "Data" / "VID" / "train" / "synth_00000"
    common = ["detect", str(frames), "--checkpoint", str(checkpoint), "--template", "{:06d}.JPEG",
              "--start-index", "0"]
    for name, extra in (("raw", ["--no-link"]), ("online", ["--causal"])):
        result = runner.invoke(app, [*common, "--out", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    raw = json.loads((tmp_path / "raw" / "detections.json").read_text())["detections"]
    online = json.loads((tmp_path / "online" / "detections.json").read_text())
    assert online["causal"] and len(online["detections"]) == len(raw) > 0
    pairs = zip(raw, online["detections"], strict=True)
    assert all(b["score"] > a["score"] and b["tube"] == -1 for a, b in pairs)


def test_deepvideo_test_reports_the_same_map_as_detect_eval(trained, tmp_path):
    checkpoint, root = trained
    runner.invoke(app, ["detect", "eval", str(checkpoint), "--root", str(root), "--split", "val",
                        "--out", str(tmp_path / "m.json")])
    expected = json.loads((tmp_path / "m.json").read_text())
    result = runner.invoke(app, ["test", str(checkpoint), "--subset", "val", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert written["map"] == pytest.approx(expected["mean"], abs=1e-12)
    assert {"map_slow", "map_medium", "map_fast"} <= set(written) and "map " in result.output
    on_gpu = runner.invoke(app, ["test", str(checkpoint), "--device", "cuda"])
    assert on_gpu.exit_code == 1 and "tested on the CPU" in on_gpu.output
