"""Statistics of (improved) dense trajectory runs, counted the way the authors' release counts.

The release (DenseTrackStab, Wang & Schmid, ICCV 2013; DenseTrack, Wang et al., CVPR 2011 /
IJCV 2013) writes one line per kept trajectory, so "features per video" is the number of kept
trajectories. A trajectory ends ``L`` frames after its point was sampled: in a clip of ``N``
frames only frames ``L .. N-1`` end trajectories, and the per-frame rate that a long video
reaches is ``kept / (N - L)``; ``kept / N`` understates short clips (by 3/8 for N = 40, L = 15).

- *active points per frame*: points being tracked from one frame to the next, whether their
  trajectory is later kept or removed, averaged over the ``N - 1`` frame pairs;
- *mean length*: the release's ``length`` field, the summed step lengths of a kept trajectory
  in pixels of the original frame (each trajectory is scaled by its pyramid scale first);
- *removal shares*: fractions of the finished trajectories (full length ``L``; points lost at
  the frame border are not finished), tested in the release's order: static (standard
  deviations of x and y both < √3 px), erratic, then camera motion (largest camera-compensated
  step ≤ 1 px) among the rest.

:func:`grid_cells` counts the ``W × W`` sampling cells over the scale pyramid. Dense sampling
gives each empty cell at most one new point, so it is the density the sampling aims at (points
can drift into a shared cell, so it is not a hard bound on the active points).
"""

from __future__ import annotations

from collections.abc import Iterable

from deepvideo.features.trajectories import Trajectories, TrajectoryParams, pyramid_sizes

COUNTS = ("frames", "kept", "described", "static", "erratic", "camera", "length_sum")


def run_counts(tr: Trajectories) -> dict:
    """The counters of one video's run that :func:`summarize` needs (from ``tr.stats``)."""
    missing = [k for k in COUNTS[:-1] if k not in tr.stats]
    if missing:
        raise ValueError(f"trajectory stats lack {missing}; they come from DenseTrajectoryExtractor.finish()")
    counts = {k: int(tr.stats[k]) for k in COUNTS[:-1]}
    counts["length_sum"] = float(tr.info[:, 5].sum()) if len(tr) else 0.0
    return counts


def summarize(runs: Iterable[dict], track_length: int = 15) -> dict:
    """Statistics over runs (each a :func:`run_counts` dict), pooled over all their trajectories."""
    runs = list(runs)
    if not runs:
        raise ValueError("no runs to summarize")
    total = {k: sum(r[k] for r in runs) for k in COUNTS}
    ending_frames = sum(max(r["frames"] - track_length, 0) for r in runs)
    pairs = sum(max(r["frames"] - 1, 0) for r in runs)
    finished = total["kept"] + total["static"] + total["erratic"] + total["camera"]
    return {
        "kept_per_frame": total["kept"] / max(total["frames"], 1),
        "kept_per_ending_frame": total["kept"] / max(ending_frames, 1),
        "active_per_frame": total["described"] / max(pairs, 1),
        "mean_length_px": total["length_sum"] / max(total["kept"], 1),
        "static_share": total["static"] / max(finished, 1),
        "erratic_share": total["erratic"] / max(finished, 1),
        "camera_share": total["camera"] / max(finished, 1),
    }


def grid_cells(height: int, width: int, params: TrajectoryParams | None = None) -> int:
    """Number of ``grid_step``-sized sampling cells over all scales of a ``height × width`` video."""
    params = params or TrajectoryParams()
    step = params.grid_step
    return sum((h // step) * (w // step) for h, w in pyramid_sizes(height, width, params))
