"""Dynamic images (Bilen et al. 2016): approximate rank pooling and the dynamic-image network."""

import pytest
import torch

from deepvideo.models import create_model, list_models
from deepvideo.models.dynamic_images import (
    DynamicImageNet,
    approximate_rank_pooling,
    minmax_rescale,
    rank_pool_coefficients,
)


@pytest.mark.parametrize("T", [1, 2, 5, 10])
def test_coefficients_follow_the_formula(T):
    """α_t = 2(T − t + 1) − (T + 1)(H_T − H_{t−1}), H_t the harmonic numbers, H_0 = 0."""
    def harmonic(n):
        return sum(1.0 / i for i in range(1, n + 1))

    expected = [2 * (T - t + 1) - (T + 1) * (harmonic(T) - harmonic(t - 1)) for t in range(1, T + 1)]
    alpha = rank_pool_coefficients(T, torch.float64)
    torch.testing.assert_close(alpha, torch.tensor(expected, dtype=torch.float64))
    assert abs(alpha.sum().item()) < 1e-9  # a static clip pools to zero


def test_known_values_and_order():
    two, three = rank_pool_coefficients(2, torch.float64), rank_pool_coefficients(3, torch.float64)
    torch.testing.assert_close(two, torch.tensor([-0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(three, torch.tensor([-4 / 3, 2 / 3, 2 / 3], dtype=torch.float64))
    alpha = rank_pool_coefficients(10)
    assert alpha[0] == alpha.min() and alpha[-1] > 0 and alpha[:2].sum() < 0 < alpha[5:].sum()
    with pytest.raises(ValueError, match="at least one frame"):
        rank_pool_coefficients(0)


def test_pooling_is_the_weighted_sum_over_time_and_sees_direction():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 4, 4)
    alpha = rank_pool_coefficients(6)
    expected = sum(alpha[t] * x[:, :, t] for t in range(6))
    torch.testing.assert_close(approximate_rank_pooling(x), expected)
    static = x[:, :, :1].expand(-1, -1, 6, -1, -1)
    assert approximate_rank_pooling(static).abs().max() < 1e-5
    ramp = torch.arange(6.0).view(1, 1, 6, 1, 1).expand(1, 1, 6, 2, 2)  # brightening
    assert torch.all(approximate_rank_pooling(ramp) > 0) and torch.all(approximate_rank_pooling(-ramp) < 0)


def test_minmax_rescale_per_sample_and_channel():
    d = torch.randn(2, 3, 5, 5) * 7 + 3
    r = minmax_rescale(d)
    assert torch.allclose(r.amin(dim=(2, 3)), torch.zeros(2, 3))
    assert torch.allclose(r.amax(dim=(2, 3)), torch.ones(2, 3))


@pytest.mark.parametrize("name", [i.name for i in list_models("dynamic_images") if i.name.endswith("_small")])
def test_small_networks_forward_backward(name, samples_independent):
    model = create_model(name, 4, width=0.125)
    key = model.modality
    channels = 3 if key == "rgb" else 2
    batch = {key: torch.randn(2, channels, 16, 32, 32)}
    assert model.dynamic_images(batch[key]).shape == (2, 3, channels, 32, 32)  # windows at 0, 4, 8
    out = model(batch)
    assert out.shape == (2, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    samples_independent(model, {key: torch.randn(2, channels, 16, 32, 32)})


def test_errors_name_the_problem():
    model = create_model("dynamic_image_small", 4, width=0.125)
    with pytest.raises(ValueError, match="fewer than the dynamic-image window 8"):
        model({"rgb": torch.randn(1, 3, 4, 32, 32)})
    with pytest.raises(KeyError, match="batch\\['rgb'\\]"):
        model({"flow": torch.randn(1, 2, 16, 32, 32)})
    with pytest.raises(ValueError, match="'rgb' or 'flow'"):
        DynamicImageNet(torch.nn.Identity(), "depth")
    with torch.device("meta"):
        big = create_model("dynamic_image_r50", 101)
    assert big.window == 10 and big.stride == 6 and big.input_spec.num_frames == 22
