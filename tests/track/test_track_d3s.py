"""D3S (Lukežič et al., CVPR 2020): GIM similarity, position channel, refinement shapes, box from
mask, the GEM stand-in, the tracker, the ``d3s`` engine task and the pytracking weight import."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from deepvideo.engine.config import load_config
from deepvideo.engine.loop import train
from deepvideo.engine.task import create_task
from deepvideo.models.convert.files import ConversionError
from deepvideo.track import convert as tc
from deepvideo.track import d3s, d3s_gem, d3s_pairs, mask_fit
from deepvideo.track.datasets import load_dataset
from deepvideo.track.registry import create_tracker, get_tracker_info
from deepvideo.track.synth import mask_box, render_sequence, render_tracking_set
from deepvideo.track.trackers import d3s as trk

CROP = 64


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def tiny_net(seed: int = 0) -> d3s.D3SNet:
    torch.manual_seed(seed)
    return d3s.D3SNet(depth=18, width=0.125, segm_dim=8)


def randomise_bn(model: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_paper_numbers():
    assert (d3s.CROP_SIZE, d3s.SEARCH_AREA_FACTOR, d3s.STRIDE, d3s.TOP_K) == (384, 4.0, 16, 3)
    assert (d3s.SEGM_DIM, d3s.INTER_DIMS, d3s.MIXER_CHANNELS) == (64, (4, 16, 32, 64), 3)
    assert d3s.MASK_THRESHOLD == 0.5
    assert (d3s_pairs.MAX_GAP, d3s_pairs.CENTER_JITTER, d3s_pairs.SCALE_JITTER) == \
        (50, {"train": 0.0, "test": 1.5}, {"train": 0.0, "test": 0.25})
    assert (d3s_gem.OUTPUT_SIGMA_FACTOR, d3s_gem.LEARNING_RATE) == (0.25, 0.0075)
    assert (mask_fit.MIN_REGION_AREA, mask_fit.BACKGROUND_WEIGHT) == (50, 0.25)
    assert (mask_fit.MIN_KEPT, mask_fit.ELLIPSE_LIMIT) == (0.9, 0.6)
    assert (trk.TRACKING_UNCERTAINTY, trk.SEGMENT_UNCERTAINTY, trk.SCALE_UNCERTAINTY) == (3.0, 10.0, 3.5)
    assert (trk.RESPONSE_BUDGET, trk.SCALE_CHANGE, trk.MAX_SCALE_CHANGE) == (25, (0.95, 1.05), 0.75)


def test_gim_top_k_similarity_against_a_loop():
    g = torch.Generator().manual_seed(0)
    test, template = torch.randn(2, 5, 3, 4, generator=g), torch.randn(2, 5, 2, 3, generator=g)
    weights = (torch.rand(2, 1, 2, 3, generator=g) > 0.4).float()
    got = d3s.top_k_similarity(test, template, weights, k=3)
    want = torch.zeros(2, 3, 4)
    for n in range(2):
        for i in range(3):
            for j in range(4):
                sims = []
                for a in range(2):
                    for b in range(3):
                        u, v = test[n, :, i, j], template[n, :, a, b]
                        sims.append(float(weights[n, 0, a, b]) * float(u @ v / (u.norm() * v.norm())))
                want[n, i, j] = float(np.mean(sorted(sims)[-3:]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 7 template vectors"):
        d3s.top_k_similarity(test, template, weights, k=7)


def test_position_channel_is_the_distance_to_the_target_at_each_cell():
    p = d3s.position_map(torch.tensor([[20.0, 10.0]]), (3, 4), stride=16)
    assert p.shape == (1, 1, 3, 4)
    assert float(p[0, 0, 2, 3]) == pytest.approx(math.hypot(48 - 20, 32 - 10))
    assert float(p[0, 0, 0, 1]) == pytest.approx(math.hypot(16 - 20, 0 - 10))


def test_full_network_channels_follow_the_authors_resnet50_layout():
    net = d3s.D3SNet()
    assert net.backbone.channels == (64, 256, 512, 1024)
    assert net.segment0[0].in_channels == 1024 and net.segment0[0].kernel_size == (1, 1)
    assert net.segment1[0].out_channels == 64 and len(net.segment1) == 2   # conv + BN, no ReLU
    assert net.mixer[0].in_channels == 3 and net.mixer[0].out_channels == 64
    assert [net.f2[0].in_channels, net.f1[0].in_channels, net.f0[0].in_channels] == [512, 256, 64]
    assert net.post0[0].out_channels == 2 and len(net.post0) == 2


def test_refinement_output_is_two_channels_at_the_crop_resolution():
    net = tiny_net().eval()
    x = torch.rand(2, 3, CROP, CROP) * 255
    masks = torch.zeros(2, 1, CROP, CROP)
    masks[:, :, 24:40, 24:40] = 1
    with torch.no_grad():
        feats = net.features(x)
        assert [f.shape[-1] for f in feats] == [CROP // 2, CROP // 4, CROP // 8, CROP // 16]
        logits = net(x, x, masks, torch.tensor([[32.0, 32.0], [30.0, 34.0]]))
    assert logits.shape == (2, 2, CROP, CROP) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="multiples of 16"):
        net.features(torch.zeros(1, 3, 40, 48))


def test_loss_is_bce_of_both_channels_and_mask_iou():
    logits = torch.tensor([[[[2.0, -1.0]], [[-2.0, 1.0]]]])            # [1, 2, 1, 2]
    mask = torch.tensor([[[[1.0, 1.0]]]])
    p = torch.sigmoid(logits)
    want = -(torch.log(p[0, 0, 0, 0]) + torch.log(p[0, 0, 0, 1]) + torch.log(1 - p[0, 1, 0, 0])
             + torch.log(1 - p[0, 1, 0, 1])) / 4
    torch.testing.assert_close(d3s.segmentation_loss(logits, mask), want)
    assert float(d3s.mask_iou(logits, mask)[0]) == pytest.approx(0.5)   # one of two pixels predicted


def test_template_background_update_keeps_the_first_frame_and_the_last_grids():
    t = d3s.Template(torch.randn(1, 4, 2, 2), torch.ones(1, 1, 2, 2))
    for k in range(3):
        t.add_background(torch.full((1, 4, 2, 2), float(k)), torch.ones(1, 1, 2, 2), keep=2)
    assert t.features.shape == (1, 4, 12)
    assert t.foreground[0, :4].tolist() == [1, 1, 1, 1] and t.foreground[0, 4:].sum() == 0
    assert t.features[0, 0, 4:].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]


def drawn(shape, center, size, angle) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(cv2.boxPoints((center, size, angle))).astype(np.int32), 1)
    return mask


def corner_error(corners: np.ndarray, truth: np.ndarray) -> float:
    """The largest distance from a true corner to the nearest fitted one."""
    return float(np.linalg.norm(truth[:, None] - corners[None], axis=2).min(axis=1).max())


def test_boxes_from_a_rotated_rectangle_mask():
    mask = drawn((200, 200), (100, 90), (80, 30), 30)
    contour = mask_fit.largest_region(mask)
    corners = mask_fit.min_area_box(contour)
    truth = cv2.boxPoints(((100, 90), (80, 30), 30))
    assert corner_error(corners, truth) < 1.5
    assert corner_error(mask_fit.rotated_box(mask), truth) < 2.5
    sides = sorted([np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[1] - corners[2])])
    assert sides == pytest.approx([30, 80], abs=2)
    x, y, w, h = mask_fit.area_preserving_box(corners)
    assert w * h == pytest.approx((sides[0] + 1) * (sides[1] + 1) * 1, rel=0.1)
    assert (x + w / 2, y + h / 2) == pytest.approx((100, 90), abs=1)


def test_boxes_from_an_axis_aligned_mask_and_empty_masks():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:50, 30:70] = 1
    mask[80:85, 5:10] = 1                                  # a smaller second region is ignored
    contour = mask_fit.largest_region(mask)
    assert mask_fit.axis_aligned_box(contour) == (30.0, 20.0, 40.0, 30.0)
    corners = mask_fit.rotated_box(mask)
    assert corners.min(axis=0) == pytest.approx([30, 20]) and corners.max(axis=0) == pytest.approx([69, 49])
    assert mask_fit.largest_region(np.zeros((50, 50))) is None
    small = np.zeros((50, 50))
    small[10:16, 10:16] = 1                                # contour area 25 <= 50 pixels
    assert mask_fit.largest_region(small) is None and mask_fit.rotated_box(small) is None


def test_shrink_box_trims_a_thin_protrusion():
    mask = np.zeros((60, 60), np.uint8)
    mask[10:40, 10:40] = 1
    mask[24:26, 40:58] = 1                                  # a 2-pixel spike to the right
    x0, y0, x1, y1 = mask_fit.shrink_box(mask)
    assert (x0, y0, y1) == (10, 10, 39) and 39 <= x1 < 57


def test_gem_peak_follows_a_shifted_target():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(16, 12, 12, generator=g) * 0.1
    first = base.clone()
    first[:, 5:7, 5:7] += torch.randn(16, 1, 1, generator=g) * 3
    gem = d3s_gem.DeepDCF()
    assert isinstance(gem, d3s_gem.GeometricModel)
    gem.initialize(first, (5.0, 5.0, 2.0, 2.0))
    x, y, _ = d3s_gem.response_peak(gem.score(first))
    assert (x, y) == pytest.approx((6.0, 6.0), abs=0.5)
    moved = base.clone()
    moved[:, 7:9, 4:6] += first[:, 5:6, 5:6] - base[:, 5:6, 5:6]
    x, y, _ = d3s_gem.response_peak(gem.score(moved))
    assert (x, y) == pytest.approx((5.0, 8.0), abs=0.6)
    gem.update(moved, (4.0, 7.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="made for"):
        gem.score(torch.zeros(16, 10, 10))


def test_centred_label_peaks_at_the_centre_and_wraps():
    label = d3s_gem.centred_label((8, 8), (2.5, 6.5), sigma=1.0)
    assert np.unravel_index(np.argmax(label), label.shape) == (6, 2) and label.max() == pytest.approx(1)
    assert label[6, 7] == pytest.approx(label[6, 5])   # wrapped neighbour at distance 3


def test_paste_mask_inverts_the_crop():
    frame_mask = np.zeros((120, 160), np.float32)
    frame_mask[40:80, 60:100] = 1
    crop = d3s_pairs.crop_pair(np.zeros((120, 160, 3), np.uint8), frame_mask, (80, 60), 100.0, 64)[1]
    back = trk.paste_mask(crop, (80, 60), 100.0, (120, 160)) > 0.5
    inter = (back & (frame_mask > 0)).sum()
    assert inter / (back | (frame_mask > 0)).sum() > 0.9


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "set"
    render_tracking_set(root, num_sequences=3, frames=12, progress=False)
    return root


def test_pairs_crop_around_the_target_with_its_mask(synth_root):
    sequences = load_dataset(synth_root)
    pairs = d3s_pairs.SegmentationPairs(sequences, crop=CROP, pairs_per_epoch=4, center_jitter=0.0,
                                        scale_jitter=0.0)
    item = pairs[(1, 0)]
    assert item["train_image"].shape == (3, CROP, CROP) and item["test_mask"].shape == (1, CROP, CROP)
    assert set(item["train_mask"].unique().tolist()) <= {0.0, 1.0} and item["train_mask"].sum() > 0
    # no jitter: the target centre is within 1/8 of the box of the crop centre (the P jitter)
    box_side = CROP / d3s.SEARCH_AREA_FACTOR
    assert (item["test_center"] - CROP / 2).abs().max() <= 0.125 * box_side * 1.5
    torch.testing.assert_close(pairs[(1, 0)]["test_center"], item["test_center"])
    assert d3s_pairs.crop_side(30, 30) == 120 and d3s_pairs.crop_side(10.1, 10) == 41
    sequences[0].mask_paths = []
    with pytest.raises(ValueError, match="has no masks"):
        d3s_pairs.SegmentationPairs(sequences)


def moving_ellipse(frames: int = 6) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Frames ``[T, 96, 128, 3]`` of a red ellipse moving 3 pixels a frame on noise, its masks
    ``[T, 96, 128]`` and its first box."""
    rng = np.random.default_rng(0)
    images = rng.integers(60, 160, size=(frames, 96, 128, 3)).astype(np.uint8)
    masks = np.zeros((frames, 96, 128), np.uint8)
    for k in range(frames):
        cv2.ellipse(masks[k], (40 + 3 * k, 48), (14, 9), 20, 0, 360, 1, -1)
        images[k][masks[k] > 0] = (220, 40, 40)
    return images, masks.astype(bool), tuple(float(v) for v in mask_box(masks[0]))


