"""`deepvideo features tdd` on checkpoints in the library's run format (the CPU two-stream ResNets)."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.io.writer import write_video

runner = CliRunner(env={"COLUMNS": "240"})


def _checkpoint(root, name, **kwargs):
    """A randomly initialised ``name`` saved as ``root/<name>/checkpoints/last`` with its recipe."""
    from deepvideo.engine.checkpoint import save_checkpoint
    from deepvideo.engine.config import config_to_dict, load_config
    from deepvideo.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=2, **kwargs)
    cfg = load_config(overrides=[f"model.name={name}", "model.num_classes=2",
                                 *(f"model.kwargs.{k}={v}" for k, v in kwargs.items())])
    meta = {"config": config_to_dict(cfg), "class_names": ["left", "right"], "epoch": 1}
    return save_checkpoint(root / name / "checkpoints" / "last", model, meta).parent.parent


@pytest.fixture(scope="module")
def nets_and_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("tdd")
    rng = np.random.default_rng(0)
    tex = (rng.random((48, 48 + 2 * 17)) * 255).astype(np.uint8)
    frames = np.stack([np.repeat(tex[:, 2 * t:2 * t + 48, None], 3, axis=2) for t in range(17)])
    write_video(root / "videos" / "left" / "v0.mp4", frames, fps=25)
    spatial = _checkpoint(root, "two_stream_spatial_small", input_size=48)
    temporal = _checkpoint(root, "two_stream_temporal_small", input_size=48, flow_stack=2)
    return root, spatial, temporal


def test_tdd_of_resnet_two_stream_runs_pools_their_conv_stages(nets_and_video, tmp_path):
    root, spatial, temporal = nets_and_video
    res = runner.invoke(app, ["features", "tdd", str(root / "videos"), "--out", str(tmp_path / "tdd"),
                              "--spatial", str(spatial), "--temporal", str(temporal), "--max-scales", "1",
                              "--no-camera", "--strict"])
    assert res.exit_code == 0, res.output
    assert "1 videos" in res.output and "0 failed" in res.output
    with np.load(tmp_path / "tdd" / "left" / "v0.npz") as z:
        names = {k for k in z.files if "/" in k}
        n = len(z["info"])
        got = {k: z[k] for k in names}
    # conv4, conv5 of the spatial net and conv3, conv4 of the temporal one: ResNet stages conv<k>_x =
    # torchvision's layer<k-1>, of 1/4-width ResNet-18 channel counts 64, 128 (layer3, layer4), 32 (layer2)
    widths = {"spatial/backbone.layer3": 64, "spatial/backbone.layer4": 128,
              "temporal/backbone.layer2": 32, "temporal/backbone.layer3": 64}
    assert names == {f"{layer}/{norm}" for layer in widths for norm in ("spatiotemporal", "channel")}
    assert n > 0
    for key, value in got.items():
        assert value.shape == (n, widths[key.rsplit("/", 1)[0]]), key
        assert np.isfinite(value).all() and value.min() >= 0
        assert value.max() <= 16 + 1e-2  # at most 1 per point after normalisation, 16 points


def test_tdd_names_a_missing_layer_before_any_video(nets_and_video, tmp_path):
    root, spatial, _ = nets_and_video
    res = runner.invoke(app, ["features", "tdd", str(root / "videos"), "--out", str(tmp_path / "tdd"),
                              "--spatial", str(spatial), "--spatial-layers", "backbone.relu5"])
    assert res.exit_code == 2
    assert "spatial net: no module 'backbone.relu5'" in res.output and "backbone.layer4" in res.output
    assert not list((tmp_path / "tdd").rglob("*.npz"))
