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
