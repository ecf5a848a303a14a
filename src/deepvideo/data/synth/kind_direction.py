"""``kind-direction``: twelve classes = object kind (circle, square, triangle) x direction.

Like ``motion-shapes`` (random colours, pattern, orientation, size, speed, position and
background, the same balancing of positions), but the object kind is part of the class:
``CircleMoveLeft`` ... ``TriangleMoveDown``. A single frame tells the kind (3 groups) but not
the direction; the motion tells the direction but not the kind; a model needs both.
"""

from __future__ import annotations

import numpy as np

from deepvideo.data.synth.common import Clip, RenderParams, SynthSet
from deepvideo.data.synth.objects import render_object_clip

SHAPE_KINDS = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
CLASS_PARTS = {f"{s.capitalize()}Move{d.capitalize()}": (s, d) for s in SHAPE_KINDS for d in DIRECTIONS}
CLASSES = tuple(CLASS_PARTS)


def render(class_index: int, video_index: int, scene_rng: np.random.Generator,
           camera_rng: np.random.Generator, params: RenderParams) -> Clip:
    """One video of class ``CLASSES[class_index]``."""
    shape, direction = CLASS_PARTS[CLASSES[class_index]]
    return render_object_clip(scene_rng, camera_rng, params, shape, direction)


SET = SynthSet(
    name="kind-direction",
    classes=CLASSES,
    render=render,
    default_videos_per_class=25,
    description="classes = object kind (circle, square, triangle) x direction (left, right, up, down)",
)
