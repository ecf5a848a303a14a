"""D vs D&T vs D&T + tube linking on the synthetic VID set (Feichtenhofer et al., ICCV 2017, Table 8.1).

Renders the synthetic VID set (:mod:`deepvideo.detect.vid_synth`) and trains through the engine,
as the paper does: first the single-frame R-FCN ``D`` (``configs/vid/dt_detector_cpu.yaml``),
then ``D&T`` with τ = 1 from D's last checkpoint in two stages: the tracking head alone on the
fixed D (``configs/vid/dt_track_head_cpu.yaml``), then everything fine-tuned with the tracking
loss (``configs/vid/dt_track_cpu.yaml``); as a control, D is fine-tuned for the same steps with
the second stage's recipe but without the tracking head and loss. On the test split it reports frame mAP
(IoU 0.5) per class, mean, and by motion speed (the motion-IoU split of ImageNet VID) of: D; the
control; D with linking but no tracks (ψ = 0); D&T's frame detections; D&T with linking and
rescoring, without (ψ = 0) and with its tracks, and with its tracks replaced by Δ = 0 (boxes
tracked to themselves: the control of the tracks); D&T + linking at temporal stride 2
(interpolated), with its tracks and with Δ = 0; the time linking takes per frame on one core;
and per speed class the share of an object's consecutive-frame box pairs overlapping by
IoU <= 0.5 (the links only a track can make). Writes
``benchmarks/results/detect_track.json`` (rendered into docs/benchmarks.md by
``benchmarks/render_docs.py``).

    python benchmarks/bench_detect_track.py [--d-steps 1500] [--dt-steps 600] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

VIDEOS = {"train": 384, "val": 6, "test": 12}
FRAMES = {"train": 8, "val": 24, "test": 24}  # many short training videos: more object instances


def train_model(config: str, root: Path, out: Path, steps: int, start: Path | None = None,
                model: str | None = None, reuse: bool = False,
                overrides: tuple[str, ...] | list[str] = (), into: str | None = None) -> tuple[Path, dict]:
    """Train ``config`` for ``steps``; ``start``: a checkpoint to initialise from (into the
    ``detector.`` of a D&T model, or ``into`` that prefix: ``""`` for a whole D&T checkpoint);
    ``model``: another ``model.name``; ``overrides``: more config
    overrides (``key=value``). With ``reuse`` a finished run in ``out`` is taken as it is (its
    seconds: the sum of its epoch times)."""
    if reuse and (out / "metrics.csv").is_file():
        with open(out / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        if rows and int(rows[-1]["step"]) >= steps:
            return out / "checkpoints" / "last", {
                "seconds": sum(float(r["epoch_time_s"]) for r in rows), "rows": rows}
    overrides = [f"output_dir={out}", f"data.train.root={root}", f"data.val.root={root}",
                 f"train.max_steps={steps}", "data.num_workers=0", "train.log_every=50", *overrides]
    cfg = load_config(ROOT / "configs" / "vid" / config, overrides=overrides + (
        [f"model.name={model}"] if model else []))
    if start is not None:
        target = into if into is not None else ("detector." if cfg.model.name.startswith("dt_") else "")
        cfg.model.init_from = [{"checkpoint": str(start), "target": target}]
    begin = time.perf_counter()
    result = train(cfg, progress=False)
    return result.last_checkpoint, {"seconds": time.perf_counter() - begin, "rows": result.history}


def evaluate(loaded, videos, frames, link: bool, track: bool = True, stride: int = 1) -> tuple[dict, float]:
    """Scores of a ``(model, class names)`` pair (labels are indices into the model's own class
    list, the sorted training classes) and the linking ms per frame."""
    torch.set_num_threads(1)
    model, classes = loaded
    results = [detect_video(model, f, stride=stride, link=link, track=track) for f in frames]
    seconds = sum(r.link_seconds for r in results)
    return evaluate_videos(results, videos, classes), 1000 * seconds / sum(len(f) for f in frames)


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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    root = args.out / "vid_synth"
    if not (root / "synth.json").is_file():
        render_vid_set(root, VIDEOS, frames=FRAMES, size=(128, 96), seed=0, progress=False)
    runs = {"D": train_model("dt_detector_cpu.yaml", root, args.out / "D", args.d_steps, reuse=args.reuse)}
    print("D trained in", round(runs["D"][1]["seconds"]), "s", flush=True)
    stages = {"DT head": ("dt_track_head_cpu.yaml", runs["D"][0], None, None),  # key: config, start,
              "DT": ("dt_track_cpu.yaml", "DT head", None, ""),                    # model, into
              "D+": ("dt_track_cpu.yaml", runs["D"][0], "rfcn_cpu", None)}
    for key, (config, start, model, into) in stages.items():
        torch.set_num_threads(args.threads)
        start = runs[start][0] if isinstance(start, str) else start
        runs[key] = train_model(config, root, args.out / key.replace(" ", "_"), args.dt_steps,
                                start=start, model=model, reuse=args.reuse, into=into)
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
    rows = {}
    for key, (name, loaded, link, track, stride) in runs_of.items():
        result, link_ms = evaluate(loaded, videos, frames, link=link, track=track, stride=stride)
        rows[key] = row(name, result, link_ms if link else None)
        print(rows[key], flush=True)
    write_summary(args, runs, rows, videos, rows["DT link"][-1], time.perf_counter() - begin)


def write_summary(args, runs: dict, rows: dict, videos, link_ms: float, seconds: float) -> None:
    speeds = ("slow", "medium", "fast")
    first = 2 + len(CLASSES)

    def gain(a: str, b: str) -> dict:
        return {s: rows[a][first + i] - rows[b][first + i] for i, s in enumerate(speeds)}

    over_d, over_control = gain("DT link", "D"), gain("DT link", "control")
    over_still = gain("DT link", "DT still")
    load = os.getloadavg()[0]
    train_s = ", ".join(f"{runs[k][1]['seconds']:.0f}" for k in ("D", "DT head", "DT", "D+"))
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
               "goal": "D&T + linking > D, largest gain on fast objects, linking <= 46 ms/frame",
               "met": bool(rows["DT link"][1] > rows["D"][1] and over_d["fast"] >= max(over_d.values())
                           and link_ms <= 46),
               "train s (D, D&T head, D&T, control)": train_s, "evaluation s": round(seconds),
               "bench minutes (training + evaluation)": round(minutes, 1),
               "load average at end": round(load, 1)}
    recipes = [load_config(ROOT / "configs" / "vid" / name).train
               for name in ("dt_detector_cpu.yaml", "dt_track_cpu.yaml", "dt_track_head_cpu.yaml")]
    lrs = [t.lr for t in recipes]
    dt_optimizer = f"SGD, momentum {recipes[1].momentum:g}" if recipes[1].optimizer == "sgd" else "AdamW"
    frozen = ", ".join(recipes[1].freeze or []) or "nothing"
    counts = Counter(speed_of(m) for v in videos for frame in motion_iou(v) for m in frame.values())
    description = (
        f"Frame mAP (%, IoU 0.5, VOC all-point) on the synthetic VID test split ({VIDEOS['test']} videos "
        f"of 24 frames, 128x96, classes {', '.join(CLASSES)}; trained on {VIDEOS['train']} videos of "
        f"{FRAMES['train']} frames). "
        f"D: the single-frame R-FCN (configs/vid/dt_detector_cpu.yaml) trained from scratch for "
        f"{args.d_steps} steps of 4 frame pairs (AdamW, lr {lrs[0]:g}, cosine); D&T (τ = 1, "
        f"two stages) starts from D's weights: its tracking head is trained alone for {args.dt_steps} "
        f"steps (configs/vid/dt_track_head_cpu.yaml, AdamW, lr {lrs[2]:g}, D fixed), then everything "
        f"is fine-tuned with the tracking loss for {args.dt_steps} steps (configs/vid/dt_track_cpu.yaml, "
        f"{dt_optimizer}, lr {lrs[1]:g}, cosine; parameters fixed: "
        f"{frozen}), the recipe chosen on a selection set by the rule of "
        f"benchmarks/bench_detect_track_recipes.py; the control fine-tunes D the same "
        f"way (the second stage's recipe, from D) without the tracking head and loss. "
        f"Δ = 0 rows: D&T's tracking head zeroed, every box "
        f"tracked to itself, so ψ only asks that the two detections overlap one box by IoU > 0.5. "
        f"Trained on {args.threads} CPU thread(s) of a 2-core "
        f"machine shared with other jobs (training s: D, D&T head, D&T, control = {train_s}; 1-minute load "
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
                               f"--dt-steps {args.dt_steps} --threads {args.threads}",
                       description=description, columns=columns, rows=list(rows.values()),
                       summary=summary))


if __name__ == "__main__":
    main()
