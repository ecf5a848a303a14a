"""A synthetic tracking set the library makes: GOT-10k-format sequences with exact boxes and masks.

Each sequence shows one textured object (a procedural pattern on an ellipse or a polygon,
:func:`deepvideo.data.synth.common.make_sprite`, or, when ``targets`` images are given, for a
share ``target_share`` of the sequences a patch cut from one of them in that shape:
:func:`real_sprite`) moving smoothly (a sum of slow random
sinusoids) with scale change and in-plane rotation, over a background panned and zoomed by a
moving camera (a procedural texture, or a crop of a user-given RGB image). A distractor of the
same appearance moves behind it; an occluder (another object, larger than the target) passes
over it around the middle of the sequence, covering it partly and then fully; fast frames are
motion blurred along the target's motion.

Ground truth is exact by construction: the box (0-based ``x, y, w, h``, whole pixels) is the
bounding box of the target's full silhouette (its alpha >= 0.5) inside the frame, occluded or
not; the mask is the visible part of it (not under the occluder); ``cover`` is the visible
share in eighths (GOT-10k's 0..8), ``absence`` is 1 where nothing is visible,
``cut_by_image`` where the silhouette touches the frame's border.

:func:`render_sequence` renders one sequence in memory; :func:`render_tracking_set` writes a
dataset ``out_dir/<seq>/00000001.jpg...`` with ``groundtruth.txt`` (1-based, as
:func:`deepvideo.track.datasets.read_got10k` reads it), the three label files,
``meta_info.ini`` (the shape as ``object_class``), per-frame masks
``<seq>/masks/00000001.png`` (0/255, for SiamMask / D3S), a ``list.txt`` and a ``synth.json``
(the parameters), atomically.

Splits: with ``split="train" | "val" | "test"`` sequence ``i`` of seed ``s`` draws from the
generator seeded ``[s, i, SPLITS[split]]`` (without a split: ``[s, i]``), so a held-out test
split never shares a random stream with a training split, whatever seeds both use; its sequences
are named ``synth_test_0001...``. :func:`load_images` reads the background / target images from
videos, frame folders and images; with a split it takes each video's frames only from that
split's part of it (:data:`SPLIT_SPANS`: train the first 70 %, val the next 10 %, test the last
20 %), so test targets and backgrounds are not the training ones either.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from deepvideo.data.synth.common import affine_matrix, composite, make_sprite, textured_background
from deepvideo.io.atomic import replaced_when_done
from deepvideo.progress import track
from deepvideo.track.dcf import extract_patch
from deepvideo.track.sequence_files import mask_box

__all__ = ["SHAPES", "SPLITS", "SPLIT_SPANS", "SynthSequence", "load_images", "real_sprite",
           "render_sequence", "render_tracking_set", "sequence_name"]

SHAPES = ("ellipse", "square", "triangle", "star", "cross")  # ellipse + polygons
WORLD = 1.5  # background texture side / view side (room for the camera to pan and zoom)
SPLITS = {"train": 1, "val": 2, "test": 3}  # the third word of a split's sequence seeds
SPLIT_SPANS = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}  # share of each video
PATCH_CANDIDATES = 4  # real patches drawn per target; the most textured one is used


@dataclass
class SynthSequence:
    """One rendered sequence: frames ``[N,H,W,3]`` uint8 RGB, boxes ``[N,4]`` 0-based
    ``x, y, w, h``, visible masks ``[N,H,W]`` bool, cover ``[N]`` 0..8, absent and cut ``[N]`` bool."""

    frames: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    cover: np.ndarray
    absent: np.ndarray
    cut: np.ndarray
    shape: str = ""


def sequence_name(index: int, split: str | None = None) -> str:
    """The folder name of sequence ``index`` (0-based): ``synth_0001`` for index 0,
    ``synth_test_0001`` in the test split."""
    return f"synth_{index + 1:04d}" if split is None else f"synth_{split}_{index + 1:04d}"


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)} (or none), got {split!r}")


def load_images(paths, per_video: int = 8, split: str | None = None) -> list[np.ndarray]:
    """RGB ``uint8`` images for backgrounds or targets from ``paths`` (video files, frame
    folders, images, or folders of them: :func:`deepvideo.track.selfsup.video_sources`):
    ``per_video`` frames evenly spread over each video (with ``split``: over its part
    :data:`SPLIT_SPANS`); an image file given alone is one frame, used by every split."""
    from deepvideo.track.selfsup import FrameSource, video_sources

    check_split(split)
    low, high = SPLIT_SPANS[split] if split else (0.0, 1.0)
    images = []
    for path in video_sources(paths):
        source = FrameSource(path)
        first, last = int(low * len(source)), max(int(high * len(source)) - 1, int(low * len(source)))
        if len(source) == 1:
            first = last = 0
        picks = np.unique(np.linspace(first, min(last, len(source) - 1), per_video).round().astype(int))
        images += source.frames(picks)
    return images


def real_sprite(rng: np.random.Generator, images: list[np.ndarray], kind: str, side: int) -> np.ndarray:
    """A ``side x side`` premultiplied RGBA sprite: the silhouette of shape ``kind`` filled with
    a patch of one of ``images`` (side 10-40 % of its shorter side, at a random place; of
    :data:`PATCH_CANDIDATES` draws the one of highest gradient energy)."""
    from deepvideo.track.selfsup import gradient_energy

    alpha = make_sprite(rng, kind, side).rgba[..., 3]
    image = images[int(rng.integers(len(images)))]
    height, width = image.shape[:2]
    patches = []
    for _ in range(PATCH_CANDIDATES):
        cut = rng.uniform(0.1, 0.4) * min(height, width)
        center = (rng.uniform(cut / 2, width - cut / 2), rng.uniform(cut / 2, height - cut / 2))
        patches.append(extract_patch(image, center, (cut, cut), (side, side)))
    patch = max(patches, key=gradient_energy).astype(np.float32) / 255
    return np.concatenate([patch * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)


def smooth_path(rng: np.random.Generator, frames: int, low: float, high: float) -> np.ndarray:
    """``[frames]`` values in ``[low, high]``: a sum of three slow sinusoids of random phase."""
    t = np.arange(frames) / max(frames - 1, 1)
    wave = sum(rng.uniform(0.5, 1.0) * np.sin(2 * math.pi * (rng.uniform(0.2, 1.2) * t + rng.random()))
               for _ in range(3))
    wave = (wave - wave.min()) / max(np.ptp(wave), 1e-9)
    return low + (high - low) * wave


def background_world(rng: np.random.Generator, view: tuple[int, int],
                     backgrounds: list[np.ndarray] | None) -> np.ndarray:
    """The float32 ``[0, 1]`` world the camera looks at: a texture, or a crop of an image."""
    width, height = round(view[0] * WORLD), round(view[1] * WORLD)
    if not backgrounds:
        return textured_background(rng, height, width)
    image = backgrounds[int(rng.integers(len(backgrounds)))]
    side = rng.uniform(0.5, 1.0) * min(image.shape[0] / height, image.shape[1] / width)
    center = (rng.uniform(side * width / 2, image.shape[1] - side * width / 2),
              rng.uniform(side * height / 2, image.shape[0] - side * height / 2))
    crop = extract_patch(image.astype(np.float32) / 255, center, (side * width, side * height),
                         (width, height))
    return crop


def camera_views(rng: np.random.Generator, world: np.ndarray, view: tuple[int, int],
                 frames: int) -> list[np.ndarray]:
    """The background of each frame: the world panned and zoomed by a smooth camera."""
    height, width = world.shape[:2]
    zoom = smooth_path(rng, frames, 0.75, 1.0) * 1.2 / WORLD  # seen side / world side
    cx, cy = smooth_path(rng, frames, 0.4, 0.6), smooth_path(rng, frames, 0.4, 0.6)
    return [extract_patch(world, (cx[k] * width, cy[k] * height), (width * zoom[k], height * zoom[k]),
                          view).astype(np.float32) for k in range(frames)]


def object_track(rng: np.random.Generator, frames: int, view: tuple[int, int], diameter: float
                 ) -> np.ndarray:
    """``[frames, 4]`` centre x, y, scale, angle of an object of ``diameter`` pixels at scale 1."""
    width, height = view
    scale = smooth_path(rng, frames, rng.uniform(0.6, 0.9), rng.uniform(1.0, 1.4))
    margin = 0.45 * diameter
    x = smooth_path(rng, frames, margin, width - margin)
    y = smooth_path(rng, frames, margin, height - margin)
    angle = smooth_path(rng, frames, 0, rng.uniform(0.5, 2.0) * math.pi)
    return np.stack([x, y, scale, angle], axis=1)


def occluder_track(rng: np.random.Generator, target: np.ndarray, view: tuple[int, int]) -> np.ndarray:
    """An occluder crossing the target at constant velocity, on its centre at the middle frame."""
    frames = len(target)
    middle = frames // 2
    speed = rng.uniform(0.5, 1.0) * max(view) / max(frames, 1)
    heading = rng.uniform(0, 2 * math.pi)
    t = np.arange(frames) - middle
    x = target[middle, 0] + speed * t * math.cos(heading)
    y = target[middle, 1] + speed * t * math.sin(heading)
    return np.stack([x, y, np.full(frames, target[middle, 2]), 0.3 * t / max(frames, 1)], axis=1)


def place(canvas: np.ndarray, rgba: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Composite ``rgba`` onto ``canvas`` at ``state = (x, y, scale, angle)``; the alpha drawn."""
    origin = ((rgba.shape[1] - 1) / 2, (rgba.shape[0] - 1) / 2)
    return composite(canvas, rgba, affine_matrix(state[2], state[3], (state[0], state[1]), origin))


