"""`deepvideo data ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app."""
