"""deepvideo.track.evaluate: the runners (files, resume, shards, the VOT reset protocol, bad
trackers) and evaluation from result files."""

from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import cached, oracle_factory, synthetic_sequences

from deepvideo.track import evaluate, layouts, metrics
from deepvideo.track.base import TrackResult

T, I, F, S = metrics.VOT_TRACKED, metrics.VOT_INIT, metrics.VOT_FAILURE, metrics.VOT_SKIPPED


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    return [cached(s) for s in synthetic_sequences(tmp_path_factory.mktemp("seqs"))]


def counting(factory):
    """``factory`` that counts the trackers it made."""
    made = []

    def make():
        made.append(1)
        return factory()

    make.__name__, make.made = factory.__name__, made
    return make


def test_run_ope_writes_otb_files_and_resumes(seqs, tmp_path, capsys):
    factory = counting(oracle_factory(seqs))
    assert evaluate.run_ope(factory, seqs, tmp_path) == ["syn0", "syn1", "syn2"]
    assert "oracle [1/3] syn0 #1: 30 frames" in capsys.readouterr().err
    for s in seqs:
        boxes = np.loadtxt(tmp_path / "oracle" / f"{s.name}.txt", delimiter=",")
        times = np.loadtxt(tmp_path / "oracle" / "times" / f"{s.name}_time.txt")
        assert boxes.shape == (len(s), 4) and times.shape == (len(s),) and (times > 0).all()
        np.testing.assert_allclose(boxes[0], evaluate.file_boxes(s)[0], atol=5e-4)  # initial box, 1-based
    assert len(factory.made) == 3
    assert evaluate.run_ope(factory, seqs, tmp_path, progress=False) == []  # all finished
    (tmp_path / "oracle" / "syn1.txt").unlink()
    assert evaluate.run_ope(factory, seqs, tmp_path, progress=False) == ["syn1"]
    assert len(factory.made) == 4


def test_shards_split_by_name_and_follow_torchrun(seqs, monkeypatch):
    names = lambda shard: [s.name for s in evaluate.shard_sequences(seqs[::-1], shard)]  # noqa: E731
    assert names((0, 2)) == ["syn0", "syn2"] and names((1, 2)) == ["syn1"]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert names(None) == ["syn1"]
    with pytest.raises(ValueError, match="need 0 <= i < n"):
        names((3, 3))


def test_got10k_repetitions_and_resume(seqs, tmp_path):
    factory = oracle_factory(seqs, vary_seed=True)
    evaluate.run_got10k(factory, seqs[:1], tmp_path, name="o", progress=False)
    folder = tmp_path / "o" / "syn0"
    assert sorted(p.name for p in folder.iterdir()) == ["syn0_001.txt", "syn0_002.txt",
                                                        "syn0_003.txt", "syn0_time.txt"]
    runs = layouts.read_runs(tmp_path / "o", "got10k", "syn0")
    assert not np.array_equal(runs[0].boxes, runs[1].boxes)  # differing repetitions
    (folder / "syn0_002.txt").unlink()
    evaluate.run_got10k(factory, seqs[:1], tmp_path, name="o", progress=False)
    again = layouts.read_runs(tmp_path / "o", "got10k", "syn0")
    np.testing.assert_array_equal(again[0].boxes, runs[0].boxes)
    np.testing.assert_array_equal(again[2].times, runs[2].times)
    assert np.loadtxt(folder / "syn0_time.txt", delimiter=",").shape == (len(seqs[0]), 3)


def test_vot_reset_protocol_codes(seqs, tmp_path):
    # the oracle is far off on frames 12, 25 (every 13th): failure, 4 skipped, re-init 5 later
    evaluate.run_vot(oracle_factory(seqs), seqs[:1], tmp_path, progress=False)
    (run,) = layouts.read_runs(tmp_path / "oracle", "vot", "syn0")
    expected = [I] + [T] * 11 + [F] + [S] * 4 + [I] + [T] * 7 + [F] + [S] * 4
    np.testing.assert_array_equal(run.codes, expected)
    assert np.isfinite(run.boxes[run.codes == T]).all()
    assert np.isnan(run.boxes[run.codes != T]).all()


