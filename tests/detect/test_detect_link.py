"""Tube linking: Viterbi equals brute force, ψ, removal and repeat, rescoring, causal, interpolation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deepvideo.detect.link import (
    FrameDetections,
    Tube,
    causal_rescore,
    interpolate,
    link_class,
    link_scores,
    rescore,
    top_half_mean,
    viterbi,
)


def brute_force(links, sizes):
    best = (-np.inf, None)
    for path in itertools.product(*(range(n) for n in sizes)):
        score = sum(link[path[k], path[k + 1]] for k, link in enumerate(links))
        best = max(best, (score, list(path)), key=lambda x: x[0])
    return best


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(1, 4, size=rng.integers(2, 6)))
    links = [rng.random((sizes[k], sizes[k + 1])) for k in range(len(sizes) - 1)]
    path, score = viterbi(links, sizes)
    expected_score, expected_path = brute_force(links, sizes)
    assert score == pytest.approx(expected_score, abs=1e-12)
    assert path == expected_path


def test_link_score_adds_psi_only_when_both_ends_match_a_track():
    boxes_t = np.array([[0, 0, 10, 10], [50, 50, 60, 60.0]])
    boxes_u = np.array([[2, 0, 12, 10], [30, 30, 40, 40.0]])
    s = link_scores(boxes_t, [0.5, 0.2], boxes_u, [0.3, 0.9],
                    np.array([[0, 0, 10, 10.0]]), np.array([[2, 0, 12, 10.0]]))
    assert s == pytest.approx(np.array([[0.8 + 1, 1.4], [0.5, 1.1]]))


def random_frames(rng, count, per_frame):
    frames = []
    for k in range(count):
        n = per_frame
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + 10], 1)
        frames.append(FrameDetections(k, boxes, rng.random(n), np.ones(n, int),
                                      track_from=boxes[:1], track_to=boxes[:1] + 1))
    return frames


@pytest.mark.parametrize("seed", range(3))
def test_first_tube_is_the_brute_force_optimum_and_tubes_use_each_detection_once(seed):
    rng = np.random.default_rng(seed)
    frames = random_frames(rng, 4, 3)
    tubes = link_class(frames, 1)
    links = [link_scores(a.boxes, a.scores, b.boxes, b.scores, a.track_from, a.track_to)
             for a, b in zip(frames, frames[1:], strict=False)]
    score, path = brute_force(links, [3] * 4)
    assert tubes[0].indices == path
    assert sorted((f, i) for t in tubes for f, i in zip(t.frames, t.indices, strict=True)) == \
        [(k, i) for k in range(4) for i in range(3)]


def test_frames_without_detections_split_tubes():
    frames = [FrameDetections(k, np.array([[0, 0, 10, 10.0]]) if k != 1 else np.zeros((0, 4)),
                              np.array([0.9]) if k != 1 else np.zeros(0),
                              np.array([2]) if k != 1 else np.zeros(0, int)) for k in range(3)]
    tubes = link_class(frames, 2)
    assert sorted(t.frames for t in tubes) == [[0], [2]]


def test_rescore_adds_mean_of_top_half():
    assert top_half_mean([0.1, 0.9, 0.5]) == pytest.approx((0.9 + 0.5) / 2)
    tube = Tube(1, [0, 1, 2, 3], np.zeros((4, 4)), np.array([0.2, 0.4, 0.6, 1.0]), [0, 0, 0, 0])
    (out,) = rescore([tube])
    assert out.scores == pytest.approx(tube.scores + 0.8)


def test_causal_rescore_uses_only_the_past():
    rng = np.random.default_rng(3)
    frames = random_frames(rng, 4, 2)
    full = causal_rescore(frames)
    prefix = causal_rescore(frames[:2])
    assert np.allclose(full[1], prefix[1])
    assert np.allclose(full[0], frames[0].scores * 2)  # a first frame's chain is itself


def test_interpolation_fills_strided_frames_linearly():
    tube = Tube(1, [0, 4], np.array([[0, 0, 10, 10.0], [8, 4, 18, 14]]), np.array([0.2, 0.6]), [3, 1])
    out = interpolate(tube)
    assert out.frames == [0, 1, 2, 3, 4] and out.indices == [3, -1, -1, -1, 1]
    assert out.boxes[1] == pytest.approx([2, 1, 12, 11]) and out.scores[2] == pytest.approx(0.4)
