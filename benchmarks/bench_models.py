"""Inference speed of deepvideo's video models against torchvision and PyTorchVideo.

One run, 2 threads, the same weights (the peer's random initialization, random batch-norm
scales, batch-norm running statistics measured on the benchmark clips; converted with
``deepvideo.models.convert``) and the same inputs (clips decoded from ``../shared/data/video``
at each model's input spec). For every model: peer fp32 clips/s, deepvideo fp32
(``optimize_for_inference``: batch norm folded, channels-last 3D, linears on oneDNN, temporal
Winograd), deepvideo bf16 (the network in bfloat16; 3D pooling and the RGB stem conv kept in
fp32, faster on CPU), the max abs difference of the fp32 logits from the peer's, and the share
of clips whose bf16 top-1 equals the peer's fp32 top-1 (beside the same share for the peer
itself on bf16-rounded inputs and under its own bf16 autocast: how fragile random weights are).

    python benchmarks/bench_models.py [--iters 3] [--batch 2] [--clips 12] [--models r3d_18,x3d_m]
                                      [--compile auto|all|none]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402
from deepvideo.models.convert import load_model  # noqa: E402
from deepvideo.models.inference import bf16_supported, optimize_for_inference  # noqa: E402

# deepvideo name, peer library, peer name
PAIRS = [
    ("r3d_18", "torchvision", "r3d_18"),
    ("r2plus1d_18_tv", "torchvision", "r2plus1d_18"),
    ("mc3_18", "torchvision", "mc3_18"),
    ("s3d", "torchvision", "s3d"),
    ("mvit_v2_s", "torchvision", "mvit_v2_s"),
    ("x3d_m", "pytorchvideo", "x3d_m"),
    ("slow_r50", "pytorchvideo", "slow_r50"),
    ("slowfast_r50", "pytorchvideo", "slowfast_r50"),
]
# (model, precision) pairs that torch.compile (inductor, freezing) made faster than eager here
COMPILE_AUTO = {("mvit_v2_s", "bf16")}
S3D_FRAMES = 16  # torchvision's minimum temporal size for s3d; 64 frames would dominate the run


def randomize_norm_scales(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    return model.eval()


@torch.no_grad()
def calibrate_norms(model: nn.Module, fn, clips: torch.Tensor) -> nn.Module:
    """Batch-norm running statistics measured on ``clips`` (one cumulative train-mode pass).

    Random running statistics do not normalize the real activations, so they compound through
    the residual stages (logits of ~200 on slow_r50, where fp32 rounding alone exceeds 1e-4);
    statistics of real clips keep every layer near unit scale, as in a trained network.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    fn(clips)
    for m in norms:
        m.momentum = 0.1
    return model.eval()


def build_peer(library: str, name: str) -> nn.Module:
    torch.manual_seed(0)
    if library == "torchvision":
        import torchvision

        return randomize_norm_scales(getattr(torchvision.models.video, name)(weights=None))
    warnings.filterwarnings("ignore")
    from pytorchvideo.models import hub

    peer = getattr(hub, name)()
    for mod in list(peer.modules()):  # hub heads end in a softmax at inference; compare logits
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Softmax):
                setattr(mod, cname, nn.Identity())
    return randomize_norm_scales(peer)


