"""Hand-crafted image features shared by the correlation-filter trackers.

- :func:`hog`: Felzenszwalb's HOG variant ("fHOG"; P. Felzenszwalb, R. Girshick, D. McAllester,
  D. Ramanan, "Object Detection with Discriminatively Trained Part-Based Models", TPAMI 2010,
  section 6.2): per pixel the gradient of the colour channel with the largest magnitude, hard
  assigned to one of 18 contrast-sensitive orientations and bilinearly to the 4 nearest cells
  (cell size 4 as in KCF and ECO); each cell's histogram is normalised by the 4 blocks of 2×2
  cells around it and truncated at 0.2; the 31 channels are 18 contrast-sensitive orientations
  + 9 contrast-insensitive ones (each the sum over the 4 normalisations, times 0.5) + 4
  texture (gradient energy) features, one per block (the sum of the sensitive orientations,
  times 0.2357 = 1/sqrt(18)). Unlike the paper's detector, every cell is kept (block energies
  at the border are replicated), so a ``h × w`` image gives ``h // 4 × w // 4`` cells, as in
  the fHOG used by KCF (Henriques et al., TPAMI 2015) and ECO (Danelljan et al., CVPR 2017).
- :func:`colour_names`: the probabilities of the 11 basic colour names (black, blue, brown,
  grey, green, orange, pink, purple, red, white, yellow) from the 32×32×32 RGB lookup table
  learned from Google images by J. van de Weijer, C. Schmid, J. Verbeek, D. Larlus, "Learning
  Color Names for Real-World Applications", TIP 2009 (``data/w2c.npz``; provenance in
  ``data/README.md``).
- :func:`grey`: intensity in ``[-0.5, 0.5]`` (the "gray" channel of CSR-DCF and ECO).

All take an RGB ``uint8`` image ``[H, W, 3]`` (:func:`hog` and :func:`grey` also a single
channel ``[H, W]`` on the 0–255 scale) and return ``float32 [H', W', C]``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

HOG_ORIENTATIONS = 9          # contrast-insensitive bins; 2x that many contrast-sensitive
HOG_TRUNCATION = 0.2          # clip of each normalised histogram value
HOG_TEXTURE_WEIGHT = 0.2357   # 1 / sqrt(18), weight of the 4 texture features
HOG_CHANNELS = 3 * HOG_ORIENTATIONS + 4   # 31
HOG_EPS = 1e-4                # added to block energies (intensities on the 0-255 scale)
COLOUR_NAMES = ("black", "blue", "brown", "grey", "green", "orange", "pink", "purple", "red",
                "white", "yellow")
W2C_PATH = Path(__file__).with_name("data") / "w2c.npz"


def as_image(image, what: str = "image") -> np.ndarray:
    """``image`` as float32 ``[H, W, C]`` (C = 1 or 3), or a ValueError saying what it is."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or array.size == 0:
        raise ValueError(f"{what}: expected an image [H, W] or [H, W, 3], got shape "
                         f"{np.shape(image)}")
    return array.astype(np.float32, copy=False)


def plane_gradient(plane: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred differences ``[-1, 0, 1]`` along x and y of ``count`` images stacked in one
    plane ``[count * H, W]``, one-sided at each image's borders."""
    dx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=1, borderType=cv2.BORDER_REPLICATE)
    dy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=1, borderType=cv2.BORDER_REPLICATE)
    if count > 1:                       # rows where two stacked images meet
        images, rows = plane.reshape(count, -1, plane.shape[1]), dy.reshape(count, -1,
                                                                            plane.shape[1])
        rows[:, 0] = images[:, 1] - images[:, 0]
        rows[:, -1] = images[:, -1] - images[:, -2]
    return dx, dy


