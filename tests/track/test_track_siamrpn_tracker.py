"""The siamrpn / siamrpnpp / siammask trackers: penalty formula, rotated box, runs, weights."""

import math

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.track.base import Tracker
from deepvideo.track.registry import TrackerUnavailableError, create_tracker, get_tracker_info
from deepvideo.track.siamrpn import SiamMask, SiamRPN, SiamRPNpp
from deepvideo.track.trackers import siamrpn as T


def tiny(name):
    torch.manual_seed(0)
    return {"siamrpn": lambda: SiamRPN(width=0.125),
            "siamrpnpp": lambda: SiamRPNpp(width=0.125, blocks=(1, 1, 1, 1), channels=8),
            "siammask": lambda: SiamMask(width=0.125, blocks=(1, 1, 1), channels=8)}[name]().eval()


def video(frames=4, size=(160, 120)):
    rng = np.random.default_rng(0)
    images, boxes = [], []
    for t in range(frames):
        image = rng.integers(60, 140, (size[1], size[0], 3)).astype(np.uint8)
        x, y = 50 + 3 * t, 40 + 2 * t
        image[y:y + 30, x:x + 24] = (220, 40, 40)
        images.append(image)
        boxes.append((x, y, 24, 30))
    return images, boxes


def test_published_parameters():
    keys = ("penalty_k", "window_influence", "lr", "search_size")
    assert T.PARAMETERS["siamrpn"] == dict(zip(keys, (0.16, 0.40, 0.30, 287), strict=True))
    assert T.PARAMETERS["siamrpnpp"] == dict(zip(keys, (0.05, 0.42, 0.38, 255), strict=True))
    assert T.PARAMETERS["siammask"] == dict(zip(keys, (0.10, 0.41, 0.32, 255), strict=True))
    assert T.MASK_THRESHOLD == 0.15 and T.CONTEXT == 0.5


def test_size_penalty_formula():
    boxes = np.array([[0, 0, 40.0, 20.0], [0, 0, 20.0, 20.0]])
    penalty = T.size_penalty(boxes, (20.0, 20.0), 0.1)
    s = math.sqrt((40 + 30) * (20 + 30)) / math.sqrt(40 * 40)      # padded sizes, p = (w + h) / 2
    r = 2.0                                                        # aspect 1 -> 2
    assert penalty[0] == pytest.approx(math.exp(-(r * s - 1) * 0.1))
    assert penalty[1] == pytest.approx(1.0)


def test_rotated_box_of_a_drawn_rotated_rectangle():
    mask = np.zeros((120, 160), np.uint8)
    corners = cv2.boxPoints(((80.0, 60.0), (70.0, 30.0), 30.0))
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    (centre, size, angle), polygon = T.rotated_box(mask.astype(bool))
    assert centre == pytest.approx((80, 60), abs=1.0)
    assert sorted(size) == pytest.approx([30, 70], abs=2.0)
    assert angle % 90 == pytest.approx(30 % 90, abs=2.0) or angle % 90 == pytest.approx(60, abs=2.0)
    assert polygon.shape == (4, 2)
    assert T.rotated_box(np.zeros((20, 20), bool)) is None


def test_paste_mask_puts_the_square_where_it_belongs():
    pasted = T.paste_mask(np.ones((5, 5)), (50.0, 40.0), 20.0, (100, 120))
    assert pasted.shape == (100, 120)
    assert pasted[33:47, 43:57].min() == pytest.approx(1.0)
    assert pasted[:28].max() == 0 and pasted[:, 62:].max() == 0


@pytest.mark.parametrize("name", ["siamrpn", "siamrpnpp", "siammask"])
def test_trackers_run_on_a_tiny_sequence(name):
    tracker = create_tracker(name, model=tiny(name))
    assert isinstance(tracker, Tracker)
    images, boxes = video()
    tracker.initialize(images[0], boxes[0])
    for image in images[1:]:
        result = tracker.track(image)
        assert np.isfinite(result.box).all() and result.box[2] >= 10 and result.box[3] >= 10
        assert 0 <= result.score <= 1
    if name == "siammask":
        assert result.extras["mask"].shape == (120, 160) and result.extras["mask"].dtype == bool
        assert result.extras["polygon"].shape == (4, 2) and len(result.extras["mask_box"]) == 4


