"""A timeline of class probabilities over a long video: per-window top-k, smoothing, segments,
JSON / CSV / PNG output.

Window ``w`` has probabilities ``probs[w]`` (softmax of the model's scores for that window).
The smoothed timeline is a centred moving average over ``smooth`` windows (shorter at the
ends); its arg-max per window, with runs of equal classes merged, gives the segments
("class c from t0 to t1").
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvideo.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text


def moving_average(probs: np.ndarray, width: int) -> np.ndarray:
    """Centred mean over ``width`` rows (an odd width is centred; ends use the rows there are)."""
    if width < 1:
        raise ValueError(f"smoothing width must be >= 1, got {width}")
    probs = np.asarray(probs, dtype=np.float64)
    if width == 1 or len(probs) == 0:
        return probs.copy()
    before, after = (width - 1) // 2, width // 2
    csum = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
    n = len(probs)
    lo = np.clip(np.arange(n) - before, 0, n)
    hi = np.clip(np.arange(n) + after + 1, 0, n)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def top_k(probs: np.ndarray, class_names: list[str], k: int) -> list[dict]:
    """``[{"class", "index", "probability"}]`` of the ``k`` most probable classes (ties: lower index)."""
    order = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
    return [{"class": class_names[i], "index": int(i), "probability": float(probs[i])} for i in order]


@dataclass
class Timeline:
    """Per-window probabilities of one video; times in seconds (frame / fps)."""

    source: str
    class_names: list[str]
    fps: float
    starts: list[int] = field(default_factory=list)  # first frame of each window
    ends: list[int] = field(default_factory=list)  # one past its last frame
    probs: list[np.ndarray] = field(default_factory=list)
    smooth: int = 1

    def add(self, start: int, end: int, probs: np.ndarray) -> None:
        self.starts.append(int(start))
        self.ends.append(int(end))
        self.probs.append(np.asarray(probs, dtype=np.float64))

    def matrix(self) -> np.ndarray:
        return np.stack(self.probs) if self.probs else np.zeros((0, len(self.class_names)))

    def smoothed(self) -> np.ndarray:
        return moving_average(self.matrix(), self.smooth)

    def seconds(self, frame: int) -> float:
        return round(frame / self.fps, 4) if self.fps else float(frame)

    def segments(self) -> list[dict]:
        """Runs of windows whose smoothed top class is the same, with their time span."""
        labels = self.smoothed().argmax(axis=1) if self.probs else []
        out: list[dict] = []
        for w, c in enumerate(labels):
            if out and out[-1]["index"] == int(c) and out[-1]["_last"] == w - 1:
                out[-1].update(end=self.seconds(self.ends[w]), _last=w)
            else:
                out.append({"class": self.class_names[c], "index": int(c),
                            "start": self.seconds(self.starts[w]), "end": self.seconds(self.ends[w]),
                            "_last": w})
        return [{k: v for k, v in s.items() if k != "_last"} for s in out]

    def to_dict(self, k: int = 5) -> dict:
        smoothed = self.smoothed()
        windows = [{"window": w, "start": self.seconds(s), "end": self.seconds(e), "start_frame": s,
                    "end_frame": e, "top": top_k(p, self.class_names, k),
                    "smoothed_top": top_k(smoothed[w], self.class_names, 1)[0]}
                   for w, (s, e, p) in enumerate(zip(self.starts, self.ends, self.probs, strict=True))]
        return {"source": self.source, "fps": self.fps, "smooth": self.smooth, "classes": self.class_names,
                "windows": windows, "segments": self.segments()}

    def csv_text(self, k: int = 5) -> str:
        """One row per window: times, top-k classes and probabilities, the smoothed top class."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        k = min(k, len(self.class_names))
        head = ["window", "start_s", "end_s"]
        for r in range(1, k + 1):
            head += [f"top{r}", f"p{r}"]
        writer.writerow(head + ["smoothed_top1", "smoothed_p1"])
        for w in self.to_dict(k)["windows"]:
            row = [w["window"], w["start"], w["end"]]
            for t in w["top"]:
                row += [t["class"], f"{t['probability']:.6f}"]
            writer.writerow(row + [w["smoothed_top"]["class"], f"{w['smoothed_top']['probability']:.6f}"])
        return buf.getvalue()

    def write(self, path: str | Path, k: int = 5) -> Path:
        """Write ``.json``, ``.csv`` or ``.png`` by the suffix of ``path`` (atomically)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            return atomic_write_json(path, self.to_dict(k), allow_nan=False)
        if suffix == ".csv":
            return atomic_write_text(path, self.csv_text(k))
        if suffix == ".png":
            return atomic_write_bytes(path, plot_png(self))
        raise ValueError(f"{path}: timeline output must end in .json, .csv or .png")


def plot_png(timeline: Timeline, classes: int = 8, dpi: int = 100) -> bytes:
    """PNG bytes: the smoothed probabilities of the ``classes`` most present classes over time
    as a heat map (one row per class, one column per window)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    probs = timeline.smoothed()
    if len(probs) == 0:
        raise ValueError(f"{timeline.source}: no windows to plot")
    shown = np.argsort(-probs.max(axis=0), kind="stable")[: min(classes, probs.shape[1])]
    t0 = [timeline.seconds(s) for s in timeline.starts]
    t1 = [timeline.seconds(e) for e in timeline.ends]
    centres = [(a + b) / 2 for a, b in zip(t0, t1, strict=True)]
    fig = Figure(figsize=(9, 1.2 + 0.3 * len(shown)), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    half = (centres[1] - centres[0]) / 2 if len(centres) > 1 else (t1[0] - t0[0]) / 2
    extent = (centres[0] - half, centres[-1] + half, len(shown) - 0.5, -0.5)
    ax.imshow(probs[:, shown].T, aspect="auto", cmap="viridis", vmin=0, vmax=1, extent=extent,
              interpolation="nearest")
    ax.set_yticks(range(len(shown)), [timeline.class_names[i] for i in shown])
    ax.set_xlabel("time (s)")
    ax.set_title(f"{Path(timeline.source).name}: class probabilities "
                 f"(smoothed over {timeline.smooth} windows)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
