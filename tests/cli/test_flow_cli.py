"""`deepvideo flow extract` and `deepvideo flow show` through the real CLI app."""

import numpy as np
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.flow import read_flow
from deepvideo.io import VideoReader, write_video

runner = CliRunner(env={"COLUMNS": "240"})


def _video(path, n=5):
    rng = np.random.default_rng(0)
    base = (rng.random((56, 72, 3)) * 255).astype(np.uint8)
    write_video(path, np.stack([np.roll(base, t, axis=0)[4:-4, 4:-4] for t in range(n)]), fps=10)
    return path


def test_extract_cli(tmp_path):
    _video(tmp_path / "ds" / "a" / "clip.mp4")
    (tmp_path / "ds" / "a" / "bad.mp4").write_text("nope")
    out = tmp_path / "out"
    res = runner.invoke(app, ["flow", "extract", str(tmp_path / "ds"), "--out", str(out), "--method", "dis",
                              "--format", "npz", "--bound", "10", "--rgb", "--short-side", "32"])
    assert res.exit_code == 0, res.output
    assert "1 extracted" in res.output and "1 failed" in res.output and "bad.mp4" in res.output
    flow = read_flow(out / "a" / "clip")
    assert flow.shape == (4, 2, 32, 43) and flow.abs().max() <= 10.0 + 1e-5
    assert (out / "a" / "clip" / "img_00005.jpg").exists()
    res = runner.invoke(app, ["flow", "extract", str(tmp_path / "ds"), "--out", str(out), "--method", "dis",
                              "--format", "npz"])
    assert "1 already done" in res.output
    res = runner.invoke(app, ["flow", "extract", str(tmp_path / "ds"), "--out", str(out), "--shard", "2/2"])
    assert res.exit_code == 2 and "0 <= i < n" in res.output


def test_show_cli(tmp_path):
    video = _video(tmp_path / "v.mp4")
    res = runner.invoke(app, ["flow", "show", str(video), "--out", str(tmp_path / "f.mp4"), "--coding", "mag",
                              "--png-dir", str(tmp_path / "png")])
    assert res.exit_code == 0, res.output
    with VideoReader(tmp_path / "f.mp4") as r:
        assert len(r) == 4 and (r.height, r.width) == (48, 128)  # frame | coded flow
    assert len(list((tmp_path / "png").glob("*.png"))) == 4
    res = runner.invoke(app, ["flow", "show", str(video), "--out", str(tmp_path / "g.mp4"),
                              "--coding", "hsv"])
    assert res.exit_code == 2 and "unknown --coding" in res.output
    res = runner.invoke(app, ["flow", "show", str(tmp_path / "missing.mp4"),
                              "--out", str(tmp_path / "g.mp4")])
    assert res.exit_code == 1 and "missing.mp4" in res.output
