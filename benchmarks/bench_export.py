"""CPU inference of exported models: onnxruntime vs PyTorch eager vs ``optimize_for_inference``.

One run, the same random weights and the same random clip for the three paths, at each
model's own input size (r2plus1d_18: 16x112², x3d_m: 16x224², mvit_v2_s: 16x224²), batch 1,
``--threads`` threads for PyTorch and for onnxruntime. The ONNX file is written by
``deepvideo.serve.export.export_model`` (the tracing exporter when onnxruntime reproduces
PyTorch within 1e-4, else the ``torch.export`` one). Columns: clips/s of each path (median of
``--iters`` timed calls after one warm-up call), the largest absolute score difference from
eager PyTorch, the exporter used and the export time.

    python benchmarks/bench_export.py [--models r2plus1d_18,x3d_m,mvit_v2_s] [--iters 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from deepvideo.models.inference import optimize_for_inference  # noqa: E402
from deepvideo.serve.export import ScoresOnly, example_inputs, export_model, read_metadata  # noqa: E402
from deepvideo.serve.runs import build_model  # noqa: E402

MODELS = ("r2plus1d_18", "x3d_m", "mvit_v2_s")


def clips_per_second(fn, iters: int) -> float:
    fn()  # warm-up (allocations, oneDNN primitive creation)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def bench_one(name: str, iters: int, threads: int, folder: Path) -> list:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(name, 400)
    spec = model.input_spec
    x = example_inputs(spec, batch=1, seed=3)
    eager = ScoresOnly(model, spec.batch_keys).eval()
    fast = ScoresOnly(optimize_for_inference(model), spec.batch_keys).eval()
    with torch.no_grad():
        ref = eager(*x).numpy()
        opt = fast(*x).numpy()
        start = time.perf_counter()
        path = export_model(model, folder / f"{name}.onnx", "onnx", class_names=[str(i) for i in range(400)],
                            short_side=round(spec.crop_size * 256 / 224))
        export_s = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {spec.batch_keys[0]: x[0].numpy()}
        got = session.run(None, feed)[0]
        eager_cps = clips_per_second(lambda: eager(*x), iters)
        fast_cps = clips_per_second(lambda: fast(*x), iters)
        ort_cps = clips_per_second(lambda: session.run(None, feed), iters)
    shape = f"{spec.num_frames}x{spec.crop_size}x{spec.crop_size}"
    return [name, shape, round(eager_cps, 3), round(fast_cps, 3), round(ort_cps, 3),
            float(np.abs(got - ref).max()), float(np.abs(opt - ref).max()), read_metadata(path)["exporter"],
            round(export_s, 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = round(os.getloadavg()[0], 1)  # other processes on the machine slow every path alike
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(bench_one(name, args.iters, args.threads, Path(tmp)))
            print(rows[-1], flush=True)
    columns = ["model", "input (T x H x W)", "eager clips/s", "optimize_for_inference clips/s",
               "onnxruntime clips/s", "max abs diff onnxruntime", "max abs diff optimized", "exporter",
               "export s"]
    worst = max(r[5] for r in rows)
    print(write_result("export", title="Export: onnxruntime vs PyTorch eager vs optimize_for_inference",
                       command="python benchmarks/bench_export.py", description=__doc__.split("\n\n")[1],
                       columns=columns, rows=rows,
                       summary={"max_abs_diff_onnxruntime": worst, "goal": "<= 1e-4", "met": worst <= 1e-4,
                                "load_average_at_start": load}))


if __name__ == "__main__":
    main()
