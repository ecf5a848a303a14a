"""The extraction driver: layout, resume after SIGKILL, sharding, failures, unsafe paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvideo.flow import num_flow_fields, read_flow
from deepvideo.flow.extract import ExtractOptions, extract, parse_shard, plan, shard_from_env
from deepvideo.io import write_video

OPTS = ExtractOptions(method="dis", chunk=3)


def _frames(n, seed, h=48, w=64):
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur((rng.random((h + 16, w + 16, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
    return np.stack([np.roll(base, t, axis=1)[8:-8, 8:-8] for t in range(n)])


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "ds"
    write_video(root / "walk" / "v1.mp4", _frames(6, 0), fps=10)
    write_video(root / "walk" / "v2.mp4", _frames(5, 1), fps=10)
    write_video(root / "run" / "v3.avi", _frames(4, 2), fps=10)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("manifest")}


def test_layout_rgb_and_manifest(dataset, tmp_path):
    out = tmp_path / "out"
    s = extract([dataset], out, ExtractOptions(method="dis", rgb=True, chunk=2), progress=False)
    assert len(s.done) == 3 and not s.failed and s.frames == 15
    v1 = out / "walk" / "v1"
    assert num_flow_fields(v1) == 5
    assert (v1 / "img_00006.jpg").exists() and not (v1 / "img_00007.jpg").exists()
    meta = json.loads((v1 / "flow.json").read_text())
    assert meta["count"] == 5 and meta["bound"] == 20.0 and meta["method"] == "dis"
    flow = read_flow(v1)
    assert flow.shape == (5, 2, 48, 64)
    assert flow[:, 0, 10:-10, 10:-10].mean().item() == pytest.approx(1.0, abs=0.25)  # 1 px/frame right
    lines = (out / "manifest-0-of-1.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["video"] for x in lines) == ["run/v3.avi", "walk/v1.mp4", "walk/v2.mp4"]
    again = extract([dataset], out, ExtractOptions(method="dis", rgb=True), progress=False)
    assert len(again.skipped) == 3 and not again.done


def test_chunking_does_not_change_the_result(dataset, tmp_path):
    a = extract([dataset / "walk" / "v1.mp4"], tmp_path / "a", ExtractOptions(method="dis", chunk=2,
                                                                                 fmt="npz"), progress=False)
    b = extract([dataset / "walk" / "v1.mp4"], tmp_path / "b", ExtractOptions(method="dis", chunk=64,
                                                                                 fmt="npz"), progress=False)
    assert a.done and b.done
    assert torch.equal(read_flow(tmp_path / "a" / "v1"), read_flow(tmp_path / "b" / "v1"))
    assert (tmp_path / "a" / "v1" / "flow.npz").exists()


def test_sigkill_mid_run_then_resume_gives_same_files(dataset, tmp_path):
    ref = tmp_path / "ref"
    extract([dataset], ref, OPTS, progress=False)
    out = tmp_path / "out"
    code = ("import sys; from deepvideo.flow.extract import extract, ExtractOptions; "
            "extract([sys.argv[1]], sys.argv[2], ExtractOptions(method='dis', chunk=3), progress=False)")
    env = {**os.environ, "DEEPVIDEO_FLOW_TEST_KILL_AFTER_FIELDS": "6"}  # inside the second video
    proc = subprocess.run([sys.executable, "-c", code, str(dataset), str(out)], env=env, capture_output=True)
    assert proc.returncode == -9
    manifest = (out / "manifest-0-of-1.jsonl").read_text().splitlines()
    assert len(manifest) == 1  # first video finished, second one cut
    assert [p.name for p in out.rglob(".*tmp-*")]  # its half-written temp folder is there...
    finished = {p.parent for p in out.rglob("x_*.jpg") if not p.parent.name.startswith(".")}
    assert len(finished) == 1  # ...and no half-written video folder under a final name
    s = extract([dataset], out, OPTS, progress=False)
    assert len(s.skipped) == 1 and len(s.done) == 2
    assert not list(out.rglob(".*tmp-*"))
    assert _tree(out) == _tree(ref)


def test_shards_split_the_work(dataset, tmp_path):
    out = tmp_path / "out"
    parts = [extract([dataset], out, OPTS, shard=(i, 2), progress=False) for i in range(2)]
    assert sorted(len(p.done) for p in parts) == [1, 2]
    assert {d["video"] for p in parts for d in p.done} == {"run/v3.avi", "walk/v1.mp4", "walk/v2.mp4"}
    assert (out / "manifest-1-of-2.jsonl").exists()
    assert len(extract([dataset], out, OPTS, progress=False).skipped) == 3  # reads every shard's manifest
    os.environ["RANK"], os.environ["WORLD_SIZE"] = "1", "2"
    try:
        assert [str(j.rel) for j in plan([dataset], out, shard_from_env())] == ["walk/v1.mp4"]
    finally:
        del os.environ["RANK"], os.environ["WORLD_SIZE"]
    assert parse_shard("1/3") == (1, 3)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("3")
    with pytest.raises(ValueError, match="0 <= i < n"):
        parse_shard("3/3")


def test_corrupt_video_reported_not_fatal(dataset, tmp_path):
    (dataset / "walk" / "broken.mp4").write_bytes(b"not a video at all")
    write_video(dataset / "walk" / "single.mp4", _frames(1, 3), fps=10)
    s = extract([dataset], tmp_path / "out", OPTS, progress=False)
    assert len(s.done) == 3
    reasons = {Path(f["video"]).name: f["reason"] for f in s.failed}
    assert set(reasons) == {"broken.mp4", "single.mp4"}
    assert "broken.mp4" in reasons["broken.mp4"]
    assert "at least 2" in reasons["single.mp4"]
    assert not (tmp_path / "out" / "walk" / "broken").exists()


def test_link_escaping_output_is_refused(dataset, tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (out / "walk").mkdir(parents=True)
    os.symlink(outside, out / "walk" / "v1")  # output of walk/v1.mp4 would land outside OUT
    s = extract([dataset], out, OPTS, progress=False)
    assert len(s.done) == 2
    assert len(s.failed) == 1 and "v1" in s.failed[0]["reason"] and "outside" in s.failed[0]["reason"]
    assert not list(outside.iterdir())


def test_default_method_is_the_benchmark_choice(dataset, tmp_path):
    from deepvideo.flow.extract import DEFAULT_METHOD, DEFAULT_PARAMS

    assert (DEFAULT_METHOD, DEFAULT_PARAMS) == ("tvl1", {"preset": "fast"})
    s = extract([dataset / "run" / "v3.avi"], tmp_path / "out", ExtractOptions(), progress=False)
    assert len(s.done) == 1 and s.done[0]["method"] == "tvl1(preset=fast)"
    flow = read_flow(tmp_path / "out" / "v3")
    assert flow.shape == (3, 2, 48, 64)
    assert flow[:, 0, 10:-10, 10:-10].mean().item() == pytest.approx(1.0, abs=0.25)


def test_worker_processes_give_the_same_files(dataset, tmp_path):
    one = extract([dataset / "walk"], tmp_path / "one", OPTS, progress=False)
    two = extract([dataset / "walk"], tmp_path / "two", OPTS, workers=2, progress=False)
    assert len(one.done) == len(two.done) == 2
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_relative_input_and_output_paths_mirror_the_input_root(dataset, tmp_path, monkeypatch):
    ref = extract([dataset], tmp_path / "ref", OPTS, progress=False)
    monkeypatch.chdir(tmp_path)
    rel = extract([Path("ds")], Path("rel"), OPTS, progress=False)
    assert len(rel.done) == len(ref.done) == 3
    assert _tree(tmp_path / "rel") == _tree(tmp_path / "ref")  # rel/<class>/<video>/, not rel/ds/...
