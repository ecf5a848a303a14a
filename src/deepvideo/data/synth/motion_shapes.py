"""``motion-shapes``: ten classes told apart ONLY by motion.

Every video shows one textured object (random kind among circle, ellipse, square,
triangle, star, cross; random colours, surface pattern, orientation, size and speed) over a
random tileable texture. The class is the motion alone: move left/right/up/down, rotate
clockwise/counterclockwise, grow, shrink, orbit on a circle, or stay still. Everything a
single frame shows (object kind, colour, texture, position, orientation, size, background)
has the same distribution in every class (see :mod:`deepvideo.data.synth.objects` for how
positions and sizes are balanced), so a single-frame classifier stays at chance (10%) while
a motion model can reach ~100%. With ``moving_camera`` the whole frame (background and
object) is also panned, zoomed and jittered, so the class lives in the object's motion
relative to the background.
"""

from __future__ import annotations

import numpy as np

from deepvideo.data.synth.common import SHAPES, Clip, RenderParams, SynthSet
from deepvideo.data.synth.objects import render_object_clip

CLASS_MOTIONS = {
    "MoveLeft": "left",
    "MoveRight": "right",
    "MoveUp": "up",
    "MoveDown": "down",
    "RotateClockwise": "clockwise",
    "RotateCounterclockwise": "counterclockwise",
    "Grow": "grow",
    "Shrink": "shrink",
    "Orbit": "orbit",
    "Still": "still",
}
CLASSES = tuple(CLASS_MOTIONS)


def render(class_index: int, video_index: int, scene_rng: np.random.Generator,
           camera_rng: np.random.Generator, params: RenderParams) -> Clip:
    """One video of class ``CLASSES[class_index]`` with a random object kind."""
    shape = SHAPES[int(scene_rng.integers(len(SHAPES)))]
    return render_object_clip(scene_rng, camera_rng, params, shape, CLASS_MOTIONS[CLASSES[class_index]])


SET = SynthSet(
    name="motion-shapes",
    classes=CLASSES,
    render=render,
    default_videos_per_class=30,
    description="classes defined only by motion (move, rotate, grow, shrink, orbit, still)",
)
