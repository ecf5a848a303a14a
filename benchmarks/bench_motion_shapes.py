"""CPU model-zoo table of the two-stream family on synthetic motion, trained with the engine.

Acceptance of "Models I": on ``motion-shapes`` (split 1, default size: 300 videos of 32 frames at
112x112, ten classes told apart only by motion) trained on 2 CPU cores for the bounded budget
stated at the top of each recipe (``configs/motion_shapes/*.yaml``):

- the appearance stream (Simonyan & Zisserman 2014) stays within 10 points of chance (10%);
- the motion stream, the convolutional fusion network (Feichtenhofer, Pinz & Zisserman 2016),
  ST-ResNet* (Feichtenhofer, Pinz & Wildes 2016) and the spatiotemporal multiplier network
  (Feichtenhofer, Pinz & Wildes 2017) reach at least 90% video accuracy;
- late fusion (average of the two streams' softmax scores) is at least as good as the motion stream;

and on ``dynamic-scenes`` (split 1, default size, six classes, half moving camera) T-ResNet
(Feichtenhofer, Pinz & Wildes, CVPR 2017) beats the same ResNet without temporal units
(``configs/dynamic_scenes/*.yaml``). The peer of every row is named in its goal (chance, the
motion stream, the ResNet baseline).

Steps: render both synthetic sets into ``--data`` (kept between runs), extract DIS flow for
motion-shapes once (``deepvideo.flow.extract``, stored ``flow.npz``, resumable), train each recipe
with the engine (the fusion rows start from the appearance and motion rows' runs in ``--out``;
motion-shapes without horizontal flips: a mirrored "move left" is a "move right"), test on split 1
with ``deepvideo.engine.evaluate`` (video accuracy = mean of the clip scores of a video) and fuse
the two streams' saved scores with ``deepvideo.engine.fusion``.
Writes ``benchmarks/results/zoo_motion_shapes.json`` (full runs of every row only) and prints the
table. ``--quick``: 3 iterations of one epoch per model, one test clip (smoke check, results not
written); ``--only NAME`` (repeatable): those rows only.

    .venv/bin/python benchmarks/bench_motion_shapes.py            # full table, ~15 min on 2 idle cores
    .venv/bin/python benchmarks/bench_motion_shapes.py --quick
    .venv/bin/python benchmarks/bench_motion_shapes.py --only temporal --only spatial
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_result  # noqa: E402

FLOW_BOUND = 8.0  # px; the synthetic motions are a few pixels per frame
COMMAND = "python benchmarks/bench_motion_shapes.py"


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    recipe: str  # relative to the repository root
    dataset: str  # motion_shapes | dynamic_scenes
    goal: str  # chance10 | acc90 | ref | beats:<row>


ROWS = (
    Row("spatial", "appearance stream", "configs/motion_shapes/spatial.yaml", "motion_shapes", "chance10"),
    Row("temporal", "motion stream", "configs/motion_shapes/temporal.yaml", "motion_shapes", "acc90"),
    Row("conv_fusion", "convolutional fusion", "configs/motion_shapes/conv_fusion.yaml", "motion_shapes",
        "acc90"),
    Row("st_resnet_star", "ST-ResNet*", "configs/motion_shapes/st_resnet_star.yaml", "motion_shapes",
        "acc90"),
    Row("st_multiplier", "ST-Multiplier", "configs/motion_shapes/st_multiplier.yaml", "motion_shapes",
        "acc90"),
    Row("resnet_baseline", "ResNet (no temporal units)", "configs/dynamic_scenes/resnet_baseline.yaml",
        "dynamic_scenes", "ref"),
    Row("t_resnet", "T-ResNet", "configs/dynamic_scenes/t_resnet.yaml", "dynamic_scenes",
        "beats:resnet_baseline"),
)
LATE_FUSION = "late_fusion"
SETS = {"motion_shapes": "motion-shapes", "dynamic_scenes": "dynamic-scenes"}


def make_data(data_root: Path, dataset: str, workers: int) -> Path:
    """Render the default-size synthetic set (videos already written are kept)."""
    from deepvideo.data.synth import generate_dataset

    out = data_root / dataset
    generate_dataset(SETS[dataset], out, workers=workers)
    return out


def make_flow(data_dir: Path, flow_dir: Path) -> dict:
    """DIS flow of every video into ``flow_dir/<Class>/<stem>/flow.npz`` (resumable)."""
    from deepvideo.flow.extract import ExtractOptions, extract

    opts = ExtractOptions(method="dis", fmt="npz", bound=FLOW_BOUND)
    summary = extract([data_dir / "videos"], flow_dir, opts)
    if summary.failed:
        raise RuntimeError(f"flow extraction failed for {len(summary.failed)} videos, "
                           f"e.g. {summary.failed[0]}")
    return {"extracted": len(summary.done), "reused": len(summary.skipped), "seconds": summary.seconds}


def data_overrides(data_dir: Path, flow_dir: Path | None) -> list[str]:
    root = data_dir.resolve()
    out = [f"data.video_root={root / 'videos'}"]
    if flow_dir is not None:
        out.append(f"data.flow_root={flow_dir.resolve()}")
    for section, subset in (("train", "train"), ("test", "test")):
        out += [f"data.{section}.format=ucf101", f"data.{section}.root={root}",
                f"data.{section}.split=1", f"data.{section}.subset={subset}"]
    return out


def describe(cfg, model) -> tuple[str, str]:
    """``(preset and backbone, inputs)`` of a trained row, from the registry and the spec."""
    from deepvideo.models.registry import get_model_info

    info = get_model_info(cfg.model.name)
    spec = model.input_spec
    parts = []
    if "rgb" in spec.modalities:
        parts.append(f"RGB {spec.num_segments}x{spec.num_frames}")
    if "flow" in spec.modalities:
        parts.append(f"flow {spec.num_segments}x{spec.flow_stack}")
    size = f"{spec.crop_size}x{spec.crop_size} crop"
    if cfg.data.short_side:
        size += f" of {cfg.data.short_side}px frames"
    kwargs = ", ".join(f"{k}={v}" for k, v in cfg.model.kwargs.items() if k != "input_size")
    preset = f"{cfg.model.name}" + (f" ({kwargs})" if kwargs else "")
    return f"{preset}: {info.summary}", f"{' + '.join(parts)}, {size}"


def train_row(row: Row, data_dir: Path, flow_dir: Path | None, out: Path, quick: bool,
              extra: list[str] = ()) -> dict:
    """Train one recipe with the engine, test it on split 1; the row's metrics and scores."""
    from deepvideo.data.transforms import build_transforms
    from deepvideo.engine.build import build_dataset, build_model, load_index
    from deepvideo.engine.config import load_config
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.loop import train

    run_dir = out / row.name
    shutil.rmtree(run_dir, ignore_errors=True)
    overrides = [*data_overrides(data_dir, flow_dir), f"output_dir={run_dir}"]
    if quick:
        overrides += ["train.epochs=1", "train.max_iters_per_epoch=3", "eval.num_clips=1"]
    overrides += list(extra)
    cfg = load_config(ROOT / row.recipe, overrides)
    for entry in cfg.model.init_from:  # towers from this run's two-stream rows (runs/zoo/<row> in the recipe)
        entry["checkpoint"] = str(out / Path(entry["checkpoint"]).name)
    t0 = time.perf_counter()
    index = load_index(cfg, "train")
    model = build_model(cfg, cfg.model.num_classes or len(index.classes))
    dataset = build_dataset(cfg, "train", model.input_spec, train=True, index=index)
    if row.dataset == "motion_shapes":  # flips swap left/right and cw/ccw classes: train without them
        dataset.transform = build_transforms(model.input_spec, train=True, recipe=cfg.data.recipe,
                                             short_side=cfg.data.short_side, flip=False)
    run = train(cfg, model=model, train_dataset=dataset, class_names=list(index.classes))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test = evaluate_checkpoint(run.last_checkpoint, name=row.label)
    test_s = time.perf_counter() - t0
    backbone, inputs = describe(cfg, model)
    budget = (f"{run.epochs_completed} epochs x {len(index)} clips, batch {cfg.train.batch_size}; "
              f"test {cfg.eval.num_clips} clips x {cfg.eval.test_crops} crop")
    return {"row": row, "recipe": row.recipe, "preset": cfg.model.name, "backbone": backbone,
            "inputs": inputs,
            "budget": budget, "clip_acc": float(test.metrics["clip_hit@1"]),
            "video_acc": float(test.metrics["video_hit@1"]), "chance": 1.0 / len(index.classes),
            "scores": test.scores, "train_s": train_s, "test_s": test_s, "steps": run.steps}


