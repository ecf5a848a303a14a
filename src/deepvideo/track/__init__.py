"""Single-object tracking: one tracker interface, a registry, sequence formats, protocols
(OPE, VOT reset-based, GOT-10k) and their metrics.

A tracker is given the first frame and the target's box, then one frame at a time::

    from deepvideo.track import create_tracker
    tracker = create_tracker("mosse")
    tracker.initialize(frame0, (x, y, w, h))      # RGB uint8 [H, W, 3]; box in pixels, 0-based
    result = tracker.track(frame1)                # TrackResult(box, score, extras)

Trackers never read files; :mod:`deepvideo.track.datasets` reads sequences and
:mod:`deepvideo.track.evaluate` runs trackers over them.
"""

from deepvideo.track.base import Box, Tracker, TrackResult, as_box
from deepvideo.track.registry import (
    TrackerInfo,
    create_tracker,
    get_tracker_info,
    list_trackers,
    register_tracker,
)

__all__ = [
    "Box", "TrackResult", "Tracker", "TrackerInfo", "as_box", "create_tracker",
    "get_tracker_info", "list_trackers", "register_tracker",
]
