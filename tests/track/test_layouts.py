"""deepvideo.track.layouts: the toolkits' file names, round trips, conversion, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track import layouts
from deepvideo.track.layouts import ResultFileError, Run
from deepvideo.track.metrics import VOT_FAILURE, VOT_INIT, VOT_SKIPPED, VOT_TRACKED


def ope_run(seed: int, n: int = 5) -> Run:
    rng = np.random.default_rng(seed)
    boxes = np.round(rng.uniform(1, 50, (n, 4)), 3)
    boxes[2] = np.nan
    return Run(boxes, np.round(rng.uniform(0.001, 0.1, n), 8))


def test_file_names_are_the_toolkits(tmp_path):
    assert layouts.box_path(tmp_path, "otb", "Car") == tmp_path / "Car.txt"
    assert layouts.time_path(tmp_path, "otb", "Car") == tmp_path / "times" / "Car_time.txt"
    assert layouts.box_path(tmp_path, "got10k", "Car", 2) == tmp_path / "Car" / "Car_002.txt"
    assert layouts.time_path(tmp_path, "got10k", "Car", 2) == tmp_path / "Car" / "Car_time.txt"
    assert layouts.box_path(tmp_path, "vot", "Car") == tmp_path / "baseline" / "Car" / "Car_001.txt"
    assert layouts.time_path(tmp_path, "vot", "Car") == \
        tmp_path / "baseline" / "Car" / "Car_001_time.value"
    with pytest.raises(ValueError, match="one repetition"):
        layouts.box_path(tmp_path, "otb", "Car", 2)
    with pytest.raises(ValueError, match="unknown result layout 'lasot'"):
        layouts.box_path(tmp_path, "lasot", "Car")


@pytest.mark.parametrize("layout", ["otb", "got10k"])
def test_ope_round_trip(tmp_path, layout):
    run = ope_run(0)
    layouts.write_run(tmp_path, layout, "Car", 1, run)
    text = layouts.box_path(tmp_path, layout, "Car").read_text().splitlines()
    assert text[2] == "nan,nan,nan,nan" and text[0].count(",") == 3
    (back,) = layouts.read_runs(tmp_path, layout, "Car")
    np.testing.assert_array_equal(back.boxes, run.boxes)
    np.testing.assert_array_equal(back.times, run.times)
    assert layouts.sequence_names(tmp_path, layout) == ["Car"]
    assert layouts.detect_layout(tmp_path) == layout


def test_got10k_time_file_has_one_column_per_repetition(tmp_path):
    runs = [ope_run(k) for k in range(3)]
    for k, run in enumerate(runs, start=1):
        layouts.write_run(tmp_path, "got10k", "Car", k, run)
    table = np.loadtxt(tmp_path / "Car" / "Car_time.txt", delimiter=",")
    np.testing.assert_array_equal(table, np.stack([r.times for r in runs], axis=1))
    # rerunning repetition 2 (e.g. after a crash) replaces its own column only
    layouts.write_run(tmp_path, "got10k", "Car", 2, ope_run(7))
    table = np.loadtxt(tmp_path / "Car" / "Car_time.txt", delimiter=",")
    np.testing.assert_array_equal(table, np.stack([runs[0].times, ope_run(7).times, runs[2].times], 1))
    back = layouts.read_runs(tmp_path, "got10k", "Car")
    np.testing.assert_array_equal(back[2].times, runs[2].times)
    np.testing.assert_array_equal(back[1].boxes, ope_run(7).boxes)


def test_vot_round_trip_keeps_codes(tmp_path):
    codes = np.array([VOT_INIT, VOT_TRACKED, VOT_FAILURE, VOT_SKIPPED, VOT_INIT, VOT_TRACKED])
    boxes = np.full((6, 4), np.nan)
    boxes[[1, 5]] = [[1.5, 2, 3, 4], [5, 6, 7, 8.25]]
    times = np.array([0.1, 0.01, 0.02, np.nan, 0.1, 0.01])
    layouts.write_run(tmp_path, "vot", "bag", 1, Run(boxes, times, codes))
    path = tmp_path / "baseline" / "bag" / "bag_001.txt"
    assert path.read_text().splitlines() == ["1", "1.5,2.0,3.0,4.0", "2", "0", "1",
                                             "5.0,6.0,7.0,8.25"]
    assert (tmp_path / "baseline" / "bag" / "bag_001_time.value").read_text().splitlines()[3] == ""
    (back,) = layouts.read_runs(tmp_path, "vot", "bag")
    np.testing.assert_array_equal(back.codes, codes)
    np.testing.assert_array_equal(back.boxes, boxes)
    np.testing.assert_array_equal(back.times, times)
    with pytest.raises(ValueError, match="VOT runs need codes"):
        layouts.write_run(tmp_path, "vot", "bag", 2, Run(boxes, times))


def test_convert_otb_got10k_both_ways(tmp_path):
    runs = [ope_run(k) for k in range(2)]
    for k, run in enumerate(runs, start=1):
        layouts.write_run(tmp_path / "got", "got10k", "Car", k, run)
    layouts.write_run(tmp_path / "got", "got10k", "Bolt", 1, ope_run(5))
    layouts.write_run(tmp_path / "got", "got10k", "Bolt", 2, ope_run(6))
    with pytest.raises(ValueError, match="2 repetitions.*pass repetition"):
        layouts.convert(tmp_path / "got", "got10k", tmp_path / "otb", "otb")
    assert layouts.convert(tmp_path / "got", "got10k", tmp_path / "otb", "otb", repetition=2) == \
        ["Bolt", "Car"]
    (car,) = layouts.read_runs(tmp_path / "otb", "otb", "Car")
    np.testing.assert_array_equal(car.boxes, runs[1].boxes)
    layouts.convert(tmp_path / "otb", "otb", tmp_path / "back", "got10k")
    (again,) = layouts.read_runs(tmp_path / "back", "got10k", "Car")
    np.testing.assert_array_equal(again.times, runs[1].times)
    with pytest.raises(ValueError, match="cannot convert vot results to otb"):
        layouts.convert(tmp_path / "got", "vot", tmp_path / "x", "otb")


def test_bad_files_are_named(tmp_path):
    (tmp_path / "Car.txt").write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(Exception, match=r"Car.txt, line 2"):
        layouts.read_runs(tmp_path, "otb", "Car")
    (tmp_path / "Car.txt").write_text("1\t2\t3\t4\n5 6 7 8\n")  # other tools' separators
    np.testing.assert_array_equal(layouts.read_runs(tmp_path, "otb", "Car")[0].boxes,
                                  [[1, 2, 3, 4], [5, 6, 7, 8]])
    (tmp_path / "Bus.txt").write_text("1,2,3\n")
    with pytest.raises(ResultFileError, match="line 1: 3 values, expected x,y,w,h"):
        layouts.read_runs(tmp_path, "otb", "Bus")
    vot = tmp_path / "v" / "baseline" / "bag"
    vot.mkdir(parents=True)
    (vot / "bag_001.txt").write_text("1\n1,2,3,4,5,6,7,8\n")
    with pytest.raises(ResultFileError, match="bag_001.txt, line 2: expected a code"):
        layouts.read_runs(tmp_path / "v", "vot", "bag")
    with pytest.raises(FileNotFoundError, match="no results for sequence 'Ghost'"):
        layouts.read_runs(tmp_path, "otb", "Ghost")
    with pytest.raises(ValueError, match="cannot tell the result layout"):
        layouts.detect_layout(tmp_path / "nowhere")