def test_tracker_returns_finite_boxes_and_a_full_frame_mask():
    frames, masks, box = moving_ellipse()
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP, update_background=True)
    tracker.initialize(frames[0], box, mask=masks[0])
    state = {}

    def true_probability(feats, centre_px):   # the segmentation a perfect network would give
        k, center = state["frame"], state["crop_center"]
        return d3s_pairs.crop_pair(frames[k], masks[k], center, d3s_pairs.crop_side(*tracker.size), CROP)[1]

    tracker._probability = true_probability   # noqa: SLF001  (the geometry, not the network)
    for k in range(1, len(frames)):
        state.update(frame=k, crop_center=tracker.center)     # the crop is centred on the last position
        result = tracker.track(frames[k])
        mask = result.extras["mask"]
        assert mask.dtype == bool and mask.shape == masks[k].shape
        assert (mask & masks[k]).sum() / (mask | masks[k]).sum() > 0.8
        assert result.box == pytest.approx(tuple(mask_box(masks[k])), abs=2.5)
        assert result.extras["polygon"].shape == (4, 2)
        truth = mask_box(masks[k])
        assert tracker.center == pytest.approx(tuple(truth[:2] + truth[2:] / 2), abs=2)
    assert tracker.template.features.shape[-1] > tracker.template.base     # background vectors added


