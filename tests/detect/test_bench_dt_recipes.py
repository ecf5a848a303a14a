"""benchmarks/bench_detect_track_recipes.py: the declared selection rule."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def recipes(bench_import):
    return bench_import("bench_detect_track_recipes")


def test_rule_asks_the_acceptance_first_then_the_best_map(recipes):
    table = {"D": [50.0, 50.0, 40.0, 20.0],
             "best mAP, gains most on slow": [60.0, 62.0, 45.0, 22.0],
             "gains most on fast": [55.0, 52.0, 42.0, 28.0],
             "gains most on fast, higher": [56.0, 53.0, 41.0, 29.0],
             "below D": [49.0, 45.0, 40.0, 30.0]}
    assert recipes.choose(table) == "gains most on fast, higher"
    del table["gains most on fast"], table["gains most on fast, higher"]
    assert recipes.choose(table) == "best mAP, gains most on slow"       # none qualifies: best mAP
    tie = {"D": [50.0] * 4, "a": [55.0, 51.0, 51.0, 55.0], "b": [55.0, 51.0, 51.0, 55.0]}
    assert recipes.choose(tie) == "a"


def test_bench_renders_its_set_once_and_refuses_a_stale_one(bench_import, tmp_path):
    bench = bench_import("bench_detect_track")
    root = bench.vid_set(tmp_path / "vid", {"val": 1}, 3, (64, 48), seed=0)
    first = (root / "synth.json").read_text()
    assert bench.vid_set(root, {"val": 1}, 3, (64, 48), seed=0) == root  # taken as it is
    assert (root / "synth.json").read_text() == first
    with pytest.raises(SystemExit, match=r"vid: holds a synthetic VID set made with .*\[64, 48\]"):
        bench.vid_set(root, {"val": 1}, 3, (128, 96), seed=0)
    assert bench.anchor_scales((128, 96)) == [16, 32, 64] and bench.anchor_scales((256, 192)) == [32, 64, 128]
