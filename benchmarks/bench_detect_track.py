"""D vs D&T vs D&T + tube linking on the synthetic VID set (Feichtenhofer et al., ICCV 2017, Table 8.1).

Renders the synthetic VID set (:mod:`deepvideo.detect.vid_synth`; frames of 256x192 unless
``--size``, the CPU configs' anchors scaled to other sizes) and trains through the engine,
as the paper does: first the single-frame R-FCN ``D`` (``configs/vid/dt_detector_cpu.yaml``),
then ``D&T`` with τ = 1 from D's last checkpoint, everything fine-tuned jointly with the
tracking loss (``configs/vid/dt_track_cpu.yaml``); as a control, D is fine-tuned for the same
steps with the same recipe but without the tracking head and loss. On the test split it reports frame mAP
(IoU 0.5) per class, mean, and by motion speed (the motion-IoU split of ImageNet VID) of: D; the
control; D with linking but no tracks (ψ = 0); D&T's frame detections; D&T with linking and
rescoring, without (ψ = 0) and with its tracks, and with its tracks replaced by Δ = 0 (boxes
tracked to themselves: the control of the tracks); D&T + linking at temporal stride 2
(interpolated), with its tracks and with Δ = 0; the time linking takes per frame on one core;
per speed class the share of an object's consecutive-frame box pairs overlapping by
IoU <= 0.5 (the links only a track can make); how much D&T + linking's gains over D depend on
the test videos (:func:`bootstrap_gains`); and how whole the objects' tubes are per speed
class, with the tracks and with Δ = 0 (:func:`tube_purity`). Writes
``benchmarks/results/detect_track.json`` (rendered into docs/benchmarks.md by
``benchmarks/render_docs.py``).

    python benchmarks/bench_detect_track.py [--d-steps 1500] [--dt-steps 600] [--threads 1] [--size 256x192]
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import ROOT, write_result  # noqa: E402
from deepvideo.detect.ap import pairwise_iou  # noqa: E402
from deepvideo.detect.evaluate import evaluate_videos, motion_iou, speed_of  # noqa: E402
from deepvideo.detect.inference import detect_video  # noqa: E402
from deepvideo.detect.link import TRACK_IOU  # noqa: E402
from deepvideo.detect.pairs import read_rgb  # noqa: E402
from deepvideo.detect.vid import read_split  # noqa: E402
from deepvideo.detect.vid_synth import CLASSES, render_vid_set  # noqa: E402
from deepvideo.engine.config import load_config  # noqa: E402
from deepvideo.engine.loop import train  # noqa: E402
from deepvideo.engine.tasks.detect_track import load_detector  # noqa: E402

VIDEOS = {"train": 384, "val": 6, "test": 36}  # test: 12 until the recipes' round 2 (noise)
FRAMES = {"train": 8, "val": 24, "test": 24}  # many short training videos: more object instances
BOOTSTRAP_ROUNDS = 100
SIZE = (256, 192)  # frames (width, height); 128x96 until the recipes' round 4
BASE_ANCHORS = (32, 64, 128)  # the CPU configs' anchor sides at 256x192, scaled with the frames


def anchor_scales(size: tuple[int, int]) -> list[float]:
    """The CPU configs' anchor sides for frames of ``size`` (proportional to the height)."""
    return [a * size[1] / SIZE[1] for a in BASE_ANCHORS]


def vid_set(root: Path, videos: dict[str, int], frames, size: tuple[int, int], seed: int) -> Path:
    """``root`` holding the synthetic VID set of these arguments, rendered when missing; an
    existing set made otherwise is an error (a stale folder would be trained on silently)."""
    manifest = root / "synth.json"
    if not manifest.is_file():
        render_vid_set(root, videos, frames=frames, size=size, seed=seed, progress=False)
    made = json.loads(manifest.read_text())
    wanted = {"seed": seed, "size": list(size), "videos": dict(videos)}
    found = {"seed": made["seed"], "size": made["size"], "videos": made["videos"]}
    if found != wanted:
        raise SystemExit(f"{root}: holds a synthetic VID set made with {found}, this run needs "
                         f"{wanted}; remove the folder or choose another --out")
    return root


