"""Tracking sequences and the formats they come in.

A :class:`Sequence` is a named list of frames (image files, or a video file) with one
ground-truth box per frame: ``(x, y, w, h)``, 0-based float pixels, ``(x, y)`` the top-left
corner; NaN rows where the target is not annotated (a NaN, zero-size or negative-size box in
the file, or a test split that gives only the first box). ``absent`` marks frames where the
target is not visible or not annotated (``None`` when only the first box is known);
``attributes`` holds per-frame flags, ``values`` per-frame integer levels, ``meta`` the
sequence's text metadata. :func:`load_sequence` reads one sequence in any format below
(detected from the folder's contents), :func:`load_dataset` a folder of them,
:func:`video_sequence` a plain video file and a first box.

Formats (frame 0 = the first image everywhere here):

- ``otb``: ``img/0001.jpg...`` + ``groundtruth_rect.txt`` (comma, tab or space separated;
  1-based pixel coordinates, so 1 is subtracted from x and y). Two-target folders
  (``groundtruth_rect.1.txt``, ``groundtruth_rect.2.txt``) give two sequences ``Name.1``,
  ``Name.2``; an empty target file (Human4's ``.1``) holds no target. All images in ``img/``
  are the frames, except for the five sequences the OTB benchmark annotates on a frame range
  (:data:`OTB_FRAME_RANGES`, from the benchmark's sequence configuration and its web page):
  there only the images numbered in that range are. One box per frame, always.
- ``vot``: ``00000001.jpg...`` in the folder, in ``color/`` (VOT 2017+), or where the
  ``sequence`` file's ``channels.color`` says; ``groundtruth.txt`` with per line a
  rectangle (4 values), a polygon (8 or more: its axis-aligned bounding box, the VOT
  toolkit's conversion), a mask (``m x0,y0,w,h,RLE...``: the box of its pixels) or one number
  (unknown: a NaN row); 0-based. Per-frame tag files (``camera_motion.tag``,
  ``illum_change.tag``, ``occlusion.tag``, ``size_change.tag``, ``motion_change.tag``, any
  ``*.tag`` or ``*.label`` (older VOT): one 0/1 per line) are attributes; a tag file shorter
  than the sequence means 0 for the remaining frames, as the VOT toolkit reads them. A dataset
  has ``list.txt``.
- ``got10k``: ``<split>/<seq>/00000001.jpg...`` + ``groundtruth.txt`` (comma separated,
  1-based as the toolkit's author states, got-10k/toolkit issue 6; the test split has only
  the first box), ``absence.label`` (1 = absent -> ``absent``), ``cover.label`` (visible
  fraction, 0..8 -> ``values["cover"]``), ``cut_by_image.label`` (-> attribute),
  ``meta_info.ini`` (-> ``meta``). A split folder has ``list.txt``.
- ``lasot``: ``<class>/<class>-N/img/00000001.jpg...`` + ``groundtruth.txt`` (comma separated,
  1-based: "the smallest should be 1", the LaSOT author, LaSOT_Evaluation_Toolkit issue 14),
  ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated line of 0/1 ->
  attributes; either one sets ``absent``), ``nlp.txt`` (-> ``meta["nlp"]``).
- ``trackingnet``: ``TRAIN_k|TEST/frames/<seq>/0.jpg, 1.jpg...`` + ``TRAIN_k|TEST/anno/<seq>.txt``
  (comma separated, 0-based: the boxes come from YouTube-BB's normalized coordinates, which
  have no 1-based convention; the test split has only the first box).
- ``imagenet_vid`` (ILSVRC2015 VID): ``Data/VID/<split>/[<batch>/]<video>/000000.JPEG...`` and
  per frame ``Annotations/VID/<split>/.../<video>/000000.xml`` (PASCAL-VOC XML, every frame has
  one): each ``<object>`` has ``<trackid>``, ``<name>`` (a WordNet synset), ``<bndbox>`` with
  ``xmin, ymin, xmax, ymax`` and the ``<occluded>`` / ``<generated>`` flags. Each track id is a
  sequence ``<video>.<trackid>`` (frames from its first box to its last, absent between where it
  has none; ``meta["synset"]``, attributes ``occluded`` / ``generated``). The box is
  ``(xmin, ymin, xmax - xmin + 1, ymax - ymin + 1)``, inclusive corners, 0-based: as the GOT-10k
  toolkit reads VID (``got10k/datasets/vid.py``). A dataset root is the ILSVRC2015 folder (every
  split that has annotations), ``Data/VID`` or one split.
- ``youtube_vos``: ``<split>/JPEGImages/<video>/00000.jpg...`` (train keeps every fifth frame, so
  the numbering has gaps), ``<split>/Annotations/<video>/00000.png`` (palette PNGs whose pixel
  value is the object id; train annotates every frame it keeps, valid/test only an object's
  first frame) and ``<split>/meta.json`` (``videos -> <video> -> objects -> <id> -> category,
  frames``). Each object is a sequence ``<video>.<id>`` from the first frame its mask is
  non-empty; the box is its mask's box, NaN where the mask is empty or the frame has no PNG;
  ``mask(i)`` is its mask (``mask_value`` = its id; ``mask_paths`` has ``None`` for frames
  without a PNG, or whose PNG does not draw it although ``meta.json`` lists it there). A
  dataset root is a split folder (or a folder of split folders).

A groundtruth file with one line for a sequence of several frames is the first box only
(GOT-10k and TrackingNet test splits); any other count that is not one box per frame is a
:class:`SequenceError`. ``origin`` records what was subtracted, so results can be written back
in the format's own convention (``x + origin``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from deepvideo.io import VideoReader
from deepvideo.track.base import Box, as_box
from deepvideo.track.boxes import polygon_to_box
from deepvideo.track.sequence_files import (
    IMAGE_SUFFIXES,
    SequenceError,
    check_box_count,
    mask_box,
    numbered_frames,
    parse_numbers,
    read_boxes,
    read_index_mask,
    read_json,
    read_labels,
    read_properties,
    read_xml_objects,
    text_lines,
    valid_rows,
)

__all__ = ["FORMATS", "OTB_FRAME_RANGES", "Sequence", "SequenceError", "detect_format",
           "load_dataset", "load_sequence", "video_sequence"]

#: OTB sequences annotated on a range of their images (first, last image number, inclusive).
OTB_FRAME_RANGES = {"David": (300, 770), "Football1": (1, 74), "Freeman3": (1, 460),
                    "Freeman4": (1, 283), "Diving": (1, 215)}
VIDEO_CHUNK = 16  # frames decoded per call while streaming a video


@dataclass
class Sequence:
    """One tracking sequence: frames (image files, or ``video_path``), one box per frame and
    what the format says about each frame. ``len(sequence)`` is the number of frames."""

    name: str
    frame_paths: list[Path]                # empty for a video file (see ``video_path``)
    boxes: np.ndarray                      # [N, 4] float64, NaN rows where not annotated
    absent: np.ndarray | None = None       # [N] bool, True where not visible / not annotated
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [N] bool
    format: str = ""
    root: Path | None = None
    values: dict[str, np.ndarray] = field(default_factory=dict)      # name -> [N] int64
    meta: dict[str, str] = field(default_factory=dict)
    origin: int = 0                        # index of the first pixel in the source file
    video_path: Path | None = None
    mask_paths: list[Path | None] = field(default_factory=list)  # one PNG per frame (None: not
    # annotated in that frame), or none at all
    mask_value: int | None = None          # the object's id in index PNGs; None: 0/255 masks
    _reader: VideoReader | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def init_box(self) -> Box:
        """The first frame's box, the one a tracker is initialized with."""
        return as_box(self.boxes[0], f"{self.name}: first box")

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB ``uint8 [H, W, 3]``."""
        if self.video_path is not None:
            return self._video().get_frame(index).numpy()
        path = self.frame_paths[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SequenceError(f"{path}: not a readable image (frame {index} of {self.name})")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    @property
    def has_masks(self) -> bool:
        return bool(self.mask_paths)

    def mask(self, index: int) -> np.ndarray:
        """The target's mask in frame ``index`` as ``bool [H, W]``: pixels > 127 of its 0/255 PNG,
        or, with ``mask_value``, the pixels of an index PNG equal to it (one object of several)."""
        if not self.mask_paths:
            raise SequenceError(f"sequence {self.name!r} ({self.root}) has no masks")
        path = self.mask_paths[index]
        if path is None:
            raise SequenceError(f"sequence {self.name!r} ({self.root}): frame {index} has no mask (the "
                                "format annotates only some frames)")
        if self.mask_value is not None:
            return read_index_mask(path) == self.mask_value
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise SequenceError(f"{path}: not a readable mask image (frame {index} of {self.name})")
        return image > 127

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Frames ``start..N-1`` in order, one at a time (a video is decoded a few frames at a
        time, never held whole)."""
        if self.video_path is None:
            for index in range(start, len(self)):
                yield self.frame(index)
            return
        for first in range(start, len(self), VIDEO_CHUNK):
            chunk = self._video().get_frames(list(range(first, min(first + VIDEO_CHUNK, len(self)))))
            yield from (frame.numpy() for frame in chunk)

    def close(self) -> None:
        """Close the video file, if one is open (it reopens on the next frame read)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _video(self) -> VideoReader:
        if self._reader is None:
            self._reader = VideoReader(self.video_path, threads=1)
        return self._reader


def video_sequence(path: str | Path, init_box) -> Sequence:
    """A plain video file and the target's box in its first frame (0-based ``x, y, w, h``):
    a sequence whose boxes are NaN after the first."""
    path = Path(path)
    reader = VideoReader(path, threads=1)
    num_frames, _ = reader.packet_count()  # counted from the packets: exact even if the container is not
    try:
        box = as_box(init_box, f"{path}: first box")
    except ValueError as exc:
        raise SequenceError(f"first box is empty/NaN: {exc}") from None
    boxes = np.full((num_frames, 4), np.nan)
    boxes[0] = box
    sequence = Sequence(path.stem, [], boxes, format="video", root=path.parent, video_path=path)
    sequence._reader = reader
    return sequence


# -- per-format readers: a sequence path -> its sequences (several only for OTB multi-target) --

def read_otb(folder: Path) -> list[Sequence]:
    frames_dir = folder / "img"
    files, numbers = numbered_frames(frames_dir)
    if folder.name in OTB_FRAME_RANGES:
        first, last = OTB_FRAME_RANGES[folder.name]
        files = [f for f, n in zip(files, numbers, strict=True) if first <= n <= last]
    sequences = []
    for suffix, path in otb_targets(folder):
        boxes = read_boxes(path, origin=1)
        check_box_count(path, boxes, len(files), frames_dir)
        sequences.append(Sequence(folder.name + suffix, files, boxes, ~valid_rows(boxes),
                                  format="otb", root=folder, origin=1))
    return sequences


def otb_targets(folder: Path) -> list[tuple[str, Path]]:
    """``("", groundtruth_rect.txt)`` or ``(".1", groundtruth_rect.1.txt), ...``; empty files
    hold no target."""
    found = [("", folder / "groundtruth_rect.txt")] if (folder / "groundtruth_rect.txt").is_file() else []
    for path in sorted(folder.glob("groundtruth_rect.*.txt")):
        found.append(("." + path.name.split(".")[1], path))
    targets = [(suffix, path) for suffix, path in found if path.read_text().strip()]
    if not targets:
        raise SequenceError(f"{folder}: no boxes (groundtruth_rect*.txt missing or empty)")
    return targets


def read_vot(folder: Path) -> list[Sequence]:
    properties = read_properties(folder / "sequence", "=") if (folder / "sequence").is_file() else {}
    frames_dir = vot_frames_folder(folder, properties)
    files, _ = numbered_frames(frames_dir)
    path = folder / properties.get("groundtruth", "groundtruth.txt")
    boxes = read_boxes(path, parse=vot_region)
    check_box_count(path, boxes, len(files), frames_dir)
    tag_files = sorted([*folder.glob("*.tag"), *folder.glob("*.label")])
    tags = {p.stem: read_labels(p, len(files), pad=True).astype(bool) for p in tag_files}
    return [Sequence(folder.name, files, boxes, ~valid_rows(boxes), tags, format="vot", root=folder,
                     meta=properties)]


def vot_frames_folder(folder: Path, properties: dict[str, str]) -> Path:
    if "channels.color" in properties:
        return (folder / properties["channels.color"]).parent
    return folder / "color" if (folder / "color").is_dir() else folder


def vot_region(path: Path, number: int, text: str) -> list[float]:
    """One VOT groundtruth line as ``[x, y, w, h]``: rectangle, polygon, mask or special."""
    if text.startswith("m"):
        return rle_mask_box(path, number, parse_numbers(path, number, text[1:]))
    values = parse_numbers(path, number, text)
    if len(values) == 1:
        return [np.nan] * 4
    if len(values) == 4:
        return values
    if len(values) >= 6 and len(values) % 2 == 0:
        return list(polygon_to_box(values)[0])
    raise SequenceError(f"{path}, line {number}: {len(values)} numbers is neither a rectangle (4) "
                        f"nor a polygon (an even count >= 6): {text!r}")


def rle_mask_box(path: Path, number: int, values: list[float]) -> list[float]:
    """The box of a VOT mask ``x0, y0, w, h, run lengths...`` (runs alternate 0s and 1s,
    starting with 0s, row by row over the ``w x h`` patch at ``(x0, y0)``)."""
    if len(values) < 4:
        raise SequenceError(f"{path}, line {number}: a mask needs x0, y0, w, h and run lengths")
    x0, y0, width, height = (int(v) for v in values[:4])
    runs = np.asarray(values[4:], dtype=np.int64)
    if runs.sum() > width * height or (runs < 0).any():
        raise SequenceError(f"{path}, line {number}: mask run lengths do not fit a {width}x{height} patch")
    patch = np.zeros(width * height, dtype=bool)
    starts = np.concatenate([[0], np.cumsum(runs)])
    for begin, end in zip(starts[1::2], starts[2::2], strict=False):
        patch[begin:end] = True
    box = mask_box(patch.reshape(height, width))
    return [box[0] + x0, box[1] + y0, box[2], box[3]]


def first_box_only(path: Path, boxes: np.ndarray, num_frames: int, frames_from: Path) -> np.ndarray:
    """``boxes`` padded with NaN rows when the file gives only the first box (a test split);
    otherwise checked to have one box per frame."""
    if len(boxes) == 1 and num_frames > 1:
        return np.concatenate([boxes, np.full((num_frames - 1, 4), np.nan)])
    check_box_count(path, boxes, num_frames, frames_from)
    return boxes


def read_got10k(folder: Path) -> list[Sequence]:
    files, _ = numbered_frames(folder)
    path = folder / "groundtruth.txt"
    given = read_boxes(path, origin=1)
    boxes = first_box_only(path, given, len(files), folder)
    labels = {name: read_labels(folder / f"{name}.label", len(files), high=8 if name == "cover" else 1)
              for name in ("absence", "cover", "cut_by_image") if (folder / f"{name}.label").is_file()}
    absence = labels.pop("absence", None)
    absent = None
    if len(given) == len(files):
        absent = ~valid_rows(boxes) | (absence == 1 if absence is not None else False)
    meta_file = folder / "meta_info.ini"
    return [Sequence(folder.name, files, boxes, absent,
                     {k: v.astype(bool) for k, v in labels.items() if k != "cover"},
                     format="got10k", root=folder, origin=1,
                     values={"cover": labels["cover"]} if "cover" in labels else {},
                     meta=read_properties(meta_file, ":") if meta_file.is_file() else {},
                     mask_paths=frame_masks(folder, files))]


def frame_masks(folder: Path, files: list[Path]) -> list[Path]:
    """``folder/masks/<frame name>.png`` of every frame when ``folder/masks`` exists (as
    :mod:`deepvideo.track.synth` writes them), else ``[]``; a missing one is a SequenceError."""
    masks = folder / "masks"
    if not masks.is_dir():
        return []
    paths = [masks / f"{f.stem}.png" for f in files]
    lacking = [p.name for p in paths if not p.is_file()]
    if lacking:
        raise SequenceError(f"{masks}: no mask for {len(lacking)} of {len(files)} frames "
                            f"(first: {lacking[0]})")
    return paths


def read_lasot(folder: Path) -> list[Sequence]:
    frames_dir = folder / "img"
    files, _ = numbered_frames(frames_dir)
    path = folder / "groundtruth.txt"
    boxes = read_boxes(path, origin=1)
    check_box_count(path, boxes, len(files), frames_dir)
    flags = {name: read_labels(folder / f"{name}.txt", len(files), one_line=True).astype(bool)
             for name in ("full_occlusion", "out_of_view") if (folder / f"{name}.txt").is_file()}
    absent = ~valid_rows(boxes)
    for flag in flags.values():
        absent |= flag
    meta = {"nlp": (folder / "nlp.txt").read_text().strip()} if (folder / "nlp.txt").is_file() else {}
    return [Sequence(folder.name, files, boxes, absent, flags, format="lasot", root=folder,
                     origin=1, meta=meta)]


def trackingnet_parts(path: Path) -> tuple[Path, str] | None:
    """``(split folder, sequence name)`` of ``<split>/frames/<seq>`` or ``<split>/anno/<seq>.txt``."""
    if path.suffix == ".txt" and path.parent.name == "anno":
        return path.parent.parent, path.stem
    if path.parent.name == "frames" and (path.parent.parent / "anno" / f"{path.name}.txt").is_file():
        return path.parent.parent, path.name
    return None


def read_trackingnet(path: Path) -> list[Sequence]:
    parts = trackingnet_parts(path)
    if parts is None:
        raise SequenceError(f"{path}: not a TrackingNet sequence (<split>/frames/<seq> or "
                            "<split>/anno/<seq>.txt)")
    split, name = parts
    frames_dir, anno = split / "frames" / name, split / "anno" / f"{name}.txt"
    files, _ = numbered_frames(frames_dir)
    given = read_boxes(anno)
    boxes = first_box_only(anno, given, len(files), frames_dir)
    absent = ~valid_rows(boxes) if len(given) == len(files) else None
    return [Sequence(name, files, boxes, absent, format="trackingnet", root=split)]


def vid_annotation_folder(folder: Path) -> Path | None:
    """``.../Annotations/VID/<split>/.../<video>`` for ``.../Data/VID/<split>/.../<video>``
    (ILSVRC2015 keeps the annotations in a tree mirroring the frames), else ``None``."""
    parts = folder.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "Data" and parts[i + 1] == "VID":
            return Path(*parts[:i], "Annotations", *parts[i + 1:])
    return None


def read_imagenet_vid(folder: Path) -> list[Sequence]:
    """One sequence per track id of an ImageNet VID snippet, from the frame its object first
    has a box to the last; frames between without its box are absent (NaN)."""
    files, _ = numbered_frames(folder)
    annotations = vid_annotation_folder(folder)
    if annotations is None or not annotations.is_dir():
        raise SequenceError(f"{folder}: no annotation folder {annotations} (ImageNet VID keeps "
                            "Annotations/VID/<split>/<video>/<frame>.xml beside Data/VID)")
    tracks: dict[int, dict] = {}  # track id -> frame index -> XmlObject
    for k, frame in enumerate(files):
        path = annotations / f"{frame.stem}.xml"
        for obj in read_xml_objects(path):
            track = tracks.setdefault(obj.trackid, {})
            if k in track:
                raise SequenceError(f"{path}: track id {obj.trackid} has two <object> elements")
            track[k] = obj
    return [vid_track(folder, files, trackid, frames) for trackid, frames in sorted(tracks.items())]


def vid_track(folder: Path, files: list[Path], trackid: int, frames: dict) -> Sequence:
    """The sequence of one VID track: box ``x = xmin, w = xmax - xmin + 1`` (inclusive pixel
    corners, as the GOT-10k toolkit reads VID), flags ``occluded`` / ``generated``."""
    first, last = min(frames), max(frames)
    count = last - first + 1
    boxes = np.full((count, 4), np.nan)
    flags = {"occluded": np.zeros(count, bool), "generated": np.zeros(count, bool)}
    for k, obj in frames.items():
        xmin, ymin, xmax, ymax = obj.box
        boxes[k - first] = (xmin, ymin, xmax - xmin + 1, ymax - ymin + 1)
        flags["occluded"][k - first], flags["generated"][k - first] = obj.occluded, obj.generated
    names = sorted({obj.name for obj in frames.values()})
    return Sequence(f"{folder.name}.{trackid}", files[first:last + 1], boxes, ~valid_rows(boxes), flags,
                    format="imagenet_vid", root=folder, meta={"synset": ",".join(names),
                                                              "first_frame": str(first)})


def youtube_vos_parts(folder: Path) -> tuple[Path, Path] | None:
    """``(split folder, annotation folder)`` of ``<split>/JPEGImages/<video>``, else ``None``."""
    if folder.parent.name != "JPEGImages":
        return None
    split = folder.parent.parent
    return split, split / "Annotations" / folder.name


def read_youtube_vos(folder: Path) -> list[Sequence]:
    """One sequence per object of a YouTube-VOS video (``meta.json`` lists them): from the first
    frame its mask is non-empty; the box is its mask's box, NaN (absent) where the mask is empty
    or the frame has no annotation PNG; ``mask(i)`` selects its id (``mask_value``). A PNG where
    the object's mask is empty although ``meta.json`` lists it in that frame does not annotate it
    (the valid split draws only the objects that start in a frame): its mask path is ``None``."""
    parts = youtube_vos_parts(folder)
    if parts is None:
        raise SequenceError(f"{folder}: not a YouTube-VOS video folder (<split>/JPEGImages/<video>)")
    split, annotations = parts
    files, _ = numbered_frames(folder, gaps=True)
    objects = vos_objects(split / "meta.json", folder.name, {f.stem for f in files})
    pngs: list[Path | None] = [annotations / f"{f.stem}.png" for f in files]
    pngs = [p if p.is_file() else None for p in pngs]
    boxes = {obj: np.full((len(files), 4), np.nan) for obj in objects}
    masks = {obj: list(pngs) for obj in objects}
    for k, path in enumerate(pngs):
        ids = read_index_mask(path) if path is not None else None
        for obj, (_, listed) in objects.items():
            if ids is not None:
                boxes[obj][k] = mask_box(ids == obj)
                if np.isnan(boxes[obj][k, 0]) and files[k].stem in listed:
                    masks[obj][k] = None
    sequences = []
    for obj, (category, _) in objects.items():
        seen = np.flatnonzero(valid_rows(boxes[obj]))
        if not len(seen):
            raise SequenceError(f"{annotations}: object {obj} of {split / 'meta.json'} is in no mask")
        first = int(seen[0])
        sequences.append(Sequence(f"{folder.name}.{obj}", files[first:], boxes[obj][first:],
                                  ~valid_rows(boxes[obj][first:]), format="youtube_vos", root=folder,
                                  meta={"category": category, "first_frame": files[first].stem},
                                  mask_paths=masks[obj][first:], mask_value=obj))
    return sequences


def vos_objects(meta_path: Path, video: str, frames: set[str]) -> dict[int, tuple[str, set[str]]]:
    """Object id -> (category, the frames it is listed in) of ``video`` in a YouTube-VOS
    ``meta.json`` (``{"videos": {video: {"objects": {"1": {"category": ..., "frames": [...]}}}}}``);
    every frame an object lists must exist."""
    meta = read_json(meta_path)
    entry = meta.get("videos", {}).get(video) if isinstance(meta, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("objects"), dict) or not entry["objects"]:
        raise SequenceError(f"{meta_path}: no objects for video {video!r} (expected "
                            f'"videos" -> "{video}" -> "objects")')
    objects = {}
    for key, obj in entry["objects"].items():
        if not key.isdigit() or not 0 < int(key) < 256 or not isinstance(obj, dict):
            raise SequenceError(f"{meta_path}: video {video!r}: object {key!r} is not an id 1..255 with "
                                "its category and frames")
        listed = [str(f) for f in obj.get("frames", [])]
        lacking = [f for f in listed if f not in frames]
        if lacking:
            raise SequenceError(f"{meta_path}: video {video!r} object {key} lists frame {lacking[0]!r}, "
                                f"which JPEGImages/{video} lacks")
        objects[int(key)] = (str(obj.get("category", "")), set(listed))
    return objects


# -- format detection ----------------------------------------------------------------------------

def is_otb(path: Path) -> bool:
    return path.is_dir() and any(path.glob("groundtruth_rect*.txt"))


def is_lasot(path: Path) -> bool:
    return (path / "groundtruth.txt").is_file() and any(
        (path / name).exists() for name in ("img", "full_occlusion.txt", "out_of_view.txt", "nlp.txt"))


def is_got10k(path: Path) -> bool:
    return (path / "groundtruth.txt").is_file() and (
        (path / "meta_info.ini").is_file() or (path / "absence.label").is_file()
        or path.name.startswith("GOT-10k_"))


def is_vot(path: Path) -> bool:
    return (path / "groundtruth.txt").is_file() or (path / "sequence").is_file()


def is_trackingnet(path: Path) -> bool:
    return trackingnet_parts(path) is not None


def is_imagenet_vid(path: Path) -> bool:
    """A snippet folder (it holds frames) with its mirrored annotation folder."""
    annotations = vid_annotation_folder(path) if path.is_dir() else None
    return annotations is not None and annotations.is_dir() and any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def is_youtube_vos(path: Path) -> bool:
    parts = youtube_vos_parts(path) if path.is_dir() else None
    return parts is not None and parts[1].is_dir()


#: format name -> (detector, reader), tried in this order.
FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], list[Sequence]]]] = {
    "trackingnet": (is_trackingnet, read_trackingnet),
    "imagenet_vid": (is_imagenet_vid, read_imagenet_vid),
    "youtube_vos": (is_youtube_vos, read_youtube_vos),
    "otb": (is_otb, read_otb),
    "lasot": (is_lasot, read_lasot),
    "got10k": (is_got10k, read_got10k),
    "vot": (is_vot, read_vot),
}


def detect_format(path: str | Path) -> str | None:
    """The format of the sequence at ``path``, or ``None`` when it is not one."""
    path = Path(path)
    return next((name for name, (detect, _) in FORMATS.items() if detect(path)), None)


def read_sequences(path: Path, format: str | None = None) -> list[Sequence]:
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown sequence format {format!r}; known: {', '.join(FORMATS)}")
    if not path.exists():
        raise SequenceError(f"{path}: not found")
    format = format or detect_format(path)
    if format is None:
        hint = " (a video file: use video_sequence(path, first_box))" if path.is_file() else ""
        raise SequenceError(f"{path}: not a tracking sequence in a known format ({', '.join(FORMATS)})"
                            f"{hint}")
    return FORMATS[format][1](path)


def load_sequence(path: str | Path, format: str | None = None, target: int | None = None) -> Sequence:
    """The sequence at ``path`` (a sequence folder; for TrackingNet also ``anno/<seq>.txt``),
    its format detected unless given. ``target`` picks one of an OTB folder's targets."""
    sequences = read_sequences(Path(path), format)
    if not sequences:
        raise SequenceError(f"{path}: no target is annotated in any frame")
    names = ", ".join(s.name for s in sequences)
    if target is not None:
        sequences = [s for s in sequences if s.name.endswith(f".{target}")]
        if not sequences:
            raise SequenceError(f"{path}: no target {target} (targets: {names})")
    if len(sequences) > 1:
        raise SequenceError(f"{path}: {len(sequences)} targets ({names}): pass target=k to load Name.k")
    return sequences[0]


