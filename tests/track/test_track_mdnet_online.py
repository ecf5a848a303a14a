"""MDNet's online parts and tracker: box regression, hard negative mining, sample memory, the
update rules (no update from a negative score, long-term every 10 frames), weights loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.track import mdnet_online as online
from deepvideo.track.base import Tracker
from deepvideo.track.mdnet import MDNet
from deepvideo.track.registry import create_tracker, get_tracker_info
from deepvideo.track.trackers import mdnet as tracker_module

TINY = {"n_pos_init": 40, "n_neg_init": 120, "iters_init": 2, "n_bbreg": 40, "n_samples": 16,
        "n_pos_update": 8, "n_neg_update": 16, "iters_update": 1}


def test_paper_numbers():
    p = tracker_module.PARAMS
    assert (p["n_pos_init"], p["n_neg_init"], p["n_pos_update"], p["n_neg_update"]) == (500, 5000, 50, 200)
    assert p["pos_iou"] == (0.7, 1.0) and p["neg_iou_init"] == (0.0, 0.5) and p["bbreg_iou"] == (0.6, 1.0)
    assert (p["n_samples"], p["top_k"], p["n_bbreg"], p["long_interval"]) == (256, 5, 1000, 10)
    assert (p["long_frames"], p["short_frames"]) == (100, 20) and p["scale"] == 1.05 and p["trans"] == 0.6
    assert (online.BATCH_POS, online.BATCH_NEG, online.BATCH_NEG_CANDIDATES) == (32, 96, 1024)
    assert online.RIDGE_ALPHA == 1000 and online.FC6_LR_MULT == 10


def test_box_regression_recovers_a_known_offset():
    """Features carrying the offsets to the target linearly: the ridge regressor moves jittered
    boxes back onto the target."""
    rng = np.random.default_rng(0)
    target = np.array([50.0, 40.0, 30.0, 20.0])
    boxes = target + rng.uniform(-4, 4, size=(300, 4)) * [1, 1, 0.5, 0.5]
    offsets = online.box_offsets(boxes, target)
    features = np.concatenate([1000 * offsets, rng.standard_normal((300, 20))], axis=1)
    regressor = online.BoxRegressor().fit(features, boxes, target)
    np.testing.assert_allclose(regressor.predict(features[:10], boxes[:10]), np.tile(target, (10, 1)),
                               atol=0.05)
    np.testing.assert_allclose(online.apply_offsets(boxes, offsets), np.tile(target, (300, 1)))
    with pytest.raises(RuntimeError, match="before fit"):
        online.BoxRegressor().predict(features, boxes)


class Scored(torch.nn.Module):
    """classify(features) = features[:, :2]: the target score is column 1."""

    def classify(self, features):
        return features[:, :2]


def test_hard_negative_mining_keeps_the_highest_scoring_negatives():
    feats = torch.zeros(1024, 2)
    feats[:, 1] = torch.randperm(1024).float()
    hard = online.hardest(Scored(), feats, 96)
    assert sorted(hard[:, 1].tolist()) == list(np.arange(1024 - 96, 1024, dtype=float))


def test_memory_windows():
    memory = online.SampleMemory(long_frames=100, short_frames=20)
    for t in range(150):
        memory.add(torch.full((2, 1), float(t)), torch.full((3, 1), float(t)))
    pos, neg = memory.long_term()
    assert pos.unique().tolist() == list(range(50, 150)) and neg.unique().tolist() == list(range(130, 150))
    pos, neg = memory.short_term()
    assert pos.unique().tolist() == list(range(130, 150)) and len(neg) == 60


def test_fine_tuning_separates_positives_from_negatives():
    torch.manual_seed(0)
    net = MDNet(width=0.1)
    pos, neg = torch.randn(64, 51 * 9) + 1.0, torch.randn(2048, 51 * 9) - 1.0
    losses = online.fine_tune(net, online.optimizer_for(net, 0.01), pos, neg, 30, np.random.default_rng(0))
    assert losses[-1] < losses[0]
    assert (net.classify(pos)[:, 1] > net.classify(pos)[:, 0]).float().mean() > 0.9


def square_frames(n: int = 13, size: int = 96):
    rng = np.random.default_rng(1)
    frames = []
    for t in range(n):
        frame = rng.integers(60, 120, size=(size, size, 3), dtype=np.uint8)
        frame[30 + t:54 + t, 30:54] = (220, 40, 40)
        frames.append(frame)
    return frames


@pytest.fixture
def tracker():
    torch.manual_seed(0)
    t = tracker_module.MDNetTracker(model=MDNet(width=0.05), **TINY)
    t.initialize(square_frames()[0], (30, 30, 24, 24))
    return t


def forced_score(t, score: float):
    """Make the next estimates return the last box with ``score``."""
    def estimate(frame):
        return t.box.copy(), score, np.repeat(t.box[None], 5, axis=0)
    t.estimate = estimate


def test_no_samples_are_stored_from_a_negative_score_and_failure_updates_short_term(tracker):
    frames = square_frames()
    before = len(tracker.memory.positives)
    forced_score(tracker, -0.5)
    result = tracker.track(frames[1])
    assert len(tracker.memory.positives) == before and tracker.updates == ["short"]
    assert result.extras == {"success": False, "update": "short"} and result.score == -0.5
    assert tracker.trans == pytest.approx(0.6 * 1.1)       # the candidate spread grows
    tracker.track(frames[2])
    assert tracker.trans == pytest.approx(0.6 * 1.1 * 1.1)


def test_long_term_update_every_10_frames_on_success(tracker):
    forced_score(tracker, 2.0)
    for frame in square_frames()[1:13]:
        tracker.track(frame)
    assert [i + 1 for i, kind in enumerate(tracker.updates) if kind] == [10]
    assert tracker.updates[9] == "long" and len(tracker.memory.positives) == 13
    assert len(tracker.memory.negatives) == 13 and tracker.trans == 0.6


def test_tracker_runs_on_its_own(tracker):
    result = tracker.track(square_frames()[1])
    assert len(result.box) == 4 and np.isfinite(result.score)
    assert isinstance(tracker, Tracker)


def test_rt_tracker_runs_with_the_roi_align_network():
    torch.manual_seed(0)
    t = tracker_module.RTMDNetTracker(model=MDNet(width=0.05, roi_align=True), **TINY)
    frames = square_frames(3)
    t.initialize(frames[0], (30, 30, 24, 24))
    result = t.track(frames[1])
    assert len(result.box) == 4 and np.isfinite(result.score)
    with pytest.raises(ValueError, match="needs MDNet\\(roi_align=True\\) weights; these are MDNet"):
        tracker_module.RTMDNetTracker(model=MDNet(width=0.05))


def test_weights_from_a_file_or_the_environment(tmp_path, monkeypatch):
    net = MDNet(num_domains=3, width=0.05)
    path = tmp_path / "mdnet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    monkeypatch.delenv(tracker_module.WEIGHTS_ENV, raising=False)
    assert not get_tracker_info("mdnet").is_available()
    with pytest.raises(ValueError, match="give weights="):
        tracker_module.MDNetTracker()
    t = create_tracker("mdnet", weights=str(path))
    assert t.base.widths == net.widths
    monkeypatch.setenv(tracker_module.WEIGHTS_ENV, str(path))
    assert get_tracker_info("mdnet").is_available()
    assert create_tracker("mdnet").base.num_domains == 3
    with pytest.raises(TypeError, match="unknown MDNet parameters \\['n_neg'\\]"):
        tracker_module.MDNetTracker(weights=str(path), n_neg=3)


@pytest.mark.parametrize("roi_align", [False, True])
def test_optimized_conv_trunk_gives_the_same_features(roi_align):
    torch.manual_seed(0)
    net = MDNet(width=0.05, roi_align=roi_align).eval()
    frame = square_frames(1)[0]
    boxes = np.array([[30.0, 30.0, 24.0, 24.0], [20.0, 35.0, 30.0, 20.0]])
    plain = tracker_module.Features(net, torch.device("cpu"))(frame, boxes, (24.0, 24.0))
    fast = tracker_module.Features(net, torch.device("cpu"), optimize=True)(frame, boxes, (24.0, 24.0))
    assert plain.shape == (2, net.fc4.in_features)
    torch.testing.assert_close(fast, plain)
