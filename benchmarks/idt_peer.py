"""The peer of ``bench_idt.py``: a plain transcription of the reference DenseTrackStab loop.

Written for the benchmark only (not part of the library): per scale and frame it builds the
integral histograms with NumPy and then visits the trajectories one at a time in Python —
looking up the flow, reading each 2×2 cell of each descriptor from the integral histograms,
checking a finished trajectory point by point and sampling new points cell by cell — the way
the authors' C++ loop does. It shares the flow, pyramid and camera-motion code with
``deepvideo.features`` (OpenCV calls either way) so both produce the same trajectories and
the timing difference is the per-point work.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from deepvideo.features import camera as cam
from deepvideo.features.trajectories import TrajectoryParams, median_flow, num_scales, pair_flow, to_gray

EPS, MIN_FLOW = 0.05, 0.4


def _integral(xc, yc, bins, zero_bin):
    n = bins - 1 if zero_bin else bins
    mag = np.hypot(xc, yc)
    ang = np.degrees(np.arctan2(yc, xc)) % 360.0
    fbin = ang * n / 360.0
    b0 = np.minimum(np.floor(fbin).astype(int), n - 1)
    m1 = (fbin - b0) * mag
    m0 = mag - m1
    hist = np.zeros(xc.shape + (bins,))
    for b in range(n):
        hist[..., b] = np.where(b0 == b, m0, 0.0) + np.where((b0 + 1) % n == b, m1, 0.0)
    if zero_bin:
        still = mag <= MIN_FLOW
        hist[still] = 0.0
        hist[still, n] = 1.0
    out = np.zeros((xc.shape[0] + 1, xc.shape[1] + 1, bins))
    out[1:, 1:] = hist.cumsum(0).cumsum(1)
    return out


def _grad(img):
    img = img.astype(np.float32)
    return cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1)


def _get_desc(integral, x, y, w, h):
    x0 = min(max(int(round(x)) - 16, 0), w - 32)
    y0 = min(max(int(round(y)) - 16, 0), h - 32)
    vec = []
    for xp in (x0, x0 + 16):
        for yp in (y0, y0 + 16):
            for b in range(integral.shape[2]):
                s = (integral[yp + 16, xp + 16, b] + integral[yp, xp, b]
                     - integral[yp + 16, xp, b] - integral[yp, xp + 16, b])
                vec.append(max(s, 0.0) + EPS)
    total = sum(vec)
    return [math.sqrt(v / total) for v in vec]


def _sample(img, points, step=5, quality=0.001):
    h, w = img.shape
    gw, gh = w // step, h // step
    eig = cv2.cornerMinEigenVal(img, 3, 3)
    thr = float(eig.max()) * quality
    counters = [0] * (gw * gh)
    for px, py in points:
        x, y = int(math.floor(px)), int(math.floor(py))
        if 0 <= x < gw * step and 0 <= y < gh * step:
            counters[(y // step) * gw + x // step] += 1
    out = []
    for i in range(gh):
        for j in range(gw):
            x, y = j * step + step // 2, i * step + step // 2
            if counters[i * gw + j] == 0 and eig[y, x] > thr:
                out.append((float(x), float(y)))
    return out


def _valid(track, disp, scale, p):
    pts = [(x * scale, y * scale) for x, y in track]
    n = len(pts)
    mx, my = sum(q[0] for q in pts) / n, sum(q[1] for q in pts) / n
    vx = math.sqrt(sum((q[0] - mx) ** 2 for q in pts) / n)
    vy = math.sqrt(sum((q[1] - my) ** 2 for q in pts) / n)
    if vx < p.min_var and vy < p.min_var:
        return "static"
    if vx > p.max_var or vy > p.max_var:
        return "erratic"
    steps = [math.hypot(pts[i + 1][0] - pts[i][0], pts[i + 1][1] - pts[i][1]) for i in range(n - 1)]
    length = sum(steps)
    if max(steps) > p.max_dis and max(steps) > 0.7 * length:
        return "erratic"
    if p.camera and max(math.hypot(dx * scale, dy * scale) for dx, dy in disp) <= 1.0:
        return "camera"
    return "kept"


def _pyramid(gray, scales):
    h, w = gray.shape
    return [gray if s == 1.0 else cv2.resize(gray, (max(1, round(w / s)), max(1, round(h / s))),
                                             interpolation=cv2.INTER_LINEAR) for s in scales]


def peer_extract(frames, params: TrajectoryParams | None = None) -> dict:
    """Counts of started/kept/static/... trajectories; kept ones' HOG/HOF/MBH as lists."""
    p = params or TrajectoryParams()
    counts = {"kept": 0, "static": 0, "erratic": 0, "camera": 0, "out_of_frame": 0, "described": 0}
    kept_hof = []
    prev, tracks, scales = None, [], []
    for frame in frames:
        gray = to_gray(frame)
        if prev is None:
            scales = [p.scale_stride ** i for i in range(num_scales(*gray.shape, p))]
            prev = _pyramid(gray, scales)
            tracks = [[{"pts": [pt], "disp": [], "desc": []} for pt in _sample(img, [])] for img in prev]
            continue
        cur = _pyramid(gray, scales)
        homography = np.eye(3)
        for i, s in enumerate(scales):
            flow = pair_flow(prev[i], cur[i], p)
            if i == 0 and p.camera:
                homography = cam.estimate_homography(prev[i], cur[i], flow)
            warped = cam.compensated_flow(flow, cam.scale_homography(homography, 1 / s)) if p.camera else flow
            mflow = median_flow(flow, p.median)
            h, w = prev[i].shape
            integrals = [_integral(*_grad(prev[i]), 8, False), _integral(warped[0], warped[1], 9, True),
                         _integral(*_grad(warped[0]), 8, False), _integral(*_grad(warped[1]), 8, False)]
            alive = []
            for tr in tracks[i]:
                x, y = tr["pts"][-1]
                xi, yi = min(max(int(round(x)), 0), w - 1), min(max(int(round(y)), 0), h - 1)
                nx, ny = x + float(mflow[0, yi, xi]), y + float(mflow[1, yi, xi])
                if not (0 < nx < w and 0 < ny < h):
                    counts["out_of_frame"] += 1
                    continue
                counts["described"] += 1
                tr["disp"].append((float(warped[0, yi, xi]), float(warped[1, yi, xi])))
                tr["desc"].append([_get_desc(integ, x, y, w, h) for integ in integrals])
                tr["pts"].append((nx, ny))
                if len(tr["pts"]) > p.track_length:
                    verdict = _valid(tr["pts"], tr["disp"], s, p)
                    counts[verdict] += 1
                    if verdict == "kept":
                        kept_hof.append(np.mean([np.array(d[1]) for d in tr["desc"]], axis=0))
                    continue
                alive.append(tr)
            tracks[i] = alive + [{"pts": [pt], "disp": [], "desc": []}
                                 for pt in _sample(cur[i], [t["pts"][-1] for t in alive])]
        prev = cur
    return {"counts": counts, "hof_mean": np.mean(kept_hof, axis=0) if kept_hof else None}
