"""flow.extract: dangling links are failures naming the target; --out must be a folder."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.flow.extract import ExtractOptions, extract, plan
from deepvideo.io import write_video


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "ds"
    frames = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    write_video(root / "v.mp4", frames, fps=5)
    (root / "gone.mp4").symlink_to("nowhere.mp4")
    return root


def test_a_dangling_link_is_planned_as_a_failure(dataset, tmp_path):
    jobs = {j.video.name: j for j in plan([dataset], tmp_path / "out")}
    assert jobs["gone.mp4"].out is None
    assert jobs["gone.mp4"].error == f"{dataset / 'gone.mp4'}: dangling symbolic link to nowhere.mp4"
    assert jobs["v.mp4"].error is None
    summary = extract([dataset], tmp_path / "out", ExtractOptions(method="dis"), progress=False)
    assert [f["video"] for f in summary.failed] == [str(dataset / "gone.mp4")]
    assert len(summary.done) == 1


def test_out_that_is_a_file_is_refused_before_any_work(dataset, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"--out {taken}: exists and is not a folder"):
        extract([dataset], taken, ExtractOptions(method="dis"), progress=False)
    assert taken.read_text() == "x"
