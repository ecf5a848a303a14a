"""OpenCV optical-flow backends: DIS, Farnebäck and OpenCV's Dual TV-L1.

Each backend takes grayscale ``uint8 [N,H,W]`` previous/next frames and returns
``float32 [N,2,H,W]`` numpy flow (u, v in pixels, prev -> next). Defaults:

- ``dis``: Dense Inverse Search (Kroeger et al. 2016), ``cv2.DISOpticalFlow`` with the
  MEDIUM preset (``preset="medium"``; also "fast" and "ultrafast").
- ``farneback``: Farnebäck 2003 polynomial expansion, the values used in OpenCV's sample
  (pyr_scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, poly_sigma 1.2).
- ``opencv-tvl1``: ``cv2.optflow.DualTVL1OpticalFlow_create()`` with OpenCV's defaults
  (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01, 300 inner iterations,
  scale step 0.8, median filtering 5, gamma 0), the reference for our PyTorch TV-L1.
"""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

FARNEBACK_DEFAULTS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
                          poly_sigma=1.2, flags=0)


def _run(prev: np.ndarray, nxt: np.ndarray, fn) -> np.ndarray:
    n, h, w = prev.shape
    out = np.empty((n, 2, h, w), np.float32)
    for i in range(n):
        flow = fn(np.ascontiguousarray(prev[i]), np.ascontiguousarray(nxt[i]))
        out[i] = np.moveaxis(flow, -1, 0)
    return out


def dis_flow(prev: np.ndarray, nxt: np.ndarray, preset: str = "medium", **params) -> np.ndarray:
    """DIS flow; ``params`` set DIS attributes by name (e.g. ``finest_scale=1``)."""
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    for key, value in params.items():
        setter = "set" + "".join(p.capitalize() for p in key.split("_"))
        if not hasattr(dis, setter):
            raise ValueError(f"unknown DIS parameter {key!r}")
        getattr(dis, setter)(value)
    return _run(prev, nxt, lambda a, b: dis.calc(a, b, None))


def farneback_flow(prev: np.ndarray, nxt: np.ndarray, **params) -> np.ndarray:
    """Farnebäck flow with :data:`FARNEBACK_DEFAULTS`, overridable by keyword."""
    unknown = set(params) - set(FARNEBACK_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown Farneback parameters {sorted(unknown)}; "
                         f"known: {sorted(FARNEBACK_DEFAULTS)}")
    p = {**FARNEBACK_DEFAULTS, **params}
    return _run(prev, nxt, lambda a, b: cv2.calcOpticalFlowFarneback(
        a, b, None, p["pyr_scale"], p["levels"], p["winsize"], p["iterations"], p["poly_n"],
        p["poly_sigma"], p["flags"]))


_TVL1_SETTERS = {"tau": "setTau", "lambda_": "setLambda", "lam": "setLambda", "theta": "setTheta",
                 "gamma": "setGamma", "scales": "setScalesNumber", "warps": "setWarpingsNumber",
                 "epsilon": "setEpsilon", "inner_iterations": "setInnerIterations",
                 "outer_iterations": "setOuterIterations", "scale_step": "setScaleStep",
                 "median_filtering": "setMedianFiltering", "use_initial_flow": "setUseInitialFlow"}


def opencv_tvl1_flow(prev: np.ndarray, nxt: np.ndarray, **params) -> np.ndarray:
    """OpenCV's DualTVL1 with its defaults; keywords as our ``tvl1`` (tau, lam, theta, ...)."""
    if not hasattr(cv2, "optflow"):
        raise RuntimeError("cv2.optflow is missing: install opencv-contrib-python(-headless)")
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    for key, value in params.items():
        if key not in _TVL1_SETTERS:
            raise ValueError(f"unknown opencv-tvl1 parameter {key!r}; known: {sorted(_TVL1_SETTERS)}")
        getattr(tvl1, _TVL1_SETTERS[key])(value)
    return _run(prev, nxt, lambda a, b: tvl1.calc(a, b, None))
