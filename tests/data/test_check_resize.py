"""data.check (find and decode-check videos) and data.resize (re-encode, resumable, safe paths)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from deepvideo.data.check import (
    VideoItem,
    check_video,
    check_videos,
    find_videos,
    items_from_index,
    summarize,
)
from deepvideo.data.record import DatasetIndex, VideoRecord
from deepvideo.data.resize import even_output_size, plan_resize, resize_video, run_resize
from deepvideo.io import VideoReader, probe, write_frame_folder, write_video


def _frames(n=12, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture()
def dataset(tmp_path):
    """class_a/{v1.mp4, v2.avi->bad text}, class_b/sub/v3.mp4, a frame folder, junk files."""
    root = tmp_path / "ds"
    write_video(root / "class_a" / "v1.mp4", _frames(), fps=25)
    write_video(root / "class_b" / "sub" / "v3.mp4", _frames(10, 40, 30, seed=1), fps=10)
    (root / "class_a" / "v2.avi").write_text("not a video")
    (root / "class_a" / "empty.mp4").touch()
    (root / "class_a" / "notes.txt").write_text("ignored")
    (root / "class_a" / ".hidden.mp4").write_text("ignored")
    write_frame_folder(root / "class_c" / "clip", _frames(3))
    return root


def test_find_videos_recursive_sorted(dataset):
    items = find_videos(dataset)
    rel = [os.path.relpath(i.path, dataset) for i in items]
    assert rel == ["class_a/empty.mp4", "class_a/v1.mp4", "class_a/v2.avi", "class_b/sub/v3.mp4",
                   "class_c/clip"]
    with pytest.raises(FileNotFoundError):
        find_videos(dataset / "nope")


def test_check_reports_bad_videos_with_reasons(dataset):
    results = {os.path.relpath(r.path, dataset): r for r in check_videos(find_videos(dataset))}
    good = results["class_a/v1.mp4"]
    assert good.ok and (good.num_frames, good.fps, good.width, good.height) == (12, 25.0, 64, 48)
    assert good.duration == pytest.approx(12 / 25)
    assert results["class_c/clip"].ok and results["class_c/clip"].num_frames == 3
    assert not results["class_a/v2.avi"].ok and "not a readable video" in results["class_a/v2.avi"].reason
    assert results["class_a/empty.mp4"].reason == "empty file (0 bytes)"
    summary = summarize(list(results.values()))
    assert (summary["videos"], summary["ok"], summary["bad"], summary["frames"]) == (5, 3, 2, 25)


def test_check_detects_truncation_and_full_decode(tmp_path):
    path = write_video(tmp_path / "v.mp4", _frames(20), fps=25)
    assert check_video(str(path), full=True).ok
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:-200])  # moov at the end: the index is damaged
    assert not check_video(str(cut)).ok


def test_items_from_index_names_the_annotation_line(tmp_path, dataset):
    index = DatasetIndex([VideoRecord(str(dataset / "class_a" / "v1.mp4"), 0, source="list.txt:1"),
                          VideoRecord(str(tmp_path / "gone.mp4"), 1, source="list.txt:2")], ["a", "b"])
    results = check_videos(items_from_index(index))
    assert results[0].ok
    assert not results[1].ok and results[1].reason == "file not found (listed at list.txt:2)"


def test_check_in_a_process_pool_keeps_order(dataset):
    items = find_videos(dataset)[:3]
    serial = check_videos(items)
    pooled = check_videos(items, workers=2)
    assert [r.to_dict() for r in pooled] == [r.to_dict() for r in serial]


def test_even_output_size():
    assert even_output_size(240, 320, 128) == (128, 170)  # 170.67 -> 170 (even)
    assert even_output_size(480, 270, 128) == (228, 128)
    assert even_output_size(48, 64, 48) == (48, 64)


def test_resize_mirrors_layout_and_sets_gop(dataset, tmp_path):
    out = tmp_path / "out"
    jobs, refused = plan_resize(dataset, out)
    assert refused == []
    results = {os.path.relpath(r.src, dataset): r for r in run_resize(jobs, short_side=32, gop=4)}
    assert results["class_a/v1.mp4"].status == "done" and results["class_a/v1.mp4"].frames == 12
    assert results["class_a/v2.avi"].status == "failed" and "v2.avi" in results["class_a/v2.avi"].reason
    v1 = out / "class_a" / "v1.mp4"
    meta = probe(v1)
    assert (meta.num_frames, meta.width, meta.height, meta.fps) == (12, 42, 32, 25.0)
    v3 = probe(out / "class_b" / "sub" / "v3.mp4")
    assert (v3.width, v3.height, v3.num_frames, v3.fps) == (32, 42, 10, 10.0)
    reader = VideoReader(v1)
    reader.get_frames([0])
    assert reader._index.pts_keys == [0, 4, 8]
    assert not (out / "class_a" / "v2.mp4").exists()  # failures leave no output
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_resize_is_resumable(dataset, tmp_path):
    out = tmp_path / "out"
    jobs, _ = plan_resize(dataset, out)
    jobs = [j for j in jobs if j.src.endswith("v1.mp4")]
    # An interrupted earlier run leaves at most a hidden temporary file, never the output name.
    (out / "class_a").mkdir(parents=True)
    (out / "class_a" / ".v1.mp4.part-123.mp4").write_bytes(b"partial")
    assert [r.status for r in run_resize(jobs, short_side=32)] == ["done"]
    stamp = os.stat(out / "class_a" / "v1.mp4").st_mtime_ns
    second = run_resize(jobs, short_side=32)
    assert [(r.status, r.reason) for r in second] == [("skipped", "output exists")]
    assert os.stat(out / "class_a" / "v1.mp4").st_mtime_ns == stamp


def test_resize_refuses_escaping_outputs(tmp_path):
    src, out, outside = tmp_path / "src", tmp_path / "out", tmp_path / "outside"
    write_video(src / "sub" / "v.mp4", _frames(4), fps=5)
    write_video(src / "ok.mp4", _frames(4), fps=5)
    out.mkdir()
    outside.mkdir()
    (out / "sub").symlink_to(outside, target_is_directory=True)  # output folder links elsewhere
    jobs, refused = plan_resize(src, out)
    assert [os.path.basename(j.src) for j in jobs] == ["ok.mp4"]
    assert len(refused) == 1 and refused[0].status == "failed"
    assert str(src / "sub" / "v.mp4") in refused[0].reason and "outside" in refused[0].reason
    jobs, refused = plan_resize(src, out, sources=["../elsewhere.mp4", str(tmp_path / "abs.mp4")])
    assert jobs == [] and len(refused) == 2
    assert all("outside the dataset root" in r.reason or "escapes" in r.reason for r in refused)
    assert not list(outside.iterdir())


def test_resize_names_outputs_of_same_named_sources_apart(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_video(src / "a.mp4", _frames(3), fps=5)
    (src / "a.avi").write_bytes((src / "a.mp4").read_bytes())
    (src / "a.avi.mp4").write_bytes((src / "a.mp4").read_bytes())
    jobs, refused = plan_resize(src, out)
    assert sorted(os.path.relpath(j.dst, out) for j in jobs) == ["a.avi.mp4", "a.mp4"]
    assert len(refused) == 1 and "is also the output of" in refused[0].reason


def test_resize_video_odd_source(tmp_path):
    src = write_video(tmp_path / "odd.mp4", _frames(5, 47, 63), fps=5)
    assert resize_video(src, tmp_path / "o.mp4", short_side=20, gop=2) == 5
    meta = probe(tmp_path / "o.mp4")
    assert (meta.width, meta.height) == (26, 20)


def test_resize_pool(dataset, tmp_path):
    jobs, _ = plan_resize(dataset, tmp_path / "out")
    results = run_resize(jobs, short_side=24, workers=2)
    assert sorted(r.status for r in results) == ["done", "done", "failed", "failed"]


def test_video_item_defaults():
    assert VideoItem("x").start_index == 1


def test_check_lets_a_bug_through_instead_of_calling_the_video_bad(dataset, monkeypatch):
    import deepvideo.data.check as check

    def buggy_open(*args, **kwargs):
        raise KeyError("a bug in the check, not a bad video")

    monkeypatch.setattr(check, "open_video", buggy_open)
    with pytest.raises(KeyError, match="a bug in the check"):
        check_video(str(dataset / "class_a" / "v1.mp4"))


def test_resize_reports_an_output_that_cannot_be_written(dataset, tmp_path):
    from deepvideo.data.resize import ResizeJob

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")
    src = dataset / "class_a" / "v1.mp4"
    [result] = run_resize([ResizeJob(str(src), str(blocker / "v1.mp4"))], short_side=32)
    assert result.status == "failed" and result.reason.startswith(f"{blocker / 'v1.mp4'}: ")
