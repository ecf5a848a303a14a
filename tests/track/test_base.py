"""The tracker interface, the registry and box arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track import TrackResult, as_box, create_tracker, register_tracker
from deepvideo.track.base import check_frame
from deepvideo.track.boxes import center_error, clip_box, iou, polygon_to_box


def test_as_box_names_what_is_wrong():
    assert as_box([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="init box: width and height must be positive"):
        as_box((0, 0, 0, 5), "init box")
    with pytest.raises(ValueError, match="not finite"):
        as_box((0, float("nan"), 3, 5))
    with pytest.raises(ValueError, match="expected 4 numbers"):
        as_box((1, 2, 3))


def test_check_frame_rejects_non_rgb_uint8():
    check_frame(np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=r"RGB uint8 array \[H, W, 3\], got float32"):
        check_frame(np.zeros((4, 5, 3), np.float32))


def test_iou_against_hand_computed_values():
    a = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]]
    b = [[5, 0, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]]
    np.testing.assert_allclose(iou(a, b), [50 / 150, 1.0, 0.0, 0.0])


def test_center_error_and_polygon_to_box():
    assert center_error([0, 0, 2, 2], [3, 4, 2, 2])[0] == pytest.approx(5.0)
    np.testing.assert_allclose(polygon_to_box([1, 2, 5, 1, 6, 4, 2, 5]), [[1, 1, 5, 4]])


def test_clip_box_keeps_the_box_inside_the_frame():
    np.testing.assert_allclose(clip_box([-5, 90, 20, 20], 100, 50), [0, 80, 20, 20])
    np.testing.assert_allclose(clip_box([10, 10, 0.1, 500], 100, 50), [10, 0, 1, 100])


def test_registry_builds_by_name_with_overrides_and_rejects_unknown_names(monkeypatch):
    from deepvideo.track import registry

    registry.list_trackers()  # the real trackers registered first, into the real registry
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # leave no test entry
    @register_tracker("_test_static", paper="none")
    class Static:
        """Returns the first box forever."""

        def __init__(self, grow: float = 0.0):
            self.grow = grow

        def initialize(self, frame, box):
            self.box = as_box(box)

        def track(self, frame):
            x, y, w, h = self.box
            return TrackResult((x, y, w + self.grow, h), 1.0)

    tracker = create_tracker("_test_static", grow=2.0)
    tracker.initialize(np.zeros((8, 8, 3), np.uint8), (1, 1, 3, 3))
    assert tracker.track(np.zeros((8, 8, 3), np.uint8)).box == (1, 1, 5, 3)
    with pytest.raises(ValueError, match="registered twice"):
        register_tracker("_test_static")(Static)
    with pytest.raises(KeyError, match="unknown tracker 'nosuch'"):
        create_tracker("nosuch")
