"""`deepvideo visualize ...`: what a trained model learned, as pictures and videos.

``maximize`` (activation maximisation of any layer and channel, both streams of two-stream and
fused nets; thesis ch. 6), ``gradcam`` and ``occlusion`` (where in a video the evidence for a
class lies), ``filters`` (first-layer kernels), ``topk`` (the dataset clips that most excite a
unit) and ``layers`` (the layer names). Every command writes an output folder with the
pictures, videos and a ``report.md``. Runs are loaded as ``deepvideo test``/``predict`` load
them; the model is then handed to :mod:`deepvideo.visualize`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from deepvideo.cli.params import fail

app = typer.Typer(
    no_args_is_help=True,
    help="What a trained model learned: activation maximisation, Grad-CAM, occlusion, filters, top clips.",
)

ALLOW = typer.Option(
    False,
    "--allow-imports",
    help="Import the plugins the checkpoint's model.imports names "
    "(runs their code: only for checkpoints you trust).",
)
FORMATS_HELP = "Comma-separated output formats: mp4, gif, png."


def _load(run: Path, allow_imports: bool):
    from deepvideo.engine.build import load_checkpoint

    try:
        model, cfg, class_names, _ = load_checkpoint(run, allow_imports=allow_imports)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    return model, cfg, class_names


def _formats(text: str) -> list[str]:
    from deepvideo.visualize.display import FORMATS

    out = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        fail(f"--formats takes {', '.join(FORMATS)} separated by commas, got {text!r}", 2)
    return out


def _class_index(value: str | None, class_names: list[str]) -> int | None:
    if value is None:
        return None
    if value in class_names:
        return class_names.index(value)
    if value.isdigit() and int(value) < len(class_names):
        return int(value)
    fail(
        f"--class {value!r} is neither a class name nor an index below {len(class_names)} "
        f"(classes: {', '.join(class_names[:10])}{' ...' if len(class_names) > 10 else ''})",
        2,
    )


def _first_view(batch: dict) -> dict:
    """Model inputs of a dataset item or batch with views ``[N, V, C, T, H, W]`` -> view 0."""
    out = {}
    for key in ("rgb", "flow"):
        if key in batch:
            x = batch[key]
            out[key] = x[:, 0] if x.dim() == 6 else x
    if "index" in batch:
        out["index"] = batch["index"]
    return out


def _video_batch(cfg, model, video: Path) -> dict:
    """The first test view of ``video`` as the run's data pipeline makes it (a batch of one)."""
    from deepvideo.data.dataset import BAD_VIDEO_ERRORS, ClipDataset
    from deepvideo.data.record import DatasetIndex, VideoRecord
    from deepvideo.engine.build import dataset_kwargs

    if not video.exists():
        fail(f"{video}: no such file or folder", 2)
    cfg.eval.num_clips, cfg.eval.test_crops, cfg.eval.flip = 1, 1, False
    spec = model.input_spec
    kw = {
        **dataset_kwargs(cfg, "test", "test", spec),
        "flow_root": None,
        "video_root": None,
        "max_retries": 0,
    }
    try:
        ds = ClipDataset(DatasetIndex([VideoRecord(path=str(video), label=0)], ["?"]), spec, **kw)
        item = ds.load(0, ds.rng(0, 0))
    except BAD_VIDEO_ERRORS as err:
        fail(f"{video}: {type(err).__name__}: {err}")
    return _first_view({k: v.unsqueeze(0) for k, v in item.items() if k in ("rgb", "flow")})


def _stream_of(model, layer: str, batch: dict) -> str:
    """The input stream ``layer`` depends on (the first, flow before rgb, whose gradient reaches it)."""
    import torch

    from deepvideo.visualize.hooks import capture, frozen

    keys = [k for k in ("flow", "rgb") if k in batch]
    if len(keys) == 1:
        return keys[0]
    x = {k: batch[k].detach().clone().requires_grad_(True) for k in keys}
    with frozen(model), torch.enable_grad(), capture(model, layer) as cap:
        model(x)
        grads = torch.autograd.grad(cap.get().sum(), list(x.values()), allow_unused=True)
    for k, g in zip(keys, grads, strict=True):
        if g is not None and bool(g.abs().sum() > 0):
            return k
    return keys[0]


