"""`deepvideo data ...` commands and `deepvideo info`."""

from __future__ import annotations

import typer

from deepvideo.cli import synth

app = typer.Typer(no_args_is_help=True)
synth.register(app)


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app."""
