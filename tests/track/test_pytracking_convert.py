"""pytracking's ATOM / DiMP layouts: random deepvideo weights renamed into pytracking's names and
back give the same outputs; the names are pytracking's (ltr/models/bbreg/atom_iou_net.py,
ltr/models/target_classifier/*, ltr/models/tracking/dimpnet.py)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from deepvideo.models.convert.files import ConversionError
from deepvideo.track.atom import ATOMNet
from deepvideo.track.convert import convert_tracker_file, convert_tracker_state, find_layout
from deepvideo.track.dimp import DiMPNet


def randomized(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else 0.1 * torch.randn(t.shape, generator=g))
    return net.eval()


def atom_outputs(net):
    torch.manual_seed(1)
    images = torch.rand(2, 3, 96, 96) * 255
    boxes = torch.tensor([[30.0, 30, 30, 30], [20, 25, 40, 30]])
    with torch.no_grad():
        return net(images, images.flip(0), boxes, boxes[:, None].repeat(1, 3, 1) + 2)


def dimp_outputs(net):
    torch.manual_seed(1)
    images = torch.rand(2, 2, 3, 96, 96) * 255
    boxes = torch.tensor([30.0, 30, 30, 30]).expand(2, 2, 4)
    with torch.no_grad():
        out = net(images, images.flip(0), boxes, boxes[:, :, None].repeat(1, 1, 3, 1) + 2)
    return torch.cat([s.flatten() for s in out["scores"]] + [out["iou"].flatten()])


def test_atom_round_trip_and_names():
    net = randomized(ATOMNet(18, width=0.125, iou_dim=16))
    layout = find_layout("atom", source="pytracking")
    foreign = layout.from_deepvideo(net.state_dict())
    for key in ("feature_extractor.layer3.1.bn2.running_var", "bb_regressor.conv3_1r.0.weight",
                "bb_regressor.conv3_2t.1.running_mean", "bb_regressor.fc3_1r.0.bias",
                "bb_regressor.fc34_4r.1.weight",
                "bb_regressor.fc3_rt.linear.weight", "bb_regressor.fc4_rt.bn.running_var",
                "bb_regressor.iou_predictor.weight"):
        assert key in foreign
    assert foreign["bb_regressor.fc3_rt.linear.weight"].shape == (16, 16 * 5 * 5)   # 5×5 pooled
    foreign["feature_extractor.layer4.0.conv1.weight"] = torch.zeros(1)     # unused parts of the checkpoint
    foreign["feature_extractor.fc.weight"] = torch.zeros(1)
    back, found = convert_tracker_state(foreign, "atom")
    assert found.source == "pytracking" and "atom_iou_net.py" in found.reference
    assert torch.equal(atom_outputs(back), atom_outputs(net))


@pytest.mark.parametrize("depth", [18, 50])
def test_dimp_round_trip_and_names(depth):
    net = randomized(DiMPNet(depth, width=0.0625 if depth == 50 else 0.125, iou_dim=16, num_iter=2))
    foreign = find_layout("dimp", source="pytracking").from_deepvideo(net.state_dict())
    final_conv = f"classifier.feature_extractor.{0 if depth == 50 else 1}.weight"
    for key in (final_conv, "classifier.filter_initializer.filter_conv.bias",
                "classifier.filter_optimizer.log_step_length", "classifier.filter_optimizer.filter_reg",
                "classifier.filter_optimizer.label_map_predictor.weight",
                "classifier.filter_optimizer.target_mask_predictor.0.weight",
                "classifier.filter_optimizer.spatial_weight_predictor.weight",
                "bb_regressor.conv4_1t.0.weight"):
        assert key in foreign
    if depth == 18:
        assert "classifier.feature_extractor.0.conv1.weight" in foreign   # the residual basic block
    back, _ = convert_tracker_state(foreign, "dimp")
    back.optimizer.num_iter = 2
    assert back.config["depth"] == depth
    assert torch.equal(dimp_outputs(back), dimp_outputs(net))


def test_unknown_keys_are_errors_and_the_file_conversion_writes_safetensors(tmp_path):
    net = randomized(ATOMNet(18, width=0.125, iou_dim=16))
    foreign = find_layout("atom", source="pytracking").from_deepvideo(net.state_dict())
    with pytest.raises(KeyError, match="'bb_regressor.extra.weight' is not part of ATOM's IoU-Net"):
        convert_tracker_state({**foreign, "bb_regressor.extra.weight": torch.zeros(1)}, "atom")
    partial = {k: v for k, v in foreign.items() if "iou_predictor" not in k}
    with pytest.raises((ConversionError, KeyError)):
        convert_tracker_state(partial, "atom")
    src, dst = tmp_path / "atom_default.safetensors", tmp_path / "atom.safetensors"
    save_file({k: v.contiguous() for k, v in foreign.items()}, str(src))
    assert convert_tracker_file(src, dst, "atom") == "pytracking"
    assert set(load_file(str(dst))) == set(net.state_dict())


def test_pytracking_pickle_with_its_objects_converts_without_running_them(tmp_path, monkeypatch):
    """A checkpoint as pytracking's trainer saves it ({'net': ..., 'constructor': <ltr object>})
    converts as it is; the ltr object is read as an inert stand-in (its class is not importable
    here, and its __setstate__ would fail loudly if it ran); other foreign objects stay refused."""
    import sys
    import types

    from deepvideo.models.convert.files import WeightsFileError, read_torch_file

    class NetConstructor:
        def __setstate__(self, state):  # pragma: no cover - must never run
            raise AssertionError("pytracking code ran while reading")

    class Other:
        pass

    for package in ("ltr", "ltr.admin"):
        monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    for name, cls in (("ltr.admin.model_constructor", NetConstructor), ("elsewhere", Other)):
        module = types.ModuleType(name)
        cls.__module__, cls.__qualname__ = name, cls.__name__
        setattr(module, cls.__name__, cls)
        monkeypatch.setitem(sys.modules, name, module)
    net = randomized(ATOMNet(18, width=0.125, iou_dim=16))
    foreign = find_layout("atom", source="pytracking").from_deepvideo(net.state_dict())
    ckpt, other = tmp_path / "atom_default.pth", tmp_path / "other.pth"
    torch.save({"net": foreign, "constructor": NetConstructor(), "net_type": "ATOMnet"}, ckpt)
    torch.save({"net": foreign, "constructor": Other()}, other)
    for name in ("ltr", "ltr.admin", "ltr.admin.model_constructor", "elsewhere"):
        monkeypatch.delitem(sys.modules, name)
    dst = tmp_path / "atom.safetensors"
    assert convert_tracker_file(ckpt, dst, "atom") == "pytracking"
    state = load_file(str(dst))
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(WeightsFileError, match="elsewhere.Other.*refused unread"):
        read_torch_file(other, inert_modules=("ltr.",))
    with pytest.raises(WeightsFileError, match="ltr.admin.model_constructor.NetConstructor"):
        read_torch_file(ckpt)  # without the allowance, refused as before
