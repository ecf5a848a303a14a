"""`deepvideo features ...`: hand-crafted baselines — ``idt`` / ``tdd`` extraction, ``encode``
(PCA + Fisher vectors or bag of words), ``svm`` (linear one-vs-rest, scores for ``deepvideo fuse``)."""

from __future__ import annotations

from pathlib import Path

import typer

from deepvideo.cli.params import fail, parse_params

app = typer.Typer(no_args_is_help=True)


def _run_extract(inputs, out, opts, workers, shard, strict) -> None:
    from deepvideo.features.extract import extract_features
    from deepvideo.flow.extract import parse_shard

    try:
        summary = extract_features(
            inputs, out, opts, workers=workers, shard=parse_shard(shard) if shard else None
        )
    except (ValueError, OSError) as exc:
        fail(str(exc), 2)
    tracks = sum(d["trajectories"] for d in summary.done)
    typer.echo(
        f"{len(summary.done)} videos ({summary.frames} frames, {tracks} trajectories, "
        f"{summary.seconds:.1f} s), {len(summary.skipped)} already done, "
        f"{len(summary.failed)} failed -> {out}"
    )
    for bad in summary.failed:
        typer.echo(f"  failed: {bad['video']}: {bad['reason']}", err=True)
    failed, total = len(summary.failed), len(summary.failed) + len(summary.done) + len(summary.skipped)
    if failed and (strict or failed == total):
        fail(f"{failed} of {total} videos failed")


def _trajectory_params(flow_method, camera, max_scales, param) -> dict:
    params = parse_params(param)
    params.update({"flow_method": flow_method, "camera": camera, "max_scales": max_scales})
    return params


_INPUTS = typer.Argument(..., help="Dataset folders (searched recursively) and/or videos.")
_OUT = typer.Option(..., "--out", help="Output root: one .npz per video, mirroring the relative paths.")
_WORKERS = typer.Option(1, "--workers", help="Parallel worker processes.")
_SHARD = typer.Option(
    None, "--shard", help="i/n: every n-th video from i (default: torchrun RANK/WORLD_SIZE)."
)
_FLOW = typer.Option("farneback", "--flow-method", help="dis | farneback | opencv-tvl1 | tvl1.")
_CAMERA = typer.Option(
    True,
    "--camera/--no-camera",
    help="Improved trajectories (camera motion removed) or the original dense trajectories.",
)
_SCALES = typer.Option(8, "--max-scales", help="Spatial scales (at most; the short side stays >= 32 px).")
_SHORT = typer.Option(None, "--short-side", help="Resize frames so the short side is this first.")
_MAXF = typer.Option(None, "--max-frames", help="Only the first N frames of each video.")
_PARAM = typer.Option(
    [], "--param", help="Trajectory parameter key=value (repeatable), e.g. track_length=15."
)
_STRICT = typer.Option(False, "--strict", help="Exit 1 if any video failed (else only if all did).")


@app.command()
def idt(
    inputs: list[Path] = _INPUTS,
    out: Path = _OUT,
    workers: int = _WORKERS,
    shard: str = _SHARD,
    flow_method: str = _FLOW,
    camera: bool = _CAMERA,
    max_scales: int = _SCALES,
    short_side: int = _SHORT,
    max_frames: int = _MAXF,
    param: list[str] = _PARAM,
    strict: bool = _STRICT,
) -> None:
    """(Improved) dense trajectories with trajectory/HOG/HOF/MBHx/MBHy descriptors, per video.

    Resumable (manifest), atomic per video, parallel (--workers) and shardable (--shard i/n).
    """
    from deepvideo.features.extract import FeatureOptions

    opts = FeatureOptions(
        "idt", _trajectory_params(flow_method, camera, max_scales, param), short_side, max_frames
    )
    _run_extract(inputs, out, opts, workers, shard, strict)


def _load_stream(path: Path | None, allow_imports: bool):
    if path is None:
        return None
    from deepvideo.engine.build import load_checkpoint

    try:
        return load_checkpoint(path, allow_imports=allow_imports)[0]
    except (OSError, ValueError) as exc:
        fail(str(exc), 2)


