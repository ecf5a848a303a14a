"""Space-time attention schemes of TimeSformer (Bertasius et al. 2021)."""

import pytest
import torch

from deepvideo.nn.attention import MultiHeadSelfAttention, SpaceTimeBlock, TransformerBlock


def test_mhsa_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(8, 2).eval()
    x = torch.randn(2, 5, 8)
    q, k, v = attn.qkv(x).reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1) @ v
    ref = attn.proj(ref.transpose(1, 2).reshape(2, 5, 8))
    assert torch.allclose(attn(x), ref, atol=1e-6)
    assert TransformerBlock(8, 2)(x).shape == x.shape
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 4)
    with pytest.raises(ValueError, match="unknown attention mode"):
        SpaceTimeBlock(8, 2, "cubic")


def test_divided_attention_time_step_mixes_only_along_time():
    torch.manual_seed(0)
    block = SpaceTimeBlock(8, 2, "divided").eval()
    time_step = block.steps[0]
    torch.nn.init.normal_(time_step.out.weight)  # zero-initialized like TimeSformer's temporal_fc
    cls, x = torch.randn(1, 1, 8), torch.randn(1, 3, 4, 4, 8)
    _, y0 = time_step(cls, x)
    x2 = x.clone()
    x2[0, 0, 1, 2] += torch.randn(8)  # perturb the patch at (t=0, h=1, w=2) (not a constant: LayerNorm)
    _, y1 = time_step(cls, x2)
    changed = (y1 - y0).abs().sum(-1)[0] > 1e-6  # [T, H, W]
    assert changed[:, 1, 2].all() and changed.sum() == 3  # same position, every frame, nothing else


@pytest.mark.parametrize(
    "mode,n_steps", [("space", 1), ("joint", 1), ("divided", 2), ("sparse", 2), ("axial", 3)]
)
def test_attention_modes_steps(mode, n_steps):
    block = SpaceTimeBlock(8, 2, mode)
    assert len(block.steps) == n_steps
    cls, x = torch.randn(2, 1, 8), torch.randn(2, 2, 4, 4, 8)
    c, y = block(cls, x)
    assert c.shape == cls.shape and y.shape == x.shape


def test_grouping_round_trip():
    from deepvideo.nn.attention import group_tokens, ungroup_tokens

    x = torch.randn(2, 3, 4, 6, 5)
    for how in ("joint", "time", "space", "width", "height", "local", "global"):
        g, info = group_tokens(x, how)
        assert torch.equal(ungroup_tokens(g, info), x), how
    g, _ = group_tokens(x, "global")
    assert g.shape == (8, 3 * 2 * 3, 5)
    with pytest.raises(ValueError, match="even patch grid"):
        group_tokens(torch.randn(1, 2, 3, 3, 4), "local")
