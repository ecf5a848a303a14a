"""C3D (Tran et al. 2015)."""

import pytest
import torch
from torch import nn

from deepvideo.models import create_model, list_models
from deepvideo.models.complexity import count_parameters


def test_architecture_matches_paper():
    with torch.device("meta"):
        m = create_model("c3d", 101)
    convs = [x for x in m.modules() if isinstance(x, nn.Conv3d)]
    pools = [x for x in m.modules() if isinstance(x, nn.MaxPool3d)]
    assert len(convs) == 8 and all(c.kernel_size == (3, 3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert len(pools) == 5 and pools[0].kernel_size == (1, 2, 2) and pools[1].kernel_size == (2, 2, 2)
    assert m.fc6.in_features == 8192 and m.fc6.out_features == 4096 and m.fc7.out_features == 4096
    assert m.input_spec.num_frames == 16 and m.input_spec.crop_size == 112


@pytest.mark.parametrize("name", [i.name for i in list_models("c3d")])
def test_tiny_forward_backward(name):
    m = create_model(name, 7, crop_size=32, width=4, fc_width=16).eval()
    out = m({"rgb": torch.randn(1, 3, 16, 32, 32)})
    assert out.shape == (1, 7)
    out.sum().backward()
    assert m.features[0].weight.grad is not None


def test_wrong_clip_size_is_explained():
    m = create_model("c3d", 7, crop_size=32, width=4, fc_width=16).eval()
    with pytest.raises(ValueError, match="num_frames/crop_size"):
        m(torch.randn(1, 3, 16, 64, 64))
    assert count_parameters(m) > 0
