"""Building blocks shared by the synthetic sets: seeds, parameters, textures, sprites, cameras.

Everything here is vectorised numpy / OpenCV on float32 images in ``[0, 1]``; no per-pixel
Python loops. Randomness always comes from an explicit ``np.random.Generator`` so that a
video is a pure function of its seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class RenderParams:
    """Geometry and timing of every video of a synthetic set."""

    width: int = 112
    height: int = 112
    frames: int = 32
    fps: float = 25.0
    moving_camera: bool = False
    mixed_camera: bool = False  # odd video indices (within a class) moving camera, even ones static

    def __post_init__(self) -> None:
        if self.moving_camera and self.mixed_camera:
            raise ValueError("moving_camera and mixed_camera exclude each other: all videos or every "
                             "other video filmed by a moving camera; choose one")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"size must be at least 16x16 pixels, got {self.width}x{self.height}")
        if self.frames < 2:
            raise ValueError(f"frames must be at least 2 (motion needs two frames), got {self.frames}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")

    @property
    def unit(self) -> float:
        """Length unit for scene parameters: the short side of the frame in pixels."""
        return float(min(self.width, self.height))

    def as_dict(self) -> dict:
        return asdict(self)

    def for_video(self, video_index: int) -> RenderParams:
        """The parameters of video ``video_index`` of a class: ``mixed_camera`` resolved to a
        moving camera for odd indices and a static one for even indices."""
        if not self.mixed_camera:
            return self
        return replace(self, moving_camera=video_index % 2 == 1, mixed_camera=False)

    def camera_of(self, video_index: int) -> str:
        """``"moving"`` or ``"static"``: the camera filming video ``video_index`` of a class."""
        return "moving" if self.for_video(video_index).moving_camera else "static"


@dataclass
class Clip:
    """A rendered video: ``frames`` uint8 ``[T,H,W,3]`` plus ground truth for tests.

    ``info`` holds per-video facts (for object sets: per-frame ``center`` ``[T,2]`` (x, y) in
    the view, ``size`` ``[T]`` (diameter in pixels), ``angle`` ``[T]`` (radians, clockwise on
    screen), ``mask`` uint8 ``[T,H,W]`` (object coverage 0..255), ``shape``; for every set
    ``camera``: ``"static"`` or ``"moving"``).
    """

    frames: np.ndarray
    info: dict


def video_seed_sequence(seed: int, set_name: str, class_index: int,
                        video_index: int) -> np.random.SeedSequence:
    """The seed of one video, from (seed, set, class, index) only: independent of worker count."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.SeedSequence([seed, zlib.crc32(set_name.encode()), class_index, video_index])


def video_rngs(seed: int, set_name: str, class_index: int, video_index: int
               ) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators for one video: scene content and camera path.

    Keeping the camera on its own stream means ``--moving-camera`` moves the camera over
    exactly the same scenes as the static version.
    """
    scene, camera = video_seed_sequence(seed, set_name, class_index, video_index).spawn(2)
    return np.random.default_rng(scene), np.random.default_rng(camera)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in ``[0, 1]`` to uint8 with rounding."""
    return np.clip(frames * 255.0 + 0.5, 0, 255).astype(np.uint8)


def midpoint_times(frames: int) -> np.ndarray:
    """``tau_t = t/(T-1) - 1/2`` in ``[-1/2, 1/2]``: symmetric about the middle frame."""
    return (np.arange(frames, dtype=np.float64) / (frames - 1) - 0.5) if frames > 1 else np.zeros(1)


# --------------------------------------------------------------------------- colours


def random_color(rng: np.random.Generator, sat: tuple[float, float] = (0.3, 1.0),
                 val: tuple[float, float] = (0.25, 1.0)) -> np.ndarray:
    """A random RGB colour (float32, 3) drawn in HSV with uniform hue."""
    h = rng.uniform(0, 360)
    s = rng.uniform(*sat)
    v = rng.uniform(*val)
    hsv = np.array([[[h, s, v]]], dtype=np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]


def luminance(color: np.ndarray) -> float:
    """Rec. 601 luma of an RGB colour in ``[0, 1]``."""
    return float(0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2])