def train_model(config: str, root: Path, out: Path, steps: int, start: Path | None = None,
                model: str | None = None, reuse: bool = False,
                overrides: tuple[str, ...] | list[str] = (), into: str | None = None,
                size: tuple[int, int] = SIZE) -> tuple[Path, dict]:
    """Train ``config`` for ``steps`` on frames of ``size`` (anchors scaled to it); ``start``: a
    checkpoint to initialise from (into the ``detector.`` of a D&T model, or ``into`` that
    prefix: ``""`` for a whole D&T checkpoint); ``model``: another ``model.name``;
    ``overrides``: more config overrides (``key=value``). With ``reuse`` a finished run in
    ``out`` is taken as it is (its seconds: the sum of its epoch times)."""
    if reuse and (out / "metrics.csv").is_file():
        with open(out / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        if rows and int(rows[-1]["step"]) >= steps:
            return out / "checkpoints" / "last", {
                "seconds": sum(float(r["epoch_time_s"]) for r in rows), "rows": rows}
    overrides = [f"output_dir={out}", f"data.train.root={root}", f"data.val.root={root}",
                 f"train.max_steps={steps}", "data.num_workers=0", "train.log_every=50",
                 f"model.kwargs.anchor_scales={anchor_scales(size)}", *overrides]
    cfg = load_config(ROOT / "configs" / "vid" / config, overrides=overrides + (
        [f"model.name={model}"] if model else []))
    if start is not None:
        target = into if into is not None else ("detector." if cfg.model.name.startswith("dt_") else "")
        cfg.model.init_from = [{"checkpoint": str(start), "target": target}]
    begin = time.perf_counter()
    result = train(cfg, progress=False)
    return result.last_checkpoint, {"seconds": time.perf_counter() - begin, "rows": result.history}


def evaluate(loaded, videos, frames, link: bool, track: bool = True, stride: int = 1,
             keep: list | None = None) -> tuple[dict, float]:
    """Scores of a ``(model, class names)`` pair (labels are indices into the model's own class
    list, the sorted training classes) and the linking ms per frame; ``keep`` (a list) gets the
    per-video detections appended."""
    torch.set_num_threads(1)
    model, classes = loaded
    results = [detect_video(model, f, stride=stride, link=link, track=track) for f in frames]
    if keep is not None:
        keep.append(results)
    seconds = sum(r.link_seconds for r in results)
    return evaluate_videos(results, videos, classes), 1000 * seconds / sum(len(f) for f in frames)


def bootstrap_gains(before, after, videos, classes, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> dict:
    """How much the gains of ``after`` over ``before`` (per-video detections) depend on the test
    videos: both scored on ``rounds`` resamples of the videos (with replacement, the same for
    both); the 5-95 % range of the mAP gain and of each speed class's gain, and the share of
    resamples where the gain on fast objects is the largest."""
    rng = np.random.default_rng(seed)
    speeds = ("slow", "medium", "fast")
    gains = []
    for _ in range(rounds):
        pick = rng.integers(0, len(videos), len(videos))
        drawn = [dataclasses.replace(videos[i], name=f"{videos[i].name}#{j}") for j, i in enumerate(pick)]
        a, b = (evaluate_videos([dets[i] for i in pick], drawn, classes) for dets in (before, after))
        gains.append([b["mean"] - a["mean"],
                      *(b["by_speed"][s]["mean"] - a["by_speed"][s]["mean"] for s in speeds)])
    gains = 100 * np.array(gains)
    low, high = np.percentile(gains, [5, 95], axis=0)
    ranges = {name: [round(float(lo), 1), round(float(hi), 1)]
              for name, lo, hi in zip(("mAP", *speeds), low, high, strict=True)}
    fast_first = float(100 * np.mean(gains[:, 3] >= gains[:, 1:].max(1)))
    return {"rounds": rounds, "5-95 % range of the gain": ranges,
            "share with the largest gain on fast (%)": round(fast_first, 1)}


def motionless(loaded):
    """A copy of a D&T ``(model, class names)`` whose tracking head regresses Δ = 0 (every box
    tracked to itself): ψ then asks only that two detections overlap, the control of the tracks."""
    model = copy.deepcopy(loaded[0])
    with torch.no_grad():
        for p in model.track_maps.parameters():
            p.zero_()
    return model, loaded[1]


def untrackable_by_overlap(videos) -> dict[str, float]:
    """Per speed class, the share (%) of an object's boxes in consecutive frames that overlap by
    IoU <= 0.5: links that ψ can make only through a track."""
    low: dict[str, list[bool]] = {}
    for video in videos:
        speeds = motion_iou(video)
        for t, (now, after) in enumerate(zip(video.frames[:-1], video.frames[1:], strict=True)):
            boxes = {o.trackid: o.box for o in after.objects}
            for o in now.objects:
                speed = speed_of(speeds[t][o.trackid])
                if speed and o.trackid in boxes:
                    low.setdefault(speed, []).append(pairwise_iou(o.box, boxes[o.trackid])[0, 0] <= TRACK_IOU)
    return {s: round(100 * sum(v) / len(v), 1) for s, v in sorted(low.items())}


def tube_purity(results, videos, classes) -> dict[str, dict[str, float]]:
    """Per speed class, how whole the objects' tubes are: the share of an object's true
    detections (its class, IoU >= 0.5) that lie in its most common tube, and its tubes' count."""
    shares: dict[str, list[tuple[float, int]]] = {}
    for result, video in zip(results, videos, strict=True):
        speeds, tubes = motion_iou(video), {}
        for t, frame in enumerate(video.frames):
            for o in frame.objects:
                speed = speed_of(speeds[t][o.trackid])
                mine = np.nonzero(result.labels[t] == classes.index(o.name) + 1)[0]
                if speed is None or len(mine) == 0:
                    continue
                overlaps = pairwise_iou(o.box, result.boxes[t][mine])[0]
                if overlaps.max() >= 0.5:
                    tube = int(result.tube_ids[t][mine[overlaps.argmax()]])
                    tubes.setdefault((o.trackid, speed), []).append(tube)
        for (_, speed), ids in tubes.items():
            counts = Counter(ids)
            shares.setdefault(speed, []).append((counts.most_common(1)[0][1] / len(ids), len(counts)))
    return {s: {"in the main tube": round(float(np.mean([v[0] for v in shares[s]])), 2),
                "tubes per object": round(float(np.mean([v[1] for v in shares[s]])), 1)}
            for s in ("slow", "medium", "fast") if s in shares}


def row(name: str, scores: dict, link_ms: float | None = None) -> list:
    per_class = [100 * scores["per_class"][c] for c in CLASSES]
    speeds = [100 * scores["by_speed"][s]["mean"] for s in ("slow", "medium", "fast")]
    return [name, 100 * scores["mean"], *per_class, *speeds, "-" if link_ms is None else link_ms]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-steps", type=int, default=1500, help="optimizer steps of D")
    parser.add_argument("--dt-steps", type=int, default=600,
                        help="optimizer steps of D&T (and of the control) from D's checkpoint")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_detect_track")
    parser.add_argument("--reuse", action="store_true",
                        help="take finished training runs in --out as they are (evaluate again)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (on a shared machine two threads contended badly)")
    parser.add_argument("--size", default="x".join(map(str, SIZE)),
                        help="WIDTHxHEIGHT of the frames (anchors scale with the height)")
    args = parser.parse_args(argv)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    root = vid_set(args.out / "vid_synth", VIDEOS, FRAMES, args.size, seed=0)
    runs = {"D": train_model("dt_detector_cpu.yaml", root, args.out / "D", args.d_steps, reuse=args.reuse,
                             size=args.size)}
    print("D trained in", round(runs["D"][1]["seconds"]), "s", flush=True)
    for key, model in (("DT", None), ("D+", "rfcn_cpu")):  # D&T, and the control without tracking
        torch.set_num_threads(args.threads)
        runs[key] = train_model("dt_track_cpu.yaml", root, args.out / key, args.dt_steps,
                                start=runs["D"][0], model=model, reuse=args.reuse, size=args.size)
        print(key, "trained in", round(runs[key][1]["seconds"]), "s", flush=True)
    begin = time.perf_counter()  # the evaluation
    videos = read_split(root, "test")
    frames = [[read_rgb(f.image) for f in v.frames] for v in videos]
    models = {key: load_detector(runs[key][0])[:2] for key in ("D", "DT", "D+")}
    still = motionless(models["DT"])
    runs_of = {  # row -> (model, link, track, stride)
        "D": ("D (R-FCN)", models["D"], False, True, 1),
        "control": (f"D + {args.dt_steps} steps without the tracking loss (control)", models["D+"],
                    False, True, 1),
        "D link": ("D + linking, no tracks (ψ = 0)", models["D"], True, True, 1),
        "DT": ("D&T (τ = 1), frame detections", models["DT"], False, True, 1),
        "DT psi0": ("D&T (τ = 1) + linking, no tracks (ψ = 0)", models["DT"], True, False, 1),
        "DT link": ("D&T (τ = 1) + linking + rescoring", models["DT"], True, True, 1),
        "DT still": ("D&T (τ = 1) + linking, tracks replaced by Δ = 0", still, True, True, 1),
        "DT2 link": ("D&T (τ = 2) + linking + interpolation", models["DT"], True, True, 2),
        "DT2 still": ("D&T (τ = 2) + linking + interpolation, tracks replaced by Δ = 0", still,
                      True, True, 2),
    }
    rows, kept = {}, {}
    for key, (name, loaded, link, track, stride) in runs_of.items():
        kept[key] = []
        result, link_ms = evaluate(loaded, videos, frames, link=link, track=track, stride=stride,
                                   keep=kept[key])
        rows[key] = row(name, result, link_ms if link else None)
        print(rows[key], flush=True)
    spread = bootstrap_gains(kept["D"][0], kept["DT link"][0], videos, models["D"][1])
    print("D&T + linking over D on resampled test videos:", spread, flush=True)
    spread["tubes of D&T + linking"] = tube_purity(kept["DT link"][0], videos, models["DT"][1])
    spread["tubes of D&T + linking, Δ = 0"] = tube_purity(kept["DT still"][0], videos, models["DT"][1])
    write_summary(args, runs, rows, videos, rows["DT link"][-1], time.perf_counter() - begin, spread)


def write_summary(args, runs: dict, rows: dict, videos, link_ms: float, seconds: float,
                  spread: dict) -> None:
    speeds = ("slow", "medium", "fast")
    first = 2 + len(CLASSES)

    def gain(a: str, b: str) -> dict:
        return {s: rows[a][first + i] - rows[b][first + i] for i, s in enumerate(speeds)}

    over_d, over_control = gain("DT link", "D"), gain("DT link", "control")
    over_still = gain("DT link", "DT still")
    load = os.getloadavg()[0]
    train_s = ", ".join(f"{runs[k][1]['seconds']:.0f}" for k in ("D", "DT", "D+"))
    minutes = (sum(runs[k][1]["seconds"] for k in runs) + seconds) / 60
    summary = {"D mAP": rows["D"][1], "control mAP": rows["control"][1],
               "D&T + linking mAP": rows["DT link"][1],
               "D&T + linking, Δ = 0 mAP": rows["DT still"][1],
               **{f"gain {s}": over_d[s] for s in speeds},
               **{f"gain {s} over the control": over_control[s] for s in speeds},
               **{f"gain {s} of the tracks over Δ = 0": over_still[s] for s in speeds},
               "mAP of the tracks minus Δ = 0 (τ = 1)": rows["DT link"][1] - rows["DT still"][1],
               "mAP of the tracks minus Δ = 0 (τ = 2)": rows["DT2 link"][1] - rows["DT2 still"][1],
               "consecutive-frame box pairs with IoU <= 0.5 (%)": untrackable_by_overlap(videos),
               "linking ms/frame": link_ms,
               "D&T + linking over D, resampled test videos": {
                   k: v for k, v in spread.items() if not k.startswith("tubes")},
               **{k: v for k, v in spread.items() if k.startswith("tubes")},
               "goal": "D&T + linking > D, largest gain on fast objects, linking <= 46 ms/frame",
               "met": bool(rows["DT link"][1] > rows["D"][1] and over_d["fast"] >= max(over_d.values())
                           and link_ms <= 46),
               "train s (D, D&T, control)": train_s, "evaluation s": round(seconds),
               "bench minutes (training + evaluation)": round(minutes, 1),
               "load average at end": round(load, 1)}
    recipes = [load_config(ROOT / "configs" / "vid" / name).train
               for name in ("dt_detector_cpu.yaml", "dt_track_cpu.yaml")]
    lrs = [t.lr for t in recipes]
    dt_optimizer = f"SGD, momentum {recipes[1].momentum:g}" if recipes[1].optimizer == "sgd" else "AdamW"
    frozen = ", ".join(recipes[1].freeze or []) or "nothing"
    counts = Counter(speed_of(m) for v in videos for frame in motion_iou(v) for m in frame.values())
    description = (
        f"Frame mAP (%, IoU 0.5, VOC all-point) on the synthetic VID test split ({VIDEOS['test']} videos "
        f"of 24 frames, {args.size[0]}x{args.size[1]}, classes {', '.join(CLASSES)}; trained on "
        f"{VIDEOS['train']} videos of "
        f"{FRAMES['train']} frames). "
        f"D: the single-frame R-FCN (configs/vid/dt_detector_cpu.yaml) trained from scratch for "
        f"{args.d_steps} steps of 4 frame pairs (AdamW, lr {lrs[0]:g}, cosine); D&T (τ = 1) starts "
        f"from D's weights and everything is fine-tuned with the tracking loss for {args.dt_steps} "
        f"steps (configs/vid/dt_track_cpu.yaml, {dt_optimizer}, lr {lrs[1]:g}, cosine; parameters "
        f"fixed: {frozen}), the recipe chosen on a selection set by the rule of "
        f"benchmarks/bench_detect_track_recipes.py (round 4); the control fine-tunes D the same "
        f"way without the tracking head and loss. "
        f"Δ = 0 rows: D&T's tracking head zeroed, every box "
        f"tracked to itself, so ψ only asks that the two detections overlap one box by IoU > 0.5. "
        f"Trained on {args.threads} CPU thread(s) of a 2-core "
        f"machine shared with other jobs (training s: D, D&T, control = {train_s}; 1-minute load "
        f"average {load:.1f} at the end; training + evaluation {minutes:.0f} min). Detections: per-class "
        f"NMS 0.3 and box voting. Speed columns: mAP over the boxes of each motion-IoU class (the "
        f"mean IoU with the same object ±10 frames away; slow > 0.9, fast < 0.7; test boxes: "
        + ", ".join(f"{s} {counts[s]}" for s in ("slow", "medium", "fast")) +
        "). Linking: Viterbi tubes per class with ψ from the D&T tracks, rescoring by the mean of "
        "the top half of the tube's scores; ms per frame on one thread. Dissertation Table 8.1 "
        "(ImageNet VID): D 74.2 -> D&T + linking 79.8.")
    columns = ["method", "mAP", *CLASSES, "slow", "medium", "fast", "linking ms/frame"]
    print(write_result("detect_track", title="Detect and Track on the synthetic VID set",
                       command=f"nice python benchmarks/bench_detect_track.py --d-steps {args.d_steps} "
                               f"--dt-steps {args.dt_steps} --threads {args.threads}"
                               + ("" if args.size == SIZE else f" --size {args.size[0]}x{args.size[1]}"),
                       description=description, columns=columns, rows=list(rows.values()),
                       summary=summary))


if __name__ == "__main__":
    main()
