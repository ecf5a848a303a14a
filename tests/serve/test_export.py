"""ONNX / TorchScript export: outputs equal PyTorch's within 1e-4 under onnxruntime for several
families (tiny presets), metadata round trip, `deepvideo export` and `deepvideo predict --onnx`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from serve_helpers import CLASSES, colour_frames
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.io import write_video
from deepvideo.serve.export import (
    TOLERANCE,
    ExportError,
    check_export,
    example_inputs,
    export_model,
    read_metadata,
    run_exported,
)
from deepvideo.serve.runs import build_model

runner = CliRunner()
FAMILIES = {  # tiny presets: name -> (builder kwargs, InputSpec overrides)
    "x3d_xs": ({"depth_factor": 1.0, "width_factor": 1.0, "head_width": 16},
               {"num_frames": 4, "crop_size": 32}),
    "mvit_v2_s": ({"num_frames": 4, "crop_size": 32, "embed_dim": 8, "depth": 2, "dim_mul_at": (1,)},
                  {"num_frames": 4, "crop_size": 32}),
    "two_stream_small": ({}, {"crop_size": 32}),  # rgb and flow inputs
    "slowfast_r50": ({}, {"num_frames": 8, "crop_size": 32}),  # two pathways from one clip
}


# plain 3D CNNs: the CLI test and the bench
@pytest.mark.parametrize("name", ["mvit_v2_s", "two_stream_small", "slowfast_r50"])
def test_onnx_equals_pytorch(name, tmp_path):
    torch.manual_seed(0)
    kwargs, spec = FAMILIES[name]
    model = build_model(name, 5, kwargs, spec)
    path = export_model(model, tmp_path / f"{name}.onnx", "onnx", class_names=list("abcde"), short_side=37)
    check = check_export(model, path, batch=2)
    assert check.shape == (2, 5) and check.max_abs_diff <= TOLERANCE
    meta = read_metadata(path)
    assert meta["inputs"] == list(model.input_spec.batch_keys) and meta["class_names"] == list("abcde")
    assert meta["input_spec"]["crop_size"] == 32 and meta["short_side"] == 37 and meta["model_name"] == name
    if name == "two_stream_small":
        assert meta["inputs"] == ["rgb", "flow"]


def test_torchscript_round_trip(tmp_path):
    torch.manual_seed(0)
    kwargs, spec = FAMILIES["x3d_xs"]
    model = build_model("x3d_xs", 4, kwargs, spec)
    path = export_model(model, tmp_path / "m.pt", "torchscript", class_names=list("abcd"), short_side=32)
    assert read_metadata(path)["class_names"] == list("abcd")
    x = example_inputs(model.input_spec, batch=3, seed=4)
    with torch.no_grad():
        np.testing.assert_allclose(run_exported(path, x), model({"rgb": x[0]}).numpy(), atol=1e-5)


def test_export_errors(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.onnx: not an ONNX model"):
        read_metadata(text)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        read_metadata(tmp_path / "missing.onnx")
    model = build_model("x3d_xs", 2, *FAMILIES["x3d_xs"])
    with pytest.raises(ValueError, match="format must be one of onnx, torchscript"):
        export_model(model, tmp_path / "m.x", "tflite", class_names=["a", "b"], short_side=32)

    class Broken(torch.nn.Module):  # an op neither exporter handles: a Python-side numpy call
        input_spec = model.input_spec

        def forward(self, batch):
            return torch.from_numpy(np.linalg.svd(batch["rgb"].mean((2, 3, 4)).numpy())[0])

    with pytest.raises(ExportError, match="torchscript exporter: outputs differ from PyTorch"):
        export_model(Broken(), tmp_path / "b.onnx", "onnx", class_names=["a", "b"], short_side=32,
                     exporter="torchscript")


def test_export_cli_then_predict_onnx(tiny_run, tmp_path):
    out = tmp_path / "tiny.onnx"
    result = runner.invoke(app, ["export", str(tiny_run), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "max |exported - PyTorch|" in result.output and out.is_file()
    video = write_video(tmp_path / "g.mp4", colour_frames([("green", 2)], size=32), fps=10)
    result = runner.invoke(app, ["predict", "--onnx", str(out), str(video), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    onnx_top = json.loads(result.stdout)["predictions"][0]["top"]
    from deepvideo.serve.longvideo import predict_whole_video
    from deepvideo.serve.scorer import load_scorer

    probs = predict_whole_video(load_scorer(tiny_run), video)  # the same clip through PyTorch
    assert [t["class"] for t in onnx_top] == [CLASSES[i] for i in np.argsort(-probs, kind="stable")]
    np.testing.assert_allclose([t["probability"] for t in onnx_top], np.sort(probs)[::-1], atol=1e-5)
    result = runner.invoke(app, ["export", str(tiny_run), "--format", "tflite"])
    assert result.exit_code == 2 and "--format must be one of onnx, torchscript" in result.output
