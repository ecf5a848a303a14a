"""CPU learning check of the "Models III" families on synthetic motion, trained with the engine.

Acceptance of issue 18 for the new families: on ``motion-shapes`` (split 1; 32 frames of 112x112,
ten classes told apart only by motion, chance 10%) each family, trained from scratch on 2 CPU cores
for the budget stated at the top of its recipe (``configs/models3/*.yaml``), reaches a video
accuracy at least 20 points above chance (>= 30%). The convolutional rows use the default size (300
videos: 200 train / 100 test); the transformers and TVN-1 need more clips to learn motion rather than
memorise appearance and use the set rendered with 120 videos per class (``motion_shapes_x4``: 1200
videos, 800 train / 400 test; the same generator and seed, so its first 30 videos per class are the
default set's):

- ViViT Model 1 (joint space-time attention), Model 3 (factorised self-attention) and Model 4
  (factorised dot-product attention) (Arnab et al. 2021): ``vivit_joint_small``,
  ``vivit_fsa_small``, ``vivit_fdp_small``;
- TVN-1 (Piergiovanni et al. 2019), ``tvn_1_small``;
- the dynamic-image network (Bilen et al. 2016), ``dynamic_image_small``;
- the AssembleNet-50 graph (Ryoo et al. 2020), ``assemblenet_50_small`` (RGB + stored DIS flow).

ViViT and TVN-1 stay at chance on motion-shapes within a CPU budget (their recipes say why), so they
also have rows (``*_ds``) on ``dynamic-scenes`` (split 1, default size: 300 videos, 180 train / 120
test, six dynamic-texture classes, half filmed by a moving camera, chance 1/6), with the same goal
(>= 20 points above chance, i.e. >= 36.7%). Its classes also differ in the spatial structure of a
single frame, so those rows check that the family learns from video on a CPU budget, not that it
models motion.

Steps as ``benchmarks/bench_motion_shapes.py`` (whose data, flow and training helpers this uses):
render the set into ``--data`` and extract DIS flow once (both kept between runs), train each
recipe with the engine (without horizontal flips on motion-shapes), test on split 1 (video accuracy
= mean of the clip scores of a video). Writes ``benchmarks/results/zoo_models3.json`` (``--only``
replaces those rows and keeps the others; ``render_docs.py`` puts it in ``docs/model_zoo.md`` and
``docs/benchmarks.md``).

    .venv/bin/python benchmarks/bench_models3.py              # every row
    .venv/bin/python benchmarks/bench_models3.py --quick      # 3 iterations each, nothing written
    .venv/bin/python benchmarks/bench_models3.py --only tvn_1   # that row only, merged into the file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_motion_shapes import Row, make_data, make_flow, pct, train_row  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

COMMAND = "python benchmarks/bench_models3.py"
MARGIN = 0.20  # points above chance every row must reach
ROWS = (
    Row("vivit_joint", "ViViT Model 1 (joint space-time attention)", "configs/models3/vivit_joint.yaml",
        "motion_shapes", "margin"),
    Row("vivit_fsa", "ViViT Model 3 (factorised self-attention)", "configs/models3/vivit_fsa.yaml",
        "motion_shapes", "margin"),
    Row("vivit_fdp", "ViViT Model 4 (factorised dot-product)", "configs/models3/vivit_fdp.yaml",
        "motion_shapes", "margin"),
    Row("tvn_1", "TVN-1", "configs/models3/tvn_1.yaml", "motion_shapes", "margin"),
    Row("dynamic_image", "dynamic-image network", "configs/models3/dynamic_image.yaml", "motion_shapes",
        "margin"),
    Row("assemblenet", "AssembleNet-50 graph", "configs/models3/assemblenet.yaml", "motion_shapes", "margin"),
    Row("vivit_joint_ds", "ViViT Model 1 (joint space-time attention), dynamic-scenes",
        "configs/models3/vivit_joint_ds.yaml", "dynamic_scenes", "margin"),
    Row("vivit_fsa_ds", "ViViT Model 3 (factorised self-attention), dynamic-scenes",
        "configs/models3/vivit_fsa_ds.yaml", "dynamic_scenes", "margin"),
    Row("vivit_fdp_ds", "ViViT Model 4 (factorised dot-product), dynamic-scenes",
        "configs/models3/vivit_fdp_ds.yaml", "dynamic_scenes", "margin"),
    Row("tvn_1_ds", "TVN-1, dynamic-scenes", "configs/models3/tvn_1_ds.yaml", "dynamic_scenes", "margin"),
)
# rendered synthetic sets: (generator, videos per class, label of split 1)
SETS = {"motion_shapes": ("motion-shapes", 30, "300 videos: 200 train / 100 test"),
        "motion_shapes_x4": ("motion-shapes", 120, "1200 videos: 800 train / 400 test"),
        "dynamic_scenes": ("dynamic-scenes", 50, "300 videos: 180 train / 120 test")}
ROW_SET = {**dict.fromkeys(("vivit_joint", "vivit_fsa", "vivit_fdp", "tvn_1"), "motion_shapes_x4"),
           **{r.name: r.dataset for r in ROWS if r.dataset == "dynamic_scenes"}}
COLUMNS = ["model", "preset", "backbone", "inputs", "data", "budget", "clip acc %", "video acc %", "chance %",
           "goal", "met", "train+test s"]


def set_label(name: str) -> str:
    return f"{name.replace('_', '-')} ({SETS[name][2]})"


def table_row(r: dict) -> list:
    met = r["video_acc"] >= r["chance"] + MARGIN - 1e-9
    goal = f">= chance + {100 * MARGIN:.0f} points ({100 * (r['chance'] + MARGIN):.0f}%)"
    data = set_label(ROW_SET.get(r["row"].name, "motion_shapes"))
    return [r["row"].label, r["preset"], r["backbone"], r["inputs"], data, r["budget"],
            round(100 * r["clip_acc"], 1), round(100 * r["video_acc"], 1), round(100 * r["chance"], 1), goal,
            "yes" if met else "NO", round(r["train_s"] + r["test_s"], 1)]


def make_sets(data_root: Path, names: set[str], workers: int) -> dict[str, Path]:
    """Render the synthetic sets the rows need (videos already written are kept)."""
    from deepvideo.data.synth import generate_dataset

    for name in sorted(names):
        generator, per_class, _ = SETS[name]
        generate_dataset(generator, data_root / name, videos_per_class=per_class, workers=workers)
    return {name: data_root / name for name in names}


def merged(table: list[list]) -> list[list]:
    """``table`` with the rows of the last written result that this run did not retrain, in ROWS order
    (rows of a file without the data column get the default set's label)."""
    path = RESULTS / "zoo_models3.json"
    old = json.loads(path.read_text()) if path.exists() else {"columns": COLUMNS, "rows": []}
    by_label = {}
    for values in old["rows"]:
        row = dict(zip(old["columns"], values, strict=True))
        row.setdefault("data", set_label("motion_shapes"))
        by_label[row["model"]] = [row[c] for c in COLUMNS]
    by_label.update({t[0]: t for t in table})
    return [by_label[r.label] for r in ROWS if r.label in by_label]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget (smoke check); results not written")
    ap.add_argument("--only", action="append", choices=[r.name for r in ROWS], help="run only this row")
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "zoo_data", help="cache of videos and flow")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "models3", help="training runs")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (at most the 2 cores; 1 is faster "
                    "on a machine shared with other jobs)")
    args = ap.parse_args(argv)
    args.data, args.out = args.data.absolute(), args.out.absolute()

    import torch

    torch.set_num_threads(args.threads)
    os.chdir(ROOT)
    t_start = time.perf_counter()
    rows = [r for r in ROWS if not args.only or r.name in args.only]
    sets, flow_dir = {}, None
    if any(r.name not in ROW_SET for r in rows):  # rows on the default motion-shapes set (and its flow)
        sets["motion_shapes"] = make_data(args.data, "motion_shapes", workers=args.threads)
        flow_dir = args.data / "motion_shapes_flow"
        print(f"flow: {make_flow(sets['motion_shapes'], flow_dir)}", flush=True)
    sets.update(make_sets(args.data, {ROW_SET[r.name] for r in rows if r.name in ROW_SET}, args.threads))
    table = []
    for row in rows:
        print(f"== {row.name}: {row.recipe}", flush=True)
        flow = flow_dir if row.dataset == "motion_shapes" else None
        r = train_row(row, sets[ROW_SET.get(row.name, "motion_shapes")], flow, args.out, args.quick)
        table.append(table_row(r))
        print(f"   video acc {pct(r['video_acc'])}%, clip acc {pct(r['clip_acc'])}% "
              f"(train {r['train_s']:.0f}s, test {r['test_s']:.0f}s)", flush=True)
    wall = time.perf_counter() - t_start
    for t in table:
        print(f"{t[0]:42} video {t[7]:5.1f}%  chance {t[8]:.0f}%  met {t[10]}  ({t[11]:.0f}s)")
    if args.quick:
        print("quick run: benchmarks/results not touched")
        return 0
    table = merged(table)
    description = (
        "Learning check of the Models III families (issue 18): each trained from scratch with the engine "
        "on a 2-core CPU (torch threads: the summary's for the last run's rows; else 1 for the ViViT and "
        "TVN-1 rows on both sets, 2 for the dynamic-image and AssembleNet rows) for the "
        "budget in its recipe (`configs/models3/`), CPU-sized presets, on "
        "motion-shapes (32 frames of 112x112, 10 classes told apart only by motion; the set of each row in "
        "its data column: the default 300 videos or the 1200 of the same generator; split 1 trains on two "
        "thirds, tests on one third; no horizontal flips in training) or, for the rows marked "
        "dynamic-scenes (ViViT and TVN-1, which stay at chance on motion-shapes in a CPU budget), on "
        "dynamic-scenes (32 frames of 112x112, 6 dynamic-texture classes, half filmed by a moving camera; "
        "the classes also differ in the spatial structure of a single frame, so these rows show that the "
        "family learns, not that it models motion), tested on split 1 with "
        "`deepvideo.engine.evaluate` (video accuracy: mean of the clip scores of a video). "
        f"Goal: video accuracy >= chance + {100 * MARGIN:.0f} points. One run per row; `train+test s` is "
        "wall time on a machine shared with other jobs."
    )
    title = "CPU learning check: ViViT, TVN-1, dynamic images, AssembleNet on motion-shapes, dynamic-scenes"
    write_result("zoo_models3", title=title, command=COMMAND, description=description, columns=COLUMNS,
                 rows=table,
                 summary={"goals_met": all(t[10] == "yes" for t in table), "threads": args.threads,
                          "last_run_rows": [r.name for r in rows], "last_run_wall_time_s": round(wall, 1)})
    print("written benchmarks/results/zoo_models3.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
