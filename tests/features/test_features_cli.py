"""`deepvideo features idt | encode | svm` and `deepvideo fuse --l2 --val` on a tiny synthetic set."""

import json

import cv2
import numpy as np
from typer.testing import CliRunner

from deepvideo.cli.main import app
from deepvideo.engine.fusion import ScoreSet, load_scores, save_scores
from deepvideo.io.writer import write_video

runner = CliRunner(env={"COLUMNS": "240"})


def _video(path, dx, seed, n=17):
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((48, 48 + 3 * n)).astype(np.float32), (0, 0), 1.5)
    tex = ((tex - tex.min()) / np.ptp(tex) * 255).astype(np.uint8)
    starts = [dx * t if dx > 0 else -dx * (n - 1 - t) for t in range(n)]  # the window moves by dx
    frames = [np.repeat(tex[:, x:x + 48, None], 3, axis=2) for x in starts]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, np.stack(frames), fps=25)


def test_idt_encode_svm_and_fusion(tmp_path):
    ds, feats = tmp_path / "ds", tmp_path / "feats"
    for i in range(3):
        _video(ds / "left" / f"l{i}.mp4", 2, i)
        _video(ds / "right" / f"r{i}.mp4", -2, 10 + i)
    _video(ds / "right" / "short.mp4", 2, 99, n=5)
    args = ["features", "idt", str(ds), "--out", str(feats), "--max-scales", "1", "--no-camera"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "6 videos" in res.output and "1 failed" in res.output and "need at least 16" in res.output
    with np.load(feats / "left" / "l0.npz") as z:
        assert z["hof"].dtype == np.float16 and z["hof"].shape[1] == 108
    res = runner.invoke(app, args)
    assert "0 videos" in res.output and "6 already done" in res.output
    (tmp_path / "train.txt").write_text("left/l0.mp4 1\nleft/l1.mp4 1\nright/r0.mp4 2\nright/r1.mp4 2\n")
    (tmp_path / "test.txt").write_text("left/l2.mp4\nright/r2.mp4\n")
    vec, enc = tmp_path / "vec.npz", tmp_path / "enc.npz"
    res = runner.invoke(app, ["features", "encode", str(feats), "--out", str(vec), "--encoder", str(enc),
                              "--components", "2", "--types", "hof,trajectory", "--samples", "400",
                              "--fit-list", str(tmp_path / "train.txt")])
    assert res.exit_code == 0, res.output
    assert f"6 videos encoded ({2 * 2 * 54 + 2 * 2 * 15} dims)" in res.output  # 2KD per type, D halved
    res = runner.invoke(app, ["features", "svm", str(vec), "--train", str(tmp_path / "train.txt"),
                              "--test", str(tmp_path / "test.txt"), "--val", str(tmp_path / "train.txt"),
                              "--out", str(tmp_path / "svm")])
    assert res.exit_code == 0, res.output
    assert "test: 2 videos, accuracy 100.0%" in res.output
    idt = load_scores(tmp_path / "svm" / "scores.npz")
    assert idt.class_names == ["left", "right"] and idt.video_ids == ["left/l2.mp4", "right/r2.mp4"]
    # a ConvNet that gets every video wrong: the validation split must give it no say next to IDT
    for sub, s in (("cnn", idt), ("cnn/val", load_scores(tmp_path / "svm" / "val" / "scores.npz"))):
        wrong = np.eye(2)[1 - s.labels] * 5
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        save_scores(tmp_path / sub / "scores.npz", ScoreSet(s.video_ids, s.labels, wrong[:, None], wrong,
                                                            s.class_names))
    res = runner.invoke(app, ["fuse", str(tmp_path / "cnn"), str(tmp_path / "svm"), "--l2",
                              "--val", f"{tmp_path / 'cnn' / 'val'},{tmp_path / 'svm' / 'val'}",
                              "--out", str(tmp_path / "fused")])
    assert res.exit_code == 0, res.output
    chosen = res.output.split("weights chosen on validation: ")[1].split(" (accuracy 100.0%)")[0]
    assert json.loads(chosen)[0] == 1.0 and json.loads(chosen)[1] >= 1.0
    fused = load_scores(tmp_path / "fused" / "scores.npz")
    assert (fused.scores.argmax(1) == fused.labels).all() and fused.meta["fusion"] == "l2"
    manifest = [json.loads(x) for x in (feats / "manifest-0-of-1.jsonl").read_text().splitlines()]
    assert {m["status"] for m in manifest} == {"ok", "failed"}
