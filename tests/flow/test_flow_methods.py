"""compute_flow input forms and the OpenCV methods on ground truth."""

import numpy as np
import pytest
import torch

from deepvideo.flow import compute_flow
from deepvideo.flow.groundtruth import epe, make_sample


@pytest.fixture(scope="module")
def translation():
    return make_sample("translation", 48, 64, seed=3, max_disp=2.5)


@pytest.mark.parametrize("method", ["dis", "farneback", "opencv-tvl1"])
def test_opencv_methods_on_translation(method, translation):
    s = translation
    flow = compute_flow((s.prev[None], s.next[None]), method=method)
    assert flow.dtype == torch.float32 and flow.shape == (1, 2, 48, 64)
    assert epe(flow[0], s.flow, s.valid) < 0.35
    assert epe(flow[0], s.flow, s.valid) < 0.2 * epe(np.zeros_like(s.flow), s.flow, s.valid)


def test_sequence_equals_pairs_and_torch_input(translation):
    s = translation
    frames = np.stack([s.prev, s.next, s.prev])
    seq = compute_flow(frames, method="dis")
    assert seq.shape == (2, 2, 48, 64)
    pairs = compute_flow((frames[:-1], frames[1:]), method="dis")
    assert torch.equal(seq, pairs)
    assert torch.equal(compute_flow(torch.from_numpy(frames), method="dis"), seq)


def test_bad_inputs():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown flow method"):
        compute_flow(frames, method="brox")
    with pytest.raises(ValueError, match="at least 2 frames"):
        compute_flow(frames[:1])
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(frames.astype(np.float32), method="dis")
    with pytest.raises(ValueError, match="differ in shape"):
        compute_flow((frames, frames[:2]))
    with pytest.raises(ValueError, match="unknown DIS preset"):
        compute_flow(frames, method="dis", preset="slow")


def test_tvl1_through_compute_flow_sequence_and_pairs(translation):
    s = translation
    frames = torch.from_numpy(np.stack([s.prev, s.next, s.prev]))
    seq = compute_flow(frames, method="tvl1", preset="fast", compile=False)
    pairs = compute_flow((frames[:-1], frames[1:]), method="tvl1", preset="fast", compile=False)
    assert seq.shape == (2, 2, 48, 64) and seq.dtype == torch.float32
    torch.testing.assert_close(seq, pairs)
    assert epe(seq[0], s.flow, s.valid) < 0.3
    assert epe(seq[1], -s.flow, s.valid) < 0.6  # the way back