def _default_cam_layer(model) -> str:
    from deepvideo.visualize.hooks import conv_layers

    convs = conv_layers(model)
    if not convs:
        fail("the model has no convolution for Grad-CAM; name a layer with --layer", 2)
    return convs[-1]


@app.command("layers")
def layers(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."), allow_imports: bool = ALLOW
) -> None:
    """List the model's layers (module paths) with their output shapes for one input."""
    import torch

    from deepvideo.visualize.hooks import frozen
    from deepvideo.visualize.maximize import input_shapes, to_model_units

    model, _, class_names = _load(run, allow_imports)
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(_module, _inputs, output):  # returns None: the output is left as it is
            if isinstance(output, torch.Tensor):
                shapes.setdefault(name, tuple(output.shape))

        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    with frozen(model), torch.no_grad():
        model(
            to_model_units(
                {k: torch.zeros(s) for k, s in input_shapes(model.input_spec).items()}, model.input_spec
            )
        )
    for h in hooks:
        h.remove()
    for name, shape in shapes.items():
        typer.echo(f"{name:<48} {list(shape)}")
    typer.echo(f"{'logits':<48} [1, {len(class_names)}]")


def _dataset_batches(cfg, model, class_names, subset: str, limit: int | None):
    """View-0 batches of the run's ``data.<subset>`` (one clip, one crop per video), at most ``limit``."""
    from itertools import islice

    from deepvideo.engine.build import build_dataset, make_loader

    cfg.eval.num_clips, cfg.eval.test_crops, cfg.eval.flip = 1, 1, False
    section = getattr(cfg.data, subset, None) or (cfg.data.val if subset == "test" else None)
    if not section:
        fail(f"the run has no data.{subset} section to read clips from", 2)
    if subset == "test" and not cfg.data.test:
        cfg.data.test = section
    try:
        ds = build_dataset(cfg, subset, model.input_spec, "test", class_names=class_names)
    except (OSError, ValueError, KeyError) as err:
        fail(str(err).strip("'\""))
    loader = make_loader(cfg, ds, cfg.eval.batch_size, False, "cpu")
    return (_first_view(b) for b in islice(loader, limit)), len(ds)


def _units(layer: str, channels: str, class_names: list[str]) -> list[int]:
    out = []
    for part in [p.strip() for p in channels.split(",") if p.strip()]:
        if layer == "logits" and part in class_names:
            out.append(class_names.index(part))
        elif part.isdigit():
            out.append(int(part))
        else:
            fail(f"--channel takes indices (or class names for --layer logits), got {part!r}", 2)
    if not out:
        fail("--channel names no unit", 2)
    return out


