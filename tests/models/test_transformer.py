"""TimeSformer attention variants, ViViT factorized encoder, MViT v1/v2."""

import pytest
import torch

from deepvideo.models import create_model, list_models


def _tiny(name):
    if name.startswith("timesformer"):
        return create_model(name, 5, num_frames=2, crop_size=32, patch=8, dim=16, depth=1, heads=2), (2, 32)
    if name.startswith("vivit"):
        return create_model(
            name, 5, num_frames=4, crop_size=32, patch=8, dim=16, spatial_depth=1, temporal_depth=1, heads=2
        ), (4, 32)
    return create_model(name, 5, num_frames=4, crop_size=32, embed_dim=8, depth=4, dim_mul_at=(1, 3)), (4, 32)


@pytest.mark.parametrize("name", [i.name for i in list_models("transformer")])
def test_tiny_forward_backward(name):
    model, (t, s) = _tiny(name)
    out = model({"rgb": torch.randn(2, 3, t, s, s)})
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "temporal_fc" not in n)


def test_dropped_paths_leave_the_skip_connection_in_training_only():
    from deepvideo.models.transformer import MultiscaleBlock

    torch.manual_seed(0)
    block = MultiscaleBlock(8, 8, 1, (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1),
                            input_size=(2, 2, 2), version=2, drop_path=1.0)
    x = torch.randn(3, 1 + 8, 8)  # class token + 2x2x2 tokens
    out, thw = block.train()(x, (2, 2, 2))
    assert thw == (2, 2, 2) and torch.equal(out, x)
    assert not torch.allclose(block.eval()(x, (2, 2, 2))[0], x)


def test_mvit_pooling_schedule():
    with torch.device("meta"):
        m = create_model("mvit_v2_s", 400)
        v1 = create_model("mvit_v1_b", 400)
    strides_q = [b.attn.pool_q.pool.stride if b.attn.pool_q else None for b in m.blocks]
    assert [i for i, s in enumerate(strides_q) if s == (1, 2, 2)] == [1, 3, 14]
    assert m.blocks[0].attn.pool_k.pool.stride == (1, 8, 8) and m.blocks[15].attn.pool_k.pool.stride == (
        1,
        1,
        1,
    )
    assert m.blocks[-1].mlp[3].out_features == 768 and m.blocks[0].attn.rel_pos_h is not None
    assert v1.blocks[0].attn.rel_pos_h is None and v1.pos_encoding.spatial_pos.shape == (56 * 56, 96)
    with pytest.raises(ValueError, match="token grid"):
        _tiny("mvit_v1_b")[0](torch.randn(1, 3, 8, 32, 32))


def test_mvit_v2_relative_bias_equals_explicit_formula():
    """Attention with the bias riding in the head dimension = softmax(q kᵀ s + bias) v, written out."""
    from deepvideo.models.transformer import PoolingAttention, relative_index

    torch.manual_seed(0)
    attn = PoolingAttention(8, 8, 2, (3, 3, 3), (1, 2, 2), (3, 3, 3), (1, 2, 2), input_size=(2, 4, 4),
                            rel_pos=True, residual_pool=True)
    x = torch.randn(2, 1 + 2 * 4 * 4, 8)
    out, q_thw = attn(x, (2, 4, 4))
    assert q_thw == (2, 2, 2)
    b, n, c = 2, 2, 4
    q, k, v = attn.qkv(x).reshape(b, -1, 3, n, c).permute(2, 0, 3, 1, 4)
    k, v = attn.pool_k(k, (2, 4, 4))[0], attn.pool_v(v, (2, 4, 4))[0]
    q = attn.pool_q(q, (2, 4, 4))[0]
    pos = [(t, h, w) for t in range(2) for h in range(2) for w in range(2)]
    rt, rh, rw = (table[relative_index(2, 2)] for table in (attn.rel_pos_t, attn.rel_pos_h, attn.rel_pos_w))
    bias = torch.zeros(b, n, 9, 9)
    for i, (ti, hi, wi) in enumerate(pos):
        for j, (tj, hj, wj) in enumerate(pos):
            bias[:, :, 1 + i, 1 + j] = (q[:, :, 1 + i] * (rt[ti, tj] + rh[hi, hj] + rw[wi, wj])).sum(-1)
    weights = torch.softmax(q @ k.transpose(-1, -2) * c**-0.5 + bias, -1)
    ref = weights @ v
    ref = torch.cat([ref[:, :, :1], ref[:, :, 1:] + q[:, :, 1:]], dim=2).transpose(1, 2).reshape(b, 9, 8)
    torch.testing.assert_close(out, attn.project(ref), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert attn.rel_pos_t.grad is not None and attn.rel_pos_t.grad.abs().sum() > 0
