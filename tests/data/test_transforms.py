"""Clip transforms: shapes, shared geometry across frames and modalities (checked with samples whose
pixels encode their own coordinates), flips, the papers' crop parameters, test views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvideo.data.transforms import (
    ColorJitter,
    JitterCrop,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    ThreeCrop,
    build_transforms,
    resize,
)
from deepvideo.spec import InputSpec

SETTINGS = settings(max_examples=50, deadline=None)
IDENTITY = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # rgb out = x / 255


def coord_sample(t: int, h: int, w: int, dtype=torch.uint8) -> dict:
    """rgb channel 0 = x, channel 1 = y; flow u = x, v = y (pixels): one region, two modalities.

    ``dtype=torch.float32`` gives float rgb (0..255), which the transforms keep in float, so
    resized rgb and flow can be compared exactly (uint8 resizing rounds).
    """
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    rgb = torch.stack([x, y, torch.zeros_like(x)], -1).to(dtype).expand(t, h, w, 3).clone()
    flow = torch.stack([x, y]).expand(t, 2, h, w).clone()
    return {"rgb": rgb, "flow": flow, "label": 7}


def check_aligned(out: dict, flipped_u: bool = False) -> None:
    """rgb and flow of the output show the same pixels (u negated when mirrored)."""
    rgb, flow = out["rgb"] * 255, out["flow"]
    sign = -1 if flipped_u else 1
    torch.testing.assert_close(rgb[..., 0, :, :, :], sign * flow[..., 0, :, :, :], atol=1e-3, rtol=0)
    torch.testing.assert_close(rgb[..., 1, :, :, :], flow[..., 1, :, :, :], atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------- properties
@SETTINGS
@given(
    t=st.integers(1, 3),
    h=st.integers(12, 64),
    w=st.integers(12, 64),
    crop=st.integers(4, 24),
    recipe=st.sampled_from(["standard", "two_stream", "fusion"]),
    seed=st.integers(0, 2**31),
)
def test_train_shapes_same_geometry_and_determinism(t, h, w, crop, recipe, seed):
    spec = InputSpec(modalities=("rgb", "flow"), flow_stack=t, crop_size=crop, **IDENTITY)
    tf = build_transforms(spec, train=True, recipe=recipe, scale_flow=False, flow_scale=1.0)
    sample = coord_sample(t, h, w, torch.float32)
    out = tf(sample, np.random.default_rng(seed))
    assert out["rgb"].shape == (3, t, crop, crop) and out["flow"].shape == (2, t, crop, crop)
    assert out["rgb"].dtype == torch.float32 and out["label"] == 7
    # every frame got the same crop (all input frames are equal)
    assert (out["rgb"] == out["rgb"][:, :1]).all() and (out["flow"] == out["flow"][:, :1]).all()
    # mirrored iff x decreases along the width (coordinates encoded in the pixels)
    flipped = bool(out["rgb"][0, 0, 0, -1] < out["rgb"][0, 0, 0, 0]) if crop > 1 else False
    check_aligned(out, flipped_u=flipped)
    again = tf(sample, np.random.default_rng(seed))
    assert all(torch.equal(out[k], again[k]) for k in ("rgb", "flow"))
    # the uint8 fast path gives the same picture up to rounding
    as_uint8 = tf(coord_sample(t, h, w), np.random.default_rng(seed))
    assert (as_uint8["rgb"] - out["rgb"]).abs().max() * 255 <= 1.0 + 1e-3


@SETTINGS
@given(
    t=st.integers(1, 3),
    h=st.integers(8, 48),
    w=st.integers(8, 48),
    crop=st.integers(4, 24),
    crops=st.sampled_from([1, 3, 10]),
    flip=st.booleans(),
)
def test_test_views_shapes_alignment_and_rng_independence(t, h, w, crop, crops, flip):
    spec = InputSpec(modalities=("rgb", "flow"), flow_stack=t, crop_size=crop, **IDENTITY)
    tf = build_transforms(spec, train=False, test_crops=crops, flip=flip, flow_scale=1.0, scale_flow=False)
    views = crops * (2 if flip and crops != 10 else 1)
    assert tf.num_views == views
    sample = coord_sample(t, h, w, torch.float32)
    out = tf(sample, np.random.default_rng(0))
    lead = () if views == 1 else (views,)
    assert out["rgb"].shape == (*lead, 3, t, crop, crop) and out["flow"].shape == (*lead, 2, t, crop, crop)
    if views == 1:
        check_aligned(out)
    else:
        half = views // 2 if (flip or crops == 10) else views
        check_aligned({k: v[:half] for k, v in out.items() if k != "label"})
        if half < views:
            check_aligned({k: v[half:] for k, v in out.items() if k != "label"}, flipped_u=True)
    other = tf(sample, None)
    assert all(torch.equal(out[k], other[k]) for k in ("rgb", "flow"))


@SETTINGS
@given(h=st.integers(16, 400), w=st.integers(16, 400), seed=st.integers(0, 2**31))
def test_multiscale_crop_params_two_stream(h, w, seed):
    crop = MultiScaleCrop(224)
    y0, x0, ch, cw = crop.sample_params(h, w, np.random.default_rng(seed))
    short = min(h, w)
    sides = [min(int(s * short / 256), short) for s in (256, 224, 192, 168)]
    assert ch in sides and cw in sides and abs(sides.index(ch) - sides.index(cw)) <= 1  # max_distort = 1
    assert (y0, x0) in {(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)}


def test_multiscale_crop_sizes_at_short_side_256():
    crop, rng = MultiScaleCrop(224), np.random.default_rng(0)
    seen = {crop.sample_params(256, 340, rng)[2:] for _ in range(400)}
    assert {s for hw in seen for s in hw} == {256, 224, 192, 168}
    assert (256, 168) not in seen and (224, 224) in seen


@SETTINGS
@given(h=st.integers(64, 400), w=st.integers(64, 400), seed=st.integers(0, 2**31))
def test_fusion_jitter_crop_params(h, w, seed):
    y0, x0, ch, cw = JitterCrop(224).sample_params(h, w, np.random.default_rng(seed))
    base = 224 / 256 * min(h, w)
    for size, length, start in ((ch, h, y0), (cw, w, x0)):
        assert min(length, np.floor(base * 0.75)) <= size <= min(length, np.ceil(base * 1.25))  # +-25%
        gaps = (start, length - start - size)
        assert min(gaps) >= 0
        if length - size <= 0.5 * length:  # both gaps can be within 25% of the frame: they are
            assert max(gaps) <= 0.25 * length + 1


def test_fusion_jitter_covers_range():
    rng = np.random.default_rng(0)
    params = np.array([JitterCrop(224).sample_params(256, 340, rng) for _ in range(500)])
    heights, widths = params[:, 2], params[:, 3]
    assert heights.min() < 224 * 0.8 and heights.max() == 256  # +25% is clamped to the frame height
    assert widths.min() < 224 * 0.8 and widths.max() > 224 * 1.2 and widths.max() <= 280
    assert len(set(params[:, 1])) > 10  # positions vary


# ----------------------------------------------------------------------------- single operations
def test_flip_mirrors_and_negates_u():
    sample = coord_sample(2, 4, 6)
    x = {"rgb": sample["rgb"].permute(0, 3, 1, 2).float(), "flow": sample["flow"]}
    out = RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))
    assert torch.equal(out["rgb"], x["rgb"].flip(-1))
    assert torch.equal(out["flow"][:, 0], -x["flow"][:, 0].flip(-1))
    assert torch.equal(out["flow"][:, 1], x["flow"][:, 1].flip(-1))
    assert RandomHorizontalFlip(p=0.0)(x, np.random.default_rng(0)) is x


def test_ten_crop_views_content():
    spec = InputSpec(modalities=("rgb", "flow"), flow_stack=1, crop_size=4, **IDENTITY)
    tf = build_transforms(spec, train=False, test_crops=10, short_side=6, flow_scale=1.0)
    out = tf(coord_sample(1, 6, 8), None)  # short side already 6: no resize
    assert out["rgb"].shape == (10, 3, 1, 4, 4)
    xs = (out["rgb"][:, 0, 0] * 255).round().long()
    ys = (out["rgb"][:, 1, 0] * 255).round().long()
    corners = [(0, 0), (0, 4), (2, 0), (2, 4), (1, 2)]  # (y0, x0): tl, tr, bl, br, centre
    for v, (y0, x0) in enumerate(corners):
        assert ys[v, 0, 0] == y0 and xs[v, 0, 0] == x0 and xs[v, 0, -1] == x0 + 3
        assert torch.equal(out["rgb"][v + 5], out["rgb"][v].flip(-1))  # flipped copies
        assert torch.equal(out["flow"][v + 5, 0], -out["flow"][v, 0].flip(-1))
        assert torch.equal(out["flow"][v + 5, 1], out["flow"][v, 1].flip(-1))


def test_three_crop_along_longer_side():
    sample = coord_sample(1, 6, 16)
    x = {"rgb": sample["rgb"].permute(0, 3, 1, 2).float()}
    out = ThreeCrop(6)(x)["rgb"]
    assert out.shape == (3, 1, 3, 6, 6)
    assert out[:, 0, 0, 0, 0].tolist() == [0, 5, 10]  # left, centre, right
    tall = {"rgb": coord_sample(1, 16, 6)["rgb"].permute(0, 3, 1, 2).float()}
    assert ThreeCrop(6)(tall)["rgb"][:, 0, 1, 0, 0].tolist() == [0, 5, 10]  # top, centre, bottom


def test_resize_scales_flow_vectors():
    flow = torch.ones(2, 2, 10, 20)
    out = resize(flow, (5, 40), flow=True)
    assert out.shape == (2, 2, 5, 40)
    torch.testing.assert_close(out[:, 0], torch.full((2, 5, 40), 2.0))  # u * (40 / 20)
    torch.testing.assert_close(out[:, 1], torch.full((2, 5, 40), 0.5))  # v * (5 / 10)
    same = resize(flow, (5, 40), flow=True, scale_flow=False)
    torch.testing.assert_close(same, torch.ones(2, 2, 5, 40))


def test_resize_short_side_then_centre_crop_reference():
    spec = InputSpec(crop_size=224)
    tf = build_transforms(spec, train=False)
    assert tf.transforms[0].size == 256  # short side 256 for 224 crops (two-stream / TSN)
    rgb = torch.full((2, 240, 320, 3), 200, dtype=torch.uint8)
    out = tf({"rgb": rgb}, None)["rgb"]
    assert out.shape == (3, 2, 224, 224)
    torch.testing.assert_close(out, torch.full_like(out, (200 / 255 - 0.45) / 0.225))
    assert build_transforms(spec, train=False, test_crops=3).transforms[0].size == 224


def test_normalize_reference_values():
    norm = Normalize(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0), flow_scale=20.0)
    x = {"rgb": torch.full((1, 3, 1, 1), 255.0), "flow": torch.tensor([[[[20.0]], [[-10.0]]]])}
    out = norm(x)
    assert out["rgb"].flatten().tolist() == [1.0, 3.0, 1.0]
    assert out["flow"].flatten().tolist() == [1.0, -0.5]  # +-20 px bound -> +-1


def test_flow_only_spec_statistics_normalize_flow():
    flow = torch.full((2, 2, 8, 8), 10.0)
    flow[:, 1] = -4.0
    spec = InputSpec(
        modalities=("flow",), flow_stack=2, crop_size=8, mean=(0.0, 0.0), std=(20.0, 20.0)
    )  # I3D flow
    out = build_transforms(spec, train=False, short_side=8)({"flow": flow}, None)["flow"]
    assert out.shape == (2, 2, 8, 8)
    torch.testing.assert_close(out[0], torch.full((2, 8, 8), 0.5))
    torch.testing.assert_close(out[1], torch.full((2, 8, 8), -0.2))
    pixels = InputSpec(modalities=("flow",), flow_stack=2, crop_size=8, mean=(0.0, 0.0), std=(1.0, 1.0))
    assert build_transforms(pixels, False, short_side=8)({"flow": flow}, None)["flow"][0, 0, 0, 0] == 10.0
    with pytest.raises(ValueError, match="flow statistics"):
        build_transforms(pixels, False, short_side=8)(
            {"rgb": torch.zeros(1, 8, 8, 3, dtype=torch.uint8)}, None
        )


def test_colour_jitter_off_by_default_and_same_for_all_frames():
    names = [type(t).__name__ for t in build_transforms(InputSpec(), train=True).transforms]
    assert "ColorJitter" not in names
    assert "ColorJitter" in [
        type(t).__name__ for t in build_transforms(InputSpec(), True, color_jitter=True).transforms
    ]
    frame = torch.rand(1, 3, 8, 8) * 255
    x = {"rgb": frame.expand(4, 3, 8, 8).clone(), "flow": torch.ones(3, 2, 8, 8)}
    out = ColorJitter(0.4, 0.4, 0.4)(x, np.random.default_rng(3))
    assert (out["rgb"] == out["rgb"][:1]).all() and not torch.equal(out["rgb"], x["rgb"])
    assert out["flow"] is x["flow"] and out["rgb"].min() >= 0 and out["rgb"].max() <= 255


def test_rgb_and_flow_at_different_resolutions_stay_aligned():
    spec = InputSpec(modalities=("rgb", "flow"), flow_stack=2, crop_size=16, **IDENTITY)
    tf = build_transforms(spec, train=True, recipe="two_stream", flow_scale=1.0, scale_flow=False)
    full = coord_sample(2, 48, 64)
    half = coord_sample(2, 24, 32)["flow"] * 2 + 0.5  # flow stored at half resolution, rgb-pixel units
    for seed in range(5):
        out = tf({"rgb": full["rgb"], "flow": half}, np.random.default_rng(seed))
        assert out["flow"].shape == (2, 2, 16, 16)
        flipped = bool(out["rgb"][0, 0, 0, -1] < out["rgb"][0, 0, 0, 0])
        sign = -1 if flipped else 1
        diff = (out["rgb"][1] * 255 - out["flow"][1]).abs()
        assert diff.max() < 2.0 and (out["rgb"][0] * 255 - sign * out["flow"][0]).abs().max() < 2.0


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"rgb must be \[T,H,W,3\]"):
        build_transforms(InputSpec(), False)({"rgb": torch.zeros(2, 3, 8, 8, dtype=torch.uint8)}, None)
    with pytest.raises(ValueError, match="np.random.Generator"):
        build_transforms(InputSpec(crop_size=4), True)(
            {"rgb": torch.zeros(1, 8, 8, 3, dtype=torch.uint8)}, None
        )
    with pytest.raises(ValueError, match="test_crops"):
        build_transforms(InputSpec(), False, test_crops=5)
    with pytest.raises(ValueError, match="recipe"):
        build_transforms(InputSpec(), True, recipe="tsn")
