"""VID evaluation: motion IoU and the slow/medium/fast split; frame mAP against pycocotools."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest

from deepvideo.detect.ap import Box, mean_ap
from deepvideo.detect.evaluate import evaluate_videos, motion_iou, speed_of
from deepvideo.detect.vid import VidFrame, VidObject, VidVideo


def moving_video(frames: int = 21) -> VidVideo:
    """Object 0 still (slow), 1 moving 0.15 px/frame (medium), 2 moving 5 px/frame (fast)."""
    out = []
    for t in range(frames):
        out.append(VidFrame("", (400, 100), [
            VidObject(0, "a", (0.0, 0.0, 20.0, 20.0)),
            VidObject(1, "a", (100 + 0.15 * t, 0.0, 120 + 0.15 * t, 20.0)),
            VidObject(2, "b", (200 + 5.0 * t, 50.0, 220 + 5.0 * t, 70.0))]))
    return VidVideo("v", out)


def test_motion_iou_is_the_mean_iou_ten_frames_away():
    values = motion_iou(moving_video())
    d = 1.5  # 10 frames of 0.15 px
    assert values[10][1] == pytest.approx((20 - d) / (20 + d))  # both neighbours, same IoU
    assert values[0][0] == 1.0 and values[0][2] == 0.0  # one neighbour (t + 10)
    assert [speed_of(values[5][i]) for i in range(3)] == ["slow", "medium", "fast"]
    short = motion_iou(moving_video(frames=5))
    assert np.isnan(short[2][0]) and speed_of(short[2][0]) is None


def as_result(video: VidVideo, keep) -> SimpleNamespace:
    boxes = [np.array([o.box for o in f.objects if keep(o)]).reshape(-1, 4) for f in video.frames]
    labels = [np.array([1 if o.name == "a" else 2 for o in f.objects if keep(o)]) for f in video.frames]
    return SimpleNamespace(boxes=boxes, scores=[np.ones(len(b)) for b in boxes], labels=labels)


def test_speed_split_ignores_the_other_speeds():
    video = moving_video()
    perfect = evaluate_videos([as_result(video, lambda o: True)], [video], ["a", "b"])
    assert perfect["mean"] == 1.0 and all(s["mean"] == 1.0 for s in perfect["by_speed"].values())
    slow_only = evaluate_videos([as_result(video, lambda o: o.trackid == 0)], [video], ["a", "b"])
    assert slow_only["by_speed"]["slow"]["per_class"]["a"] == 1.0
    assert slow_only["by_speed"]["medium"]["per_class"]["a"] == 0.0  # the slow hits are ignored there
    assert slow_only["by_speed"]["fast"]["per_class"] == {"a": pytest.approx(np.nan, nan_ok=True), "b": 0.0}
    with pytest.raises(ValueError, match="detections for 2 frames"):
        evaluate_videos([SimpleNamespace(boxes=[0, 0])], [video], ["a", "b"])


def coco_ap(detections, truths, npos):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    keys = sorted({t.key for t in truths})
    images = [{"id": i + 1} for i in range(len(keys))]
    index = {k: i + 1 for i, k in enumerate(keys)}
    xywh = lambda b: [b[0], b[1], b[2] - b[0], b[3] - b[1]]  # noqa: E731
    gt = COCO()
    gt.dataset = {"images": images, "categories": [{"id": 1}],
                  "annotations": [{"id": i + 1, "image_id": index[t.key], "category_id": 1,
                                   "bbox": xywh(t.box), "area": xywh(t.box)[2] * xywh(t.box)[3], "iscrowd": 0}
                                  for i, t in enumerate(truths)]}
    with redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": index[d.key], "category_id": 1, "bbox": xywh(d.box), "score": d.score}
                         for d in detections])
        ev = COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.recThrs = np.arange(1, npos + 1) / npos  # all-point AP = mean precision at k / npos
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    return float(ev.eval["precision"][0, :, 0, 0, -1].mean())


@pytest.mark.parametrize("seed", range(3))
def test_frame_map_agrees_with_pycocotools(seed):
    rng = np.random.default_rng(seed)
    truths, detections = [], []
    for frame in range(6):
        for cell in rng.choice(12, size=rng.integers(1, 5), replace=False):
            x, y = 60.0 * (cell % 4), 60.0 * (cell // 4)
            box = (x, y, x + 30, y + 30)
            truths.append(Box(frame, "a", box))
            if rng.random() < 0.8:
                jitter = rng.uniform(-8, 8, 4)
                detections.append(Box(frame, "a", tuple(np.add(box, jitter)), float(rng.random())))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 200, 2)
            detections.append(Box(frame, "a", (x, y, x + 25, y + 25), float(rng.random())))
    ours = mean_ap(detections, truths)["mean"]
    assert ours == pytest.approx(coco_ap(detections, truths, len(truths)), abs=1e-6)


def test_bench_spread_of_the_gains_over_resampled_videos(bench_import):
    bench = bench_import("bench_detect_track")
    videos = [VidVideo(f"v{i}", moving_video().frames) for i in range(3)]
    slow_only = [as_result(v, lambda o: o.trackid == 0) for v in videos]
    everything = [as_result(v, lambda o: True) for v in videos]
    spread = bench.bootstrap_gains(slow_only, everything, videos, ["a", "b"], rounds=5)
    # slow objects were found before: no gain; medium (class a) and fast (class b) go 0 -> 100 %
    ranges = spread["5-95 % range of the gain"]
    assert ranges["slow"] == [0.0, 0.0] and ranges["medium"] == ranges["fast"] == [100.0, 100.0]
    assert spread["share with the largest gain on fast (%)"] == 100.0 and spread["rounds"] == 5
    same = bench.bootstrap_gains(everything, everything, videos, ["a", "b"], rounds=3)
    assert all(r == [0.0, 0.0] for r in same["5-95 % range of the gain"].values())


def test_bench_tube_purity_per_speed(bench_import):
    bench = bench_import("bench_detect_track")
    video = moving_video()
    result = as_result(video, lambda o: True)
    # objects 0 and 1 stay in one tube each; the fast object 2 alternates between two tubes
    result.tube_ids = [np.array([0, 1, 2 + t % 2]) for t in range(len(video.frames))]
    purity = bench.tube_purity([result], [video], ["a", "b"])
    assert purity["slow"] == purity["medium"] == {"in the main tube": 1.0, "tubes per object": 1.0}
    assert purity["fast"] == {"in the main tube": round(11 / 21, 2), "tubes per object": 2.0}