@app.command("maximize")
def maximize_cmd(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
    layer: str = typer.Option("logits", "--layer", help="Module path (see `visualize layers`) or logits."),
    channel: str = typer.Option(
        "0", "--channel", help="Channel(s), comma-separated; class names for logits."
    ),
    reg: str = typer.Option("tv3d", "--reg", help="Regulariser: tv2d, tv3d or tv2d1d."),
    kappa: float = typer.Option(1.0, "--kappa", help="TV3D temporal weight (chapter: 10, 5, 2.5, 1)."),
    chi: float = typer.Option(1.0, "--chi", help="TV2D1D temporal weight (0: no temporal constraint)."),
    steps: int = typer.Option(200, "--steps", help="Optimisation steps."),
    lr: float = typer.Option(4.0, "--lr", help="Step size, 8-bit units per step."),
    weight: float = typer.Option(1.0, "--weight", help="C: weight of the activation term."),
    size: int = typer.Option(None, "--size", help="Frame side (default: the model's crop size)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial noise."),
    jitter: int = typer.Option(
        0, "--jitter", help="Shift the inputs by up to this many pixels each step (0: none)."
    ),
    stats: str = typer.Option(
        "test", "--stats", help="Subset to measure a_hat on (test, val, train) or none."
    ),
    stats_batches: int = typer.Option(8, "--stats-batches", help="Batches of that subset to measure on."),
    cache: Path = typer.Option(
        None, "--cache", help="a_hat cache (default <run>/visualize/activation_max.json)."
    ),
    coding: str = typer.Option("mag", "--coding", help="Flow shown as mag, wheel or uv."),
    formats: str = typer.Option("mp4,gif,png", "--formats", help=FORMATS_HELP),
    zoom: int = typer.Option(2, "--zoom", help="Enlarge pictures by this integer factor."),
    out: Path = typer.Option(None, "--out", help="Output folder (default <run>/visualize/maximize)."),
    allow_imports: bool = ALLOW,
) -> None:
    """Activation maximisation (thesis ch. 6): inputs of every stream that excite a unit."""
    from deepvideo.progress import progress_task, track
    from deepvideo.visualize.maximize import MaximizeOptions, maximize
    from deepvideo.visualize.save import save_maximization
    from deepvideo.visualize.stats import cached_max_activations

    fmts = _formats(formats)
    try:
        opts = MaximizeOptions(
            reg=reg, kappa=kappa, chi=chi, steps=steps, lr=lr, weight=weight, size=size, seed=seed,
            jitter=jitter,
        )
    except ValueError as err:
        fail(str(err), 2)
    model, cfg, class_names = _load(run, allow_imports)
    units = _units(layer, channel, class_names)
    a_hat = None
    if stats != "none":
        cache = cache or Path(run) / "visualize" / "activation_max.json"
        batches, _ = _dataset_batches(cfg, model, class_names, stats, stats_batches)
        batches = track(batches, f"a_hat of {layer} on {stats}", total=stats_batches, unit="batches")
        try:
            a_hat = cached_max_activations(cache, model, layer, batches)
        except (ValueError, KeyError) as err:
            fail(str(err).strip("'\""))
    results = []
    with progress_task(f"maximize {layer}", steps * len(units), unit="steps") as advance:
        for c in units:
            try:
                results.append(
                    maximize(
                        model,
                        layer,
                        c,
                        opts,
                        a_hat=None if a_hat is None else float(a_hat[c]),
                        on_step=lambda k, rec: advance(),
                    )
                )
            except (ValueError, KeyError, IndexError) as err:
                fail(str(err).strip("'\""))
    labels = [class_names[c] for c in units] if layer == "logits" else None
    folder = out or Path(run) / "visualize" / "maximize"
    report = save_maximization(
        results, folder, model.input_spec, coding=coding, formats=fmts, zoom=zoom, labels=labels
    )
    typer.echo(f"report: {report}")


@app.command("gradcam")
def gradcam_cmd(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
    video: Path = typer.Argument(..., help="Video file or frame folder."),
    klass: str = typer.Option(None, "--class", help="Class name or index (default: the predicted class)."),
    layer: str = typer.Option(None, "--layer", help="Conv layer (default: the last convolution)."),
    coding: str = typer.Option("wheel", "--coding", help="Flow under the heat map: wheel, mag or uv."),
    formats: str = typer.Option("mp4,gif,png", "--formats", help=FORMATS_HELP),
    zoom: int = typer.Option(2, "--zoom", help="Enlarge pictures by this integer factor."),
    out: Path = typer.Option(None, "--out", help="Output folder (default <run>/visualize/gradcam)."),
    allow_imports: bool = ALLOW,
) -> None:
    """Grad-CAM over the clip's frames and time: where the evidence for a class lies."""
    from deepvideo.visualize.display import write_report
    from deepvideo.visualize.gradcam import gradcam
    from deepvideo.visualize.save import model_view, save_heat

    fmts = _formats(formats)
    model, cfg, class_names = _load(run, allow_imports)
    target = _class_index(klass, class_names)
    batch = _video_batch(cfg, model, video)
    layer = layer or _default_cam_layer(model)
    try:
        stream = _stream_of(model, layer, batch)
        size = tuple(batch[stream].shape[2:])
        heat, explained = gradcam(
            model, {k: v for k, v in batch.items() if k != "index"}, layer, target, size
        )
    except (ValueError, KeyError, RuntimeError) as err:
        fail(str(err).strip("'\""))
    folder = out or Path(run) / "visualize" / "gradcam"
    name = f"{Path(video).stem}_{class_names[explained]}"
    save_heat(
        folder, name, model_view(batch, stream, model.input_spec, coding), heat[0], formats=fmts, zoom=zoom
    )
    report = write_report(
        folder,
        "Grad-CAM",
        [
            f"Video `{video}`, class {class_names[explained]}, layer `{layer}`, "
            f"stream {stream}; left: input with heat, right: heat."
        ],
        [f"{name}.png"] if "png" in fmts else [],
    )
    typer.echo(f"report: {report}")


