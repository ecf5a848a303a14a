"""``deepvideo track synth``: the split, background and target options reach the generator;
bad options are one-line errors."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.track.datasets import load_dataset
from deepvideo.track.synth import load_images, render_sequence

runner = CliRunner()


def test_split_with_real_targets_and_backgrounds(tmp_path, test_mp4):
    out = tmp_path / "test"
    result = runner.invoke(app, ["track", "synth", str(out), "-n", "2", "--frames", "4", "--size", "64x48",
                                 "--split", "test", "--seed", "3", "--targets", str(test_mp4),
                                 "--backgrounds", str(test_mp4), "--target-share", "1", "--per-video", "2"])
    assert result.exit_code == 0, result.output
    assert "2 sequences of 4 frames" in result.output and "split test" in result.output
    sequences = load_dataset(out)
    assert [s.name for s in sequences] == ["synth_test_0001", "synth_test_0002"]
    images = load_images(test_mp4, per_video=2, split="test")
    truth = render_sequence(3, 1, 4, (64, 48), backgrounds=images, targets=images, target_share=1.0,
                            split="test")
    assert sequences[1].meta["object_class"] == truth.shape and truth.shape.startswith("real_")
    np.testing.assert_allclose(sequences[1].boxes, truth.boxes, atol=1e-3)
    manifest = json.loads((out / "synth.json").read_text())
    assert manifest == {"seed": 3, "split": "test", "num_sequences": 2, "frames": 4, "size": [64, 48],
                        "target_share": 1.0, "backgrounds": 2, "targets": 2,
                        "sources": {"backgrounds": [str(test_mp4)], "targets": [str(test_mp4)],
                                    "per_video": 2}}


def test_bad_split_and_missing_images_are_errors(tmp_path):
    result = runner.invoke(app, ["track", "synth", str(tmp_path / "x"), "--split", "holdout"])
    assert result.exit_code == 2 and "split: expected one of train, val, test" in result.output
    result = runner.invoke(app, ["track", "synth", str(tmp_path / "x"), "--targets", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "nope: not a video file, an image or a folder of them" in result.output
    assert not (tmp_path / "x").exists()