def test_optimize_folds_batchnorm_with_equal_outputs():
    for name in ("siamrpnpp", "siammask"):
        model = tiny(name)
        for m in model.modules():   # non-trivial statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        fast = create_tracker(name, model=model, optimize="true")   # as --param optimize=true gives it
        assert create_tracker(name, model=model, optimize="false").model is model
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.model.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
        with torch.no_grad():
            a, b = model(z, x), fast.model(z, x)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-3)


def test_weights_from_file_or_environment(tmp_path, monkeypatch):
    model = tiny("siamrpnpp")
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    monkeypatch.delenv("DEEPVIDEO_SIAMRPNPP_WEIGHTS", raising=False)
    assert not get_tracker_info("siamrpnpp").is_available()
    with pytest.raises(TrackerUnavailableError, match="siamrpnpp"):
        create_tracker("siamrpnpp")
    with pytest.raises(ValueError, match="DEEPVIDEO_SIAMRPNPP_WEIGHTS"):
        create_tracker("siamrpnpp", device="cpu")
    monkeypatch.setenv("DEEPVIDEO_SIAMRPNPP_WEIGHTS", str(path))
    assert get_tracker_info("siamrpnpp").is_available()
    tracker = create_tracker("siamrpnpp")
    assert tracker.model.widths == model.widths
    for key, value in model.state_dict().items():
        assert torch.equal(tracker.model.state_dict()[key], value)
    with pytest.raises(TypeError, match="unknown parameters"):
        create_tracker("siamrpnpp", model=model, scale_step=1.1)


class FixedOutputs(torch.nn.Module):
    """A stand-in network: foreground only at anchor 2 (64x64) of RoW (12, 16) of a 25x25 map, zero
    deltas, and that RoW's 63x63 mask all foreground."""

    def embed_template(self, z):
        return z.mean()

    def match(self, zf, x):
        cls = torch.full((1, 10, 25, 25), -10.0)
        cls[0, 5 + 2, 12, 16] = 10.0
        mask = torch.full((1, 63 * 63, 25, 25), -10.0)
        mask[0, :, 12, 16] = 10.0
        return {"cls": cls, "loc": torch.zeros(1, 20, 25, 25), "mask": mask}


def test_siammask_puts_the_rows_proposal_and_mask_where_they_belong():
    tracker = T.SiamMaskTracker(model=FixedOutputs())
    frame = np.full((200, 200, 3), 100, np.uint8)
    tracker.initialize(frame, (80, 80, 40, 40))     # s_z = 80: search pixels per frame pixel 127/80
    result = tracker.track(frame)
    scale = 127 / 80
    shift = (16 - 12) * 8 / scale                   # RoW (12, 16): 4 cells right of the centre
    penalty = T.size_penalty(np.array([[0, 0, 64.0, 64.0]]), (40 * scale, 40 * scale), 0.10)[0]
    lr = penalty * result.score * 0.32
    x, y, w, h = result.box
    assert (x + w / 2, y + h / 2) == pytest.approx((100 + shift, 100), abs=1e-3)
    assert w == pytest.approx(40 * (1 - lr) + 64 / scale * lr, abs=1e-3)
    # the mask covers the RoW's 127-search-pixel (80-frame-pixel) window
    mx, my, mw, mh = result.extras["mask_box"]
    assert (mx, my) == pytest.approx((60 + shift, 60), abs=1.5) and (mw, mh) == pytest.approx((80, 80), abs=2)
    assert result.extras["mask"][100, int(100 + shift)] and not result.extras["mask"][100, 50]
