"""Weight import from PySlowFast's own checkpoints (``.pyth``, ``{"model_state": ...}``).

PySlowFast is not installable here; PyTorchVideo's hub models are the same networks (its zoo
weights were trained with PySlowFast), so a PyTorchVideo model with random weights is the
reference. Its state dict is renamed into PySlowFast's key names by the table below, written
from PySlowFast's source (facebookresearch/SlowFast, slowfast/models/: stem_helper.py,
resnet_helper.py, nonlocal_helper.py, operators.py, head_helper.py, video_model_builder.py,
attention.py, common.py) independently of deepvideo's converter, then loaded with
``load_model`` and the outputs compared.

Where PySlowFast's network has a layer that PyTorchVideo's lacks (the BN on X3D's first
shortcut, non-local blocks), the layer is added to the reference model so that it computes
what the PySlowFast checkpoint computes.
"""

import re

import pytest
import torch
from test_convert import _global_head, _pytorchvideo, assert_same, randomize
from torch import nn

from deepvideo.models.convert import (
    ConversionError,
    convert_file,
    detect_source,
    load_model,
    read_state_dict,
)

# ResBlock members: PyTorchVideo module path -> PySlowFast module path (resnet_helper.ResBlock
# "branch1"/"branch1_bn"/"branch2"; BottleneckTransform / X3DTransform "a", "a_bn", "b",
# "b_bn", "se" (operators.SE "fc1", "fc2"), "c", "c_bn").
BLOCK = {
    "branch1_conv": "branch1",
    "branch1_norm": "branch1_bn",
    "branch2.conv_a": "branch2.a",
    "branch2.norm_a": "branch2.a_bn",
    "branch2.conv_b": "branch2.b",
    "branch2.norm_b": "branch2.b_bn",
    "branch2.norm_b.0": "branch2.b_bn",
    "branch2.norm_b.1.block.0": "branch2.se.fc1",
    "branch2.norm_b.1.block.2": "branch2.se.fc2",
    "branch2.conv_c": "branch2.c",
    "branch2.norm_c": "branch2.c_bn",
}
# stem_helper.ResNetBasicStem "conv"/"bn"; X3DStem "conv_xy" (1x3x3), "conv" (depthwise kx1x1), "bn"
# (PyTorchVideo's X3D stem calls its 1x3x3 conv "conv_t" and the temporal one "conv_xy").
STEM = {"conv": "conv", "norm": "bn"}
X3D_STEM = {"conv.conv_t": "conv_xy", "conv.conv_xy": "conv", "norm": "bn"}
# head_helper.ResNetBasicHead "projection"; X3DHead "conv_5", "conv_5_bn", "lin_5", "projection"
HEAD = {"proj": "head.projection"}
X3D_HEAD = {
    "pool.pre_conv": "head.conv_5",
    "pool.pre_norm": "head.conv_5_bn",
    "pool.post_conv": "head.lin_5",
    "proj": "head.projection",
}
# nonlocal_helper.Nonlocal: conv_theta / conv_phi / conv_g / conv_out and its BN "bn" ("norm" before)
NONLOCAL = {"conv_theta": "conv_theta", "conv_phi": "conv_phi", "conv_g": "conv_g", "conv_out": "conv_out"}
# video_model_builder.MViT: patch_embed (stem_helper.PatchEmbed "proj"), cls_token, pos_embed_*,
# blocks (attention.MultiScaleBlock: same member names as PyTorchVideo's), norm, head.projection
MVIT = {
    "patch_embed.patch_model": "patch_embed.proj",
    "cls_positional_encoding": "",
    "norm_embed": "norm",
    "head.proj": "head.projection",
}


def _split(key: str) -> tuple[str, str]:
    module, _, param = key.rpartition(".")
    return module, param


def cnn_to_pyslowfast(sd: dict, *, x3d: bool = False, nonlocal_norm: str = "bn") -> dict:
    """A single-pathway PyTorchVideo ResNet / X3D state dict in PySlowFast's names (stages s2..s5
    in ``ResStage`` "pathway0_res{i}", a non-local block wrapped after res block i as
    ``res_blocks.i = Sequential(block, nonlocal)`` -> "pathway0_nonlocal{i}")."""
    stage_ids = sorted({int(k.split(".")[1]) for k in sd if ".res_blocks." in k})
    stage_of = {b: s + 2 for s, b in enumerate(stage_ids)}
    out = {}
    for key, value in sd.items():
        module, param = _split(key)
        if m := re.fullmatch(r"blocks\.0\.(.+)", module):
            new = f"s1.pathway0_stem.{(X3D_STEM if x3d else STEM)[m[1]]}"
        elif m := re.fullmatch(r"blocks\.(\d+)\.res_blocks\.(\d+)\.1\.(\w+)", module):
            b, j, part = m.groups()
            part = nonlocal_norm if part == "norm" else NONLOCAL[part]
            new = f"s{stage_of[int(b)]}.pathway0_nonlocal{j}.{part}"
        elif m := re.fullmatch(r"blocks\.(\d+)\.res_blocks\.(\d+)\.(?:0\.)?(.+)", module):
            b, j, member = m.groups()
            new = f"s{stage_of[int(b)]}.pathway0_res{j}.{BLOCK[member]}"
        else:
            m = re.fullmatch(r"blocks\.\d+\.(.+)", module)
            new = (X3D_HEAD if x3d else HEAD)[m[1]]
        out[f"{new}.{param}"] = value
    return out


