"""The files a tracking sequence is made of: numbered frame folders, box files (one box per
line) and per-frame label files. Every problem is a :class:`SequenceError` naming the file,
and the line where there is one.

Also the annotation files of the detection / segmentation sets: PASCAL-VOC-style XML with
one ``<object>`` per box (:func:`read_xml_objects`), index ("palette") PNG masks
(:func:`read_index_mask`) and JSON (:func:`read_json`); :func:`mask_box` is a mask's box.

Used by :mod:`deepvideo.track.datasets`, which knows the formats; this module knows none.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SEPARATORS = re.compile(r"[,\s]+")


class SequenceError(ValueError):
    """A tracking sequence that cannot be read; the message names the file (and line)."""


def numbered_frames(folder: Path, gaps: bool = False, prefix: str = "") -> tuple[list[Path], np.ndarray]:
    """The images of ``folder`` (those whose name starts with ``prefix``) sorted by the number
    that ends their name (``0001.jpg``, ``img00001.png``, ``7.jpg``: numeric order, so ``10.jpg``
    follows ``9.jpg``), and those numbers. The numbering must have no repeat, and no gap unless
    ``gaps`` (YouTube-VOS keeps every fifth frame: ``00000.jpg, 00005.jpg...``)."""
    if not folder.is_dir():
        raise SequenceError(f"{folder}: frame folder not found")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name.startswith(prefix)]
    if not files:
        raise SequenceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    numbers = []
    for path in files:
        match = re.search(r"(\d+)$", path.stem)
        if match is None:
            raise SequenceError(f"{path}: a frame file name must end with its number")
        numbers.append(int(match.group(1)))
    order = np.argsort(numbers, kind="stable")
    files, numbers = [files[i] for i in order], np.asarray(numbers, dtype=np.int64)[order]
    for i in np.flatnonzero((np.diff(numbers) < 1) if gaps else (np.diff(numbers) != 1))[:1]:
        what = "two frames with the same number" if numbers[i + 1] == numbers[i] else \
            f"frames missing in the numbering ({numbers[i + 1] - numbers[i] - 1} missing)"
        raise SequenceError(f"{folder}: {what}: {files[i].name} is followed by {files[i + 1].name}")
    return files, numbers


def text_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a text file as ``(line number, stripped text)``; blank lines at the end are
    dropped, a blank line before the last is an error (it would shift every frame after it)."""
    if not path.is_file():
        raise SequenceError(f"{path}: file not found")
    lines = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), start=1)]
    while lines and not lines[-1][1]:
        lines.pop()
    for number, text in lines:
        if not text:
            raise SequenceError(f"{path}, line {number}: empty line")
    return lines


def parse_numbers(path: Path, number: int, text: str) -> list[float]:
    """The numbers on one line (separated by commas, tabs or spaces; ``nan`` allowed)."""
    try:
        return [float(v) for v in SEPARATORS.split(text.strip(", \t"))]
    except ValueError:
        raise SequenceError(f"{path}, line {number}: not numbers: {text!r}") from None


def read_boxes(path: Path, origin: int = 0,
               parse: Callable[[Path, int, str], list[float]] | None = None) -> np.ndarray:
    """One ``(x, y, w, h)`` box per line as float64 ``[N, 4]``; ``origin`` (the index of the
    first pixel in the file: 1 for 1-based formats) is subtracted from x and y. ``parse``
    turns a line into 4 numbers (default: exactly 4 numbers). Rows with a NaN, or a width
    or height <= 0, become NaN rows (not annotated); the first box must be a real box."""
    lines = text_lines(path)
    if not lines:
        raise SequenceError(f"{path}: no boxes (empty file)")
    parse = parse or four_numbers
    boxes = np.array([parse(path, n, text) for n, text in lines], dtype=np.float64)
    boxes[:, :2] -= origin
    first = boxes[0]
    if not (np.isfinite(first).all() and first[2] > 0 and first[3] > 0):
        raise SequenceError(f"first box is empty/NaN: {path}, line {lines[0][0]}: {lines[0][1]!r}")
    boxes[~valid_rows(boxes)] = np.nan
    return boxes


def four_numbers(path: Path, number: int, text: str) -> list[float]:
    values = parse_numbers(path, number, text)
    if len(values) != 4:
        raise SequenceError(f"{path}, line {number}: expected 4 numbers x, y, w, h, got "
                            f"{len(values)}: {text!r}")
    return values


