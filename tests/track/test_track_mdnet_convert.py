"""py-MDNet / RT-MDNet checkpoint layouts: random deepvideo weights renamed into the foreign
names (as the repositories' modules/model.py name them) and back give the same outputs."""

from __future__ import annotations

import pytest
import torch

from deepvideo.models.convert.files import ConversionError
from deepvideo.track.convert import convert_tracker_state, find_layout
from deepvideo.track.mdnet import PYMDNET_LRN, RTMDNET_LRN, MDNet

# py-MDNet modules/model.py: layers = Sequential(conv1 (Conv, ReLU, LRN, Pool), conv2 (...),
# conv3 (Conv, ReLU), fc4 (Linear, ReLU), fc5 (Dropout, Linear, ReLU)); branches[k] = (Dropout, Linear)
FOREIGN_KEYS = {f"layers.{layer}.{kind}" for layer in ("conv1.0", "conv2.0", "conv3.0", "fc4.0", "fc5.1")
                for kind in ("weight", "bias")} | {f"branches.{k}.1.{kind}" for k in (0, 1)
                                                   for kind in ("weight", "bias")}


@pytest.mark.parametrize("model,source,roi_align,lrn", [("mdnet", "py-mdnet", False, PYMDNET_LRN),
                                                         ("rtmdnet", "rt-mdnet", True, RTMDNET_LRN)])
def test_round_trip_through_the_foreign_names(model, source, roi_align, lrn):
    torch.manual_seed(0)
    ours = MDNet(num_domains=2, width=0.1, roi_align=roi_align, lrn=lrn).eval()
    layout = find_layout(model, source=source)
    foreign = layout.from_deepvideo(ours.state_dict())
    assert set(foreign) == FOREIGN_KEYS
    assert torch.equal(foreign["layers.fc5.1.weight"], ours.fc5.weight)
    assert torch.equal(foreign["branches.1.1.bias"], ours.fc6[1].bias)
    back, found = convert_tracker_state(foreign, model)
    assert found.source == source and back.roi_align == roi_align and back.lrn == lrn
    x = torch.rand(3, 3, 107, 107) * 255
    for domain in (0, 1):
        torch.testing.assert_close(back(x, domain), ours(x, domain))


def test_shared_layers_checkpoint_gets_a_new_fc6():
    """What pretrain/train_mdnet.py saves: {'shared_layers': layers.state_dict()} (no 'layers.')."""
    ours = MDNet(num_domains=1, width=0.1, lrn=PYMDNET_LRN).eval()
    foreign = find_layout("mdnet", source="py-mdnet").from_deepvideo(ours.state_dict())
    shared = {k.removeprefix("layers."): v for k, v in foreign.items() if k.startswith("layers.")}
    back, _ = convert_tracker_state({"shared_layers": shared}, "mdnet", source="py-mdnet")
    x = torch.rand(2, 3, 107, 107) * 255
    torch.testing.assert_close(back.conv_features(x), ours.conv_features(x))
    assert back.num_domains == 1 and torch.all(back.fc6[0].bias == 0)


def test_foreign_keys_that_fit_nothing_are_named():
    ours = MDNet(width=0.1, lrn=PYMDNET_LRN)
    foreign = find_layout("mdnet", source="py-mdnet").from_deepvideo(ours.state_dict())
    with pytest.raises(KeyError, match="'layers.fc7.0.weight' matches nothing"):
        convert_tracker_state({**foreign, "layers.fc7.0.weight": torch.zeros(1)}, "mdnet")
    with pytest.raises(ConversionError, match="fit no 'mdnet' layout"):
        convert_tracker_state({"features.0.weight": torch.zeros(1)}, "mdnet")


def test_cli_converts_a_py_mdnet_model_file(tmp_path):
    from typer.testing import CliRunner

    from deepvideo.cli.main import app
    from deepvideo.track.trackers.mdnet import load_mdnet

    ours = MDNet(num_domains=1, width=0.1, lrn=PYMDNET_LRN).eval()
    src, dst = tmp_path / "mdnet.pth", tmp_path / "mdnet.safetensors"
    torch.save(find_layout("mdnet", source="py-mdnet").from_deepvideo(ours.state_dict()), src)
    result = CliRunner().invoke(app, ["convert", str(src), str(dst), "--tracker", "mdnet"])
    assert result.exit_code == 0, result.output
    loaded = load_mdnet(dst)
    x = torch.rand(2, 3, 107, 107) * 255
    assert loaded.lrn == PYMDNET_LRN
    torch.testing.assert_close(loaded(x), ours(x))


def test_the_authors_shared_layers_file_converts(tmp_path):
    """The file as pretrain/train_mdnet.py writes it, {'shared_layers': ...}, converts as it is."""
    from deepvideo.track.convert import convert_tracker_file
    from deepvideo.track.trackers.mdnet import load_mdnet

    ours = MDNet(num_domains=1, width=0.1, lrn=PYMDNET_LRN).eval()
    foreign = find_layout("mdnet", source="py-mdnet").from_deepvideo(ours.state_dict())
    shared = {k.removeprefix("layers."): v for k, v in foreign.items() if k.startswith("layers.")}
    src, dst = tmp_path / "mdnet_vot-otb.pth", tmp_path / "mdnet.safetensors"
    torch.save({"shared_layers": shared}, src)
    assert convert_tracker_file(src, dst, "mdnet") == "py-mdnet"
    x = torch.rand(2, 3, 107, 107) * 255
    torch.testing.assert_close(load_mdnet(dst).conv_features(x), ours.conv_features(x))
