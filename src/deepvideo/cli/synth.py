"""`deepvideo data synth NAME`: deterministic synthetic benchmark datasets."""

from __future__ import annotations

import typer


def register(data_app: typer.Typer) -> None:
    """Add the ``synth`` command to the ``deepvideo data`` group."""
