"""Dynamic images with IDT: the dynamic-image network, IDT + FV + SVM and their late fusion on dynamic-scenes.

Bilen et al. 2016 (Dynamic Image Networks for Action Recognition) report their dynamic-image networks
also combined with improved dense trajectories by late fusion. This sample does that on a CPU, on the
videos of ``benchmarks/bench_idt_fusion.py``'s dynamic-scenes set (its functions render the data,
extract IDT, encode them and fuse, unchanged): ``dynamic-scenes`` rendered by ``deepvideo demo``'s
recipe (``configs/demo/demo.yaml`` with 50 videos per class), test on split 1 (120 videos, 180
train), validation on the separately rendered second set (seed 1, its split-1 train list: 60 videos).
The networks (``configs/dynamic_idt/``): the dynamic-image network ``dynamic_image_small`` (16 RGB
frames of 112x112 -> 3 dynamic images by approximate rank pooling of 8-frame windows, stride 4, a
1/4-width ResNet-18 from scratch, scores averaged over the windows) and the dynamic-flow network
``dynamic_flow_small`` (the same on 16 stored DIS flow fields), each trained 24 epochs on the
training videos and tested on 5 clips per video. IDT + FV + SVM: improved trajectories (Farnebäck,
camera motion removed), per type PCA to half the dimensions and a 64-component diagonal GMM fitted
on up to 64,000 descriptors of the training videos (the papers: 256 on 256,000), Fisher vectors,
linear one-vs-rest SVMs (C = 100). Fusion (``deepvideo fuse --l2 --val``): the average of the
L2-normalised scores (networks: softmax; IDT: SVM scores) with the weights (first model 1, the others
from 0, 0.25, 0.5, 1, 2, 4) best on validation, never chosen on test. Accuracy on the test videos and
on the motion-defined classes ``Flicker`` and ``Ripples`` (the generic random texture under a
brightness change or refraction: the class lies in how the texture changes).

Resumable: the data, the trained networks (a run with test and validation scores is kept), the IDT
features and the encoder in ``--work`` are reused; every step's wall seconds are kept in
``WORK/timings.json``.

    python benchmarks/bench_dynamic_idt.py [--work /tmp/dynamic_idt] [--workers 1] [--threads 1] [--no-flow]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_idt_fusion import (  # noqa: E402
    SETS,
    accuracies,
    extract_idt,
    fusion_inputs,
    idt_scores,
    recipe,
    render,
    stream_scores,
)
from common import ROOT, write_result  # noqa: E402
from deepvideo.io.atomic import atomic_write_json  # noqa: E402

RECIPES = ROOT / "configs" / "dynamic_idt"
SET = SETS["dynamic_scenes"]
NETS = {"dynamic_image": "dynamic_image.yaml", "dynamic_flow": "dynamic_flow.yaml"}
COMBOS = {  # row label -> models fused (the first one's weight fixed at 1)
    "dynamic-image network (RGB)": ["dynamic_image"],
    "dynamic-flow network": ["dynamic_flow"],
    "IDT + FV + SVM": ["idt"],
    "dynamic image + IDT": ["dynamic_image", "idt"],
    "dynamic image + dynamic flow": ["dynamic_image", "dynamic_flow"],
    "dynamic image + dynamic flow + IDT": ["dynamic_image", "dynamic_flow", "idt"],
}
COLUMNS = ["method", "test %", "motion classes (Flicker, Ripples) %", "weights (val acc %)"]


class Steps:
    """Named steps run once: their wall seconds kept in a JSON file, a step already there skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, name: str, fn, done: bool = False) -> None:
        if name in self.seconds or done:
            return
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        fn()
        self.seconds[name] = round(time.perf_counter() - start, 1)
        atomic_write_json(self.path, self.seconds)


def train_net(demo: Path, net: str, overrides: list[str]) -> None:
    """Train ``net``'s recipe into ``demo/net`` and write its test and validation scores."""
    from deepvideo.engine.config import load_config
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.loop import train

    cfg = load_config(RECIPES / NETS[net], [*overrides, f"output_dir={demo / net}"])
    last = train(cfg, progress=True).last_checkpoint
    evaluate_checkpoint(last, name=net)
    evaluate_checkpoint(last, subset="val", name=f"{net} (validation)")


