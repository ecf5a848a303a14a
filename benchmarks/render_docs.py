"""Render every generated page from stored results (the single source of truth of their figures).

- ``docs/benchmarks.md`` from ``benchmarks/results/*.json`` (one section per file);
- the demo block of ``README.md`` (between ``<!-- demo-table:start -->`` and
  ``<!-- demo-table:end -->``) from ``benchmarks/results/demo.json``: the runs of ``make demo``
  recorded with ``--add-demo runs/demo/results.json``; a figure that differs between runs is
  shown as the range measured;
- ``docs/model_zoo.md`` from the registry and ``benchmarks/results/zoo_*.json``;
- the tracker table of ``docs/tracking.md`` (between ``<!-- trackers:start -->`` and
  ``<!-- trackers:end -->``) from the tracker registry;
- the dynamic images + IDT table of ``docs/features.md`` (between ``<!-- dynamic-idt:start -->``
  and ``<!-- dynamic-idt:end -->``) from ``benchmarks/results/dynamic_idt.json``.

``make docs`` runs this script; ``tests/test_docs.py`` fails when a committed page differs
from its rendering.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEMO_RESULTS = "demo.json"
README_START, README_END = "<!-- demo-table:start -->", "<!-- demo-table:end -->"
TRACKERS_START, TRACKERS_END = "<!-- trackers:start -->", "<!-- trackers:end -->"
DYNAMIC_IDT_START, DYNAMIC_IDT_END = "<!-- dynamic-idt:start -->", "<!-- dynamic-idt:end -->"
# results.json metrics shown per demo row: (column title, key, percent)
DEMO_COLUMNS = (("clip hit@1 %", "clip_hit@1"), ("video hit@1 %", "video_hit@1"),
                ("video hit@5 %", "video_hit@5"))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


# --------------------------------------------------------------------------- the demo


def _span(values: list[float], digits: int = 1) -> str:
    """``"82.0"`` when every run gave the same figure, else the range ``"5.0–12.0"``."""
    if not values:
        return "-"
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _cell(runs: list[dict], table: str, name: str, key: str) -> str:
    return _span([100 * r[table][name][key] for r in runs if key in r[table].get(name, {})])


def demo_table(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the demo table over ``runs`` (rows in the first run's order)."""
    names = list(runs[0]["rows"])
    moving = any(r.get("moving_camera") for r in runs)
    columns = ["model", *[title for title, _ in DEMO_COLUMNS]]
    if moving:
        columns.append("moving-camera test: video hit@1 %")
    rows = []
    for name in names:
        row = [name, *[_cell(runs, "rows", name, key) for _, key in DEMO_COLUMNS]]
        if moving:
            row.append(_cell(runs, "moving_camera", name, "video_hit@1"))
        rows.append(row)
    return columns, rows


def _markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return out + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _demo_setup(run: dict) -> str:
    s, m = run["synth"], run.get("moving_camera_test")
    text = (f"`{s['set']}`, {s['videos_per_class']} videos per class of {s['frames']} frames at "
            f"{s['size']}x{s['size']} pixels, camera {s.get('camera', 'static')}; split 1")
    if m:
        text += (f"; moving-camera test set: the same classes filmed by a moving camera, other scenes "
                 f"(seed {m['seed']}), its split-1 {m['subset']} list")
    return text


def _wall_minutes(runs: list[dict]) -> str:
    return _span([r["wall_time_s"] / 60 for r in runs])


def demo_summary(runs: list[dict]) -> str:
    """Runs, wall time and machine of the demo table, in one sentence."""
    machine = runs[-1].get("machine", {})
    cores = machine.get("cpu_count", "?")
    dates = sorted(r.get("date", "?")[:10] for r in runs)
    loads = [r["machine"]["load_average"] for r in runs if "load_average" in r.get("machine", {})]
    text = (f"{len(runs)} run(s) of `make demo` ({dates[0]} to {dates[-1]}) on {cores} CPU cores, "
            f"{machine.get('torch_threads', '?')} torch threads: the whole demo took {_wall_minutes(runs)} "
            "minutes of wall-clock time")
    cpu = [r["cpu_s"]["total"] / 60 for r in runs if "total" in r.get("cpu_s", {})]
    if cpu:
        text += f" ({_span(cpu)} CPU minutes in the demo process, all threads; rendering workers not counted)"
    if loads:
        threads = machine.get("torch_threads", "?")
        text += (f", 1-minute load average at its end {_span(loads)} (its own {threads} threads count for "
                 f"{threads} of it; more means other jobs shared the cores)")
    return text


