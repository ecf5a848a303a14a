"""``dynamic-scenes``: dynamic-texture classes, half filmed by a static camera, half by a moving one.

A small stand-in for YUP++ (Feichtenhofer, Pinz, Wildes, "Temporal Residual Networks for
Dynamic Scene Recognition", CVPR 2017), which has a static-camera and a moving-camera subset
of every class. Six classes, each a kind of motion of a random texture:

- ``FlowingWater``: a stretched noise texture advected along a random direction, with a
  travelling sinusoidal turbulence;
- ``Flicker``: a still texture whose brightness flickers over coarse random blobs;
- ``FallingParticles``: snow-like dots falling (with a random wind slant) at depth-dependent speeds;
- ``RotatingBlades``: a fan with 2-5 blades turning either way;
- ``DriftingClouds``: soft clouds drifting slowly over a sky gradient while morphing;
- ``Ripples``: concentric waves from one to three sources refracting and shading a texture.

Colours and palettes are random in every class, so a class is told by how the picture moves
rather than by its colours.

Camera subsets: video ``c`` (0-based index within its class) is filmed by a static camera
when ``c`` is even and by a moving camera (pan, zoom, jitter) when odd, so each class (and
every group of two consecutive clips) is balanced. The writer records the subset of every
video in ``DIR/annotations/camera.txt``, one line per video, sorted like ``classInd.txt``::

    <ClassName>/v_<ClassName>_g<GG>_c<CC>.mp4 static
    <ClassName>/v_<ClassName>_g<GG>_c<CC>.mp4 moving

(path relative to ``DIR/videos``, one space, then ``static`` or ``moving``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from deepvideo.data.synth.common import (
    Clip,
    RenderParams,
    SynthSet,
    apply_camera,
    moving_camera,
    palette_map,
    periodic_noise,
    random_color,
    textured_background,
    to_uint8,
)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return x, y


def _palette(rng: np.random.Generator, k: int = 3) -> np.ndarray:
    """``k`` colours ordered dark to bright around a random hue."""
    base_h = rng.uniform(0, 360)
    cols = []
    for i in range(k):
        hsv = np.array([[[(base_h + rng.uniform(-40, 40)) % 360, rng.uniform(0.2, 0.9),
                          0.15 + 0.8 * (i + rng.uniform(0.1, 0.9)) / k]]], np.float32)
        cols.append(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    return np.stack(cols)


def flowing_water(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * math.pi)
    direction = np.array([math.cos(angle), math.sin(angle)], np.float32)
    speed = rng.uniform(0.02, 0.045) * unit
    coarse = periodic_noise(rng, h, w, beta=2.4, cutoff=0.25, anisotropy=3.0, angle=angle)
    fine = periodic_noise(rng, h, w, beta=1.6, cutoff=0.45, anisotropy=4.0, angle=angle)
    colors = _palette(rng)
    x, y = _grid(h, w)
    wavelength = rng.uniform(0.15, 0.35) * unit
    amp = rng.uniform(0.01, 0.03) * unit
    across = -x * direction[1] + y * direction[0]
    out = np.empty((frames, h, w, 3), np.float32)
    for t in range(frames):
        wobble = amp * np.sin(2 * math.pi * across / wavelength + 0.5 * t).astype(np.float32)
        mx = x - direction[0] * speed * t + wobble * -direction[1]
        my = y - direction[1] * speed * t + wobble * direction[0]
        a = cv2.remap(coarse, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        b = cv2.remap(fine, x - direction[0] * 1.6 * speed * t, y - direction[1] * 1.6 * speed * t,
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        out[t] = palette_map(0.65 * a + 0.35 * b, colors)
    return out


def flicker(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    base = textured_background(rng, h, w, contrast=(0.3, 0.6))
    cells = int(rng.integers(3, 7))
    gh, gw = max(2, round(cells * h / unit)), max(2, round(cells * w / unit))
    local = rng.normal(0, 1, size=(frames, gh, gw)).astype(np.float32)
    glob = rng.normal(0, 1, size=frames).astype(np.float32)
    strength = rng.uniform(0.25, 0.45)
    out = np.empty((frames, h, w, 3), np.float32)
    for t in range(frames):
        blobs = cv2.resize(local[t], (w, h), interpolation=cv2.INTER_CUBIC)
        gain = 1.0 + strength * (0.7 * blobs + 0.5 * glob[t])
        out[t] = base * np.clip(gain, 0.2, 2.0)[..., None]
    return np.clip(out, 0, 1)


def falling_particles(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    base = textured_background(rng, h, w, contrast=(0.2, 0.5)) * rng.uniform(0.4, 0.8)
    n = int(rng.uniform(0.004, 0.009) * h * w)
    depth = rng.uniform(0.4, 1.0, size=n)  # near particles are bigger, brighter and faster
    wind = math.tan(math.radians(rng.uniform(-25, 25)))
    vy = depth * rng.uniform(0.025, 0.05) * unit
    vx = vy * wind
    sway = rng.uniform(0, 2 * math.pi, size=n)
    x0, y0 = rng.uniform(0, w, size=n), rng.uniform(0, h, size=n)
    t = np.arange(frames)[:, None]
    xs = np.mod(x0 + vx * t + 0.6 * np.sin(0.3 * t + sway), w)
    ys = np.mod(y0 + vy * t, h)
    weight = np.broadcast_to(depth, xs.shape)
    acc = np.zeros(frames * h * w, np.float32)
    xi, yi = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = xs - xi, ys - yi
    tt = np.broadcast_to(t, xs.shape)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                        (1, 1, fx * fy)):
        idx = (tt * h + (yi + dy) % h) * w + (xi + dx) % w
        np.add.at(acc, idx.ravel(), (wgt * weight).ravel().astype(np.float32))
    acc = acc.reshape(frames, h, w)
    color = random_color(rng, sat=(0.0, 0.3), val=(0.85, 1.0))
    sigma = 0.02 * unit / 2.5
    out = np.empty((frames, h, w, 3), np.float32)
    for k in range(frames):
        alpha = np.clip(cv2.GaussianBlur(acc[k], (0, 0), sigma) * (2 * math.pi * sigma ** 2) * 1.2, 0, 1)
        out[k] = base * (1 - alpha[..., None]) + color * alpha[..., None]
    return out


def rotating_blades(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    base = textured_background(rng, h, w)
    x, y = _grid(h, w)
    cx = w / 2 + rng.uniform(-0.15, 0.15) * unit
    cy = h / 2 + rng.uniform(-0.15, 0.15) * unit
    radius = rng.uniform(0.3, 0.42) * unit
    blades = int(rng.integers(2, 6))
    omega = math.radians(rng.uniform(5, 12)) * (1 if rng.random() < 0.5 else -1)
    width = rng.uniform(0.2, 0.6)  # threshold on cos: larger -> thinner blades
    r = np.hypot(x - cx, y - cy)
    theta = np.arctan2(y - cy, x - cx)
    disc = np.clip(radius - r + 0.5, 0, 1)
    hub = np.clip(0.12 * radius - r + 0.5, 0, 1)
    c_blade, c_hub = random_color(rng), random_color(rng)
    shade = 0.75 + 0.25 * np.clip(r / radius, 0, 1)
    out = np.empty((frames, h, w, 3), np.float32)
    for t in range(frames):
        c = np.cos(blades * (theta - omega * t))
        edge = np.clip((c - width) * (r * blades + 1) * 0.5, 0, 1)  # ~1 px soft edge
        alpha = (edge * disc)[..., None]
        img = base * (1 - alpha) + (c_blade * shade[..., None]) * alpha
        out[t] = img * (1 - hub[..., None]) + c_hub * hub[..., None]
    return out


def drifting_clouds(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    top, bottom = random_color(rng, val=(0.3, 0.7)), random_color(rng, val=(0.5, 0.95))
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3))
    n1 = periodic_noise(rng, h, w, beta=3.2, cutoff=0.06) - 0.5
    n2 = periodic_noise(rng, h, w, beta=3.2, cutoff=0.06) - 0.5
    stack = np.stack([n1, n2], 2)
    angle = rng.uniform(-math.pi / 6, math.pi / 6) + (math.pi if rng.random() < 0.5 else 0.0)
    speed = rng.uniform(0.006, 0.015) * unit
    morph = rng.uniform(0.02, 0.05)
    cover = rng.uniform(-0.1, 0.15)
    cloud = random_color(rng, sat=(0.0, 0.15), val=(0.75, 1.0))
    out = np.empty((frames, h, w, 3), np.float32)
    for t in range(frames):
        m = np.float32([[1, 0, speed * t * math.cos(angle)], [0, 1, speed * t * math.sin(angle)]])
        shifted = cv2.warpAffine(stack, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        field = shifted[..., 0] * math.cos(morph * t) + shifted[..., 1] * math.sin(morph * t)
        alpha = np.clip((field - cover) * 6.0, 0, 1)[..., None]
        out[t] = sky * (1 - alpha) + cloud * alpha
    return out


def ripples(rng: np.random.Generator, frames: int, h: int, w: int, unit: float) -> np.ndarray:
    base = textured_background(rng, h, w)
    x, y = _grid(h, w)
    sources = int(rng.integers(1, 4))
    centres = np.array([w / 2, h / 2]) + rng.uniform(-0.35, 0.35, size=(sources, 2)) * unit
    wavelength = rng.uniform(0.12, 0.25, size=sources) * unit
    kappa = 2 * math.pi / wavelength
    omega = rng.uniform(0.4, 0.9, size=sources)
    phase = rng.uniform(0, 2 * math.pi, size=sources)
    dist = [np.hypot(x - cx, y - cy) for cx, cy in centres]
    decay = [np.exp(-d / (0.6 * unit)) for d in dist]
    refraction = rng.uniform(0.015, 0.03) * unit
    light = rng.uniform(0.15, 0.3)
    out = np.empty((frames, h, w, 3), np.float32)
    for t in range(frames):
        height = sum(dk * np.sin(kappa[k] * d - omega[k] * t + phase[k])
                     for k, (d, dk) in enumerate(zip(dist, decay, strict=True))).astype(np.float32)
        gy, gx = np.gradient(height)
        k = np.float32(kappa.mean())
        gx, gy = gx / k, gy / k  # slopes normalised to about [-1, 1]
        shift = np.float32(refraction)
        img = cv2.remap(base, x + shift * gx, y + shift * gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[t] = np.clip(img * (1 + light * gx[..., None]), 0, 1)
    return out


SCENES = {
    "FlowingWater": flowing_water,
    "Flicker": flicker,
    "FallingParticles": falling_particles,
    "RotatingBlades": rotating_blades,
    "DriftingClouds": drifting_clouds,
    "Ripples": ripples,
}
CLASSES = tuple(SCENES)
WORLD_MARGIN = 1.5  # a moving camera looks at a world this much larger than the view


def camera_of(video_index: int) -> str:
    """``"static"`` for even video indices within a class, ``"moving"`` for odd ones."""
    return "moving" if video_index % 2 else "static"


def render(class_index: int, video_index: int, scene_rng: np.random.Generator,
           camera_rng: np.random.Generator, params: RenderParams) -> Clip:
    """Render one dynamic-scene video; the camera subset follows ``camera_of(video_index)``."""
    scene = SCENES[CLASSES[class_index]]
    h, w, t_count = params.height, params.width, params.frames
    camera = camera_of(video_index)
    if camera == "static":
        frames = scene(scene_rng, t_count, h, w, params.unit)
    else:
        wh, ww = round(h * WORLD_MARGIN), round(w * WORLD_MARGIN)
        world = scene(scene_rng, t_count, wh, ww, params.unit)
        frames = apply_camera(world, moving_camera(camera_rng, t_count, (h, w), (wh, ww)), (h, w), wrap=False)
    return Clip(frames=to_uint8(frames), info={"camera": camera, "scene": CLASSES[class_index]})


SET = SynthSet(
    name="dynamic-scenes",
    classes=CLASSES,
    render=render,
    default_videos_per_class=50,
    camera_subsets=True,
    description="dynamic textures (water, flicker, particles, blades, clouds, ripples); "
                "half static, half moving camera per class",
)
