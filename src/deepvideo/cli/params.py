"""Parsing of command-line values shared by several command groups."""

from __future__ import annotations

import re

import typer
from typer.core import TyperGroup


class RunByDefault(TyperGroup):
    """A command group whose first argument, when it names no sub-command (and is no option), is
    the first argument of its ``run`` command (``deepvideo track VIDEO`` = ``track run VIDEO``)."""

    def resolve_command(self, ctx, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


def fail(message: str, code: int = 1):
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad usage, 1: bad input)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


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
