"""IoU-Net box refinement: pytracking's random start boxes, the relative (log-size) parametrisation
of PrDiMP against the written step, the step decay, and the trackers' options using them."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from deepvideo.track import iounet
from deepvideo.track.boxes import iou
from deepvideo.track.iounet import from_relative, jitter_boxes, refine_boxes, to_relative
from deepvideo.track.registry import create_tracker
from deepvideo.track.trackers import atom as atom_module
from deepvideo.track.trackers import dimp as dimp_module

TARGET = torch.tensor([50.0, 40.0, 30.0, 20.0])      # cx, cy, w, h of the quadratic's maximum
WEIGHT = torch.tensor([1e-3, 2e-3, 3e-3, 1e-3])


class Quadratic:
    """A stand-in IoU-Net: ``f(box) = −Σ a_i (q_i − t_i)²`` with ``q = (cx, cy, w, h)``."""

    @staticmethod
    def q(boxes):
        return torch.cat([boxes[..., :2] + boxes[..., 2:] / 2, boxes[..., 2:]], dim=-1)

    def predict_iou(self, modulation, test, boxes):
        return -(WEIGHT * (self.q(boxes) - TARGET) ** 2).sum(-1)


def test_relative_parametrisation_round_trips():
    boxes = torch.tensor([[10.0, 20, 30, 40], [0, 5, 8, 2]])
    norm = torch.tensor([30.0, 40.0])
    rel = to_relative(boxes, norm)
    assert torch.allclose(rel[0], torch.tensor([25 / 30, 40 / 40, math.log(30), math.log(40)]))
    assert torch.allclose(from_relative(rel, norm), boxes, atol=1e-5)


def test_relative_step_is_the_written_formula():
    boxes = torch.tensor([[20.0, 20, 24, 18], [30, 25, 20, 30]])
    step = (0.1, 0.002)
    out, _ = refine_boxes(Quadratic(), None, None, boxes, steps=1, step_length=step, space="relative")
    n = boxes[0, 2:]                                   # the first box's size normalises the centres
    q = Quadratic.q(boxes)
    grad = -2 * WEIGHT * (q - TARGET)                  # ∂f/∂(cx, cy, w, h)
    # r = (cx / n_w, cy / n_h, log w, log h): ∂f/∂r = (n ∂f/∂c, size ∂f/∂size)
    center = q[:, :2] + step[0] * n ** 2 * grad[:, :2]
    size = q[:, 2:] * torch.exp(step[1] * q[:, 2:] * grad[:, 2:])
    assert torch.allclose(out, torch.cat([center - size / 2, size], dim=1), atol=1e-4)
    assert (iounet.RELATIVE_STEPS, iounet.RELATIVE_STEP_LENGTH) == (10, 2.5e-3)   # prdimp18.py


def test_default_step_with_decay_and_the_predicted_iou_of_the_last_input():
    boxes = torch.tensor([[20.0, 20, 24, 18]])
    net = Quadratic()
    out, iou = refine_boxes(net, None, None, boxes, steps=2, step_length=1.0, decay=0.5)
    x = boxes.clone()
    for length in (1.0, 0.5):
        last = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net.predict_iou(None, None, last).sum(), last)
        x = last.detach() + length * grad * last.detach()[:, 2:].repeat(1, 2)
    assert torch.allclose(out, x, atol=1e-5)
    assert float(iou[0]) == pytest.approx(float(net.predict_iou(None, None, last.detach())[0]))
    with pytest.raises(ValueError, match="space must be"):
        refine_boxes(net, None, None, boxes, space="log")


def test_jitter_boxes_follow_pytracking_bounds():
    box = torch.tensor([100.0, 50.0, 90.0, 10.0])      # √(w h) = 30
    boxes = jitter_boxes(box, 4000, np.random.default_rng(0))
    assert boxes.shape == (4001, 4) and torch.equal(boxes[0], box)
    centre = boxes[1:, :2] + boxes[1:, 2:] / 2 - torch.tensor([145.0, 55.0])
    assert float(centre.abs().max()) <= 0.05 * 30 + 1e-4 and float(centre.abs().max()) > 0.049 * 30
    assert float(boxes[1:, 2].min()) >= 90 - 7.5 - 1e-4 and float(boxes[1:, 2].max()) <= 90 + 7.5 + 1e-4
    assert float(boxes[1:, 3].min()) == pytest.approx(10 / 3)    # 10 − 7.5 < 10 / 3: clamped
    assert (iounet.NUM_RANDOM_BOXES, iounet.JITTER_POS, iounet.JITTER_SIZE) == (9, 0.1, 0.5)


def tracker(name, monkeypatch, **options):
    """A tiny tracker on the first frame of a tiny video; no rotated copies (faster)."""
    from test_atom_dimp_trackers import nets, video

    cls = atom_module.ATOMTracker if name == "atom" else dimp_module.DiMPTracker
    monkeypatch.setattr(cls, "rotations", ())
    t = create_tracker(name, model=nets()[name], image_size=96, **options)
    images, boxes = video(3)
    t.initialize(images[0], boxes[0])
    return t, images, boxes


def test_relative_refinement_runs_and_an_unreached_min_iou_keeps_the_size(monkeypatch):
    t, images, boxes = tracker("dimp", monkeypatch, refinement="relative", iou_check=False)
    result = t.track(images[1])
    assert np.isfinite(result.box).all() and result.box[2] > 0
    t.min_iou = 1e9                                            # no prediction reaches it
    size = tuple(t.size)
    result = t.track(images[2])
    if result.extras["flag"] != "not_found":
        assert tuple(result.box[2:]) == pytest.approx(size)
    for name in ("atom", "dimp"):
        with pytest.raises(ValueError, match="refinement must be one of"):
            create_tracker(name, model=torch.nn.Identity(), refinement="log")


def test_first_frame_check_turns_off_a_refinement_that_makes_boxes_worse(monkeypatch):
    t, images, boxes = tracker("dimp", monkeypatch)
    crops, true = t.augmented(images[0])
    maps, _ = t.features(crops[:1])
    monkeypatch.setattr(t, "refined_box", lambda test, start: (true[0], torch.tensor(0.5)))
    draws = copy.deepcopy(t.rng)
    gain, error = t.check_refinement(maps, true[:1])             # every start moves onto the truth
    starts = jitter_boxes(true[0], atom_module.CHECK_STARTS, draws)[1:].numpy()
    gains = 1 - iou(starts, np.repeat(true[:1].numpy(), len(starts), axis=0))
    assert gain == pytest.approx(gains.mean(), rel=1e-5)
    assert error == pytest.approx(gains.std(ddof=1) / math.sqrt(len(gains)), rel=1e-4)
    assert atom_module.CHECK_STARTS == 4
    t.start_refinement(maps, true[:1])
    assert t.refinement_helps
    shrink = lambda test, start: (torch.cat([start[:2], start[2:] / 2]), torch.tensor(0.5))  # noqa: E731
    monkeypatch.setattr(t, "refined_box", shrink)
    t.start_refinement(maps, true[:1])
    assert t.refinement_gain[0] < 0 and not t.refinement_helps
    result = t.track(images[1])
    assert tuple(result.box[2:]) == pytest.approx(boxes[0][2:])    # the IoU-Net is not used


def test_first_frame_augmentation_is_pytrackings():
    from test_atom_dimp_trackers import nets, video

    t = create_tracker("atom", model=nets()["atom"], image_size=96)
    images, boxes = video(1)
    t.start(images[0], boxes[0])
    crops, true = t.augmented(images[0])
    assert len(crops) == 1 + 1 + 4 + 5 + 12 and torch.equal(true[-1], true[0])
    assert t.rotations == (5, -5, 10, -10, 20, -20, 30, -30, 45, -45, -60, 60)
    assert dimp_module.DiMPTracker.rotations == (10, -10, 45, -45) and len(dimp_module.DiMPTracker.blurs) == 3
    # a dot right of the centre turns counter-clockwise (up in the image) by the angle
    frame = np.zeros((200, 200, 3), np.uint8)
    frame[99:101, 129:131] = 255                       # 30 px right of the centre (100, 100)
    t.image_size, angle = 96, 30
    crop = t.crop(frame, (100.0, 100.0), 96.0, rotate=angle)[0].numpy()
    y, x = np.argwhere(crop > crop.max() / 2).mean(axis=0)
    c = (96 - 1) / 2
    assert (x - c, c - y) == pytest.approx((30 * math.cos(math.radians(angle)),
                                            30 * math.sin(math.radians(angle))), abs=1.0)


def test_feature_dropout_copies_are_pytrackings():
    """'dropout': (7, 0.2) for ATOM, (2, 0.2) for DiMP: copies of the identity sample with whole
    channels zeroed and the rest scaled by 1 / 0.8, appended with the identity's box."""
    from test_atom_dimp_trackers import nets

    t = create_tracker("atom", model=nets()["atom"], image_size=96, seed=3)
    assert t.dropout == (7, 0.2) and dimp_module.DiMPTracker.dropout == (2, 0.2)
    feats = torch.rand(3, 64, 6, 6) + 0.5
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 1.0, 1.0]])
    out, out_boxes = t.with_dropout(feats, boxes)
    assert out.shape == (10, 64, 6, 6) and torch.equal(out[:3], feats)
    assert torch.equal(out_boxes[3:], boxes[:1].expand(7, 4))
    ratio = out[3:] / feats[:1]
    dropped = ratio[:, :, 0, 0] == 0
    assert torch.all(dropped | torch.isclose(ratio[:, :, 0, 0], torch.tensor(1 / 0.8)))
    assert torch.allclose(ratio.amax(dim=(2, 3)), ratio.amin(dim=(2, 3)))     # whole channels
    assert 0.1 < float(dropped.float().mean()) < 0.3                            # 448 channels, p = 0.2
    again, _ = create_tracker("atom", model=nets()["atom"], image_size=96, seed=3).with_dropout(feats, boxes)
    assert torch.equal(again, out)                                              # drawn from the seed