def read_clips(frames: int, stride: int, crop: int, count: int, mean, std) -> torch.Tensor:
    """``count`` clips [N,3,T,crop,crop] from the shared videos (short side resized, centre crop)."""
    videos = sorted((SHARED_DATA / "video").glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no videos in {SHARED_DATA / 'video'}: the benchmark needs real clips")
    from deepvideo.io import VideoReader

    clips = []
    for i in range(count):
        path = videos[i % len(videos)]
        with VideoReader(path, short_side=crop) as reader:
            n = len(reader)
            span = frames * stride
            start = (i // len(videos)) * span % max(n - span, 1)
            idx = [min(start + k * stride, n - 1) for k in range(frames)]
            x = reader.get_frames(idx)  # uint8 [T,H,W,3]
        h, w = x.shape[1:3]
        top, left = (h - crop) // 2, (w - crop) // 2
        x = x[:, top : top + crop, left : left + crop].permute(3, 0, 1, 2).float() / 255.0
        x = (x - torch.tensor(mean).view(3, 1, 1, 1)) / torch.tensor(std).view(3, 1, 1, 1)
        clips.append(x)
    return torch.stack(clips)


def batched(fn, clips: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(clips[i : i + batch]) for i in range(0, len(clips), batch)])


def best_time(fn, x, iters: int) -> float:
    with torch.inference_mode():
        fn(x)  # warm-up (oneDNN primitive creation)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return min(times)


def fast_variant(model: nn.Module, name: str, precision: str, compile_mode: str, x: torch.Tensor):
    """``optimize_for_inference`` in ``precision``, compiled where ``compile_mode`` says (falls back
    to eager if inductor cannot compile the graph); returns the model and its mode."""
    bf16 = precision == "bf16"
    compiled = compile_mode == "all" or (compile_mode == "auto" and (name, precision) in COMPILE_AUTO)
    if compiled:
        try:
            fast = optimize_for_inference(model, bf16=bf16, compile=True)
            t0 = time.perf_counter()
            with torch.inference_mode():
                fast(x)
            print(f"{name} {precision}: compiled in {time.perf_counter() - t0:.0f} s", flush=True)
            return fast, "compiled"
        except Exception as exc:  # a graph inductor cannot compile: fall back to eager
            print(f"{name} {precision}: torch.compile failed ({type(exc).__name__}); eager", flush=True)
    return optimize_for_inference(model, bf16=bf16), "eager"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2, help="clips per timed forward pass")
    ap.add_argument("--clips", type=int, default=12, help="real clips for the top-1 agreement check")
    ap.add_argument("--models", default="", help="comma-separated subset of deepvideo names")
    ap.add_argument(
        "--compile",
        choices=["auto", "all", "none"],
        default="auto",
        help="torch.compile with inductor freezing (10-80 s of compilation per model and precision): "
        "auto = where it measured faster ("
        + ", ".join(f"{m} {p}" for m, p in sorted(COMPILE_AUTO))
        + ")",
    )
    args = ap.parse_args()
    torch.set_num_threads(2)
    bf16 = bf16_supported()
    chosen = [p for p in PAIRS if not args.models or p[0] in args.models.split(",")]
    rows, fp32_ratios, bf16_ratios, agreements, diffs = [], [], [], [], []
    for name, library, peer_name in chosen:
        try:
            peer = build_peer(library, peer_name)
        except ImportError as exc:
            print(f"skip {name}: {library} not installed ({exc})")
            continue
        model = load_model(name, peer.state_dict())
        spec = model.input_spec
        frames = S3D_FRAMES if name == "s3d" else spec.num_frames
        clips = read_clips(
            frames, spec.stride_range[0], spec.crop_size, max(args.clips, args.batch), spec.mean, spec.std
        )
        if name == "slowfast_r50":  # PyTorchVideo takes [slow, fast]; deepvideo subsamples inside

            def peer_fn(x, _p=peer, _m=model):
                return _p(list(_m.pathways(x)))
        else:
            peer_fn = peer
        calibrate_norms(peer, peer_fn, clips)
        model = load_model(name, peer.state_dict())
        x = clips[: args.batch]
        fast32, mode = fast_variant(model, name, "fp32", args.compile, x)
        fast16, mode16 = fast_variant(model, name, "bf16", args.compile, x) if bf16 else (None, "-")
        t_peer = best_time(peer_fn, x, args.iters)
        t32 = best_time(fast32, x, args.iters)
        t16 = best_time(fast16, x, args.iters) if fast16 else float("nan")
        ref, out32, out16 = (batched(f, clips, args.batch) for f in (peer_fn, fast32, fast16 or fast32))
        # the peer itself in fp32 on inputs rounded to bf16: how fragile these weights' top-1 is
        rounded = batched(peer_fn, clips.bfloat16().float(), args.batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the peer library's own bf16 inference
            peer16 = batched(peer_fn, clips, args.batch).float()
        diff = (out32 - ref).abs().max().item()
        agree = (out16.argmax(1) == ref.argmax(1)).float().mean().item()
        stable = (rounded.argmax(1) == ref.argmax(1)).float().mean().item()
        peer_agree = (peer16.argmax(1) == ref.argmax(1)).float().mean().item()
        rel16, peer_rel16 = (((o - ref).norm() / ref.norm()).item() for o in (out16, peer16))
        cps = [args.batch / t for t in (t_peer, t32, t16)]
        r32, r16 = t_peer / t32, t_peer / t16
        fp32_ratios.append(r32)
        bf16_ratios.append(r16)
        agreements.append(agree)
        diffs.append(diff)
        shape = "x".join(map(str, clips.shape[2:]))
        rows.append(
            [
                name,
                f"{library} {peer_name}",
                shape,
                round(cps[0], 3),
                f"{cps[1]:.3f} ({mode})",
                round(r32, 2),
                f"{cps[2]:.3f} ({mode16})",
                round(r16, 2),
                f"{diff:.1e}",
                f"{agree * 100:.0f}%",
                f"{rel16:.3f} / {peer_rel16:.3f}",
                f"{stable * 100:.0f}%",
                f"{peer_agree * 100:.0f}%",
            ]
        )
        print(rows[-1], flush=True)
    if not rows:
        raise SystemExit("no model could be benchmarked")
    gm = lambda v: float(np.exp(np.mean(np.log(v))))  # noqa: E731
    summary = {
        "ratio": round(gm(fp32_ratios), 2),
        "goal": "fp32 >= 1.3x peer (logits within 1e-4); bf16 >= 2x peer fp32, same top-1 on >= 99% of clips",
        "bf16_ratio": round(gm(bf16_ratios), 2),
        "min_top1_agreement": min(agreements),
        "max_abs_diff": max(diffs),
        "met": bool(
            min(fp32_ratios) >= 1.3
            and max(diffs) <= 1e-4
            and min(bf16_ratios) >= 2.0
            and min(agreements) >= 0.99
        ),
    }
    write_result(
        "models",
        title="Video model inference: deepvideo vs torchvision / PyTorchVideo",
        command="python benchmarks/bench_models.py" + "".join(f" {a}" for a in sys.argv[1:]),
        description=(
            "Clips per second on CPU with 2 threads, batch of "
            f"{args.batch} clips decoded from the shared sample videos at each model's input spec "
            f"(s3d at {S3D_FRAMES} frames), best of {args.iters} timed runs after one warm-up, all variants "
            "in the same run with the same weights (the peer library's own random initialization, "
            "batch-norm scales drawn from U(0.5, 1.5) and batch-norm running statistics measured on the "
            "benchmark clips so activations and logits keep a trained network's scale, converted by "
            "`deepvideo.models.convert`). deepvideo runs through "
            "`deepvideo.models.inference.optimize_for_inference` (batch norm folded into convs, "
            "channels-last 3D, fp32"
            " linear layers on oneDNN's GEMM instead of MKL's, which runs its AVX2 path on this AMD "
            "CPU, fp32 convolutions with a temporal kernel of 3 by Winograd F(4, 3) along time; the "
            "(model, precision) pairs of `COMPILE_AUTO` also go through `torch.compile` with "
            "inductor freezing, where it measured faster than eager: the mode is in the clips/s columns, "
            "compile time not "
            "included); bf16 runs the network in bfloat16 (weights and activations, AVX512-BF16/AMX), 3D "
            "pooling and the RGB stem conv kept in fp32 (their bf16 CPU kernels are slower or missing). "
            "`max |Δ|` "
            "compares deepvideo fp32 logits with the "
            f"peer's; `top-1 =` is the share of {max(args.clips, args.batch)} real clips whose bf16 top-1 "
            "equals the peer's fp32 top-1, `bf16 rel. logit error` the relative L2 distance of the bf16 "
            "logits from the peer's fp32 ones (deepvideo's, and the peer's own under `torch.autocast` "
            "bf16), and the last two columns the same top-1 check for the peer itself, in "
            "fp32 on the clips rounded to bf16 and under its own bf16 inference (`torch.autocast`): with "
            "random weights (no pretrained checkpoints can be loaded here) the logit margins are tiny and "
            "perturbations grow layer by layer, so these columns show how much of a top-1 disagreement the "
            "weights, not deepvideo's bf16 path, account for. "
            "The machine is shared: absolute figures vary between runs, the ratios less so."
        ),
        columns=[
            "model",
            "peer",
            "clip (T x H x W)",
            "peer fp32 clips/s",
            "deepvideo fp32 clips/s",
            "fp32 ratio",
            "deepvideo bf16 clips/s",
            "bf16 ratio",
            "max |Δ| fp32",
            "top-1 = (bf16)",
            "bf16 rel. logit error (deepvideo / peer autocast)",
            "top-1 = (peer fp32, bf16-rounded input)",
            "top-1 = (peer bf16 autocast)",
        ],
        rows=rows,
        summary=summary,
    )
    print(summary)


if __name__ == "__main__":
    main()
