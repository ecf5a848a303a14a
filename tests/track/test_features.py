"""Hand-crafted tracking features: fHOG, colour names, grey."""

from __future__ import annotations

import numpy as np
import pytest

from deepvideo.track.features import (
    COLOUR_NAMES,
    HOG_EPS,
    HOG_TEXTURE_WEIGHT,
    HOG_TRUNCATION,
    cell_average,
    colour_names,
    grey,
    hog,
    normalise_histograms,
    w2c_table,
)


def edge_image(bright_right: bool = True) -> np.ndarray:
    """32×32 grey image with a vertical step edge between columns 15 and 16."""
    image = np.full((32, 32), 40, np.uint8)
    image[:, 16:] = 200
    return image if bright_right else image[:, ::-1].copy()


def test_hog_constants_are_the_papers():
    assert HOG_TRUNCATION == 0.2
    assert HOG_TEXTURE_WEIGHT == pytest.approx(1 / np.sqrt(18), abs=1e-4)


def test_vertical_edge_puts_energy_in_the_horizontal_gradient_bins():
    features = hog(edge_image(), cell_size=4)
    assert features.shape == (8, 8, 31)
    edge_cells = features[:, 3:5]
    # contrast-sensitive bin 0 (gradient pointing +x, dark to bright) and insensitive bin 0
    assert np.all(edge_cells[..., 0] > 0.1) and np.all(edge_cells[..., 18] > 0.1)
    others = np.delete(edge_cells[..., :27], [0, 18], axis=-1)
    assert np.abs(others).max() == 0.0
    # far from the edge the image is flat: no orientation energy at all
    assert np.abs(features[:, [0, 7], :27]).max() == 0.0
    # the reversed edge (bright to dark) flips to the opposite sensitive bin, 9 = 180 degrees
    flipped = hog(edge_image(bright_right=False))[:, 3:5]
    assert np.all(flipped[..., 9] > 0.1) and np.abs(flipped[..., 0]).max() == 0.0
    np.testing.assert_allclose(flipped[..., 18], edge_cells[..., 18], rtol=1e-5)


def test_block_normalisation_truncates_at_0_2():
    # one cell with a single orientation, empty neighbours: every block norm is its own
    # energy, the normalised value is ~1 and is clipped to 0.2 in all 4 blocks
    histograms = np.zeros((5, 5, 18), np.float32)
    histograms[2, 2, 0] = 50.0
    out = normalise_histograms(histograms)
    assert out[2, 2, 0] == pytest.approx(0.5 * 4 * 0.2)
    assert out[2, 2, 18] == pytest.approx(0.5 * 4 * 0.2)
    np.testing.assert_allclose(out[2, 2, 27:], HOG_TEXTURE_WEIGHT * 0.2, rtol=1e-5)
    assert np.abs(out[2, 3]).max() == 0.0


def test_block_normalisation_below_and_above_truncation():
    # equal value v in all 18 bins of every cell: insensitive bins 2v, energy 9 (2v)^2 per
    # cell, 4 cells per block -> norm 1 / sqrt(144 v^2): sensitive 1/12 (kept),
    # insensitive 1/6 (kept); with a single lone cell they are 1/6 and 1/3 (clipped to 0.2)
    v = 3.0
    out = normalise_histograms(np.full((4, 4, 18), v, np.float32))
    expected_norm = 1 / np.sqrt(144 * v * v + HOG_EPS)
    np.testing.assert_allclose(out[..., :18], 0.5 * 4 * v * expected_norm, rtol=1e-5)
    np.testing.assert_allclose(out[..., 18:27], 0.5 * 4 * 2 * v * expected_norm, rtol=1e-5)
    np.testing.assert_allclose(out[..., 27:], HOG_TEXTURE_WEIGHT * 18 * v * expected_norm,
                               rtol=1e-5)
    lone = np.zeros((3, 3, 18), np.float32)
    lone[1, 1] = v
    out = normalise_histograms(lone)[1, 1]
    np.testing.assert_allclose(out[:18], 0.5 * 4 / 6, rtol=1e-5)
    np.testing.assert_allclose(out[18:27], 0.5 * 4 * 0.2, rtol=1e-5)