def test_scale_stays_between_ten_pixels_and_the_frame():
    frames, masks, box = moving_ellipse(2)
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP)
    tracker.initialize(frames[0], box, mask=masks[0])
    for _ in range(100):
        tracker._rescale(1.05, frames[0])   # noqa: SLF001
    bound = min(128 / box[2], 96 / box[3])
    assert tracker.size == pytest.approx((box[2] * bound, box[3] * bound))
    for _ in range(200):
        tracker._rescale(0.95, frames[0])   # noqa: SLF001
    assert min(tracker.size) == pytest.approx(10.0)


class FixedPeakGEM:
    """A GEM stand-in whose response always peaks at one grid cell (the plug-in seam)."""

    def __init__(self, cell=(1, 2)):
        self.cell, self.calls = cell, []

    def initialize(self, features, box):
        self.calls.append(("initialize", tuple(box)))

    def score(self, features):
        response = np.zeros(features.shape[-2:], np.float32)
        response[self.cell[1], self.cell[0]] = 1.0
        return response

    def update(self, features, box):
        self.calls.append(("update", tuple(box)))


def test_any_geometric_model_plugs_in_and_moves_the_target():
    frames, masks, box = moving_ellipse(2)
    gem = FixedPeakGEM()
    assert isinstance(gem, d3s_gem.GeometricModel)
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP, gem=lambda: gem)
    tracker.initialize(frames[0], box, mask=masks[0])
    (cx, cy), side = tracker.center, d3s_pairs.crop_side(*tracker.size)
    assert gem.calls[0][1] == pytest.approx((2 - box[2] / side * 2, 2 - box[3] / side * 2,
                                             box[2] / side * 4, box[3] / side * 4))
    with torch.no_grad():
        tracker.model.post0[1].bias.copy_(torch.tensor([-50.0, 50.0]))      # no mask: the GEM decides
    tracker.track(frames[1])
    # the peak at cell (1, 2) = grid point (1.5, 2.5) of a 4x4 grid whose centre is (2, 2)
    assert tracker.center == pytest.approx((cx - 0.5 * side / 4, cy + 0.5 * side / 4))
    assert gem.calls[-1][0] == "update"


