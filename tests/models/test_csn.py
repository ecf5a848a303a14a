"""Channel-separated networks (Tran et al. 2019)."""

import pytest
import torch

from deepvideo.models import create_model, list_models


def test_ir_and_ip_convs():
    ir = create_model("ir_csn_50", 10, width=8)
    conv_b = ir.layer1[0].conv_b
    assert conv_b.groups == conv_b.in_channels and conv_b.kernel_size == (3, 3, 3)
    ip = create_model("ip_csn_50", 10, width=8)
    seq = ip.layer1[0].conv_b
    assert seq[0].kernel_size == (1, 1, 1) and seq[1].groups == seq[1].in_channels


@pytest.mark.parametrize("name", [i.name for i in list_models("csn")])
def test_tiny_forward_backward(name, samples_independent):
    m = create_model(name, 4, width=8)
    assert samples_independent(m, {"rgb": torch.randn(2, 3, 4, 32, 32)}).shape == (2, 4)
    m(torch.randn(1, 3, 4, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
