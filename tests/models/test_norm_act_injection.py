"""Injected norm / activation (issue 18) in ViViT Models 1-4, TimeSformer, the 2D ResNet and the
dynamic-image network: the defaults are the explicit default builders (same keys, same outputs),
and an injected kind or builder replaces every norm and every activation."""

import pytest
import torch
from torch import nn

from deepvideo.models.dynamic_images import dynamic_image_net
from deepvideo.models.transformer import TimeSformer, ViViTFactorized
from deepvideo.models.vivit import ViViT
from deepvideo.nn.backbones2d import resnet

TINY = {"num_classes": 3, "num_frames": 4, "crop_size": 16, "patch": 8, "tubelet": 2, "dim": 16, "heads": 2}
CLIP = (2, 3, 4, 16, 16)
DEPTH = 2


def vivit(model: int, **kw) -> nn.Module:
    """ViViT Model ``model`` (1-4) with ``DEPTH`` blocks (Model 2: ``DEPTH`` spatial, 1 temporal)."""
    if model == 2:
        return ViViTFactorized(spatial_depth=DEPTH, temporal_depth=1, **TINY, **kw)
    return ViViT(model=model, depth=DEPTH, **TINY, **kw)


# token norms in a model: pre-norms per block (Model 3: space, time, MLP) and the final norm(s)
# (Model 2: spatial and temporal encoders' blocks, the spatial norm and the final norm)
TOKEN_NORMS = {1: 2 * DEPTH + 1, 2: 2 * (DEPTH + 1) + 2, 3: 3 * DEPTH + 1, 4: 2 * DEPTH + 1}
MLPS = {1: DEPTH, 2: DEPTH + 1, 3: DEPTH, 4: DEPTH}


def count(model: nn.Module, kind: type) -> int:
    return sum(type(m) is kind for m in model.modules())


def same_model(build_a, build_b, x: torch.Tensor) -> None:
    """Seeded builds have the same state-dict keys and tensors and the same outputs."""
    torch.manual_seed(0)
    a = build_a().eval()
    torch.manual_seed(0)
    b = build_b().eval()
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("model", [1, 2, 3, 4])
def test_vivit_default_is_layernorm_eps_1e6_and_gelu(model):
    torch.manual_seed(1)
    x = torch.randn(CLIP)
    same_model(lambda: vivit(model), lambda: vivit(model, norm=lambda c: nn.LayerNorm(c, eps=1e-6),
                                                   act=nn.GELU), x)
    net = vivit(model)
    norms = [m for m in net.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == TOKEN_NORMS[model] and all(m.eps == 1e-6 for m in norms)
    assert count(net, nn.GELU) == MLPS[model]


@pytest.mark.parametrize("model", [1, 2, 3, 4])
def test_vivit_injected_norm_and_act_replace_every_one(model):
    torch.manual_seed(0)
    net = vivit(model, norm=nn.RMSNorm, act="silu")
    assert count(net, nn.RMSNorm) == TOKEN_NORMS[model] and count(net, nn.LayerNorm) == 0
    assert count(net, nn.SiLU) == MLPS[model] and count(net, nn.GELU) == 0
    out = net(torch.randn(CLIP))
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    # "none": the norms' weights and biases (2 x dim each) are gone
    plain, bare = vivit(model), vivit(model, norm="none")
    assert count(bare, nn.LayerNorm) == 0 and count(bare, nn.Identity) >= TOKEN_NORMS[model]
    n_params = [sum(p.numel() for p in m.parameters()) for m in (plain, bare)]
    assert n_params[0] - n_params[1] == TOKEN_NORMS[model] * 2 * TINY["dim"]


def test_timesformer_takes_the_same_norm_and_act():
    torch.manual_seed(1)
    x = torch.randn(CLIP)
    kw = {k: v for k, v in TINY.items() if k != "tubelet"} | {"depth": 1, "mode": "divided"}
    same_model(lambda: TimeSformer(**kw), lambda: TimeSformer(**kw, norm="ln", act="gelu"), x)
    net = TimeSformer(**kw, norm="none", act="silu")
    assert count(net, nn.LayerNorm) == 0 and count(net, nn.GELU) == 0 and count(net, nn.SiLU) == 1
    assert net(x).shape == (2, 3)


def test_vivit_unknown_names_are_errors():
    with pytest.raises(ValueError, match="unknown token norm 'bn'.*channel-last"):
        vivit(1, norm="bn")
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        vivit(3, act="tanh")


def test_resnet_default_is_batchnorm2d_and_relu():
    torch.manual_seed(1)
    img = torch.randn(2, 3, 32, 32)
    for depth, kw in ((18, {}), (50, {"zero_init_residual": True})):
        same_model(lambda d=depth, k=kw: resnet(d, 5, width=0.125, **k),
                   lambda d=depth, k=kw: resnet(d, 5, width=0.125, norm=nn.BatchNorm2d,
                                                act=lambda: nn.ReLU(inplace=True), **k), img)


def test_resnet_injected_group_norm_and_silu():
    """ResNet-18: stem + 8 blocks x 2 norms + 3 downsamples = 20 norms; stem + 8 blocks' act."""
    torch.manual_seed(0)
    base = resnet(18, 5, width=0.125)
    assert count(base, nn.BatchNorm2d) == 20 and count(base, nn.ReLU) == 9
    net = resnet(18, 5, width=0.125, norm="gn", act="silu", zero_init_residual=True)
    assert count(net, nn.GroupNorm) == 20 and count(net, nn.BatchNorm2d) == 0
    assert count(net, nn.SiLU) == 9 and count(net, nn.ReLU) == 0
    assert not net.layer1[0].bn2.weight.any()  # zero-init residual reaches the injected norm
    names = [[n for n, _ in m.named_parameters()] for m in (net, base)]
    assert names[0] == names[1]  # GroupNorm's weight and bias where BN's were (no running stats)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    bare = resnet(50, 5, width=0.125, norm="none", zero_init_residual=True)
    assert count(bare, nn.BatchNorm2d) == 0 and bare(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    with pytest.raises(ValueError, match="unknown norm 'ln'"):
        resnet(18, norm="ln")


def test_dynamic_image_net_default_and_injected():
    torch.manual_seed(1)
    clip = torch.randn(2, 3, 8, 32, 32)
    kw = {"backbone": "resnet18", "width": 0.125, "window": 4, "stride": 4, "input_size": 32}
    same_model(lambda: dynamic_image_net(3, **kw), lambda: dynamic_image_net(3, norm="bn", act="relu", **kw),
               clip)
    net = dynamic_image_net(3, norm=lambda c: nn.GroupNorm(2, c), act="silu", **kw)
    assert count(net, nn.GroupNorm) == 20 and count(net, nn.BatchNorm2d) == 0
    assert count(net, nn.SiLU) == 9 and count(net, nn.ReLU) == 0
    out = net(clip)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="apply to the ResNet backbones"):
        dynamic_image_net(3, backbone="vgg16", norm="gn", width=0.125, input_size=32)
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        dynamic_image_net(3, act="elu", **kw)