def test_hog_values_are_bounded_by_the_truncation():
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    features = hog(image)
    assert features.dtype == np.float32
    assert features.min() >= 0 and features[..., :27].max() <= 4 * 0.5 * 0.2 + 1e-6
    assert features[..., 27:].max() <= HOG_TEXTURE_WEIGHT * 18 * 0.2 + 1e-6


def test_hog_shape_for_sizes_that_are_not_multiples_of_the_cell():
    image = np.zeros((30, 45, 3), np.uint8)
    assert hog(image).shape == (7, 11, 31)
    assert hog(image, cell_size=6).shape == (5, 7, 31)
    with pytest.raises(ValueError, match="smaller than one cell"):
        hog(np.zeros((3, 10), np.uint8))
    with pytest.raises(ValueError, match=r"expected an image \[H, W\] or \[H, W, 3\]"):
        hog(np.zeros((8, 8, 2), np.uint8))


def test_hog_is_invariant_to_a_brightness_offset():
    image = np.random.default_rng(1).integers(0, 200, (24, 28, 3)).astype(np.uint8)
    np.testing.assert_allclose(hog(image + 40), hog(image), atol=1e-6)


def test_hog_of_a_grey_rgb_image_equals_hog_of_its_channel():
    image = np.random.default_rng(2).integers(0, 256, (20, 20), dtype=np.uint8)
    np.testing.assert_allclose(hog(np.stack([image] * 3, axis=2)), hog(image), atol=1e-6)


@pytest.mark.parametrize("rgb, name", [((255, 0, 0), "red"), ((0, 255, 0), "green"),
                                       ((0, 0, 255), "blue"), ((255, 255, 255), "white"),
                                       ((0, 0, 0), "black"), ((255, 255, 0), "yellow")])
def test_colour_names_of_pure_colours(rgb, name):
    image = np.empty((2, 3, 3), np.uint8)
    image[:] = rgb
    probabilities = colour_names(image)
    assert probabilities.shape == (2, 3, 11) and probabilities.dtype == np.float32
    assert COLOUR_NAMES[int(probabilities[0, 0].argmax())] == name


def test_colour_table_rows_are_probabilities_and_cells_average():
    table = w2c_table()
    assert table.shape == (32768, 11)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-5)
    image = np.random.default_rng(3).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    per_pixel = colour_names(image)
    cells = colour_names(image, cell_size=4)
    assert cells.shape == (2, 3, 11)
    np.testing.assert_allclose(cells[1, 2], per_pixel[4:8, 8:12].mean(axis=(0, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="RGB uint8"):
        colour_names(image.astype(np.float32))


def test_grey_is_centred_intensity():
    image = np.zeros((4, 8, 3), np.uint8)
    image[:, 4:] = 255
    values = grey(image)
    assert values.shape == (4, 8, 1)
    np.testing.assert_allclose(values[:, :4], -0.5)
    np.testing.assert_allclose(values[:, 4:], 0.5, atol=1e-6)
    np.testing.assert_allclose(grey(image, cell_size=4)[..., 0], [[-0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(cell_average(values, 2)[..., 0], values[::2, ::2, 0])


def test_hog_takes_the_colour_channel_with_the_strongest_gradient():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:, 0] = 200                 # strong dark-to-bright edge in red
    image[:, :8, 2] = 100                 # weaker bright-to-dark edge in blue
    np.testing.assert_allclose(hog(image), hog(image[:, :, 0]), atol=1e-6)
    image[:, :8, 2] = 255                 # now blue's edge is the stronger one
    np.testing.assert_allclose(hog(image), hog(image[:, :, 2]), atol=1e-6)


def test_hog_repeats_exactly_when_colour_channels_tie():
    # grey pixels give three equal gradient magnitudes; the choice must not vary between calls
    rng = np.random.default_rng(4)
    image = np.repeat(rng.integers(0, 256, (200, 200, 1), dtype=np.uint8), 3, axis=2)
    image[50:150, 50:150] = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    first = hog(image)
    for _ in range(5):
        np.testing.assert_array_equal(hog(image.copy()), first)