def valid_rows(boxes: np.ndarray) -> np.ndarray:
    """``[N]`` bool: rows that are finite boxes with positive width and height."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def check_box_count(path: Path, boxes: np.ndarray, num_frames: int, frames_from: Path) -> None:
    """One box per frame, or a named error saying how many of each."""
    if len(boxes) != num_frames:
        fewer = "fewer" if len(boxes) < num_frames else "more"
        raise SequenceError(f"{path}: {fewer} boxes than frames: {len(boxes)} boxes, "
                            f"{num_frames} frames in {frames_from}")


def read_labels(path: Path, num_frames: int, *, one_line: bool = False, high: int = 1,
                pad: bool = False) -> np.ndarray:
    """Per-frame integer labels in ``0..high`` as ``[num_frames]`` int64: one per line, or all on
    one comma-separated line (``one_line``). ``pad`` lets a shorter file stand for zeros at
    the end (VOT tag files); otherwise the count must equal ``num_frames``."""
    lines = text_lines(path)
    if one_line and len(lines) > 1:
        raise SequenceError(f"{path}, line {lines[1][0]}: expected all labels on one line")
    rows = []
    for number, text in lines:
        values = parse_numbers(path, number, text)
        if not one_line and len(values) != 1:
            raise SequenceError(f"{path}, line {number}: expected one label per line, got {text!r}")
        rows += [(number, v) for v in values]
    for number, value in rows:
        if not (math.isfinite(value) and value == int(value) and 0 <= value <= high):
            raise SequenceError(f"{path}, line {number}: label {value:g} is not an integer "
                                f"in 0..{high}")
    labels = np.array([int(v) for _, v in rows], dtype=np.int64)
    if len(labels) > num_frames or (len(labels) < num_frames and not pad):
        raise SequenceError(f"{path}: {len(labels)} labels for {num_frames} frames")
    return np.pad(labels, (0, num_frames - len(labels)))


def read_properties(path: Path, separator: str) -> dict[str, str]:
    """``key<separator>value`` lines (``meta_info.ini``: ``": "``; VOT ``sequence``: ``"="``);
    ``[section]`` headers are skipped."""
    properties = {}
    for number, text in text_lines(path):
        if text.startswith("[") and text.endswith("]"):
            continue
        key, found, value = text.partition(separator)
        if not found:
            raise SequenceError(f"{path}, line {number}: expected key{separator}value: {text!r}")
        properties[key.strip()] = value.strip()
    return properties


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The 0-based ``x, y, w, h`` whole-pixel bounding box of a bool mask (NaN when empty)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return np.full(4, np.nan)
    return np.array([cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1],
                    dtype=np.float64)


def read_index_mask(path: Path) -> np.ndarray:
    """An index mask as ``uint8 [H, W]``: the palette indices of a palette PNG (``P`` mode, as
    DAVIS and YouTube-VOS store object ids), or the values of a grayscale one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise SequenceError(f"{path}: a {image.mode} image, expected a palette (P) or grayscale (L) "
                                    "PNG whose pixel values are object ids")
            return np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise SequenceError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SequenceError(f"{path}: not a readable mask image ({exc})") from None


def read_json(path: Path):
    """A JSON file's content; a missing or malformed file is a SequenceError naming the line."""
    if not path.is_file():
        raise SequenceError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SequenceError(f"{path}, line {exc.lineno}: not valid JSON: {exc.msg}") from None


@dataclass
class XmlElement:
    """One XML element: its tag, the line it starts on, its text and its child elements."""

    tag: str
    line: int
    text: str = ""
    children: list[XmlElement] = field(default_factory=list)

    def find(self, tag: str) -> XmlElement | None:
        return next((child for child in self.children if child.tag == tag), None)


def parse_xml(path: Path) -> XmlElement:
    """The root element of an XML file, every element with its line number (for the errors)."""
    if not path.is_file():
        raise SequenceError(f"{path}: file not found")
    parser = expat.ParserCreate()
    stack: list[XmlElement] = [XmlElement("", 0)]

    def start(tag, _attributes):
        element = XmlElement(tag, parser.CurrentLineNumber)
        stack[-1].children.append(element)
        stack.append(element)

    def end(_tag):
        stack[-1].text = stack[-1].text.strip()
        stack.pop()

    def text(data):
        stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as exc:
        raise SequenceError(f"{path}, line {exc.lineno}: not well-formed XML: "
                            f"{expat.ErrorString(exc.code)}") from None
    return stack[0].children[0]


@dataclass
class XmlObject:
    """One ``<object>`` of a PASCAL-VOC-style annotation (ImageNet VID): its track id, class
    name, box ``xmin, ymin, xmax, ymax`` (pixels, inclusive) and flags."""

    trackid: int
    name: str
    box: tuple[int, int, int, int]
    occluded: bool
    generated: bool


def read_xml_objects(path: Path) -> list[XmlObject]:
    """The ``<object>`` elements of an ImageNet VID annotation file (``<trackid>``, ``<name>``,
    ``<bndbox>`` with ``xmin/ymin/xmax/ymax``, optional ``<occluded>`` / ``<generated>``)."""
    objects = []
    for element in parse_xml(path).children:
        if element.tag != "object":
            continue
        box = element.find("bndbox")
        if box is None:
            raise SequenceError(f"{path}, line {element.line}: <object> has no <bndbox>")
        xmin, ymin, xmax, ymax = (xml_int(path, box, tag) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise SequenceError(f"{path}, line {box.line}: <bndbox> xmax/ymax ({xmax}, {ymax}) below "
                                f"xmin/ymin ({xmin}, {ymin})")
        name = element.find("name")
        if name is None or not name.text:
            raise SequenceError(f"{path}, line {element.line}: <object> has no <name>")
        flags = [element.find(tag) for tag in ("occluded", "generated")]
        objects.append(XmlObject(xml_int(path, element, "trackid"), name.text, (xmin, ymin, xmax, ymax),
                                 *(f is not None and xml_int(path, element, f.tag) != 0 for f in flags)))
    return objects


def xml_int(path: Path, parent: XmlElement, tag: str) -> int:
    """The integer in ``parent``'s child ``<tag>``, or a SequenceError naming the line."""
    child = parent.find(tag)
    if child is None:
        raise SequenceError(f"{path}, line {parent.line}: <{parent.tag}> has no <{tag}>")
    try:
        return int(child.text)
    except ValueError:
        raise SequenceError(f"{path}, line {child.line}: <{tag}> is not an integer: {child.text!r}") from None
