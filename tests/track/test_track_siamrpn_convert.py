"""pysot layouts of siamrpn / siamrpnpp / siammask: renamed into pysot names and back, outputs equal."""

import pytest
import torch

from deepvideo.models.convert.files import ConversionError
from deepvideo.track import convert as tc
from deepvideo.track.siamrpn import SiamMask, SiamRPN, SiamRPNpp


def randomised(net):
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


NETS = {
    "siamrpn-upchannel": ("siamrpn", lambda: SiamRPN(width=0.125)),
    "siamrpn-depthwise": ("siamrpn", lambda: SiamRPN(width=0.125, xcorr="depthwise")),
    "siamrpnpp": ("siamrpnpp", lambda: SiamRPNpp(width=0.125, blocks=(1, 2, 1, 1), channels=8)),
    "siammask": ("siammask", lambda: SiamMask(width=0.125, blocks=(1, 1, 2), channels=8, refine=True)),
}


@pytest.mark.parametrize("case", sorted(NETS))
def test_pysot_round_trip_outputs_equal(case):
    name, make = NETS[case]
    net = randomised(make())
    layout = tc.find_layout(name, source="pysot")
    assert "STVIR/pysot" in layout.reference
    foreign = layout.from_deepvideo(net.state_dict())
    assert layout.looks_like(set(foreign))
    converted, found = tc.convert_tracker_state(foreign, name)
    assert found is layout
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        a, b = net(z, x), converted(z, x)
    for key in a:
        assert torch.equal(a[key], b[key])


def test_pysot_key_names():
    foreign = tc.find_layout("siamrpnpp", source="pysot").from_deepvideo(NETS["siamrpnpp"][1]().state_dict())
    for key in ("backbone.conv1.weight", "backbone.layer3.0.downsample.0.weight",
                "neck.downsample2.downsample.0.weight", "neck.downsample4.downsample.1.running_var",
                "rpn_head.rpn3.cls.conv_kernel.0.weight", "rpn_head.rpn4.loc.conv_search.1.bias",
                "rpn_head.rpn2.cls.head.3.weight", "rpn_head.cls_weight", "rpn_head.loc_weight"):
        assert key in foreign, key
    mask = tc.find_layout("siammask", source="pysot").from_deepvideo(NETS["siammask"][1]().state_dict())
    for key in ("neck.downsample.downsample.0.weight", "rpn_head.cls.conv_kernel.0.weight",
                "mask_head.head.3.weight", "refine_head.v2.0.weight", "refine_head.h0.2.bias",
                "refine_head.deconv.weight", "refine_head.post2.weight"):
        assert key in mask, key
    alex_net = NETS["siamrpn-upchannel"][1]()
    alex = tc.find_layout("siamrpn", source="pysot").from_deepvideo(alex_net.state_dict())
    for key in ("backbone.features.0.weight", "backbone.features.15.running_mean",
                "rpn_head.template_cls_conv.weight", "rpn_head.search_loc_conv.bias",
                "rpn_head.loc_adjust.weight"):
        assert key in alex, key


def test_first_convolution_turns_bgr_into_rgb():
    net = NETS["siamrpnpp"][1]()
    layout = tc.find_layout("siamrpnpp", source="pysot")
    foreign = layout.from_deepvideo(net.state_dict())
    assert torch.equal(foreign["backbone.conv1.weight"], net.backbone.conv1.weight.flip(1))
    assert torch.equal(foreign["backbone.layer1.0.conv1.weight"], net.backbone.layer1[0].conv1.weight)


def test_unknown_keys_and_missing_counters():
    layout = tc.find_layout("siamrpnpp", source="pysot")
    foreign = layout.from_deepvideo(NETS["siamrpnpp"][1]().state_dict())
    with pytest.raises(ConversionError, match="outside the key table: rpn_head.extra"):
        tc.convert_tracker_state({**foreign, "rpn_head.extra": torch.zeros(1)}, "siamrpnpp")
    # an older pysot checkpoint without num_batches_tracked still loads
    old = {k: v for k, v in foreign.items() if not k.endswith("num_batches_tracked")}
    converted, _ = tc.convert_tracker_state(old, "siamrpnpp")
    assert converted.backbone.bn1.num_batches_tracked == 0
    with pytest.raises(ConversionError, match="fit no 'siamrpnpp' layout"):
        tc.convert_tracker_state({"features.0.weight": torch.zeros(1)}, "siamrpnpp")
