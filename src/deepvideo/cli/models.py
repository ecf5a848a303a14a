"""Top-level models commands: ``deepvideo models`` and ``deepvideo convert``."""

from __future__ import annotations

from pathlib import Path

import typer


def models(
    flops: bool = typer.Option(False, "--flops", help="Also count GFLOPs per view (at the zoo test size)."),
    family: str = typer.Option(None, "--family", help="Only this family (module name, e.g. resnet3d, x3d)."),
    published: bool = typer.Option(
        False, "--published",
        help="Only presets with published figures: ours (params, GFLOPs at the published test size) "
        "beside the papers', with the differences and the source.",
    ),
) -> None:
    """List the registered models: name, input, parameters (and FLOPs) beside the published ones."""
    from rich.console import Console
    from rich.table import Table

    from deepvideo.models.registry import list_models
    from deepvideo.models.zoo import zoo_rows

    infos = list_models(family)
    if not infos:
        families = sorted({i.family for i in list_models()})
        raise typer.BadParameter(f"no models in family {family!r}; families: {', '.join(families)}")
    if published:
        infos = [i for i in infos if i.published is not None]
        if not infos:
            raise typer.BadParameter(f"no model of family {family!r} carries published figures")
        Console(width=200).print(_published_table([i.name for i in infos]))
        return
    table = Table(title=f"{len(infos)} models")
    numbers = ("params (M)", "published") + (("GFLOPs", "at", "published") if flops else ())
    for col in ("name", "family", "input", *numbers, "summary"):
        text = col in ("name", "family", "input", "at", "summary")
        table.add_column(col, justify="left" if text else "right")

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    for row in zoo_rows([i.name for i in infos], flops=flops):
        stride = row["stride"] if isinstance(row["stride"], int) else "-".join(map(str, row["stride"]))
        cells = [
            row["name"],
            row["family"],
            f"{row['modalities']} {row['frames']}x{stride} {row['crop']}",
            fmt(row["params"]),
            fmt(row["pub_params"]),
        ]
        if flops:
            cells += [fmt(row["gflops"]), row["flops_at"], fmt(row["pub_gflops"])]
        table.add_row(*cells, row["summary"])
    Console(width=200).print(table)


def _delta(ours: float | None, paper: float | None) -> str:
    """``ours`` relative to ``paper`` in percent (``—`` when either is missing)."""
    if ours is None or not paper:
        return "—"
    return f"{100 * (ours - paper) / paper:+.1f}%"


def _published_table(names: list[str]):
    """Ours beside the published parameters and GFLOPs, one row per preset."""
    from rich.table import Table

    from deepvideo.models.zoo import zoo_rows

    table = Table(title=f"{len(names)} presets with published figures (ours beside the papers')")
    for col in ("name", "params (M)", "paper", "Δ", "GFLOPs", "paper", "Δ", "at", "source"):
        table.add_column(col, justify="left" if col in ("name", "at", "source") else "right")

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    for row in zoo_rows(names, flops=True):
        table.add_row(
            row["name"], fmt(row["params"]), fmt(row["pub_params"]), _delta(row["params"], row["pub_params"]),
            fmt(row["gflops"]), fmt(row["pub_gflops"]), _delta(row["gflops"], row["pub_gflops"]),
            row["flops_at"], row["pub_source"],
        )
    return table


def convert(
    src: Path = typer.Argument(
        ..., help="Checkpoint of torchvision / PyTorchVideo / PySlowFast / a tracker (.pth, .safetensors)."
    ),
    dst: Path = typer.Argument(..., help="Output file (.safetensors recommended, or .pth)."),
    model: str = typer.Option(None, "--model", "-m", help="deepvideo model name (see `deepvideo models`)."),
    tracker: str = typer.Option(
        None, "--tracker", help="deepvideo tracker network (siamfc, siamrpnpp, ...; see docs/tracking.md)."
    ),
    source: str = typer.Option(
        None, "--source", help="torchvision | pytorchvideo | pyslowfast | deepvideo, or a tracker "
        "layout (pysot, pytracking, ...) (default: detect)."
    ),
    strict: bool = typer.Option(
        True,
        "--strict/--no-strict",
        help="Weights must fit the model tensor for tensor (default); --no-strict keeps what fits and warns.",
    ),
) -> None:
    """Convert another library's weights into a deepvideo checkpoint for MODEL (or TRACKER)."""
    import warnings

    from deepvideo.models.convert import ConversionError, convert_file

    if (model is None) == (tracker is None):
        typer.echo("error: give exactly one of --model and --tracker", err=True)
        raise typer.Exit(2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if tracker is not None:
                from deepvideo.track.convert import convert_tracker_file

                detected = convert_tracker_file(src, dst, tracker, source)
            else:
                detected = convert_file(src, dst, model, source, strict=strict)
    except (ConversionError, FileNotFoundError, KeyError) as exc:  # damaged or unsafe files included
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    typer.echo(f"{src} ({detected}) -> {dst} [{model or tracker}]")


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app."""
    root.command("models")(models)
    root.command("convert")(convert)
