"""Action detection on the synthetic AVA-format set: SlowFast's RoI detection head vs the same
backbone's clip classifier on each person's crop vs a single-frame 2D detection head.

Each model is trained once (one seed) through ``deepvideo train`` with
``configs/ava/synth_tiny_det.yaml`` (the crop and frame rows override ``model.*``) on 2 CPU
threads, then scored by frame-mAP at IoU 0.5 on the validation split with the stand-in
person detector's proposals (``deepvideo detect-actions test``). Writes
``benchmarks/results/action_detection.json``; ``python benchmarks/render_docs.py`` puts the
table in docs/benchmarks.md.

    python benchmarks/bench_action_detection.py            # the table (22 min on a shared 2-core machine)
    python benchmarks/bench_action_detection.py --quick    # smoke check, nothing written
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_result  # noqa: E402

RECIPE = "configs/ava/synth_tiny_det.yaml"
# name, label, overrides
ROWS = (
    ("roi", "SlowFast R50 (width 8) + RoI head (dilated res5, 7x7 RoIAlign, max pool)",
     []),
    ("crop", "SlowFast R50 (width 8) clip classifier on each person's 48x48 crop",
     ["model.kwargs={width: 8, head: crop, crop_size: 48}"]),
    ("frame", "ResNet-18 (width 1/4) on the keyframe + the same RoI head",
     ["model.name=resnet18", "model.kwargs={width: 0.25, head: frame, dropout: 0.5}"]),
)


def run_row(name: str, extra: list[str], data: Path, out: Path, args) -> dict:
    from deepvideo.engine.config import load_config
    from deepvideo.engine.loop import train
    from deepvideo.engine.tasks.action_detection import evaluate_run

    overrides = [f"data.train.root={data}", f"data.val.root={data}", f"output_dir={out / name}",
                 f"train.epochs={args.epochs}", f"model.spec.num_frames={args.frames}", *extra]
    if args.quick:
        overrides += ["train.max_iters_per_epoch=2"]
    cfg = load_config(RECIPE, overrides=overrides)
    t = time.perf_counter()
    result = train(cfg, progress=False)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    metrics = evaluate_run(result.run_dir, subset="val")
    return {"train_s": train_s, "test_s": time.perf_counter() - t, **metrics}


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="two steps per model; results not written")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8, help="clip length (frames at stride 1, 8 fps)")
    ap.add_argument("--train-videos", type=int, default=16)
    ap.add_argument("--val-videos", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_action_detection")
    args = ap.parse_args(argv)
    import torch

    from deepvideo.detect.actions.synth import SynthParams, write_synth

    torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    out = args.out.absolute()
    params = SynthParams(train_videos=4 if args.quick else args.train_videos,
                         val_videos=2 if args.quick else args.val_videos)
    data = out / "data"
    t0 = time.perf_counter()
    split = write_synth(data, params)
    results = {}
    for name, _, extra in ROWS:
        results[name] = run_row(name, extra, data, out / "runs", args)
        r = results[name]
        print(f"{name}: frame-mAP {r['frame_map']:.3f} (train {r['train_s']:.0f} s)", flush=True)
    wall = time.perf_counter() - t0
    classes = list(results["roi"]["per_class"])
    rows = [[label, pct(results[n]["frame_map"]), *[pct(results[n]["per_class"][c]) for c in classes],
             f"{results[n]['train_s'] / 60:.1f}"] for n, label, _ in ROWS]
    for row in rows:
        print(" | ".join(row))
    if args.quick:
        return 0
    roi = results["roi"]["frame_map"]
    beats = roi > results["crop"]["frame_map"] and roi > results["frame"]["frame_map"]
    write_result(
        "action_detection", title="Action detection (synthetic AVA-format set)",
        command="python benchmarks/bench_action_detection.py",
        description=(
            f"Frame-mAP (%) at IoU 0.5 on the validation split of the synthetic AVA-format set "
            f"(`deepvideo detect-actions synth`: {split['train']['videos']} training videos / "
            f"{split['train']['keyframes']} keyframes, {split['val']['videos']} validation videos / "
            f"{split['val']['keyframes']} keyframes; 96x96, 8 fps, 2-3 actors; actions walk, jump, "
            f"spin, wave told apart by motion only), scored on the stand-in person detector's "
            f"proposals. Each model trained once for {args.epochs} epochs (AdamW, cosine) with "
            f"`{RECIPE}` on {args.threads} CPU threads (a machine shared with other jobs); "
            f"{args.frames}-frame clips (stride 1) centred on the keyframes. "
            f"Total wall time {wall / 60:.1f} min."),
        columns=["model", "frame-mAP", *[f"AP {c}" for c in classes], "train min"], rows=rows,
        summary={"roi_frame_map": roi, "crop_frame_map": results["crop"]["frame_map"],
                 "frame_frame_map": results["frame"]["frame_map"], "roi_beats_both": beats})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
