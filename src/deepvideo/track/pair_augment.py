"""pysot's photometric augmentation of Siamese training crops: colour (PCA) offsets and blur.

Values from pysot (github.com/STVIR/pysot, ``pysot/datasets/augmentation.py``; the SiamRPN++ and
SiamMask experiment files ``experiments/siamrpn_r50_l234_dwxcorr*/config.yaml`` and
``experiments/siammask_r50_l3/config.yaml`` set ``COLOR: 1.0`` for both crops and ``BLUR: 0.2``
for the search crop only, ``BLUR: 0.0`` for the template):

- colour: the crop minus ``V · n``, ``n ~ N(0, I₃)``, with pysot's ``rgbVar`` matrix ``V``
  (given for BGR images; its output is reversed to RGB here, as pysot reverses it for its own
  channel order), applied to a crop with probability ``color``;
- blur: with probability ``blur``, a ``k × k`` kernel (``k`` odd, 5..45) whose middle column
  holds ``w / k`` and middle row ``(1 − w) / k`` (``w ~ U(0, 1)``; the centre has both),
  applied by correlation with the border reflected (``cv2.filter2D``'s default, as pysot).

Images are ``float32 [H, W, 3]`` RGB; the geometric template jitter (shift, scale) lives in
:class:`deepvideo.track.pairs.PairDataset`.
"""

from __future__ import annotations

import cv2
import numpy as np

RGB_VAR_BGR = np.array([[-0.55919361, 0.98062831, -0.41940627],
                        [1.72091413, 0.19879334, -1.82968581],
                        [4.64467907, 4.73710203, 4.88324118]], np.float32)
BLUR_SIZES = np.arange(5, 46, 2)


def color_offset(rng: np.random.Generator) -> np.ndarray:
    """One draw of pysot's colour offset ``[3]`` in RGB order (subtracted from the image)."""
    return (RGB_VAR_BGR @ rng.standard_normal(3).astype(np.float32))[::-1].copy()


def blur_kernel(rng: np.random.Generator) -> np.ndarray:
    """One draw of pysot's cross-shaped blur kernel ``[k, k]`` (sums to 1)."""
    size = int(rng.choice(BLUR_SIZES))
    kernel = np.zeros((size, size), np.float32)
    c, w = size // 2, float(rng.random())
    kernel[:, c] += w / size
    kernel[c, :] += (1 - w) / size
    return kernel


def photometric(image: np.ndarray, rng: np.random.Generator, color: float, blur: float) -> np.ndarray:
    """``image`` (float32 RGB) with the colour offset (probability ``color``) then the blur
    (probability ``blur``), in pysot's order; a probability of 0 draws nothing from ``rng``."""
    if color > 0 and rng.random() < color:
        image = image - color_offset(rng)
    if blur > 0 and rng.random() < blur:
        image = cv2.filter2D(image, -1, blur_kernel(rng))
    return image


__all__ = ["BLUR_SIZES", "RGB_VAR_BGR", "blur_kernel", "color_offset", "photometric"]
