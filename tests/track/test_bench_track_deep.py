"""benchmarks/deep_track.py: the table-driven deep-tracker entries of the acceptance benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def deep_track(bench_import):
    return bench_import("deep_track"), bench_import("bench_track")


def test_every_entry_names_a_recipe_and_a_registered_tracker(deep_track):
    from deepvideo.track.registry import get_tracker_info

    table, _ = deep_track
    for name, entry in table.DEEP.items():
        assert (ROOT / entry.config).is_file(), name
        assert get_tracker_info(entry.tracker).name == entry.tracker
        assert table.run_name(name) in table.DEEP
    assert table.run_name("siamfc_5s") == "siamfc" and table.DEEP["siamfc_updatenet"].needs == "siamfc"


def test_factory_fills_in_the_weights_it_needs(deep_track, tmp_path, monkeypatch):
    table, _ = deep_track
    seen = {}
    from deepvideo.track import registry

    info = registry.get_tracker_info("siamfc")
    monkeypatch.setattr(registry, "get_tracker_info",
                        lambda name: type(info)(name, lambda **kw: seen.update(kw) or "made"))
    factory = table.tracker_factory("siamfc_updatenet", tmp_path, {"siamfc": Path("/w/siamfc.safetensors")})
    assert factory() == "made"
    assert seen == {"updatenet": str(tmp_path / "siamfc_updatenet" / "checkpoints" / "best"),
                    "weights": "/w/siamfc.safetensors", "update": "updatenet", "optimize": True}
    seen.clear()
    table.tracker_factory("siamfc_5s", tmp_path)()
    assert seen == {"weights": str(tmp_path / "siamfc" / "checkpoints" / "best"), "optimize": True,
                    "num_scales": 5}


def test_existing_runs_are_reused_and_training_time_is_summed(deep_track, tmp_path):
    table, _ = deep_track
    for run, times in (("siamfc", (60, 90)), ("siamfc_updatenet", (30,))):
        (tmp_path / run / "checkpoints" / "best").mkdir(parents=True)
        rows = "".join(f"{i + 1},{t}\n" for i, t in enumerate(times))
        (tmp_path / run / "metrics.csv").write_text("epoch,epoch_time_s\n" + rows)
    splits = {"train": tmp_path / "t", "val": tmp_path / "v"}
    weights = table.train("siamfc_updatenet", ROOT, tmp_path, splits, [])  # no training: both exist
    assert weights == tmp_path / "siamfc_updatenet" / "checkpoints" / "best"
    assert table.training_seconds(tmp_path, "siamfc_5s") == 150
    assert table.training_seconds(tmp_path, "siamfc_updatenet") == 180
    assert table.training_seconds(tmp_path / "nothing", "siamfc") is None


def test_weights_arguments_are_checked(deep_track):
    _, bench = deep_track
    args = bench.parse_args(["--deep", "siamfc", "--weights", "siamfc=/a.safetensors"])
    assert bench.deep_weights(args) == {"siamfc": Path("/a.safetensors")}
    args = bench.parse_args(["--deep", "siamfc", "--weights", "mdnet/a.pth"])
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        bench.deep_weights(args)