def test_vot_initialises_on_the_next_annotated_frame(seqs, tmp_path):
    seq = cached(seqs[0])
    seq.boxes = seq.boxes.copy()
    seq.boxes[17] = np.nan  # the re-initialisation frame has no ground truth
    seq.boxes[5] = np.nan   # a tracked frame without ground truth: overlap 0, a failure
    evaluate.run_vot(oracle_factory([seq]), [seq], tmp_path, progress=False)
    (run,) = layouts.read_runs(tmp_path / "oracle", "vot", "syn0")
    assert list(run.codes[:19]) == [I] + [T] * 4 + [F] + [S] * 4 + [I, T, F] + [S] * 5 + [I]


class Raising:
    def initialize(self, frame, box):
        pass

    def track(self, frame):
        raise RuntimeError("tracker bug")


class Returning:
    def __init__(self, box):
        self.box = box

    def initialize(self, frame, box):
        pass

    def track(self, frame):
        return TrackResult(self.box)


def test_tracker_errors_propagate_and_nothing_is_written(seqs, tmp_path):
    with pytest.raises(RuntimeError, match="tracker bug"):
        evaluate.run_ope(Raising, seqs[:1], tmp_path, progress=False)
    assert not (tmp_path / "Raising" / "syn0.txt").exists()
    with pytest.raises(ValueError, match="syn0, frame 1: the tracker returned"):
        evaluate.run_ope(lambda: Returning((1, 2, 3)), seqs[:1], tmp_path, progress=False)


def test_non_finite_boxes_are_recorded_as_nan(seqs, tmp_path):
    evaluate.run_ope(lambda: Returning((np.inf, 0, 5, 5)), seqs[:1], tmp_path, name="inf",
                     progress=False)
    boxes = np.loadtxt(tmp_path / "inf" / "syn0.txt", delimiter=",")
    assert np.isnan(boxes[1:]).all()
    result = evaluate.evaluate_ope(tmp_path / "inf", seqs[:1])
    assert result["overall"]["auc"] == pytest.approx(1 / len(seqs[0]) * 20 / 21)  # frame 0 only
    evaluate.run_vot(lambda: Returning((np.nan, 0, 5, 5)), seqs[:1], tmp_path, name="nan",
                     progress=False)
    (run,) = layouts.read_runs(tmp_path / "nan", "vot", "syn0")
    assert list(run.codes[:7]) == [I, F, S, S, S, S, I]


def test_evaluations_and_attributes(seqs, tmp_path):
    evaluate.run_ope(oracle_factory(seqs), seqs, tmp_path, progress=False)
    result = evaluate.evaluate_ope(tmp_path / "oracle", seqs)
    assert result["protocol"] == "ope" and result["tracker"] == "oracle"
    assert set(result["attributes"]) == {"occlusion", "scale"}
    occlusion = metrics.ope_summary({"syn1": result["sequences"]["syn1"]})
    assert result["attributes"]["occlusion"]["auc"] == occlusion["auc"]
    assert result["attributes"]["scale"]["auc"] == result["sequences"]["syn0"]["auc"]
    assert result["overall"]["auc"] == pytest.approx(
        np.mean([result["sequences"][s.name]["auc"] for s in seqs]))
    # the synthetic syn1 has 3 absent frames: not scored
    assert result["sequences"]["syn1"]["frames"] == len(seqs[1]) - 3
    missing = cached(seqs[0])
    missing.name = "syn9"
    with pytest.raises(FileNotFoundError, match="no results for sequence 'syn9'"):
        evaluate.evaluate_ope(tmp_path / "oracle", [missing])
    short = cached(seqs[1])
    short.name = "syn0"
    with pytest.raises(ValueError, match="syn0 has 30 result lines for 40 frames"):
        evaluate.evaluate_ope(tmp_path / "oracle", [short])


def test_unknown_tracker_name_is_an_error(seqs, tmp_path):
    with pytest.raises(KeyError, match="unknown tracker 'no-such-tracker'"):
        evaluate.run_ope("no-such-tracker", seqs[:1], tmp_path, progress=False)