@app.command()
def tdd(
    inputs: list[Path] = _INPUTS,
    out: Path = _OUT,
    spatial: Path = typer.Option(None, "--spatial", help="Spatial-stream checkpoint (run folder)."),
    temporal: Path = typer.Option(None, "--temporal", help="Temporal-stream checkpoint (run folder)."),
    spatial_layers: str = typer.Option(
        None, "--spatial-layers", help="Module paths, comma-separated (default: conv4, conv5: "
        "backbone.relu4,backbone.relu5 of CNN-M-2048 / VGG, backbone.layer3,backbone.layer4 of a ResNet)."
    ),
    temporal_layers: str = typer.Option(
        None, "--temporal-layers", help="Module paths, comma-separated (default: conv3, conv4: "
        "backbone.relu3,backbone.relu4 of CNN-M-2048 / VGG, backbone.layer2,backbone.layer3 of a ResNet)."
    ),
    allow_imports: bool = typer.Option(False, "--allow-imports", help="Trust the checkpoints' imports."),
    workers: int = _WORKERS,
    shard: str = _SHARD,
    flow_method: str = _FLOW,
    camera: bool = _CAMERA,
    max_scales: int = _SCALES,
    short_side: int = _SHORT,
    max_frames: int = _MAXF,
    param: list[str] = _PARAM,
    strict: bool = _STRICT,
) -> None:
    """Trajectory-pooled deep-convolutional descriptors of trained two-stream nets, per video."""
    from deepvideo.features.extract import FeatureOptions

    if spatial is None and temporal is None:
        fail("give --spatial and/or --temporal checkpoints", 2)
    opts = FeatureOptions(
        "tdd",
        _trajectory_params(flow_method, camera, max_scales, param),
        short_side,
        max_frames,
        _load_stream(spatial, allow_imports),
        _load_stream(temporal, allow_imports),
        tuple(s for s in (spatial_layers or "").split(",") if s) or None,
        tuple(s for s in (temporal_layers or "").split(",") if s) or None,
    )
    _run_extract(inputs, out, opts, workers, shard, strict)


