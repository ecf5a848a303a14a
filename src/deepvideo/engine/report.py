"""Run reports: ``report.md`` with a metrics table, training curves and a confusion matrix.

Figures are drawn with matplotlib's Agg backend (no display needed). Every file is written
to a temporary name and renamed, so a report is never half-written.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deepvideo.engine.metrics import per_class_accuracy
from deepvideo.io.atomic import atomic_write_bytes, atomic_write_text

#: metric key -> column title, in table order (missing keys are left out)
METRIC_COLUMNS = {
    "clip_hit@1": "clip hit@1",
    "clip_hit@5": "clip hit@5",
    "video_hit@1": "video hit@1",
    "video_hit@5": "video hit@5",
    "mean_class_accuracy": "mean class acc.",
    "num_videos": "videos",
    "num_views": "views/video",
}
PERCENT = {"clip_hit@1", "clip_hit@5", "video_hit@1", "video_hit@5", "mean_class_accuracy"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def format_value(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key in PERCENT:
        return f"{100 * float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metrics_table(rows: Mapping[str, Mapping], columns: Mapping[str, str] | None = None) -> str:
    """A markdown table, one row per named result; accuracies in percent."""
    columns = dict(columns or METRIC_COLUMNS)
    keys = [k for k in columns if any(k in r for r in rows.values())]
    lines = ["| model | " + " | ".join(columns[k] for k in keys) + " |",
             "|---|" + "---:|" * len(keys)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_value(k, r.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def write_confusion_csv(path: str | Path, cm, class_names: Sequence[str]) -> Path:
    """Counts with class names as the header row and first column (rows: true class)."""
    cm = np.asarray(cm)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["true \\ predicted", *class_names])
    for name, row in zip(class_names, cm, strict=True):
        w.writerow([name, *(int(v) for v in row)])
    return atomic_write_text(path, out.getvalue())


def plot_confusion(path: str | Path, cm, class_names: Sequence[str], title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix with class names on both axes.

    The figure grows with the number of classes and the tick labels shrink so that up to
    about 100 classes stay legible; counts are written in the cells for up to 30 classes.
    """
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = min(28.0, max(5.0, 0.22 * k + 2.5))
    cell_pt = 72.0 * side * 0.85 / max(k, 1)  # height of one matrix row in points
    font = max(5.0, min(10.0, 0.45 * cell_pt))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(class_names, rotation=90, fontsize=font)
    ax.set_yticklabels(class_names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=font,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    return _save_figure(fig, path)


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """The trainer's per-epoch CSV history as ``{column: float array}`` (non-numbers -> NaN)."""
    path = Path(path)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        fields = reader.fieldnames or []
    out = {}
    for name in fields:
        vals = []
        for r in rows:
            try:
                vals.append(float(r.get(name) or "nan"))
            except ValueError:
                vals.append(float("nan"))
        out[name] = np.array(vals, dtype=np.float64)
    return out


def _is_accuracy(name: str) -> bool:
    n = name.lower()
    return any(t in n for t in ("acc", "top1", "top5", "hit@")) and "lr" != n


def plot_history(path: str | Path, history: Mapping[str, np.ndarray], title: str = "Training") -> Path | None:
    """Loss (left) and accuracy (right) per epoch; ``None`` when there is nothing to plot."""
    if not history:
        return None
    x_key = next((k for k in ("epoch", "epochs") if k in history), None)
    n = max(len(v) for v in history.values())
    if n == 0:
        return None
    x = history[x_key] if x_key else np.arange(1, n + 1, dtype=np.float64)
    loss = [k for k in history if "loss" in k.lower() and k != x_key]
    acc = [k for k in history if _is_accuracy(k) and k != x_key and k not in loss]
    if not loss and not acc:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, keys, label in ((axes[0], loss, "loss"), (axes[1], acc, "accuracy")):
        for k in keys:
            y = history[k]
            ok = ~np.isnan(y)
            if ok.any():
                ax.plot(x[ok], y[ok], marker="o", markersize=3, label=k)
        ax.set_xlabel("epoch")
        if label == "accuracy" and any(np.nanmax(history[k], initial=0.0) > 1.5 for k in keys):
            label = "accuracy (%)"
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save_figure(fig, path)


def per_class_table(cm, class_names: Sequence[str]) -> str:
    acc = per_class_accuracy(cm)
    counts = np.asarray(cm).sum(axis=1)
    lines = ["| class | videos | accuracy |", "|---|---:|---:|"]
    for name, n, a in zip(class_names, counts, acc, strict=True):
        lines.append(f"| {name} | {int(n)} | {format_value('mean_class_accuracy', float(a))} |")
    return "\n".join(lines)


def write_report(run_dir: str | Path, results: Mapping[str, Mapping], *, title: str = "Run report",
                 class_names: Sequence[str] | None = None, confusion=None, confusion_name: str = "",
                 history_csv: str | Path | None = None, notes: Sequence[str] = (),
                 skipped: Sequence[str] = (), extra_sections: Mapping[str, str] | None = None) -> Path:
    """Write ``run_dir/report.md`` (+ ``confusion.csv/png`` and ``curves.png`` when given data).

    ``results`` maps a row name to a metrics dict (``video_metrics`` output or scalars).
    ``confusion`` (``[K, K]``) with ``class_names`` adds the confusion matrix and per-class
    accuracies; ``history_csv`` (the trainer's per-epoch CSV) adds training curves.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    parts += [*notes, ""] if notes else []
    parts += ["## Results", "", "Accuracies in percent. Clip level scores every test view alone; video "
              "level scores the views aggregated per video.", "", metrics_table(results), ""]
    if history_csv is not None and Path(history_csv).is_file():
        hist = read_history(history_csv)
        if plot_history(run_dir / "curves.png", hist, title) is not None:
            source = Path(history_csv).name
            parts += ["## Training curves", "", f"![training curves](curves.png)  (from `{source}`)", ""]
    for heading, body in (extra_sections or {}).items():
        parts += [f"## {heading}", "", body, ""]
    if confusion is not None and class_names is not None:
        cm = np.asarray(confusion)
        suffix = f" ({confusion_name})" if confusion_name else ""
        write_confusion_csv(run_dir / "confusion.csv", cm, class_names)
        plot_confusion(run_dir / "confusion.png", cm, class_names, f"Confusion matrix{suffix}")
        parts += [f"## Confusion matrix{suffix}", "", "![confusion matrix](confusion.png)", "",
                  "Counts: [confusion.csv](confusion.csv) (rows: true class, columns: predicted).", "",
                  "### Per-class accuracy", "", per_class_table(cm, class_names), ""]
    if skipped:
        parts += ["## Skipped videos", "", *[f"- `{s}`" for s in skipped], ""]
    return atomic_write_text(run_dir / "report.md", "\n".join(parts).rstrip() + "\n")