def load_dataset(root: str | Path, format: str | None = None) -> list[Sequence]:
    """Every sequence under ``root``, sorted by name: the folders a ``list.txt`` names (VOT,
    a GOT-10k split; ``root`` may be the list file itself), a TrackingNet split's ``anno/*.txt``,
    the snippets of an ILSVRC2015 root's annotated VID splits, a YouTube-VOS split's videos,
    or else every sequence folder below ``root`` (LaSOT's class folders, a TrackingNet root's
    ``TRAIN_k``/``TEST``, GOT-10k's splits). A folder that is neither a sequence nor holds
    any is an error."""
    sequences = [s for path in sequence_paths(Path(root)) for s in read_sequences(path, format)]
    return sorted(sequences, key=lambda s: s.name)


def sequence_paths(root: Path) -> list[Path]:
    if root.is_file() and root.suffix == ".txt":
        return listed_paths(root)
    if not root.is_dir():
        raise SequenceError(f"{root}: dataset folder not found")
    if (root / "list.txt").is_file():
        return listed_paths(root / "list.txt")
    if (root / "anno").is_dir() and (root / "frames").is_dir():
        return sorted((root / "anno").glob("*.txt"))
    if (root / "Data" / "VID").is_dir():  # an ILSVRC2015 root: the splits that have annotations
        splits = root / "Annotations" / "VID"
        if not splits.is_dir():
            raise SequenceError(f"{root}: Data/VID without Annotations/VID")
        return [path for split in sorted(p for p in splits.iterdir() if p.is_dir())
                for path in sequence_paths(root / "Data" / "VID" / split.name)]
    if (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():  # a YouTube-VOS split
        return sorted(p for p in (root / "JPEGImages").iterdir() if p.is_dir())
    if detect_format(root):
        return [root]
    subfolders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if not subfolders:
        raise SequenceError(f"{root}: neither a tracking sequence nor a folder of them")
    return [path for sub in subfolders for path in sequence_paths(sub)]


def listed_paths(list_file: Path) -> list[Path]:
    """The sequence folders a ``list.txt`` names, one per line, relative to its folder."""
    paths = []
    for number, name in text_lines(list_file):
        path = list_file.parent / name
        if not path.is_dir():
            raise SequenceError(f"{list_file}, line {number}: sequence folder {name!r} not found")
        paths.append(path)
    if not paths:
        raise SequenceError(f"{list_file}: lists no sequences")
    return paths
