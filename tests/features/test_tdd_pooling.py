"""TDD (Wang, Qiao & Tang 2015): hooks, normalisations and trajectory pooling by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvideo.features import tdd


def test_paper_layers_and_normalisations():
    assert tdd.SPATIAL_LAYERS == ("backbone.relu4", "backbone.relu5")
    assert tdd.TEMPORAL_LAYERS == ("backbone.relu3", "backbone.relu4")
    assert tdd.NORMALISATIONS == ("spatiotemporal", "channel")


def test_normalisations_divide_by_the_right_maximum():
    maps = np.zeros((2, 2, 1, 2), np.float32)
    maps[:, 0] = [[[1, 2]], [[4, 0]]]
    maps[:, 1] = [[[3, 3]], [[1, 6]]]
    st = tdd.normalise_maps(maps, "spatiotemporal")
    np.testing.assert_allclose(st[:, 0], maps[:, 0] / 4)
    np.testing.assert_allclose(st[:, 1], maps[:, 1] / 6)
    ch = tdd.normalise_maps(maps, "channel")
    np.testing.assert_allclose(ch[0, :, 0, 0], [1 / 3, 1])
    np.testing.assert_allclose(ch[1, :, 0, 1], [0, 1])
    with pytest.raises(ValueError, match="unknown normalisation"):
        tdd.normalise_maps(maps, "l2")


def test_pool_trajectories_sums_map_values_at_scaled_points():
    maps = np.arange(3 * 1 * 4 * 4, dtype=np.float32).reshape(3, 1, 4, 4)  # value = 16t + 4y + x
    points = np.array([[[0.0, 0.0], [8.0, 4.0], [15.0, 15.0]]])  # 16x16 frame -> 4x4 map: r = 1/4
    got = tdd.pool_trajectories(maps, points, np.array([2]), (16, 16))
    np.testing.assert_allclose(got, [[0 + (16 + 4 + 2) + (32 + 12 + 3)]])  # round(15/4)=4 -> clipped 3
    with pytest.raises(ValueError, match="outside the 3 "):
        tdd.pool_trajectories(maps, points, np.array([5]), (16, 16))


def test_feature_maps_by_path_stop_early_and_name_missing():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(999, 1))  # Linear would fail
    x = torch.randn(1, 1, 3, 3)
    maps = tdd.feature_maps(net, x, ["0", "1"])
    assert maps["1"].shape == (1, 2, 3, 3) and (maps["1"] >= 0).all()
    with pytest.raises(KeyError, match="no module 'conv9'"):
        tdd.feature_maps(net, x, ["conv9"])


def test_flow_stacks_clamp_at_the_end():
    flow = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 2, 1, 1)
    st = tdd.flow_stacks(flow, 5, 2)
    assert st.shape == (5, 2, 2, 1, 1)
    np.testing.assert_array_equal(st[:, 0, :, 0, 0].numpy(), [[0, 1], [1, 2], [2, 3], [2, 3], [2, 3]])


def _snippet_net(in_ch, **kw):
    from collections import OrderedDict

    from deepvideo.nn.snippet_net import SnippetNet

    backbone = nn.Sequential(OrderedDict(conv3=nn.Conv2d(in_ch, 4, 3, stride=2, padding=1), relu3=nn.ReLU(),
                                         conv4=nn.Conv2d(4, 4, 3, stride=2, padding=1), relu4=nn.ReLU(),
                                         conv5=nn.Conv2d(4, 4, 3, padding=1), relu5=nn.ReLU(),
                                         pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=nn.Linear(4, 3)))
    return SnippetNet(backbone, **kw)


def test_extract_tdd_with_paper_layers_of_small_snippet_nets():
    from deepvideo.features import TrajectoryParams, extract_trajectories

    torch.manual_seed(0)
    spatial, temporal = _snippet_net(3, modality="rgb"), _snippet_net(4, modality="flow", flow_stack=2)
    rng = np.random.default_rng(0)
    base = (rng.random((48, 80, 3)) * 255).astype(np.uint8)
    frames = np.stack([np.roll(base, 2 * t, axis=1) for t in range(17)])
    tr = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=False))
    assert len(tr) > 0
    flow = torch.zeros(16, 2, 48, 80)
    flow[:, 0] = 2.0
    out = tdd.extract_tdd(frames, spatial, temporal, tr, flow=flow)
    layers = {"spatial": (4, 5), "temporal": (3, 4)}
    assert sorted(out) == sorted(f"{s}/backbone.relu{n}/{m}" for s, ns in layers.items()
                                 for n in ns for m in tdd.NORMALISATIONS)
    for v in out.values():
        assert v.shape == (len(tr), 4) and np.isfinite(v).all() and (v >= 0).all()
        assert v.max() <= 16 + 1e-4  # at most 1 per point after normalisation, 16 points