def render_demo_block(runs: list[dict]) -> str:
    """The README's demo block (between the markers, markers excluded)."""
    columns, rows = demo_table(runs)
    classes = runs[-1].get("num_classes")
    chance = f"; chance is {100 / classes:.0f}%." if classes else "."
    lines = ["", "Generated by `make docs` from `benchmarks/results/demo.json` (the `results.json` of each "
             "recorded `make demo` run); do not edit by hand. Data: " + _demo_setup(runs[-1]) + ". "
             "Video hit@1 averages the scores of the clips of a test video" + chance, "",
             *_markdown_table(columns, rows), "",
             demo_summary(runs) + ". A range is the lowest and highest figure over the runs; a single "
             "figure repeated in every run. Recipes: `configs/demo/`; `runs/demo/report.md` has the "
             "curves, the confusion matrix and the time of every step.", ""]
    return "\n".join(lines)


def demo_section(record: dict) -> dict:
    """The demo record as a docs/benchmarks.md section (columns and rows from its runs)."""
    runs = record["runs"]
    columns, rows = demo_table(runs)
    description = record["description"].strip() + " Data: " + _demo_setup(runs[-1]) + "."
    return {**record, "description": description, "columns": columns, "rows": rows,
            "summary": {"runs": len(runs), "wall minutes": _wall_minutes(runs)},
            "machine": {**runs[-1].get("machine", {}), "date": runs[-1].get("date", "?")[:10]}}


def add_demo_run(results_json: Path, results_dir: Path = RESULTS, restart: bool = False) -> Path:
    """Append the run of ``results_json`` (written by ``deepvideo demo``) to the demo record;
    ``restart`` drops the runs recorded before (after a change to what the demo trains)."""
    from deepvideo.io.atomic import atomic_write_json

    run = json.loads(Path(results_json).read_text())
    missing = [k for k in ("rows", "wall_time_s", "synth") if k not in run]
    if missing:
        raise SystemExit(f"{results_json}: not a demo results.json (missing {', '.join(missing)}); "
                         "pass the results.json that `deepvideo demo` wrote")
    path = results_dir / DEMO_RESULTS
    record = json.loads(path.read_text()) if path.is_file() and not restart else {
        "title": "The demo (`make demo`): two-stream networks on synthetic motion",
        "command": "make demo && python benchmarks/render_docs.py --add-demo runs/demo/results.json",
        "description": "Video hit@1 of the demo's models on split 1 (`deepvideo demo`, recipes in "
                       "`configs/demo/`), one row per model, over the recorded runs.",
        "runs": []}
    record["runs"].append(run)
    return atomic_write_json(path, record, default=float)


# --------------------------------------------------------------------------- pages