@app.command("occlusion")
def occlusion_cmd(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
    video: Path = typer.Argument(..., help="Video file or frame folder."),
    klass: str = typer.Option(None, "--class", help="Class name or index (default: the predicted class)."),
    mode: str = typer.Option("space", "--mode", help="space, time or spacetime (the sliding cube)."),
    cube: int = typer.Option(8, "--cube", help="Cube side in pixels."),
    frames: int = typer.Option(2, "--frames", help="Cube length in frames (time, spacetime)."),
    stride: int = typer.Option(4, "--stride", help="Spatial stride of the cube."),
    stream: str = typer.Option(None, "--stream", help="rgb or flow (default: the model's first)."),
    coding: str = typer.Option("wheel", "--coding", help="Flow under the map: wheel, mag or uv."),
    formats: str = typer.Option("mp4,gif,png", "--formats", help=FORMATS_HELP),
    zoom: int = typer.Option(2, "--zoom", help="Enlarge pictures by this integer factor."),
    out: Path = typer.Option(None, "--out", help="Output folder (default <run>/visualize/occlusion)."),
    allow_imports: bool = ALLOW,
) -> None:
    """Occlusion sensitivity: the class score's drop when a sliding cube hides part of the clip."""
    import torch

    from deepvideo.progress import progress_task
    from deepvideo.visualize.display import write_report
    from deepvideo.visualize.hooks import logits_of
    from deepvideo.visualize.occlusion import cube_count, occlusion_map
    from deepvideo.visualize.save import model_view, save_heat

    fmts = _formats(formats)
    model, cfg, class_names = _load(run, allow_imports)
    batch = {k: v for k, v in _video_batch(cfg, model, video).items() if k != "index"}
    stream = stream or next(iter(batch))
    if stream not in batch:
        fail(f"--stream {stream!r}: the model reads {', '.join(batch)}", 2)
    target = _class_index(klass, class_names)
    if target is None:
        with torch.no_grad():
            target = int(logits_of(model(batch)).argmax(1)[0])
    shape = tuple(batch[stream].shape[2:])
    try:
        with progress_task(
            f"occlusion ({mode})", cube_count(shape, mode, cube, frames, stride), unit="cubes"
        ) as adv:
            drop = occlusion_map(
                model,
                batch,
                stream,
                target,
                mode=mode,
                size=cube,
                frames=frames,
                stride=stride,
                on_progress=lambda n: adv(n),
            )
    except ValueError as err:
        fail(str(err), 2)
    folder = out or Path(run) / "visualize" / "occlusion"
    name = f"{Path(video).stem}_{class_names[target]}_{mode}"
    heat = drop.clamp_min(0) / drop.clamp_min(0).max().clamp_min(1e-12)
    save_heat(
        folder, name, model_view(batch, stream, model.input_spec, coding), heat, formats=fmts, zoom=zoom
    )
    report = write_report(
        folder,
        "Occlusion sensitivity",
        [
            f"Video `{video}`, class {class_names[target]}, stream {stream}, mode {mode}, "
            f"cube {cube} px x {frames} frames, stride {stride}; largest score drop "
            f"{float(drop.max()):.4g} (heat: drop / largest drop)."
        ],
        [f"{name}.png"] if "png" in fmts else [],
    )
    typer.echo(f"report: {report}")