def test_tracker_runs_its_network_end_to_end():
    seq = render_sequence(0, 1, frames=4)
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP)
    tracker.initialize(seq.frames[0], tuple(seq.boxes[0]))
    for k in range(1, 4):
        result = tracker.track(seq.frames[k])
        assert all(math.isfinite(v) for v in result.box) and math.isfinite(result.score)
        assert result.extras["response"].shape == (CROP // 16, CROP // 16)


def test_tracker_falls_back_to_the_gem_box_without_a_mask():
    seq = render_sequence(0, 2, frames=3)
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP)
    tracker.initialize(seq.frames[0], tuple(seq.boxes[0]))
    with torch.no_grad():
        tracker.model.post0[1].bias.copy_(torch.tensor([-50.0, 50.0]))      # never foreground
    result = tracker.track(seq.frames[1])
    assert "mask" not in result.extras
    assert result.box[2:] == pytest.approx(tuple(seq.boxes[0][2:]))


def test_optimize_folds_batch_norm_with_equal_outputs():
    net = tiny_net().eval()
    randomise_bn(net)
    folded = trk.D3STracker(model=net, crop=CROP, optimize=True).model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())   # the given one is untouched
    x, masks = torch.rand(1, 3, CROP, CROP) * 255, torch.ones(1, 1, CROP, CROP)
    c = torch.tensor([[30.0, 34.0]])
    with torch.no_grad():
        torch.testing.assert_close(folded(x, x, masks, c), net(x, x, masks, c), atol=1e-4, rtol=1e-4)