def image_gradient(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For images ``[N, H, W, C]``, per pixel ``[N, H, W]`` the gradient magnitude and direction
    (radians in ``(-pi, pi]``) of the channel with the largest magnitude (the first one on a
    tie); centred differences ``[-1, 0, 1]``, one-sided at the borders. Only correctly
    rounded operations decide the channel, so results repeat exactly."""
    count, height, width, channels = images.shape
    planes = cv2.split(images.reshape(count * height, width, channels))
    dx, dy = plane_gradient(planes[0], count)
    energy = dx * dx + dy * dy
    for plane in planes[1:]:
        other_dx, other_dy = plane_gradient(plane, count)
        other = other_dx * other_dx + other_dy * other_dy
        stronger = cv2.compare(other, energy, cv2.CMP_GT)
        cv2.copyTo(other_dx, stronger, dx)
        cv2.copyTo(other_dy, stronger, dy)
        energy = np.maximum(energy, other)
    magnitude, angle = np.sqrt(energy), np.arctan2(dy, dx)
    return magnitude.reshape(count, height, width), angle.reshape(count, height, width)


@lru_cache(maxsize=32)
def cell_weights(height: int, width: int, cell_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel its 4 bilinear cell neighbours: flat indices into a cell grid padded by
    one cell on each side (``[4, H*W]``, pre-multiplied by the 2*9 orientations) and weights."""
    def axis(n: int):
        position = (np.arange(n) + 0.5) / cell_size - 0.5
        low = np.floor(position)
        frac = position - low
        return low.astype(np.int64) + 1, frac          # +1: the padding cell
    (ylow, yfrac), (xlow, xfrac) = axis(height), axis(width)
    padded_width = width // cell_size + 2
    last_y, last_x = height // cell_size + 1, padded_width - 1
    index, weight = [], []
    for dy, wy in ((0, 1 - yfrac), (1, yfrac)):
        for dx, wx in ((0, 1 - xfrac), (1, xfrac)):
            cy = np.minimum(ylow + dy, last_y)         # beyond the last cell: into padding
            cx = np.minimum(xlow + dx, last_x)
            index.append((cy[:, None] * padded_width + cx[None, :]).ravel())
            weight.append((wy[:, None] * wx[None, :]).ravel())
    orientations = 2 * HOG_ORIENTATIONS
    return (np.stack(index) * orientations, np.stack(weight).astype(np.float32))


def orientation_histograms(images: np.ndarray, cell_size: int) -> np.ndarray:
    """Cell histograms ``[N, H//cell, W//cell, 18]`` of gradient magnitude over the contrast-
    sensitive orientations (bin ``o`` centred on ``o * 20`` degrees) of images
    ``[N, H, W, C]``."""
    count, height, width = images.shape[:3]
    magnitude, angle = image_gradient(images)
    orientations = 2 * HOG_ORIENTATIONS
    bins = np.floor(angle.reshape(count, -1) * (orientations / (2 * np.pi)) + 0.5)
    bins = bins.astype(np.int64) % orientations
    index, weight = cell_weights(height, width, cell_size)
    rows, cols = height // cell_size + 2, width // cell_size + 2
    size = rows * cols * orientations
    if count > 1:
        bins += (np.arange(count) * size)[:, None]          # each image its own histograms
    flat = np.bincount((index[None] + bins[:, None, :]).ravel(),
                       weights=(weight[None] * magnitude.reshape(count, 1, -1)).ravel(),
                       minlength=count * size)
    return flat.reshape(count, rows, cols, orientations)[:, 1:-1, 1:-1].astype(np.float32)


def normalise_histograms(histograms: np.ndarray) -> np.ndarray:
    """The 31 fHOG channels from 18-bin cell histograms ``[..., rows, cols, 18]``: normalised
    by the 4 surrounding 2×2-cell blocks, truncated at 0.2, summed (orientation channels) or
    one per block (texture channels)."""
    insensitive = histograms[..., :HOG_ORIENTATIONS] + histograms[..., HOG_ORIENTATIONS:]
    energy = np.einsum("...k,...k->...", insensitive, insensitive)
    pad = [(0, 0)] * (energy.ndim - 2) + [(1, 1), (1, 1)]
    energy = np.pad(energy, pad, mode="edge")
    blocks = energy[..., :-1, :-1] + energy[..., 1:, :-1] + energy[..., :-1, 1:] + \
        energy[..., 1:, 1:]
    inverse = 1.0 / np.sqrt(blocks + HOG_EPS)
    rows, cols = histograms.shape[-3:-1]
    out = np.zeros(histograms.shape[:-1] + (HOG_CHANNELS,), np.float32)
    sensitive = out[..., :2 * HOG_ORIENTATIONS]
    contrast_free = out[..., 2 * HOG_ORIENTATIONS:3 * HOG_ORIENTATIONS]
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        norm = inverse[..., dy:dy + rows, dx:dx + cols, None]
        clipped = np.minimum(histograms * norm, HOG_TRUNCATION)
        sensitive += clipped
        contrast_free += np.minimum(insensitive * norm, HOG_TRUNCATION)
        out[..., 3 * HOG_ORIENTATIONS + k] = HOG_TEXTURE_WEIGHT * clipped.sum(axis=-1)
    sensitive *= 0.5
    contrast_free *= 0.5
    return out


def hog(image, cell_size: int = 4) -> np.ndarray:
    """Felzenszwalb HOG of an image (RGB or grey, 0–255 scale): ``float32
    [H // cell_size, W // cell_size, 31]`` (18 sensitive + 9 insensitive orientations + 4
    texture)."""
    return hog_batch(as_image(image)[None], cell_size)[0]


def hog_batch(images, cell_size: int = 4) -> np.ndarray:
    """:func:`hog` of a batch of equally sized images ``[N, H, W]`` or ``[N, H, W, C]``:
    ``float32 [N, H // cell_size, W // cell_size, 31]``, each image on its own."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[3] not in (1, 3) or array.size == 0:
        raise ValueError(f"hog: expected images [N, H, W] or [N, H, W, 3], got shape "
                         f"{np.shape(images)}")
    if cell_size < 1 or min(array.shape[1:3]) < max(cell_size, 2):
        raise ValueError(f"hog: image {array.shape[1:3]} is smaller than one cell of "
                         f"{cell_size} pixels")
    return normalise_histograms(orientation_histograms(array, int(cell_size)))


def cell_average(features: np.ndarray, cell_size: int) -> np.ndarray:
    """Mean of ``features [H, W, C]`` over ``cell_size × cell_size`` cells:
    ``[H // cell_size, W // cell_size, C]`` (trailing pixels that fill no cell are dropped)."""
    if cell_size == 1:
        return features
    rows, cols = features.shape[0] // cell_size, features.shape[1] // cell_size
    if rows == 0 or cols == 0:
        raise ValueError(f"image {features.shape[:2]} is smaller than one cell of {cell_size} "
                         "pixels")
    cropped = np.ascontiguousarray(features[:rows * cell_size, :cols * cell_size],
                                   dtype=np.float32)
    averaged = cv2.resize(cropped, (cols, rows), interpolation=cv2.INTER_AREA)
    return averaged.reshape(rows, cols, features.shape[2])


@lru_cache(maxsize=1)
def w2c_table() -> np.ndarray:
    """The colour-names table ``float32 [32768, 11]`` (van de Weijer et al. 2009)."""
    if not W2C_PATH.is_file():
        raise FileNotFoundError(f"{W2C_PATH}: the colour-names table is missing from the "
                                "installed package (reinstall deepvideo)")
    with np.load(W2C_PATH) as data:
        table = data["w2c"].astype(np.float32)
    if table.shape != (32768, len(COLOUR_NAMES)):
        raise ValueError(f"{W2C_PATH}: expected a table [32768, 11], got {table.shape}")
    return table


def colour_names(image, cell_size: int = 1) -> np.ndarray:
    """Colour-name probabilities of an RGB ``uint8`` image: ``float32 [H, W, 11]`` in the
    order of :data:`COLOUR_NAMES`, averaged over cells when ``cell_size > 1``."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"colour_names: expected an RGB uint8 image [H, W, 3], got "
                         f"{array.dtype} {array.shape}")
    quantised = (array >> 3).astype(np.int32)
    index = quantised[..., 0] + 32 * quantised[..., 1] + 1024 * quantised[..., 2]
    return cell_average(w2c_table()[index], cell_size)


def grey(image, cell_size: int = 1) -> np.ndarray:
    """Intensity (ITU-R BT.601 luma of RGB, or the single channel) / 255 - 0.5:
    ``float32 [H, W, 1]``, averaged over cells when ``cell_size > 1``."""
    array = as_image(image)
    if array.shape[2] == 3:
        array = array @ np.array([[0.299], [0.587], [0.114]], np.float32)
    return cell_average(array / 255.0 - 0.5, cell_size)
