"""The ``detect_track`` task: one tiny engine run on a synthetic VID set, the checkpoint reloads
with the same detections, validation reports mAP per class and per motion speed; the recipes load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.detect.dt import DetectTrack
from deepvideo.detect.inference import detect_video
from deepvideo.detect.pairs import read_rgb
from deepvideo.detect.rfcn import RFCN
from deepvideo.detect.vid import read_split
from deepvideo.detect.vid_synth import CLASSES, render_vid_set
from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.detect_track import load_detector

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "vid"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vid") / "set"
    render_vid_set(root, {"train": 1, "val": 1}, frames=3, size=(64, 48), progress=False)
    kwargs = ("{anchor_scales: [16, 32], anchor_ratios: [1.0], head_channels: 8, rpn_channels: 8, "
              "max_displacement: 2}")
    cfg = load_config(CONFIGS / "dt_track_cpu.yaml", overrides=[
        f"output_dir={tmp_path_factory.mktemp('run') / 'dt'}", f"data.train.root={root}",
        f"data.val.root={root}", "data.num_workers=0", "train.epochs=1", "train.max_steps=0",
        "train.batch_size=2", "model.init_from=[]",
        f"model.kwargs={kwargs}"])
    return train(cfg, progress=False), root


def test_training_reports_map_per_class_and_speed(run):
    result, _ = run
    row = result.history[-1]
    assert {"train_loss", "val_map", "val_map_slow", "val_map_medium", "val_map_fast"} <= set(row)
    assert any(k.startswith("val_map_") and k[8:] in CLASSES
               for k in row)
    assert 0 <= row["val_map"] <= 1


def test_checkpoint_reloads_with_the_same_detections(run):
    result, root = run
    model, classes, meta = load_detector(result.last_checkpoint)
    assert isinstance(model, DetectTrack) and meta["config"]["task"] == "detect_track"
    video = read_split(root, "val")[0]
    frames = [read_rgb(f.image) for f in video.frames]
    again, _, _ = load_detector(result.last_checkpoint)
    a, b = detect_video(model, frames, stride=2), detect_video(again, frames, stride=2)
    assert len(a.boxes) == 3 and all(torch.equal(torch.as_tensor(x), torch.as_tensor(y))
                                     for x, y in zip(a.scores, b.scores, strict=True))


def test_recipes_and_model_errors():
    # the recipe chosen on the selection set (round 4): from D, everything jointly by SGD
    stages = {"dt_track_cpu.yaml": ("sgd", 1e-3, ["*bn*", "*downsample.1.*"], "runs/vid_d_cpu", "detector.")}
    for name, kind in (("dt_detector_cpu.yaml", RFCN), *((n, DetectTrack) for n in stages)):
        cfg = load_config(CONFIGS / name)
        if kind is DetectTrack:
            optimizer, lr, freeze, start, target = stages[name]
            assert (cfg.train.optimizer, cfg.train.lr, list(cfg.train.freeze)) == (optimizer, lr, freeze)
            assert cfg.train.momentum == 0.9
            assert cfg.train.max_steps == 600
            assert [dict(e) for e in cfg.model.init_from] == [
                {"checkpoint": f"{start}/checkpoints/last", "target": target}]
            cfg.model.init_from = []
        task = create_task(cfg)
        task.class_names = ["a", "b"]
        assert isinstance(task.build_model(), kind)
    task = create_task(load_config(overrides=["task=detect_track", "model.name=resnet50"]))
    with pytest.raises(ConfigError, match="data.train: needs 'root'"):
        task.setup()
    with pytest.raises(ConfigError, match="builds model.name in"):
        task.build_model()


def test_init_from_loads_a_trained_detector_into_the_model(run):
    # the paper's schedule: D&T starts from D; here the reverse direction, D from D&T's detector
    result, root = run
    trained, _, meta = load_detector(result.last_checkpoint)
    cfg = load_config(CONFIGS / "dt_detector_cpu.yaml", overrides=[
        f"data.train.root={root}", f"data.val.root={root}",
        f"model.kwargs={meta['config']['model']['kwargs']}"])
    cfg.model.kwargs.pop("max_displacement")
    cfg.model.init_from = [{"checkpoint": str(result.last_checkpoint), "source": "detector\\.", "target": ""}]
    task = create_task(cfg)
    task.setup()
    model = task.build_model()
    assert isinstance(model, RFCN)
    assert all(torch.equal(v, trained.detector.state_dict()[k]) for k, v in model.state_dict().items())
    cfg.model.init_from = [{"checkpoint": str(result.last_checkpoint), "source": "nothing\\."}]
    with pytest.raises(ConfigError, match=r"model.init_from\[0\]"):
        create_task(cfg).build_model()


def test_det_images_join_the_training_pairs(run, tmp_path):
    # D&T alternates VID pairs with DET images sent twice; DET objects of other classes are removed
    import cv2

    from deepvideo.detect.vid import VidObject, write_frame_xml

    _, root = run
    for name, objects in (("a", [VidObject(0, "cross", (2, 3, 12, 14)), VidObject(1, "n99", (1, 1, 5, 5))]),
                          ("b", [VidObject(0, "n99", (1, 1, 5, 5))])):
        write_frame_xml(tmp_path / "Annotations" / "DET" / "train" / f"{name}.xml", (64, 48), objects)
        images = tmp_path / "Data" / "DET" / "train"
        images.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / f"{name}.JPEG"), np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "ImageSets" / "DET").mkdir(parents=True)
    (tmp_path / "ImageSets" / "DET" / "train_1.txt").write_text("a 1\nb 1\n")
    overrides = [f"data.train.root={root}", f"data.val.root={root}", f"data.train.classes={list(CLASSES)}"]
    plain = create_task(load_config(CONFIGS / "dt_track_cpu.yaml", overrides=overrides))
    plain.setup()
    det = {"root": str(tmp_path), "lists": ["ImageSets/DET/train_1.txt"]}
    task = create_task(load_config(CONFIGS / "dt_track_cpu.yaml",
                                   overrides=[*overrides, f"data.train.det={det}"]))
    task.setup()
    videos_only, _ = plain.datasets(None)
    mixed, _ = task.datasets(None)
    assert len(mixed) == len(videos_only) + 1  # "b" has no object of the training classes
    item = mixed[len(mixed) - 1]
    assert torch.equal(item["rgb_a"], item["rgb_b"])
    assert item["labels_a"][:2].tolist() == [CLASSES.index("cross") + 1, -1]
    bad = create_task(load_config(CONFIGS / "dt_track_cpu.yaml",
                                  overrides=[*overrides, "data.train.det={root: nowhere}"]))
    bad.setup()
    with pytest.raises(ConfigError, match="data.train.det: needs 'root'.*and 'lists'"):
        bad.datasets(None)
