"""The ImageNet VID layout (Russakovsky et al., IJCV 2015): read and write it.

A VID root holds, per split (``train``, ``val``, ``test``, ...)::

    Data/VID/<split>/<video>/<frame:06d>.JPEG
    Annotations/VID/<split>/<video>/<frame:06d>.xml
    ImageSets/VID/<split>.txt           # one line per frame: "<video>/<frame:06d> <n>"

Each XML is one frame: ``<size>`` (``width``, ``height``) and one ``<object>`` per visible
object with ``trackid`` (the object's id within the video), ``name`` (the class: a WordNet id
such as ``n02691156`` in the real set), ``bndbox`` (``xmin, ymin, xmax, ymax`` in pixels) and
``occluded`` (0/1). DET images (``Annotations/DET``) have the same fields without ``trackid``;
:func:`read_frame_xml` reads both (a missing ``trackid`` becomes the object's index).

ImageNet DET (the ILSVRC DET devkit's layout) lists its images in ``ImageSets/DET``: a
per-class training list ``train_<k>.txt`` has lines ``<image_id> <label>`` with ``1`` a positive
image (every instance of class ``k`` annotated), ``0`` a partial positive (not every instance
annotated) and ``-1`` a negative; ``val.txt`` has ``<image_id> <index>``. The image is
``Data/DET/<split>/<image_id>.JPEG`` and its annotation ``Annotations/DET/<split>/<image_id>.xml``
(train ids such as ``ILSVRC2013_train/n01443537/n01443537_10007``); lists made for video
detection (e.g. a ``DET_train_30classes.txt``) name the image relative to ``Annotations/DET``
(``train/ILSVRC2014_train_0000/...``). :func:`read_det_list` reads either.

Boxes are read as ``(x1, y1, x2, y2) = (xmin, ymin, xmax, ymax)`` floats, the coordinates the
VID devkit scores. Errors name the file and the line of the offending element.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_text

__all__ = ["VidFrame", "VidObject", "VidVideo", "frame_xml", "read_det_list", "read_frame_xml",
           "read_split", "read_video", "write_frame_xml"]

FRAME_DIGITS = 6


@dataclass(frozen=True)
class VidObject:
    """One annotated object of a frame."""

    trackid: int
    name: str
    box: tuple[float, float, float, float]
    occluded: bool = False


@dataclass
class VidFrame:
    """One frame: its image path, size ``(width, height)`` and objects."""

    image: Path
    size: tuple[int, int]
    objects: list[VidObject] = field(default_factory=list)


@dataclass
class VidVideo:
    """A video of the set: its name (``<split>/<video>``) and frames in order."""

    name: str
    frames: list[VidFrame]

    def classes(self) -> set[str]:
        return {o.name for f in self.frames for o in f.objects}


@dataclass
class _Node:
    tag: str
    line: int
    children: list[_Node] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)


def _parse(path: Path) -> _Node:
    """A tree of the XML file whose nodes know their line (for error messages)."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Node] = [_Node("", 0)]

    def start(tag, _attrs):
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def text(data):
        stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not well-formed XML ({exc})") from None
    if not stack[0].children or stack[0].children[0].tag != "annotation":
        raise ValueError(f"{path}:1: the root element must be <annotation>")
    return stack[0].children[0]


def _value(path: Path, node: _Node, tag: str, kind=float, default=None):
    child = node.find(tag)
    if child is None:
        if default is not None:
            return default
        raise ValueError(f"{path}:{node.line}: <{node.tag}> has no <{tag}>")
    try:
        return kind(child.text.strip())
    except ValueError:
        raise ValueError(f"{path}:{child.line}: <{tag}> must be {kind.__name__}, "
                         f"got {child.text.strip()!r}") from None


def _object(path: Path, node: _Node, index: int) -> VidObject:
    bndbox = node.find("bndbox")
    if bndbox is None:
        raise ValueError(f"{path}:{node.line}: <object> has no <bndbox>")
    box = tuple(_value(path, bndbox, t) for t in ("xmin", "ymin", "xmax", "ymax"))
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"{path}:{bndbox.line}: <bndbox> has xmax < xmin or ymax < ymin: {box}")
    name = node.find("name")
    if name is None or not name.text.strip():
        raise ValueError(f"{path}:{node.line}: <object> has no <name>")
    return VidObject(trackid=_value(path, node, "trackid", int, default=index),
                     name=name.text.strip(), box=box,
                     occluded=bool(_value(path, node, "occluded", int, default=0)))


def read_frame_xml(path: str | Path, image: str | Path = "") -> VidFrame:
    """One VID (or DET) annotation file."""
    path = Path(path)
    root = _parse(path)
    size = root.find("size")
    if size is None:
        raise ValueError(f"{path}:{root.line}: <annotation> has no <size>")
    dims = (_value(path, size, "width", int), _value(path, size, "height", int))
    objects = [_object(path, n, i) for i, n in enumerate(c for c in root.children if c.tag == "object")]
    ids = [o.trackid for o in objects]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: the same trackid appears twice in one frame: {sorted(ids)}")
    return VidFrame(image=Path(image), size=dims, objects=objects)


