"""Correlation-filter maths, the classical trackers and the OpenCV wrappers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepvideo.track import create_tracker, get_tracker_info
from deepvideo.track.boxes import iou
from deepvideo.track.dcf import (
    ClosedFormFilter,
    extract_patch,
    fft2,
    gaussian_label,
    ifft2,
    peak_displacement,
    peak_to_sidelobe_ratio,
)
from deepvideo.track.scale_filter import ScaleFilter
from deepvideo.track.trackers.csrdcf import (
    ADMM_BETA,
    ADMM_ITERATIONS,
    ADMM_MU,
    ADMM_MU_MAX,
    constrained_filter,
    detection_reliability,
)
from deepvideo.track.trackers.dsst import DSST
from deepvideo.track.trackers.kcf import kernel_correlation
from deepvideo.track.trackers.mosse import PSR_OCCLUSION
from deepvideo.track.trackers.opencv import OpenCVTracker
from deepvideo.track.trackers.particle import N_BINS, colour_bins


def texture(rng, height, width, tint) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    return (40 + 200 * noise[:, :, None] * np.asarray(tint, np.float32)).astype(np.uint8)


def synthetic_sequence(n=30, size=96, target=24, step=(2.0, 1.5), grow=0.0, seed=0):
    """A reddish textured square moving ``step`` pixels per frame (growing by ``grow`` per
    frame) over a greenish textured background: frames and the true boxes."""
    rng = np.random.default_rng(seed)
    background = texture(rng, size, size, (0.4, 0.8, 0.7))
    pattern = texture(rng, 64, 64, (1.0, 0.5, 0.2))
    frames, boxes = [], []
    x, y, side = 10.0, 20.0, float(target)
    for _ in range(n):
        frame = background.copy()
        s, xi, yi = round(side), round(x), round(y)
        frame[yi:yi + s, xi:xi + s] = cv2.resize(pattern, (s, s), interpolation=cv2.INTER_AREA)
        frames.append(frame)
        boxes.append((xi, yi, s, s))
        x, y, side = x + step[0], y + step[1], side * (1 + grow)
    return frames, np.array(boxes, float)


def run(tracker, frames, first_box):
    tracker.initialize(frames[0], first_box)
    results = [tracker.track(frame) for frame in frames[1:]]
    return np.array([first_box] + [r.box for r in results]), results


# -- correlation-filter maths ----------------------------------------------------------------

def test_gaussian_label_peaks_at_the_origin_and_wraps():
    label = gaussian_label((8, 10), sigma=1.5)
    assert label[0, 0] == 1.0 and label.argmax() == 0
    assert label[0, 1] == pytest.approx(np.exp(-0.5 / 1.5 ** 2))
    assert label[0, 1] == pytest.approx(label[0, -1]) and label[1, 0] == pytest.approx(label[-1, 0])


def test_peak_displacement_is_wrapped_and_sub_pixel():
    rows, cols = 20, 24
    y, x = np.mgrid[:rows, :cols]
    response = np.exp(-0.5 * ((y - 16.3) ** 2 + (x - 3.0) ** 2) / 2.0)
    dy, dx, peak = peak_displacement(response)
    assert dy == pytest.approx(16.3 - rows, abs=0.1) and dx == pytest.approx(3.0, abs=1e-6)
    assert peak == pytest.approx(response.max())


def test_psr_is_peak_minus_sidelobe_mean_over_its_std():
    response = np.zeros((20, 20))
    response[::2, ::2] = 1.0                       # sidelobe pattern: mean 0.25
    response[10, 10] = 5.0
    window = np.ones((20, 20), bool)
    window[5:16, 5:16] = False                     # the 11x11 window around the peak
    sidelobe = response[window]
    expected = (5.0 - sidelobe.mean()) / sidelobe.std()
    assert peak_to_sidelobe_ratio(response) == pytest.approx(expected, rel=1e-6)


def test_extract_patch_replicates_the_border_and_resamples():
    frame = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    same = extract_patch(frame, (4.0, 3.0), (8, 6), (8, 6))
    np.testing.assert_array_equal(same, frame)
    corner = extract_patch(frame, (0.0, 0.0), (4, 4), (4, 4))   # window from (-2, -2)
    np.testing.assert_array_equal(corner[:3, :3], np.broadcast_to(frame[0, 0], (3, 3, 3)))
    np.testing.assert_array_equal(corner[2:, 2:], frame[:2, :2])
    outside = extract_patch(frame, (50.0, 3.0), (2, 2), (2, 2))  # far right: last column
    np.testing.assert_array_equal(outside[:, 0], frame[2:4, -1])
    assert extract_patch(frame, (4.0, 3.0), (8, 6), (4, 3)).shape == (3, 4, 3)


@pytest.mark.parametrize("center, size, out", [((10.5, 20.25), (4, 6), (4, 6)),
                                               ((30.3, 25.0), (12, 10), (24, 20)),
                                               ((40.7, 30.2), (40, 30), (10, 6))])
def test_extract_patch_samples_exactly_at_sub_pixel_positions(center, size, out):
    # on a linear ramp, bilinear and area resampling reproduce the ramp at the output pixel
    # centres: x = left + (u + 0.5) * w / out_w - 0.5 (pixel-index coordinates), up to
    # OpenCV's 1/32-pixel interpolation grid
    ys, xs = np.mgrid[:60, :80].astype(np.float32)
    ramp = np.ascontiguousarray(2 * xs + 3 * ys)
    patch = extract_patch(ramp, center, size, out)
    u = center[0] - size[0] / 2 + (np.arange(out[0]) + 0.5) * size[0] / out[0] - 0.5
    v = center[1] - size[1] / 2 + (np.arange(out[1]) + 0.5) * size[1] / out[1] - 0.5
    step = 2 * size[0] / out[0] + 3 * size[1] / out[1]       # ramp change per output pixel
    np.testing.assert_allclose(patch, 2 * u[None, :] + 3 * v[:, None], atol=step / 32)


def test_closed_form_filter_reproduces_its_label_on_its_training_sample():
    rng = np.random.default_rng(0)
    label = gaussian_label((16, 16), 2.0)
    sample = fft2(rng.standard_normal((16, 16, 3)).astype(np.float32))
    flt = ClosedFormFilter(label, lam=1e-6, rate=0.1)
    flt.fit([sample])
    np.testing.assert_allclose(flt.respond(sample), label, atol=1e-3)
    shifted = fft2(np.roll(ifft2(sample, (16, 16)), (3, -2), axis=(0, 1)))
    dy, dx, _ = peak_displacement(flt.respond(shifted))
    assert (round(dy), round(dx)) == (3, -2)


def test_kernel_correlations_against_direct_formulas():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8, 2))
    z = rng.standard_normal((6, 8, 2))
    shape, count = (6, 8), x.size
    linear = ifft2(kernel_correlation(fft2(x), fft2(z), shape, "linear", 0.5), shape)
    direct = np.zeros(shape)
    for dy in range(6):
        for dx in range(8):
            direct[dy, dx] = (x * np.roll(z, (-dy, -dx), axis=(0, 1))).sum() / count
    np.testing.assert_allclose(linear, direct, atol=1e-10)
    gauss = ifft2(kernel_correlation(fft2(x), fft2(z), shape, "gaussian", 0.5), shape)
    distance = ((x - np.roll(z, (-1, -2), axis=(0, 1))) ** 2).sum()
    assert gauss[1, 2] == pytest.approx(np.exp(-distance / (0.25 * count)), rel=1e-6)
    self_k = ifft2(kernel_correlation(fft2(x), fft2(x), shape, "gaussian", 0.5), shape)
    assert self_k[0, 0] == pytest.approx(1.0)


def test_constrained_filter_is_zero_outside_the_mask():
    rng = np.random.default_rng(2)
    features = fft2(rng.standard_normal((16, 16, 4)))
    mask = np.zeros((16, 16))
    mask[5:11, 4:12] = 1
    h = ifft2(constrained_filter(features, fft2(gaussian_label((16, 16), 1.0)), mask, 0.05),
              (16, 16))
    assert np.abs(h[mask == 0]).max() < 1e-9 and np.abs(h[mask == 1]).max() > 1e-3


def test_detection_reliability_from_the_two_highest_local_maxima():
    responses = np.zeros((12, 12, 3))
    responses[3, 3, 0] = 1.0                         # one clear peak -> 1
    responses[3, 3, 1], responses[8, 8, 1] = 1.0, 0.8   # second peak 0.8 -> 0.5 (at least)
    responses[3, 3, 2], responses[8, 8, 2] = 1.0, 0.3   # -> 0.7
    np.testing.assert_allclose(detection_reliability(responses), [1.0, 0.5, 0.7])


# -- paper parameters ------------------------------------------------------------------------

def test_trackers_default_to_the_papers_parameters():
    mosse = create_tracker("mosse")
    assert (mosse.learning_rate, mosse.sigma, mosse.n_perturbations, mosse.psr_threshold) == \
        (0.125, 2.0, 8, 7.0) and PSR_OCCLUSION == 7.0
    kcf = create_tracker("kcf")
    assert (kcf.kernel, kcf.padding, kcf.lam, kcf.interp_factor, kcf.kernel_sigma,
            kcf.cell_size, kcf.output_sigma_factor) == ("gaussian", 1.5, 1e-4, 0.02, 0.5, 4, 0.1)
    assert create_tracker("dcf").kernel == "linear"
    dsst = create_tracker("dsst")
    assert isinstance(dsst, DSST)
    assert (dsst.padding, dsst.output_sigma_factor, dsst.learning_rate, dsst.lam) == \
        (1.0, 1 / 16, 0.025, 1e-2)
    scale = ScaleFilter()
    assert (scale.n_scales, scale.scale_step, scale.learning_rate, scale.lam) == \
        (33, 1.02, 0.025, 1e-2)
    assert scale.factors[0] == pytest.approx(1.02 ** 16) and scale.factors[16] == 1.0
    label = np.real(np.fft.ifft(scale.label_f))
    sigma = np.sqrt(33) / 4                               # scale sigma factor 1/4
    assert label[16] == pytest.approx(1.0) and label[17] == pytest.approx(np.exp(-0.5 / sigma ** 2))
    csr = create_tracker("csrdcf")
    assert (csr.padding, csr.learning_rate, csr.hist_rate, csr.nbins, csr.lam) == \
        (3.0, 0.02, 0.04, 16, 0.05)
    assert (ADMM_MU, ADMM_BETA, ADMM_MU_MAX, ADMM_ITERATIONS) == (5.0, 3.0, 20.0, 4)
    particle = create_tracker("particle")
    assert (particle.lam, N_BINS) == (20.0, 110)


def test_colour_bins_follow_perez_hs_and_v_split():
    pixels = np.array([[[255, 0, 0], [128, 128, 128], [10, 10, 10], [0, 0, 255]]], np.uint8)
    bins = colour_bins(pixels)[0]
    assert bins[0] == 0 * 10 + 9                  # hue 0, saturation 1 -> bin (0, 9)
    assert bins[1] == 100 + 5 and bins[2] == 100  # achromatic: value bins
    assert bins[3] == 6 * 10 + 9                  # blue: hue 240 deg = 170/255 -> 6


# -- behaviour on a synthetic sequence ------------------------------------------------------

@pytest.mark.parametrize("name", ["mosse", "kcf", "dcf", "dsst", "csrdcf", "particle",
                                  "opencv_csrt", "opencv_kcf"])
def test_tracker_follows_a_moving_textured_target(name):
    frames, boxes = synthetic_sequence()
    predicted, results = run(create_tracker(name), frames, tuple(boxes[0]))
    assert iou(predicted, boxes).mean() > 0.5
    assert all(np.isfinite(r.box).all() for r in results)


@pytest.mark.parametrize("name", ["csrdcf", "kcf"])
def test_tracker_repeats_exactly(name):
    frames, boxes = synthetic_sequence(n=8)
    first, _ = run(create_tracker(name), frames, tuple(boxes[0]))
    again, _ = run(create_tracker(name), frames, tuple(boxes[0]))
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("grow, side", [(0.01, 20), (-0.01, 30)])
def test_dsst_scale_follows_a_growing_or_shrinking_target(grow, side):
    frames, boxes = synthetic_sequence(grow=grow, target=side, step=(1.0, 1.0))
    predicted, results = run(create_tracker("dsst"), frames, tuple(boxes[0]))
    truth = boxes[:, 2] / boxes[0, 2]
    assert abs(truth[-1] - 1) > 0.25
    estimated = np.array([1.0] + [r.extras["scale"] for r in results])
    np.testing.assert_allclose(estimated, truth, rtol=0.05)
    assert estimated[-1] == pytest.approx(truth[-1], rel=0.03)
    assert iou(predicted, boxes).mean() > 0.9


def test_mosse_preprocessing_is_log_zero_mean_unit_norm_windowed():
    frames, boxes = synthetic_sequence(n=1)
    tracker = create_tracker("mosse")
    tracker.initialize(frames[0], tuple(boxes[0]))
    patch = frames[0][:tracker.template_size[1], :tracker.template_size[0]]
    expected = np.log1p(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float64))
    expected = (expected - expected.mean()) / np.linalg.norm(expected - expected.mean())
    np.testing.assert_allclose(tracker.preprocess(patch)[:, :, 0], expected * tracker.window,
                               atol=1e-5)


def test_mosse_psr_is_high_on_the_target_and_below_7_on_noise():
    frames, boxes = synthetic_sequence(n=6)
    tracker = create_tracker("mosse")
    _, results = run(tracker, frames, tuple(boxes[0]))
    assert min(r.score for r in results) > 10
    before = tracker.filter.numerator.copy()
    noise = np.random.default_rng(5).integers(0, 256, frames[0].shape, dtype=np.uint8)
    lost = tracker.track(noise)
    assert lost.score < 7 and lost.extras["occluded"]
    np.testing.assert_array_equal(tracker.filter.numerator, before)   # no update when lost


def test_particle_filter_is_reproducible_with_a_seed():
    frames, boxes = synthetic_sequence(n=8)
    first, _ = run(create_tracker("particle", seed=3), frames, tuple(boxes[0]))
    again, _ = run(create_tracker("particle", seed=3), frames, tuple(boxes[0]))
    other, _ = run(create_tracker("particle", seed=4), frames, tuple(boxes[0]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bad_initial_box_is_rejected():
    frames, _ = synthetic_sequence(n=1)
    with pytest.raises(ValueError, match="initial box"):
        create_tracker("kcf").initialize(frames[0], (0, 0, 0, 10))


# -- OpenCV wrappers -------------------------------------------------------------------------

DIRECT = {"csrt": cv2.TrackerCSRT_create, "kcf": cv2.TrackerKCF_create,
          "mosse": cv2.legacy.TrackerMOSSE_create}


@pytest.mark.parametrize("kind", sorted(DIRECT))
def test_opencv_wrapper_gives_the_boxes_of_opencv_itself(kind):
    frames, boxes = synthetic_sequence(n=10)
    predicted, results = run(create_tracker(f"opencv_{kind}"), frames, tuple(boxes[0]))
    direct = DIRECT[kind]()
    direct.init(cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR), tuple(int(v) for v in boxes[0]))
    expected = [tuple(boxes[0])]
    for frame, result in zip(frames[1:], results, strict=True):
        ok, rect = direct.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        expected.append(tuple(rect) if ok else expected[-1])
        assert result.extras["success"] == ok
        if not ok:
            assert result.score == 0.0
    np.testing.assert_allclose(predicted, np.array(expected, float))


def test_opencv_learned_trackers_need_their_models(monkeypatch, tmp_path):
    for env in ("DEEPVIDEO_NANO_BACKBONE", "DEEPVIDEO_NANO_NECKHEAD", "DEEPVIDEO_VIT_MODEL"):
        monkeypatch.delenv(env, raising=False)
    assert not get_tracker_info("opencv_vit").is_available()
    with pytest.raises(RuntimeError, match="'opencv_nano' is not available"):
        create_tracker("opencv_nano")
    with pytest.raises(FileNotFoundError, match="pass net=PATH or set DEEPVIDEO_VIT_MODEL"):
        OpenCVTracker("vit")
    missing = tmp_path / "vit.onnx"
    with pytest.raises(FileNotFoundError, match="vit.onnx: opencv_vit net model not found"):
        OpenCVTracker("vit", net=str(missing))
    with pytest.raises(ValueError, match="takes no model files"):
        OpenCVTracker("kcf", net=str(missing))
    missing.write_bytes(b"")
    monkeypatch.setenv("DEEPVIDEO_VIT_MODEL", str(missing))
    assert get_tracker_info("opencv_vit").is_available()
