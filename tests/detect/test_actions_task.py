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
        create_task(cfg).setup()


def test_cli_detect_actions_on_a_video(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app
    from deepvideo.detect.actions.ava import read_ava_csv, read_proposals
    from deepvideo.io import VideoReader

    root, out, _ = tiny_run
    video = root / "videos" / "val_0000.mp4"
    props = root / "annotations" / "proposals_val.csv"
    res = CliRunner().invoke(app, ["detect-actions", str(video), "--checkpoint", str(out), "--persons",
                                   str(props), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "o" / "actions.json").read_text())
    people = {ts: len(v) for (vid, ts), v in read_proposals(props).items() if vid == "val_0000"}
    assert {k["timestamp"]: len(k["people"]) for k in doc["keyframes"]} == people
    assert doc["actions"] == ["walk", "jump", "spin", "wave"]
    rows = read_ava_csv(tmp_path / "o" / "actions.csv", detections=True)
    assert len(rows) == 4 * sum(people.values())
    assert len(VideoReader(tmp_path / "o" / "annotated.mp4")) == len(VideoReader(video))
    res = CliRunner().invoke(app, ["detect-actions", str(video), "--checkpoint", str(out)])
    assert res.exit_code == 2 and "--persons FILE or --person-detector RUN" in res.output
    res = CliRunner().invoke(app, ["detect-actions", "test", str(out), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0 and "frame-mAP@0.5" in res.output and "4 wave" in res.output


def test_ava_recipe_follows_the_paper():
    cfg = load_config("configs/ava/slowfast_r50_det.yaml")
    assert cfg.task == "action_detection" and cfg.model.name == "slowfast_r50"
    assert cfg.model.kwargs["dropout"] == 0.5 and cfg.model.kwargs["head"] == "roi"
    assert dict(cfg.model.spec) == {"num_frames": 32, "frame_stride": 2, "crop_size": 256}
    for split in (cfg.data.train, cfg.data.val):
        assert split["start"] == 900 and "for_activitynet_2019" in split["action_list"]
    assert "proposals" in cfg.data.val and "proposals" not in cfg.data.train


def test_deepvideo_test_reports_frame_map_of_an_action_detector(tiny_run, tmp_path):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app

    _, out, _ = tiny_run
    res = CliRunner().invoke(app, ["test", str(out), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    written = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert written["frame_map"] == pytest.approx(evaluate_run(out, out_dir=tmp_path / "e")["frame_map"])
    assert "frame_map" in res.output and "ap 4 wave" in res.output


def test_person_detector_must_be_an_object_detection_run(tiny_run):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app

    root, out, _ = tiny_run
    video = sorted((root / "videos").glob("*.mp4"))[0]
    res = CliRunner().invoke(app, ["detect-actions", str(video), "--checkpoint", str(out),
                                   "--person-detector", str(out)])
    assert res.exit_code == 1 and "not a detector (detect_track)" in res.output
