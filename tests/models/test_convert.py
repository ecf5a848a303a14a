"""Weight import from torchvision and PyTorchVideo: same outputs after conversion.

Peers are built with random weights (no downloads); batch-norm statistics and affine
parameters are randomized too so that a wrong mapping cannot hide behind an identity norm.
PyTorchVideo is a test-only dependency (skipped when absent); its heads average-pool with a
fixed window and end in a softmax, which are swapped for global pooling and identity here.
"""

import warnings

import pytest
import torch
import torchvision
from torch import nn

from deepvideo.models import create_model
from deepvideo.models.convert import (
    ConversionError,
    convert_file,
    detect_source,
    load_model,
    load_weights,
    read_state_dict,
)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


def assert_same(ours: nn.Module, peer_out: torch.Tensor, x) -> None:
    with torch.no_grad():
        out = ours.eval()(x)
    assert out.shape == peer_out.shape
    assert peer_out.abs().max() > 1e-3  # a meaningful comparison
    assert (out - peer_out).abs().max() <= 1e-4


TV = [
    ("r3d_18", "r3d_18", (1, 3, 4, 32, 32)),
    ("mc3_18", "mc3_18", (1, 3, 4, 32, 32)),
    ("r2plus1d_18_tv", "r2plus1d_18", (1, 3, 4, 32, 32)),
    ("s3d", "s3d", (1, 3, 8, 32, 32)),
]


@pytest.mark.parametrize("ours,peer_name,shape", TV)
def test_torchvision_cnns(ours, peer_name, shape):
    torch.manual_seed(0)
    peer = randomize(getattr(torchvision.models.video, peer_name)(weights=None, num_classes=10))
    if peer_name == "s3d":  # its fixed 2x7x7 pool needs 16x224 clips; a tiny clip ends at 1x1x1
        peer.avgpool = nn.Identity()
    x = torch.randn(shape)
    sd = peer.state_dict()
    assert detect_source(sd) == "torchvision"
    model = load_model(ours, sd)
    assert model.head.fc.out_features == 10 if hasattr(model, "head") else True
    with torch.no_grad():
        ref = peer(x)
    assert_same(model, ref, x)


@pytest.mark.parametrize("name", ["mvit_v1_b", "mvit_v2_s"])
def test_torchvision_mvit(name, monkeypatch):
    import torchvision.models.video.mvit as tv_mvit

    build = tv_mvit._mvit

    def small(*args, **kw):  # torchvision fixes 16x224; a 4x32 clip keeps the test cheap
        return build(*args, **{**kw, "spatial_size": (32, 32), "temporal_size": 4})

    monkeypatch.setattr(tv_mvit, "_mvit", small)
    torch.manual_seed(0)
    peer = getattr(tv_mvit, name)(weights=None).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    model = load_model(name, peer.state_dict(), num_frames=4, crop_size=32)
    with torch.no_grad():
        ref = peer(x)
    assert_same(model, ref, x)


def _pytorchvideo():
    pytest.importorskip("pytorchvideo")
    warnings.filterwarnings("ignore")
    from pytorchvideo.models import hub

    return hub


def _global_head(peer: nn.Module) -> nn.Module:
    for mod in list(peer.modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.AvgPool3d):
                setattr(mod, cname, nn.AdaptiveAvgPool3d(1))
            elif isinstance(child, nn.Softmax):
                setattr(mod, cname, nn.Identity())
    return randomize(peer)


@pytest.mark.parametrize(
    "name", ["slow_r50", "c2d_r50", "i3d_r50", "csn_r101", "r2plus1d_r50", "x3d_xs", "x3d_m"]
)
def test_pytorchvideo_cnns(name):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = _global_head(getattr(hub, name)())
    x = torch.randn(1, 3, 8, 64, 64)
    sd = peer.state_dict()
    assert detect_source(sd) == "pytorchvideo"
    with torch.no_grad():
        ref = peer(x)
    assert_same(load_model(name, sd), ref, x)


@pytest.mark.parametrize("name", ["slowfast_r50"])  # R101 maps the same keys (more blocks)
def test_pytorchvideo_slowfast(name):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = _global_head(getattr(hub, name)())
    model = load_model(name, peer.state_dict())
    x = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        ref = peer(list(model.pathways(x)))  # PyTorchVideo takes [slow, fast]
    assert_same(model, ref, x)


def test_pytorchvideo_mvit():
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = hub.mvit_base_16x4(spatial_size=32, temporal_size=4).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        ref = peer(x)
    assert_same(load_model("mvit_base_16x4", peer.state_dict(), num_frames=4, crop_size=32), ref, x)
    # the torchvision-style preset gets PyTorchVideo's pooling-norm epsilon from the converter
    assert_same(load_model("mvit_v1_b", peer.state_dict(), num_frames=4, crop_size=32), ref, x)


def test_files_round_trip(tmp_path):
    peer = randomize(torchvision.models.video.mc3_18(weights=None, num_classes=7))
    src = tmp_path / "mc3.pth"
    torch.save({"model_state": peer.state_dict()}, src)
    dst = tmp_path / "out" / "mc3.safetensors"
    assert convert_file(src, dst, "mc3_18") == "torchvision"
    sd = read_state_dict(dst)
    assert detect_source(sd) == "deepvideo"
    model = load_model("mc3_18", dst)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        ref = peer(x)
    assert_same(model, ref, x)
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_errors_name_the_file_and_the_problem(tmp_path):
    peer = torchvision.models.video.r3d_18(weights=None)
    src = tmp_path / "r3d.pth"
    torch.save(peer.state_dict(), src)
    with pytest.raises(ConversionError, match=r"r3d\.pth.*do not fit model 'mc3_18'.*shape mismatches"):
        load_model("mc3_18", src)
    bad = tmp_path / "pickle.pth"
    torch.save({"model": object.__new__(nn.Identity)}, bad)
    with pytest.raises(ConversionError, match=r"pickle\.pth: cannot be read as weights"):
        read_state_dict(bad)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        read_state_dict(tmp_path / "missing.pth")
    model = create_model("r3d_18", 400)
    assert load_weights(model, model.state_dict()) == "deepvideo"
