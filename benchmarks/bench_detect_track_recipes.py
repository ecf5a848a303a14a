"""D&T fine-tuning recipes compared from one trained D, chosen on a selection set (not the test).

Takes the D of a ``bench_detect_track.py`` run (``--bench``: its folder; ``D`` and ``vid_synth``
are made there as the bench makes them when missing, so the bench run with ``--reuse`` takes
the same D), fine-tunes D&T from it with each recipe of a round (:data:`ROUNDS`: overrides of
``configs/vid/dt_track_cpu.yaml``, from D or from another recipe's run) and reports frame mAP,
slow, medium and fast of D and of each D&T + linking + rescoring on a selection set only: videos
of 24 frames rendered with another seed than the bench's videos (12 in round 1, then 36; frames
of 128x96 in rounds 1-3, whose D is the one of ``--bench runs/bench_detect_track_128x96``, and
256x192 in round 4), so that a recipe is chosen without the test videos. The recipe is chosen by
:data:`SELECTION_RULE`. Not used by the rule, also on the selection set: each recipe's D&T +
linking with its tracks replaced by Δ = 0, and how often its tracking head moves a ground-truth
box onto the next frame's box (IoU > 0.5, ψ's test) per speed class. Finished runs in ``--out``
are reused. Prints the table and the chosen recipe and writes ``<out>/recipes_round<k>.json``.

    python benchmarks/bench_detect_track_recipes.py [--bench runs/bench_detect_track] [--round 4]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_detect_track as bench  # noqa: E402
from common import ROOT  # noqa: E402
from deepvideo.detect.ap import pairwise_iou  # noqa: E402
from deepvideo.detect.evaluate import motion_iou, speed_of  # noqa: E402
from deepvideo.detect.inference import to_tensor  # noqa: E402
from deepvideo.detect.link import TRACK_IOU  # noqa: E402
from deepvideo.detect.pairs import read_rgb  # noqa: E402
from deepvideo.detect.vid import read_split  # noqa: E402
from deepvideo.engine.tasks.detect_track import load_detector  # noqa: E402
from deepvideo.io.atomic import atomic_write_json  # noqa: E402

ADAMW = ["train.optimizer=adamw", "train.lr=0.00005"]
SGD_4, SGD_3 = (["train.optimizer=sgd", f"train.lr={lr}"] for lr in ("0.0001", "0.001"))
HEAD_ONLY = ["train.optimizer=adamw", "train.freeze=[detector.*]"]  # D fixed (BN statistics too)
HEAD_FIRST = "tracking head only (D fixed), AdamW lr 2e-3"
# name -> (the recipe whose run it starts from, whole model; None: from D), overrides
ROUND_1 = {  # four, for the time of a CPU run; the earlier τ-range and head-at-5e-5 ones dropped
    "joint, SGD momentum 0.9, lr 1e-4, BN fixed (the paper's optimiser and rate)": (None, SGD_4),
    "joint, AdamW lr 5e-5, BN fixed": (None, ADAMW),
    "joint, SGD momentum 0.9, lr 1e-3, BN fixed": (None, SGD_3),
    HEAD_FIRST: (None, [*HEAD_ONLY, "train.lr=0.002"]),
    # Added after the four above were scored on the selection set (and nothing on the test split):
    # the tracks of the two low-rate joint recipes barely follow fast objects (the head starts near
    # zero and moves little at those rates), the head-only recipe's do. These fine-tune everything
    # jointly for the same steps from that head-only run (two stages, as the CPU schedule allows;
    # the paper fine-tunes jointly for 40K + 20K iterations).
    "head first (D fixed, AdamW 2e-3), then joint AdamW lr 5e-5, BN fixed": (HEAD_FIRST, ADAMW),
    "head first (D fixed, AdamW 2e-3), then joint SGD momentum 0.9, lr 1e-4, BN fixed": (HEAD_FIRST, SGD_4),
}
# Round 2, after round 1's choice missed the goal on the test split (gain on fast +4.5, medium +5.4):
# a selection set three times larger (round 1's gains differ from the test's by up to 3 points per
# speed class on 12 videos), round 1's choice again, and the joint stage at the rate that gained
# most on fast in round 1 (SGD 1e-3), also from the head-only run and also 2.5 times longer (the
# paper fine-tunes D&T for 60K iterations, 3/4 of D's 80K).
LONG = ["train.max_steps=1500"]
ROUND_2 = {
    HEAD_FIRST: ROUND_1[HEAD_FIRST],
    "head first (D fixed, AdamW 2e-3), then joint SGD momentum 0.9, lr 1e-4, BN fixed": (HEAD_FIRST, SGD_4),
    "joint, SGD momentum 0.9, lr 1e-3, BN fixed": (None, SGD_3),
    "head first (D fixed, AdamW 2e-3), then joint SGD momentum 0.9, lr 1e-3, BN fixed": (HEAD_FIRST, SGD_3),
    "joint, SGD momentum 0.9, lr 1e-3, BN fixed, 1500 steps": (None, [*SGD_3, *LONG]),
    "head first (D fixed, AdamW 2e-3), then joint SGD momentum 0.9, lr 1e-3, BN fixed, 1500 steps": (
        HEAD_FIRST, [*SGD_3, *LONG]),
}
# Round 3: round 2's candidates again, trained anew after the tracking loss changed to take every
# foreground RoI of an object (as the authors' release does), not its ground-truth box alone: in
# round 2's choice of rule and on the selection set, fast objects' tubes broke up (0.69 of an
# object's detections in its main tube, 4.0 tubes per object; slow 0.96 / 1.3) because the head,
# trained on exact boxes, did not land on the next detection from an imprecise one (ψ fired on 80 %
# of consecutive true detections of fast objects, 100 % of the others). Runs in <out>/round3.
# Round 4: round 3's candidates on frames of 256x192 instead of 128x96 (anchors doubled), from a D
# trained on them. At 128x96 conv5 is 8x6 cells: objects span 2-3 cells and fast ones move about
# one cell per frame, so D found fast objects poorly and the tracker missed the next detection;
# a first check at 256x192 on the selection set (D and round 1's choice only) gave D 90.2 ->
# D&T + linking 93.6 with gains +0.7 / +1.4 / +13.6 (slow / medium / fast).
ROUNDS = {1: {"videos": 12, "recipes": ROUND_1}, 2: {"videos": 36, "recipes": ROUND_2},
          3: {"videos": 36, "recipes": ROUND_2, "runs": "round3"},
          4: {"videos": 36, "recipes": ROUND_2, "runs": "round4", "size": (256, 192)}}
SELECT_SEED = 1  # the bench renders its videos with seed 0
# The rule first declared was the highest mean mAP alone; its choice (joint AdamW 5e-5, whose head
# hardly learnt to track) was run on the test split and missed the acceptance's goal. It was then
# replaced by this one, which asks on the selection set what the acceptance asks (mAP above D, the
# largest gain on fast objects) before ranking by mAP (docs/detection.md tells the sequence).
SELECTION_RULE = ("among the recipes whose D&T + linking + rescoring beats D's mean frame mAP on the "
                  "selection set (videos of 24 frames, seed 1) with its largest gain on fast "
                  "objects, the one with the highest mean mAP (if none qualifies: the highest mean "
                  "mAP); on a tie the first listed")


def choose(table: dict[str, list[float]]) -> str:
    """The recipe :data:`SELECTION_RULE` picks from ``table`` (name -> mAP, slow, medium, fast;
    first row D)."""
    d, *recipes = table
    gains = {n: [a - b for a, b in zip(table[n][1:], table[d][1:], strict=True)] for n in recipes}
    qualified = [n for n in recipes if table[n][0] > table[d][0] and gains[n][2] >= max(gains[n])]
    return max(qualified or recipes, key=lambda name: table[name][0])  # max keeps the first of equals


def scores(loaded, split: tuple[Path, str], link: bool) -> list[float]:
    """mAP, slow, medium, fast (%) of a loaded model on the split ``(root, name)``."""
    videos = read_split(*split)
    frames = [[read_rgb(f.image) for f in v.frames] for v in videos]
    values = bench.row("", bench.evaluate(loaded, videos, frames, link=link)[0])
    return [round(v, 1) for v in values[1:2] + values[-4:-1]]


def tracked_share(model, split: tuple[Path, str]) -> dict[str, float]:
    """Per speed class, the share (%) of ground-truth boxes of frame ``t`` (objects also in
    ``t + 1``) that the tracking head moves onto the object's box in ``t + 1`` with IoU > 0.5
    (ψ's test), and, as ``still <speed>``, the share that already overlap it that much unmoved."""
    hits: dict[str, list[tuple[bool, bool]]] = {}
    for video in read_split(*split):
        speeds = motion_iou(video)
        with torch.no_grad():
            maps = [model.detector.features(to_tensor(read_rgb(f.image))) for f in video.frames]
        for t, (now, after) in enumerate(zip(video.frames[:-1], video.frames[1:], strict=True)):
            goal = {o.trackid: o.box for o in after.objects}
            objects = [o for o in now.objects if o.trackid in goal and speed_of(speeds[t][o.trackid])]
            if not objects:
                continue
            boxes = torch.tensor([o.box for o in objects], dtype=torch.float32)
            moved_boxes = model.tracked_boxes(maps[t], maps[t + 1], boxes).numpy()
            for o, moved in zip(objects, moved_boxes, strict=True):
                hits.setdefault(speed_of(speeds[t][o.trackid]), []).append(
                    (pairwise_iou(moved, goal[o.trackid])[0, 0] > TRACK_IOU,
                     pairwise_iou(o.box, goal[o.trackid])[0, 0] > TRACK_IOU))
    out = {}
    for speed in ("slow", "medium", "fast"):
        pairs = np.array(hits.get(speed, []), bool).reshape(-1, 2)
        out[speed], out[f"still {speed}"] = (round(100 * float(v), 1) for v in pairs.mean(0))
    return out


def run_dir(out: Path, name: str) -> Path:
    """The run folder of a recipe (by name, so that rounds share their runs)."""
    return out / re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def train_recipe(name: str, recipes: dict, root: Path, d_run: Path, out: Path, steps: int,
                 size: tuple[int, int]) -> Path:
    """The last checkpoint of recipe ``name`` (trained first when missing, and so its start)."""
    start, overrides = recipes[name] if name in recipes else ROUND_1[name]
    first = None if start is None else train_recipe(start, recipes, root, d_run, out, steps, size)
    if first is not None:  # the whole model of the run it starts from
        overrides = [*overrides, f"model.init_from=[{{checkpoint: '{first}', target: ''}}]"]
    last, _ = bench.train_model("dt_track_cpu.yaml", root, run_dir(out, name), steps,
                          start=d_run if first is None else None, reuse=True, overrides=overrides,
                          size=size)
    return last


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=ROOT / "runs" / "bench_detect_track")
    parser.add_argument("--d-steps", type=int, default=1500, help="optimizer steps of D (when trained here)")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps of each D&T recipe")
    parser.add_argument("--round", type=int, choices=sorted(ROUNDS), default=max(ROUNDS),
                        help="the candidates and selection-set size of that round")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_detect_track_recipes")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="train and score only these recipes (indices; e.g. two processes in "
                             "parallel), choosing none")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("selection rule:", SELECTION_RULE, flush=True)
    recipes, count = ROUNDS[args.round]["recipes"], ROUNDS[args.round]["videos"]
    size = ROUNDS[args.round].get("size", (128, 96))
    root = bench.vid_set(args.bench / "vid_synth", bench.VIDEOS, bench.FRAMES, size, seed=0)
    d_run, _ = bench.train_model("dt_detector_cpu.yaml", root, args.bench / "D", args.d_steps, reuse=True,
                           size=size)
    tail = "" if size == (128, 96) else f"_{size[0]}x{size[1]}"
    select = bench.vid_set(args.out / f"vid_select{count}{tail}", {"val": count}, 24, size, seed=SELECT_SEED)
    split = (select, "val")
    runs_out = args.out / ROUNDS[args.round].get("runs", "")
    table = {"D (R-FCN)": scores(load_detector(d_run)[:2], split, link=False)}
    print("D (R-FCN)", table["D (R-FCN)"], flush=True)
    diagnostics = {}
    for i, name in enumerate(recipes):
        if args.only is not None and i not in args.only:
            continue
        torch.set_num_threads(1)
        loaded = load_detector(train_recipe(name, recipes, root, d_run, runs_out, args.steps, size))[:2]
        table[name] = scores(loaded, split, link=True)
        diagnostics[name] = {"Δ = 0": scores(bench.motionless(loaded), split, link=True),
                             "tracked IoU > 0.5 (%)": tracked_share(loaded[0].eval(), split)}
        print(name, table[name], diagnostics[name], flush=True)
    if args.only is not None:
        return
    chosen = choose(table)
    print("chosen:", chosen, recipes[chosen], flush=True)
    atomic_write_json(args.out / f"recipes_round{args.round}.json", {
        "rule": SELECTION_RULE, "round": args.round, "selection videos": count,
        "columns": ["mAP", "slow", "medium", "fast"], "selection": table,
        "chosen": chosen, "from": recipes[chosen][0], "overrides": recipes[chosen][1],
        "not used by the rule": {"what": "per recipe on the selection set: D&T + linking with its "
                                         "tracks replaced by Δ = 0 (mAP, slow, medium, fast), and "
                                         "tracked_share", "values": diagnostics}})


if __name__ == "__main__":
    main()
