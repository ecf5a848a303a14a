"""Fast inference: batch-norm folding, channels-last, bfloat16."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.inference import bf16_supported, fold_batchnorm, optimize_for_inference


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def randomize_norms(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


CASES = [
    ("r3d_18", {"width": 8}, (1, 3, 4, 32, 32)),
    ("r2plus1d_18", {"width": 8}, (1, 3, 4, 32, 32)),  # norm inside the (2+1)D conv
    ("ip_csn_50", {"width": 8}, (1, 3, 4, 32, 32)),  # conv_b is a sequence ending in a conv
    ("x3d_xs", {"depth_factor": 1.0, "width_factor": 1.0, "head_width": 16}, (1, 3, 4, 32, 32)),
    ("slowfast_r50", {"width": 16}, (1, 3, 8, 32, 32)),
    ("nl_i3d_r50", {"width": 8}, (1, 3, 4, 32, 32)),
    ("s3d", {}, (1, 3, 8, 32, 32)),
]


@pytest.mark.parametrize("name,kw,shape", CASES)
def test_fold_and_channels_last_keep_outputs(name, kw, shape):
    torch.manual_seed(0)
    model = randomize_norms(create_model(name, 6, **kw))
    if name == "nl_i3d_r50":  # non-local blocks start as identities; make them count
        for m in model.modules():
            if type(m).__name__ == "NonLocal3d":
                nn.init.ones_(m.norm.weight)
    x = torch.randn(shape)
    with torch.no_grad():
        ref = model(x)
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.modules()), "every norm follows a conv"
    assert sum(isinstance(m, nn.BatchNorm3d) for m in model.modules()) == n_bn  # the original is untouched
    out = fast({"rgb": x})
    assert (out - ref).abs().max() <= 1e-4
    assert not out.requires_grad


def test_fold_count_and_inplace():
    seq = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.BatchNorm3d(4))
    randomize_norms(seq)
    x = torch.randn(1, 2, 3, 5, 5)
    ref = seq(x)
    assert fold_batchnorm(seq) == 1  # the second norm follows a ReLU: kept
    assert isinstance(seq[1], nn.Identity) and isinstance(seq[3], nn.BatchNorm3d)
    assert torch.allclose(seq(x), ref, atol=1e-5)


@pytest.mark.skipif(not bf16_supported(), reason="CPU without bfloat16 instructions")
def test_bf16_close_and_same_top1():
    torch.manual_seed(0)
    model = randomize_norms(create_model("r3d_18", 5, width=8))
    x = torch.randn(4, 3, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
    out = optimize_for_inference(model, bf16=True)(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 0.05
    assert not torch.equal(out, ref)  # it did run in reduced precision


def test_bf16_refused_without_support(monkeypatch):
    import deepvideo.models.inference as inference

    monkeypatch.setattr(inference, "bf16_supported", lambda: False)
    with pytest.raises(RuntimeError, match="AVX512-BF16 or AMX"):
        inference.optimize_for_inference(nn.Linear(2, 2), bf16=True)


def test_keep_fp32_where_faster_wraps_pools_and_stem():
    from deepvideo.models.inference import Float32Island, keep_fp32_where_faster

    model = randomize_norms(create_model("s3d", 6)).eval()
    n_pools = sum(isinstance(m, nn.MaxPool3d) for m in model.modules())
    assert keep_fp32_where_faster(model) == n_pools + 1  # every 3D max pool and the RGB stem conv
    islands = [m.module for m in model.modules() if isinstance(m, Float32Island)]
    stems = [m for m in islands if isinstance(m, nn.Conv3d)]
    assert [c.in_channels for c in stems] == [3]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(1, 3, 2, 4, 4).bfloat16()
        pool = Float32Island(nn.MaxPool3d(2))
        out = pool(x)
    assert out.dtype == torch.bfloat16 and torch.equal(out, nn.MaxPool3d(2)(x.float()).bfloat16())
    assert keep_fp32_where_faster(model) == 0  # idempotent: wrapped modules are not wrapped again



@pytest.mark.skipif(not bf16_supported(), reason="CPU without bfloat16 instructions")
@pytest.mark.parametrize(
    "name, kw, shape",
    [
        ("r2plus1d_18_tv", {}, (1, 3, 4, 32, 32)),
        ("s3d", {}, (1, 3, 16, 64, 64)),  # 3D average pooling in its head: no bf16 CPU kernel
        ("x3d_xs", {}, (1, 3, 4, 32, 32)),
        ("slowfast_r50", {}, (1, 3, 8, 32, 32)),
        ("mvit_v2_s", {"num_frames": 4, "crop_size": 32, "embed_dim": 8, "depth": 4, "dim_mul_at": (1, 3)},
         (1, 3, 4, 32, 32)),
    ],
)
def test_bf16_network_in_bfloat16_outputs_close(name, kw, shape):
    from deepvideo.models.inference import Float32Island

    torch.manual_seed(0)
    model = randomize_norms(create_model(name, 7, **kw)).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = model(x)
    fast = optimize_for_inference(model, bf16=True)
    kept = {id(p) for w in fast.modules() if isinstance(w, Float32Island) for p in w.parameters()}
    weights = [p for p in fast.parameters() if p.is_floating_point()]
    assert all(p.dtype == (torch.float32 if id(p) in kept else torch.bfloat16) for p in weights)
    out = fast(x)
    assert out.dtype == torch.float32
    assert (out - ref).norm() < 0.1 * ref.norm()


@pytest.mark.parametrize("rows", [3, 200])  # below MIN_ROWS: F.linear; above: a 1×1 convolution
def test_onednn_linear_equals_linear(rows):
    from deepvideo.models.inference import OneDNNLinear

    torch.manual_seed(0)
    lin = nn.Linear(24, 40)
    fast = OneDNNLinear(lin)
    x = torch.randn(2, rows, 24)
    assert torch.allclose(fast(x), lin(x), atol=1e-5)
    assert fast(x).shape == (2, rows, 40)
    assert torch.allclose(fast(x[:, ::2]), lin(x[:, ::2]), atol=1e-5)  # strided input: copied, not viewed
    assert fast.state_dict().keys() == lin.state_dict().keys()
    assert torch.allclose(fast.double()(x.double()), lin.double()(x.double()))  # other dtypes: F.linear


def test_fp32_transformer_linears_go_to_onednn():
    from deepvideo.models.inference import OneDNNLinear

    torch.manual_seed(0)
    kw = {"num_frames": 4, "crop_size": 32, "embed_dim": 8, "depth": 4, "dim_mul_at": (1, 3)}
    model = create_model("mvit_v2_s", 7, **kw).eval()
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = optimize_for_inference(model)
    assert sum(isinstance(m, OneDNNLinear) for m in fast.modules()) == n_linear
    assert not any(type(m) is nn.Linear for m in fast.modules())
    assert (fast(x) - ref).abs().max() <= 1e-4


@settings(max_examples=12, deadline=None)
@given(
    t=st.integers(4, 11),
    hw=st.tuples(st.integers(3, 9), st.integers(3, 9)),
    stride=st.sampled_from([1, 2]),
    kernel=st.sampled_from([(3, 3, 3), (3, 1, 3), (3, 5, 5)]),
    bias=st.booleans(),
)
def test_temporal_winograd_equals_the_convolution(t, hw, stride, kernel, bias):
    from deepvideo.models.inference import TemporalWinogradConv3d

    torch.manual_seed(t)
    conv = nn.Conv3d(16, 24, kernel, (1, stride, stride), (1, kernel[1] // 2, kernel[2] // 2), bias=bias)
    assert TemporalWinogradConv3d.applies(conv)
    fast = TemporalWinogradConv3d(conv)
    x = torch.randn(2, 16, t, *hw).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        ref, out = conv(x), fast(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()
    assert torch.equal(fast(x[:, :, :3]), conv(x[:, :, :3]))  # under 4 frames: the convolution itself


def test_temporal_winograd_only_where_it_applies():
    from deepvideo.models.inference import TemporalWinogradConv3d, winograd_temporal

    applies = TemporalWinogradConv3d.applies
    assert not applies(nn.Conv3d(16, 16, (3, 3, 3), (2, 1, 1), 1))  # temporal stride
    assert not applies(nn.Conv3d(16, 16, (3, 1, 1), padding=(1, 0, 0)))  # no spatial extent: a plain GEMM
    assert not applies(nn.Conv3d(16, 16, 3, padding=1, groups=16))  # depthwise
    assert not applies(nn.Conv3d(3, 16, (3, 7, 7), padding=(1, 3, 3)))  # RGB stem
    model = randomize_norms(create_model("r3d_18", 6, width=16)).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = optimize_for_inference(model)
    n = sum(isinstance(m, TemporalWinogradConv3d) for m in fast.modules())
    assert n == 13  # every 3x3x3 conv of the four stages but the three temporally strided ones
    assert (fast(x) - ref).abs().max() <= 1e-4
    assert winograd_temporal(optimize_for_inference(model, winograd=False).model) == 13
    assert winograd_temporal(fast) == 0  # idempotent


def test_compiled_model_with_temporal_winograd_keeps_outputs():
    """Inductor cannot trace the Winograd transforms (in-place writes into strided views): they run
    eagerly between compiled graphs, and the outputs stay the model's."""
    from deepvideo.models.inference import TemporalWinogradConv3d

    torch.manual_seed(0)
    model = randomize_norms(create_model("r3d_18", 6, width=16)).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = optimize_for_inference(model, compile=True)
    assert any(isinstance(m, TemporalWinogradConv3d) for m in fast.modules())
    out = fast(x)
    assert torch.isfinite(out).all() and (out - ref).abs().max() <= 1e-4
