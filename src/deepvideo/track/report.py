"""Tracking reports: plots, ``report.md`` and ``scores.json`` from evaluations.

::

    write_report(evaluations, out_dir, title="Tracking results") -> Path   # report.md

``evaluations`` are results of :func:`deepvideo.track.evaluate.evaluate_ope`,
``evaluate_got10k`` or ``evaluate_vot`` (one per tracker, protocols may be mixed), or the path
of a ``scores.json`` written before. Written into ``out_dir`` (atomically):

- ``scores.json``: every evaluation, curves as lists, NaN as null (per-frame IoUs and EAO
  segments left out);
- OPE: ``success_plot.png`` and ``precision_plot.png`` ("Success plots of OPE" / "Precision
  plots of OPE" as in the OTB papers: one curve per tracker, its AUC or precision at 20 px in
  the legend, best first), ``norm_precision_plot.png``;
- GOT-10k: ``got10k_success_plot.png`` (AO in the legend); VOT: ``eao_curve.png``;
- ``report.md``: a table per protocol (OPE: AUC, precision at 20 px, normalized precision,
  success rate at 0.5, fps; GOT-10k: AO, SR0.5, SR0.75, fps; VOT: accuracy, robustness,
  failures, EAO, fps), per-attribute and per-sequence tables, and which toolkit definition
  each figure follows.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from deepvideo.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from deepvideo.track import metrics

DROPPED = ("ious", "segments")  # per-frame data kept out of scores.json

DEFINITIONS = {
    "ope": "OPE, OTB mode of the GOT-10k toolkit: success = IoU > threshold over 21 thresholds "
           "0..1, AUC = mean of the curve; precision = centre error <= 20 px; normalized "
           "precision = AUC over 0..0.5 of the centre error divided by the ground-truth size "
           "(TrackingNet / LaSOT); dataset curves = mean of per-sequence curves.",
    "got10k": "GOT-10k toolkit: AO = mean IoU over visible frames after the first (boxes "
              "clipped to the image), SR = fraction with IoU > 0.5 / 0.75, all frames of all "
              "sequences and repetitions pooled.",
    "vot": "VOT supervised (reset-based) protocol of vot-toolkit: failure = overlap 0, "
           "re-initialisation 5 frames later; accuracy skips 10 frames after each "
           "initialisation; robustness = length-weighted mean failures per sequence; EAO over "
           "the interval shown.",
}

COLUMNS = {  # protocol -> (header, key, format) for the main table
    "ope": [("AUC", "auc", "{:.3f}"), ("P@20", "precision", "{:.3f}"),
            ("Norm. P", "norm_precision", "{:.3f}"), ("SR0.5", "success_rate", "{:.3f}"),
            ("FPS", "fps", "{:.1f}"), ("Seqs", "sequences", "{}")],
    "got10k": [("AO", "ao", "{:.3f}"), ("SR0.5", "sr50", "{:.3f}"), ("SR0.75", "sr75", "{:.3f}"),
               ("FPS", "fps", "{:.1f}"), ("Seqs", "sequences", "{}")],
    "vot": [("Accuracy", "accuracy", "{:.3f}"), ("Robustness", "robustness", "{:.3f}"),
            ("Failures", "failures", "{:.1f}"), ("EAO", "eao", "{:.3f}"), ("FPS", "fps", "{:.1f}"),
            ("Seqs", "sequences", "{}")],
}
MAIN_SCORE = {"ope": "auc", "got10k": "ao", "vot": "eao"}


def json_ready(value):
    """``value`` with arrays as lists, NaN / inf as None and per-frame data dropped."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items() if k not in DROPPED}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def load_scores(path) -> list[dict]:
    """The evaluations of a ``scores.json``."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("trackers"), list):
        raise ValueError(f"{path}: not a deepvideo tracking scores.json (no 'trackers' list)")
    return data["trackers"]


def _rank_key(value) -> float:
    """Sort key putting the best score first and missing scores last."""
    return -value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def _number(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(path: Path, x, curves: dict[str, tuple[np.ndarray, float]], title: str,
                xlabel: str, ylabel: str, score_format: str = "{:.3f}") -> Path:
    """One curve per tracker, ``curves = {name: (curve, score)}``, legend ``name [score]``
    sorted by score (best first)."""
    figure = Figure(figsize=(5.5, 4.2))
    axes = figure.add_subplot()
    styles = ["-", "--", "-.", ":"]
    ordered = sorted(curves.items(), key=lambda item: _rank_key(item[1][1]))
    for index, (name, (curve, score)) in enumerate(ordered):
        axes.plot(x, curve, styles[index // 10 % len(styles)],
                  label=f"{name} [{_number(score, score_format)}]")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(x[0], x[-1]), ylim=(0, 1))
    axes.grid(True, alpha=0.4)
    axes.legend(loc="lower left" if "Success" in title else "lower right", fontsize=8)
    _save(figure, path)
    return path


def _plots(protocol: str, evaluations: list[dict], out_dir: Path) -> list[Path]:
    overall = {e["tracker"]: e["overall"] for e in evaluations}
    if protocol == "ope":
        return [
            plot_curves(out_dir / "success_plot.png", metrics.SUCCESS_THRESHOLDS,
                        {n: (o["success_curve"], o["auc"]) for n, o in overall.items()},
                        "Success plots of OPE", "Overlap threshold", "Success rate"),
            plot_curves(out_dir / "precision_plot.png", metrics.PRECISION_THRESHOLDS,
                        {n: (o["precision_curve"], o["precision"]) for n, o in overall.items()},
                        "Precision plots of OPE", "Location error threshold (px)", "Precision"),
            plot_curves(out_dir / "norm_precision_plot.png", metrics.NORM_PRECISION_THRESHOLDS,
                        {n: (o["norm_precision_curve"], o["norm_precision"])
                         for n, o in overall.items()},
                        "Normalized precision plots of OPE", "Normalized location error threshold",
                        "Precision")]
    if protocol == "got10k":
        return [plot_curves(out_dir / "got10k_success_plot.png", metrics.GOT10K_THRESHOLDS,
                            {n: (o["success_curve"], o["ao"]) for n, o in overall.items()},
                            "Success plots on GOT-10k", "Overlap threshold", "Success rate")]
    length = max(len(o["eao_curve"]) for o in overall.values())
    padded = {n: (np.pad(np.asarray(o["eao_curve"], float), (0, length - len(o["eao_curve"])),
                         constant_values=np.nan), o["eao"]) for n, o in overall.items()}
    return [plot_curves(out_dir / "eao_curve.png", np.arange(length), padded,
                        "Expected average overlap", "Sequence length", "EAO")]


def _section(protocol: str, evaluations: list[dict], plots: list[Path]) -> list[str]:
    columns, key = COLUMNS[protocol], MAIN_SCORE[protocol]
    ranked = sorted(evaluations, key=lambda e: _rank_key(e["overall"].get(key)))
    lines = [f"## {protocol.upper() if protocol != 'got10k' else 'GOT-10k'}", "",
             DEFINITIONS[protocol], ""]
    if protocol == "vot" and ranked[0]["overall"].get("eao_interval"):
        lines += [f"EAO interval: {ranked[0]['overall']['eao_interval']}.", ""]
    rows = [[e["tracker"]] + [_number(e["overall"].get(k), f) for _, k, f in columns] for e in ranked]
    lines += _table(["Tracker"] + [h for h, _, _ in columns], rows) + [""]
    lines += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    names = [e["tracker"] for e in ranked]
    score = "accuracy" if protocol == "vot" else key
    attributes = sorted({a for e in ranked for a in e.get("attributes", {})})
    if attributes:
        lines += [f"### {score} per attribute (sequences with the attribute on any frame)", ""]
        lines += _table(["Attribute"] + names, [
            [a] + [_number(e["attributes"].get(a, {}).get(score), "{:.3f}") for e in ranked]
            for a in attributes]) + [""]
    sequences = sorted({s for e in ranked for s in e["sequences"]})
    lines += [f"### {score} per sequence", ""]
    lines += _table(["Sequence"] + names, [
        [s] + [_number(e["sequences"].get(s, {}).get(score), "{:.3f}") for e in ranked]
        for s in sequences]) + [""]
    return lines


def write_report(evaluations: Iterable[dict] | str | Path, out_dir, title: str = "Tracking results"
                 ) -> Path:
    """Write plots, ``report.md`` and ``scores.json`` into ``out_dir``; returns report.md."""
    evaluations = load_scores(evaluations) if isinstance(evaluations, (str, Path)) \
        else [json_ready(e) for e in evaluations]
    if not evaluations:
        raise ValueError("write_report: no evaluations")
    unknown = {e.get("protocol") for e in evaluations} - set(COLUMNS)
    if unknown:
        raise ValueError(f"write_report: unknown protocols {sorted(map(str, unknown))}; "
                         f"expected evaluations of {', '.join(COLUMNS)}")
    groups = {p: [e for e in evaluations if e["protocol"] == p] for p in COLUMNS}
    for protocol, group in groups.items():
        names = [e["tracker"] for e in group]
        if len(set(names)) != len(names):
            raise ValueError(f"write_report: tracker names repeat in the {protocol} evaluations: "
                             f"{names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "scores.json", {"trackers": evaluations})
    lines = [f"# {title}", ""]
    for protocol, group in groups.items():
        if group:
            lines += _section(protocol, group, _plots(protocol, group, out_dir))
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))
