"""ViViT Models 1, 3, 4: shapes, gradients, attention structure, tubelet init, published sizes."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model, get_model_info, list_models
from deepvideo.models.complexity import count_parameters, profile_model
from deepvideo.models.vivit import (
    FactorisedDotProductAttention,
    FactorisedSelfAttentionBlock,
    ViViT,
    tubelet_from_patch_embed,
)

TINY = {"num_frames": 4, "crop_size": 16, "patch": 8, "dim": 16, "depth": 1, "heads": 2}


@pytest.mark.parametrize("name", [i.name for i in list_models("vivit")])
def test_tiny_forward_backward(name, samples_independent):
    torch.manual_seed(0)
    model = create_model(name, 5, **TINY)
    out = model({"rgb": torch.randn(2, 3, 4, 16, 16)})
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    samples_independent(model, {"rgb": torch.randn(2, 3, 4, 16, 16)})


def test_central_frame_tubelet_on_a_static_clip_is_the_2d_patch_filter():
    torch.manual_seed(0)
    conv2d = nn.Conv2d(3, 8, 4, stride=4)
    tube = tubelet_from_patch_embed(conv2d, 3)
    assert tube.kernel_size == (3, 4, 4) and tube.stride == (3, 4, 4)
    assert torch.equal(tube.weight[:, :, 1], conv2d.weight) and not tube.weight[:, :, [0, 2]].any()
    frame = torch.randn(2, 3, 8, 8)
    clip = frame.unsqueeze(2).expand(-1, -1, 6, -1, -1)  # constant in time
    out = tube(clip)
    assert out.shape == (2, 8, 2, 2, 2)
    for t in range(2):
        torch.testing.assert_close(out[:, :, t], conv2d(frame))
    with pytest.raises(ValueError, match="stride = kernel"):
        tubelet_from_patch_embed(nn.Conv2d(3, 8, 4, stride=2), 2)


def test_factorised_self_attention_block_is_space_then_time_then_mlp():
    """y_s = MSA(LN(z)) + z per frame; y_t = MSA(LN(y_s)) + y_s per position; z' = MLP(LN(y_t)) + y_t."""
    torch.manual_seed(0)
    block = FactorisedSelfAttentionBlock(8, 2).eval()
    z = torch.randn(2, 3, 2, 2, 8)  # B, T, H, W, C
    b, t, h, w, c = z.shape
    ys = torch.stack([z[:, i].reshape(b, h * w, c) for i in range(t)], 1)
    ys = ys + torch.stack([block.attn_space(block.norm_space(ys[:, i])) for i in range(t)], 1)
    ys = ys.reshape(b, t, h, w, c)
    yt = ys.reshape(b, t, h * w, c).clone()
    for s in range(h * w):
        yt[:, :, s] = yt[:, :, s] + block.attn_time(block.norm_time(yt[:, :, s]))
    yt = yt.reshape(b, t, h, w, c)
    expected = yt + block.mlp(block.norm_mlp(yt))
    torch.testing.assert_close(block(z), expected)


def test_factorised_dot_product_heads_see_only_their_frame_or_their_position():
    torch.manual_seed(0)
    attn = FactorisedDotProductAttention(8, 2)
    x = torch.randn(1, 3, 2, 2, 8, requires_grad=True)
    attn(x)[0, 1, 0, 1].sum().backward()  # output token at t=1, position (0, 1)
    reached = x.grad[0].abs().sum(-1) > 0  # [T, H, W]
    expected = torch.zeros(3, 2, 2, dtype=torch.bool)
    expected[1] = True  # the same frame (space heads)
    expected[:, 0, 1] = True  # the same position (time heads)
    assert torch.equal(reached, expected)
    # written out: softmax(q kᵀ/√d) v per half, heads concatenated, projected
    q, k, v = attn.qkv(x).reshape(1, 3, 4, 3, 2, 4).permute(3, 0, 4, 1, 2, 5)[:, 0]  # [heads, T, S, d]
    space = torch.softmax(q[0] @ k[0].transpose(-1, -2) / 2.0, -1) @ v[0]  # [T, S, d]
    qt, kt, vt = (z[1].transpose(0, 1) for z in (q, k, v))  # [S, T, d]
    time = (torch.softmax(qt @ kt.transpose(-1, -2) / 2.0, -1) @ vt).transpose(0, 1)
    expected_out = attn.proj(torch.cat([space, time], -1).reshape(1, 3, 2, 2, 8))
    torch.testing.assert_close(attn(x), expected_out)
    with pytest.raises(ValueError, match="even head count"):
        FactorisedDotProductAttention(9, 3)


def test_model_4_has_model_1_parameters_and_model_3_adds_a_temporal_attention_per_block():
    one, three, four = (ViViT(5, model=m, **TINY) for m in (1, 3, 4))
    attn = 4 * 16 * 16 + 4 * 16 + 2 * 16  # qkv + proj weights and biases, one LayerNorm
    assert count_parameters(four) == count_parameters(one) - 16 - 16  # no class token, one pos fewer
    assert count_parameters(three) == count_parameters(four) + TINY["depth"] * attn


@pytest.mark.parametrize("name", ["vivit_b_16x2_joint", "vivit_b_16x2_fsa", "vivit_b_16x2_fdp", "vivit_b_fe"])
def test_published_vivit_b_sizes_within_one_percent(name):
    pub = get_model_info(name).published
    with torch.device("meta"):
        params = count_parameters(create_model(name, 400)) / 1e6
    assert params == pytest.approx(pub.params_m, rel=0.01)


def test_published_gflops_of_model_4_within_five_percent():
    pub = get_model_info("vivit_b_16x2_fdp").published
    assert profile_model("vivit_b_16x2_fdp").gflops == pytest.approx(pub.gflops, rel=0.05)


def test_wrong_clip_and_model_number_fail_loudly():
    with pytest.raises(ValueError, match="token grid"):
        ViViT(5, model=3, **TINY)(torch.randn(1, 3, 6, 16, 16))
    with pytest.raises(ValueError, match="Model 2 is vivit_b_fe"):
        ViViT(5, model=2)
    with pytest.raises(ValueError, match="tubelets"):
        ViViT(5, num_frames=5)