def prepare(work: Path, steps: Steps, nets: list[str], workers: int) -> tuple[dict, dict]:
    """Data, the trained networks' scores and the IDT + FV + SVM scores, each
    ``{"test": ScoreSet, "val": ScoreSet}``; IDT extraction and encoding seconds."""
    from deepvideo.engine.demo import data_overrides

    demo, rec = work / "demo", recipe(SET["changes"])
    steps.run("synthesize videos + optical flow", lambda: render(demo, rec))
    overrides = data_overrides(demo / "data" / "main", demo / "flow", int(rec["split"]),
                               demo / "data" / "moving_camera_test", rec["moving_camera_test"]["subset"],
                               video_root=demo / "data")
    for net in nets:
        done = all((demo / net / sub / "scores.npz").is_file() for sub in ("test", "test-val"))
        steps.run(f"train + test {net}", lambda net=net: train_net(demo, net, overrides), done)
    models = {n: {sub: stream_scores(demo, n, sub) for sub in ("test", "val")} for n in nets}
    print("== IDT of the main and the validation set", flush=True)
    ext = extract_idt(demo, work / "idt", workers)
    print("== PCA + GMM + Fisher vectors + SVM", flush=True)
    models["idt"], encode_s = idt_scores(demo, work / "idt", SET["encoder"])
    return models, {"idt_s": round(ext["seconds"]), "idt_videos": ext["videos"],
                    "encode_svm_s": round(encode_s)}


def fused_rows(models: dict) -> tuple[list[list], dict]:
    """One row per combination of :data:`COMBOS` whose models were run; accuracies by label."""
    from deepvideo.features.late_fusion import choose_weights, l2_average

    idt = models["idt"]
    ref = {sub: idt[sub].video_ids for sub in ("test", "val")}
    labels = {sub: idt[sub].labels for sub in ("test", "val")}
    rows, accs = [], {}
    for label, names in COMBOS.items():
        if not all(n in models for n in names):
            continue
        val = fusion_inputs([models[n]["val"] for n in names], ref["val"])
        if len(names) > 1:
            w, val_acc = choose_weights(val, labels["val"])
        else:
            w, val_acc = [1.0], float((val[0].argmax(1) == labels["val"]).mean())
        test = l2_average(fusion_inputs([models[n]["test"] for n in names], ref["test"]), w)
        acc, motion_acc = accuracies(test.argmax(1), labels["test"], idt["test"].class_names,
                                     SET["motion_classes"])
        accs[label] = {"test": acc, "motion_classes": motion_acc, "val": val_acc, "weights": w}
        shown = ":".join(f"{x:g}" for x in w) if len(w) > 1 else "-"
        rows.append([label, f"{100 * acc:.1f}", f"{100 * motion_acc:.1f}", f"{shown} ({100 * val_acc:.1f})"])
    return rows, accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/dynamic_idt"))
    parser.add_argument("--workers", type=int, default=1, help="processes extracting IDT")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training the networks")
    parser.add_argument("--no-flow", action="store_true", help="leave out the dynamic-flow network")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = ["dynamic_image"] if args.no_flow else list(NETS)
    steps = Steps(args.work / "timings.json")
    models, budget = prepare(args.work, steps, nets, args.workers)
    rows, accs = fused_rows(models)
    print("\n".join(" | ".join(r) for r in [COLUMNS, *rows]), flush=True)
    budget = {**{f"{k} (wall s)": v for k, v in steps.seconds.items()},
              "IDT, summed over the videos (s)": budget["idt_s"], "IDT videos": budget["idt_videos"],
              "PCA + GMM + FV + SVM (s)": budget["encode_svm_s"]}
    spent = "; ".join(f"{k} {v}" for k, v in budget.items())
    alone = max(accs["IDT + FV + SVM"]["test"], accs["dynamic-image network (RGB)"]["test"])
    summary = {"dynamic image + IDT >= each alone on test": accs["dynamic image + IDT"]["test"] >= alone,
               "seconds in all": round(sum(steps.seconds.values()) + budget["IDT, summed over the videos (s)"]
                                       + budget["PCA + GMM + FV + SVM (s)"])}
    write_result(
        "dynamic_idt", title="Dynamic images + IDT on dynamic-scenes",
        command="python benchmarks/bench_dynamic_idt.py" + (" --no-flow" if args.no_flow else ""),
        description=__doc__.split("\n\n")[1] + "\n\n" + __doc__.split("\n\n")[2] +
        f"\n\nBudget of this run (2 cores shared with other jobs; IDT {args.workers} process(es)): {spent}.",
        columns=COLUMNS, rows=rows, summary=summary)


if __name__ == "__main__":
    main()
