"""Dense trajectories and improved dense trajectories with HOG/HOF/MBH descriptors.

Wang, Kläser, Schmid & Liu, "Action recognition by dense trajectories", CVPR 2011 and IJCV
2013; Wang & Schmid, "Action recognition with improved trajectories", ICCV 2013. Parameters
are the papers' (and the authors' release's): grid step W = 5, up to 8 spatial scales spaced
by 1/√2 (as many as keep the short side ≥ 32 px), trajectory length L = 15, descriptors in an
N×N×L = 32×32×15 tube of n_σ×n_σ×n_τ = 2×2×3 cells, tracking by the 3×3 median-filtered
dense flow (Farnebäck by default, any ``deepvideo.flow`` method allowed), new points sampled
every frame in grid cells left empty. A finished trajectory is kept unless (release rules):

- static: the standard deviations of its x and y coordinates are both < √3 px;
- erratic: either standard deviation > 50 px, or its largest step is > 20 px and > 70 % of
  its length;
- camera motion (improved only): its largest camera-compensated step is ≤ 1 px.

Improved trajectories (``camera=True``, the default) compute HOF and MBH and the trajectory
shape on the camera-compensated flow of :mod:`.camera`; tracking uses the original flow.
Output per trajectory: the 10 information fields of the release (frame, mean x/y, std x/y,
length, scale, normalised x/y/t position), trajectory shape (2L = 30: displacements divided
by their summed magnitude), HOG 96, HOF 108, MBHx 96, MBHy 96.

All points of a scale are tracked and described together (array indexing into per-frame
integral histograms), which is where the speed comes from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from deepvideo.features import camera as cam
from deepvideo.features import histograms as hg
from deepvideo.features.sampling import GRID_STEP, QUALITY, dense_sample

DESCRIPTORS = ("trajectory", "hog", "hof", "mbhx", "mbhy")
INFO_FIELDS = ("frame", "mean_x", "mean_y", "var_x", "var_y", "length", "scale", "x_pos", "y_pos", "t_pos")
_CELLS = hg.CELLS_XY * hg.CELLS_XY
_PER_FRAME = {"hog": _CELLS * hg.HOG_BINS, "hof": _CELLS * hg.HOF_BINS, "mbhx": _CELLS * hg.MBH_BINS,
              "mbhy": _CELLS * hg.MBH_BINS}


@dataclass(frozen=True)
class TrajectoryParams:
    """The papers' parameters (see the module docstring); ``camera=False`` gives DT (2011)."""

    track_length: int = 15
    grid_step: int = GRID_STEP
    quality: float = QUALITY
    max_scales: int = 8
    scale_stride: float = math.sqrt(2.0)
    patch: int = hg.PATCH
    median: int = 3
    min_var: float = math.sqrt(3.0)
    max_var: float = 50.0
    max_dis: float = 20.0
    camera: bool = True
    flow_method: str = "farneback"
    flow_params: dict = field(default_factory=dict)

    def dims(self) -> dict[str, int]:
        """Descriptor dimensions: trajectory 2L, HOG 96, HOF 108, MBHx 96, MBHy 96."""
        return {"trajectory": 2 * self.track_length,
                **{k: v * hg.CELLS_T for k, v in _PER_FRAME.items()}}


@dataclass
class Trajectories:
    """Finished trajectories of one video: ``info [N, 10]``, one array per descriptor, and
    (from the extractor, not stored in files) ``points [N, L+1, 2]``: (x, y) in the original
    frame, frames ``info[:, 0] - L`` to ``info[:, 0]``."""

    info: np.ndarray
    descriptors: dict[str, np.ndarray]
    stats: dict[str, int]
    points: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.info)


def num_scales(height: int, width: int, params: TrajectoryParams) -> int:
    """Scales whose short side stays ≥ the patch size (at least 1, at most ``max_scales``)."""
    size, n = float(min(height, width)), 0
    while size >= params.patch:
        size /= params.scale_stride
        n += 1
    return max(1, min(params.max_scales, n))


def pyramid_sizes(height: int, width: int, params: TrajectoryParams) -> list[tuple[int, int]]:
    """(height, width) of every scale of the pyramid (scale i shrinks by ``scale_stride ** i``)."""
    out = []
    for i in range(num_scales(height, width, params)):
        s = params.scale_stride ** i
        out.append((max(1, round(height / s)), max(1, round(width / s))))
    return out


def to_gray(frame) -> np.ndarray:
    """uint8 grey [H, W] from RGB [H, W, 3] (numpy or torch) or grey [H, W]."""
    a = frame.numpy() if hasattr(frame, "numpy") else np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {a.dtype}")
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[2] == 3:
        return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"a frame must be [H, W, 3] RGB or [H, W] grey, got shape {a.shape}")