def test_registered_and_needs_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(trk.WEIGHTS_ENV, raising=False)
    assert not get_tracker_info("d3s").is_available()
    with pytest.raises(ValueError, match="give weights="):
        trk.D3STracker()
    path = tmp_path / "d3s.safetensors"
    net = tiny_net()
    save_file(net.state_dict(), str(path))
    monkeypatch.setenv(trk.WEIGHTS_ENV, str(path))
    assert get_tracker_info("d3s").is_available()
    loaded = create_tracker("d3s", crop=CROP).model
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with pytest.raises(ValueError, match="not D3S weights"):
        d3s.d3s_from_state_dict({"x": torch.zeros(1)}, "w.safetensors")


def test_pytracking_round_trip_and_unused_layers_dropped():
    net = tiny_net().eval()
    randomise_bn(net)
    layout = tc.find_layout("d3s", source="pytracking")
    foreign = layout.from_deepvideo(net.state_dict())
    assert "segm_predictor.segment0.0.weight" in foreign
    assert "feature_extractor.layer3.0.conv1.weight" in foreign
    assert "feature_extractor.bn1.running_var" in foreign and "segm_predictor.post0.1.bias" in foreign
    foreign["feature_extractor.layer4.0.conv1.weight"] = torch.zeros(1)
    foreign["feature_extractor.fc.weight"] = torch.zeros(1)
    converted, found = tc.convert_tracker_state(foreign, "d3s")
    assert found.source == "pytracking"
    x, masks = torch.rand(1, 3, CROP, CROP) * 255, torch.ones(1, 1, CROP, CROP)
    c = torch.tensor([[32.0, 30.0]])
    with torch.no_grad():
        torch.testing.assert_close(converted(x, x, masks, c), net(x, x, masks, c))
    del foreign["segm_predictor.mixer.0.weight"]
    with pytest.raises((ConversionError, KeyError)):
        tc.convert_tracker_state(foreign, "d3s")


