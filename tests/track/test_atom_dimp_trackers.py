"""The ``atom`` and ``dimp`` trackers: registered, need weights (file or environment), run on a
tiny synthetic sequence with finite boxes, and ``optimize=True`` (BN folding) changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.models.inference import fold_batchnorm
from deepvideo.track.atom import ATOMNet
from deepvideo.track.base import Tracker
from deepvideo.track.dimp import DiMPNet
from deepvideo.track.registry import create_tracker, get_tracker_info
from deepvideo.track.trackers import atom as atom_module
from deepvideo.track.trackers import dimp as dimp_module


def randomized(net: torch.nn.Module) -> torch.nn.Module:
    """Random weights with non-trivial batch-norm statistics (so folding them is visible)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if "running_var" in name:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif "running_mean" in name:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return net.eval()


def nets():
    torch.manual_seed(0)
    return {"atom": randomized(ATOMNet(18, width=0.125, iou_dim=16)),
            "dimp": randomized(DiMPNet(18, width=0.125, iou_dim=16))}


def video(frames: int = 4):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    images, boxes = [], []
    for t in range(frames):
        image = background.copy()
        x, y = 40 + 3 * t, 30 + 2 * t
        image[y:y + 24, x:x + 20] = (230, 40, 40)
        images.append(image)
        boxes.append((x, y, 20, 24))
    return images, boxes


@pytest.mark.parametrize("name", ["atom", "dimp"])
def test_tracker_runs_and_returns_finite_boxes(name):
    tracker = create_tracker(name, model=nets()[name], image_size=96)
    assert isinstance(tracker, Tracker)
    images, boxes = video()
    tracker.initialize(images[0], boxes[0])
    for image in images[1:]:
        result = tracker.track(image)
        assert np.isfinite(result.box).all() and result.box[2] > 0 and result.box[3] > 0
        assert np.isfinite(result.score)
        assert result.extras["flag"] in {"normal", "not_found", "uncertain", "hard_negative"}
        assert result.extras["response"].shape == (7, 7)      # 96 / 16 = 6 cells, even 4×4 filter


def test_not_found_keeps_the_box_and_learns_nothing():
    tracker = create_tracker("atom", model=nets()["atom"], image_size=96)
    images, boxes = video()
    tracker.initialize(images[0], boxes[0])
    tracker.classifier.filter = torch.zeros_like(tracker.classifier.filter)   # every score 0 < 0.25
    memory = len(tracker.classifier.memory.features)
    result = tracker.track(images[1])
    assert result.extras["flag"] == "not_found"
    assert result.box == pytest.approx(boxes[0])
    assert len(tracker.classifier.memory.features) == memory


@pytest.mark.parametrize("name", ["atom", "dimp"])
def test_without_the_iou_net_the_size_stays_and_the_box_centres_on_the_peak(name):
    tracker = create_tracker(name, model=nets()[name], image_size=96, use_iou_net="false")
    images, boxes = video()
    tracker.initialize(images[0], boxes[0])
    side = tracker.side
    result = tracker.track(images[0])
    if result.extras["flag"] != "not_found":
        row, col = np.unravel_index(np.argmax(result.extras["response"]), (7, 7))
        x, y, w, h = result.box
        assert (w, h) == pytest.approx(boxes[0][2:])
        scale = side / 96                                # frame pixels per crop pixel
        centre = (boxes[0][0] + 10 + (col * 16 - 48) * scale, boxes[0][1] + 12 + (row * 16 - 48) * scale)
        assert (x + w / 2, y + h / 2) == pytest.approx(centre, abs=1e-3)
    else:
        assert result.box == pytest.approx(boxes[0])


def test_classifier_options_pass_through_and_unknown_ones_fail_at_once():
    tracker = create_tracker("atom", model=nets()["atom"], image_size=96, dim=8, filter_reg=0.5)
    images, boxes = video(2)
    tracker.initialize(images[0], boxes[0])
    assert tracker.classifier.dim == 8 and tracker.classifier.regs == (1e-4, 0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        create_tracker("atom", model=nets()["atom"], bogus=1)


def test_parameters_are_the_papers():
    assert atom_module.NUM_RANDOM_BOXES == 9       # the jitter values: test_iounet_refinement.py
    assert atom_module.IMAGE_SIZE == 288 and atom_module.SEARCH_AREA_SCALE == 5
    assert (dimp_module.MEMORY, dimp_module.TRAIN_SKIPPING, dimp_module.INIT_ITER, dimp_module.UPDATE_ITER,
            dimp_module.HARD_NEGATIVE_ITER) == (50, 20, 10, 2, 1)


@pytest.mark.parametrize("name", ["atom", "dimp"])
def test_weights_from_a_file_or_the_environment(name, tmp_path, monkeypatch):
    env = {"atom": atom_module.WEIGHTS_ENV, "dimp": dimp_module.WEIGHTS_ENV}[name]
    monkeypatch.delenv(env, raising=False)
    assert not get_tracker_info(name).is_available()
    with pytest.raises(ValueError, match=f"give weights= .* or set {env}"):
        create_tracker(name, weights=None)
    net = nets()[name]
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    monkeypatch.setenv(env, str(tmp_path))                 # a checkpoint folder
    assert get_tracker_info(name).is_available()
    loaded = create_tracker(name, image_size=96)
    assert all(torch.equal(a, b) for a, b in zip(loaded.net.state_dict().values(), net.state_dict().values(),
                                                 strict=True))
    save_file({"x": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match=f"bad.safetensors: not {name} weights"):
        create_tracker(name, weights=str(tmp_path / "bad.safetensors"))


@pytest.mark.parametrize("name", ["atom", "dimp"])
def test_optimize_folds_batch_norm_with_equal_outputs(name):
    net = nets()[name]
    folded = fold_batchnorm(__import__("copy").deepcopy(net))
    assert folded > 10
    a = create_tracker(name, model=net, image_size=96, optimize="true")        # as --param optimize=true
    with pytest.raises(ValueError, match="optimize: expected true or false, got 'maybe'"):
        create_tracker(name, model=net, optimize="maybe")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in a.net.backbone.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.backbone.modules())   # the given net kept
    images = torch.rand(2, 3, 96, 96) * 255
    with torch.no_grad():
        for x, y in zip(net.backbone(images), a.net.backbone(images), strict=True):
            assert torch.allclose(x, y, atol=1e-4, rtol=1e-4)
    b = create_tracker(name, model=net, image_size=96)
    frames, boxes = video(3)
    a.initialize(frames[0], boxes[0])
    b.initialize(frames[0], boxes[0])
    ra, rb = a.track(frames[1]), b.track(frames[1])
    # via the online fit, whose Gauss-Newton steps on ATOM's MLU objective amplify the folding's rounding
    response_a, response_b = ra.extras["response"], rb.extras["response"]
    assert np.abs(response_a - response_b).max() <= 0.02 * np.abs(response_b).max()
    assert ra.box == pytest.approx(rb.box, abs=1.0)   # an untrained IoU-Net's ascent amplifies rounding