def slowfast_to_pyslowfast(sd: dict) -> dict:
    """SlowFast: VideoModelStem "pathway{p}_stem", ResStage "pathway{p}_res{i}" in s2..s5,
    FuseFastToSlow "s{n}_fuse.conv_f2s" / ".bn" after s1..s4, head "projection"."""
    out = {}
    for key, value in sd.items():
        module, param = _split(key)
        if m := re.fullmatch(r"blocks\.0\.multipathway_blocks\.(\d)\.(\w+)", module):
            new = f"s1.pathway{m[1]}_stem.{STEM[m[2]]}"
        elif m := re.fullmatch(r"blocks\.(\d)\.multipathway_blocks\.(\d)\.res_blocks\.(\d+)\.(.+)", module):
            b, p, j, member = m.groups()
            new = f"s{int(b) + 1}.pathway{p}_res{j}.{BLOCK[member]}"
        elif m := re.fullmatch(r"blocks\.(\d)\.multipathway_fusion\.(\w+)", module):
            new = f"s{int(m[1]) + 1}_fuse." + {"conv_fast_to_slow": "conv_f2s", "norm": "bn"}[m[2]]
        else:
            new = HEAD[re.fullmatch(r"blocks\.\d+\.(.+)", module)[1]]
        out[f"{new}.{param}"] = value
    return out


def mvit_to_pyslowfast(sd: dict, fused_qkv: bool) -> dict:
    """MViT v1. ``fused_qkv``: attention.MultiScaleAttention's ``qkv`` Linear (q, k, v stacked
    along the output, split by ``reshape(B, N, 3, heads, -1)``) instead of ``q`` / ``k`` / ``v``."""
    out = {}
    for key, value in sd.items():
        for old, new in MVIT.items():
            if key.startswith(old + "."):
                key = (new + "." if new else "") + key[len(old) + 1 :]
                break
        out[key] = value
    if fused_qkv:
        for key in [k for k in out if re.search(r"\.attn\.q\.(weight|bias)$", k)]:
            head, param = key.rsplit(".attn.q.", 1)
            parts = [out.pop(f"{head}.attn.{n}.{param}") for n in "qkv"]
            out[f"{head}.attn.qkv.{param}"] = torch.cat(parts, dim=0)
    return out


def _check(name: str, peer: nn.Module, sd: dict, x, peer_input=None, **overrides) -> nn.Module:
    assert detect_source(sd) == "pyslowfast"
    model = load_model(name, sd, **overrides)
    with torch.no_grad():
        ref = peer(x if peer_input is None else peer_input)
    assert_same(model, ref, x)
    return model


@pytest.mark.parametrize("name", ["c2d_r50", "i3d_r50", "slow_r50"])
def test_resnets(name):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = _global_head(getattr(hub, name)())
    sd = cnn_to_pyslowfast(peer.state_dict())
    assert "s2.pathway0_res0.branch2.a_bn.running_var" in sd and "head.projection.weight" in sd
    _check(name, peer, sd, torch.randn(1, 3, 8, 64, 64))


