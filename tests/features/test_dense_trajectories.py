"""Dense and improved trajectories on synthetic videos with known motion."""

import math

import cv2
import numpy as np
import pytest

from deepvideo.features import TrajectoryParams, extract_trajectories
from deepvideo.features.sampling import dense_sample
from deepvideo.features.trajectories import num_scales


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).astype(np.uint8)


def _pan(n, size, dx, obj_dx=None, seed=0):
    """Frames of a texture seen by a camera moving dx px/frame; optionally an object moving obj_dx."""
    bg = _texture(size, size + abs(dx) * n + 8, seed)
    obj = _texture(28, 28, seed + 1)
    frames = []
    for t in range(n):
        x0 = t * dx if dx >= 0 else (n - t) * -dx
        f = bg[:, x0:x0 + size].copy()
        if obj_dx is not None:
            x = 20 + t * obj_dx
            f[50:78, x:x + 28] = obj
        frames.append(f)
    return frames


def test_paper_parameters():
    p = TrajectoryParams()
    assert (p.track_length, p.grid_step, p.max_scales, p.patch, p.median) == (15, 5, 8, 32, 3)
    assert p.scale_stride == pytest.approx(math.sqrt(2)) and p.quality == 0.001
    assert (p.min_var, p.max_var, p.max_dis) == (pytest.approx(math.sqrt(3)), 50, 20)
    assert p.dims() == {"trajectory": 30, "hog": 96, "hof": 108, "mbhx": 96, "mbhy": 96}
    assert num_scales(240, 320, p) == 6 and num_scales(1080, 1920, p) == 8  # short side >= 32 px
    assert num_scales(64, 64, p) == 2 and num_scales(20, 20, p) == 1


def test_dense_sample_grid_threshold_and_occupied_cells():
    img = np.zeros((20, 20), np.uint8)
    img[5:15, 5:15] = _texture(10, 10)
    pts = dense_sample(img)
    assert set(map(tuple, pts.astype(int))) <= {(x, y) for x in (2, 7, 12, 17) for y in (2, 7, 12, 17)}
    assert (7, 7) in set(map(tuple, pts.astype(int))) and (2, 2) not in set(map(tuple, pts.astype(int)))
    again = dense_sample(img, occupied=np.array([[6.5, 8.0]]))
    assert (7, 7) not in set(map(tuple, again.astype(int))) and len(again) == len(pts) - 1


def test_trajectories_follow_a_translating_texture():
    frames = _pan(17, 64, -2)  # content moves +2 px/frame in x
    tr = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=False))
    assert len(tr) > 20
    assert tr.descriptors["trajectory"].shape == (len(tr), 30)
    steps = tr.descriptors["trajectory"].reshape(-1, 15, 2)
    np.testing.assert_allclose(np.median(steps, axis=0), np.tile([1 / 15, 0], (15, 1)), atol=0.01)
    np.testing.assert_allclose(np.median(tr.info[:, 5]), 30.0, rtol=0.05)  # length = 15 steps * 2 px
    assert set(np.unique(tr.info[:, 0])) <= {15, 16}
    hof = tr.descriptors["hof"].reshape(-1, 3, 4, 9)
    assert (hof[..., 0] > hof[..., 1:].max(axis=-1)).mean() > 0.9  # rightward bin dominates


def test_static_points_are_removed():
    frames = _pan(17, 48, 0)
    tr = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=False))
    assert len(tr) == 0 and tr.stats["static"] > 0 and tr.stats["kept"] == 0
    assert tr.descriptors["hog"].shape == (0, 96)


def test_camera_pan_is_compensated_but_moving_object_kept():
    frames = _pan(17, 128, 3, obj_dx=2)  # camera pans (content -3 px/frame), object +2 px/frame
    plain = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=False))
    improved = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=True))
    def on_object(tr):
        return (tr.info[:, 2] > 40) & (tr.info[:, 2] < 88)

    background = int((~on_object(plain)).sum())
    assert background > 100 and improved.stats["camera"] >= background
    assert (~on_object(improved)).sum() <= 0.05 * background and on_object(improved).sum() > 20
    steps = improved.descriptors["trajectory"].reshape(-1, 15, 2)
    assert np.median(steps[:, :, 0]) > 0.05  # compensated motion: +5 px/frame to the right


def test_frames_of_changing_size_are_rejected():
    with pytest.raises(ValueError, match=r"frame 1 is \(40, 40\)"):
        extract_trajectories([np.zeros((48, 48), np.uint8), np.zeros((40, 40), np.uint8)])


def test_points_are_the_tracked_positions_in_frame_coordinates():
    frames = _pan(17, 64, -2)
    tr = extract_trajectories(frames, TrajectoryParams(max_scales=2, camera=False))
    assert tr.points.shape == (len(tr), 16, 2)
    np.testing.assert_allclose(tr.points.mean(axis=1), tr.info[:, 1:3], atol=1e-3)
    steps = np.diff(tr.points, axis=1)
    np.testing.assert_allclose(steps.reshape(len(tr), -1) / tr.info[:, 5:6], tr.descriptors["trajectory"],
                               atol=1e-5)
    assert set(np.unique(tr.info[:, 6])) == {1.0, np.float32(np.sqrt(2))}


def test_every_point_leaving_the_frame_at_once_is_no_error():
    frames = _pan(17, 48, 0)
    far = np.full((2, 48, 48), 100.0, np.float32)
    tr = extract_trajectories(frames, TrajectoryParams(max_scales=1, camera=False), flow_fn=lambda a, b: far)
    assert len(tr) == 0 and tr.stats["out_of_frame"] == tr.stats["started"] - len(dense_sample(frames[-1]))