@app.command("filters")
def filters_cmd(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
    layer: str = typer.Option(None, "--layer", help="Conv layer (default: the first convolution)."),
    count: int = typer.Option(32, "--count", help="Filters to show."),
    modality: str = typer.Option(None, "--modality", help="rgb or flow (default: the model's first input)."),
    coding: str = typer.Option("mag", "--coding", help="Flow kernels shown as mag, wheel or uv."),
    zoom: int = typer.Option(8, "--zoom", help="Enlarge kernels by this integer factor."),
    out: Path = typer.Option(None, "--out", help="Output folder (default <run>/visualize/filters)."),
    allow_imports: bool = ALLOW,
) -> None:
    """First-layer filters as a grid: one row per filter, one column per frame or flow field."""
    from deepvideo.visualize.display import enlarge, grid, write_png, write_report
    from deepvideo.visualize.filters import filter_rows, first_conv
    from deepvideo.visualize.hooks import find_module

    model, _, _ = _load(run, allow_imports)
    try:
        name, conv = (layer, find_module(model, layer)) if layer else first_conv(model)
        if not hasattr(conv, "weight") or conv.weight.dim() not in (4, 5):
            fail(f"layer {name!r} is not a 2D or 3D convolution", 2)
        kind = modality or model.input_spec.batch_keys[0]
        rows = filter_rows(conv.weight, kind, coding, count)
    except (KeyError, ValueError) as err:
        fail(str(err).strip("'\""), 2)
    folder = out or Path(run) / "visualize" / "filters"
    folder.mkdir(parents=True, exist_ok=True)
    write_png(folder / "filters.png", grid([enlarge(r, zoom) for r in rows]))
    w = conv.weight
    report = write_report(
        folder,
        "First-layer filters",
        [
            f"Layer `{name}`, weight {list(w.shape)}, shown as {kind}"
            f"{f' ({coding})' if kind == 'flow' else ''}; rows: the first {len(rows)} filters; "
            "columns: frames / flow fields; each filter min-max scaled."
        ],
        ["filters.png"],
    )
    typer.echo(f"report: {report}")


@app.command("topk")
def topk_cmd(
    run: Path = typer.Argument(..., help="Run folder or checkpoint folder."),
    dataset: str = typer.Argument("test", help="Subset of the run's recipe: test, val or train."),
    layer: str = typer.Option("logits", "--layer", help="Module path or logits."),
    channel: str = typer.Option("0", "--channel", help="Channel (a class name for logits)."),
    k: int = typer.Option(5, "-k", "--top", help="Clips to keep."),
    cam_layer: str = typer.Option(
        None,
        "--cam-layer",
        help="Conv layer of the Grad-CAM for logits units (default: the last convolution).",
    ),
    batches: int = typer.Option(None, "--batches", help="Batches to scan (default: the whole subset)."),
    coding: str = typer.Option("wheel", "--coding", help="Flow under the heat map: wheel, mag or uv."),
    formats: str = typer.Option("mp4,gif,png", "--formats", help=FORMATS_HELP),
    zoom: int = typer.Option(2, "--zoom", help="Enlarge pictures by this integer factor."),
    out: Path = typer.Option(None, "--out", help="Output folder (default <run>/visualize/topk)."),
    allow_imports: bool = ALLOW,
) -> None:
    """The dataset clips that most excite a unit, each with the unit's heat map."""
    from deepvideo.progress import progress_task
    from deepvideo.visualize.display import write_report
    from deepvideo.visualize.save import model_view, save_heat
    from deepvideo.visualize.topk import add_heat, top_clips

    fmts = _formats(formats)
    model, cfg, class_names = _load(run, allow_imports)
    unit = _units(layer, channel, class_names)[0]
    loader, total = _dataset_batches(cfg, model, class_names, dataset, batches)
    try:
        with progress_task(f"topk {layer}[{unit}]", total, unit="clips") as advance:
            clips = top_clips(model, layer, unit, loader, k, on_batch=lambda n: advance(n))
        heat_layer = layer if layer != "logits" else (cam_layer or _default_cam_layer(model))
        stream = _stream_of(model, heat_layer, clips[0].batch)
        add_heat(model, layer, unit, clips, stream, heat_layer if layer == "logits" else None)
    except (ValueError, KeyError, IndexError) as err:
        fail(str(err).strip("'\""))
    folder = out or Path(run) / "visualize" / "topk"
    lines, images = (
        [f"Unit `{layer}` channel {unit}, subset {dataset}; clips by excitation (mean over positions):"],
        [],
    )
    for rank, clip in enumerate(clips, 1):
        name = f"top{rank:02d}_clip{clip.index}"
        save_heat(
            folder,
            name,
            model_view(clip.batch, stream, model.input_spec, coding),
            clip.heat,
            formats=fmts,
            zoom=zoom,
        )
        lines.append(f"{rank}. dataset clip {clip.index}: {clip.score:.4g}")
        images += [f"{name}.png"] if "png" in fmts else []
    report = write_report(folder, "Top clips", lines, images)
    typer.echo(f"report: {report}")
