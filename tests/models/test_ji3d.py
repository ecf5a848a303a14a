"""3D CNN of Ji et al. (TPAMI 2013): hardwired channels and the paper's map counts."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.ji3d import Ji3DCNN, hardwired_channels


def test_paper_map_counts_and_sizes():
    model = Ji3DCNN(3)
    assert model.num_maps == 78  # 13 x 6 maps after C4 / S5
    rgb, flow = torch.randn(2, 3, 7, 60, 40), torch.randn(2, 2, 6, 60, 40)
    image = torch.cat(hardwired_channels(rgb), 1)
    c2 = model.c2_image(image)
    c2f = model.c2_flow(flow)
    assert c2.shape[1] * c2.shape[2] + c2f.shape[1] * c2f.shape[2] == 46  # 23 x 2 maps
    assert c2.shape[-2:] == (54, 34)
    c4 = model.c4_image(torch.nn.functional.avg_pool3d(c2, (1, 2, 2)))
    assert c4.shape[-2:] == (21, 12)
    assert model.c6.kernel_size == (7, 4) and model.c6.out_channels == 128
    out = model({"rgb": rgb, "flow": flow})
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_hardwired_channels():
    ramp = torch.arange(5.0).view(1, 1, 1, 1, 5).expand(1, 3, 2, 4, 5)
    gray, gx, gy = hardwired_channels(ramp)
    assert torch.allclose(gray, ramp[:, :1], atol=1e-5)  # weights sum to 1
    assert torch.allclose(gx, torch.ones_like(gx)) and torch.allclose(gy, torch.zeros_like(gy))


def test_square_crop_is_centre_cropped_to_60x40():
    model = Ji3DCNN(3).eval()
    with torch.no_grad():
        y = model({"rgb": torch.randn(1, 3, 7, 60, 60), "flow": torch.randn(1, 2, 6, 60, 60)})
    assert y.shape == (1, 3)


@pytest.mark.parametrize("size,frames", [((32, 32), 5), ((48, 40), 9)])
def test_other_sizes_without_flow(size, frames, samples_independent):
    model = Ji3DCNN(4, num_frames=frames, input_size=size, hardwired_flow=False)
    assert samples_independent(model, {"rgb": torch.randn(2, 3, frames, *size)}).shape == (2, 4)


def test_rgb_input_and_errors():
    model = Ji3DCNN(2, hardwired=False)
    assert model({"rgb": torch.randn(1, 3, 7, 60, 40)}).shape == (1, 2)
    with pytest.raises(KeyError, match="flow"):
        Ji3DCNN(2)({"rgb": torch.randn(1, 3, 7, 60, 40)})
    with pytest.raises(ValueError, match="smaller than"):
        Ji3DCNN(2, hardwired_flow=False)({"rgb": torch.randn(1, 3, 7, 30, 30)})
    with pytest.raises(ValueError, match="too small"):
        Ji3DCNN(2, input_size=(20, 20))


def test_presets():
    model = create_model("ji3d_small", num_classes=3).eval()
    with torch.no_grad():
        assert model({"rgb": torch.randn(1, 3, 7, 48, 48)}).shape == (1, 3)
    assert create_model("ji3d", num_classes=3).input_spec.flow_stack == 6
