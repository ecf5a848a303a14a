"""deepvideo.track's figures against the official toolkits' own code on the same result files:
the GOT-10k toolkit (``ExperimentOTB.report``, ``ExperimentGOT10k.report``, ``rect_iou``,
``center_error``) and vot-toolkit (``vot.analysis.supervised``, its rasterized overlap and its
``SupervisedExperiment`` runner). Result files come from a deterministic noisy "tracker" run by
our runners on the two real sequences and on synthetic ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from eval_helpers import OracleTracker, cached, frame_index, oracle_factory, synthetic_sequences

from deepvideo.track import evaluate, metrics
from deepvideo.track.datasets import load_sequence

got10k_otb = pytest.importorskip("got10k.experiments.otb")
got10k_got = pytest.importorskip("got10k.experiments.got10k")
got10k_metrics = pytest.importorskip("got10k.utils.metrics")
supervised = pytest.importorskip("vot.analysis.supervised")
from vot.experiment.multirun import SupervisedExperiment  # noqa: E402
from vot.region import Special  # noqa: E402
from vot.region.io import read_trajectory  # noqa: E402
from vot.region.raster import calculate_overlap  # noqa: E402
from vot.region.shapes import Rectangle  # noqa: E402
from vot.tracker import ObjectStatus, OnlineTrackerRuntime  # noqa: E402

EAO_INTERVAL = (2, 18)  # the oracle fails every 29 frames: short segments
VOT_ORACLE = {"nan_at": (3,), "far_every": 29}


def real_sequences(request) -> list:
    """Crossing (OTB format) and bag (VOT format) from the shared data, when present."""
    try:
        shared_data = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        return []
    return [load_sequence(shared_data / "tracking" / name) for name in ("Crossing", "bag")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """Sequences (synthetic, and the real ones when present) and the oracle's OTB, GOT-10k
    (3 differing repetitions) and VOT results."""
    root = tmp_path_factory.mktemp("agreement")
    seqs = [cached(s) for s in synthetic_sequences(root / "data") + real_sequences(request)]
    evaluate.run_ope(oracle_factory(seqs, nan_at=(7,)), seqs, root / "otb", progress=False)
    evaluate.run_got10k(oracle_factory(seqs, vary_seed=True), seqs, root / "got10k",
                        name="oracle", progress=False)
    evaluate.run_vot(oracle_factory(seqs, **VOT_ORACLE), seqs, root / "vot", progress=False)
    return root, seqs


def test_real_sequences_take_part(runs, shared_data):
    assert {"Crossing", "bag"} <= {s.name for s in runs[1]}


def file_boxes(seq):
    """The ground truth as the toolkits read it: in the pixel convention of the dataset's file
    (where our result files are written too)."""
    boxes = seq.boxes.copy()
    boxes[:, :2] += seq.origin
    return boxes


class FakeOTB:
    """What ExperimentOTB.report reads of its dataset: names, and (frames, boxes) pairs."""

    def __init__(self, seqs):
        self.seqs, self.seq_names = seqs, [s.name for s in seqs]

    def __len__(self):
        return len(self.seqs)

    def __iter__(self):
        return iter([(s.frame_paths, file_boxes(s)) for s in self.seqs])


class FakeGOT10k(FakeOTB):
    """What ExperimentGOT10k.report reads: (frames, boxes, meta with cover and resolution)."""

    return_meta = True

    def item(self, s):
        width, height = evaluate.frame_size(s)
        cover = np.where(s.absent, 0, 8) if s.absent is not None else np.full(len(s), 8)
        return s.frame_paths, file_boxes(s), {"cover": cover, "resolution": f"({width}, {height})"}

    def __getitem__(self, name):
        return self.item(self.seqs[self.seq_names.index(name)])

    def __iter__(self):
        return iter([self.item(s) for s in self.seqs])


def toolkit_experiment(cls, dataset, result_dir: Path, report_dir: Path, **fields):
    experiment = cls.__new__(cls)  # without the dataset download / folder checks of __init__
    experiment.dataset, experiment.result_dir, experiment.report_dir = dataset, str(result_dir), \
        str(report_dir)
    experiment.__dict__.update(fields)
    experiment.plot_curves = lambda *args, **kwargs: None
    return experiment


def test_otb_mode_matches_got10k_experiment_otb(runs, tmp_path):
    root, seqs = runs
    # the toolkit's OTB mode has no absent frames
    seqs = [s for s in seqs if s.absent is None or not s.absent.any()]
    ours = evaluate.evaluate_ope(root / "otb" / "oracle", seqs, layout="otb")
    experiment = toolkit_experiment(got10k_otb.ExperimentOTB, FakeOTB(seqs), root / "otb",
                                    tmp_path, nbins_iou=21, nbins_ce=51)
    theirs = experiment.report(["oracle"])["oracle"]
    for mine, ref in [(ours["overall"], theirs["overall"])] + [
            (ours["sequences"][s.name], theirs["seq_wise"][s.name]) for s in seqs]:
        np.testing.assert_allclose(mine["success_curve"], ref["success_curve"], atol=1e-6)
        np.testing.assert_allclose(mine["precision_curve"], ref["precision_curve"], atol=1e-6)
        assert mine["auc"] == pytest.approx(ref["success_score"], abs=1e-6)
        assert mine["precision"] == pytest.approx(ref["precision_score"], abs=1e-6)
        assert mine["success_rate"] == pytest.approx(ref["success_rate"], abs=1e-6)
        assert mine["fps"] == pytest.approx(ref["speed_fps"], rel=1e-6)
    assert 0.3 < ours["overall"]["auc"] < 0.9  # the oracle is neither perfect nor lost


def test_got10k_mode_matches_experiment_got10k(runs, tmp_path):
    root, seqs = runs
    ours = evaluate.evaluate_got10k(root / "got10k" / "oracle", seqs, layout="got10k")
    experiment = toolkit_experiment(got10k_got.ExperimentGOT10k, FakeGOT10k(seqs),
                                    root / "got10k", tmp_path, nbins_iou=101, repetitions=3,
                                    subset="val")
    theirs = experiment.report(["oracle"])["oracle"]
    assert ours["overall"]["ao"] == pytest.approx(theirs["overall"]["ao"], abs=1e-6)
    assert ours["overall"]["sr50"] == pytest.approx(theirs["overall"]["sr"], abs=1e-6)
    assert ours["overall"]["fps"] == pytest.approx(theirs["overall"]["speed_fps"], rel=1e-6)
    np.testing.assert_allclose(ours["overall"]["success_curve"], theirs["overall"]["succ_curve"],
                               atol=1e-6)
    for s in seqs:
        assert ours["sequences"][s.name]["ao"] == pytest.approx(theirs["seq_wise"][s.name]["ao"],
                                                                abs=1e-6)
        assert ours["sequences"][s.name]["sr50"] == pytest.approx(
            theirs["seq_wise"][s.name]["sr"], abs=1e-6)
    # SR0.75 is not in the toolkit's report: the same pooled IoUs, at 0.75
    ious = np.concatenate([ours["sequences"][s.name]["ious"] for s in seqs])
    assert ours["overall"]["sr75"] == pytest.approx(np.mean(ious > 0.75))


class ToolkitSequence:
    """What vot.analysis.supervised reads of a sequence: ground truth regions and size."""

    def __init__(self, seq):
        self.seq, self.name, self.size = seq, seq.name, evaluate.frame_size(seq)

    def __len__(self):
        return len(self.seq)

    def groundtruth(self, index=None):
        regions = [Special(0) if not np.isfinite(b).all() else Rectangle(*b)
                   for b in evaluate.file_boxes(self.seq)]
        return regions if index is None else regions[index]

    def objects(self):
        return ["object"]

    def frame(self, index):
        return index

    def tags(self, index):
        return []


class ToolkitRuns:
    """What the toolkit's analyses read of an experiment: the trajectories of a sequence."""

    def __init__(self, tracker_dir: Path):
        self.tracker_dir = tracker_dir

    def gather(self, tracker, sequence):
        path = self.tracker_dir / "baseline" / sequence.name / f"{sequence.name}_001.txt"
        regions = read_trajectory(str(path))
        return [type("Trajectory", (), {"regions": lambda self: list(regions)})()]