def _with_nonlocal(peer: nn.Module, where: dict[int, tuple[int, ...]]) -> nn.Module:
    """Insert PyTorchVideo NonLocal blocks (softmax, inner width C/2, 1x2x2 max pool: PySlowFast's
    I3D-NLN defaults) after res blocks ``where[stage]`` (stage 0..3 = res2..res5)."""
    from pytorchvideo.layers.nonlocal_net import create_nonlocal

    stage_ids = sorted({int(k.split(".")[1]) for k in peer.state_dict() if ".res_blocks." in k})
    for stage, blocks in where.items():
        res_blocks = peer.blocks[stage_ids[stage]].res_blocks
        for j in blocks:
            dim = res_blocks[j].branch2.conv_c.out_channels
            nl = create_nonlocal(dim_in=dim, dim_inner=dim // 2, pool_size=(1, 2, 2), instantiation="softmax")
            res_blocks[j] = nn.Sequential(res_blocks[j], nl)
    return randomize(peer)


@pytest.mark.parametrize("nonlocal_norm", ["bn", "norm"])  # PySlowFast renamed the norm "norm" -> "bn"
def test_nonlocal_i3d(nonlocal_norm):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    where = {1: (1, 3), 2: (1, 3, 5)}  # configs/Kinetics/I3D_NLN_8x8_R50.yaml NONLOCAL.LOCATION
    peer = _with_nonlocal(_global_head(hub.i3d_r50()), where)
    sd = cnn_to_pyslowfast(peer.state_dict(), nonlocal_norm=nonlocal_norm)
    assert f"s3.pathway0_nonlocal1.{nonlocal_norm}.running_mean" in sd
    assert "s4.pathway0_nonlocal5.conv_theta.weight" in sd
    model = _check("i3d_r50", peer, sd, torch.randn(1, 3, 8, 64, 64), nonlocal_blocks=where)
    assert model.layer2[2].theta.weight.shape == (256, 512, 1, 1, 1)  # after res3 block 1
    _check("nl_i3d_r50", peer, sd, torch.randn(1, 3, 8, 64, 64))  # deepvideo's preset: the same places
    # non-local blocks elsewhere in the target: named in the error, not silently shifted
    with pytest.raises(
        ConversionError, match=r"non-local blocks after res blocks \{1: \(1, 3\), 2: \(1, 3, 5\)\}"
    ):
        load_model("i3d_r50", sd, nonlocal_blocks={1: (0, 2), 2: (0, 2, 4)})


@pytest.mark.parametrize("name", ["x3d_xs", "x3d_l"])  # XS/S/M share one network; L is deeper
def test_x3d(name):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = getattr(hub, name)()
    # PySlowFast's first res2 block (24 -> 24 channels, stride 2) has a BN on its shortcut conv,
    # PyTorchVideo's none: give the reference one so it computes what the checkpoint computes
    first = peer.blocks[1].res_blocks[0]
    assert first.branch1_conv is not None and first.branch1_norm is None
    first.branch1_norm = nn.BatchNorm3d(first.branch1_conv.out_channels)
    peer = _global_head(peer)
    sd = cnn_to_pyslowfast(peer.state_dict(), x3d=True)
    assert "s2.pathway0_res0.branch1_bn.running_var" in sd
    assert "s2.pathway0_res0.branch2.se.fc1.weight" in sd and "s2.pathway0_res1.branch2.b_bn.bias" in sd
    assert sd["s1.pathway0_stem.conv_xy.weight"].shape[2:] == (1, 3, 3)
    _check(name, peer, sd, torch.randn(1, 3, 8, 64, 64))


@pytest.mark.parametrize("name", ["slowfast_r50", "slowfast_r101"])
def test_slowfast(name):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = _global_head(getattr(hub, name)())
    sd = slowfast_to_pyslowfast(peer.state_dict())
    assert "s1_fuse.conv_f2s.weight" in sd and "s4_fuse.bn.running_mean" in sd
    assert "s5.pathway1_res2.branch2.c_bn.weight" in sd
    x = torch.randn(1, 3, 16, 64, 64)
    model = load_model(name, sd)
    _check(name, peer, sd, x, peer_input=list(model.pathways(x)))


@pytest.mark.parametrize("fused_qkv", [True, False])
def test_mvit(fused_qkv):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = hub.mvit_base_16x4(spatial_size=32, temporal_size=4).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial layer norms, so that a misplaced one shows
        for m in peer.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    sd = mvit_to_pyslowfast(peer.state_dict(), fused_qkv)
    assert ("blocks.0.attn.qkv.weight" in sd) == fused_qkv and "pos_embed_spatial" in sd
    x = torch.randn(1, 3, 4, 32, 32)
    for name in ("mvit_base_16x4", "mvit_v1_b"):
        _check(name, peer, sd, x, num_frames=4, crop_size=32)


def test_pyth_file_round_trip(tmp_path):
    hub = _pytorchvideo()
    torch.manual_seed(0)
    peer = hub.x3d_xs(model_num_class=7)
    first = peer.blocks[1].res_blocks[0]
    first.branch1_norm = nn.BatchNorm3d(first.branch1_conv.out_channels)
    peer = _global_head(peer)
    src = tmp_path / "x3d_xs.pyth"
    torch.save({"model_state": cnn_to_pyslowfast(peer.state_dict(), x3d=True), "epoch": 3}, src)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        ref = peer(x)
    model = load_model("x3d_xs", weights=src)
    assert model.head.fc.out_features == 7
    assert_same(model, ref, x)
    dst = tmp_path / "out" / "x3d_xs.safetensors"
    assert convert_file(src, dst, "x3d_xs") == "pyslowfast"
    assert detect_source(read_state_dict(dst)) == "deepvideo"
    assert_same(load_model("x3d_xs", dst), ref, x)


def test_wrong_architecture(tmp_path):
    hub = _pytorchvideo()
    src = tmp_path / "x3d.pyth"
    torch.save({"model_state": cnn_to_pyslowfast(hub.x3d_xs().state_dict(), x3d=True), "epoch": 3}, src)
    with pytest.raises(
        ConversionError,
        match=r"x3d\.pyth: pyslowfast weights do not fit model 'slow_r50': \d+ missing .*\d+ unexpected",
    ):
        load_model("slow_r50", src)
