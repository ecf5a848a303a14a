"""configs/track/siamfc_selfsup.yaml: ``data.train: {videos, selfsup}`` builds self-supervised
pairs from unlabelled videos, and the engine trains SiamFC on them (validated on a labelled
synthetic set) in a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.engine.config import ConfigError, load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.engine.tasks.siamfc import pair_dataset
from deepvideo.io import write_video
from deepvideo.track.pairs import PairDataset
from deepvideo.track.selfsup import SelfSupPairs
from deepvideo.track.synth import render_tracking_set

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "track" / "siamfc_selfsup.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("selfsup")
    world = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    frames = np.stack([world[2 * k:2 * k + 96, 3 * k:3 * k + 128] for k in range(8)])
    (root / "videos").mkdir()
    write_video(root / "videos" / "pan.mp4", frames, fps=10)
    render_tracking_set(root / "val", num_sequences=1, frames=6, size=(64, 48), split="val", progress=False)
    return root


def test_recipe_builds_selfsup_training_pairs(data):
    cfg = load_config(RECIPE, overrides=[f"data.train.videos={data / 'videos'}",
                                         f"data.val.root={data / 'val'}"])
    train_set, val_sets = create_task(cfg).datasets(None)
    assert isinstance(train_set, SelfSupPairs) and isinstance(val_sets[""], PairDataset)
    assert (train_set.mode, train_set.max_gap, train_set.tracker) == ("cycle", 10, "kcf")
    assert train_set.min_cycle_iou == 0.7 and train_set.min_texture == 6.0
    assert len(train_set) == 2048 and [s.path.name for s in train_set.sources] == ["pan.mp4"]
    with pytest.raises(ConfigError, match=r"or 'videos' \(unlabelled videos\) and 'selfsup'"):
        pair_dataset({"videos": "x"}, "data.train")


def test_a_tiny_run_trains_on_selfsup_pairs(data, tmp_path):
    torch.set_num_threads(1)
    cfg = load_config(RECIPE, overrides=[
        f"data.train.videos=[{data / 'videos' / 'pan.mp4'}]", f"data.val.root={data / 'val'}",
        "data.train.selfsup.pairs_per_epoch=4", "data.train.selfsup.max_gap=3",
        "data.val.pairs.pairs_per_epoch=2",
        "data.val.pairs.max_gap=5", "data.num_workers=0", "model.kwargs={width: 0.125}", "train.epochs=1",
        "train.batch_size=2", f"output_dir={tmp_path / 'run'}", "train.log_every=1"])
    result = train(cfg, progress=False)
    last = result.history[-1]
    assert np.isfinite([last["train_loss"], last["val_loss"], last["val_center_error"]]).all()
    meta = json.loads((result.last_checkpoint / "checkpoint.json").read_text())
    assert meta["config"]["data"]["train"]["selfsup"]["mode"] == "cycle"


def test_sequences_without_two_visible_frames_are_left_out_loudly(tmp_path, caplog):
    from deepvideo.engine.tasks.siamfc import pairable
    from deepvideo.track.datasets import Sequence

    nan = [np.nan] * 4
    two = Sequence("two", [], np.array([[1, 1, 4, 4], [2, 1, 4, 4]], float))
    one = Sequence("one", [], np.array([[1, 1, 4, 4], nan], float))
    with caplog.at_level("WARNING", logger="deepvideo.engine"):
        assert pairable([one, two], "VID") == [two]
    assert "VID: 1 of 2 sequences have fewer than two frames with the target visible" in caplog.text
    assert "(first: one); left out" in caplog.text
    with pytest.raises(ConfigError, match="VID: none of its 1 sequences has two frames"):
        pairable([one], "VID")


def test_unreadable_data_and_unknown_options_name_the_section(data, tmp_path):
    with pytest.raises(ConfigError, match=r"data.train: .*nope: not a video file, an image or a folder"):
        pair_dataset({"videos": str(tmp_path / "nope"), "selfsup": {}}, "data.train")
    with pytest.raises(ConfigError, match=r"data.val: .*unexpected keyword argument 'bogus'"):
        pair_dataset({"videos": str(data / "videos"), "selfsup": {"bogus": 1}}, "data.val")
    with pytest.raises(ConfigError, match=r"data.val: .*nope: dataset folder not found"):
        pair_dataset({"root": str(tmp_path / "nope"), "pairs": {}}, "data.val")
    with pytest.raises(ConfigError, match=r"data.train: bad SelfSupPairs arguments: max_gap=0"):
        pair_dataset({"videos": str(data / "videos"), "selfsup": {"max_gap": 0}}, "data.train")