@app.command()
def encode(
    features: Path = typer.Argument(..., help="Output root of `deepvideo features idt|tdd`."),
    out: Path = typer.Option(..., "--out", help="Vectors file (.npz): video ids and one vector each."),
    encoder: Path = typer.Option(
        ...,
        "--encoder",
        help="Encoder .npz: loaded if it exists, else fitted "
        "(on the --fit-list videos, or all) and written here.",
    ),
    kind: str = typer.Option("fisher", "--kind", help="fisher (PCA + GMM + FV) or bow (k-means words)."),
    components: int = typer.Option(None, "--components", help="GMM components (256) or words (4000)."),
    types: str = typer.Option(None, "--types", help="Descriptor types, comma-separated (default: all)."),
    samples: int = typer.Option(256_000, "--samples", help="Descriptors sampled to fit PCA and GMM."),
    whiten: bool = typer.Option(False, "--whiten", help="PCA whitening."),
    fit_list: Path = typer.Option(
        None,
        "--fit-list",
        help="Split list of the videos to fit on (e.g. trainlist01.txt); default: every video.",
    ),
    ids: Path = typer.Option(None, "--list", help="Only encode the videos of this split list."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """One Fisher vector (or word histogram) per video, from its stored descriptors."""
    from deepvideo.features import videos
    from deepvideo.features.encoding import Encoder, fit_encoder
    from deepvideo.features.extract import feature_files

    try:
        files = feature_files(features)
        if encoder.exists():
            enc = Encoder.load(encoder)
        else:
            fit = {v: files[v] for v in videos.read_id_list(fit_list) if v in files} if fit_list else files
            names = [t for t in types.split(",") if t] if types else None
            sample = videos.sample_descriptors(fit, names, samples, seed)
            enc = fit_encoder(sample, kind, components, whiten=whiten, seed=seed)
            enc.save(encoder)
            typer.echo(f"fitted a {kind} encoder on {len(fit)} videos -> {encoder}")
        if ids is not None:
            wanted = videos.read_id_list(ids)
            missing = [v for v in wanted if v not in files]
            if missing:
                fail(
                    f"{ids}: {len(missing)} listed video(s) have no features in {features}, "
                    f"e.g. {missing[:3]}"
                )
            files = {v: files[v] for v in wanted}
        vid, vec = videos.encode_files(files, enc)
        videos.save_vectors(
            out, vid, vec, {"encoder": str(encoder), "kind": enc.kind, "features": str(features)}
        )
    except (OSError, ValueError, KeyError) as exc:
        fail(str(exc))
    typer.echo(f"{len(vid)} videos encoded ({vec.shape[1] if len(vec) else 0} dims) -> {out}")


def _class_names(path: Path | None, ids: list[str]) -> list[str]:
    from deepvideo.features.videos import class_of

    if path is None:
        return sorted({class_of(v) for v in ids})
    names = [line.split()[-1] for line in path.read_text().splitlines() if line.strip()]  # "1 Name" or "Name"
    if not names:
        raise ValueError(f"{path}: no class names")
    return names


@app.command()
def svm(
    vectors: Path = typer.Argument(..., help="Vectors file of `deepvideo features encode`."),
    train: Path = typer.Option(..., "--train", help="Split list of the training videos."),
    test: Path = typer.Option(..., "--test", help="Split list of the test videos."),
    val: Path = typer.Option(
        None,
        "--val",
        help="Split list of validation videos (scores for choosing "
        "fusion weights, written to OUT/val/scores.npz).",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for scores.npz (the format `deepvideo fuse` reads)."),
    c: float = typer.Option(100.0, "--C", help="SVM regularisation constant (100 in Wang & Schmid 2013)."),
    classes: Path = typer.Option(
        None,
        "--classes",
        help="Class list (e.g. classInd.txt); default: the sorted class folders of the video ids.",
    ),
) -> None:
    """Linear one-vs-rest SVMs on the training videos' vectors; scores and accuracy of the test videos."""
    import numpy as np

    from deepvideo.engine.fusion import ScoreSet, save_scores
    from deepvideo.features import videos
    from deepvideo.features.encoding import train_svm

    try:
        ids, x, _ = videos.load_vectors(vectors)
        names = _class_names(classes, ids)
        index = {n: i for i, n in enumerate(names)}

        def part(lst: Path):
            wanted = videos.read_id_list(lst)
            labels = [index.get(videos.class_of(v, f"{lst}: ")) for v in wanted]
            if None in labels:
                raise ValueError(
                    f"{lst}: class {videos.class_of(wanted[labels.index(None)])!r} is not in the class list"
                )
            return wanted, videos.select(ids, x, wanted, str(lst)), np.array(labels)

        _, x_train, y_train = part(train)
        model = train_svm(x_train, y_train, c)
        sets = {"test": test, **({"val": val} if val else {})}
        for name, lst in sets.items():
            vid, xs, ys = part(lst)
            dec = np.full((len(vid), len(names)), -1e3, np.float32)
            d = model.decision_function(xs)
            dec[:, model.classes_] = d if d.ndim == 2 else np.stack([-d, d], 1)
            folder = out if name == "test" else out / "val"
            folder.mkdir(parents=True, exist_ok=True)
            save_scores(
                folder / "scores.npz",
                ScoreSet(
                    vid,
                    ys,
                    dec[:, None],
                    dec,
                    names,
                    "mean",
                    {"model": f"svm({vectors.name})", "scores": "svm", "C": c, "subset": name},
                ),
            )
            typer.echo(
                f"{name}: {len(vid)} videos, accuracy {100 * float((dec.argmax(1) == ys).mean()):.1f}% "
                f"-> {folder / 'scores.npz'}"
            )
    except (OSError, ValueError) as exc:
        fail(str(exc))
