"""One textured object moving over a textured background: the renderer behind the object sets.

The world is a torus the size of the view: the background texture tiles seamlessly and an
object leaving one edge re-enters at the opposite one. With the object's trajectory centre
drawn uniformly on the torus, the object's position is uniform over the frame in EVERY
frame, whatever the motion: a translation only shifts a uniform distribution on a torus.
So position never tells the class, not even in the first or last frame.

Sizes follow the "mirror" rule: every video draws a log-diameter ``u`` and a range ``r``;
``grow`` sweeps ``u - r/2 -> u + r/2``, ``shrink`` the reverse, and every other motion keeps
a constant ``u + r * tau`` with ``tau`` one of the same per-frame offsets, drawn at random. The
size distribution over all frames (and in the middle frame) is therefore the same for every
class. (No monotonic size change can also match at the first or last frame for both
grow and shrink; those frames carry a weak size cue.)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from deepvideo.data.synth.common import (
    Clip,
    RenderParams,
    affine_matrix,
    box_intersects,
    composite,
    make_sprite,
    midpoint_times,
    moving_camera,
    static_camera,
    textured_background,
    to_uint8,
)

MOTIONS = ("left", "right", "up", "down", "clockwise", "counterclockwise", "grow", "shrink",
           "orbit", "still")
_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def sample_motion(rng: np.random.Generator, motion: str, params: RenderParams
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-frame world ``center [T,2]`` (x, y), ``size [T]`` (diameter, px), ``angle [T]``, and
    the largest size of the video's size sweep (``exp(u + r/2)``, reached only by grow/shrink).

    Angles are clockwise on screen (image y axis points down).
    """
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")
    t_count, w, h, m = params.frames, params.width, params.height, params.unit
    tau = midpoint_times(t_count)
    steps = np.arange(t_count) - (t_count - 1) / 2  # frames from the middle frame
    mid = rng.uniform(0, 1, size=2) * (w, h)
    u = rng.uniform(math.log(0.2 * m), math.log(0.34 * m))
    r = rng.uniform(math.log(1.8), math.log(2.4))
    angle0 = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(0.012, 0.025) * m  # px per frame
    if motion == "grow":
        log_size = u + r * tau
    elif motion == "shrink":
        log_size = u - r * tau
    else:
        log_size = np.full(t_count, u + r * tau[rng.integers(t_count)])
    angle = np.full(t_count, angle0)
    center = np.repeat(mid[None], t_count, axis=0)
    if motion in _DIRECTIONS:
        center = mid + steps[:, None] * speed * np.array(_DIRECTIONS[motion])
    elif motion in ("clockwise", "counterclockwise"):
        # fast enough for the rim of the smallest object to move about a pixel per frame, and
        # below half of the smallest symmetry period (90 deg: square, cross) so direction is unambiguous
        omega = math.radians(rng.uniform(6.0, 10.0)) * (1 if motion == "clockwise" else -1)
        angle = angle0 + omega * steps
    elif motion == "orbit":
        radius = rng.uniform(0.1, 0.2) * m
        omega = speed / radius * (1 if rng.random() < 0.5 else -1)
        phase = rng.uniform(0, 2 * math.pi) + omega * steps
        center = mid + radius * np.stack([np.cos(phase), np.sin(phase)], 1)
    center = np.mod(center, (w, h))
    return center, np.exp(log_size), angle, math.exp(u + r / 2)


def render_object_clip(scene_rng: np.random.Generator, camera_rng: np.random.Generator,
                       params: RenderParams, shape: str, motion: str) -> Clip:
    """Render one object of ``shape`` doing ``motion`` over a random textured background."""
    t_count, w, h = params.frames, params.width, params.height
    center, size, angle, largest = sample_motion(scene_rng, motion, params)
    background = textured_background(scene_rng, h, w)
    # The sprite is drawn for the largest size of the sweep in every class, so the drawn/shown
    # scale ratio (and any resampling softness) has the same distribution in every class.
    sprite_px = int(math.ceil(largest * 1.05)) + 4
    sprite = make_sprite(scene_rng, shape, sprite_px)
    origin = ((sprite_px - 1) / 2, (sprite_px - 1) / 2)
    cameras = moving_camera(camera_rng, t_count, (h, w)) if params.moving_camera else static_camera(t_count)
    frames = np.empty((t_count, h, w, 3), np.float32)
    masks = np.zeros((t_count, h, w), np.float32)
    view_center = np.array([w / 2, h / 2, 1.0])
    view_pos = np.empty((t_count, 2))
    for t in range(t_count):
        cam = cameras[t]
        if params.moving_camera:
            canvas = cv2.warpAffine(background, cam[:2], (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_WRAP)
        else:
            canvas = background.copy()
        # the torus copy of the object nearest to what the camera looks at, and its neighbours
        looked_at = np.linalg.solve(cam, view_center)[:2]
        k0 = np.round((looked_at - center[t]) / (w, h))
        obj = affine_matrix(size[t] / sprite.diameter, angle[t], tuple(center[t]), origin=origin)
        nearest = None
        for kx in (k0[0] - 1, k0[0], k0[0] + 1):
            for ky in (k0[1] - 1, k0[1], k0[1] + 1):
                shift = np.array([[1, 0, kx * w], [0, 1, ky * h], [0, 0, 1.0]])
                matrix = cam @ shift @ obj
                if kx == k0[0] and ky == k0[1]:
                    nearest = matrix
                if box_intersects(matrix, sprite_px, w, h):
                    np.maximum(masks[t], composite(canvas, sprite.rgba, matrix), out=masks[t])
        frames[t] = canvas
        view_pos[t] = (nearest @ np.array([origin[0], origin[1], 1.0]))[:2]
    zoom = np.sqrt(np.abs(np.linalg.det(cameras[:, :2, :2])))
    info = {
        "shape": shape,
        "motion": motion,
        "center": view_pos,
        "size": size * zoom,
        "angle": angle,
        "mask": to_uint8(masks),
        "camera": "moving" if params.moving_camera else "static",
    }
    return Clip(frames=to_uint8(frames), info=info)
