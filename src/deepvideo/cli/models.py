"""Top-level models commands."""

from __future__ import annotations

import typer


def register_top_level(root: typer.Typer) -> None:
    """Add this group's top-level commands to the root app."""