def overrides(out, root, *extra: str) -> list[str]:
    pairs = f"{{crop: {CROP}, pairs_per_epoch: 16, seed: 0}}"
    return ["task=d3s", "model.name=d3s", "model.kwargs={depth: 18, width: 0.125, segm_dim: 8}",
            f"output_dir={out}", f"data.train.root={root}", f"data.train.pairs={pairs}",
            f"data.val.root={root}", f"data.val.pairs={pairs}", "data.num_workers=0", "train.amp=none",
            "train.batch_size=8", "train.lr=0.003", "train.optimizer=adamw", "train.weight_decay=0",
            "train.schedule=constant", "train.monitor=val_mask_iou", "deterministic=true", "seed=0", *extra]


def test_engine_training_reduces_the_loss(synth_root, tmp_path):
    cfg = load_config(overrides=overrides(tmp_path / "run", synth_root, "train.epochs=3"))
    result = train(cfg, progress=False)
    first, last = result.history[0], result.history[-1]
    assert set(last) >= {"train_loss", "train_mask_iou", "val_loss", "val_mask_iou"}
    assert last["train_loss"] < first["train_loss"] and last["val_loss"] < first["val_loss"]
    tracker = trk.D3STracker(weights=result.last_checkpoint)    # the crop size comes with the weights
    assert isinstance(tracker.model, d3s.D3SNet) and tracker.crop == CROP


def test_recipe_loads_and_builds_the_cpu_model():
    cfg = load_config("configs/track/d3s.yaml")
    assert cfg.task == "d3s" and cfg.train.monitor == "val_mask_iou"
    model = create_task(cfg).build_model()
    assert isinstance(model, d3s.D3SNet) and model.backbone.channels == (32, 32, 64, 128)



def test_atom_gem_follows_a_feature_pattern_and_drives_the_tracker():
    """gem="atom": ATOM's classifier as the GEM (the paper's choice). On features with a
    distinctive pattern at the target, its peak sits on the target and follows the pattern when
    it moves; the tracker runs with it end to end; an unknown GEM name is an error."""
    g = torch.Generator().manual_seed(0)
    base = 0.3 * torch.randn(16, 12, 12, generator=g)
    pattern = torch.randn(16, 3, 3, generator=g)

    def features(x0, y0):
        f = base.clone()
        f[:, y0:y0 + 3, x0:x0 + 3] += 3 * pattern
        return f

    gem = d3s_gem.ATOMGem(dim=8)
    gem.initialize(features(4, 4), (4.0, 4.0, 3.0, 3.0))
    x, y, _ = d3s_gem.response_peak(gem.score(features(4, 4)))
    assert (x, y) == pytest.approx((5.5, 5.5), abs=0.75)
    x, y, _ = d3s_gem.response_peak(gem.score(features(7, 5)))
    assert (x, y) == pytest.approx((8.5, 6.5), abs=0.75)
    gem.update(features(7, 5), (7.0, 5.0, 3.0, 3.0))
    seq = render_sequence(0, 1, frames=3)
    tracker = trk.D3STracker(model=tiny_net(), crop=CROP, gem="atom")
    tracker.initialize(seq.frames[0], tuple(seq.boxes[0]))
    for k in (1, 2):
        result = tracker.track(seq.frames[k])
        assert all(math.isfinite(v) for v in result.box) and math.isfinite(result.score)
    with pytest.raises(ValueError, match="gem must be one of dcf, atom"):
        trk.D3STracker(model=tiny_net(), crop=CROP, gem="mosse")
