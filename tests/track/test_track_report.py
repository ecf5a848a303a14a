"""deepvideo.track.report: plots, report.md tables and scores.json from evaluations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_helpers import cached, oracle_factory, synthetic_sequences

from deepvideo.track import evaluate
from deepvideo.track.report import json_ready, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    seqs = [cached(s) for s in synthetic_sequences(root / "data")]
    evaluate.run_ope(oracle_factory(seqs), seqs, root, name="steady", progress=False)
    evaluate.run_ope(oracle_factory(seqs, noise=6.0, far_every=5), seqs, root, name="shaky",
                     progress=False)
    evaluate.run_got10k(oracle_factory(seqs, vary_seed=True), seqs, root / "got", name="steady",
                        progress=False)
    evaluate.run_vot(oracle_factory(seqs, far_every=29), seqs, root / "vot", name="steady",
                     progress=False)
    return [evaluate.evaluate_ope(root / "shaky", seqs), evaluate.evaluate_ope(root / "steady", seqs),
            evaluate.evaluate_got10k(root / "got" / "steady", seqs),
            evaluate.evaluate_vot(root / "vot" / "steady", seqs, eao_interval=(1, 10))]


def test_report_files_tables_and_ranking(evaluations, tmp_path):
    report = write_report(evaluations, tmp_path)
    for name in ("success_plot.png", "precision_plot.png", "norm_precision_plot.png",
                 "got10k_success_plot.png", "eao_curve.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG), name
    text = report.read_text()
    shaky, steady = evaluations[0]["overall"], evaluations[1]["overall"]
    assert steady["auc"] > shaky["auc"]
    row = (f"| steady | {steady['auc']:.3f} | {steady['precision']:.3f} | "
           f"{steady['norm_precision']:.3f} | {steady['success_rate']:.3f} |")
    assert row in text
    assert text.index("| steady |") < text.index("| shaky |")  # best AUC first
    got = evaluations[2]["overall"]
    assert f"| steady | {got['ao']:.3f} | {got['sr50']:.3f} | {got['sr75']:.3f} |" in text
    vot = evaluations[3]["overall"]
    assert f"| steady | {vot['accuracy']:.3f} | {vot['robustness']:.3f} |" in text
    assert "EAO interval: [1, 10]" in text
    assert "| occlusion |" in text and "| syn2 |" in text  # per-attribute and per-sequence
    assert "![success_plot](success_plot.png)" in text


def test_scores_json_is_strict_json_and_regenerates_the_report(evaluations, tmp_path):
    first = write_report(evaluations, tmp_path / "a").read_text()
    scores = json.loads((tmp_path / "a" / "scores.json").read_text(),
                        parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert [e["tracker"] for e in scores["trackers"]] == ["shaky", "steady", "steady", "steady"]
    assert "ious" not in scores["trackers"][2]["sequences"]["syn0"]
    assert len(scores["trackers"][0]["overall"]["success_curve"]) == 21
    again = write_report(tmp_path / "a" / "scores.json", tmp_path / "b").read_text()
    assert again == first


def test_json_ready_and_bad_input(evaluations, tmp_path):
    assert json_ready({"a": np.array([1.0, np.nan]), "b": np.int64(3), "ious": [1]}) == \
        {"a": [1.0, None], "b": 3}
    with pytest.raises(ValueError, match="tracker names repeat"):
        write_report([evaluations[1], evaluations[1]], tmp_path)
    assert not (tmp_path / "scores.json").exists()  # checked before anything is written
    with pytest.raises(ValueError, match="unknown protocols"):
        write_report([{**evaluations[1], "protocol": "lasot"}], tmp_path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a deepvideo tracking scores.json"):
        write_report(tmp_path / "x.json", tmp_path)
