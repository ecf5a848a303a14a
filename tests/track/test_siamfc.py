"""SiamFC network, loss and tracker geometry against the paper's numbers (Bertinetto et al. 2016)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepvideo.track import dcf
from deepvideo.track import siamfc as net
from deepvideo.track.siamfc import SiamFC, balanced_weights, labels, logistic_loss, peak_centre_error
from deepvideo.track.trackers import siamfc as trk


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_full_width_shapes_and_17x17_score_map():
    model = SiamFC().eval()
    assert model.channels == (96, 256, 384, 384, 256)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [11, 5, 3, 3, 3]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2] and convs[0].stride == (2, 2)
    assert all(c.padding == (0, 0) for c in convs)
    with torch.no_grad():
        z = model.embed(torch.zeros(1, 3, 127, 127))
        x = model.embed(torch.zeros(1, 3, 255, 255))
        assert z.shape == (1, 256, 6, 6) and x.shape == (1, 256, 22, 22)
        assert model.score(z, x).shape == (1, 1, 17, 17)


def test_width_scales_channels_and_several_searches_per_exemplar():
    model = SiamFC(width=0.25).eval()
    assert model.channels == (24, 64, 96, 96, 64)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 127, 127) * 255, torch.rand(6, 3, 255, 255) * 255)
    assert out.shape == (6, 1, 17, 17)
    with pytest.raises(ValueError, match="width must be positive, got 0"):
        SiamFC(width=0)
    with pytest.raises(ValueError, match="do not fit"):
        net.cross_correlate(torch.zeros(2, 4, 3, 3), torch.zeros(3, 4, 5, 5))


def test_cross_correlation_is_a_sliding_dot_product_scaled_by_0001():
    model = SiamFC(width=0.05)
    with torch.no_grad():
        model.bias.fill_(0.5)
    z, x = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 5, 5)
    out = model.score(z, x)
    expected = (x[1, :, 1:4, 2:5] * z[1]).sum() + 0.5
    assert torch.allclose(out[1, 0, 1, 2], expected * 0.001, atol=1e-6)


def test_label_disc_has_radius_16_pixels_two_cells():
    centred = torch.tensor([[127.5 - 20, 127.5 - 30, 40.0, 60.0]])
    y = labels(centred)[0, 0]
    rows, cols = torch.nonzero(y > 0, as_tuple=True)
    assert set(zip((rows - 8).tolist(), (cols - 8).tolist(), strict=True)) == {
        (dr, dc) for dr in range(-2, 3) for dc in range(-2, 3) if dr * dr + dc * dc <= 4}
    assert int((y > 0).sum()) == 13
    shifted = labels(torch.tensor([[127.5 + 24 - 5, 127.5 - 16 - 5, 10.0, 10.0]]))[0, 0]
    assert shifted[6, 11] == 1 and shifted[8, 11] == 1 and shifted[9, 11] == -1 and shifted[6, 8] == -1


def test_loss_equals_hand_computation_with_balanced_weights():
    scores = torch.zeros(1, 1, 3, 3)
    scores[0, 0, 1, 1] = 2.0
    scores[0, 0, 0, 0] = -1.0
    target = torch.tensor([[127.5 - 1, 127.5 - 1, 2.0, 2.0]])  # centre cell only is positive
    y = labels(target, size=3, radius=4.0)
    assert int((y > 0).sum()) == 1
    w = balanced_weights(y)
    assert math.isclose(float(w[0, 0, 1, 1]), 0.5) and math.isclose(float(w[0, 0, 0, 0]), 0.5 / 8)
    hand = 0.5 * math.log1p(math.exp(-2.0)) + 0.5 / 8 * (math.log1p(math.exp(-1.0)) + 7 * math.log(2.0))
    assert math.isclose(float(logistic_loss(scores, target, radius=4.0)), hand, rel_tol=1e-6)


def test_peak_centre_error_in_search_pixels():
    scores = torch.zeros(1, 1, 17, 17)
    scores[0, 0, 8, 11] = 1.0
    target = torch.tensor([[127.5 - 5, 127.5 - 5, 10.0, 10.0]])
    assert math.isclose(float(peak_centre_error(scores, target)[0]), 24.0)


def test_tracker_parameters_are_the_papers():
    assert (trk.SCALE_STEP, trk.NUM_SCALES, trk.SCALE_PENALTY, trk.SCALE_DAMPING) == (1.0375, 3, 0.9745, 0.59)
    assert (trk.RESPONSE_UP, trk.WINDOW_INFLUENCE, trk.CONTEXT) == (16, 0.176, 0.5)
    assert (net.EXEMPLAR_SIZE, net.SEARCH_SIZE, net.STRIDE, net.SCORE_SIZE, net.ADJUST, net.RADIUS) == (
        127, 255, 8, 17, 0.001, 16.0)


def test_context_formula():
    # the authors' run_tracker.m: wc_z = w + 0.5 (w + h), hc_z = h + 0.5 (w + h), s_z = sqrt(wc_z hc_z)
    s_z, s_x = trk.context_sizes((40.0, 20.0))
    assert math.isclose(s_z, math.sqrt(70 * 50)) and math.isclose(s_x, s_z * 255 / 127)


@pytest.mark.parametrize("cell", [(8, 11), (5, 8), (10, 6)])
def test_displacement_of_a_peak_at_a_known_offset(cell):
    responses = np.zeros((3, 17, 17), np.float32)
    responses[1][cell] = 1.0
    s_x = 200.0
    dx, dy, best, score = trk.locate(responses, s_x)
    assert best == 1 and score == 1.0
    one_up_pixel = 8 / 16 * s_x / 255
    assert abs(dx - (cell[1] - 8) * 8 * s_x / 255) <= one_up_pixel
    assert abs(dy - (cell[0] - 8) * 8 * s_x / 255) <= one_up_pixel


def test_scale_penalty_decides_between_scales():
    responses = np.zeros((3, 17, 17), np.float32)
    responses[1, 8, 8] = 1.0
    responses[2, 8, 8] = 1.02          # 1.02 * 0.9745 < 1: the unit scale wins
    assert trk.locate(responses, 100.0)[2] == 1
    responses[2, 8, 8] = 1.05          # 1.05 * 0.9745 > 1: the larger scale wins
    dx, dy, best, _ = trk.locate(responses, 100.0)
    assert best == 2 and abs(dx) < 1 and abs(dy) < 1


def test_weights_with_foreign_keys_are_refused(tmp_path):
    from safetensors.torch import save_file

    state = SiamFC(width=0.05).state_dict()
    state["head.weight"] = torch.zeros(2)
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    refusal = r"w\.safetensors: keys matching nothing in SiamFC: \['head\.weight'\]"
    with pytest.raises(ValueError, match=refusal):
        trk.SiamFCTracker(weights=path)


def test_tracker_needs_weights(monkeypatch):
    from deepvideo.track.registry import get_tracker_info

    monkeypatch.delenv(trk.WEIGHTS_ENV, raising=False)
    assert not get_tracker_info("siamfc").is_available()
    with pytest.raises(ValueError, match="give weights="):
        trk.SiamFCTracker()


def test_outside_the_frame_is_the_mean_colour():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :, 0] = 200
    patch = dcf.mean_filled_patch(frame, (0.0, 20.0), 40.0, 40, fill=(10.0, 20.0, 30.0))
    assert patch.shape == (40, 40, 3)
    assert (patch[:, :18] == (10, 20, 30)).all() and (patch[:, 22:] == (200, 0, 0)).all()
    inside = dcf.mean_filled_patch(frame, (30.0, 20.0), 20.0, 20, fill=(10.0, 20.0, 30.0))
    assert (inside == (200, 0, 0)).all()


def test_weights_from_the_environment_and_a_fixed_template(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from deepvideo.track.registry import create_tracker, get_tracker_info

    torch.manual_seed(0)
    model = SiamFC(width=0.05)
    path = tmp_path / "siamfc.safetensors"
    save_file(model.state_dict(), str(path))
    monkeypatch.setenv(trk.WEIGHTS_ENV, str(path))
    assert get_tracker_info("siamfc").is_available()
    tracker = create_tracker("siamfc")
    assert tracker.model.channels == model.channels
    frame = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    tracker.initialize(frame, (40, 30, 20, 16))
    template = tracker.z.clone()
    result = tracker.track(frame[:, ::-1].copy())
    assert torch.equal(tracker.z, template) and result.extras["response"].shape == (17, 17)
    assert math.isclose(result.score, float(result.extras["response"].max()))
