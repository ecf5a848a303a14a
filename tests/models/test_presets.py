"""Presets as functions (timm-style): keyword-only defaults are the registry's preset arguments."""

import torch

from deepvideo.models import create_model, get_model_info, list_models
from deepvideo.models.registry import keyword_only_defaults


def test_keyword_only_parameters_are_the_preset_arguments():
    def demo(num_classes=10, depth=3, *, arch="r3d", width=0.5, **kw):
        return None

    assert keyword_only_defaults(demo) == {"arch": "r3d", "width": 0.5}
    info = get_model_info("r2plus1d_18")
    assert info.defaults == {"arch": "r2plus1d", "depth": 18}
    assert info.builder.__name__ == "r2plus1d_18" and info.published.params_m == 33.3


def test_calling_a_preset_function_builds_the_registered_model():
    from deepvideo.models.lrcn import lrcn_flow_small

    torch.manual_seed(0)
    direct = lrcn_flow_small(5)
    torch.manual_seed(0)
    registered = create_model("lrcn_flow_small", 5)
    assert repr(direct) == repr(registered)
    pairs = zip(direct.state_dict().values(), registered.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_every_preset_of_the_converted_families_is_its_own_function():
    for family in ("lrcn", "karpathy", "tsn", "vivit", "tvn", "assemblenet", "dynamic_images"):
        for info in list_models(family):
            assert info.builder.__name__ == info.name, info.name
    tran = [i.name for i in list_models("resnet3d") if i.name.endswith(("_18", "_34"))]
    assert all(get_model_info(n).builder.__name__ == n for n in tran)