def test_vot_figures_match_vot_toolkit(runs):
    root, seqs = runs
    ours = evaluate.evaluate_vot(root / "vot" / "oracle", seqs, eao_interval=EAO_INTERVAL)
    experiment, toolkit_seqs = ToolkitRuns(root / "vot" / "oracle"), [ToolkitSequence(s) for s in seqs]
    rows = [supervised.AccuracyRobustness().subcompute(experiment, None, s, []) for s in toolkit_seqs]
    for s, (accuracy, failures, _, _) in zip(seqs, rows, strict=True):
        assert ours["sequences"][s.name]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert ours["sequences"][s.name]["failures"] == failures  # exactly
        assert 0.5 < accuracy < 1 and failures >= 2
    accuracy, robustness, (reliability, _), _ = supervised.AverageAccuracyRobustness().aggregate(
        None, toolkit_seqs, rows)
    assert ours["overall"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert ours["overall"]["robustness"] == pytest.approx(robustness, abs=1e-12)
    assert ours["overall"]["reliability"] == pytest.approx(reliability, abs=1e-12)
    assert ours["overall"]["failures"] == sum(r[1] for r in rows) >= 2 * len(seqs)
    curve, = supervised.EAOCurve().subcompute(experiment, None, toolkit_seqs, [])
    np.testing.assert_allclose(ours["overall"]["eao_curve"], curve, atol=1e-6)
    low, high = EAO_INTERVAL  # EAOScore.compute: the mean of curve[low:high + 1]
    assert ours["overall"]["eao"] == pytest.approx(float(np.mean(curve[low:high + 1])), abs=1e-6)


class OracleRuntime(OnlineTrackerRuntime):
    """Runs our oracle tracker inside vot-toolkit's SupervisedExperiment."""

    def __init__(self, seq):
        super().__init__(None)
        self.seq, self.oracle = seq, None

    def initialize(self, frame, status, properties=None):
        self.oracle = OracleTracker(self.seq, **VOT_ORACLE)
        self.oracle.initialize(self.seq.frame(frame), tuple(self.seq.boxes[frame]))
        return status, 0.0

    def update(self, frame, properties=None):
        box = self.oracle.box_at(frame) + [self.seq.origin, self.seq.origin, 0, 0]  # file pixels
        region = Special(0) if not np.isfinite(box).all() else Rectangle(*box)
        return ObjectStatus(region, {}), 0.0

    def stop(self):
        pass

    def restart(self):
        pass

    @property
    def multiobject(self):
        return False


class FileResults:
    """vot-toolkit results storage writing into a folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def exists(self, name):
        return (self.folder / name).exists()

    def write(self, name):
        return open(self.folder / name, "w")

    def find(self, pattern):
        return [p.name for p in self.folder.glob(pattern)]


def test_vot_reset_protocol_matches_supervised_experiment(runs, tmp_path):
    """The toolkit's own runner, driving the same oracle, writes the same trajectories."""
    root, seqs = runs
    for s in seqs:
        frame_index(s)
        experiment = SupervisedExperiment("baseline", None, skip_initialize=5)
        results = FileResults(tmp_path / s.name)
        experiment.results = lambda tracker, sequence, results=results: results
        experiment._get_runtime = lambda tracker, sequence, multiobject=False, s=s: OracleRuntime(s)
        experiment.execute(None, ToolkitSequence(s))
        theirs = read_trajectory(str(next((tmp_path / s.name).glob(f"{s.name}_001.*"))))
        ours = read_trajectory(str(root / "vot" / "oracle" / "baseline" / s.name / f"{s.name}_001.txt"))
        assert [str(r) if isinstance(r, Special) else "box" for r in ours] == \
            [str(r) if isinstance(r, Special) else "box" for r in theirs], s.name
        for mine, ref in zip(ours, theirs, strict=True):
            if not isinstance(ref, Special):
                assert [mine.x, mine.y, mine.width, mine.height] == \
                    [ref.x, ref.y, ref.width, ref.height]


def test_vot_overlap_matches_toolkit_raster():
    rng = np.random.default_rng(0)
    n = 600
    gt = np.c_[rng.uniform(-30, 120, (n, 2)), rng.uniform(0.3, 60, (n, 2))]
    pred = np.c_[rng.uniform(-30, 120, (n, 2)), rng.uniform(0.3, 60, (n, 2))]
    pred[::3, :2] = gt[::3, :2] + rng.normal(0, 2, (len(pred[::3]), 2))  # many real overlaps
    pred[::7] = np.round(pred[::7]) + 0.5  # ties of the rounding
    pred[::11] = np.nan  # no box
    gt[::29] = np.nan  # no ground truth
    size = (100, 80)
    ours = metrics.vot_overlap(pred, gt, size)
    region = lambda b: Special(0) if not np.isfinite(b).all() else Rectangle(*b)  # noqa: E731
    theirs = [calculate_overlap(region(a), region(b), size) for a, b in zip(pred, gt, strict=True)]
    np.testing.assert_array_equal(ours, theirs)
    assert (ours > 0).sum() > 100 and (ours == 1).sum() >= 1


def test_iou_and_center_error_match_got10k_on_random_boxes():
    rng = np.random.default_rng(1)
    a = np.c_[rng.uniform(0, 50, (500, 2)), rng.uniform(1, 30, (500, 2))]
    b = np.c_[rng.uniform(0, 50, (500, 2)), rng.uniform(1, 30, (500, 2))]
    np.testing.assert_allclose(metrics.overlaps(a, b), got10k_metrics.rect_iou(a, b), atol=1e-12)
    np.testing.assert_allclose(metrics.center_errors(a, b), got10k_metrics.center_error(a, b),
                               atol=1e-12)
    bound = (40, 35)
    np.testing.assert_allclose(
        metrics.overlaps(metrics.clip_to_image(a, bound), metrics.clip_to_image(b, bound)),
        got10k_metrics.rect_iou(a.copy(), b.copy(), bound=bound), atol=1e-12)
    assert not math.isnan(metrics.overlaps(a, b).sum())
