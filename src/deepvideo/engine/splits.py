"""The 3-split protocol of UCF101 and HMDB51: train and test once per split, report the mean.

Trains through :func:`deepvideo.engine.loop.main_train` and tests through
:func:`deepvideo.engine.evaluate.evaluate_checkpoint` (it sits above both).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from deepvideo.engine.config import load_config
from deepvideo.engine.evaluate import evaluate_checkpoint, json_ready, mean_over_splits
from deepvideo.engine.loop import main_train
from deepvideo.engine.report import write_report
from deepvideo.io.atomic import atomic_write_text


def three_split_protocol(config_path: str | Path, overrides: Sequence[str] = (),
                         splits: Sequence[int] = (1, 2, 3), out_dir: str | Path | None = None,
                         progress: bool | None = None) -> dict:
    """Train and test once per split (UCF101/HMDB51 protocol); report each split and the mean.

    For split ``s`` the recipe runs with ``name=<name>_split<s>`` and ``split=s`` set in every
    ``data.train/val/test`` section that has a ``split`` key (or a ucf101/hmdb51 format).
    Writes ``<out_dir>/report.md`` and ``summary.json`` (default ``runs/<name>_splits``).
    """
    base = load_config(config_path, list(overrides))
    per_split: dict[str, dict] = {}
    results = {}
    for s in splits:
        run_dir = Path(base.output_dir).parent / f"{base.name}_split{s}"
        extra = [f"name={base.name}_split{s}", f"output_dir={run_dir}"]
        for section in ("train", "val", "test"):
            sec = getattr(base.data, section)
            if sec and ("split" in sec or sec.get("format") in ("ucf101", "hmdb51")):
                extra.append(f"data.{section}.split={s}")
        run = main_train(config_path, [*overrides, *extra], progress=progress)
        ckpt = run.best_checkpoint or run.last_checkpoint
        res = evaluate_checkpoint(ckpt, progress=progress, name=f"split {s}")
        per_split[f"split {s}"] = res.metrics
        results[s] = {"run_dir": str(run.run_dir), "test_dir": str(res.out_dir)}
    mean = mean_over_splits(per_split)
    out = Path(out_dir) if out_dir is not None else Path(base.output_dir).parent / f"{base.name}_splits"
    rows = {**per_split, "mean": mean}
    write_report(out, rows, title=f"{base.name}: {len(splits)}-split protocol",
                 notes=[f"Recipe `{config_path}`; one training run and test per split; the last row is the "
                        "mean over splits."])
    summary = {"splits": {k: json_ready(v) for k, v in per_split.items()}, "mean": mean, "runs": results}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return {"per_split": per_split, "mean": mean, "out_dir": out, "runs": results}
