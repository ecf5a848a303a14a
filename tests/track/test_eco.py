"""ECO-HC (Danelljan et al., CVPR 2017): each piece against its formula, and the tracker on
synthetic sequences."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from deepvideo.track.boxes import iou
from deepvideo.track.eco import fourier
from deepvideo.track.eco.optimize import (
    FilterSystem,
    JointSystem,
    Regularization,
    conjugate_gradient,
    dot,
    pca_projection,
    project,
)
from deepvideo.track.eco.params import EcoParams
from deepvideo.track.eco.sample_space import SampleSpace
from deepvideo.track.registry import get_tracker_info
from deepvideo.track.trackers.eco import ECO, EcoFeature

A = -0.75


# ---- continuous interpolation ------------------------------------------------------------

def test_cubic_kernel_fourier_matches_numerical_fft():
    step, length = 1 / 256, 64.0                      # kernel sampled finely on a long period
    x = (torch.arange(int(length / step), dtype=torch.float64) - length / step / 2) * step
    numeric = torch.fft.fft(torch.fft.ifftshift(fourier.cubic_kernel(x, A))).real * step
    freqs = torch.arange(0, 200, dtype=torch.float64) / length          # f = k / length
    closed = fourier.cubic_kernel_fourier(freqs, A)
    assert closed[0] == 1.0                           # the kernel integrates to 1
    assert torch.allclose(closed, numeric[:200], atol=1e-5)


def test_interpolation_coefficients_are_the_fourier_series_of_one_sample():
    """For a unit sample at n = 0, J(t) = b(N (t - t_0) / T) (periodic), with
    t_0 = T/(2N) - T/2 (the cell centre, origin at the sample's centre); its Fourier series
    coefficients (1/T) int J(t) e^{-i 2 pi k t / T} dt are the interpolation coefficients."""
    for n in (7, 8):
        period, steps = 24.0, 24 * 64
        t = (torch.arange(steps, dtype=torch.float64) + 0.5) * period / steps - period / 2
        t0 = period / (2 * n) - period / 2
        j = sum(fourier.cubic_kernel((t - t0 + m * period) * n / period, A) for m in (-1, 0, 1))
        k = fourier.frequencies(n)
        numeric = (j[None, :] * torch.exp(-2j * math.pi * k[:, None] * t[None, :] / period)
                   ).sum(1) / steps
        coeff = fourier.interpolation_coefficients(n, A, centering=True)
        assert torch.allclose(coeff, numeric, atol=1e-6)


def test_centred_dft_half_plane_is_the_full_dft():
    torch.manual_seed(1)
    for shape in ((5, 7), (6, 8)):
        x = torch.randn(*shape, dtype=torch.float64)
        full = fourier.full_plane(fourier.centred_dft(x))
        ky = fourier.frequencies(shape[0])
        kx = fourier.frequencies(shape[1])
        n = torch.arange(shape[0], dtype=torch.float64)
        m = torch.arange(shape[1], dtype=torch.float64)
        ey = torch.exp(2j * math.pi * ky[None, :] * n[:, None] / shape[0])
        ex = torch.exp(2j * math.pi * kx[:, None] * m[None, :] / shape[1])
        back = (ey @ full @ ex).real / (shape[0] * shape[1])
        assert torch.allclose(back, x, atol=1e-10)
        assert fourier.inner(fourier.centred_dft(x), fourier.centred_dft(x)) == pytest.approx(
            float((full.abs() ** 2).sum()))


def test_gaussian_label_and_newton_find_a_shifted_peak():
    label = fourier.gaussian_label((31, 16), (2.0, 2.0), 60.0)
    shifted = fourier.shift_sample(label, (-3.3, 2.2), 60.0)     # the peak moves to (3.3, -2.2)
    grid = fourier.sample_on_grid(shifted, 31)
    assert int(torch.argmax(grid)) // 31 in (1, 2)               # grid step 60/31
    (ty, tx), value = fourier.newton_maximum(shifted, (3.9, -1.9), 60.0, iterations=5)
    assert (ty, tx) == (pytest.approx(3.3, abs=1e-4), pytest.approx(-2.2, abs=1e-4))
    assert value == pytest.approx(float(grid.max()), rel=0.1)
    _, at_start = fourier.newton_maximum(shifted, (3.9, -1.9), 60.0, iterations=0)
    (ty, tx), bounded = fourier.newton_maximum(shifted, (3.9, -1.9), 60.0, iterations=5,
                                               max_offset=0.1)
    assert (ty, tx) == (3.9, -1.9) and bounded == at_start    # the first step is 0.6 long
    far = (3.3 + 30.0, -2.2)                                  # the minimum of the periodic peak
    assert fourier.newton_maximum(shifted, far, 60.0, iterations=5)[0] == far


def test_regularization_window_minimum_and_operator():
    reg = fourier.regularization_filter(61, (20.0, 10.0), 1e-4, 10e-3, 2, 0.05)
    assert reg.shape[0] % 2 == 1 and torch.allclose(reg, reg.flip(0).flip(1))
    padded = torch.zeros(61, 61, dtype=torch.float64)
    c, ry, rx = 30, reg.shape[0] // 2, reg.shape[1] // 2
    padded[c - ry:c + ry + 1, c - rx:c + rx + 1] = reg
    window = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(padded))).real * 61 ** 2
    assert float(window.min()) == pytest.approx(1e-4, rel=1e-6)
    assert float(window[30, 30]) == pytest.approx(1e-4, rel=1e-6)       # lowest at the centre
    assert float(window[30, 30 + 5]) > 20 * 1e-4 and float(window[30 + 5, 30]) > 1e-4
    assert float(window[30, 30 + 5]) > float(window[30 + 5, 30])        # target 20 high, 10 wide
    torch.manual_seed(2)
    f = torch.randn(2, 9, 5, dtype=torch.complex128)
    operator = Regularization(reg)
    full = fourier.full_plane(f)
    kernel = reg[None, None].to(torch.complex128)
    wf = torch.nn.functional.conv2d(full.reshape(2, 1, 9, 9), kernel,
                                    padding=(reg.shape[0] - 1, reg.shape[1] - 1))
    expected = torch.nn.functional.conv2d(wf, kernel)[:, 0][..., 4:]    # W^T (W f)
    assert torch.allclose(operator(f), expected, atol=1e-12)


# ---- optimisation -----------------------------------------------------------------------

def test_conjugate_gradient_solves_a_small_spd_system():
    torch.manual_seed(3)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    x, _ = conjugate_gradient(lambda v: [a @ v[0]], [b], [torch.zeros(6, dtype=torch.float64)],
                              lambda r: [r[0] / a.diagonal()], iterations=12)
    assert torch.allclose(x[0], torch.linalg.solve(a, b), atol=1e-8)


def _random_half(*shape):
    """Half-plane coefficients of a random real map (``shape[-2]`` odd samples a side)."""
    n = shape[-2]
    return fourier.centred_dft(torch.randn(*shape[:-2], n, n, dtype=torch.float64))


def test_filter_and_joint_systems_are_symmetric():
    torch.manual_seed(4)
    reg = Regularization(fourier.regularization_filter(21, (6.0, 6.0), 1e-4, 10e-3, 2, 0.05))
    samples = [_random_half(3, 2, 7, 4), _random_half(3, 1, 5, 3)]
    label = fourier.gaussian_label((7, 4), (1.0, 1.0), 20.0)
    system = FilterSystem(samples, torch.tensor([0.5, 0.3, 0.2]), label, reg)
    u = [_random_half(2, 7, 4), _random_half(1, 5, 3)]
    v = [_random_half(2, 7, 4), _random_half(1, 5, 3)]
    assert float(dot(u, system.apply(v))) == pytest.approx(float(dot(system.apply(u), v)))
    assert float(dot(u, system.apply(u))) > 0
    z = [_random_half(4, 7, 4), _random_half(3, 5, 3)]
    projections = [torch.randn(4, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)]
    joint = JointSystem(z, projections, u, label, reg, 1e-7)
    u2 = v + [torch.randn(4, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)]
    v2 = u + [torch.randn(4, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)]
    assert float(dot(u2, joint.apply(v2))) == pytest.approx(float(dot(joint.apply(u2), v2)))


def test_projection_reduces_d_to_c():
    torch.manual_seed(5)
    features = torch.randn(31, 12, 12, dtype=torch.float64)
    p = pca_projection(features, 10)
    assert p.shape == (31, 10)
    assert torch.allclose(p.T @ p, torch.eye(10, dtype=torch.float64), atol=1e-10)
    assert project(fourier.centred_dft(features), p).shape == (10, 13, 7)
    with pytest.raises(ValueError, match="cannot compress 31 channels to 40"):
        pca_projection(features, 40)


# ---- the generative sample space (section 3.2) -------------------------------------------

def _sample(value: float):
    return [torch.full((1, 3, 2), value, dtype=torch.complex128)]


def test_sample_space_weights_follow_the_learning_rate():
    space = SampleSpace(capacity=5, learning_rate=0.009)
    space.update(_sample(0.0))
    space.update(_sample(10.0))
    _, weights = space.active()
    assert weights.tolist() == pytest.approx([1 - 0.009, 0.009])
    space.update(_sample(20.0))
    _, weights = space.active()
    assert weights.tolist() == pytest.approx([(1 - 0.009) ** 2, 0.009 * (1 - 0.009), 0.009])
    assert float(weights.sum()) == pytest.approx(1.0)


def test_sample_space_merges_the_two_closest_components_when_full():
    space = SampleSpace(capacity=3, learning_rate=0.1)
    for value in (0.0, 10.0, 11.0):
        space.update(_sample(value))
    before = space.active()[1].clone()
    space.update(_sample(30.0))               # far from all: components 10 and 11 merge
    samples, weights = space.active()
    values = sorted(float(s[0, 0, 0].real) for s in samples[0])
    w10, w11 = float(before[1]) * 0.9, float(before[2]) * 0.9
    assert values == pytest.approx([0.0, (w10 * 10 + w11 * 11) / (w10 + w11), 30.0])
    assert float(weights.sum()) == pytest.approx(1.0)
    space.update(_sample(29.0))               # closest to the component at 30: merged into it
    samples, weights = space.active()
    assert len(samples[0]) == 3
    assert sorted(float(s[0, 0, 0].real) for s in samples[0])[-1] == pytest.approx(
        (0.1 * 0.9 * 30 + 0.1 * 29) / (0.1 * 0.9 + 0.1))


def test_sample_space_replaces_the_lowest_prior_component():
    space = SampleSpace(capacity=3, learning_rate=0.4)
    for value in (0.0, 1.0, 2.0):
        space.update(_sample(value))
    space.weights[:3] = torch.tensor([0.6, space.min_weight / 2, 0.4 - space.min_weight / 2],
                                     dtype=torch.float64)
    slot = space.update(_sample(50.0))
    samples, weights = space.active()
    assert slot == 1 and float(samples[0][1, 0, 0, 0].real) == 50.0
    lost = 0.6 * space.min_weight / 2       # the replaced component's weight, gone
    assert float(weights[1]) == pytest.approx(0.4 / (1 - lost))
    assert float(weights.sum()) == pytest.approx(1.0)


# ---- parameters -------------------------------------------------------------------------

def test_parameters_are_the_papers():
    p = EcoParams()
    assert (p.search_area_scale, p.min_image_sample_size, p.max_image_sample_size) == \
        (4.0, 150 ** 2, 200 ** 2)
    assert (p.hog_cell_size, p.hog_compressed_dim, p.cn_cell_size, p.cn_compressed_dim) == \
        (6, 10, 4, 3)
    assert (p.output_sigma_factor, p.learning_rate, p.num_samples) == (1 / 16, 0.009, 30)
    assert (p.train_gap, p.update_interval, p.skip_after_frame) == (5, 6, 10)
    assert (p.cg_iter, p.init_gn_iter, p.init_cg_iter, p.cg_forgetting_rate) == (5, 10, 150, 50)
    assert (p.precond_data_param, p.precond_reg_param, p.projection_reg) == (0.75, 0.25, 1e-7)
    assert (p.reg_window_min, p.reg_window_edge, p.reg_window_power,
            p.reg_sparsity_threshold) == (1e-4, 10e-3, 2, 0.05)
    assert (p.interp_bicubic_a, p.interp_centering, p.interp_windowing) == (-0.75, True, False)
    assert (p.newton_iterations, p.number_of_scales, p.scale_step) == (5, 5, 1.02)
    assert p.use_scale_filter and (p.number_of_scales_filter, p.number_of_interp_scales,
                                   p.scale_step_filter) == (17, 33, 1.02)
    assert (p.scale_sigma_factor, p.scale_learning_rate, p.scale_lambda,
            p.scale_model_max_area) == (1 / 16, 0.025, 1e-2, 512)
    assert p.scale_label_sigma == pytest.approx(17 / 16)
    assert get_tracker_info("eco_hc").paper.startswith("Danelljan et al., CVPR 2017")


# ---- the tracker on synthetic sequences --------------------------------------------------

def _orientations(patches: np.ndarray, cell: int) -> np.ndarray:
    """A small test feature: 6 gradient-orientation channels and grey level per cell."""
    return np.stack([_patch_orientations(patch, cell) for patch in patches])


def _patch_orientations(patch: np.ndarray, cell: int) -> np.ndarray:
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = np.hypot(gx, gy)
    bins = np.minimum((np.arctan2(gy, gx) % np.pi / np.pi * 6).astype(int), 5)
    n = patch.shape[0] // cell
    channels = [np.where(bins == b, magnitude, 0) for b in range(6)] + [grey - 0.5]
    stacked = np.stack(channels)[:, :n * cell, :n * cell]
    return stacked.reshape(7, n, cell, n, cell).mean((2, 4))


TEST_FEATURES = [EcoFeature("orient6", lambda p: _orientations(p, 6), 6, 4),
                 EcoFeature("orient4", lambda p: _orientations(p, 4), 4, 3)]


def _scene(seed: int):
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur((rng.random((96, 96, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    texture = (rng.random((6, 6, 3)) * 255).astype(np.uint8)
    return background, texture


def _frame(background, texture, x: float, y: float, size: int):
    frame = background.copy()
    frame[int(y):int(y) + size, int(x):int(x) + size] = cv2.resize(
        texture, (size, size), interpolation=cv2.INTER_NEAREST)
    return frame, (int(x), int(y), size, size)


def test_tracker_follows_a_moving_textured_patch():
    torch.manual_seed(0)
    background, texture = _scene(0)
    tracker = ECO(features=TEST_FEATURES)
    frame, box = _frame(background, texture, 20, 24, 20)
    tracker.initialize(frame, box)
    overlaps = []
    for t in range(1, 30):
        frame, box = _frame(background, texture, 20 + 1.8 * t, 24 + 1.2 * t, 20)
        result = tracker.track(frame)
        assert np.isfinite(result.score) and result.extras["response"].ndim == 2
        overlaps.append(float(iou(result.box, box)[0]))
    assert np.mean(overlaps) > 0.6
    assert [p.shape for p in tracker.projections] == [(7, 4), (7, 3)]


@pytest.mark.parametrize("use_scale_filter", [True, False])
def test_tracker_scale_follows_a_growing_target(use_scale_filter):
    """The target grows 1.2 % a frame (to 4/3 of its size in 25 frames); the scale filter
    (ECO-HC's settings) and the 5-scale search both follow it."""
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur((rng.random((96, 96, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    texture = cv2.GaussianBlur((rng.random((64, 64, 3)) * 255).astype(np.uint8), (0, 0), 3)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)

    def frame(size: int):
        image, corner = background.copy(), int(42 - size / 2)
        image[corner:corner + size, corner:corner + size] = cv2.resize(
            texture, (size, size), interpolation=cv2.INTER_AREA)
        return image, (corner, corner, size, size)

    tracker = ECO(features=TEST_FEATURES, use_scale_filter=use_scale_filter)
    tracker.initialize(*frame(24))
    for t in range(1, 26):
        size = int(round(24 * 1.012 ** t))
        result = tracker.track(frame(size)[0])
    assert result.box[2] / 24 == pytest.approx(size / 24, abs=0.06)
    assert result.box[3] / 24 == pytest.approx(size / 24, abs=0.06)


def test_tracker_errors_name_what_is_wrong():
    background, texture = _scene(2)
    frame, box = _frame(background, texture, 30, 30, 20)
    with pytest.raises(RuntimeError, match="before initialize"):
        ECO(features=TEST_FEATURES).track(frame)
    with pytest.raises(ValueError, match="interp_windowing"):
        ECO(features=TEST_FEATURES, interp_windowing=True)
    wrong = EcoFeature("wrong", lambda patches: np.zeros((len(patches), 3, 5, 5)), 6, 2)
    with pytest.raises(ValueError, match="feature 'wrong' gave shape"):
        ECO(features=[wrong]).initialize(frame, box)
    with pytest.raises(ValueError, match="width and height must be positive"):
        ECO(features=TEST_FEATURES).initialize(frame, (10, 10, 0, 5))
