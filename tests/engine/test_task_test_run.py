"""`deepvideo test` dispatch: tasks without a test protocol say so and name the right command."""

import pytest

from deepvideo.engine.config import ConfigError
from deepvideo.engine.task import task_class


def test_a_tracking_task_points_to_track_bench():
    with pytest.raises(ConfigError, match="deepvideo track bench"):
        task_class("siamfc").test_run("runs/x")


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: .*detect_track"):
        task_class("nosuch")
