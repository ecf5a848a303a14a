"""The synthetic AVA-format set: files readable, boxes around the actors, labels from motion."""

import numpy as np
import pytest

from deepvideo.detect.actions import ava
from deepvideo.detect.actions.synth import ACTIONS, SynthParams, plan_actor, triangle, write_synth


def test_triangle_reflects():
    np.testing.assert_allclose(triangle(np.array([0.0, 5.0, 12.0, 25.0]), 0.0, 10.0), [0, 5, 8, 5])


@pytest.mark.parametrize("seed", range(4))
def test_actor_motion_matches_its_labels(seed):
    rng = np.random.default_rng(seed)
    actor = plan_actor(rng, 32, 96, (10.0, 50.0))
    moved = np.ptp(actor.body, axis=0)
    assert (moved[0] > 5) == (actor.primary == "walk")
    assert (moved[1] > 5) == (actor.primary == "jump")
    assert (np.ptp(actor.angle) > 1) == (actor.primary == "spin")
    assert (np.ptp(actor.hand[:, 0] - actor.body[:, 0]) > 1) == actor.wave
    assert actor.actions and actor.actions <= set(ACTIONS)
    boxes = actor.boxes(96)
    assert (boxes[:, :2] <= actor.body - actor.radius + 1e-9).all() or (boxes[:, :2] == 0).any()


def test_write_synth_files(tmp_path):
    summary = write_synth(tmp_path, SynthParams(train_videos=1, val_videos=1, size=48, seconds=3, fps=4))
    ann = tmp_path / "annotations"
    rows = ava.read_ava_csv(ann / "ava_train_synth.csv")
    assert summary["train"]["rows"] == len(rows) and {r.timestamp for r in rows} == {1, 2}
    assert ava.read_action_list(ann / "ava_action_list_synth.pbtxt") == ACTIONS
    assert ava.read_excluded(ann / "ava_val_excluded_timestamps_synth.csv") == set()
    props = ava.read_proposals(ann / "proposals_train.csv")
    people = ava.keyframe_people(rows)
    assert {k: len(v) for k, v in props.items()} == {k: len(v) for k, v in people.items()}
    assert (tmp_path / "videos" / "val_0000.mp4").is_file()


def test_cli_synth(tmp_path):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app

    res = CliRunner().invoke(app, ["detect-actions", "synth", str(tmp_path), "--train-videos", "1",
                                   "--val-videos", "0", "--size", "48", "--seconds", "3", "--fps", "4"])
    assert res.exit_code == 0, res.output
    assert '"train": {"videos": 1, "keyframes": 2' in res.output
    assert (tmp_path / "videos" / "train_0000.mp4").is_file()
    res = CliRunner().invoke(app, ["detect-actions", "synth", str(tmp_path), "--size", "20"])
    assert res.exit_code == 2 and "size must be at least 48" in res.output


def test_unreadable_video_is_skipped_in_training_and_raises_in_evaluation(tmp_path):
    from deepvideo.detect.actions.dataset import AvaKeyframes
    from deepvideo.io import VideoError

    write_synth(tmp_path, SynthParams(train_videos=2, val_videos=0, size=48, seconds=3, fps=4))
    (tmp_path / "videos" / "train_0001.mp4").write_bytes(b"not a video")
    rows = ava.read_ava_csv(tmp_path / "annotations" / "ava_train_synth.csv")
    kw = dict(num_frames=4, stride=1, size=48, max_people=4)
    train = AvaKeyframes(rows, tmp_path / "videos", [1, 2, 3, 4], augment=True, **kw)
    bad = train.keys.index(("train_0001", 1))
    item = train[(bad, 0)]
    assert item["rgb"].shape == (3, 4, 48, 48) and "train_0001.mp4" in item["bad_items"][0]["path"]
    assert len(train.bad_items) >= 1
    with pytest.raises(VideoError, match="train_0001.mp4"):
        AvaKeyframes(rows, tmp_path / "videos", [1, 2, 3, 4], **kw)[bad]
