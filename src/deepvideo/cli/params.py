"""Parsing of command-line values shared by several command groups."""

from __future__ import annotations

import typer


def parse_params(items: list[str]) -> dict:
    """``["k=v", ...]`` -> ``{k: v}`` with v an int or float where it reads as one."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected key=value, got {item!r}")
        for cast in (int, float):
            try:
                params[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            params[key] = value
    return params
