"""Dataset path handling (resize, check): a source folder relative to the working folder, dangling links."""

from __future__ import annotations

import numpy as np

from deepvideo.data.check import check_video, find_videos
from deepvideo.data.resize import plan_resize, run_resize, scan_sources
from deepvideo.io import probe, write_video


def _video(path):
    write_video(path, np.random.default_rng(0).integers(0, 255, (4, 24, 32, 3), dtype=np.uint8), fps=5)


def test_relative_source_folder_mirrors_its_layout(tmp_path, monkeypatch):
    _video(tmp_path / "ds" / "a" / "v1.mp4")
    _video(tmp_path / "ds" / "b" / "v2.avi.mp4")
    monkeypatch.chdir(tmp_path)
    jobs, refused = plan_resize("ds", "out")
    assert refused == []
    assert [(j.src, j.dst) for j in jobs] == [
        ("ds/a/v1.mp4", str(tmp_path / "out" / "a" / "v1.mp4")),
        ("ds/b/v2.avi.mp4", str(tmp_path / "out" / "b" / "v2.avi.mp4"))]
    results = run_resize(jobs, short_side=16)
    assert [r.status for r in results] == ["done", "done"]
    assert probe("out/a/v1.mp4").num_frames == 4


def test_a_dangling_link_is_refused_naming_its_target(tmp_path):
    _video(tmp_path / "ds" / "v.mp4")
    (tmp_path / "ds" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    sources, refused = scan_sources(tmp_path / "ds")
    assert sources == ["v.mp4"]
    assert [(r.src, r.status, r.reason) for r in refused] == [
        (str(tmp_path / "ds" / "gone.mp4"), "failed",
         f"dangling symbolic link to {tmp_path / 'nowhere.mp4'}")]
    jobs, refused_too = plan_resize(tmp_path / "ds", tmp_path / "out")
    assert [j.src for j in jobs] == [str(tmp_path / "ds" / "v.mp4")] and refused_too == refused


def test_check_lists_a_dangling_link_naming_its_target(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "gone.mp4").symlink_to("nowhere.mp4")
    [item] = find_videos(tmp_path / "ds")
    result = check_video(item)
    assert not result.ok and result.reason == "dangling symbolic link to nowhere.mp4 (no such target)"