class _ScaleTracks:
    """Active tracks at one scale: positions, compensated steps, descriptors summed per
    temporal cell (``[P, n_τ, D]``, the per-frame vectors of :func:`.histograms.cell_descriptors`
    divided by the cell's frame count, so that the sum is :func:`.histograms.pool_time`)."""

    def __init__(self, length: int):
        self.pos = np.zeros((0, length + 1, 2), np.float32)
        self.disp = np.zeros((0, length, 2), np.float32)
        self.desc = {k: np.zeros((0, hg.CELLS_T, d), np.float32) for k, d in _PER_FRAME.items()}
        self.index = np.zeros(0, np.int64)

    def keep(self, mask: np.ndarray) -> None:
        self.pos, self.disp, self.index = self.pos[mask], self.disp[mask], self.index[mask]
        self.desc = {k: v[mask] for k, v in self.desc.items()}

    def add(self, points: np.ndarray, length: int) -> None:
        n = len(points)
        pos = np.zeros((n, length + 1, 2), np.float32)
        pos[:, 0] = points
        self.pos = np.concatenate([self.pos, pos])
        self.disp = np.concatenate([self.disp, np.zeros((n, length, 2), np.float32)])
        self.desc = {k: np.concatenate([v, np.zeros((n, hg.CELLS_T, v.shape[2]), np.float32)])
                     for k, v in self.desc.items()}
        self.index = np.concatenate([self.index, np.zeros(n, np.int64)])

    def current(self) -> np.ndarray:
        return self.pos[np.arange(len(self.index)), self.index]


def median_flow(flow: np.ndarray, ksize: int) -> np.ndarray:
    """Each flow component median-filtered with a ksize×ksize kernel (1: unchanged)."""
    if ksize <= 1:
        return flow
    return np.stack([cv2.medianBlur(np.ascontiguousarray(c, np.float32), ksize) for c in flow])


def pair_flow(prev: np.ndarray, cur: np.ndarray, params: TrajectoryParams) -> np.ndarray:
    """Flow ``[2, H, W]`` from grey ``prev`` to ``cur`` by the configured ``deepvideo.flow`` method."""
    from deepvideo.flow.api import compute_flow

    return compute_flow((prev[None], cur[None]), method=params.flow_method, **params.flow_params)[0].numpy()


