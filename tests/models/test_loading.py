"""Loud loading: weights that do not fit are an error naming the tensors, or with
``strict=False`` a warning naming them while what fits loads."""

import pytest
import torch

from deepvideo.models import create_model
from deepvideo.models.convert import ConversionError, LoadReport, load_model, load_weights

SMALL = {"width": 8}  # an r3d_18 at 1/8 width: the same tensor names, small tensors


def _weights(num_classes: int, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return create_model("r3d_18", num_classes, **SMALL).state_dict()


def test_report_sorts_tensors_into_loaded_missing_unexpected_mismatched():
    model = create_model("r3d_18", 4, **SMALL)
    sd = {k: v for k, v in _weights(7, 0).items() if not k.startswith("layer4.")}
    sd["extra.weight"] = torch.zeros(1)
    report = LoadReport.of(sd, model)
    assert set(report.missing) == {k for k in model.state_dict() if k.startswith("layer4.")}
    assert report.unexpected == ("extra.weight",)
    assert report.mismatched == ("head.fc.weight: (7, 64) vs (4, 64)", "head.fc.bias: (7,) vs (4,)")
    assert len(report.loaded) == len(model.state_dict()) - len(report.missing) - 2 and not report.complete


def test_weights_matching_no_tensor_are_an_error_naming_them():
    sd = {"backbone.conv.weight": torch.zeros(3), "backbone.fc.weight": torch.zeros(2)}
    with pytest.raises(ConversionError, match=r"no tensor matches.*unexpected \(backbone\.conv\.weight"):
        load_model("r3d_18", sd, num_classes=4, **SMALL)
    model = create_model("r3d_18", 4, **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match=r"no tensor matches.*loaded 0 tensors"):
        load_weights(model, sd, strict=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_shape_mismatch_is_an_error_or_with_strict_false_a_warning_and_the_rest_loads():
    sd = _weights(10, seed=1)  # another classifier size
    mismatch = r"2 shape mismatches \(head\.fc\.weight: \(10, 64\) vs \(4, 64\)"
    with pytest.raises(ConversionError, match=mismatch):
        load_model("r3d_18", sd, num_classes=4, **SMALL)
    with pytest.warns(UserWarning, match=r"head\.fc\.weight.*the others keep their initialization"):
        model = load_model("r3d_18", sd, num_classes=4, strict=False, **SMALL)
    own = model.state_dict()
    assert torch.equal(own["stem.0.weight"], sd["stem.0.weight"])  # what fits is loaded
    assert own["head.fc.weight"].shape == (4, 64)  # the classifier keeps its own initialization
    fitting = load_model("r3d_18", sd, **SMALL)  # the checkpoint's classifier size: loads silently
    assert torch.equal(fitting.head.fc.weight, sd["head.fc.weight"])
