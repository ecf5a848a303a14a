"""ST-ResNet (Feichtenhofer et al. NIPS 2016): connections, temporal convs, dense outputs."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.st_resnet import st_resnet

SMALL = {"appearance_depth": 18, "motion_depth": 18, "width": 0.125, "flow_stack": 2}


def _batch(n, t, L=2, size=32):
    return {"rgb": torch.randn(n, 3, t, size, size), "flow": torch.randn(n, 2, t * L, size, size)}


@pytest.mark.parametrize("T,size", [(3, 32), (5, 48)])
def test_dense_outputs_one_per_chunk(T, size):
    model = st_resnet(6, **SMALL)
    out = model(_batch(2, T, size=size))
    assert out["logits"].shape == (2, 6, T) and out["aux_motion"].shape == (2, 6, T)
    sum(v.square().mean() for v in out.values()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()
    assert model(_batch(2, T, size=size)).shape == (2, 6, T)


def test_star_temporal_max_pool_11_to_4():
    model = st_resnet(3, star=True, **SMALL).eval()
    with torch.no_grad():
        assert model(_batch(1, 11)).shape == (1, 3, 4)


def test_paper_layout_resnet50():
    with torch.device("meta"):
        model = st_resnet(101)
    # 4 additive residual connections motion -> appearance, before the second unit of conv2_x..conv5_x
    assert sorted(model.connections) == ["s0u1", "s1u1", "s2u1", "s3u1"]
    assert all(
        c.op == "add" and c.kind == "residual" and c.direction == "m2a" for c in model.connections.values()
    )
    temporal = [m for m in model.modules() if isinstance(m, nn.Conv3d) and m.kernel_size == (3, 1, 1)]
    assert len(temporal) == 16  # 2 streams x 4 units x (reduce, expand) 1x1 convs
    assert model.motion.stem[0].weight.shape == (64, 20, 1, 7, 7)  # 2L = 20 channels
    assert model.appearance.fc.in_features == 2048


def test_temporal_convs_start_as_averaging():
    model = st_resnet(3, **SMALL)
    block = model.appearance.stages[1][1].block
    w = block.conv1.weight
    assert (
        w.shape[2] == 3 and torch.allclose(w[:, :, 0], w[:, :, 1]) and torch.allclose(w[:, :, 1], w[:, :, 2])
    )
    # ResNet-18's unit has no 1x1 conv3: only conv1 is temporal there
    assert not hasattr(block, "conv3")


def test_motion_reaches_appearance_only_through_connections():
    torch.manual_seed(0)
    model = st_resnet(3, **SMALL).train()
    for m in model.modules():  # training-mode outputs (per-stream dict) with frozen BN statistics
        if isinstance(m, nn.BatchNorm3d):
            m.eval()
    batch = _batch(1, 3)
    other = dict(batch, flow=torch.randn_like(batch["flow"]))
    with torch.no_grad():
        a, b = model(batch)["logits"], model(other)["logits"]
        assert not torch.allclose(a, b)  # the motion signal changes the appearance scores
        model.connections = nn.ModuleDict()
        a, b = model(batch)["logits"], model(other)["logits"]
        assert torch.allclose(a, b) and torch.allclose(a, model.appearance(batch["rgb"]), atol=1e-6)


def test_small_presets_registered():
    for name in ("st_resnet_small", "st_resnet_star_small"):
        model = create_model(name, num_classes=4).eval()
        spec = model.input_spec
        assert spec.dense_temporal and spec.crop_size == 112
        with torch.no_grad():
            out = model(_batch(1, spec.num_segments, spec.flow_stack, 32))
        assert out.shape[:2] == (1, 4)
