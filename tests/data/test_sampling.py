"""Clip sampling: reference values for the papers' recipes and property tests over video lengths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvideo.data.sampling import (
    POLICIES,
    build_sampler,
    chunk_indices,
    dense_clip_indices,
    draw_stride,
    fit_indices,
    flow_stack_indices,
    multi_view_indices,
    segment_starts,
    tsn_indices,
    uniform_indices,
)
from deepvideo.spec import InputSpec

SETTINGS = settings(max_examples=50, deadline=None)
lengths = st.integers(1, 400)
policies = st.sampled_from(POLICIES)
seeds = st.integers(0, 2**32 - 1)


def in_range(idx: np.ndarray, n: int, policy: str) -> bool:
    low = -1 if policy == "pad" else 0
    return bool(((idx >= low) & (idx < n)).all()) and (policy == "pad" or not (idx == -1).any())


# ----------------------------------------------------------------------------- reference values
def test_uniform_25_frames_two_stream_test():
    idx = uniform_indices(250, 25)  # Simonyan & Zisserman: 25 frames evenly spaced
    assert idx.dtype == np.int64 and idx.tolist() == list(range(5, 250, 10))
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]


def test_fit_indices_policies():
    ideal = np.arange(7)
    assert fit_indices(ideal, 4, "loop").tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert fit_indices(ideal, 4, "repeat_last").tolist() == [0, 1, 2, 3, 3, 3, 3]
    assert fit_indices(ideal, 4, "pad").tolist() == [0, 1, 2, 3, -1, -1, -1]
    assert fit_indices(ideal, 0, "loop").tolist() == [-1] * 7
    with pytest.raises(ValueError, match="short_policy"):
        fit_indices(ideal, 4, "wrap")


def test_tsn_test_mode_takes_segment_centres():
    # 3 segments over 90 frames, one frame each: centres of [0,30), [30,60), [60,90)
    assert tsn_indices(90, 3, train=False).tolist() == [[15, 45, 75]]
    # 5-frame snippets: 86 valid starts in 3 segments, centre of each
    idx = tsn_indices(90, 3, 5, train=False)
    assert idx.reshape(3, 5)[:, 0].tolist() == [14, 43, 71]


def test_fusion_recipe_chunks():
    # 3D fusion: T = 5 chunks tau apart, tau random in [1, 10], random start
    rng = np.random.default_rng(0)
    strides = set()
    for _ in range(200):
        starts = chunk_indices(300, 5, (1, 10), rng, extent=11)[0]
        d = np.diff(starts)
        assert (d == d[0]).all() and 1 <= d[0] <= 10 and starts[-1] + 10 <= 299
        strides.add(int(d[0]))
    assert strides == set(range(1, 11))


def test_draw_stride_limits_jitter_to_fit_and_centres_in_test():
    rng = np.random.default_rng(1)
    # 16 frames of T-ResNet at stride in [5, 15] on a 100-frame video: tau <= 99 // 15 = 6
    assert {draw_stride((5, 15), rng, num_frames=100, num_steps=15) for _ in range(100)} == {5, 6}
    assert draw_stride((5, 15), train=False) == 10
    assert draw_stride((5, 15), rng, num_frames=20, num_steps=15) == 5  # lo does not fit: lo


def test_build_sampler_st_resnet_uses_chunks():
    spec = InputSpec(modalities=("rgb", "flow"), num_segments=5, flow_stack=10, frame_stride=(5, 15))
    sampler = build_sampler(spec, train=True)
    assert sampler.layout == "chunks"
    out = sampler(300, np.random.default_rng(0))
    rgb, flow = out["rgb"][0], out["flow"][0].reshape(5, 10)
    tau = rgb[1] - rgb[0]
    assert 5 <= tau <= 15 and (np.diff(rgb) == tau).all()
    assert (flow[:, 0] == rgb).all() and (np.diff(flow, axis=1) == 1).all()


def test_build_sampler_tsn_segments_and_alignment():
    spec = InputSpec(modalities=("rgb", "flow"), num_segments=3, flow_stack=5)
    sampler = build_sampler(spec, train=False, num_clips=2)
    assert sampler.layout == "segments"
    out = sampler(100)
    assert out["rgb"].shape == (2, 3) and out["flow"].shape == (2, 15)
    # 95 valid starts (5 fields need 6 frames); view v at fraction (v + .5)/2 of each segment
    assert out["rgb"].tolist() == [[7, 39, 71], [23, 55, 87]]
    assert (out["flow"].reshape(2, 3, 5)[:, :, 0] == out["rgb"]).all()


def test_sampler_needs_rng_in_training_only():
    sampler = build_sampler(InputSpec(num_frames=8), train=True)
    with pytest.raises(ValueError, match="np.random.Generator"):
        sampler(50)
    assert build_sampler(InputSpec(num_frames=8), train=False)(50)["rgb"].tolist() == [list(range(21, 29))]


def test_build_sampler_rejects_bad_options():
    with pytest.raises(ValueError, match="short_policy"):
        build_sampler(InputSpec(), True, short_policy="wrap")
    with pytest.raises(ValueError, match="chunks layout"):
        build_sampler(InputSpec(num_frames=4), True, layout="chunks")


def test_one_frame_video_has_no_flow_fields():
    spec = InputSpec(modalities=("rgb", "flow"), num_segments=3, flow_stack=5)
    for policy in POLICIES:
        out = build_sampler(spec, train=False, short_policy=policy)(1)
        assert out["flow"].tolist() == [[-1] * 15]
        assert out["rgb"].tolist() == [[0, 0, 0]]


# ----------------------------------------------------------------------------- properties
@SETTINGS
@given(
    n=lengths,
    clip_len=st.integers(1, 32),
    lo=st.integers(1, 8),
    extra=st.integers(0, 8),
    views=st.integers(1, 4),
    policy=policies,
    seed=seeds,
    train=st.booleans(),
)
def test_dense_clip_properties(n, clip_len, lo, extra, views, policy, seed, train):
    hi = lo + extra
    idx = dense_clip_indices(
        n, clip_len, (lo, hi), np.random.default_rng(seed), train=train, num_clips=views, short_policy=policy
    )
    assert idx.shape == (views, clip_len) and idx.dtype == np.int64
    assert in_range(idx, n, policy)
    if (clip_len - 1) * lo + 1 <= n:  # fits: monotone, one stride within the jitter range
        d = np.diff(idx, axis=1)
        if clip_len > 1:
            assert (d == d[:, :1]).all() and ((d >= lo) & (d <= hi)).all()
    elif policy == "repeat_last":
        assert (np.diff(idx, axis=1) >= 0).all()
    elif policy == "pad":
        assert (idx[:, 0] == 0).all() and (idx == -1).any()


@SETTINGS
@given(n=lengths, k=st.integers(1, 8), snippet=st.integers(1, 6), policy=policies, seed=seeds)
def test_tsn_segments_cover_video_in_order(n, k, snippet, policy, seed):
    idx = tsn_indices(n, k, snippet, 1, np.random.default_rng(seed), short_policy=policy)
    assert idx.shape == (1, k * snippet) and in_range(idx, n, policy)
    if snippet <= n:
        starts = idx.reshape(k, snippet)[:, 0]
        m = n - snippet + 1
        bounds = np.arange(k + 1) * m / k
        # snippet i starts inside segment i (floor of the segment bounds); segments in order
        assert ((starts >= np.floor(bounds[:-1])) & (starts <= np.maximum(np.ceil(bounds[1:]) - 1, 0))).all()
        assert (np.diff(starts) >= 0).all()
        assert (np.diff(idx.reshape(k, snippet), axis=1) == 1).all()


@SETTINGS
@given(n=st.integers(1, 200), k=st.integers(1, 6), views=st.integers(1, 5))
def test_segment_starts_test_mode_deterministic_and_in_range(n, k, views):
    a = segment_starts(n, k, np.random.default_rng(0), train=False, num_views=views)
    b = segment_starts(n, k, np.random.default_rng(1), train=False, num_views=views)
    assert (a == b).all() and a.shape == (views, k) and ((a >= 0) & (a < n)).all()
    assert (np.diff(a, axis=0) >= 0).all() and (np.diff(a, axis=1) >= 0).all()


@SETTINGS
@given(n=lengths, fields=st.integers(1, 12), policy=policies)
def test_flow_stack_indices_are_valid_fields(n, fields, policy):
    starts = np.array([[0, n // 2, max(n - 3, 0)]])
    idx = flow_stack_indices(n, starts, fields, policy)
    assert idx.shape == (1, 3, fields)
    if n == 1:
        assert (idx == -1).all()
    else:
        assert in_range(idx, n - 1, policy)
        ok = starts[..., None] + np.arange(fields) <= n - 2
        assert (idx[ok] == (starts[..., None] + np.arange(fields))[ok]).all()


spec_strategy = st.builds(
    lambda mods, k, t, lo, extra, L: InputSpec(
        modalities=mods, num_segments=k, num_frames=t, frame_stride=(lo, lo + extra), flow_stack=L
    ),
    mods=st.sampled_from([("rgb",), ("flow",), ("rgb", "flow")]),
    k=st.integers(1, 5),
    t=st.integers(1, 8),
    lo=st.integers(1, 6),
    extra=st.integers(0, 6),
    L=st.integers(1, 10),
)


@SETTINGS
@given(
    spec=spec_strategy, n=lengths, views=st.integers(1, 3), policy=policies, seed=seeds, train=st.booleans()
)
def test_build_sampler_properties(spec, n, views, policy, seed, train):
    sampler = build_sampler(spec, train=train, num_clips=views, short_policy=policy)
    out = sampler(n, np.random.default_rng(seed))
    k, t, L = spec.num_segments, spec.num_frames, spec.flow_stack
    assert set(out) == set(spec.modalities)
    if "rgb" in out:
        assert out["rgb"].shape == (views, k * t) and out["rgb"].dtype == np.int64
        assert in_range(out["rgb"], n, policy)
    if "flow" in out:
        assert out["flow"].shape == (views, k * L) and out["flow"].dtype == np.int64
        if n == 1:
            assert (out["flow"] == -1).all()
        else:
            assert in_range(out["flow"], n - 1, policy)
    need = max((t - 1) * spec.stride_range[0] + 1, L + 1 if "flow" in out else 1)
    if sampler.layout == "chunks":
        need = (k - 1) * spec.stride_range[0] + (L + 1 if "flow" in out else 1)
    if n >= need and set(out) == {"rgb", "flow"}:
        # each snippet's flow stack starts at its first RGB frame, consecutive fields
        first_rgb = out["rgb"].reshape(views, k, t)[..., 0]
        stacks = out["flow"].reshape(views, k, L)
        assert (stacks[..., 0] == first_rgb).all() and (np.diff(stacks, axis=-1) == 1).all()
        assert (stacks[..., -1] <= n - 2).all()
    if n >= need and "rgb" in out:
        clips = out["rgb"].reshape(views, k, t)
        assert (np.diff(clips, axis=-1) > 0).all()  # monotone within a clip
        assert (np.diff(clips[..., 0], axis=-1) >= 0).all()  # snippets in temporal order
    if not train:  # test mode: independent of the rng
        again = sampler(n, np.random.default_rng(seed + 1))
        assert all((again[m] == out[m]).all() for m in out)


@SETTINGS
@given(n=st.integers(1, 300), views=st.integers(1, 30), clip_len=st.integers(1, 16))
def test_multi_view_evenly_spaced(n, views, clip_len):
    idx = multi_view_indices(n, views, clip_len)
    assert idx.shape == (views, clip_len) and ((idx >= 0) & (idx < n)).all()
    if clip_len <= n:
        starts = idx[:, 0]
        assert (np.diff(starts) >= 0).all()
        m = n - clip_len + 1
        expected = ((2 * np.arange(views) + 1) * m) // (2 * views)  # floor((v + 0.5) * m / V), exact
        assert (starts == np.minimum(expected, m - 1)).all()
