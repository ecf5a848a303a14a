"""IDT + Fisher vectors against and with the two-stream ConvNets on motion-shapes and dynamic-scenes.

Per set, the two streams are trained by ``deepvideo demo``'s recipe (``configs/demo/``: the
single-frame appearance CNN and the motion CNN on 10 stacked DIS flow fields, CPU-sized ResNet-18s
at 1/4 width, 112x112 frames): motion-shapes with ``configs/demo/demo.yaml`` as it is (30 videos
per class, every other one filmed by a moving camera), dynamic-scenes with the same recipe on
``dynamic-scenes`` (50 videos per class, half moving camera; random flips on, the classes are
mirror-invariant; the motion stream 30 epochs instead of 100, for the CPU budget; no conv fusion).
Test: split 1 (100 / 120 videos). Validation: the demo's second set, rendered with another seed
(seed 1, its split-1 train list: 100 motion-shapes videos, all filmed by a moving camera; 60
dynamic-scenes videos, half moving camera); the fusion weights are chosen on it, never on the test
videos. IDT: improved trajectories (``deepvideo features idt``, Farnebäck, camera motion removed),
per type PCA to half the dimensions and a diagonal GMM fitted on descriptors of the training
videos (the papers: 256 components on 256,000 descriptors; here 64 on up to 64,000, for the CPU
budget), Fisher vectors (power 0.5, L2), linear one-vs-rest SVMs (C = 100) on the training videos.
Fusion ("+ IDT", ``deepvideo fuse --l2 --val``): the average of the L2-normalised scores
(ConvNets: softmax; IDT: SVM scores) with the weights (first model 1, the others from 0, 0.25,
0.5, 1, 2, 4) that are best on validation. "two-stream" is the appearance + motion fusion chosen
the same way.

Motion-defined classes, read off the renderers (``deepvideo.data.synth``): every motion-shapes
class (random shape, colours and background per video; a class is a motion); on dynamic-scenes
``Flicker`` and ``Ripples``, whose frames are the generic random texture
(``textured_background``, also the backdrop of the particles and the fan) under a smooth
brightness change or refraction, so the class lies in how that texture changes; the other four
draw a class-specific picture in every frame (streaked water noise, bright falling dots, a
bladed fan, a sky gradient with clouds).

Resumable: the demo runs, features and encoders in ``--work`` are reused (a demo folder with
``results.json`` is not retrained; ``make demo`` output can be copied to
``WORK/motion_shapes/demo``).

    python benchmarks/bench_idt_fusion.py [--work /tmp/idt_fusion] [--workers 2] [--sets motion_shapes]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_result  # noqa: E402
from deepvideo.io.atomic import atomic_write_json  # noqa: E402

DEMO = ROOT / "configs" / "demo"
# GMM components and descriptors sampled to fit PCA + GMM, smaller than the papers' 256 on 256,000 for
# a CPU budget (``--components 256 --samples 256000`` runs the papers' sizes)
ENCODER = {"components": 64, "samples": 64_000}
SETS = {
    "motion_shapes": {"name": "motion-shapes", "changes": {}, "motion_classes": None, "encoder": ENCODER},
    "dynamic_scenes": {
        "name": "dynamic-scenes",
        "changes": {"synth": {"set": "dynamic-scenes", "videos_per_class": 50, "camera": "static"},
                    "val_camera": "static", "train_flip": True, "overrides": {"motion": ["train.epochs=30"]}},
        "motion_classes": ("Flicker", "Ripples"),
        "encoder": ENCODER,
    },
}
STREAMS = ("appearance", "motion")


def recipe(changes: dict) -> dict:
    """``configs/demo/demo.yaml`` with ``changes`` merged into its sections."""
    rec = yaml.safe_load((DEMO / "demo.yaml").read_text())
    for key, value in changes.items():
        rec[key] = {**rec.get(key, {}), **value} if isinstance(value, dict) else value
    return rec


def render(demo: Path, rec: dict) -> None:
    """Main set, validation set (the demo's second set: seed 1, its split-1 train list) and DIS flow."""
    from deepvideo.engine.demo import make_data, make_flow

    synth, second = rec["synth"], rec["moving_camera_test"]
    make_data(demo / "data" / "main", synth, True)
    make_data(demo / "data" / "moving_camera_test", {**synth, "seed": second["seed"], "videos_per_class":
              second["videos_per_class"], "camera": rec.get("val_camera", "moving")}, True)
    make_flow(demo / "data", demo / "flow", rec["flow"]["method"], float(rec["flow"]["bound"]), True)


def train_streams(work: Path, changes: dict) -> dict:
    """The two streams in ``work/demo`` as ``deepvideo demo`` trains and tests them (kept if their
    validation scores exist); wall and CPU seconds per step."""
    from deepvideo.engine.config import load_config
    from deepvideo.engine.demo import data_overrides
    from deepvideo.engine.evaluate import evaluate_checkpoint
    from deepvideo.engine.loop import train

    demo, rec = work / "demo", recipe(changes)
    if (demo / "results.json").is_file():  # a `deepvideo demo` output folder
        return json.loads((demo / "results.json").read_text())
    path = demo / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {"timings_s": {}, "cpu_s": {}}

    def step(name, fn):
        if name in timings["timings_s"]:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        timings["timings_s"][name] = time.perf_counter() - wall
        timings["cpu_s"][name] = time.process_time() - cpu
        atomic_write_json(path, timings)

    step("synthesize videos + optical flow", lambda: render(demo, rec))
    main_set, val_set = demo / "data" / "main", demo / "data" / "moving_camera_test"
    overrides = data_overrides(main_set, demo / "flow", int(rec["split"]), val_set,
                               rec["moving_camera_test"]["subset"], video_root=demo / "data")
    overrides += [] if rec["train_flip"] else ["data.flip=false"]
    for stream in STREAMS:
        def run(stream=stream):
            cfg = load_config(DEMO / rec["streams"][stream], [*overrides, f"name=demo_{stream}",
                                                               f"output_dir={demo / stream}",
                                                               *rec.get("overrides", {}).get(stream, [])])
            last = train(cfg, progress=True).last_checkpoint
            evaluate_checkpoint(last, name=stream)
            evaluate_checkpoint(last, subset="val", name=f"{stream} (validation)")
        step(f"train + test {stream}", run)
    return timings


def extract_idt(demo: Path, out: Path, workers: int) -> dict:
    """IDT of the main and the validation set (resumable); seconds summed over the videos."""
    from deepvideo.features.extract import FeatureOptions, extract_features
    from deepvideo.flow.extract import read_manifests

    seconds, count = 0.0, 0
    for part in ("main", "moving_camera_test"):
        summary = extract_features([demo / "data" / part / "videos"], out / part, FeatureOptions("idt"),
                                   workers=workers, progress=False)
        if summary.failed:
            raise SystemExit(f"{len(summary.failed)} videos failed: {summary.failed[:3]}")
        records = [r for r in read_manifests(out / part).values() if r.get("status") == "ok"]
        seconds += sum(r["seconds"] for r in records)
        count += len(records)
    return {"videos": count, "seconds": seconds}


def idt_scores(demo: Path, feats: Path, settings: dict) -> tuple[dict, float]:
    """IDT + FV + SVM scores ``{"test": ScoreSet, "val": ScoreSet}`` (ids ``Class/video.mp4``) and the
    seconds spent fitting the encoder (recorded when it was fitted), encoding and training the SVMs."""
    from deepvideo.engine.fusion import ScoreSet, save_scores
    from deepvideo.features import videos
    from deepvideo.features.encoding import Encoder, fit_encoder, train_svm
    from deepvideo.features.extract import feature_files

    start = time.perf_counter()
    ann = {p: demo / "data" / p / "annotations" for p in ("main", "moving_camera_test")}
    files = {p: feature_files(feats / p) for p in ann}
    lists = {"train": ("main", "trainlist01.txt"), "test": ("main", "testlist01.txt"),
             "val": ("moving_camera_test", "trainlist01.txt")}
    ids = {k: videos.read_id_list(ann[p] / name) for k, (p, name) in lists.items()}
    classes = [line.split()[-1] for line in (ann["main"] / "classInd.txt").read_text().splitlines() if line]
    enc_path, fit_time = feats / "encoder.npz", feats / "encoder_fit_s.json"
    if enc_path.is_file() and fit_time.is_file():
        encoder, earlier = Encoder.load(enc_path), json.loads(fit_time.read_text())["seconds"]
    else:
        encoder = fit_encoder(videos.sample_descriptors({v: files["main"][v] for v in ids["train"]},
                                                        total=settings["samples"]),
                              components=settings["components"])
        encoder.save(enc_path)
        earlier = time.perf_counter() - start
        atomic_write_json(fit_time, {"seconds": earlier, **settings})
    fitted = {"components": 256, "samples": 256_000, **json.loads(fit_time.read_text())}  # older: defaults
    if fitted["components"] != settings["components"] or fitted["samples"] != settings["samples"]:
        raise SystemExit(f"{enc_path} was fitted with {fitted}, not {settings}; delete {feats}/encoder* "
                         f"and {feats}/vectors_*")
    vectors = {}
    for k, (p, _) in lists.items():
        cached, timing = feats / f"vectors_{k}.npz", feats / f"vectors_{k}_s.json"
        if cached.is_file() and timing.is_file():
            vid, x, _ = videos.load_vectors(cached)
            earlier += json.loads(timing.read_text())["seconds"]
        else:
            t0 = time.perf_counter()
            vid, x = videos.encode_files({v: files[p][v] for v in ids[k]}, encoder)
            videos.save_vectors(cached, vid, x, {"encoder": str(enc_path)})
            seconds = time.perf_counter() - t0
            atomic_write_json(timing, {"seconds": seconds})
            earlier += seconds
        vectors[k] = (vid, x, np.array([classes.index(videos.class_of(v)) for v in vid]))
    start = time.perf_counter()  # the encoder fit and the vectors are counted above
    svm = train_svm(vectors["train"][1], vectors["train"][2])
    out = {}
    for k in ("test", "val"):
        vid, x, y = vectors[k]
        dec = np.full((len(vid), len(classes)), -1e3, np.float32)
        dec[:, svm.classes_] = svm.decision_function(x)
        meta = {"model": "IDT+FV+SVM", "scores": "svm", "subset": k}
        out[k] = ScoreSet(vid, y, dec[:, None], dec, classes, "mean", meta)
        save_scores(feats / f"svm_{k}.npz", out[k])
    return out, earlier + time.perf_counter() - start


def stream_scores(demo: Path, stream: str, subset: str):
    """A demo stream's saved scores with ids made relative to the set's ``videos`` folder."""
    from deepvideo.engine.fusion import load_scores

    s = load_scores(demo / stream / ("test" if subset == "test" else "test-val") / "scores.npz")
    s.video_ids = [v.split("/videos/", 1)[1] for v in s.video_ids]
    return s


def fusion_inputs(sets: list, ids: list[str]) -> list[np.ndarray]:
    """Each model's scores in the order of ``ids``, as ``fuse --l2`` fuses them (ConvNets: softmax)."""
    from deepvideo.engine.metrics import softmax

    out = []
    for s in sets:
        row = {v: i for i, v in enumerate(s.video_ids)}
        if set(row) != set(ids):
            raise SystemExit(f"{s.meta.get('model')}: scores for other videos than the reference")
        x = s.scores[[row[v] for v in ids]]
        out.append(x if s.meta.get("scores") == "svm" else softmax(x))
    return out


def accuracies(pred: np.ndarray, labels: np.ndarray, classes: list[str], motion: tuple | None) -> tuple:
    """(overall accuracy, accuracy on the videos of the motion-defined classes)."""
    hit = pred == labels
    keep = np.isin(labels, [classes.index(c) for c in motion]) if motion else np.ones_like(hit)
    return float(hit.mean()), float(hit[keep].mean())


def evaluate_set(key: str, work: Path, workers: int, settings: dict) -> tuple[list, dict]:
    """Rows of one set: each model and the validation-weighted fusions."""
    from deepvideo.features.late_fusion import choose_weights, l2_average

    spec = SETS[key]
    demo_info = train_streams(work, spec["changes"])
    demo = work / "demo"
    ext = extract_idt(demo, work / "idt", workers)
    idt, t_encode = idt_scores(demo, work / "idt", settings)
    models = {s: {sub: stream_scores(demo, s, sub) for sub in ("test", "val")} for s in STREAMS}
    models["idt"] = idt
    ref = {sub: idt[sub].video_ids for sub in ("test", "val")}
    labels = {sub: idt[sub].labels for sub in ("test", "val")}
    classes = idt["test"].class_names
    combos = {"appearance CNN (single frame)": ["appearance"], "motion CNN (10 flow fields)": ["motion"],
              "IDT + FV + SVM": ["idt"], "two-stream (appearance + motion)": ["appearance", "motion"],
              "two-stream + IDT": ["appearance", "motion", "idt"]}
    rows, accs = [], {}
    for label, names in combos.items():
        val = fusion_inputs([models[n]["val"] for n in names], ref["val"])
        w, val_acc = choose_weights(val, labels["val"]) if len(names) > 1 else ([1.0], float(
            (val[0].argmax(1) == labels["val"]).mean()))
        test = l2_average(fusion_inputs([models[n]["test"] for n in names], ref["test"]), w)
        acc, motion_acc = accuracies(test.argmax(1), labels["test"], classes, spec["motion_classes"])
        accs[label] = (acc, motion_acc)
        rows.append([label, f"{100 * acc:.1f}", f"{100 * motion_acc:.1f}",
                     (":".join(f"{x:g}" for x in w) if len(w) > 1 else "-") + f" ({100 * val_acc:.1f})"])
    steps = [k for k in demo_info["timings_s"] if "conv" not in k]  # the conv fusion net is not used here
    budget = {"streams_wall_s": round(sum(demo_info["timings_s"][k] for k in steps)),
              "idt_s": round(ext["seconds"]), "idt_videos": ext["videos"], "encode_svm_s": round(t_encode),
              "test_videos": len(ref["test"]), "val_videos": len(ref["val"]), **settings}
    return rows, {"accuracy": accs, "budget": budget}


def verdicts(name: str, accs: dict) -> dict:
    """The two goals on one set: IDT + FV > the appearance CNN on the motion-defined classes, and
    two-stream + IDT >= two-stream overall."""
    idt, app = accs["IDT + FV + SVM"][1], accs["appearance CNN (single frame)"][1]
    fused, two = accs["two-stream + IDT"][0], accs["two-stream (appearance + motion)"][0]
    return {f"{name}: IDT+FV > appearance CNN on motion classes": idt > app,
            f"{name}: two-stream + IDT >= two-stream": fused >= two}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/idt_fusion"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training the streams")
    parser.add_argument("--samples", type=int, default=None, help="descriptors to fit PCA + GMM on "
                        "(default per set: SETS[...]['encoder'])")
    parser.add_argument("--components", type=int, default=None, help="GMM components (the papers: 256)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, summary, budget, columns = [], {}, {}, ["method"]
    for key in args.sets:
        settings = {**SETS[key]["encoder"], **{k: v for k, v in (("components", args.components),
                                                                  ("samples", args.samples)) if v}}
        r, info = evaluate_set(key, args.work / key, args.workers, settings)
        print("\n".join(" | ".join(map(str, x)) for x in r), flush=True)
        rows = [[x[0]] for x in r] if not rows else rows
        for row, x in zip(rows, r, strict=True):
            row += x[1:]
        name, motion = SETS[key]["name"], SETS[key]["motion_classes"]
        which = f" ({', '.join(motion)})" if motion else " (all)"
        columns += [f"{name} test %", f"{name} motion classes{which} %", f"{name} weights (val acc %)"]
        summary.update(verdicts(name, info["accuracy"]))
        budget[key] = info["budget"]
    met = all(summary.values())
    budgets = "; ".join(
        f"{SETS[k]['name']}: data, flow and the two streams {v['streams_wall_s']} s, IDT "
        f"{v['idt_s']} s for {v['idt_videos']} videos (one process each), PCA + GMM + "
        f"FV + SVM {v['encode_svm_s']} s (GMM of {v['components']} components on up to {v['samples']:,} "
        f"descriptors)" for k, v in budget.items())
    write_result(
        "idt_fusion", title="IDT + FV and two-stream + IDT on motion-shapes and dynamic-scenes",
        command="python benchmarks/bench_idt_fusion.py" + "".join(
            f" --{k} {v}" for k, v in (("components", args.components), ("samples", args.samples)) if v),
        description=__doc__.split("\n\n")[1] + "\n\n" + __doc__.split("\n\n")[2] +
        f"\n\nBudget of this run, wall seconds on 2 cores shared with other jobs: {budgets}.",
        columns=columns, rows=rows, summary={**summary, "met": met})


if __name__ == "__main__":
    main()
