"""A synthetic multi-object video set in the ImageNet VID layout (:mod:`deepvideo.detect.vid`).

Each video shows one to three textured objects (:func:`deepvideo.data.synth.common.make_sprite`)
of side ``SIDE`` x the frame's shorter side; the class of an object is its shape
(:data:`CLASSES`: three distinct silhouettes), its texture and colours are random, so a
detector must learn shape, not colour. Every object gets a speed class drawn uniformly and
moves in a straight line, bouncing off the frame's borders, at a speed drawn from
``SPEEDS[class]`` in object sides per frame, while its scale and angle drift by at most
``DRIFT[class]`` (relative scale, radians) over the video. The ranges are chosen so that the
speed class is the one ImageNet VID's motion IoU gives (FGFA, Zhu et al. 2017; the mean IoU of
a box with the same object ±10 frames away, :func:`deepvideo.detect.evaluate.motion_iou`):
slow objects move under 2 % of their side in 10 frames (motion IoU > 0.9), medium ones 5–9 %
(0.7–0.9), fast ones 35–50 % of their side in every frame (< 0.7); a bounce can still move a
box into another class, and the evaluation always uses the motion IoU. A fast object moves more
than a third of its side between consecutive frames, so that its boxes in two consecutive
frames mostly overlap with IoU < 0.5 (a displacement ``m`` of the side along one axis gives IoU
``(1 - m) / (1 + m)``): as for ImageNet VID's fast objects, two detections of it are linked by
the tracker's regressed box (ψ of :mod:`deepvideo.detect.link`), not by their overlap. Fast
objects are motion blurred along their motion (a displacement of 2 px or more per frame).
Objects drawn later occlude earlier ones, and in half of the videos an occluder (a textured bar
of no class) sweeps across the view. The background is a procedural texture panned by a moving camera.

Ground truth is exact: an object's box is the bounding box (``xmin, ymin`` inclusive,
``xmax, ymax`` exclusive pixel edges) of its whole silhouette (alpha >= 0.5) clipped to the
frame, occluded or not; an object is annotated in a frame when at least ``MIN_VISIBLE`` of its
silhouette is visible there, with ``occluded`` = 1 when less than ``OCCLUDED_BELOW`` is.
``trackid`` is the object's index in the video.

Video ``i`` of split ``s`` with seed ``seed`` draws from the generator seeded
``[seed, i, SPLITS[s]]``: a pure function of its arguments, and splits never share a stream.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deepvideo.data.synth.common import affine_matrix, make_sprite, textured_background
from deepvideo.detect.vid import VidObject, frame_xml
from deepvideo.io.atomic import replaced_when_done
from deepvideo.progress import track

__all__ = ["CLASSES", "DRIFT", "SIDE", "SPEEDS", "SPLITS", "SynthVideo", "render_video", "render_vid_set",
           "video_name"]

CLASSES = ("circle", "triangle", "cross")
SPEEDS = {"slow": (0.0, 0.002), "medium": (0.005, 0.009), "fast": (0.35, 0.5)}  # object sides / frame
DRIFT = {"slow": 0.0, "medium": 0.01, "fast": 0.15}  # largest scale change and rotation over a video
SIDE = (0.3, 0.45)  # object side / the frame's shorter side
SPLITS = {"train": 1, "val": 2, "test": 3}
MIN_VISIBLE = 0.1
OCCLUDED_BELOW = 0.6
WORLD = 1.5  # background world side / view side


@dataclass
class SynthVideo:
    """A rendered video: RGB uint8 frames ``[T, H, W, 3]`` and the objects of each frame."""

    frames: np.ndarray
    objects: list[list[VidObject]]
    speeds: list[str]


def video_name(index: int) -> str:
    return f"synth_{index:05d}"


def _bounce(start: float, velocity: float, low: float, high: float, frames: int) -> np.ndarray:
    """Positions of a point moving at ``velocity`` from ``start``, reflected into [low, high]."""
    span = max(high - low, 1e-6)
    raw = (start - low) + velocity * np.arange(frames)
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def object_states(rng: np.random.Generator, frames: int, view: tuple[int, int], side: float,
                  speed: str) -> np.ndarray:
    """``[frames, 4]`` centre x, y, scale, angle of one object of ``side`` px moving at ``speed``."""
    width, height = view
    low, high = SPEEDS[speed]
    magnitude = rng.uniform(low, high) * side
    heading = rng.uniform(0, 2 * math.pi)
    margin = 0.3 * side
    x = _bounce(rng.uniform(margin, width - margin), magnitude * math.cos(heading), margin,
                width - margin, frames)
    y = _bounce(rng.uniform(margin, height - margin), magnitude * math.sin(heading), margin,
                height - margin, frames)
    t = np.arange(frames) / max(frames - 1, 1)
    drift = DRIFT[speed]
    scale = rng.uniform(0.9, 1.1) * (1 + rng.uniform(-drift, drift) * t)
    angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-drift, drift) * t
    return np.stack([x, y, scale, angle], axis=1)


def line_blur(layer: np.ndarray, velocity: tuple[float, float]) -> np.ndarray:
    """``layer`` averaged along ``velocity`` (a segment kernel as long as the displacement)."""
    length = math.hypot(*velocity)
    if length < 2:
        return layer
    half = int(math.ceil(length / 2))
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    for s in np.linspace(-0.5, 0.5, 2 * half + 1):
        kernel[round(half + s * velocity[1]), round(half + s * velocity[0])] += 1
    return cv2.filter2D(layer, -1, kernel / kernel.sum(), borderType=cv2.BORDER_CONSTANT)


def warp_layer(rgba: np.ndarray, state: np.ndarray, view: tuple[int, int]) -> np.ndarray:
    """The premultiplied sprite placed at ``state`` in a ``view``-sized RGBA layer."""
    origin = ((rgba.shape[1] - 1) / 2, (rgba.shape[0] - 1) / 2)
    matrix = affine_matrix(state[2], state[3], (state[0], state[1]), origin)
    return cv2.warpAffine(rgba, matrix[:2], view, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))


def silhouette_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def background_frames(rng: np.random.Generator, view: tuple[int, int], frames: int) -> list[np.ndarray]:
    """A texture world seen through a camera panning along a straight line."""
    width, height = view
    world = textured_background(rng, round(height * WORLD), round(width * WORLD))
    start = rng.uniform(0, [world.shape[1] - width, world.shape[0] - height])
    end = rng.uniform(0, [world.shape[1] - width, world.shape[0] - height])
    out = []
    for k in range(frames):
        x, y = start + (end - start) * k / max(frames - 1, 1)
        shift = np.array([[1.0, 0.0, -x], [0.0, 1.0, -y]])
        out.append(cv2.warpAffine(world, shift, view, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT))
    return out


def occluder_states(rng: np.random.Generator, frames: int, view: tuple[int, int]) -> np.ndarray:
    """A bar sweeping horizontally across the view (x, y, scale 1, angle)."""
    x = np.linspace(-0.2, 1.2, frames) * view[0]
    if rng.random() < 0.5:
        x = x[::-1]
    return np.stack([x, np.full(frames, view[1] / 2), np.ones(frames),
                     np.full(frames, rng.uniform(-0.3, 0.3))], axis=1)


def render_video(seed: int, index: int, frames: int = 24, size: tuple[int, int] = (128, 96),
                 split: str = "train") -> SynthVideo:
    """Video ``index`` of the set (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if frames < 2 or min(size) < 32:
        raise ValueError(f"need at least 2 frames of at least 32x32 pixels, got {frames} of {size}")
    rng = np.random.default_rng([seed, index, SPLITS[split]])
    view = (int(size[0]), int(size[1]))
    count = int(rng.integers(1, 4))
    classes = [int(rng.integers(len(CLASSES))) for _ in range(count)]
    speeds = [list(SPEEDS)[int(rng.integers(len(SPEEDS)))] for _ in range(count)]
    sides = [max(10, round(min(view) * rng.uniform(*SIDE))) for _ in range(count)]
    sprites = [make_sprite(rng, CLASSES[c], s).rgba for c, s in zip(classes, sides, strict=True)]
    states = [object_states(rng, frames, view, s, v) for s, v in zip(sides, speeds, strict=True)]
    bar = None
    if rng.random() < 0.5:
        bar_sprite = make_sprite(rng, "square", round(min(view) * 0.3)).rgba
        bar = (cv2.resize(bar_sprite, (bar_sprite.shape[1] // 3, view[1] * 2)),
               occluder_states(rng, frames, view))
    backgrounds = background_frames(rng, view, frames)
    video = SynthVideo(np.zeros((frames, view[1], view[0], 3), np.uint8), [], speeds)
    for k in range(frames):
        canvas = backgrounds[k].copy()
        full, layers = [], []
        for sprite, state in zip(sprites, states, strict=True):
            layer = warp_layer(sprite, state[k], view)
            full.append(layer[..., 3] >= 0.5)
            if k > 0 and math.hypot(*(state[k, :2] - state[k - 1, :2])) >= 2:
                layer = line_blur(layer, tuple(state[k, :2] - state[k - 1, :2]))
            layers.append(layer)
        if bar is not None:
            layers.append(warp_layer(bar[0], bar[1][k], view))
        covered, visible = np.zeros(view[::-1], bool), [None] * count
        for j in range(len(layers) - 1, -1, -1):  # front to back: what each object shows
            if j < count:
                visible[j] = full[j] & ~covered
            covered |= layers[j][..., 3] >= 0.5
        for layer in layers:
            canvas = canvas * (1 - layer[..., 3:4]) + layer[..., :3]
        video.frames[k] = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
        video.objects.append(_annotate(full, visible, classes))
    return video


def _annotate(full: list[np.ndarray], visible: list[np.ndarray], classes: list[int]) -> list[VidObject]:
    objects = []
    for trackid, (whole, seen, cls) in enumerate(zip(full, visible, classes, strict=True)):
        box = silhouette_box(whole)
        share = seen.sum() / max(whole.sum(), 1)
        if box is None or share < MIN_VISIBLE:
            continue
        objects.append(VidObject(trackid, CLASSES[cls], box, occluded=bool(share < OCCLUDED_BELOW)))
    return objects


def render_vid_set(out_dir: str | Path, videos: dict[str, int] | None = None,
                   frames: int | dict[str, int] = 24, size: tuple[int, int] = (128, 96), seed: int = 0,
                   progress: bool | None = None) -> dict[str, list[str]]:
    """Write a VID root ``out_dir`` with ``videos[split]`` videos per split (default train 16,
    val 4) of ``frames`` frames (one count, or one per split: e.g. many short training videos
    and test videos long enough for the motion IoU's ±10 frames); ``out_dir`` appears only when
    complete. Returns the video names per split."""
    videos = {"train": 16, "val": 4} if videos is None else dict(videos)
    for split, n in videos.items():
        if split not in SPLITS or n < 1:
            raise ValueError(f"videos: need a known split ({', '.join(SPLITS)}) and >= 1 video, "
                             f"got {split}={n}")
    lengths = {split: frames[split] if isinstance(frames, dict) else frames for split in videos}
    names = {split: [video_name(i) for i in range(n)] for split, n in videos.items()}
    with replaced_when_done(out_dir) as tmp:
        disable = None if progress is None else not progress
        for split, n in videos.items():
            for i in track(range(n), f"rendering synthetic VID {split}", disable=disable):
                video = render_video(seed, i, lengths[split], size, split)
                _write_video(tmp, split, names[split][i], video)
            lines = [f"{name}/{k:06d} {k + 1}" for name in names[split] for k in range(lengths[split])]
            listing = tmp / "ImageSets" / "VID" / f"{split}.txt"
            listing.parent.mkdir(parents=True, exist_ok=True)
            listing.write_text("\n".join(lines) + "\n")
        manifest = {"seed": seed, "videos": videos, "frames": lengths, "size": list(size),
                    "classes": list(CLASSES)}
        (tmp / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return names


def _write_video(root: Path, split: str, name: str, video: SynthVideo) -> None:
    images = root / "Data" / "VID" / split / name
    notes = root / "Annotations" / "VID" / split / name
    images.mkdir(parents=True)
    notes.mkdir(parents=True)
    size = (video.frames.shape[2], video.frames.shape[1])
    for k, (frame, objects) in enumerate(zip(video.frames, video.objects, strict=True)):
        cv2.imwrite(str(images / f"{k:06d}.JPEG"), frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        (notes / f"{k:06d}.xml").write_text(frame_xml(name, f"{k:06d}", size, objects))