def motion_blur(image: np.ndarray, velocity: tuple[float, float]) -> np.ndarray:
    """``image`` blurred along ``velocity`` (pixels per frame) by a centred line kernel of that
    length rounded up to odd (no blur under 2 pixels)."""
    length = int(round(math.hypot(*velocity)))
    if length < 2:
        return image
    half = length // 2
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    a = math.atan2(velocity[1], velocity[0])
    dx, dy = round(half * math.cos(a)), round(half * math.sin(a))
    cv2.line(kernel, (half - dx, half - dy), (half + dx, half + dy), 1.0, 1)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REPLICATE)


def render_sequence(seed: int, index: int, frames: int = 40, size: tuple[int, int] = (160, 120),
                    backgrounds: list[np.ndarray] | None = None, targets: list[np.ndarray] | None = None,
                    target_share: float = 0.5, split: str | None = None) -> SynthSequence:
    """Sequence ``index`` of the set made with ``seed`` (and ``split``): a pure function of its
    arguments. ``targets``: images whose patches texture the target in a share ``target_share``
    of the sequences (``shape`` is then ``real_<shape>``)."""
    if frames < 2:
        raise ValueError(f"frames must be at least 2, got {frames}")
    if min(size) < 32:
        raise ValueError(f"size must be at least 32x32 pixels, got {size[0]}x{size[1]}")
    check_split(split)
    rng = np.random.default_rng([seed, index] if split is None else [seed, index, SPLITS[split]])
    view = (int(size[0]), int(size[1]))
    sprite_side = max(12, round(min(view) * rng.uniform(0.25, 0.4)))
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    if targets and rng.random() < target_share:
        target_sprite, kind = real_sprite(rng, targets, kind, sprite_side), f"real_{kind}"
    else:
        target_sprite = make_sprite(rng, kind, sprite_side).rgba
    occluder_sprite = make_sprite(rng, "circle", round(sprite_side * 1.7)).rgba
    scenery = camera_views(rng, background_world(rng, view, backgrounds), view, frames)
    target = object_track(rng, frames, view, sprite_side)
    distractor = object_track(rng, frames, view, sprite_side)
    occluder = occluder_track(rng, target, view)
    blur_at = rng.random(frames) < 0.3
    out = SynthSequence(np.zeros((frames, view[1], view[0], 3), np.uint8), np.zeros((frames, 4)),
                        np.zeros((frames, view[1], view[0]), bool), np.zeros(frames, np.int64),
                        np.zeros(frames, bool), np.zeros(frames, bool), kind)
    for k in range(frames):
        canvas = scenery[k].copy()
        place(canvas, target_sprite, distractor[k])
        full = place(canvas, target_sprite, target[k]) >= 0.5
        visible = full & (place(canvas, occluder_sprite, occluder[k]) < 0.5)
        if blur_at[k] and k > 0:
            canvas = motion_blur(canvas, tuple(target[k, :2] - target[k - 1, :2]))
        out.frames[k] = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
        out.boxes[k], out.masks[k] = mask_box(full), visible
        out.cover[k] = int(np.floor(8 * visible.sum() / max(full.sum(), 1)))
        out.absent[k] = not visible.any()
        out.cut[k] = bool(full[0].any() or full[-1].any() or full[:, 0].any() or full[:, -1].any())
    return out


