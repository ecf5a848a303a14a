"""Flow stacking for motion streams (Simonyan & Zisserman 2014)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvideo.flow.stacking import (
    backward_flow,
    bidirectional_stack,
    stack_flow,
    subtract_mean_flow,
    trajectory_stack,
)


def test_stacking_channel_order():
    fields = torch.arange(3 * 2 * 2 * 2, dtype=torch.float32).reshape(3, 2, 2, 2)
    stacked = stack_flow(fields)
    assert stacked.shape == (6, 2, 2)
    for k in range(1, 4):  # channel 2k-1 = d^x_{τ+k-1}, 2k = d^y_{τ+k-1} (1-based)
        assert torch.equal(stacked[2 * k - 2], fields[k - 1, 0])
        assert torch.equal(stacked[2 * k - 1], fields[k - 1, 1])
    batch = torch.stack([fields, fields + 1])
    assert torch.equal(stack_flow(batch)[1], stacked + 1)


def test_trajectory_follows_constant_velocity_field_exactly():
    # a field whose value depends on x: points moving by (1, 0) see the field at x, x+1, x+2
    h, w, n_fields = 8, 16, 3
    xs = torch.arange(w, dtype=torch.float32).expand(h, w)
    fields = torch.zeros(n_fields, 2, h, w)
    fields[:, 0] = 1.0  # every point moves one pixel right per frame
    fields[:, 1] = xs * 0.1  # a marker of where the point is
    traj = trajectory_stack(fields)
    for k in range(n_fields):
        expected = (xs + k).clamp(max=w - 1) * 0.1
        torch.testing.assert_close(traj[2 * k + 1], expected)
        torch.testing.assert_close(traj[2 * k], torch.ones(h, w))
    # a plain stack samples the same pixel in every field instead
    assert torch.equal(stack_flow(fields)[3], xs * 0.1)


@settings(max_examples=20, deadline=None)
@given(st.floats(-2, 2), st.floats(-2, 2))
def test_trajectory_of_uniform_field_equals_stack(u, v):
    fields = torch.tensor([u, v], dtype=torch.float32).view(1, 2, 1, 1).expand(4, 2, 6, 7).contiguous()
    torch.testing.assert_close(trajectory_stack(fields), stack_flow(fields))


def test_bidirectional_and_backward_flow():
    fw, bw = torch.ones(2, 2, 4, 4), -torch.ones(2, 2, 4, 4)
    bi = bidirectional_stack(fw, bw)
    assert bi.shape == (8, 4, 4) and bi[:4].min() == 1 and bi[4:].max() == -1
    with pytest.raises(ValueError, match="L/2"):
        bidirectional_stack(fw, bw[:1])
    rng = np.random.default_rng(0)
    base = (rng.random((40, 52)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (5, 5), 1.0)
    frames = np.stack([np.roll(base, 2 * t, axis=1)[4:-4, 8:-8] for t in range(3)])[..., None].repeat(3, -1)
    back = backward_flow(frames, method="dis")
    assert back.shape == (2, 2, 32, 36)
    assert back[:, 0, 8:-8, 8:-8].mean() == pytest.approx(-2.0, abs=0.3)


def test_mean_flow_subtraction():
    fields = torch.randn(3, 2, 5, 6) + torch.tensor([3.0, -1.0]).view(1, 2, 1, 1)
    per_field = subtract_mean_flow(fields, "field")
    torch.testing.assert_close(per_field.mean((-2, -1)), torch.zeros(3, 2), atol=1e-6, rtol=0)
    per_stack = subtract_mean_flow(fields, "stack")
    torch.testing.assert_close(per_stack.mean((0, 2, 3)), torch.zeros(2), atol=1e-6, rtol=0)
    assert not torch.allclose(per_stack.mean((-2, -1)), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="per must be"):
        subtract_mean_flow(fields, "video")
