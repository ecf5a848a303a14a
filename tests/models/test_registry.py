"""The registry: presets by call or decorator, published figures, families found by import."""

import pkgutil

import pytest
import torch
from torch import nn

import deepvideo.models as models_pkg
from deepvideo.models import create_model, get_model_info, list_models, register_model
from deepvideo.models.registry import Published
from deepvideo.spec import InputSpec

SPEC = InputSpec(("rgb",), num_frames=2, crop_size=8)


# params with 400 classes: 384*4 + 4 + 4*400 + 400 = 3540
FIGURES = {"params_m": 0.00354, "frames": 2, "crop": 8, "source": "here"}


@register_model(spec=SPEC, paper="test", published=FIGURES)
def registry_test_linear(num_classes: int = 400, hidden: int = 4) -> nn.Module:
    """A tiny preset registered by decorator

    More text that the summary leaves out.
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 8 * 8, hidden), nn.Linear(hidden, num_classes))


def test_decorated_preset_is_registered_under_its_function_name():
    info = get_model_info("registry_test_linear")
    assert info.builder is registry_test_linear and info.family == "test_registry"
    assert info.summary == "A tiny preset registered by decorator"
    assert info.published == Published(params_m=0.00354, frames=2, crop=8, source="here")
    model = create_model("registry_test_linear", num_classes=5, hidden=6)
    assert model.input_spec == SPEC and model(torch.zeros(1, 3, 2, 8, 8)).shape == (1, 5)
    assert sum(p.numel() for p in create_model("registry_test_linear").parameters()) == 3540


def test_registration_errors_name_the_model():
    with pytest.raises(ValueError, match="'registry_test_linear' is registered twice"):
        register_model("registry_test_linear", registry_test_linear, SPEC)
    with pytest.raises(TypeError, match="'bad_figures': published figures take params_m"):
        register_model("bad_figures", registry_test_linear, SPEC, published={"params": 1.0})
    with pytest.raises(TypeError, match="needs the preset's InputSpec"):
        register_model(paper="no spec")


def test_every_module_is_imported_and_only_families_register():
    modules = {m.name for m in pkgutil.iter_modules(models_pkg.__path__)}
    families = {i.family for i in list_models() if i.builder.__module__.startswith("deepvideo.models.")}
    assert families < modules
    assert {"registry", "zoo", "complexity", "inference", "convert"} <= modules - families
    assert {"resnet3d", "x3d", "slowfast", "two_stream", "transformer"} <= families


def test_every_model_taking_flow_sees_it_in_the_same_units():
    """A temporal stream trained alone and the rgb+flow model initialized from it must see the
    same flow values (else its batch-norm statistics are off by the scale and the fused model
    starts at chance): every registered spec normalizes flow to ``flow / FLOW_SCALE``."""
    from deepvideo.data.transforms import Normalize
    from deepvideo.spec import FLOW_SCALE

    flow = torch.full((2, 1, 1), 10.0)
    for info in list_models():
        if "flow" not in info.spec.modalities:
            continue
        out = Normalize(info.spec.mean, info.spec.std)({"flow": flow})["flow"]
        scale = 20.0 if info.family == "i3d" else FLOW_SCALE  # I3D's published weights: flow / 20
        assert torch.allclose(out, flow / scale), info.name
