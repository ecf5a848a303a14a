"""Parsing of command-line values shared by several command groups."""

from __future__ import annotations

import re

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


def parse_size(text: str) -> tuple[int, int]:
    """``"112x112"`` -> (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 112x112, got {text!r}")
    return int(match.group(1)), int(match.group(2))
