"""SiamFC tracker options: 5 scales (SiamFC-5s), CFNet's linear template update, UpdateNet
(Zhang et al. 2019) and the optimized inference copy, against the papers' numbers and formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepvideo.models.inference import bf16_supported
from deepvideo.track import updatenet as un
from deepvideo.track.dcf import mean_filled_patch
from deepvideo.track.siamfc import SiamFC
from deepvideo.track.trackers import siamfc as trk
from deepvideo.track.updatenet import TemplateWindows, UpdateNet, template_loss, unrolled_losses


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def random_siamfc(width: float = 0.05, seed: int = 0) -> SiamFC:
    """A small SiamFC with random weights and random BN statistics (so folding matters)."""
    torch.manual_seed(seed)
    model = SiamFC(width=width)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-2, 2)
                m.running_var.uniform_(0.5, 3)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (90, 120, 3), dtype=np.uint8)


def test_five_scales_are_the_authors_siamfc_5s():
    p = trk.SCALE_PARAMS[5]
    assert (p.step, p.penalty, p.damping, p.window) == (1.0255, 0.962, 0.34, 0.168)
    tracker = trk.SiamFCTracker(model=random_siamfc(), num_scales=5)
    assert np.allclose(tracker.scales, 1.0255 ** np.arange(-2, 3))
    with pytest.raises(ValueError, match=r"num_scales must be one of \[3, 5\].*got 4"):
        trk.SiamFCTracker(model=random_siamfc(), num_scales=4)


def test_five_scale_penalty_and_scale_of_the_displacement():
    responses = np.zeros((5, 17, 17), np.float32)
    responses[2, 8, 8] = 1.0
    responses[4, 8, 11] = 1.03         # 1.03 * 0.962 < 1: the unit scale wins
    assert trk.locate(responses, 100.0)[2] == 2
    responses[4, 8, 11] = 1.05         # 1.05 * 0.962 > 1: scale 1.0255^2 wins
    dx, dy, best, score = trk.locate(responses, 100.0)
    assert best == 4 and score == pytest.approx(1.05)
    expected = 3 * 8 * 100.0 * 1.0255 ** 2 / 255
    assert abs(dx - expected) <= 8 / 16 * 100.0 * 1.0255 ** 2 / 255 and abs(dy) < 1


def test_five_scale_tracker_runs_and_damps_with_034():
    tracker = trk.SiamFCTracker(model=random_siamfc(), num_scales=5)
    tracker.initialize(frame(), (40, 30, 20, 16))
    size = tracker.size
    result = tracker.track(frame(1))
    change = (1 - 0.34) + 0.34 * result.extras["scale"]
    assert np.isclose(tracker.scales, result.extras["scale"]).sum() == 1
    assert tracker.size == pytest.approx((size[0] * change, size[1] * change))


def test_upsampling_is_torchs_bicubic_resize():
    responses = np.random.default_rng(0).standard_normal((3, 17, 17)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(responses)[:, None], size=(272, 272),
                                          mode="bicubic", align_corners=False)[:, 0].numpy()
    assert np.allclose(trk.upsample(responses), ref, atol=1e-5)


def test_linear_update_is_cfnets_running_average():
    assert un.LINEAR_RATE == 0.0102
    tracker = trk.SiamFCTracker(model=random_siamfc(), update="linear")
    tracker.initialize(frame(), (40, 30, 20, 16))
    t0, s_x, fill = tracker.t0.clone(), tracker.s_x, tracker.fill
    nxt = frame(1)
    result = tracker.track(nxt)
    side = s_x * result.extras["scale"] * 127 / 255
    current = tracker.embed([mean_filled_patch(nxt, tracker.center, side, 127, fill)])
    assert torch.allclose(tracker.z, 0.9898 * t0 + 0.0102 * current, atol=1e-6)
    assert torch.equal(tracker.t0, t0)


def test_update_option_is_checked():
    with pytest.raises(ValueError, match=r"update must be one of \('none', 'linear', 'updatenet'\)"):
        trk.SiamFCTracker(model=random_siamfc(), update="average")
    with pytest.raises(ValueError, match="update_rate must be in"):
        trk.SiamFCTracker(model=random_siamfc(), update="linear", update_rate=0)


def test_updatenet_layers_and_formula():
    net = UpdateNet(channels=8)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    sizes = [(c.in_channels, c.out_channels, c.kernel_size) for c in convs]
    assert sizes == [(24, 96, (1, 1)), (96, 8, (1, 1))]
    t0, acc, cur = (torch.randn(2, 8, 3, 3) for _ in range(3))
    assert torch.equal(net(t0, acc, cur), t0)  # the last layer starts at zero: the fixed template
    torch.nn.init.normal_(convs[1].weight)
    torch.nn.init.normal_(convs[1].bias)
    x = torch.cat([t0, acc, cur], dim=1)
    hidden = torch.relu(torch.einsum("oi,nihw->nohw", convs[0].weight[:, :, 0, 0], x)
                        + convs[0].bias[None, :, None, None])
    expected = torch.einsum("oi,nihw->nohw", convs[1].weight[:, :, 0, 0], hidden) \
        + convs[1].bias[None, :, None, None] + t0
    assert torch.allclose(net(t0, acc, cur), expected, atol=1e-5)
    with pytest.raises(ValueError, match="UpdateNet\\(8 channels\\)"):
        net(t0, acc, torch.zeros(2, 4, 3, 3))


def test_tracker_with_updatenet_feeds_t0_accumulated_and_current():
    model = random_siamfc()
    torch.manual_seed(1)
    net = UpdateNet(channels=model.channels[-1])
    torch.nn.init.normal_(net.update[2].weight, std=0.1)
    tracker = trk.SiamFCTracker(model=model, update="updatenet", updatenet=net)
    tracker.initialize(frame(), (40, 30, 20, 16))
    t0, s_x, fill = tracker.t0.clone(), tracker.s_x, tracker.fill
    nxt = frame(1)
    result = tracker.track(nxt)
    side = s_x * result.extras["scale"] * 127 / 255
    current = tracker.embed([mean_filled_patch(nxt, tracker.center, side, 127, fill)])
    with torch.no_grad():
        assert torch.allclose(tracker.z, net(t0, t0, current), atol=1e-6)
    with pytest.raises(ValueError, match="takes 4-channel templates, the SiamFC embedding gives"):
        trk.SiamFCTracker(model=model, update="updatenet", updatenet=UpdateNet(channels=4))


def test_updatenet_weights_file_and_environment(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    model = random_siamfc()
    path = tmp_path / "upd.safetensors"
    save_file(UpdateNet(channels=model.channels[-1], hidden=5).state_dict(), str(path))
    monkeypatch.delenv(trk.UPDATENET_ENV, raising=False)
    with pytest.raises(ValueError, match="needs updatenet="):
        trk.SiamFCTracker(model=model, update="updatenet")
    monkeypatch.setenv(trk.UPDATENET_ENV, str(path))
    tracker = trk.SiamFCTracker(model=model, update="updatenet")
    assert tracker.updatenet.update[0].out_channels == 5
    save_file({"update.0.weight": torch.zeros(5, 3 * model.channels[-1], 1, 1)}, str(path))
    with pytest.raises(ValueError, match=r"upd\.safetensors: not UpdateNet weights"):
        trk.SiamFCTracker(model=model, update="updatenet")


def test_template_loss_and_unrolled_baselines():
    a, b = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    b[1] = 2
    assert float(template_loss(a, b)) == pytest.approx((4 * 1 + 4 * 4) / 2)
    templates = torch.randn(3, 4, 2, 3, 3)  # N=3 windows of L=4
    losses = unrolled_losses(UpdateNet(channels=2), templates)
    t0 = templates[:, 0]
    fixed = (template_loss(t0, templates[:, 2]) + template_loss(t0, templates[:, 3])) / 2
    assert float(losses["fixed"]) == pytest.approx(float(fixed), rel=1e-5)
    assert float(losses["loss"].detach()) == pytest.approx(float(fixed), rel=1e-5)  # untrained: keeps T_0
    lin1 = 0.9898 * t0 + 0.0102 * templates[:, 1]
    lin2 = 0.9898 * lin1 + 0.0102 * templates[:, 2]
    linear = (template_loss(lin1, templates[:, 2]) + template_loss(lin2, templates[:, 3])) / 2
    assert float(losses["linear"]) == pytest.approx(float(linear), rel=1e-5)
    with pytest.raises(ValueError, match="accumulate must be one of"):
        unrolled_losses(UpdateNet(channels=2), templates, accumulate="mean")


class FakeSequence:
    def __init__(self, n: int, absent: list[int]):
        self.name = "fake"
        self.boxes = np.array([[10 + k, 12, 20, 16] for k in range(n)], np.float64)
        self.absent = np.zeros(n, bool)
        self.absent[absent] = True

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, k: int) -> np.ndarray:
        """Red = 10 k, green and blue = ramps along x and y (so a crop's position shows)."""
        rows, cols = np.mgrid[0:48, 0:64]
        return np.stack([np.full((48, 64), 10 * k), 3 * cols, 4 * rows], axis=-1).astype(np.uint8)


def test_template_windows_use_runs_of_visible_frames_and_ground_truth_crops():
    seq = FakeSequence(8, absent=[3])
    assert TemplateWindows.window_starts(seq, 3).tolist() == [0, 4, 5]
    windows = TemplateWindows([seq], length=3, items_per_epoch=5)
    item = windows[(2, 1)]["exemplars"]
    assert item.shape == (3, 3, 127, 127)
    start = int(item[0, 0, 63, 63]) // 10
    assert start in (0, 4, 5) and torch.equal(item, windows[(2, 1)]["exemplars"])
    for j in range(3):
        k = start + j
        fill = tuple(float(v) for v in seq.frame(start).reshape(-1, 3).mean(axis=0))
        crop = mean_filled_patch(seq.frame(k), (20 + k, 20), math.sqrt(38 * 34), 127, fill)
        assert torch.equal(item[j], torch.from_numpy(crop.astype(np.float32).transpose(2, 0, 1)))
    with pytest.raises(ValueError, match="no sequence has 6 consecutive frames"):
        TemplateWindows([seq], length=6)


def test_optimized_fp32_embedding_equals_the_original():
    model = random_siamfc(width=0.1)
    fast, bf16 = trk.optimize_siamfc(model, bf16=False)
    assert not bf16 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    kinds = [type(m).__name__ for m in fast.features]
    assert kinds[:6] == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU"]
    x = torch.rand(3, 3, 255, 255) * 255
    z = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        ref = model(z, x)
        last = torch.channels_last
        out = fast(z.contiguous(memory_format=last), x.contiguous(memory_format=last))
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is kept


@pytest.mark.skipif(not bf16_supported(), reason="the CPU has no native bfloat16")
def test_optimized_tracker_scores_match_within_bf16_tolerance():
    model = random_siamfc(width=0.1)
    plain = trk.SiamFCTracker(model=model)
    fast = trk.SiamFCTracker(model=model, optimize="true")
    assert fast.bf16 and fast.optimized
    for tracker in (plain, fast):
        tracker.initialize(frame(), (40, 30, 20, 16))
    a, b = plain.track(frame(1)), fast.track(frame(1))
    ra, rb = a.extras["response"], b.extras["response"]
    assert np.abs(ra - rb).max() <= 0.03 * np.abs(ra).max()
    with pytest.raises(ValueError, match="optimize must be true or false"):
        trk.SiamFCTracker(model=model, optimize="fast")
