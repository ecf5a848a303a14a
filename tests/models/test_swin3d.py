"""Video Swin Transformer (Liu et al., CVPR 2022): sizes, shifted windows, torchvision weights."""

import re

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import StochasticDepth

from deepvideo.models import create_model, get_model_info, list_models
from deepvideo.models.complexity import count_parameters, profile_model
from deepvideo.models.convert import ConversionError, convert_file, detect_source, load_model
from deepvideo.models.swin3d import (
    PatchMerging,
    SwinBlock3d,
    fit_window,
    relative_position_index,
    shift_mask,
    to_windows,
)


def test_presets_registered_with_the_papers_clip():
    names = {i.name for i in list_models("swin3d")}
    assert names == {"swin3d_t", "swin3d_s", "swin3d_b"}
    spec = create_model("swin3d_t", 5, depths=(1, 1), num_heads=(1, 2), embed_dim=8).input_spec
    assert (spec.num_frames, spec.frame_stride, spec.crop_size) == (32, 2, 224)


@pytest.mark.parametrize("name", ["swin3d_t", "swin3d_s", "swin3d_b"])
def test_size_and_cost_match_paper_and_torchvision(name):
    """Parameters exactly torchvision's; GFLOPs per 32x224² view the paper's (registry figures)."""
    prof = profile_model(name)  # meta device
    with torch.device("meta"):
        peer = getattr(torchvision.models.video, name)(weights=None)
    assert prof.params == count_parameters(peer)
    assert prof.gflops == pytest.approx(get_model_info(name).published.gflops, rel=5e-3)  # paper rounds


def test_patch_embedding_grid():
    with torch.device("meta"):
        model = create_model("swin3d_t")
        tokens = model.patch_embed(torch.zeros(1, 3, 32, 224, 224))
    assert tuple(tokens.shape) == (1, 16, 56, 56, 96)  # 2x4x4 tubelets


def test_tiny_forward_backward():
    torch.manual_seed(0)
    model = create_model("swin3d_t", 5)
    out = model({"rgb": torch.randn(2, 3, 4, 64, 64)})
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_stochastic_depth_rises_linearly():
    model = create_model("swin3d_t", 5, drop_path=0.2)
    rates = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    assert len(rates) == 12
    assert all(m.mode == "row" for m in model.modules() if isinstance(m, StochasticDepth))
    assert rates == pytest.approx([0.2 * i / 11 for i in range(12)])


def test_dropped_paths_leave_the_identity_in_training_only():
    torch.manual_seed(0)
    block = SwinBlock3d(8, 2, (2, 2, 2), (0, 0, 0), drop_path=1.0)
    x = torch.randn(3, 2, 4, 4, 8)
    assert torch.equal(block.train()(x), x)  # both residual branches dropped for every sample
    assert not torch.allclose(block.eval()(x), x)


def test_fit_window_clips_and_unshifts():
    assert fit_window((16, 56, 56), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (4, 3, 3))
    assert fit_window((8, 7, 14), (8, 7, 7), (4, 3, 3)) == ((8, 7, 7), (0, 0, 3))
    assert fit_window((2, 4, 4), (8, 7, 7), (4, 3, 3)) == ((2, 4, 4), (0, 0, 0))


def test_relative_position_index_addresses_offsets():
    window = (2, 3, 3)
    idx = relative_position_index(window)
    coords = torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(3))
    n = len(coords)
    assert idx.shape == (n, n)
    offsets = {}
    for i in range(n):
        for j in range(n):
            offsets.setdefault(tuple((coords[i] - coords[j]).tolist()), set()).add(int(idx[i, j]))
    assert all(len(v) == 1 for v in offsets.values())  # one table entry per 3D offset
    assert len({next(iter(v)) for v in offsets.values()}) == len(offsets) == 3 * 5 * 5
    assert int(idx.max()) == 3 * 5 * 5 - 1


def test_shift_mask_allows_only_tokens_contiguous_before_the_roll():
    size, window, shift = (4, 6, 6), (2, 3, 3), (1, 1, 2)
    mask = shift_mask(size, window, shift)
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in size], indexing="ij"), -1)  # rolled coords
    pos = to_windows(grid[None].float(), window)[0].long()  # [nW, N, 3]
    orig = (pos + torch.tensor(shift)) % torch.tensor(size)  # where each token came from
    same = ((orig[:, :, None] - orig[:, None, :]) == (pos[:, :, None] - pos[:, None, :])).all(-1)
    assert mask.shape == (2 * 2 * 2, 18, 18)
    assert torch.equal(mask == 0, same)
    assert (mask[~same] == -100.0).all()


