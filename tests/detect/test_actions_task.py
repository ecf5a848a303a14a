"""The action_detection task: a few training steps through the engine loop on a tiny synthetic
set, then the run is tested (frame-mAP per class) and detect-actions runs on a video."""

import json

import pytest

from deepvideo.detect.actions.synth import SynthParams, write_synth
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.tasks.action_detection import build_detector, evaluate_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("avaset")
    write_synth(root, SynthParams(train_videos=2, val_videos=1, size=48, seconds=3, fps=4))
    out = tmp_path_factory.mktemp("run")
    cfg = load_config("configs/ava/synth_tiny_det.yaml", overrides=[
        f"data.train.root={root}", f"data.val.root={root}", f"output_dir={out}", "train.epochs=1",
        "train.batch_size=2", "model.spec.crop_size=48", "model.spec.num_frames=4", "model.kwargs.width=8"])
    result = train(cfg, progress=False)
    return root, out, result


def test_task_trains_and_reports_frame_map(tiny_run):
    root, out, result = tiny_run
    header, row = (out / "metrics.csv").read_text().splitlines()[:2]
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert 0.0 <= float(values["val_frame_map"]) <= 1.0
    assert {"val_ap_1", "val_ap_2", "val_ap_3", "val_ap_4"} <= set(values)
    meta = json.loads((out / "checkpoints" / "last" / "checkpoint.json").read_text())
    assert meta["action_ids"] == [1, 2, 3, 4] and meta["class_names"][0] == "walk"


def test_evaluate_run_writes_detections_and_per_class(tiny_run):
    root, out, _ = tiny_run
    metrics = evaluate_run(out, out_dir=out / "t")
    assert set(metrics["per_class"]) == {"1 walk", "2 jump", "3 spin", "4 wave"}
    written = json.loads((out / "t" / "metrics.json").read_text())
    assert written["frame_map"] == pytest.approx(metrics["frame_map"])
    lines = (out / "t" / "detections.csv").read_text().splitlines()
    assert len(lines) % 4 == 0 and len(lines[0].split(",")) == 8


def test_bad_head_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="head must be one of roi, crop, frame"):
        build_detector("slowfast_r50", {"head": "box"}, 3, {})
    cfg = load_config("configs/ava/synth_tiny_det.yaml", overrides=[f"data.train.root={tmp_path}"])
    from deepvideo.engine.task import create_task

    with pytest.raises(ConfigError, match="data.train.annotations: .*does not exist"):
        create_task(cfg).setup() or create_task(cfg).datasets(None)