class DenseTrajectoryExtractor:
    """Feed frames one by one with :meth:`push`; :meth:`finish` returns the trajectories.

    ``flow_fn(prev, cur) -> [2, H, W]`` replaces the flow computation (tests, precomputed flow).
    """

    def __init__(self, params: TrajectoryParams | None = None, flow_fn=None):
        self.params = params or TrajectoryParams()
        self.flow_fn = flow_fn or (lambda a, b: pair_flow(a, b, self.params))
        self.frame = -1
        self.prev: list[np.ndarray] = []
        self.tracks: list[_ScaleTracks] = []
        self.scales: list[float] = []
        self.size: tuple[int, int] = (0, 0)
        self.out: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = []
        self.stats = {"started": 0, "described": 0, "out_of_frame": 0, "static": 0, "erratic": 0, "camera": 0,
                      "kept": 0}

    def _pyramid(self, gray: np.ndarray) -> list[np.ndarray]:
        sizes = pyramid_sizes(*gray.shape, self.params)
        return [gray if i == 0 else cv2.resize(gray, (w, h), interpolation=cv2.INTER_LINEAR)
                for i, (h, w) in enumerate(sizes)]

    def _sample(self, pyramid: list[np.ndarray]) -> None:
        p = self.params
        for tracks, img in zip(self.tracks, pyramid, strict=True):
            pts = dense_sample(img, tracks.current(), p.grid_step, p.quality)
            tracks.add(pts, p.track_length)
            self.stats["started"] += len(pts)

    def push(self, frame, mask: np.ndarray | None = None) -> None:
        """Add the next frame (RGB or grey uint8); ``mask``: where camera matches may be taken."""
        gray = to_gray(frame)
        self.frame += 1
        p = self.params
        if self.frame == 0:
            self.size = gray.shape
            n = num_scales(*gray.shape, p)
            self.scales = [p.scale_stride ** i for i in range(n)]
            self.tracks = [_ScaleTracks(p.track_length) for _ in range(n)]
            self.prev = self._pyramid(gray)
            self._sample(self.prev)
            return
        if gray.shape != self.size:
            raise ValueError(f"frame {self.frame} is {gray.shape}, earlier frames were {self.size}")
        pyramid = self._pyramid(gray)
        homography = np.eye(3)
        for i, (prev, cur) in enumerate(zip(self.prev, pyramid, strict=True)):
            flow = self.flow_fn(prev, cur)
            if i == 0 and p.camera:
                homography = cam.estimate_homography(prev, cur, flow, mask)
            warped = cam.compensated_flow(flow, cam.scale_homography(homography, 1 / self.scales[i])) \
                if p.camera else flow
            self._track(i, prev, median_flow(flow, p.median), warped)
        self.prev = pyramid
        self._sample(pyramid)

    def _track(self, i: int, prev: np.ndarray, flow: np.ndarray, warped: np.ndarray) -> None:
        """Move the tracks of scale i by ``flow``; record descriptors at their previous points."""
        tr, p = self.tracks[i], self.params
        h, w = prev.shape
        if len(tr.index) == 0:
            return
        rows = np.arange(len(tr.index))
        pts = tr.pos[rows, tr.index]
        xi = np.clip(np.rint(pts[:, 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(pts[:, 1]).astype(np.int64), 0, h - 1)
        new = pts + flow[:, yi, xi].T
        inside = (new[:, 0] > 0) & (new[:, 0] < w) & (new[:, 1] > 0) & (new[:, 1] < h)
        if not inside.all():
            self.stats["out_of_frame"] += int((~inside).sum())
            tr.keep(inside)
            if not inside.any():
                return
            rows, pts, xi, yi, new = rows[: inside.sum()], pts[inside], xi[inside], yi[inside], new[inside]
        idx = tr.index
        self.stats["described"] += len(idx)
        tr.disp[rows, idx] = warped[:, yi, xi].T
        corners = hg.patch_corners(pts, h, w, p.patch)
        integrals = {"hog": hg.hog_integral(prev), "hof": hg.hof_integral(warped)}
        integrals["mbhx"], integrals["mbhy"] = hg.mbh_integrals(warped)
        stride = p.track_length // hg.CELLS_T
        used = idx < stride * hg.CELLS_T
        for name, integral in integrals.items():
            tr.desc[name][rows[used], idx[used] // stride] += \
                hg.cell_descriptors(integral, corners[used], p.patch) / stride
        tr.pos[rows, idx + 1] = new
        tr.index = idx + 1
        done = tr.index >= p.track_length
        if done.any():
            self._finish_tracks(tr, done, self.scales[i])
            tr.keep(~done)

    def _finish_tracks(self, tr: _ScaleTracks, done: np.ndarray, scale: float) -> None:
        p = self.params
        traj = tr.pos[done].astype(np.float64) * scale
        disp = tr.disp[done].astype(np.float64) * scale
        mean = traj.mean(axis=1)
        std = np.sqrt(((traj - mean[:, None]) ** 2).mean(axis=1))
        steps = np.diff(traj, axis=1)
        step_len = np.linalg.norm(steps, axis=2)
        length = step_len.sum(axis=1)
        static = (std[:, 0] < p.min_var) & (std[:, 1] < p.min_var)
        erratic = ~static & ((std > p.max_var).any(axis=1)
                             | ((step_len.max(axis=1) > p.max_dis) & (step_len.max(axis=1) > 0.7 * length)))
        disp_len = np.linalg.norm(disp, axis=2)
        camera = ~static & ~erratic & (disp_len.max(axis=1) <= 1.0) if p.camera else np.zeros_like(static)
        keep = ~(static | erratic | camera)
        for key, m in (("static", static), ("erratic", erratic), ("camera", camera), ("kept", keep)):
            self.stats[key] += int(m.sum())
        if not keep.any():
            return
        if p.camera:
            shape = disp[keep] / disp_len[keep].sum(axis=1)[:, None, None]
        else:
            shape = steps[keep] / length[keep][:, None, None]
        h, w = self.size
        n = int(keep.sum())
        info = np.zeros((n, 10), np.float64)
        info[:, 0] = self.frame
        info[:, 1:3] = mean[keep]
        info[:, 3:5] = std[keep]
        info[:, 5] = length[keep]
        info[:, 6] = scale
        info[:, 7] = np.clip(mean[keep][:, 0] / w, 0, 0.999)
        info[:, 8] = np.clip(mean[keep][:, 1] / h, 0, 0.999)
        desc = {"trajectory": shape.reshape(n, -1).astype(np.float32)}
        for name, pooled in tr.desc.items():
            desc[name] = pooled[done][keep].reshape(n, -1)
        self.out.append((info, desc, traj[keep].astype(np.float32)))

    def finish(self) -> Trajectories:
        """All trajectories kept so far; t_pos is filled from the number of frames seen."""
        dims = self.params.dims()
        if self.out:
            info = np.concatenate([o[0] for o in self.out])
            desc = {k: np.concatenate([o[1][k] for o in self.out]) for k in DESCRIPTORS}
            points = np.concatenate([o[2] for o in self.out])
        else:
            info = np.zeros((0, 10))
            desc = {k: np.zeros((0, dims[k]), np.float32) for k in DESCRIPTORS}
            points = np.zeros((0, self.params.track_length + 1, 2), np.float32)
        total = max(self.frame + 1, 1)
        info[:, 9] = np.clip((info[:, 0] - self.params.track_length / 2.0) / total, 0, 0.999)
        return Trajectories(info.astype(np.float32), desc, dict(self.stats, frames=self.frame + 1), points)


def extract_trajectories(frames: Iterable, params: TrajectoryParams | None = None, flow_fn=None,
                         masks: Iterable | None = None) -> Trajectories:
    """(Improved) dense trajectories of a frame sequence (RGB ``[H, W, 3]`` or grey uint8 frames)."""
    ex = DenseTrajectoryExtractor(params, flow_fn)
    masks = iter(masks) if masks is not None else None
    for frame in frames:
        ex.push(frame, next(masks) if masks is not None else None)
    return ex.finish()
