"""Linking detections into tubes across a video (D&T; Feichtenhofer, Pinz & Zisserman, ICCV 2017).

The detections of a class in frames ``t`` and ``t + τ`` are linked with the score

``s(D_t^i, D_{t+τ}^j) = p_t^i + p_{t+τ}^j + ψ(D_t^i, D_{t+τ}^j, T^{t,t+τ})``

where ``ψ = 1`` when some track ``(T_t, T_{t+τ})`` (a box of frame ``t`` and where the tracker
regressed it to in ``t + τ``) overlaps ``D_t^i`` and ``D_{t+τ}^j`` each with IoU > 0.5, else 0.
A tube is the path through consecutive (detected) frames maximising the summed link scores,
found by the Viterbi algorithm (:func:`viterbi`); its detections are removed and the search
repeats until no detection is left (:func:`link_class`), over maximal runs of frames that still
have a detection. Rescoring (:func:`rescore`): every box of a tube gets the mean of the top 50 %
of the tube's scores added. :func:`causal_rescore` is the online variant: each detection is
rescored by the best path that ends at it, using only the frames up to its own. With a temporal
stride τ the detected frames are ``0, τ, 2τ, ...``; :func:`interpolate` fills the frames between
the boxes of a tube linearly.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepvideo.detect.ap import pairwise_iou

__all__ = ["TRACK_IOU", "FrameDetections", "Tube", "causal_rescore", "interpolate", "link_class",
           "link_scores", "link_video", "rescore", "top_half_mean", "viterbi"]

TRACK_IOU = 0.5  # ψ's overlap threshold


@dataclass
class FrameDetections:
    """One detected frame: ``frame`` number, ``boxes [n, 4]``, ``scores [n]``, ``labels [n]``,
    and the tracks to the next detected frame: ``track_from [m, 4]`` -> ``track_to [m, 4]``."""

    frame: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    track_from: np.ndarray | None = None
    track_to: np.ndarray | None = None


@dataclass
class Tube:
    """A linked path of one class: per member frame its number, box, score and detection index."""

    label: int
    frames: list[int]
    boxes: np.ndarray
    scores: np.ndarray
    indices: list[int]


def link_scores(boxes_t, scores_t, boxes_u, scores_u, track_from=None, track_to=None) -> np.ndarray:
    """``[n_t, n_u]`` link scores ``p_t + p_u + ψ`` (see the module docstring)."""
    s = np.asarray(scores_t, np.float64)[:, None] + np.asarray(scores_u, np.float64)[None, :]
    if track_from is not None and len(track_from):
        start = pairwise_iou(boxes_t, track_from) > TRACK_IOU
        end = pairwise_iou(boxes_u, track_to) > TRACK_IOU
        s = s + ((start.astype(np.int64) @ end.T.astype(np.int64)) > 0)
    return s


def viterbi(links: Sequence[np.ndarray], sizes: Sequence[int]) -> tuple[list[int], float]:
    """The path (one index per frame) maximising the sum of ``links[k][i_k, i_{k+1}]`` over frames
    of ``sizes[k]`` candidates, and that sum (dynamic programming, forward then back)."""
    value = np.zeros(sizes[0])
    back = []
    for link in links:
        total = value[:, None] + link
        back.append(total.argmax(0))
        value = total.max(0)
    path = [int(value.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1], float(value.max())


def _runs(alive: list[np.ndarray], lo: int, hi: int) -> list[tuple[int, int]]:
    """Maximal runs ``[a, b)`` of positions in ``[lo, hi)`` with a detection left."""
    runs, start = [], None
    for k in range(lo, hi):
        if alive[k].any() and start is None:
            start = k
        if not alive[k].any() and start is not None:
            runs.append((start, k))
            start = None
    if start is not None:
        runs.append((start, hi))
    return runs


def link_class(frames: Sequence[FrameDetections], label: int) -> list[Tube]:
    """All tubes of class ``label``, best first (see the module docstring)."""
    members = [np.nonzero(f.labels == label)[0] for f in frames]
    alive = [np.ones(len(m), bool) for m in members]
    full = [link_scores(frames[k].boxes[members[k]], frames[k].scores[members[k]],
                        frames[k + 1].boxes[members[k + 1]], frames[k + 1].scores[members[k + 1]],
                        frames[k].track_from, frames[k].track_to) for k in range(len(frames) - 1)]

    def best(a: int, b: int):
        ids = [np.nonzero(alive[k])[0] for k in range(a, b)]
        links = [full[k][np.ix_(ids[k - a], ids[k + 1 - a])] for k in range(a, b - 1)]
        path, score = viterbi(links, [len(i) for i in ids])
        if b - a == 1:  # a lone frame: its best detection
            path = [int(np.argmax(frames[a].scores[members[a]][ids[0]]))]
            score = float(frames[a].scores[members[a]][ids[0]][path[0]])
        return score, a, b, [int(ids[k][p]) for k, p in enumerate(path)]

    heap = [(-s, a, b, p) for s, a, b, p in (best(a, b) for a, b in _runs(alive, 0, len(frames)))]
    heapq.heapify(heap)
    tubes = []
    while heap:
        _, a, b, path = heapq.heappop(heap)
        for k, p in zip(range(a, b), path, strict=True):
            alive[k][p] = False
        chosen = [int(members[k][p]) for k, p in zip(range(a, b), path, strict=True)]
        tubes.append(Tube(label, [frames[k].frame for k in range(a, b)],
                          np.stack([frames[k].boxes[i] for k, i in zip(range(a, b), chosen, strict=True)]),
                          np.array([frames[k].scores[i] for k, i in zip(range(a, b), chosen, strict=True)]),
                          chosen))
        for run in _runs(alive, a, b):
            s, ra, rb, p = best(*run)
            heapq.heappush(heap, (-s, ra, rb, p))
    return tubes


def link_video(frames: Sequence[FrameDetections]) -> list[Tube]:
    """The tubes of every class present."""
    labels = sorted({int(x) for f in frames for x in f.labels})
    return [tube for label in labels for tube in link_class(frames, label)]


def top_half_mean(scores: Sequence[float]) -> float:
    """The mean of the highest ``ceil(n / 2)`` scores."""
    ordered = np.sort(np.asarray(scores, np.float64))[::-1]
    return float(ordered[: math.ceil(len(ordered) / 2)].mean())


def rescore(tubes: Sequence[Tube]) -> list[Tube]:
    """Tubes whose scores have the mean of the tube's top 50 % scores added."""
    return [Tube(t.label, t.frames, t.boxes, t.scores + top_half_mean(t.scores), t.indices) for t in tubes]


