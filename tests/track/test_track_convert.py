"""The tracker weight-layout registry and ``deepvideo convert --tracker`` (a toy layout)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.models.convert.files import ConversionError
from deepvideo.track import convert as tc


def _toy_layout() -> tc.WeightLayout:
    def build(state):
        return nn.Sequential(nn.Linear(*reversed(state["0.weight"].shape)))

    return tc.WeightLayout(
        source="toyrepo", model="toynet", reference="example/toyrepo: net.py",
        looks_like=lambda keys: "fc.weight" in keys,
        to_deepvideo=lambda s: {k.replace("fc.", "0."): v for k, v in s.items()},
        from_deepvideo=lambda s: {k.replace("0.", "fc."): v for k, v in s.items()},
        build=build)


@pytest.fixture(scope="module", autouse=True)
def toy():
    tc.list_layouts()  # load the built-in ones first
    layout = tc.register_layout(_toy_layout())
    yield layout
    tc._LAYOUTS.pop((layout.model, layout.source))  # noqa: SLF001  (test cleanup)


def test_convert_round_trip_and_detect():
    foreign = {"fc.weight": torch.randn(3, 5), "fc.bias": torch.randn(3)}
    net, layout = tc.convert_tracker_state(foreign, "toynet")
    assert layout.source == "toyrepo"
    x = torch.randn(2, 5)
    torch.testing.assert_close(net(x), x @ foreign["fc.weight"].T + foreign["fc.bias"])
    back = layout.from_deepvideo(net.state_dict())
    assert set(back) == set(foreign)


def test_extra_or_missing_keys_are_named():
    with pytest.raises(ConversionError, match="unexpected"):
        tc.convert_tracker_state({"fc.weight": torch.randn(3, 5), "fc.bias": torch.randn(3),
                                  "fc.extra": torch.randn(1)}, "toynet")
    with pytest.raises(ConversionError, match="fit no 'toynet' layout"):
        tc.convert_tracker_state({"head.weight": torch.randn(3, 5)}, "toynet")
    with pytest.raises(KeyError, match="no weight layouts for tracker network 'nonet'"):
        tc.find_layout("nonet")
    with pytest.raises(KeyError, match="has no 'pysot' layout"):
        tc.find_layout("toynet", source="pysot")


def test_cli_convert_tracker(tmp_path):
    src, dst = tmp_path / "foreign.safetensors", tmp_path / "ours.safetensors"
    save_file({"fc.weight": torch.randn(3, 5), "fc.bias": torch.randn(3)}, str(src))
    result = CliRunner().invoke(app, ["convert", str(src), str(dst), "--tracker", "toynet"])
    assert result.exit_code == 0, result.output
    assert set(load_file(str(dst))) == {"0.weight", "0.bias"}
    both = CliRunner().invoke(app, ["convert", str(src), str(dst), "--tracker", "toynet", "-m", "r3d_18"])
    assert both.exit_code == 2 and "exactly one of --model and --tracker" in both.output