def contrasting_pair(a: np.ndarray, b: np.ndarray, contrast: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Lighten the brighter and darken the darker colour until their lumas differ by ``contrast``.

    Keeps a two-colour surface pattern visible in grey levels (and so to optical flow).
    """
    ya, yb = luminance(a), luminance(b)
    swap = ya < yb
    hi, lo, y_hi, y_lo = (b, a, yb, ya) if swap else (a, b, ya, yb)
    mid = min(max((y_hi + y_lo) / 2, contrast / 2), 1 - contrast / 2)
    target_hi, target_lo = max(y_hi, mid + contrast / 2), min(y_lo, mid - contrast / 2)
    if target_hi > y_hi:
        hi = hi + (1 - hi) * (target_hi - y_hi) / max(1 - y_hi, 1e-6)
    if target_lo < y_lo:
        lo = lo * (target_lo / max(y_lo, 1e-6))
    hi, lo = hi.astype(np.float32), lo.astype(np.float32)
    return (lo, hi) if swap else (hi, lo)


def palette_map(values: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map scalar ``values`` in ``[0, 1]`` through a piecewise-linear palette ``[K,3]``."""
    k = len(colors)
    pos = np.clip(values, 0, 1) * (k - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), k - 2)
    frac = (pos - lo)[..., None].astype(np.float32)
    return (colors[lo] * (1 - frac) + colors[lo + 1] * frac).astype(np.float32)


# --------------------------------------------------------------------------- textures


def periodic_noise(rng: np.random.Generator, height: int, width: int, beta: float = 2.0,
                   cutoff: float = 1.0, anisotropy: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """Tileable ``1/f^beta`` noise ``[H,W]`` normalised to ``[0, 1]`` (FFT filtered white noise).

    The result wraps around both edges seamlessly, so it can be shifted or warped with
    ``BORDER_WRAP``. A Gaussian roll-off at ``cutoff`` (cycles per pixel; 0.5 is Nyquist)
    removes fine detail; ``anisotropy > 1`` stretches the texture along ``angle``.
    """
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    c, s = math.cos(angle), math.sin(angle)
    along = fx * c + fy * s
    across = -fx * s + fy * c
    f = np.sqrt((along * anisotropy) ** 2 + across ** 2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0) * np.exp(-((f / cutoff) ** 2))
    amp[0, 0] = 0.0
    field = np.fft.ifft2(np.fft.fft2(white) * amp).real
    lo, hi = np.percentile(field, [1, 99])
    return np.clip((field - lo) / max(hi - lo, 1e-9), 0, 1).astype(np.float32)


def textured_background(rng: np.random.Generator, height: int, width: int,
                        contrast: tuple[float, float] = (0.25, 0.6)) -> np.ndarray:
    """A random tileable coloured texture ``[H,W,3]`` (noise of random roughness and palette)."""
    beta = rng.uniform(1.6, 3.2)
    noise = periodic_noise(rng, height, width, beta=beta, cutoff=rng.uniform(0.08, 0.4),
                           anisotropy=rng.uniform(1.0, 3.0), angle=rng.uniform(0, math.pi))
    base = random_color(rng, sat=(0.1, 0.8), val=(0.3, 0.8))
    amount = rng.uniform(*contrast)
    colors = np.stack([np.clip(base + amount * (random_color(rng) - base), 0, 1) for _ in range(3)])
    colors[1] = base
    return palette_map(noise, colors)


def pattern(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random non-rotation-invariant pattern ``[S,S]`` in ``[0, 1]`` for object surfaces.

    Stripes, checkers, a linear gradient, a two-tone split or noise: every kind makes a
    rotation of the object visible (a uniform disc would not be).
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    kind = int(rng.integers(5))
    phi = rng.uniform(0, 2 * math.pi)
    u = x * math.cos(phi) + y * math.sin(phi)
    w = -x * math.sin(phi) + y * math.cos(phi)
    if kind == 0:  # stripes
        freq = rng.uniform(2.5, 5.0)
        return 0.5 + 0.5 * np.tanh(3 * np.sin(2 * math.pi * freq * u))
    if kind == 1:  # checkers
        freq = rng.uniform(2.0, 3.5)
        return 0.5 + 0.5 * np.tanh(3 * np.sin(2 * math.pi * freq * u) * np.sin(2 * math.pi * freq * w))
    if kind == 2:  # linear gradient
        return np.clip(u + 0.5, 0, 1)
    if kind == 3:  # two-tone split with a soft edge
        return 0.5 + 0.5 * np.tanh(12 * (u - rng.uniform(-0.15, 0.15)))
    return periodic_noise(rng, size, size, beta=rng.uniform(2.0, 3.0), cutoff=0.25)


# --------------------------------------------------------------------------- shapes

SHAPES = ("circle", "ellipse", "square", "triangle", "star", "cross")


def shape_polygon(kind: str, radius: float) -> np.ndarray | None:
    """Polygon vertices ``[N,2]`` (x, y) of a shape inscribed in a circle of ``radius``.

    Circles and ellipses return None (drawn with ``cv2.ellipse``).
    """
    if kind == "square":
        a = np.arange(4) * math.pi / 2 + math.pi / 4
        return radius * np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "triangle":
        a = np.arange(3) * 2 * math.pi / 3 - math.pi / 2
        return radius * np.stack([np.cos(a), np.sin(a)], 1)
    if kind == "star":
        a = np.arange(10) * math.pi / 5 - math.pi / 2
        r = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if kind == "cross":
        t = 0.33 * radius
        r = radius * 0.92
        pts = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t),
               (-r, t), (-r, -t), (-t, -t)]
        return np.array(pts, dtype=np.float64)
    if kind in ("circle", "ellipse"):
        return None
    raise ValueError(f"unknown shape {kind!r}; choose one of {', '.join(SHAPES)}")


