"""`deepvideo models` and `deepvideo convert`."""

import torch
import torchvision
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.models import get_model_info


def test_models_lists_family_with_params_and_flops():
    res = CliRunner().invoke(app, ["models", "--family", "x3d", "--flops"])
    assert res.exit_code == 0, res.output
    for name in ("x3d_xs", "x3d_s", "x3d_m", "x3d_l"):
        assert name in res.output
    pub = get_model_info("x3d_m").published  # counted at the published test size, beside it
    (row,) = [line for line in res.output.splitlines() if "x3d_m " in line]
    assert row.count(f"{pub.params_m:.2f}") == 2 and row.count(f"{pub.gflops:.2f}") == 2
    assert f"{pub.frames}x{pub.crop}²" in row
    assert "r3d_18" not in res.output


def test_models_without_flops_and_unknown_family():
    res = CliRunner().invoke(app, ["models", "--family", "csn"])
    assert res.exit_code == 0 and "ir_csn_152" in res.output and "GFLOPs" not in res.output
    bad = CliRunner().invoke(app, ["models", "--family", "nope"])
    assert bad.exit_code != 0 and "families" in bad.output


def test_convert_command_and_error(tmp_path):
    src = tmp_path / "mc3.pth"
    torch.save(torchvision.models.video.mc3_18(weights=None).state_dict(), src)
    out = tmp_path / "mc3.safetensors"
    res = CliRunner().invoke(app, ["convert", str(src), str(out), "--model", "mc3_18"])
    assert res.exit_code == 0, res.output
    assert "(torchvision)" in res.output and out.exists()
    res = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "x.safetensors"), "--model", "r3d_18"])
    assert res.exit_code == 1 and "do not fit model 'r3d_18'" in res.output
    assert not (tmp_path / "x.safetensors").exists()


def test_convert_strict_by_default_and_no_strict_warns(tmp_path):
    src = tmp_path / "r3d.pth"
    torch.save(torchvision.models.video.r3d_18(weights=None, num_classes=5).state_dict(), src)
    out = tmp_path / "mc3.safetensors"
    res = CliRunner().invoke(app, ["convert", str(src), str(out), "--model", "mc3_18"])
    assert res.exit_code == 1 and "shape mismatches (layer2.0.conv1" in res.output and not out.exists()
    res = CliRunner().invoke(app, ["convert", str(src), str(out), "--model", "mc3_18", "--no-strict"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "layer2.0.conv1" in res.output and out.exists()


def test_models_published_puts_ours_beside_the_papers():
    res = CliRunner().invoke(app, ["models", "--published", "--family", "vivit"])
    assert res.exit_code == 0, res.output
    (row,) = [line for line in res.output.splitlines() if "vivit_b_16x2_fsa" in line]
    assert "117.32" in row and "117.30" in row and "+0.0%" in row and "372.30" in row and "Table 3" in row
    assert "vivit_joint_small" not in res.output  # no published figures: not listed
    bad = CliRunner().invoke(app, ["models", "--published", "--family", "tvn"])
    assert bad.exit_code != 0 and "published figures" in bad.output
