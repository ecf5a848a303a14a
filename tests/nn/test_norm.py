"""Sub-batch batch norm: group statistics in training, population statistics in eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from deepvideo.nn.norm import SubBatchNorm2d, SubBatchNorm3d, convert_sub_batch_norm


def _reference(x, weight, bias, s, eps=1e-5):
    """Each group of s consecutive samples normalized on its own."""
    return torch.cat([F.batch_norm(p, None, None, weight, bias, True, 0.0, eps) for p in x.split(s)])


def _bn3d(c=3, seed=0):
    torch.manual_seed(seed)
    bn = nn.BatchNorm3d(c)
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    return bn


@pytest.mark.parametrize("n,s", [(8, 4), (6, 2), (7, 3), (5, 1)])
def test_training_output_uses_group_statistics(n, s):
    bn = _bn3d()
    sub = convert_sub_batch_norm(nn.Sequential(bn), s)[0]
    x = torch.randn(n, 3, 2, 3, 3) * 3 + 1
    torch.testing.assert_close(sub(x), _reference(x, bn.weight, bn.bias, s), rtol=1e-5, atol=1e-5)


def test_groups_differ_from_full_batch_norm():
    x = torch.randn(8, 3, 2, 3, 3)
    x[:4] += 5.0  # the two groups have different means
    sub = SubBatchNorm3d(3, sub_batch_size=4)
    full = nn.BatchNorm3d(3)
    out = sub(x)
    assert not torch.allclose(out, full(x), atol=1e-2)
    # each group is centred on its own
    assert out[:4].mean(dim=(0, 2, 3, 4)).abs().max() < 1e-5
    assert out[4:].mean(dim=(0, 2, 3, 4)).abs().max() < 1e-5


def test_running_stats_are_full_batch_statistics_and_eval_matches_batchnorm():
    x = torch.randn(8, 3, 2, 3, 3) * 2 + 0.5
    sub, full = SubBatchNorm3d(3, 2), nn.BatchNorm3d(3)
    for _ in range(3):
        sub(x)
        full(x)
    torch.testing.assert_close(sub.running_mean, full.running_mean)
    torch.testing.assert_close(sub.running_var, full.running_var)
    assert int(sub.num_batches_tracked) == 3
    sub.eval()
    full.eval()
    torch.testing.assert_close(sub(x), full(x))


def test_sub_batch_at_least_batch_is_plain_batchnorm():
    bn = _bn3d()
    ref = _bn3d()
    sub = convert_sub_batch_norm(nn.Sequential(bn), 16)[0]
    x = torch.randn(4, 3, 2, 3, 3)
    torch.testing.assert_close(sub(x), ref(x))
    torch.testing.assert_close(sub.running_var, ref.running_var)


def test_2d_and_gradients_match_reference():
    torch.manual_seed(1)
    x = torch.randn(6, 4, 5, 5, requires_grad=True)
    sub = SubBatchNorm2d(4, 3)
    nn.init.normal_(sub.weight)
    out = sub(x)
    (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
    gx, gw = x.grad.clone(), sub.weight.grad.clone()
    x2 = x.detach().clone().requires_grad_(True)
    w2 = sub.weight.detach().clone().requires_grad_(True)
    b2 = sub.bias.detach().clone().requires_grad_(True)
    ref = _reference(x2, w2, b2, 3)
    (ref * torch.arange(ref.numel()).reshape(ref.shape).sin()).sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, x2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw, w2.grad, rtol=1e-4, atol=1e-5)


def test_convert_shares_parameters_buffers_and_keys():
    model = nn.Sequential(
        nn.Conv3d(3, 4, 1),
        nn.BatchNorm3d(4),
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),
        nn.BatchNorm1d(4),
    )
    model.eval()
    keys = list(model.state_dict())
    w, rm = model[1].weight, model[1].running_mean
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    convert_sub_batch_norm(model, 4)
    assert isinstance(model[1], SubBatchNorm3d) and isinstance(model[1], nn.BatchNorm3d)
    assert isinstance(model[2][1], SubBatchNorm2d)
    assert type(model[3]) is nn.BatchNorm1d  # left alone
    assert model[1].weight is w and model[1].running_mean is rm
    assert not model[1].training  # mode kept
    assert list(model.state_dict()) == keys
    model[1].weight.grad = torch.ones(4)
    opt.step()  # the optimizer built before conversion trains the shared parameter
    torch.testing.assert_close(model[1].weight, torch.zeros(4))
    convert_sub_batch_norm(model, 2)
    assert model[1].sub_batch_size == 2
    with pytest.raises(ValueError, match="sub_batch_size"):
        convert_sub_batch_norm(model, -1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), s=st.integers(1, 9), seed=st.integers(0, 1000))
def test_every_group_is_standardized(n, s, seed):
    torch.manual_seed(seed)
    x = torch.randn(n, 2, 3, 4) * 4 - 2
    out = SubBatchNorm2d(2, s)(x)  # weight 1, bias 0
    size = s if s < n else n
    for part in out.split(size):
        if part.shape[0] * 12 > 1:
            mean = part.mean(dim=(0, 2, 3))
            var = part.var(dim=(0, 2, 3), unbiased=False)
            assert mean.abs().max() < 1e-4
            assert (var - 1).abs().max() < 1e-2