@dataclass
class Sprite:
    """An object image in its own frame: premultiplied RGB + alpha ``[S,S,4]``.

    The shape is inscribed in a circle of diameter ``diameter`` pixels centred in the sprite.
    """

    rgba: np.ndarray
    diameter: float


def make_sprite(rng: np.random.Generator, kind: str, size: int) -> Sprite:
    """Draw a textured, outlined shape of random colours into a ``size x size`` sprite."""
    ss = 4  # supersampling for anti-aliased edges
    big = size * ss
    radius = 0.5 * size - 1.0
    mask = np.zeros((big, big), np.uint8)
    centre = (big - 1) / 2
    poly = shape_polygon(kind, radius * ss)
    shift = 4
    if poly is None:
        axes = (radius * ss, radius * ss * (0.55 if kind == "ellipse" else 1.0))
        cv2.ellipse(mask, (round(centre * 2 ** shift), round(centre * 2 ** shift)),
                    (round(axes[0] * 2 ** shift), round(axes[1] * 2 ** shift)), 0, 0, 360, 255, -1,
                    cv2.LINE_8, shift)
    else:
        pts = np.round((poly + centre) * 2 ** shift).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, shift)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)
    # a thin outline in a dark or bright colour keeps the object visible on any background
    width = max(1, round(size / 24))
    inner = cv2.erode(alpha, np.ones((2 * width + 1, 2 * width + 1), np.uint8))
    outline = np.clip(alpha - inner, 0, 1)
    c1, c2 = contrasting_pair(random_color(rng), random_color(rng))
    p = pattern(rng, size)[..., None]
    fill = c1 * (1 - p) + c2 * p
    edge = np.full(3, 0.05 if rng.random() < 0.5 else 0.95, np.float32)
    rgb = fill * (alpha - outline)[..., None] + edge * outline[..., None]
    rgba = np.concatenate([rgb, alpha[..., None]], axis=2).astype(np.float32)
    return Sprite(rgba=rgba, diameter=2 * radius)


