"""``deepvideo track``: a tracker on a real video whose target leaves the frame, a sequence
folder with its ground truth, bench + convert end to end, and errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepvideo.io import VideoReader

INIT = "100,90,110,120"  # the rock in the first frame of the `leaving_video` pan (conftest)


def deepvideo(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepvideo", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=240)


def test_a_target_that_leaves_the_frame_gives_low_scores_not_a_crash(leaving_video, tmp_path):
    proc = deepvideo("track", leaving_video, "--init", INIT, "--tracker", "kcf", "--out", "boxes.txt",
                     "--scores", "scores.txt", "--show", "shown.mp4", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    boxes = np.loadtxt(tmp_path / "boxes.txt", delimiter=",")
    scores = np.loadtxt(tmp_path / "scores.txt")
    assert boxes.shape == (60, 4) and np.isfinite(boxes).all()
    np.testing.assert_allclose(boxes[0], [100, 90, 110, 120])
    assert np.nanmean(scores[40:]) < 0.5 * np.nanmean(scores[1:10])  # it knows it lost the rock
    assert "kcf: 60 frames" in proc.stdout and "lowest" in proc.stdout
    shown = VideoReader(tmp_path / "shown.mp4")
    assert len(shown) == 60 and shown.get_frames([0]).shape[2] == 320 + 160  # frame + score strip


def test_a_sequence_folder_starts_from_its_ground_truth(shared_data, tmp_path):
    proc = deepvideo("track", shared_data / "tracking" / "Crossing", "--tracker", "mosse",
                     "--out", "boxes.txt", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    boxes = np.loadtxt(tmp_path / "boxes.txt", delimiter=",")
    np.testing.assert_allclose(boxes[0], [204, 150, 17, 50])  # groundtruth_rect.txt, 1-based
    assert boxes.shape == (120, 4)


def test_bench_then_convert(shared_data, tmp_path):
    proc = deepvideo("track", "bench", shared_data / "tracking", "--trackers", "mosse,dcf",
                     "--report", "report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scores = json.loads((tmp_path / "report" / "scores.json").read_text())["trackers"]
    assert [s["tracker"] for s in scores] == ["mosse", "dcf"]
    assert all(0 < s["overall"]["auc"] < 1 for s in scores)
    assert (tmp_path / "report" / "results" / "dcf" / "Crossing.txt").is_file()
    assert "| mosse |" in (tmp_path / "report" / "report.md").read_text()
    again = deepvideo("track", "bench", shared_data / "tracking", "--trackers", "dcf",
                      "--report", "report", cwd=tmp_path)
    assert "done before, skipped" in again.stderr  # resumable
    conv = deepvideo("track", "convert", "report/results/dcf", "got", "--to", "got10k", cwd=tmp_path)
    assert conv.returncode == 0, conv.stderr
    np.testing.assert_array_equal(
        np.loadtxt(tmp_path / "got" / "bag" / "bag_001.txt", delimiter=","),
        np.loadtxt(tmp_path / "report" / "results" / "dcf" / "bag.txt", delimiter=","))


@pytest.mark.parametrize("args, code, text", [
    (["VIDEO", "--tracker", "nosuch", "--init", "1,1,5,5"], 2, "unknown tracker 'nosuch'"),
    (["VIDEO"], 2, "a video needs the target's first box: --init x,y,w,h"),
    (["VIDEO", "--init", "1,1,5,5", "--show", "out.txt"], 2, "--show out.txt: the annotated video is an mp4"),
    (["nosuch.mp4", "--init", "1,1,5,5"], 2, "nosuch.mp4: file not found"),
    (["bench", "EMPTY", "--trackers", "mosse", "--report", "r"], 1, "EMPTY"),
])
def test_errors_are_one_line(leaving_video, tmp_path, args, code, text):
    (tmp_path / "EMPTY").mkdir()
    argv = [str(leaving_video) if a == "VIDEO" else a for a in args]
    proc = deepvideo("track", *argv, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and text in proc.stderr, proc.stderr


def test_bench_under_torchrun_shares_the_sequences(shared_data, tmp_path):
    """Two torchrun processes each run one of the two sequences; the results equal a single
    process's (the trackers are deterministic) and a report is written."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--standalone", "-m", "deepvideo", "track", "bench", shared_data / "tracking",
                          "--trackers", "dcf", "--report", "ddp"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stderr
    assert two.stderr.count("dcf [1/1]") == 2  # one sequence per rank
    one = deepvideo("track", "bench", shared_data / "tracking", "--trackers", "dcf", "--report", "one",
                    cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    for name in ("Crossing", "bag"):
        np.testing.assert_array_equal(np.loadtxt(tmp_path / "ddp" / "results" / "dcf" / f"{name}.txt",
                                                 delimiter=","),
                                      np.loadtxt(tmp_path / "one" / "results" / "dcf" / f"{name}.txt",
                                                 delimiter=","))
    # each rank checks for every result after writing its own: the later one writes the report
    assert (tmp_path / "ddp" / "report.md").is_file()


def test_synth_set_benchmarks_under_the_got10k_protocol(tmp_path):
    proc = deepvideo("track", "synth", "set", "-n", "2", "--frames", "12", "--size", "96x72", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "set").iterdir() if p.is_dir()) == ["synth_0001", "synth_0002"]
    bench = deepvideo("track", "bench", "set", "--trackers", "kcf", "--protocol", "got10k", "--report", "rep",
                      cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    got = json.loads((tmp_path / "rep" / "scores.json").read_text())["trackers"][0]
    assert got["protocol"] == "got10k" and 0 < got["overall"]["ao"] <= 1
    assert (tmp_path / "rep" / "results" / "kcf" / "synth_0001" / "synth_0001_003.txt").is_file()