def frame_xml(folder: str, filename: str, size: tuple[int, int], objects: list[VidObject]) -> str:
    """The XML text of one frame, as the VID annotations write it."""
    lines = ["<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{filename}</filename>",
             "\t<source>", "\t\t<database>deepvideo synthetic VID</database>", "\t</source>",
             "\t<size>", f"\t\t<width>{size[0]}</width>", f"\t\t<height>{size[1]}</height>", "\t</size>"]
    for o in objects:
        x1, y1, x2, y2 = (int(round(v)) for v in o.box)
        lines += ["\t<object>", f"\t\t<trackid>{o.trackid}</trackid>", f"\t\t<name>{o.name}</name>",
                  "\t\t<bndbox>", f"\t\t\t<xmax>{x2}</xmax>", f"\t\t\t<xmin>{x1}</xmin>",
                  f"\t\t\t<ymax>{y2}</ymax>", f"\t\t\t<ymin>{y1}</ymin>", "\t\t</bndbox>",
                  f"\t\t<occluded>{int(o.occluded)}</occluded>", "\t\t<generated>0</generated>",
                  "\t</object>"]
    return "\n".join([*lines, "</annotation>", ""])


def write_frame_xml(path: str | Path, size: tuple[int, int], objects: list[VidObject]) -> None:
    path = Path(path)
    atomic_write_text(path, frame_xml(path.parent.name, path.stem, size, objects))


def read_video(root: str | Path, name: str) -> VidVideo:
    """Video ``name`` (``<split>/<video>``) of the VID root: every ``.xml`` of its annotation
    folder, in name order, with the image path beside it in ``Data/VID``."""
    root = Path(root)
    folder = root / "Annotations" / "VID" / name
    files = sorted(folder.glob("*.xml"))
    if not files:
        raise FileNotFoundError(f"{folder}: no annotation files (.xml) for video {name!r}")
    frames = [read_frame_xml(f, root / "Data" / "VID" / name / f"{f.stem}.JPEG") for f in files]
    return VidVideo(name=name, frames=frames)


def read_split(root: str | Path, split: str) -> list[VidVideo]:
    """The videos of ``ImageSets/VID/<split>.txt``, in the order listed. A line is
    ``<entry> [n]`` where the entry names a video folder relative to ``Annotations/VID`` or to
    ``Annotations/VID/<split>`` (``train/ILSVRC2015_VID_train_0000/...`` of the real train lists,
    ``ILSVRC2015_val_00000000/000000`` of val.txt), optionally ending in a frame number; a video
    listed per frame is read once."""
    root = Path(root)
    listing = root / "ImageSets" / "VID" / f"{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: no such list; a VID root has ImageSets/VID/<split>.txt")
    annotations = root / "Annotations" / "VID"
    names: dict[str, None] = {}
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()[0].strip("/").split("/")
        if len(parts) > 1 and parts[-1].isdigit():
            parts = parts[:-1]
        name = "/".join(parts)
        if not (annotations / name).is_dir():
            name = f"{split}/{name}"
        if not (annotations / name).is_dir():
            raise FileNotFoundError(f"{listing}:{number}: no annotation folder {annotations / name}")
        names[name] = None
    return [read_video(root, n) for n in names]


def read_det_list(root: str | Path, listing: str | Path, split: str = "train",
                  keep: tuple[int, ...] = (1,)) -> list[VidFrame]:
    """The DET images of ``listing`` (a path, relative to ``root`` or absolute; see the module
    docstring) whose label is in ``keep`` (default: the positives; a line without a label, or a
    ``val.txt`` line, is kept), in the order listed. An entry names a file relative to
    ``Annotations/DET`` or to ``Annotations/DET/<split>``; a kept line without its XML is an error
    naming the list's line (only negatives may lack one)."""
    root = Path(root)
    path = Path(listing) if Path(listing).is_absolute() else root / listing
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DET list (e.g. ImageSets/DET/train_1.txt)")
    annotations, frames = root / "Annotations" / "DET", []
    is_val = path.stem.startswith("val")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2 or (len(fields) == 2 and not fields[1].lstrip("-").isdigit()):
            raise ValueError(f"{path}:{number}: expected '<image_id> [<label>]', got {line!r}")
        if len(fields) == 2 and not is_val and int(fields[1]) not in keep:
            continue
        entry = fields[0].strip("/")
        name = entry if (annotations / f"{entry}.xml").is_file() else f"{split}/{entry}"
        xml = annotations / f"{name}.xml"
        if not xml.is_file():
            raise FileNotFoundError(f"{path}:{number}: no annotation {xml}")
        frames.append(read_frame_xml(xml, root / "Data" / "DET" / f"{name}.JPEG"))
    return frames


def box_array(frame: VidFrame) -> np.ndarray:
    """The frame's boxes ``[N, 4]`` float."""
    return np.asarray([o.box for o in frame.objects], np.float64).reshape(-1, 4)