def judge(name: str, goal: str, acc: float, chance: float, results: dict) -> tuple[str, bool | None]:
    """The goal in words and whether it is met (``None``: reference row or peer not run)."""
    if goal == "chance10":
        return f"within 10 points of chance ({100 * chance:.0f}%)", abs(acc - chance) <= 0.10 + 1e-9
    if goal == "acc90":
        return ">= 90% video accuracy", acc >= 0.90 - 1e-9
    if goal.startswith("beats:") or goal.startswith("atleast:"):
        kind, peer = goal.split(":")
        peer_label = next((r.label for r in ROWS if r.name == peer), peer)
        text = f"{'>' if kind == 'beats' else '>='} {peer_label}"
        if peer not in results:
            return text, None
        peer_acc = results[peer]["video_acc"]
        met = acc > peer_acc if kind == "beats" else acc >= peer_acc - 1e-9
        return text + f" ({100 * peer_acc:.1f}%)", met
    return "reference (peer of T-ResNet)", None


def late_fusion(results: dict, out: Path) -> dict:
    """Average of the appearance and motion streams' softmax video scores (S&Z 2014, sec. 6)."""
    from deepvideo.engine.evaluate import write_evaluation
    from deepvideo.engine.fusion import fuse_sets

    fused = fuse_sets([results["spatial"]["scores"], results["temporal"]["scores"]], None, "softmax")
    metrics = write_evaluation(out / LATE_FUSION, fused, title="Late fusion (average)", name="late fusion")
    sp, tp = results["spatial"], results["temporal"]
    return {"preset": f"{sp['preset']} + {tp['preset']}",
            "backbone": "average of the two streams' softmax scores",
            "inputs": f"{sp['inputs']} | {tp['inputs']}", "budget": "the two streams' runs",
            "clip_acc": None, "video_acc": float(metrics["video_hit@1"]), "chance": sp["chance"],
            "recipe": f"{sp['recipe']} + {tp['recipe']}", "train_s": 0.0, "test_s": 0.0}


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget (smoke check); results not written")
    ap.add_argument("--only", action="append", choices=[r.name for r in ROWS], help="run only this row")
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "zoo_data", help="cache of videos and flow")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "zoo", help="training runs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override for every row run (tuning); results not written")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the table is for 2 cores)")
    args = ap.parse_args(argv)
    args.data, args.out = args.data.absolute(), args.out.absolute()  # before the chdir below

    import torch

    torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    t_start = time.perf_counter()
    rows = [r for r in ROWS if not args.only or r.name in args.only]
    timings = {}
    data_dirs, flow_dir = {}, None
    for ds in sorted({r.dataset for r in rows}):
        t = time.perf_counter()
        data_dirs[ds] = make_data(args.data, ds, workers=args.threads)
        timings[f"render {SETS[ds]}"] = time.perf_counter() - t
    need_flow = any(r.dataset == "motion_shapes" and r.name != "spatial" for r in rows)
    if need_flow:
        t = time.perf_counter()
        flow_dir = args.data / "motion_shapes_flow"
        info = make_flow(data_dirs["motion_shapes"], flow_dir)
        timings["DIS flow (motion-shapes)"] = time.perf_counter() - t
        print(f"flow: {info}", flush=True)

    results = {}
    for row in rows:
        print(f"== {row.name}: {row.recipe}", flush=True)
        results[row.name] = train_row(row, data_dirs[row.dataset], flow_dir if row.dataset == "motion_shapes"
                                      else None, args.out, args.quick, args.set)
        r = results[row.name]
        timings[f"train {row.name}"] = r["train_s"]
        timings[f"test {row.name}"] = r["test_s"]
        print(f"   video acc {pct(r['video_acc'])}%, clip acc {pct(r['clip_acc'])}% "
              f"(train {r['train_s']:.0f}s, test {r['test_s']:.0f}s)", flush=True)
    if "spatial" in results and "temporal" in results:
        results[LATE_FUSION] = late_fusion(results, args.out)
    wall = time.perf_counter() - t_start

    labels = {r.name: (r.label, r.goal) for r in ROWS}
    labels[LATE_FUSION] = ("late fusion (appearance + motion)", "atleast:temporal")
    order = [r.name for r in ROWS[:2]] + [LATE_FUSION] + [r.name for r in ROWS[2:]]
    table, met_all = [], True
    for name in order:
        if name not in results:
            continue
        r = results[name]
        label, goal = labels[name]
        goal_text, met = judge(name, goal, r["video_acc"], r["chance"], results)
        met_all &= met is not False
        r["met"] = met
        dataset = "dynamic-scenes" if name in ("t_resnet", "resnet_baseline") else "motion-shapes"
        table.append([label, dataset, r["preset"], r["backbone"], r["inputs"], r["budget"],
                      None if r["clip_acc"] is None else round(100 * r["clip_acc"], 1),
                      round(100 * r["video_acc"], 1), round(100 * r["chance"], 1), goal_text,
                      "-" if met is None else ("yes" if met else "NO"), round(r["train_s"] + r["test_s"], 1)])
    columns = ["model", "dataset", "preset", "backbone", "inputs", "budget", "clip acc %", "video acc %",
               "chance %", "goal", "met", "train+test s"]
    width = max(len(t[0]) for t in table)
    print(f"\n{'model':{width}}  {'dataset':14} {'clip':>6} {'video':>6} {'chance':>6}  met  goal")
    for t in table:
        clip = "-" if t[6] is None else f"{t[6]:.1f}"
        print(f"{t[0]:{width}}  {t[1]:14} {clip:>6} {t[7]:6.1f} {t[8]:6.1f}  {t[10]:3}  {t[9]}")
    print(f"wall time {wall:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in timings.items())})")

    summary = {"goals_met": bool(met_all), "wall_time_s": round(wall, 1), "threads": args.threads,
               **{f"{k} s": round(v, 1) for k, v in timings.items() if not k.startswith(("train ", "test "))}}
    if args.quick or args.only or args.set:
        dump = args.out / ("results_quick.json" if args.quick else "results_partial.json")
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_text(json.dumps({"columns": columns, "rows": table, "summary": summary}, indent=2) + "\n")
        print(f"partial/quick run: results in {dump} (benchmarks/results not touched)")
        return 0
    description = (
        "Acceptance table of the two-stream family (\"Models I\"): each model trained with the engine "
        "(`deepvideo.engine.loop.train`) on 2 CPU cores for the budget stated at the top of its recipe, "
        "with a CPU-sized preset (lighter backbone, smaller crops than the paper; the preset and inputs "
        "columns say which): the two streams from scratch, the fusion networks (conv fusion, ST-ResNet*, "
        "ST-Multiplier) initialized from those two streams' runs as in the papers (`model.init_from`) and "
        "fine-tuned end to end; then tested on split 1 with "
        "`deepvideo.engine.evaluate` (video accuracy: mean of the clip scores of a video). "
        "motion-shapes: the default synthetic set (300 videos of 32 frames at 112x112, 10 classes told "
        "apart only by motion; split 1 trains on 200, tests on 100), DIS flow stored once, no horizontal "
        "flips in training (a mirrored \"move left\" is a \"move right\"). Late fusion averages the "
        "appearance and motion streams' softmax video scores. dynamic-scenes: the default synthetic "
        "set (300 videos, 6 classes, half filmed by a moving camera), T-ResNet against the same ResNet "
        "with its temporal units removed. Goals: appearance within 10 points of chance; motion, conv "
        "fusion, ST-ResNet* and ST-Multiplier >= 90% video accuracy; late fusion >= motion; T-ResNet > "
        "ResNet. Recipes: `configs/motion_shapes/`, `configs/dynamic_scenes/`. "
        f"Wall time of the whole run (data cached): {wall:.0f} s."
    )
    write_result("zoo_motion_shapes", title="CPU model zoo: two-stream family on motion-shapes, T-ResNet on "
                 "dynamic-scenes", command=COMMAND, description=description, columns=columns, rows=table,
                 summary=summary)
    print("written benchmarks/results/zoo_motion_shapes.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
