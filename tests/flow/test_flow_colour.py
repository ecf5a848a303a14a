"""Colour coding: Middlebury wheel known values, mag and uv codings."""

import numpy as np
import pytest

from deepvideo.flow.colour import colour_code, colour_wheel, flow_to_mag, flow_to_uv, flow_to_wheel


def _one(u, v, max_radius=1.0):
    return flow_to_wheel(np.array([u, v], np.float32).reshape(2, 1, 1), max_radius=max_radius)[0, 0]


def test_wheel_has_55_colours_starting_red():
    wheel = colour_wheel()
    assert wheel.shape == (55, 3)
    assert wheel[0].tolist() == [255, 0, 0] and wheel[15].tolist() == [255, 255, 0]
    assert wheel[21].tolist() == [0, 255, 0] and wheel[25].tolist() == [0, 255, 255]
    assert wheel[36].tolist() == [0, 0, 255] and wheel[49].tolist() == [255, 0, 255]


def test_wheel_known_directions():
    r, g, b = _one(1, 0).astype(int)  # +u: red
    assert r > 200 and g < 60 and b < 60
    r, g, b = _one(-1, 0).astype(int)  # -u: cyan-blue
    assert r < 60 and g > 100 and b > 200
    r, g, b = _one(0, 1).astype(int)  # +v (down): yellow-orange
    assert r > 200 and g > 150 and b < 60
    r, g, b = _one(0, -1).astype(int)  # -v (up): blue-violet
    assert b > 200 and g < 60
    assert _one(0, 0).tolist() == [255, 255, 255]  # no motion: white
    assert (_one(0.5, 0) > _one(1, 0)).all() or _one(0.5, 0)[1] > _one(1, 0)[1]  # less saturated
    assert (_one(2, 0) <= 0.75 * 255 + 1).all()  # beyond the radius: darkened


def test_wheel_normalises_by_sequence_max():
    flow = np.zeros((2, 2, 1, 2), np.float32)
    flow[0, 0, 0, 0] = 1.0
    flow[1, 0, 0, 1] = 4.0
    out = flow_to_wheel(flow)
    assert out.shape == (2, 1, 2, 3)
    assert out[1, 0, 1].tolist() == _one(1, 0).tolist()  # the largest one is fully saturated
    assert out[0, 0, 0, 1] > out[1, 0, 1, 1]  # the small one is paler


def test_mag_and_uv():
    flow = np.zeros((2, 2, 2, 2), np.float32)
    flow[0, 0] = [[-1, 0], [0, 3]]
    mag = flow_to_mag(flow)
    assert mag.shape == (2, 2, 2, 3)
    assert mag[0, 0, 0, 0] == 0 and mag[0, 1, 1, 0] == 255 and mag[0, 1, 1, 2] == 255
    assert mag[..., 1].max() == 0  # v constant: scaled to 0
    uv = flow_to_uv(flow)
    assert uv.shape == (2, 2, 4, 3) and uv[0, 1, 1, 0] == 255
    with pytest.raises(ValueError, match="unknown flow coding"):
        colour_code(flow, "hsv")
    with pytest.raises(ValueError, match=r"\[2,H,W\]"):
        flow_to_wheel(np.zeros((3, 4, 4)))