def render(results_dir: Path = RESULTS) -> str:
    """docs/benchmarks.md."""
    parts = ["# Benchmarks", "",
             "Generated by `python benchmarks/render_docs.py` from `benchmarks/results/*.json`;",
             "do not edit by hand. Each section names the command that reproduces it. Every",
             "figure was measured on the machine listed under it; ratios compare against the",
             "named peer in the same run.", ""]
    for path in sorted(results_dir.glob("*.json")):
        r = json.loads(path.read_text())
        if "runs" in r:
            r = demo_section(r)
        parts += [f"## {r['title']}", "", r["description"].strip(), "",
                  f"Command: `{r['command']}`", ""]
        if r.get("columns"):
            parts += [*_markdown_table(r["columns"], r["rows"]), ""]
        if r.get("summary"):
            parts.append("Summary: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in r["summary"].items()))
            parts.append("")
        m = r.get("machine", {})
        parts += [f"Measured {m.get('date', '?')} on {m.get('cpu_count', '?')} CPU cores "
                  f"({m.get('processor', '?')}), torch {m.get('torch', '?')}, "
                  f"{m.get('torch_threads', '?')} threads.", ""]
    return "\n".join(parts)


def replace_block(text: str, start: str, end: str, block: str, where: str) -> str:
    """``text`` with what lies between the markers ``start`` and ``end`` replaced by ``block``."""
    if text.count(start) != 1 or text.count(end) != 1:
        raise SystemExit(f"{where} needs exactly one {start} ... {end} pair around its generated "
                         "block; add the markers where the block belongs")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return head + start + block + end + tail


def readme_with_demo_block(readme: str, results_dir: Path = RESULTS) -> str:
    """``readme`` with its demo block replaced by the rendering of the recorded demo runs."""
    path = results_dir / DEMO_RESULTS
    if not path.is_file():
        raise SystemExit(f"{path}: no demo runs recorded; run `make demo` and then "
                         "`python benchmarks/render_docs.py --add-demo runs/demo/results.json`")
    block = render_demo_block(json.loads(path.read_text())["runs"])
    return replace_block(readme, README_START, README_END, block, "README.md")


def trackers_block() -> str:
    """The registered trackers as a markdown table (name, what it is, paper, availability)."""
    from deepvideo.track import list_trackers

    rows = [[f"`{i.name}`", i.summary, i.paper, "yes" if i.is_available() else "needs model files"]
            for i in list_trackers()]
    return "\n" + "\n".join(_markdown_table(["tracker", "what", "paper", "runs here"], rows)) + "\n"


def tracking_page(page: str) -> str:
    """docs/tracking.md with its tracker table rendered from the registry."""
    return replace_block(page, TRACKERS_START, TRACKERS_END, trackers_block(), "docs/tracking.md")


def features_page(page: str, results_dir: Path = RESULTS) -> str:
    """docs/features.md with its dynamic images + IDT table rendered from ``dynamic_idt.json``."""
    path = results_dir / "dynamic_idt.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no result recorded; run `python benchmarks/bench_dynamic_idt.py`")
    r = json.loads(path.read_text())
    m = r.get("machine", {})
    block = ["", *_markdown_table(r["columns"], r["rows"]), "",
             f"Command: `{r['command']}`; measured {m.get('date', '?')} on {m.get('cpu_count', '?')} CPU "
             f"cores; wall seconds per step in `docs/benchmarks.md`.", ""]
    return replace_block(page, DYNAMIC_IDT_START, DYNAMIC_IDT_END, "\n".join(block), "docs/features.md")


def model_zoo_page(results_dir: Path = RESULTS) -> str:
    """docs/model_zoo.md (profiles every registered model: about a minute on 2 cores)."""
    from deepvideo.models import zoo

    training = [json.loads(f.read_text()) for f in sorted(results_dir.glob("zoo_*.json"))]
    return zoo.render(zoo.zoo_rows(), training)  # the zoo rework's one call: zoo.render_page(results_dir)


def main(argv: list[str] | None = None) -> None:
    from deepvideo.io.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--add-demo", type=Path, metavar="RESULTS_JSON",
                        help="record a demo run (runs/demo/results.json) before rendering")
    parser.add_argument("--restart-demo", action="store_true",
                        help="with --add-demo: drop the demo runs recorded before this one")
    parser.add_argument("--skip-zoo", action="store_true", help="do not re-profile docs/model_zoo.md")
    args = parser.parse_args(argv)
    if args.add_demo:
        print(f"recorded {args.add_demo} in {add_demo_run(args.add_demo, restart=args.restart_demo)}")
    print(f"wrote {atomic_write_text(ROOT / 'docs' / 'benchmarks.md', render())}")
    readme = ROOT / "README.md"
    print(f"wrote {atomic_write_text(readme, readme_with_demo_block(readme.read_text()))}")
    tracking = ROOT / "docs" / "tracking.md"
    print(f"wrote {atomic_write_text(tracking, tracking_page(tracking.read_text()))}")
    features = ROOT / "docs" / "features.md"
    print(f"wrote {atomic_write_text(features, features_page(features.read_text()))}")
    if not args.skip_zoo:
        print(f"wrote {atomic_write_text(ROOT / 'docs' / 'model_zoo.md', model_zoo_page())}")


if __name__ == "__main__":
    main()