def test_patch_merging_groups_2x2_neighbours():
    merge = PatchMerging(1)
    with torch.no_grad():
        merge.norm = nn.Identity()
        merge.reduction = nn.Identity()
    x = torch.arange(3 * 5, dtype=torch.float32).reshape(1, 1, 3, 5, 1)  # odd sizes are padded
    y = merge(x)
    assert y.shape == (1, 1, 2, 3, 4)
    assert y[0, 0, 0, 0].tolist() == [0.0, 5.0, 1.0, 6.0]  # (0,0), (1,0), (0,1), (1,1)
    assert y[0, 0, 1, 2].tolist() == [14.0, 0.0, 0.0, 0.0]


def _peer_t(num_classes=10):
    torch.manual_seed(0)
    peer = torchvision.models.video.swin3d_t(weights=None, num_classes=num_classes)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial norms and biases so a wrong mapping shows
        for m in peer.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.02)
    return peer.eval()


# 18x64x64 -> 9x16x16 tokens: temporal and spatial shifts with padding; 5x50x70: odd sizes,
# windows shrunk to the grid in later stages.
SHAPES = [(1, 3, 18, 64, 64), (2, 3, 5, 50, 70)]


@pytest.fixture(scope="module")
def peer_t():
    return _peer_t()


def test_torchvision_weights_give_the_same_outputs(peer_t):
    sd = peer_t.state_dict()
    assert detect_source(sd) == "torchvision"
    model = load_model("swin3d_t", sd)
    assert model.head.out_features == 10
    for shape in SHAPES:
        x = torch.randn(shape)
        with torch.no_grad():
            ref, out = peer_t(x), model.eval()({"rgb": x})
        assert out.shape == ref.shape == (shape[0], 10)
        assert ref.abs().max() > 1e-2
        assert (out - ref).abs().max() <= 1e-4


def _official_layout(sd):
    """torchvision keys -> the Video Swin authors' mmaction2 checkpoint keys."""
    out = {}
    for key, value in sd.items():
        if key.endswith("relative_position_index"):
            continue
        new = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.3.", ".mlp.fc2.")
        m = re.match(r"features\.(\d+)\.(.+)$", new)
        if m:
            i, rest = int(m[1]), m[2]
            new = f"layers.{i // 2}.blocks.{rest}" if i % 2 == 0 else f"layers.{i // 2}.downsample.{rest}"
        if new.startswith("head."):
            out["cls_head.fc_cls." + new[5:]] = value
        else:
            out["backbone." + new] = value
    return out


def test_official_checkpoint_layout(peer_t):
    sd = _official_layout(peer_t.state_dict())
    assert "backbone.layers.2.blocks.5.mlp.fc2.weight" in sd
    assert "backbone.layers.1.downsample.norm.bias" in sd
    assert detect_source(sd) == "torchvision"
    model = load_model("swin3d_t", sd)
    x = torch.randn(SHAPES[0])
    with torch.no_grad():
        assert (model.eval()(x) - peer_t(x)).abs().max() <= 1e-4


def test_convert_file_round_trip(peer_t, tmp_path):
    src = tmp_path / "swin_tiny_patch244_window877.pth"
    torch.save({"state_dict": _official_layout(peer_t.state_dict())}, src)
    dst = tmp_path / "out" / "swin3d_t.safetensors"
    assert convert_file(src, dst, "swin3d_t") == "torchvision"
    model = load_model("swin3d_t", dst)  # class count read back from the converted file
    assert model.head.out_features == 10
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert (model.eval()(x) - peer_t(x)).abs().max() <= 1e-4
    assert not list(dst.parent.glob("*.tmp"))


def test_wrong_variant_is_refused(peer_t):
    with pytest.raises(ConversionError, match=r"do not fit model 'swin3d_t'.*shape mismatches"):
        load_model("swin3d_t", peer_t.state_dict(), embed_dim=48)
