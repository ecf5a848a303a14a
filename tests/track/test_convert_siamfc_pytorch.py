"""siamfc-pytorch (huanglianghua) weights <-> deepvideo SiamFC: key table, BN eps, outputs equal."""

from __future__ import annotations

import copy

import pytest
import torch

from deepvideo.models.convert.files import ConversionError
from deepvideo.track.convert import convert_tracker_file, convert_tracker_state, find_layout
from deepvideo.track.convert import siamfc_pytorch as port
from deepvideo.track.siamfc import SiamFC


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def random_siamfc(seed: int = 0) -> SiamFC:
    torch.manual_seed(seed)
    model = SiamFC(width=0.1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(1e-6, 1e-4)  # small variances: the eps difference shows
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def inputs():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 127, 127, generator=g) * 255, torch.rand(2, 3, 255, 255, generator=g) * 255


def test_key_table_is_the_ports_alexnet_v1():
    table = port.key_table()
    assert table["backbone.conv1.0.weight"] == "features.0.weight"
    assert table["backbone.conv1.1.running_var"] == "features.1.running_var"
    assert table["backbone.conv2.0.weight"] == "features.4.weight"
    assert table["backbone.conv4.1.weight"] == "features.12.weight"
    assert table["backbone.conv5.0.bias"] == "features.14.bias"
    assert not any(k.startswith("backbone.conv5.1") for k in table)
    assert set(table.values()) | {"bias"} == set(SiamFC(width=0.1).state_dict())
    assert (port.PORT_EPS, port.OUR_EPS) == (1e-6, 1e-5)


def test_round_trip_through_the_ports_names_gives_equal_outputs():
    model = random_siamfc()
    foreign = port.LAYOUT.from_deepvideo(model.state_dict())
    assert set(foreign) == set(port.key_table())
    assert find_layout("siamfc", foreign).source == "siamfc-pytorch"
    converted, layout = convert_tracker_state(foreign, "siamfc")
    assert layout.source == "siamfc-pytorch" and converted.channels == model.channels
    z, x = inputs()
    with torch.no_grad():
        assert torch.allclose(converted(z, x), model(z, x), rtol=1e-5, atol=1e-7)


def test_the_ports_eps_1e6_network_scores_like_the_converted_one():
    """A network with the port's semantics (BN eps 1e-6) and the port's tensors renamed as they
    are, versus the conversion (eps difference folded into the BN weights)."""
    foreign = port.LAYOUT.from_deepvideo(random_siamfc(seed=2).state_dict())
    reference = SiamFC(width=0.1).eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-6
    plain = {port.key_table()[k]: v for k, v in foreign.items()}
    reference.load_state_dict({**plain, "bias": torch.zeros(1)})
    converted, _ = convert_tracker_state(foreign, "siamfc")
    naive = copy.deepcopy(converted)
    naive.load_state_dict({**plain, "bias": torch.zeros(1)})  # renamed only, eps ignored
    z, x = inputs()
    with torch.no_grad():
        ref = reference(z, x)
        assert torch.allclose(converted(z, x), ref, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(naive(z, x), ref, rtol=1e-3)


def test_a_nonzero_score_bias_cannot_be_exported_and_missing_keys_are_named(tmp_path):
    model = random_siamfc()
    with torch.no_grad():
        model.bias.fill_(0.5)
    with pytest.raises(ValueError, match="siamfc-pytorch head has no bias"):
        port.LAYOUT.from_deepvideo(model.state_dict())
    foreign = port.LAYOUT.from_deepvideo(random_siamfc().state_dict())
    del foreign["backbone.conv3.0.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['backbone.conv3.0.bias'\]"):
        convert_tracker_state(foreign, "siamfc")
    with pytest.raises(ConversionError, match="fit no 'siamfc' layout"):
        convert_tracker_state({"conv.weight": torch.zeros(1)}, "siamfc")


def test_convert_file_without_num_batches_tracked(tmp_path):
    model = random_siamfc()
    foreign = {k: v for k, v in port.LAYOUT.from_deepvideo(model.state_dict()).items()
               if not k.endswith("num_batches_tracked")}
    src, dst = tmp_path / "siamfc_alexnet_e50.pth", tmp_path / "siamfc.safetensors"
    torch.save(foreign, src)
    assert convert_tracker_file(src, dst, "siamfc") == "siamfc-pytorch"
    from deepvideo.track.trackers.siamfc import load_siamfc

    loaded = load_siamfc(dst)
    z, x = inputs()
    with torch.no_grad():
        assert torch.allclose(loaded(z, x), model(z, x), rtol=1e-5, atol=1e-7)