def affine_matrix(scale: float, angle: float, center: tuple[float, float],
                  origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """3x3 matrix: ``origin`` to 0, scale, rotate by ``angle`` (clockwise on screen), 0 to ``center``."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    ox, oy = origin
    return np.array([[c, -s, center[0] - c * ox + s * oy],
                     [s, c, center[1] - s * ox - c * oy],
                     [0.0, 0.0, 1.0]])


def composite(canvas: np.ndarray, rgba: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Paste a premultiplied sprite onto ``canvas`` ``[H,W,3]`` under the 3x3 ``matrix``; returns alpha."""
    h, w = canvas.shape[:2]
    warped = cv2.warpAffine(rgba, matrix[:2], (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    a = warped[..., 3:4]
    canvas *= 1 - a
    canvas += warped[..., :3]
    return warped[..., 3]


def box_intersects(matrix: np.ndarray, size: int, width: int, height: int) -> bool:
    """Whether a ``size`` sprite mapped by ``matrix`` can touch the ``width x height`` view."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    p = corners @ matrix[:2].T
    return bool(p[:, 0].max() >= -1 and p[:, 0].min() <= width + 1
                and p[:, 1].max() >= -1 and p[:, 1].min() <= height + 1)


# --------------------------------------------------------------------------- camera


def static_camera(frames: int) -> np.ndarray:
    """Identity world-to-view matrices ``[T,3,3]``."""
    return np.repeat(np.eye(3)[None], frames, axis=0)


def moving_camera(rng: np.random.Generator, frames: int, view: tuple[int, int],
                  world: tuple[int, int] | None = None) -> np.ndarray:
    """World-to-view matrices ``[T,3,3]`` of a camera that pans, zooms and jitters.

    ``view`` and ``world`` are ``(height, width)``. With ``world`` None the world is a torus
    of the view's size (objects and textures wrap), so any pan is allowed; otherwise the
    view window stays inside the larger world. Zoom stays >= 1 so no border is ever shown.
    """
    vh, vw = view
    unit = min(vh, vw)
    tau = midpoint_times(frames)
    z0, z1 = np.exp(rng.uniform(0.0, math.log(1.3), size=2))
    zoom = z0 * (z1 / z0) ** (tau + 0.5)
    jitter = rng.normal(0.0, 0.006 * unit, size=(frames, 2))
    jitter = cv2.GaussianBlur(jitter.astype(np.float64)[:, None, :], (1, 3), 0)[:, 0, :]
    if world is None:
        wh, ww = vh, vw
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.006, 0.018) * unit
        start = rng.uniform(0, 1, size=2) * (ww, wh)
        steps = np.arange(frames) - (frames - 1) / 2
        centre = start + steps[:, None] * speed * np.array([math.cos(angle), math.sin(angle)])
    else:
        wh, ww = world
        # window half extents at zoom 1 (the largest); keep the centre where the window fits
        free = np.array([(ww - vw) / 2, (wh - vh) / 2]) - 0.02 * unit
        free = np.maximum(free, 0.0)
        a, b = rng.uniform(-1, 1, size=(2, 2)) * free
        centre = np.array([ww / 2, wh / 2]) + a + (b - a) * (tau + 0.5)[:, None]
    centre = centre + jitter
    mats = np.zeros((frames, 3, 3))
    for t in range(frames):
        # view pixel q = zoom * (world p - centre) + view centre
        mats[t] = affine_matrix(zoom[t], 0.0, (vw / 2, vh / 2), origin=(centre[t, 0], centre[t, 1]))
    return mats


def apply_camera(world_frames: np.ndarray, cameras: np.ndarray, view: tuple[int, int],
                 wrap: bool) -> np.ndarray:
    """Warp float world frames ``[T,h,w,3]`` through per-frame world-to-view matrices."""
    vh, vw = view
    border = cv2.BORDER_WRAP if wrap else cv2.BORDER_REFLECT
    out = np.empty((len(world_frames), vh, vw, 3), np.float32)
    for t, frame in enumerate(world_frames):
        out[t] = cv2.warpAffine(frame, cameras[t][:2], (vw, vh), flags=cv2.INTER_LINEAR, borderMode=border)
    return out


# --------------------------------------------------------------------------- sets


@dataclass(frozen=True)
class SynthSet:
    """A named synthetic set: class names and the function rendering one video.

    ``render(class_index, video_index, scene_rng, camera_rng, params) -> Clip``.
    ``camera_subsets`` sets have built-in static and moving camera halves (the
    ``moving_camera`` parameter does not apply to them).
    """

    name: str
    classes: tuple[str, ...]
    render: Callable[[int, int, np.random.Generator, np.random.Generator, RenderParams], Clip]
    default_videos_per_class: int
    description: str
    camera_subsets: bool = False
