"""The model zoo page: every registered model with its input and its size and cost, computed by
:mod:`deepvideo.models.profile`, beside the published figures where a paper or zoo gives them.

``python -m deepvideo.models.zoo [docs/model_zoo.md]`` regenerates the page; nothing in it is
typed by hand. The CPU training table comes from ``benchmarks/results/zoo_*.json`` (written by
``benchmarks/bench_motion_shapes.py``) when those results exist.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from deepvideo.io.atomic import atomic_write_text

# name -> (frames, test crop, published params M, published GFLOPs per view, source)
PUBLISHED: dict[str, tuple[int, int, float | None, float | None, str]] = {
    "c2d_r50": (8, 256, 24.33, 25.89, "PySlowFast zoo"),
    "i3d_r50": (8, 256, 28.04, 37.53, "PySlowFast zoo"),
    "slow_r50_4x16": (4, 256, 32.45, 27.55, "PySlowFast zoo"),
    "slow_r50": (8, 256, 32.45, 54.52, "PySlowFast zoo"),
    "slowfast_r50_4x16": (32, 256, 34.48, 36.69, "PySlowFast zoo"),
    "slowfast_r50": (32, 256, 34.57, 65.71, "PySlowFast zoo"),
    "slowfast_r101": (32, 256, 62.83, 127.20, "PySlowFast zoo"),
    "csn_r101": (32, 256, 22.21, 75.62, "PySlowFast zoo"),
    "r2plus1d_r50": (16, 256, 28.11, 76.45, "PySlowFast zoo"),
    "x3d_xs": (4, 182, 3.79, 0.91, "PySlowFast zoo"),
    "x3d_s": (13, 182, 3.79, 2.96, "PySlowFast zoo"),
    "x3d_m": (16, 256, 3.79, 6.72, "PySlowFast zoo"),
    "x3d_l": (16, 356, 6.15, 26.64, "PySlowFast zoo"),
    "mvit_v1_b": (16, 224, 36.61, 70.80, "PySlowFast zoo"),
    "mvit_base_16x4": (16, 224, 36.61, 70.80, "PySlowFast zoo"),
    "r2d_18": (8, 112, 11.4, None, "Tran et al. 2018"),  # 8-frame clips folded into channels
    "fr2d_18": (8, 112, 11.4, None, "Tran et al. 2018"),
    "r3d_18": (16, 112, 33.4, None, "Tran et al. 2018"),
    "mc2_18": (16, 112, 11.4, None, "Tran et al. 2018"),
    "mc3_18": (16, 112, 11.7, None, "Tran et al. 2018"),
    "mc4_18": (16, 112, 12.7, None, "Tran et al. 2018"),
    "mc5_18": (16, 112, 16.9, None, "Tran et al. 2018"),
    "rmc2_18": (16, 112, 33.3, None, "Tran et al. 2018"),
    "rmc3_18": (16, 112, 33.0, None, "Tran et al. 2018"),
    "rmc4_18": (16, 112, 32.0, None, "Tran et al. 2018"),
    "rmc5_18": (16, 112, 27.9, None, "Tran et al. 2018"),
    "r2plus1d_18": (16, 112, 33.3, None, "Tran et al. 2018"),
    "r2plus1d_18_tv": (16, 112, 31.51, 40.52, "torchvision"),
    "s3d": (64, 224, 8.32, None, "torchvision"),
    "mvit_v2_s": (16, 224, 34.54, 64.22, "torchvision"),
    "swin3d_t": (32, 224, 28.2, 88.0, "Liu et al. 2022"),
    "swin3d_s": (32, 224, 49.8, 166.0, "Liu et al. 2022"),
    "swin3d_b": (32, 224, 88.0, 282.0, "Liu et al. 2022"),
    "timesformer_divided": (8, 224, 121.4, 196.0, "Bertasius et al. 2021 (0.59 TFLOPs / 3 views)"),
    "ir_csn_152": (32, 224, 29.6, None, "Tran et al. 2019"),
    "ip_csn_152": (32, 224, 32.8, None, "Tran et al. 2019"),
}


def zoo_rows(names: list[str] | None = None, flops: bool = True) -> list[dict]:
    """One row per model: name, family, input, params and FLOPs (at the spec's input, or at the
    published test size when there is one), and the published figures."""
    from deepvideo.models.profile import profile_model
    from deepvideo.models.registry import list_models

    rows = []
    for info in list_models():
        if names is not None and info.name not in names:
            continue
        spec = info.spec
        pub = PUBLISHED.get(info.name)
        frames = pub[0] if pub else None
        crop = pub[1] if pub else None
        row = {
            "name": info.name,
            "family": info.family,
            "modalities": "+".join(spec.modalities),
            "frames": spec.num_segments * max(spec.num_frames, spec.flow_stack),
            "stride": spec.frame_stride,
            "crop": spec.crop_size,
            "summary": info.summary,
            "paper": info.paper,
            "pub_params": pub[2] if pub else None,
            "pub_gflops": pub[3] if pub else None,
            "pub_source": pub[4] if pub else "",
        }
        p = None
        if flops:
            try:
                p = profile_model(info.name, frames=frames, crop=crop, count_norms=True)
            except Exception as exc:  # a family whose ops cannot run on the meta device
                row["error"] = f"{type(exc).__name__}: {exc}"
        if p is None:
            import torch

            from deepvideo.models.profile import count_parameters
            from deepvideo.models.registry import create_model

            with torch.device("meta"):
                row["params"] = count_parameters(create_model(info.name)) / 1e6
            row["gflops"] = None
            row["flops_at"] = ""
        else:
            row["params"] = p.mparams
            row["gflops"] = p.gflops
            shape = next(iter(p.input_shape.values()))
            row["flops_at"] = f"{shape[2]}x{shape[3]}²"
        rows.append(row)
    return rows


def _f(v, digits=2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def render_training(results: list[dict]) -> list[str]:
    """Markdown sections for measured training tables (``benchmarks/common.write_result`` JSON)."""
    lines = []
    for r in results:
        m = r.get("machine", {})
        lines += ["", f"## {r['title']}", "", r["description"].strip(), "", f"Command: `{r['command']}`", "",
                  "| " + " | ".join(r["columns"]) + " |", "|" + "---|" * len(r["columns"])]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in r["rows"]]
        lines += ["", f"Measured {m.get('date', '?')} on {m.get('cpu_count', '?')} CPU cores, "
                  f"torch {m.get('torch', '?')}."]
    return lines


def render(rows: list[dict], training: list[dict] | None = None) -> str:
    lines = [
        "# Model zoo",
        "",
        "Generated by `python -m deepvideo.models.zoo` from the registry and `deepvideo.models.profile`;",
        "do not edit by hand. Parameters with 400 classes; GFLOPs per view (one clip, one crop),",
        "one multiply-add = one FLOP, normalization layers counted the fvcore training-mode way as",
        "in the PySlowFast zoo, at the published test size where one exists (ResNet family: 256²;",
        "X3D-XS/S 182², M 256², L 356²; MViT 224²), else at the model's input spec.",
        "",
        "| model | family | input (frames × stride, crop) | params (M) | published | GFLOPs | at | published "
        "| source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        stride = r["stride"] if isinstance(r["stride"], int) else "–".join(map(str, r["stride"]))
        lines.append(
            f"| `{r['name']}` | {r['family']} | {r['modalities']} {r['frames']}×{stride}, {r['crop']} "
            f"| {_f(r['params'])} | {_f(r['pub_params'])} | {_f(r['gflops'])} | {r['flops_at']} "
            f"| {_f(r['pub_gflops'])} | {r['pub_source']} |"
        )
    lines += render_training(training or [])
    lines += ["", "## Summaries", ""]
    for r in rows:
        lines.append(f"- `{r['name']}`: {r['summary']} — {r['paper']}")
    return "\n".join(lines) + "\n"


def write_zoo(path: str | os.PathLike = "docs/model_zoo.md") -> Path:
    """Render the zoo page to ``path`` atomically."""
    from deepvideo.models.registry import list_models
    from deepvideo.progress import track

    names = [i.name for i in list_models()]
    rows = []
    for name in track(names, "profiling models", unit="model"):
        rows.extend(zoo_rows([name]))
    results = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
    training = [json.loads(f.read_text()) for f in sorted(results.glob("zoo_*.json"))]
    return atomic_write_text(path, render(rows, training))


if __name__ == "__main__":
    print(write_zoo(sys.argv[1] if len(sys.argv) > 1 else "docs/model_zoo.md"))
