"""``deepvideo predict RUN --stream SOURCE``: print (or POST) rolling-window predictions."""

from __future__ import annotations

import json

import typer


def predict_stream(scorer, source: str, window: str, stride: str, top_k: int, count: int | None,
                   post: str | None) -> None:
    """One JSON line per window until the source ends, ``count`` windows, or Ctrl-C."""
    from deepvideo.io.errors import VideoError
    from deepvideo.serve.stream import post_json, stream_predictions

    if count is not None and count < 1:
        typer.secho(f"error: --count must be >= 1, got {count}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    predictions = stream_predictions(scorer, source, window, stride, top_k, count)
    try:
        for doc in predictions:
            typer.echo(json.dumps(doc, allow_nan=False))
            if post:
                try:
                    post_json(post, doc)
                except OSError as err:
                    typer.secho(f"warning: POST to {post} failed: {err}", err=True, fg=typer.colors.YELLOW)
    except KeyboardInterrupt:
        predictions.close()  # closes the source
        typer.echo("stopped (Ctrl-C)", err=True)
    except (VideoError, ValueError) as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