def write_labels(path: Path, values: np.ndarray) -> None:
    path.write_text("".join(f"{int(v)}\n" for v in values))


def write_sequence(folder: Path, sequence: SynthSequence) -> None:
    """One sequence's frames, masks and annotation files into ``folder`` (GOT-10k layout)."""
    (folder / "masks").mkdir(parents=True)
    for k, (frame, mask) in enumerate(zip(sequence.frames, sequence.masks, strict=True)):
        name = f"{k + 1:08d}"
        if not cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"{folder / name}.jpg: could not be written")
        if not cv2.imwrite(str(folder / "masks" / f"{name}.png"), mask.astype(np.uint8) * 255):
            raise OSError(f"{folder / 'masks' / name}.png: could not be written")
    boxes = sequence.boxes.copy()
    boxes[:, :2] += 1  # GOT-10k files are 1-based
    (folder / "groundtruth.txt").write_text(
        "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in boxes))
    write_labels(folder / "absence.label", sequence.absent)
    write_labels(folder / "cover.label", sequence.cover)
    write_labels(folder / "cut_by_image.label", sequence.cut)
    (folder / "meta_info.ini").write_text(f"[METAINFO]\nobject_class: {sequence.shape}\n"
                                          "root_class: synthetic\n")


def render_tracking_set(out_dir: str | Path, num_sequences: int = 8, frames: int = 40,
                        size: tuple[int, int] = (160, 120), seed: int = 0,
                        backgrounds: list[np.ndarray] | None = None, progress: bool | None = None,
                        targets: list[np.ndarray] | None = None, target_share: float = 0.5,
                        split: str | None = None, sources: dict | None = None) -> list[str]:
    """Write ``num_sequences`` sequences (:func:`render_sequence`) to ``out_dir`` in GOT-10k
    format with a ``list.txt`` and a ``synth.json`` (the arguments that remake it, with
    ``sources``: where the images came from); ``out_dir`` appears only when complete (an
    existing one is replaced). ``backgrounds``: RGB uint8 images to crop backgrounds from
    (default: textures); ``targets``: RGB uint8 images whose patches become targets
    (:func:`real_sprite`); ``split``: see the module docstring. Returns the sequence names."""
    if num_sequences < 1:
        raise ValueError(f"num_sequences must be at least 1, got {num_sequences}")
    if not 0 <= target_share <= 1:
        raise ValueError(f"target_share must be in 0..1, got {target_share}")
    check_split(split)
    for what, images in (("backgrounds", backgrounds), ("targets", targets)):
        for i, image in enumerate(images or []):
            if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 8:
                raise ValueError(f"{what}[{i}]: expected an RGB image [H, W, 3], got shape {image.shape}")
    names = [sequence_name(i, split) for i in range(num_sequences)]
    with replaced_when_done(out_dir) as tmp:
        tmp.mkdir(parents=True)
        disable = None if progress is None else not progress
        for i in track(range(num_sequences), "rendering tracking sequences", disable=disable):
            write_sequence(tmp / names[i], render_sequence(seed, i, frames, size, backgrounds, targets,
                                                           target_share, split))
        (tmp / "list.txt").write_text("".join(f"{name}\n" for name in names))
        manifest = {"seed": seed, "split": split, "num_sequences": num_sequences, "frames": frames,
                    "size": list(size), "target_share": target_share,
                    "backgrounds": len(backgrounds or []), "targets": len(targets or []),
                    "sources": sources or {}}
        (tmp / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return names
