"""Hardening sweep (issue 12, parts 6-9): dataset and flow commands through the real CLI.

Each case runs ``python -m deepvideo ...`` in a subprocess and checks the exit status, a
one-line message naming the file, and that no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import deepvideo
from damaged_video import write_damaged_video
from deepvideo.io import write_video

SRC = Path(deepvideo.__file__).resolve().parents[1]
ENGINE_HELPERS = Path(__file__).resolve().parents[1] / "engine" / "engine_helpers.py"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "deepvideo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def error_line(proc: subprocess.CompletedProcess, *names: str) -> str:
    """The one ``error:`` line on stderr; it names every one of ``names``."""
    no_traceback(proc)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert all(name in lines[0] for name in names), lines[0]
    return lines[0]


def line_naming(text: str, *parts: str) -> str:
    lines = [ln for ln in text.splitlines() if all(p in ln for p in parts)]
    assert lines, f"no line with {parts} in:\n{text}"
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """``ds/a/v1.mp4``, ``ds/b/v2.mp4``; ``links/`` = one video + a dangling link; ``junk/`` = 2
    broken files; ``damaged/bad.mp4``; an existing file and folder."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    for name in ("ds/a/v1.mp4", "ds/b/v2.mp4", "links/ok.mp4"):
        write_video(root / name, rng.integers(0, 255, (5, 32, 48, 3), dtype=np.uint8), fps=10)
    (root / "links" / "gone.mp4").symlink_to("nowhere.mp4")
    (root / "junk").mkdir()
    for name in ("x.mp4", "y.mp4"):
        (root / "junk" / name).write_text("not a video")
    write_damaged_video(root / "damaged" / "bad.mp4")
    (root / "afile").write_text("taken")
    (root / "adir").mkdir()
    return root


def test_flow_extract_out_is_an_existing_file(work):
    proc = run("flow", "extract", "ds", "--out", "afile", "--method", "dis", cwd=work)
    assert proc.returncode == 2
    assert "not a folder" in error_line(proc, "afile")


@pytest.mark.parametrize("out, why", [("adir", "is a folder"), ("flow.txt", "ending in .mp4")])
def test_flow_show_refuses_an_output_that_is_no_mp4_file(work, out, why):
    proc = run("flow", "show", "ds/a/v1.mp4", "--out", out, cwd=work)
    assert proc.returncode == 2
    assert why in error_line(proc, out)
    assert not (work / "flow.txt").exists()


def test_data_resize_with_a_relative_source_folder(work):
    proc = run("data", "resize", "ds", "small", "--short-side", "16", "-j", "1", cwd=work)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.relative_to(work / "small").as_posix() for p in (work / "small").rglob("*.mp4")) == [
        "a/v1.mp4", "b/v2.mp4"]


def test_data_resize_dst_is_an_existing_file(work):
    proc = run("data", "resize", "ds", "afile", cwd=work)
    assert proc.returncode == 2
    assert "not a folder" in error_line(proc, "afile")
    assert (work / "afile").read_text() == "taken"


def test_data_resize_exits_1_when_every_video_failed(work):
    proc = run("data", "resize", "junk", "junk_small", "-j", "1", cwd=work)
    assert proc.returncode == 1
    assert "2 of 2 videos failed" in error_line(proc)
    line_naming(proc.stdout, "x.mp4", "not a readable video")


def test_data_resize_strict_lists_a_dangling_link(work):
    proc = run("data", "resize", "links", "links_small", "--short-side", "16", "--strict", "-j", "1",
               cwd=work)
    assert proc.returncode == 1
    error_line(proc)
    line_naming(proc.stdout, "gone.mp4", "dangling symbolic link to nowhere.mp4")
    assert (work / "links_small" / "ok.mp4").is_file()
    proc = run("data", "resize", "links", "links_small2", "--short-side", "16", "-j", "1", cwd=work)
    assert proc.returncode == 0 and "1 failed" in proc.stdout  # listed, but not every video failed


def test_flow_extract_strict_lists_a_dangling_link(work):
    proc = run("flow", "extract", "links", "--out", "links_flow", "--method", "dis", "--strict", cwd=work)
    assert proc.returncode == 1
    assert "1 of 2 videos failed" in error_line(proc)
    line_naming(proc.stderr, "failed: links/gone.mp4", "dangling symbolic link to nowhere.mp4")


def test_flow_extract_exits_1_when_every_video_failed(work):
    proc = run("flow", "extract", "junk", "--out", "junk_flow", "--method", "dis", cwd=work)
    assert proc.returncode == 1
    assert "2 of 2 videos failed (every one)" in error_line(proc)
    line_naming(proc.stderr, "failed: junk/x.mp4")


def test_data_check_full_reports_a_damaged_video(work):
    proc = run("data", "check", "damaged", "--full", "--strict", "--json", "report.json", cwd=work)
    no_traceback(proc)
    assert proc.returncode == 1
    line_naming(proc.stdout, "bad.mp4", "damaged:", "decoder error")
    video = json.loads((work / "report.json").read_text())["videos"][0]
    assert video["decoder_errors"] >= 1 and video["damaged_frames"]


def test_training_says_each_skipped_video_on_the_console(work):
    data = work / "train_ds"
    for c in range(2):
        for i in range(2):
            write_video(data / f"c{c}" / f"v{i}.mp4", np.full((8, 20, 20, 3), 60 + 120 * c, np.uint8), fps=8)
    (data / "c0" / "broken.mp4").write_bytes(b"\x00" * 300)
    recipe = {
        "output_dir": str(work / "run"), "seed": 1,
        "model": {"name": "engine_test_tiny3d", "imports": [str(ENGINE_HELPERS)], "spec": {"crop_size": 16}},
        "data": {"train": {"format": "folder", "root": str(data)}, "num_workers": 0},
        "train": {"epochs": 2, "batch_size": 5, "lr": 0.01, "amp": "none"},
    }
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    proc = run("train", "recipe.yaml", cwd=work)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    skipped = [ln for ln in proc.stdout.splitlines() if ln.startswith("skipped unreadable video")]
    assert len(skipped) == 1 and str(data / "c0" / "broken.mp4") in skipped[0]
    epochs = [ln for ln in proc.stdout.splitlines() if ln.startswith("epoch ")]
    assert len(epochs) == 2 and all(ln.endswith("skipped 1") for ln in epochs)