def causal_rescore(frames: Sequence[FrameDetections]) -> list[np.ndarray]:
    """Online rescoring: per frame the scores of its detections, each plus the top-50 % mean of
    the best path (by summed link scores over the frames so far) ending at it."""
    out = []
    value: np.ndarray | None = None
    chains: list[list[float]] = []
    for k, f in enumerate(frames):
        new_value, new_chains = np.zeros(len(f.scores)), []
        for j in range(len(f.scores)):
            same = np.nonzero(frames[k - 1].labels == f.labels[j])[0] if k else np.zeros(0, int)
            if len(same) == 0:
                new_chains.append([float(f.scores[j])])
                continue
            prev = frames[k - 1]
            s = link_scores(prev.boxes[same], prev.scores[same], f.boxes[j:j + 1], f.scores[j:j + 1],
                            prev.track_from, prev.track_to)[:, 0] + value[same]
            best = int(np.argmax(s))
            new_value[j] = s[best]
            new_chains.append(chains[same[best]] + [float(f.scores[j])])
        value, chains = new_value, new_chains
        out.append(np.array([f.scores[j] + top_half_mean(c) for j, c in enumerate(chains)]))
    return out


def interpolate(tube: Tube) -> Tube:
    """The tube on every frame from its first to its last: boxes and scores linear in between
    (detection index -1 on filled frames)."""
    frames = list(range(tube.frames[0], tube.frames[-1] + 1))
    boxes = np.stack([np.interp(frames, tube.frames, tube.boxes[:, c]) for c in range(4)], 1)
    scores = np.interp(frames, tube.frames, tube.scores)
    where = dict(zip(tube.frames, tube.indices, strict=True))
    return Tube(tube.label, frames, boxes, scores, [where.get(f, -1) for f in frames])
